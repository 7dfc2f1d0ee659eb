package failover

import (
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// conditionsOf is type=status/reason of each condition.
func conditionsOf(cs []metav1.Condition) map[string]string {
	out := map[string]string{}
	for _, c := range cs {
		out[c.Type] = string(c.Status) + "/" + c.Reason
	}
	return out
}

func TestDecide(t *testing.T) {
	t.Parallel()
	onA := func(o *Objects) {
		o.Group.Status = wp.ResourceGroupStatus{State: wp.GroupOnline, OwnerNode: "a", Epoch: 1}
		for i := range o.Resources {
			o.Resources[i].Status = wp.ResourceStatus{State: wp.ResourceOnline, Node: "a"}
		}
	}
	cases := []struct {
		name    string
		change  func(*Objects)
		want    map[string]string // conditions, type=status/reason; absent types must be absent
		state   wp.GroupState
		requeue time.Duration
	}{
		{name: "online on its owner", change: onA, state: wp.GroupOnline, want: map[string]string{
			wp.ValidCondition: "True/AsExpected", wp.PlacedCondition: "True/AsExpected", wp.FailoverAllowedCondition: "True/AsExpected",
			wp.ReadyCondition: "True/AsExpected"}},
		{name: "new group coming online", state: wp.GroupPending, want: map[string]string{
			wp.ValidCondition: "True/AsExpected", wp.PlacedCondition: "True/AsExpected", wp.FailoverAllowedCondition: "True/AsExpected",
			wp.ReadyCondition: "False/Reconciling"}},
		{name: "no node for it", change: func(o *Objects) { o.Cluster.Status.Nodes[0].State = wp.NodeDown }, state: wp.GroupOffline,
			want: map[string]string{wp.ValidCondition: "True/AsExpected", wp.PlacedCondition: "False/NoEligibleNode",
				wp.FailoverAllowedCondition: "True/AsExpected", wp.ReadyCondition: "False/Reconciling"}},
		{name: "a refused move", change: func(o *Objects) {
			onA(o)
			o.Group.Annotations = map[string]string{wp.MoveToAnnotation: "b"}
		}, state: wp.GroupOnline, want: map[string]string{wp.ValidCondition: "True/AsExpected", wp.PlacedCondition: "True/AsExpected",
			wp.FailoverAllowedCondition: "True/AsExpected", wp.MoveAcceptedCondition: "False/NodeNotUp", wp.ReadyCondition: "True/AsExpected"}},
		{name: "an accepted move", change: func(o *Objects) {
			onA(o)
			o.Cluster.Status.Nodes[1] = wp.NodeStatus{Name: "b", State: wp.NodeUp}
			o.Group.Annotations = map[string]string{wp.MoveToAnnotation: "b"}
		}, state: wp.GroupPending, want: map[string]string{wp.ValidCondition: "True/AsExpected", wp.PlacedCondition: "True/AsExpected",
			wp.FailoverAllowedCondition: "True/AsExpected", wp.MoveAcceptedCondition: "True/MoveStarted", wp.ReadyCondition: "False/Reconciling"}},
		{name: "inconsistent: nothing moves, Ready says why", change: func(o *Objects) {
			onA(o)
			o.Group.Status.Conditions = []metav1.Condition{{Type: wp.PlacedCondition, Status: metav1.ConditionTrue, Reason: wp.AsExpectedReason}}
			o.Cluster = nil
		}, state: wp.GroupOnline, want: map[string]string{wp.ValidCondition: "False/ClusterNotFound", wp.PlacedCondition: "True/AsExpected",
			wp.ReadyCondition: "False/ClusterNotFound"}},
		{name: "owner Down, not yet fenced: look again as a backstop", change: func(o *Objects) {
			onA(o)
			o.Cluster.Status.Nodes[0] = wp.NodeStatus{Name: "a", State: wp.NodeDown, Since: metav1.NewTime(t0)}
			o.Cluster.Status.Nodes[1].State = wp.NodeUp
		}, state: wp.GroupOnline, requeue: fenceRecheck, want: map[string]string{wp.ValidCondition: "True/AsExpected",
			wp.PlacedCondition: "True/AsExpected", wp.FailoverAllowedCondition: "True/AsExpected", wp.ReadyCondition: "True/AsExpected"}},
		{name: "failovers used up: look again when the oldest leaves the period", change: func(o *Objects) {
			onA(o)
			o.Group.Status.RecentFailovers = []metav1.Time{metav1.NewTime(t0.Add(-5 * time.Hour))}
			o.Cluster.Status.Nodes[0] = wp.NodeStatus{Name: "a", State: wp.NodeDown, Since: metav1.NewTime(t0.Add(-time.Hour)), Fenced: true}
			o.Cluster.Status.Nodes[1] = wp.NodeStatus{Name: "b", State: wp.NodeUp}
		}, state: wp.GroupFailed, requeue: time.Hour, want: map[string]string{wp.ValidCondition: "True/AsExpected",
			wp.PlacedCondition: "True/AsExpected", wp.FailoverAllowedCondition: "False/FailoverThresholdExceeded", wp.ReadyCondition: "False/Reconciling"}},
		{name: "failback allowed: look again every minute", change: func(o *Objects) {
			onA(o)
			o.Group.Spec.Failback.Policy = wp.FailbackAllow
		}, state: wp.GroupOnline, requeue: time.Minute, want: map[string]string{wp.ValidCondition: "True/AsExpected",
			wp.PlacedCondition: "True/AsExpected", wp.FailoverAllowedCondition: "True/AsExpected", wp.ReadyCondition: "True/AsExpected"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := objects()
			if tc.change != nil {
				tc.change(&objs)
			}
			before := objs.Group.DeepCopy()
			out := Decide(objs, t0)
			got := conditionsOf(out.Status.Conditions)
			if len(got) != len(tc.want) {
				t.Errorf("conditions %v, want %v", got, tc.want)
			}
			for typ, w := range tc.want {
				if got[typ] != w {
					t.Errorf("%s is %s, want %s", typ, got[typ], w)
				}
			}
			if out.Status.State != tc.state || out.Requeue != tc.requeue || out.Status.ObservedGeneration != 3 || len(out.Status.Resources) != 3 {
				t.Errorf("state %s requeue %v observedGeneration %d resources %v; want %s %v 3 and 3",
					out.Status.State, out.Requeue, out.Status.ObservedGeneration, out.Status.Resources, tc.state, tc.requeue)
			}
			if c := meta.FindStatusCondition(out.Status.Conditions, wp.MoveAcceptedCondition); c != nil && c.Message == "" {
				t.Error("MoveAccepted without a message")
			}
			if len(objs.Group.Status.Conditions) != len(before.Status.Conditions) {
				t.Error("Decide changed its input")
			}
		})
	}
}

func TestConditionEvents(t *testing.T) {
	t.Parallel()
	c := func(typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: typ + " " + reason}
	}
	placed := c(wp.PlacedCondition, metav1.ConditionTrue, wp.AsExpectedReason)
	noNode := c(wp.PlacedCondition, metav1.ConditionFalse, wp.NoEligibleNodeReason)
	for _, tc := range []struct {
		name          string
		before, after []metav1.Condition
		want          []string
	}{
		{"nothing False", nil, []metav1.Condition{placed}, nil},
		{"turns False", []metav1.Condition{placed}, []metav1.Condition{noNode}, []string{wp.NoEligibleNodeReason}},
		{"False from the start", nil, []metav1.Condition{noNode}, []string{wp.NoEligibleNodeReason}},
		{"stays False for the same reason: told once", []metav1.Condition{noNode}, []metav1.Condition{noNode}, nil},
		{"False for another reason", []metav1.Condition{noNode}, []metav1.Condition{c(wp.PlacedCondition, metav1.ConditionFalse, wp.OwnerDownReason)},
			[]string{wp.OwnerDownReason}},
		{"Ready is not told", nil, []metav1.Condition{c(wp.ReadyCondition, metav1.ConditionFalse, wp.ReconcilingReason)}, nil},
		{"Valid and FailoverAllowed are", nil, []metav1.Condition{c(wp.ValidCondition, metav1.ConditionFalse, wp.DependencyCycleReason),
			c(wp.FailoverAllowedCondition, metav1.ConditionFalse, wp.FailoverThresholdExceededReason)},
			[]string{wp.DependencyCycleReason, wp.FailoverThresholdExceededReason}},
	} {
		got := ConditionEvents(tc.before, tc.after)
		reasons := make([]string, 0, len(got))
		for _, e := range got {
			reasons = append(reasons, e.Reason)
			if !e.Warning || e.Message == "" {
				t.Errorf("%s: event %+v", tc.name, e)
			}
		}
		if !slices.Equal(reasons, tc.want) {
			t.Errorf("%s: ConditionEvents = %v, want %v", tc.name, reasons, tc.want)
		}
	}
}

// TestAgentRestartMovesNothing: an agent restarts on the owner (a new incarnation, not Joined for
// a detection period, its Lease never run out). While it was away its node may have been Down
// for a moment, and it is Joining after: however long either lasts, the Membership Manager does
// not count it as fenced, so the group stays and no failover is counted.
func TestAgentRestartMovesNothing(t *testing.T) {
	t.Parallel()
	for _, owner := range []wp.NodeStatus{
		{Name: "a", State: wp.NodeDown, Since: metav1.NewTime(t0.Add(-time.Hour)), Message: "heard by none of its peers"},
		{Name: "a", State: wp.NodeJoining, Since: metav1.NewTime(t0.Add(-time.Hour))},
	} {
		objs := objects()
		objs.Group.Status = wp.ResourceGroupStatus{State: wp.GroupOnline, OwnerNode: "a", Epoch: 1}
		for i := range objs.Resources {
			objs.Resources[i].Status = wp.ResourceStatus{State: wp.ResourceOnline, Node: "a"}
		}
		objs.Cluster.Status.Nodes[0] = owner
		objs.Cluster.Status.Nodes[1] = wp.NodeStatus{Name: "b", State: wp.NodeUp}
		out := Decide(objs, t0)
		if out.Status.Operation != nil || len(out.Status.RecentFailovers) != 0 || out.Status.OwnerNode != "a" || out.Status.Epoch != 1 {
			t.Errorf("owner %s for an hour, not fenced: operation %+v, recent failovers %v, owner %s epoch %d",
				owner.State, out.Status.Operation, out.Status.RecentFailovers, out.Status.OwnerNode, out.Status.Epoch)
		}
		if len(out.Events) != 0 {
			t.Errorf("owner %s: events %+v", owner.State, out.Events)
		}
	}
}
