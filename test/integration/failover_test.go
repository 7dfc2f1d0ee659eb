package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
)

// Deadlines hold on a loaded 2-core machine; the figures are measured by the benchmark.
const settle = 60 * time.Second

func TestDiamondOnlineInDependencyOrderOfflineInReverse(t *testing.T) {
	f := newFixture(t)
	w := f.watch(t)
	startManager(t)

	g := f.waitOnline(t, f.a)
	if g.Status.Epoch != 1 {
		t.Errorf("epoch %d after coming online, want 1", g.Status.Epoch)
	}
	// [disk] [agent ip] [name] [server]: the independent agent and ip share a wave.
	if op := g.Status.Operation; op == nil || op.Kind != wp.OperationOnline || op.Phase != wp.PhaseSucceeded || op.Wave != 4 {
		t.Errorf("operation %+v, want Online Succeeded after 4 waves", op)
	}
	// The watcher may not have caught up with the last resource yet.
	var activated map[string]int
	eventually(t, "the watcher seeing every resource started", func() error {
		if activated = w.activatedSoFar(); len(activated) < 5 {
			return fmt.Errorf("seen started: %v", activated)
		}
		return nil
	})
	for _, edge := range [][2]string{{"disk", "ip"}, {"disk", "agent"}, {"ip", "name"}, {"name", "server"}} {
		if activated[edge[0]] > activated[edge[1]] {
			t.Errorf("%s started (snapshot %d) after its dependent %s (snapshot %d)", edge[0], activated[edge[0]], edge[1], activated[edge[1]])
		}
	}

	g.Spec.State = wp.DesiredOffline
	must(t, k8sClient.Update(context.Background(), g))
	eventually(t, "group sql Offline", func() error {
		g = f.group(t)
		if g.Status.State != wp.GroupOffline || g.Status.OwnerNode != "" {
			return fmt.Errorf("group is %s on %q", g.Status.State, g.Status.OwnerNode)
		}
		return nil
	})
	if op := g.Status.Operation; op.Kind != wp.OperationOffline || op.Phase != wp.PhaseSucceeded || op.Wave != 4 {
		t.Errorf("operation %+v, want Offline Succeeded after 4 waves", op)
	}
	w.check(t)
}

// TestResourcesAppliedToARunningManager applies the samples while the manager runs, so that the
// group is online (on its first preferred owner) before its resources exist: they still come
// online in dependency order.
func TestResourcesAppliedToARunningManager(t *testing.T) {
	var w *watcher
	f := newFixtureThen(t, func(f *fixture) {
		w = f.watch(t)
		startManager(t)
		// The QuorumDisk and the group first; the group is Online, with nothing in it.
		qd := builder.QuorumDisk(f.cluster).NodeSelector(map[string]string{wp.ClusterLabel: f.cluster}).Obj()
		must(t, k8sClient.Create(context.Background(), qd))
		g := builder.Group(f.ns, "sql").Cluster(f.cluster).PreferredOwners(f.a, f.b).Obj()
		must(t, k8sClient.Create(context.Background(), g))
		eventually(t, "the empty group Online", func() error {
			if s := f.group(t).Status; s.State != wp.GroupOffline || s.OwnerNode != f.a {
				return fmt.Errorf("group is %s on %q", s.State, s.OwnerNode)
			}
			return nil
		})
	})
	f.waitOnline(t, f.a)
	w.check(t)
}

func TestMoveTakesEverythingOfflineBeforeAnythingOnline(t *testing.T) {
	f := newFixture(t)
	startManager(t)
	f.waitOnline(t, f.a)
	w := f.watch(t)

	g := f.group(t)
	patch := client.MergeFrom(g.DeepCopy())
	g.Annotations = map[string]string{wp.MoveToAnnotation: f.b}
	must(t, k8sClient.Patch(context.Background(), g, patch))

	g = f.waitOnline(t, f.b)
	w.check(t)
	if g.Status.Epoch != 2 {
		t.Errorf("epoch %d after the move, want 2", g.Status.Epoch)
	}
	if op := g.Status.Operation; op.Kind != wp.OperationMove || op.From != f.a || op.To != f.b || op.Phase != wp.PhaseSucceeded {
		t.Errorf("operation %+v, want a Succeeded Move from %s to %s", op, f.a, f.b)
	}
	if _, ok := g.Annotations[wp.MoveToAnnotation]; ok {
		t.Error("the move-to annotation was not removed")
	}
	f.expectEvent(t, wp.MoveSucceededReason, "every resource is online on "+f.b)
	f.expectPodsStartedOnce(t)

	if c := meta.FindStatusCondition(g.Status.Conditions, wp.MoveAcceptedCondition); c == nil || c.Status != metav1.ConditionTrue ||
		c.Reason != wp.MoveStartedReason {
		t.Errorf("MoveAccepted %+v, want True %s", c, wp.MoveStartedReason)
	}

	// A move to a node outside the cluster is refused with a reason in status and an Event, and
	// nothing moves. The answer is in status by the time the request is removed.
	g = f.group(t)
	patch = client.MergeFrom(g.DeepCopy())
	g.Annotations = map[string]string{wp.MoveToAnnotation: "no-such-node"}
	must(t, k8sClient.Patch(context.Background(), g, patch))
	eventually(t, "the move-to annotation removed", func() error {
		g = f.group(t)
		if v, ok := g.Annotations[wp.MoveToAnnotation]; ok {
			return fmt.Errorf("annotation still %q", v)
		}
		return nil
	})
	if c := meta.FindStatusCondition(g.Status.Conditions, wp.MoveAcceptedCondition); c == nil || c.Status != metav1.ConditionFalse ||
		c.Reason != wp.UnknownNodeReason || c.Message != "move to no-such-node refused: it is not a node of the cluster" {
		t.Errorf("MoveAccepted %+v, want False %s", c, wp.UnknownNodeReason)
	}
	f.expectEvent(t, wp.MoveFailedReason, "move to no-such-node refused: it is not a node of the cluster")
	if g := f.waitOnline(t, f.b); g.Status.Epoch != 2 {
		t.Errorf("epoch %d after a refused move, want 2", g.Status.Epoch)
	}
}

func TestNodeLossFailsTheGroupOver(t *testing.T) {
	f := newFixture(t)
	startManager(t)
	f.waitOnline(t, f.a)
	w := f.watch(t)

	must(t, f.kubelet.Kill(context.Background(), f.a))
	g := f.waitOnline(t, f.b)
	w.check(t)
	if g.Status.Epoch != 2 {
		t.Errorf("epoch %d after the failover, want 2", g.Status.Epoch)
	}
	if op := g.Status.Operation; op.Kind != wp.OperationFailover || op.From != f.a || op.To != f.b {
		t.Errorf("operation %+v, want a Failover from %s to %s", op, f.a, f.b)
	}
	if len(g.Status.RecentFailovers) != 1 {
		t.Errorf("recentFailovers %v, want one", g.Status.RecentFailovers)
	}
	f.expectEvent(t, wp.OwnerDownReason, "failing over to "+f.b)
	if got := metricValue(t, "wolfpack_group_failovers_total", map[string]string{"namespace": f.ns, "group": "sql", "reason": wp.OwnerDownReason}); got != 1 {
		t.Errorf("wolfpack_group_failovers_total = %v, want 1", got)
	}
	if got := metricValue(t, "wolfpack_group_state", map[string]string{"namespace": f.ns, "group": "sql", "state": string(wp.GroupOnline)}); got != 1 {
		t.Errorf("wolfpack_group_state{state=Online} = %v, want 1", got)
	}
}

// metricValue reads a counter or gauge with the given labels from the manager's registry.
func metricValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	must(t, err)
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
	next:
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

func TestBadInputLeavesTheRestOfTheGroupAlone(t *testing.T) {
	f := newFixture(t)
	startManager(t)
	before := f.waitOnline(t, f.a)
	ctx := context.Background()

	cases := []struct {
		name    string
		objects []client.Object
		update  func(g *wp.ResourceGroup)
		reason  string
		message string
	}{
		{
			name: "dependency cycle",
			objects: []client.Object{
				resourceIn(f.ns, "x", "y"), resourceIn(f.ns, "y", "x"),
			},
			reason:  wp.DependencyCycleReason,
			message: "dependency cycle: x -> y -> x",
		},
		{
			name:    "dependency on a missing resource",
			objects: []client.Object{resourceIn(f.ns, "z", "ghost")},
			reason:  wp.MissingDependencyReason,
			message: `resource "z" depends on "ghost", which does not exist`,
		},
		{
			name: "dependency on a resource of another group",
			objects: []client.Object{
				builder.Group(f.ns, "other").Cluster(f.cluster).DesiredState(wp.DesiredOffline).Obj(),
				builder.Resource(f.ns, "o1").Group("other").Volume("sql-data").Obj(),
				resourceIn(f.ns, "f", "o1"),
			},
			reason:  wp.ForeignDependencyReason,
			message: `resource "f" depends on "o1", which belongs to group "other"`,
		},
		{
			name:    "unknown preferred owner",
			update:  func(g *wp.ResourceGroup) { g.Spec.PreferredOwners = append(g.Spec.PreferredOwners, "no-such-node") },
			reason:  wp.UnknownNodeReason,
			message: "no-such-node named in preferredOwners or possibleOwners is not in cluster " + f.cluster,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, o := range tc.objects {
				must(t, k8sClient.Create(ctx, o))
			}
			var saved []string
			if tc.update != nil {
				g := f.group(t)
				saved = g.Spec.PreferredOwners
				tc.update(g)
				must(t, k8sClient.Update(ctx, g))
			}
			eventually(t, "Valid False with "+tc.reason, func() error {
				c := meta.FindStatusCondition(f.group(t).Status.Conditions, wp.ValidCondition)
				if c == nil || c.Status != metav1.ConditionFalse || c.Reason != tc.reason || !strings.Contains(c.Message, tc.message) {
					return fmt.Errorf("Valid condition %+v", c)
				}
				return nil
			})
			f.expectEvent(t, tc.reason, tc.message)
			g := f.group(t)
			if g.Status.OwnerNode != f.a || g.Status.Epoch != before.Status.Epoch || g.Status.State != wp.GroupOnline {
				t.Errorf("the group changed: %s on %q at epoch %d", g.Status.State, g.Status.OwnerNode, g.Status.Epoch)
			}
			f.expectPodsStartedOnce(t)

			// Undo, and the group is valid again.
			for _, o := range tc.objects {
				must(t, k8sClient.Delete(ctx, o))
			}
			if tc.update != nil {
				g := f.group(t)
				g.Spec.PreferredOwners = saved
				must(t, k8sClient.Update(ctx, g))
			}
			eventually(t, "Valid True again", func() error {
				c := meta.FindStatusCondition(f.group(t).Status.Conditions, wp.ValidCondition)
				if c == nil || c.Status != metav1.ConditionTrue {
					return fmt.Errorf("Valid condition %+v", c)
				}
				return nil
			})
		})
	}
}

// resourceIn is a resource of the group sql, on the claim sql-data, that depends on deps.
func resourceIn(ns, name string, deps ...string) *wp.Resource {
	return builder.Resource(ns, name).Group("sql").DependsOn(deps...).Volume("sql-data").Obj()
}

// expectEvent waits for an events.k8s.io Event on the group with reason and a note containing
// note.
func (f *fixture) expectEvent(t *testing.T, reason, note string) {
	t.Helper()
	eventually(t, "Event "+reason, func() error {
		var list eventsv1.EventList
		if err := k8sClient.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Kind == "ResourceGroup" && e.Reason == reason && strings.Contains(e.Note, note) {
				return nil
			}
		}
		return fmt.Errorf("no such Event among %d", len(list.Items))
	})
}

// expectPodsStartedOnce fails when a pod was started twice.
func (f *fixture) expectPodsStartedOnce(t *testing.T) {
	t.Helper()
	for name, n := range f.kubelet.Started() {
		if n != 1 {
			t.Errorf("pod %s was started %d times", name, n)
		}
	}
}

// server reads the group's resource "server".
func (f *fixture) server(t *testing.T) *wp.Resource {
	t.Helper()
	r := &wp.Resource{}
	must(t, k8sClient.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "server"}, r))
	return r
}

// failUntilExhausted fails the server's pod on node until its restarts there are used up: three
// restarts, then a fourth failure.
func (f *fixture) failUntilExhausted(t *testing.T, node string) {
	t.Helper()
	ctx := context.Background()
	for i := int32(1); i <= 4; i++ {
		eventually(t, fmt.Sprintf("server running on %s before failure %d", node, i), func() error {
			r := f.server(t)
			if r.Status.State != wp.ResourceOnline || r.Status.Node != node {
				return fmt.Errorf("server is %s on %q", r.Status.State, r.Status.Node)
			}
			return f.kubelet.Fail(ctx, "server")
		})
		if i == 4 {
			return
		}
		eventually(t, fmt.Sprintf("restart %d of server", i), func() error {
			r := f.server(t)
			if r.Status.Restarts != i {
				return fmt.Errorf("server has %d restarts", r.Status.Restarts)
			}
			return nil
		})
	}
}

func TestFailingResourceRestartsThenFailsOverThenStaysFailed(t *testing.T) {
	f := newFixture(t)
	startManager(t)
	f.waitOnline(t, f.a)

	// Three restarts on a, then the group fails over to b.
	f.failUntilExhausted(t, f.a)
	g := f.waitOnline(t, f.b)
	if op := g.Status.Operation; op.Kind != wp.OperationFailover || g.Status.Epoch != 2 {
		t.Errorf("operation %+v at epoch %d, want a Failover at epoch 2", op, g.Status.Epoch)
	}
	f.expectEvent(t, wp.RestartThresholdExceededReason, "failing over to "+f.b)
	if r := f.server(t); r.Status.Restarts != 0 {
		t.Errorf("server has %d restarts on the new owner, want 0", r.Status.Restarts)
	}

	// The same on b: the sample allows one failover per 6h, so the group stays Failed.
	f.failUntilExhausted(t, f.b)
	eventually(t, "group Failed", func() error {
		g = f.group(t)
		c := meta.FindStatusCondition(g.Status.Conditions, wp.FailoverAllowedCondition)
		if g.Status.State != wp.GroupFailed || c == nil || c.Status != metav1.ConditionFalse || c.Reason != wp.FailoverThresholdExceededReason {
			return fmt.Errorf("group %s, FailoverAllowed %+v", g.Status.State, c)
		}
		if !strings.Contains(c.Message, "already failed over 1 times within 6h0m0s") {
			return fmt.Errorf("FailoverAllowed message %q does not say why", c.Message)
		}
		return nil
	})
	if g.Status.OwnerNode != f.b || g.Status.Epoch != 2 {
		t.Errorf("the failed group moved: owner %q epoch %d", g.Status.OwnerNode, g.Status.Epoch)
	}
	f.expectEvent(t, wp.FailoverThresholdExceededReason, "stays Failed until an administrator acts")
}

func TestRestartedManagerFinishesTheMove(t *testing.T) {
	f := newFixture(t)
	stop := startManager(t)
	f.waitOnline(t, f.a)

	// Hold node a's pods so that the move stops half-way, then stop the manager there.
	f.kubelet.Pause(f.a, true)
	g := f.group(t)
	patch := client.MergeFrom(g.DeepCopy())
	g.Annotations = map[string]string{wp.MoveToAnnotation: f.b}
	must(t, k8sClient.Patch(context.Background(), g, patch))
	eventually(t, "the move under way", func() error {
		g = f.group(t)
		if op := g.Status.Operation; op == nil || op.Kind != wp.OperationMove || op.Phase != wp.PhaseTakingOffline {
			return fmt.Errorf("operation %+v", op)
		}
		if r := f.server(t); r.Status.State != wp.ResourceOfflinePending {
			return fmt.Errorf("server is %s", r.Status.State)
		}
		return nil
	})
	stop()
	checkpoint := f.group(t).Status.Operation

	w := f.watch(t)
	f.kubelet.Pause(f.a, false)
	startManager(t)
	g = f.waitOnline(t, f.b)
	w.check(t)
	if op := g.Status.Operation; op.Kind != wp.OperationMove || !op.StartedAt.Equal(&checkpoint.StartedAt) || g.Status.Epoch != 2 {
		t.Errorf("operation %+v at epoch %d; want the Move started at %v finished at epoch 2", op, g.Status.Epoch, checkpoint.StartedAt)
	}
	f.expectPodsStartedOnce(t)
}

func TestFailbackOnlyInsideTheWindow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g := f.group(t)
	g.Spec.Failback = wp.FailbackSpec{Policy: wp.FailbackAllow, WindowStart: ptr.To[int32](1), WindowEnd: ptr.To[int32](5)}
	must(t, k8sClient.Update(ctx, g))

	// The Failover Manager's clock: tomorrow at noon, outside the window [01:00, 05:00).
	tomorrow := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	clk := clocktesting.NewFakePassiveClock(tomorrow.Add(12 * time.Hour))
	startManagerWithClock(t, clk)
	f.waitOnline(t, f.a)

	must(t, f.kubelet.Kill(ctx, f.a))
	f.waitOnline(t, f.b)
	must(t, f.kubelet.Revive(ctx, f.a))

	// Node a is back, but it is noon: the group stays on b.
	time.Sleep(3 * time.Second)
	if g := f.waitOnline(t, f.b); g.Status.Operation.Kind != wp.OperationFailover {
		t.Fatalf("outside the window the group did %+v", g.Status.Operation)
	}

	// At 03:00 it fails back. The manager looks again every minute; a change to the group makes
	// it look at once.
	clk.SetTime(tomorrow.Add(27 * time.Hour))
	g = f.group(t)
	patch := client.MergeFrom(g.DeepCopy())
	g.Labels = map[string]string{"touched": "yes"}
	must(t, k8sClient.Patch(ctx, g, patch))
	g = f.waitOnline(t, f.a)
	if op := g.Status.Operation; op.Kind != wp.OperationFailback || g.Status.Epoch != 3 {
		t.Errorf("operation %+v at epoch %d, want a Failback at epoch 3", op, g.Status.Epoch)
	}
	f.expectEvent(t, "Failback", "failing back from "+f.b+" to preferred owner "+f.a)
}
