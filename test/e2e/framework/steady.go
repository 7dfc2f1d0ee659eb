package framework

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/env"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

// SteadyPoll is how often WaitSteady looks.
const SteadyPoll = 200 * time.Millisecond

// WaitSteady waits, up to Settle, for the steady state in which every scenario begins: both
// member nodes Up, a member holding the quorum disk, and the sample group Online on a member with
// no move in progress or asked for, its pods running in that node's container runtime and in no
// other (the stand-in kubelet mirrors them a moment after kwok reports them Running). It returns
// the QuorumDisk then.
func WaitSteady(ctx context.Context, e *env.Env) (*wp.QuorumDisk, error) {
	var qd *wp.QuorumDisk
	err := poll.Until(ctx, "both members Up, the quorum held and the group Online with no move under way", Settle, SteadyPoll,
		func(ctx context.Context) error {
			var err error
			if qd, err = QuorumDisk(ctx, e); err != nil {
				return err
			}
			if !slices.Contains(env.Member, qd.Status.Owner) {
				return fmt.Errorf("the quorum disk's owner is %q", qd.Status.Owner)
			}
			for _, n := range env.Member {
				if s := NodeState(qd, n); s != wp.NodeUp {
					return fmt.Errorf("%s is %q", n, s)
				}
			}
			g, err := e.Group(ctx)
			if err != nil {
				return err
			}
			if g.Status.State != wp.GroupOnline || !slices.Contains(env.Member, g.Status.OwnerNode) {
				return fmt.Errorf("the group is %s on %q", g.Status.State, g.Status.OwnerNode)
			}
			if op := g.Status.Operation; op != nil && (op.Phase == wp.PhaseTakingOffline || op.Phase == wp.PhaseBringingOnline) {
				return fmt.Errorf("the group's %s to %s is %s", op.Kind, op.To, op.Phase)
			}
			if to, ok := g.Annotations[wp.MoveToAnnotation]; ok {
				return fmt.Errorf("a move to %q is asked for", to)
			}
			return runsOnlyOn(ctx, e, g.Status.OwnerNode)
		})
	return qd, err
}

// QuorumDisk reads the sample QuorumDisk.
func QuorumDisk(ctx context.Context, e *env.Env) (*wp.QuorumDisk, error) {
	qd := &wp.QuorumDisk{}
	return qd, e.Client.Get(ctx, client.ObjectKey{Name: env.ClusterName}, qd)
}

// NodeState is the state of the named node in the QuorumDisk's status, "" if it has none.
func NodeState(qd *wp.QuorumDisk, name string) wp.NodeState {
	for _, n := range qd.Status.Nodes {
		if n.Name == name {
			return n.State
		}
	}
	return ""
}

// Other is the member node that is not n.
func Other(n string) string {
	if n == env.NodeA {
		return env.NodeB
	}
	return env.NodeA
}

// SetFailoverThreshold sets the sample group's spec.failoverThreshold.
func SetFailoverThreshold(ctx context.Context, e *env.Env, n int32) error {
	g, err := e.Group(ctx)
	if err != nil {
		return err
	}
	patch := client.MergeFrom(g.DeepCopy())
	g.Spec.FailoverThreshold = &n
	return e.Client.Patch(ctx, g, patch)
}

// runsOnlyOn returns nil when every pod of the sample group that the API has Running on node
// runs in node's container runtime, and no pod of the group runs in another member's.
func runsOnlyOn(ctx context.Context, e *env.Env, node string) error {
	var pods corev1.PodList
	if err := e.Client.List(ctx, &pods, client.InNamespace(env.Namespace), client.MatchingLabels{wp.GroupLabel: env.Group}); err != nil {
		return err
	}
	running := map[string]bool{}
	for _, p := range e.RunningPods(ctx, node) {
		running[p.Name] = true
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == node && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && !running[p.Name] {
			return fmt.Errorf("pod %s does not run in the container runtime of %s yet", p.Name, node)
		}
	}
	for _, n := range env.Member {
		if r := e.RunningPods(ctx, n); n != node && len(r) > 0 {
			return fmt.Errorf("pods of the group run in the container runtime of %s: %v", n, r)
		}
	}
	return nil
}
