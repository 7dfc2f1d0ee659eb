package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/controllers"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
)

// holdsFor checks, every 100 ms for d, that both nodes stay Up and unfenced and that the group
// stays on a with no operation since it came online there: nothing the test did may count
// against a healthy node.
func (f *fixture) holdsFor(t *testing.T, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, name := range []string{f.a, f.b} {
			if n := f.node(t, name); n.State != wp.NodeUp || n.Fenced {
				t.Fatalf("healthy node %s is %s, fenced %v: %s", name, n.State, n.Fenced, n.Message)
			}
		}
		if g := f.group(t); g.Status.OwnerNode != f.a || len(g.Status.RecentFailovers) > 0 ||
			g.Status.Operation != nil && g.Status.Operation.Kind != wp.OperationOnline {
			t.Fatalf("the group moved: owner %s, operation %+v, recent failovers %v", g.Status.OwnerNode, g.Status.Operation, g.Status.RecentFailovers)
		}
	}
}

// TestPausedManagerExpiresNobody: the Membership Manager is paused for 12 s, longer than the
// 10 s lease, while the agents renew on (its clock jumps by 12 s at once, as a SIGSTOPped or
// starved process finds it on resuming). Every renewal it saw is 12 s old by its clock, yet no
// healthy node is declared Down: it observes for a whole lease again.
func TestPausedManagerExpiresNobody(t *testing.T) {
	f := newFixture(t)
	clk := clocktesting.NewFakeClock(time.Now())
	startManagerWith(t, func(o *controllers.Options) { o.MembershipClock = clk })
	f.waitOnline(t, f.a)
	f.waitNodes(t, map[string]wp.NodeState{f.a: wp.NodeUp, f.b: wp.NodeUp})

	clk.Step(12 * time.Second)
	f.holdsFor(t, 3*time.Second)
}

// TestForgedLeaseChangesNothing: a Lease named otherwise, labelled with the owner's node name
// and its cluster, held by the owner and renewed an hour ago (as anyone with an agent's token
// could write) is not the owner's Lease: the owner stays Up and keeps its group.
func TestForgedLeaseChangesNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	startManager(t)
	f.waitOnline(t, f.a)
	f.waitNodes(t, map[string]wp.NodeState{f.a: wp.NodeUp, f.b: wp.NodeUp})

	// Named to sort after the owner's own Lease, so that a manager keying Leases by label
	// would take it for the owner's.
	forged := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: envtest.LeaseNamespace, Name: "zz-forged-" + f.ns,
		Labels:      map[string]string{wp.ClusterLabel: f.cluster, wp.NodeLabel: f.a},
		Annotations: map[string]string{wp.ViewAnnotation: membership.View{Incarnation: 9, Joined: true}.Encode()}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(f.a), LeaseDurationSeconds: ptr.To[int32](10),
			RenewTime: ptr.To(metav1.NewMicroTime(time.Now().Add(-time.Hour)))}}
	must(t, k8sClient.Create(ctx, forged))
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), forged) })
	f.holdsFor(t, 4*time.Second)
	if n := f.node(t, f.a); strings.Contains(n.Message, "not renewed") || strings.Contains(n.Message, "no Lease") {
		t.Errorf("node a's message %q speaks of the forged Lease", n.Message)
	}
}
