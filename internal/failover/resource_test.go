package failover

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
)

func TestRestartPolicyOf(t *testing.T) {
	t.Parallel()
	got := RestartPolicyOf(builder.Resource("ns", "r").Obj())
	if want := (RestartPolicy{Action: wp.RestartOrFailover, Threshold: 3, Period: 15 * time.Minute, Delay: 500 * time.Millisecond}); got != want {
		t.Errorf("defaults: %+v, want %+v", got, want)
	}
	set := builder.Resource("ns", "r").RestartPolicy(wp.RestartPolicy{Action: wp.DoNotRestart, Threshold: ptr.To[int32](0),
		Period: &metav1.Duration{Duration: time.Minute}, Delay: &metav1.Duration{Duration: 0}}).Obj()
	if got, want := RestartPolicyOf(set), (RestartPolicy{Action: wp.DoNotRestart, Period: time.Minute}); got != want {
		t.Errorf("set: %+v, want %+v", got, want)
	}
}

func TestPendingTooLong(t *testing.T) {
	t.Parallel()
	res := func(ready metav1.ConditionStatus, since time.Duration, failedAgo *time.Duration) *wp.Resource {
		r := builder.Resource("ns", "r").Conditions(metav1.Condition{Type: wp.ReadyCondition, Status: ready,
			LastTransitionTime: metav1.NewTime(t0.Add(-since))})
		if failedAgo != nil {
			r.LastFailure(wp.ResourceFailure{Time: metav1.NewTime(t0.Add(-*failedAgo))})
		}
		return r.Obj()
	}
	for _, tc := range []struct {
		name string
		res  *wp.Resource
		want bool
	}{
		{"not Ready for 2m of 3m", res(metav1.ConditionFalse, 2*time.Minute, nil), false},
		{"not Ready for 4m", res(metav1.ConditionFalse, 4*time.Minute, nil), true},
		{"Ready", res(metav1.ConditionTrue, time.Hour, nil), false},
		{"no Ready condition yet", &wp.Resource{}, false},
		{"a failure since restarts the count", res(metav1.ConditionFalse, 4*time.Minute, ptr.To(time.Minute)), false},
		{"a failure before does not", res(metav1.ConditionFalse, 4*time.Minute, ptr.To(5*time.Minute)), true},
	} {
		if got := PendingTooLong(tc.res, t0); got != tc.want {
			t.Errorf("%s: PendingTooLong = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRestarting(t *testing.T) {
	t.Parallel()
	failedOn := func(state wp.ResourceState, node, failedOn string) *wp.ResourceStatus {
		return &wp.ResourceStatus{State: state, Node: node, LastFailure: &wp.ResourceFailure{Node: failedOn}}
	}
	for _, tc := range []struct {
		name string
		s    *wp.ResourceStatus
		want bool
	}{
		{"going offline after a failure here", failedOn(wp.ResourceOfflinePending, "a", "a"), true},
		{"already coming back", failedOn(wp.ResourceOnlinePending, "a", "a"), false},
		{"the failure was on another node", failedOn(wp.ResourceOfflinePending, "a", "b"), false},
		{"going offline elsewhere", failedOn(wp.ResourceOfflinePending, "b", "b"), false},
		{"going offline without a failure", &wp.ResourceStatus{State: wp.ResourceOfflinePending, Node: "a"}, false},
	} {
		if got := Restarting(tc.s, "a"); got != tc.want {
			t.Errorf("%s: Restarting = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSetResourceConditions(t *testing.T) {
	t.Parallel()
	invalid := metav1.Condition{Type: wp.ValidCondition, Status: metav1.ConditionFalse, Reason: wp.MissingDependencyReason, Message: "no ip"}
	for _, tc := range []struct {
		name         string
		s            wp.ResourceStatus
		ready, healt string
	}{
		{"online", wp.ResourceStatus{State: wp.ResourceOnline}, "True/AsExpected", "True/AsExpected"},
		{"offline", wp.ResourceStatus{State: wp.ResourceOffline}, "True/AsExpected", "True/AsExpected"},
		{"pending", wp.ResourceStatus{State: wp.ResourceOnlinePending}, "False/Reconciling", "True/AsExpected"},
		{"restarting", wp.ResourceStatus{State: wp.ResourceOfflinePending, LastFailure: &wp.ResourceFailure{Reason: wp.LooksAliveFailedReason}},
			"False/Reconciling", "True/AsExpected"},
		{"failed", wp.ResourceStatus{State: wp.ResourceFailed, LastFailure: &wp.ResourceFailure{Reason: wp.RestartThresholdExceededReason, Message: "m"}},
			"False/Reconciling", "False/RestartThresholdExceeded"},
		{"its group is inconsistent", wp.ResourceStatus{State: wp.ResourceOnline, Conditions: []metav1.Condition{invalid}},
			"False/MissingDependency", "True/AsExpected"},
	} {
		s := tc.s
		SetResourceConditions(&s)
		got := conditionsOf(s.Conditions)
		if got[wp.ReadyCondition] != tc.ready || got[wp.HealthyCondition] != tc.healt {
			t.Errorf("%s: Ready %s Healthy %s; want %s %s", tc.name, got[wp.ReadyCondition], got[wp.HealthyCondition], tc.ready, tc.healt)
		}
		if c := meta.FindStatusCondition(s.Conditions, wp.ReadyCondition); c.Message == "" {
			t.Errorf("%s: Ready without a message", tc.name)
		}
	}
}

func TestOfflineStopOf(t *testing.T) {
	t.Parallel()
	res := func(state wp.ResourceState, pendingFor time.Duration) *wp.Resource {
		return builder.Resource("ns", "r").State(state).Node("a").Conditions(metav1.Condition{Type: wp.ReadyCondition,
			Status: metav1.ConditionFalse, LastTransitionTime: metav1.NewTime(t0.Add(-pendingFor))}).Obj()
	}
	for _, tc := range []struct {
		name   string
		res    *wp.Resource
		fenced bool
		want   OfflineStop
	}{
		{"going offline within pendingTimeout", res(wp.ResourceOfflinePending, time.Minute), false, StopGracefully},
		{"past pendingTimeout on a live node: reported, never forced", res(wp.ResourceOfflinePending, time.Hour), false, StopOverdue},
		{"past pendingTimeout on a fenced node", res(wp.ResourceOfflinePending, time.Hour), true, StopAtOnce},
		{"within pendingTimeout on a fenced node", res(wp.ResourceOfflinePending, time.Second), true, StopAtOnce},
		{"online, first asked to stop", res(wp.ResourceOnline, time.Hour), false, StopGracefully},
		{"online on a fenced node", res(wp.ResourceOnline, 0), true, StopAtOnce},
	} {
		if got := OfflineStopOf(tc.res, tc.fenced, t0); got != tc.want {
			t.Errorf("%s: OfflineStopOf = %v, want %v", tc.name, got, tc.want)
		}
	}
}
