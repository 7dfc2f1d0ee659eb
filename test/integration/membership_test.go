package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/test/simnode"
)

// TestMembershipStates follows the member nodes through Joining, Up and Down as their agents'
// Leases say, with an Event and a metric for each change.
func TestMembershipStates(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	startManager(t)
	f.waitOnline(t, f.a)
	f.waitNodes(t, map[string]wp.NodeState{f.a: wp.NodeUp, f.b: wp.NodeUp})
	// Under load a renewal can come late and leave b out of the observers for a moment.
	eventually(t, "node a heard on the simulated agents' network", func() error {
		if n := f.node(t, f.a); !slices.Equal(n.ReachableNetworks, []string{"public"}) {
			return fmt.Errorf("node a reachable on %v, want [public]", n.ReachableNetworks)
		}
		return nil
	})

	// A third node whose agent has only just started.
	c := f.ns + "-c"
	must(t, createNode(ctx, c, map[string]string{wp.ClusterLabel: f.cluster}))
	must(t, simnode.RenewNodeLease(ctx, k8sClient, c, membership.View{Incarnation: 1}))
	f.waitNodes(t, map[string]wp.NodeState{c: wp.NodeJoining})
	f.expectClusterEvent(t, wp.NodeJoiningReason, "node "+c+" is Joining")

	// It joins, then stops renewing; no peer hears it, so it is Down after two missed renewals,
	// well before its Lease runs out.
	must(t, simnode.RenewNodeLease(ctx, k8sClient, c, membership.View{Incarnation: 1, Joined: true}))
	f.waitNodes(t, map[string]wp.NodeState{c: wp.NodeUp})
	f.waitNodes(t, map[string]wp.NodeState{c: wp.NodeDown})
	if n := f.node(t, c); !strings.Contains(n.Message, "heard by none of its peers") {
		t.Errorf("node c Down with message %q, want why", n.Message)
	}
	f.expectClusterEvent(t, wp.NodeDownReason, "node "+c+" is Down")

	// A crash of the owner: Down, then the group fails over.
	must(t, f.kubelet.Kill(ctx, f.a))
	f.waitNodes(t, map[string]wp.NodeState{f.a: wp.NodeDown, f.b: wp.NodeUp})
	labels := map[string]string{"cluster": f.cluster, "node": f.a}
	if got := metricValue(t, "wolfpack_node_state", with(labels, "state", "Down")); got != 1 {
		t.Errorf("wolfpack_node_state{state=Down} = %v, want 1", got)
	}
	if got := metricValue(t, "wolfpack_node_state", with(labels, "state", "Up")); got != 0 {
		t.Errorf("wolfpack_node_state{state=Up} = %v, want 0", got)
	}
	f.waitOnline(t, f.b)

	must(t, f.kubelet.Revive(ctx, f.a))
	f.waitNodes(t, map[string]wp.NodeState{f.a: wp.NodeUp})
}

// TestPauseAndDrain pauses the owner (the group stays), drains it (the group moves, in
// dependency order), and resumes it (the group stays where it is).
func TestPauseAndDrain(t *testing.T) {
	f := newFixture(t)
	startManager(t)
	f.waitOnline(t, f.a)

	f.setPaused(t, wp.PausedNode{Name: f.a})
	f.waitNodes(t, map[string]wp.NodeState{f.a: wp.NodePaused, f.b: wp.NodeUp})
	f.expectClusterEvent(t, wp.NodePausedReason, "node "+f.a+" is Paused")
	// Nothing moves: a paused node keeps its groups.
	time.Sleep(2 * time.Second)
	if g := f.waitOnline(t, f.a); g.Status.Epoch != 1 {
		t.Errorf("epoch %d on a paused owner, want 1", g.Status.Epoch)
	}

	w := f.watch(t)
	f.setPaused(t, wp.PausedNode{Name: f.a, Drain: true})
	g := f.waitOnline(t, f.b)
	w.check(t)
	if op := g.Status.Operation; op.Kind != wp.OperationMove || op.From != f.a || g.Status.Epoch != 2 {
		t.Errorf("operation %+v at epoch %d, want a Move from %s at epoch 2", op, g.Status.Epoch, f.a)
	}
	f.expectEvent(t, wp.DrainReason, "draining paused node "+f.a+": moving to "+f.b)

	f.setPaused(t)
	f.waitNodes(t, map[string]wp.NodeState{f.a: wp.NodeUp})
	time.Sleep(2 * time.Second)
	if g := f.waitOnline(t, f.b); g.Status.Epoch != 2 {
		t.Errorf("epoch %d after resume, want the group left on %s at epoch 2", g.Status.Epoch, f.b)
	}
}

func with(labels map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for lk, lv := range labels {
		out[lk] = lv
	}
	return out
}

// setPaused sets the cluster's pausedNodes.
func (f *fixture) setPaused(t *testing.T, paused ...wp.PausedNode) {
	t.Helper()
	qd := &wp.QuorumDisk{}
	must(t, k8sClient.Get(context.Background(), client.ObjectKey{Name: f.cluster}, qd))
	patch := client.MergeFrom(qd.DeepCopy())
	qd.Spec.PausedNodes = paused
	must(t, k8sClient.Patch(context.Background(), qd, patch))
}

// node reads one member node's status.
func (f *fixture) node(t *testing.T, name string) wp.NodeStatus {
	t.Helper()
	qd := &wp.QuorumDisk{}
	must(t, k8sClient.Get(context.Background(), client.ObjectKey{Name: f.cluster}, qd))
	for _, n := range qd.Status.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("node %s not in the status of cluster %s", name, f.cluster)
	return wp.NodeStatus{}
}

// waitNodes waits until the named nodes are in the given states.
func (f *fixture) waitNodes(t *testing.T, want map[string]wp.NodeState) {
	t.Helper()
	eventually(t, fmt.Sprintf("nodes %v", want), func() error {
		qd := &wp.QuorumDisk{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Name: f.cluster}, qd); err != nil {
			return err
		}
		got := map[string]wp.NodeState{}
		for _, n := range qd.Status.Nodes {
			got[n.Name] = n.State
		}
		for name, state := range want {
			if got[name] != state {
				return fmt.Errorf("nodes are %v", got)
			}
		}
		return nil
	})
}

// expectClusterEvent waits for an Event about the fixture's QuorumDisk.
func (f *fixture) expectClusterEvent(t *testing.T, reason, note string) {
	t.Helper()
	eventually(t, "Event "+reason, func() error {
		var list eventsv1.EventList
		if err := k8sClient.List(context.Background(), &list); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Kind == "QuorumDisk" && e.Regarding.Name == f.cluster && e.Reason == reason && strings.Contains(e.Note, note) {
				return nil
			}
		}
		return fmt.Errorf("no such Event among %d", len(list.Items))
	})
}

// TestDiskOnlyPartitionKeepsTheQuorumOwner cuts the heartbeats between the two nodes of a DiskOnly
// cluster whose quorum disk node b holds: both agents go on renewing their Leases, the manager
// marks a, the side without the disk, Down, and the group a owned fails over to b, never running
// on both; when the partition heals, a is Up again.
func TestDiskOnlyPartitionKeepsTheQuorumOwner(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	startManager(t)
	f.waitOnline(t, f.a)

	// The quorum holder on b renews its Lease, as the real one will.
	holderCtx, stopHolder := context.WithCancel(ctx)
	defer stopHolder()
	go func() {
		for holderCtx.Err() == nil {
			_ = simnode.RenewQuorumLease(holderCtx, k8sClient, f.cluster, f.b, 1)
			time.Sleep(250 * time.Millisecond)
		}
	}()
	eventually(t, "b holds the quorum", func() error {
		qd := &wp.QuorumDisk{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: f.cluster}, qd); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(qd.Status.Conditions, wp.QuorumCondition); qd.Status.Owner != f.b || qd.Status.Epoch != 1 ||
			c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("owner %q epoch %d, condition %+v", qd.Status.Owner, qd.Status.Epoch, c)
		}
		return nil
	})

	w := f.watch(t)
	f.kubelet.Partition(f.a, f.b, false)
	f.waitNodes(t, map[string]wp.NodeState{f.a: wp.NodeDown, f.b: wp.NodeUp})
	if n := f.node(t, f.a); !strings.Contains(n.Message, "partitioned from its peers without quorum") {
		t.Errorf("a Down for %q", n.Message)
	}
	g := f.waitOnline(t, f.b)
	w.check(t)
	if op := g.Status.Operation; op.Kind != wp.OperationFailover || op.From != f.a {
		t.Errorf("operation %+v, want a Failover from %s", op, f.a)
	}

	f.kubelet.Partition(f.a, f.b, true)
	f.waitNodes(t, map[string]wp.NodeState{f.a: wp.NodeUp, f.b: wp.NodeUp})
}
