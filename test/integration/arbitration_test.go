package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/controllers"
	"github.com/wolfpack-ha/wolfpack/internal/arbitration"
	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

// TestOutOfServiceTaint crashes a node (its agent and its kubelet stop): once it is Down and
// fenced, the manager taints it node.kubernetes.io/out-of-service so that Kubernetes releases its
// pods and volumes, and takes the taint off when the node is back. A taint an administrator put
// on a node is left alone.
func TestOutOfServiceTaint(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	startManager(t)
	f.waitOnline(t, f.a)

	must(t, f.kubelet.Kill(ctx, f.a))
	f.waitNodes(t, map[string]wp.NodeState{f.a: wp.NodeDown})
	f.waitTaint(t, f.a, true)
	f.expectClusterEvent(t, wp.OutOfServiceReason, "node "+f.a+" is Down and fenced")
	if n := f.kubeNode(t, f.b); hasOutOfService(n) {
		t.Errorf("the surviving node %s is tainted", f.b)
	}
	f.waitOnline(t, f.b)

	must(t, f.kubelet.Revive(ctx, f.a))
	f.waitNodes(t, map[string]wp.NodeState{f.a: wp.NodeUp})
	f.waitTaint(t, f.a, false)
	f.expectClusterEvent(t, wp.BackInServiceReason, "node "+f.a+" is Up again")
	if n := f.kubeNode(t, f.a); n.Annotations[arbitration.OutOfServiceAnnotation] != "" {
		t.Errorf("annotation %s left on node %s", arbitration.OutOfServiceAnnotation, f.a)
	}

	// An administrator's own taint on an Up node stays. The agents' Lease renewals, every
	// 250 ms, each make the manager reconcile the cluster: two seconds see several reconciles.
	n := f.kubeNode(t, f.b)
	n.Spec.Taints = append(n.Spec.Taints, arbitration.OutOfServiceTaint)
	must(t, k8sClient.Update(ctx, n))
	poll.Throughout(t, "an administrator's out-of-service taint on "+f.b, 2*time.Second, 100*time.Millisecond, func() error {
		if !hasOutOfService(f.kubeNode(t, f.b)) {
			return errors.New("the manager removed it")
		}
		return nil
	})
}

func (f *fixture) kubeNode(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n := &corev1.Node{}
	must(t, k8sClient.Get(context.Background(), client.ObjectKey{Name: name}, n))
	return n
}

func hasOutOfService(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeOutOfService {
			return true
		}
	}
	return false
}

func (f *fixture) waitTaint(t *testing.T, node string, want bool) {
	t.Helper()
	eventually(t, fmt.Sprintf("out-of-service taint on %s %v", node, want), func() error {
		n := &corev1.Node{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Name: node}, n); err != nil {
			return err
		}
		if got := hasOutOfService(n); got != want {
			return fmt.Errorf("tainted %v, taints %v", got, n.Spec.Taints)
		}
		return nil
	})
}

// TestQuorumHolderMovesAfterTheOwnerCrashes runs real quorum holders (internal/quorumholder, on a
// shared in-memory disk) for the holder pods the manager makes. The first holder takes the disk
// at epoch 1. When its node crashes (its disk I/O stops, it releases nothing), the manager moves
// the holder only once the holder's Lease has run out; the new holder waits out the old disk
// lease and takes the disk at epoch 2. The group fails over and never runs on both nodes; the
// crashed node is tainted out-of-service, and when it is back the quorum stays where it is.
func TestQuorumHolderMovesAfterTheOwnerCrashes(t *testing.T) {
	ctx := context.Background()
	f := newFixtureWithQuorumClaim(t, 2*time.Second)
	startManagerWith(t, func(o *controllers.Options) { o.Holder.Image = "wolfpack:test" })

	f.waitQuorum(t, f.a, 1)
	f.expectClusterEvent(t, wp.HolderPlacedReason, "started the quorum holder on node "+f.a)
	f.waitOnline(t, f.a)

	w := f.watch(t)
	crashed := time.Now()
	must(t, f.kubelet.Kill(ctx, f.a))
	f.waitQuorum(t, f.b, 2)
	took := time.Since(crashed)
	f.waitOnline(t, f.b)
	w.check(t)
	f.expectClusterEvent(t, wp.HolderRemovedReason, "deleted the quorum holder on node "+f.a)
	f.waitTaint(t, f.a, true)
	// The holder's Lease runs out 2 s after a's last renewal, and b's holder then watches the
	// disk for a lease period and more before it claims it.
	if took < 4*time.Second {
		t.Errorf("b held the quorum %v after a crashed: sooner than the two lease periods it must wait", took)
	}
	t.Logf("quorum on b at epoch 2, %v after a crashed", took.Round(time.Millisecond))

	must(t, f.kubelet.Revive(ctx, f.a))
	f.waitNodes(t, map[string]wp.NodeState{f.a: wp.NodeUp})
	f.waitTaint(t, f.a, false)
	f.waitQuorum(t, f.b, 2)
	if got := f.kubelet.HolderStarts(); !slices.Equal(got, []string{f.a, f.b}) {
		t.Errorf("holders started on %v, want on a then b", got)
	}
	if errs := f.kubelet.HolderErrors(); len(errs) > 0 {
		t.Errorf("quorum holders failed: %v", errs)
	}
}

// waitQuorum waits until node holds the quorum at epoch, by the QuorumDisk's status.
// newFixtureWithQuorumClaim is newFixture whose QuorumDisk's claim exists, in the group's
// namespace, so that the manager can run quorum holders (simnode runs them, on a shared in-memory
// disk), with the given lease duration.
func newFixtureWithQuorumClaim(t *testing.T, lease time.Duration) *fixture {
	t.Helper()
	ctx := context.Background()
	f := newFixtureThen(t, func(f *fixture) {
		must(t, envtest.BoundClaim(ctx, k8sClient, f.ns, "quorum"))
	})
	qd := &wp.QuorumDisk{}
	must(t, k8sClient.Get(ctx, client.ObjectKey{Name: f.cluster}, qd))
	qd.Spec.VolumeClaim = wp.VolumeClaimReference{Namespace: f.ns, Name: "quorum"}
	qd.Spec.LeaseDuration = &metav1.Duration{Duration: lease}
	must(t, k8sClient.Update(ctx, qd))
	return f
}

func (f *fixture) waitQuorum(t *testing.T, node string, epoch int64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s holds the quorum at epoch %d", node, epoch), func() error {
		qd := &wp.QuorumDisk{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Name: f.cluster}, qd); err != nil {
			return err
		}
		c := meta.FindStatusCondition(qd.Status.Conditions, wp.QuorumCondition)
		if qd.Status.Owner != node || qd.Status.Epoch != epoch || c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("owner %q epoch %d, condition %+v", qd.Status.Owner, qd.Status.Epoch, c)
		}
		return nil
	})
}
