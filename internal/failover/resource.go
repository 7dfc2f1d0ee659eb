package failover

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// The Resource Manager's decisions that need no handler.

// RestartPolicyOf is the resource's restart policy with the defaults filled in.
func RestartPolicyOf(res *wolfpackv1alpha1.Resource) RestartPolicy {
	p := res.Spec.RestartPolicy
	return RestartPolicy{Action: p.ActionOrDefault(), Threshold: p.ThresholdOrDefault(), Period: p.PeriodOrDefault(), Delay: p.DelayOrDefault()}
}

// PendingTooLong says whether the resource has been pending for longer than its pendingTimeout
// at now: since it stopped being Ready, or since its last failure if that came later.
func PendingTooLong(res *wolfpackv1alpha1.Resource, now time.Time) bool {
	ready := meta.FindStatusCondition(res.Status.Conditions, wolfpackv1alpha1.ReadyCondition)
	if ready == nil || ready.Status != metav1.ConditionFalse {
		return false
	}
	since := ready.LastTransitionTime.Time
	if f := res.Status.LastFailure; f != nil && f.Time.After(since) {
		since = f.Time.Time
	}
	return now.Sub(since) > res.Spec.PendingTimeoutOrDefault()
}

// Restarting says whether the resource is being restarted on node after a failure there, and
// taking it offline has not yet gone through: the failure is counted, and only the restart's
// offline step is left to do again.
func Restarting(s *wolfpackv1alpha1.ResourceStatus, node string) bool {
	return s.State == wolfpackv1alpha1.ResourceOfflinePending && s.Node == node && s.LastFailure != nil && s.LastFailure.Node == node
}

// SetResourceConditions sets the resource's Ready and Healthy conditions from its state: Ready
// while it is Online or Offline as it should be (False with Valid's reason when its group is
// inconsistent), Healthy unless it Failed.
func SetResourceConditions(s *wolfpackv1alpha1.ResourceStatus) {
	setResourceReady(s)
	setHealthy(s)
}

func setResourceReady(s *wolfpackv1alpha1.ResourceStatus) {
	c := metav1.Condition{Type: wolfpackv1alpha1.ReadyCondition, Status: metav1.ConditionFalse,
		Reason: wolfpackv1alpha1.ReconcilingReason, Message: "the resource is " + string(s.State)}
	if valid := meta.FindStatusCondition(s.Conditions, wolfpackv1alpha1.ValidCondition); valid != nil && valid.Status == metav1.ConditionFalse {
		c.Reason, c.Message = valid.Reason, valid.Message
	} else if s.State == wolfpackv1alpha1.ResourceOnline || s.State == wolfpackv1alpha1.ResourceOffline {
		c.Status, c.Reason = metav1.ConditionTrue, wolfpackv1alpha1.AsExpectedReason
	}
	meta.SetStatusCondition(&s.Conditions, c)
}

func setHealthy(s *wolfpackv1alpha1.ResourceStatus) {
	c := metav1.Condition{Type: wolfpackv1alpha1.HealthyCondition, Status: metav1.ConditionTrue,
		Reason: wolfpackv1alpha1.AsExpectedReason, Message: "no failure"}
	if s.State == wolfpackv1alpha1.ResourceFailed && s.LastFailure != nil {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, s.LastFailure.Reason, s.LastFailure.Message
	}
	meta.SetStatusCondition(&s.Conditions, c)
}

// OfflineStop is how the Resource Manager takes a resource offline on the node it ran on.
type OfflineStop int

const (
	// StopGracefully asks the resource to stop (a pod deleted with its grace period) and counts
	// it offline only once it is gone.
	StopGracefully OfflineStop = iota
	// StopOverdue is StopGracefully past pendingTimeout on a node that is not fenced: the
	// resource is still not offline, which is reported, and its graceful stop retried. It is
	// never forced and never counted offline before it is gone: its node may still run it.
	StopOverdue
	// StopAtOnce terminates the resource without grace: its node is fenced and can no longer
	// run it.
	StopAtOnce
)

// OfflineStopOf decides how to take the resource offline on a node: at once only where the node
// is fenced (membership.Fenced), gracefully otherwise, however long that takes. MSCS terminates a
// resource that does not go offline within its pending timeout; on a live node that would let
// the group start elsewhere while its processes still run (a database with a long termination
// grace, a hung kubelet), so Wolfpack reports the overrun instead.
func OfflineStopOf(res *wolfpackv1alpha1.Resource, nodeFenced bool, now time.Time) OfflineStop {
	switch {
	case nodeFenced:
		return StopAtOnce
	case res.Status.State == wolfpackv1alpha1.ResourceOfflinePending && PendingTooLong(res, now):
		return StopOverdue
	default:
		return StopGracefully
	}
}
