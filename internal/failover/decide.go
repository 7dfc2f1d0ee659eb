package failover

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// failbackRecheck is how often a group that may fail back looks at its window again.
const failbackRecheck = time.Minute

// fenceRecheck is how often a group whose owner is Down but not yet fenced is looked at again,
// besides on every change of its cluster's status.
const fenceRecheck = 5 * time.Second

// Decide is a group's next step from its objects, at now (see Observe and Next), with the
// group's conditions, resource summary and observedGeneration in the outcome's status. When the
// objects are inconsistent together nothing moves: the status keeps its state, and Valid (and
// so Ready) says why.
func Decide(objs Objects, now time.Time) Outcome {
	obs, invalid := Observe(objs, now)
	var out Outcome
	if invalid != nil {
		out = Outcome{Status: *objs.Group.Status.DeepCopy()}
	} else {
		out = Next(obs)
		out.Requeue = requeue(obs, out)
	}
	s := &out.Status
	setValid(s, invalid)
	if invalid == nil {
		setPlaced(s, out)
		setFailoverAllowed(s, out)
	}
	setMoveAccepted(s, out.Move)
	setReady(s, objs.Group.Spec.StateOrDefault())
	s.Resources = Summary(obs.Resources)
	s.ObservedGeneration = objs.Group.Generation
	return out
}

// requeue is when time alone changes the group's next step.
func requeue(o Observed, out Outcome) time.Duration {
	switch recent := out.Status.RecentFailovers; {
	case out.WaitingForFence:
		// The Membership Manager's verdict arrives with the QuorumDisk's status, which the
		// Failover Manager watches; this is only a backstop.
		return fenceRecheck
	case o.Failback.Policy == wolfpackv1alpha1.FailbackAllow:
		return failbackRecheck
	case out.Blocked != nil && out.Blocked.Reason == wolfpackv1alpha1.FailoverThresholdExceededReason && len(recent) > 0:
		// The oldest failover leaves the period then.
		return max(recent[0].Add(o.FailoverPeriod).Sub(o.Now), time.Second)
	}
	return 0
}

// setValid sets Valid: False with why when the group's objects are inconsistent together.
func setValid(s *wolfpackv1alpha1.ResourceGroupStatus, invalid *metav1.Condition) {
	c := metav1.Condition{Type: wolfpackv1alpha1.ValidCondition, Status: metav1.ConditionTrue,
		Reason: wolfpackv1alpha1.AsExpectedReason, Message: "dependencies and owners are consistent"}
	if invalid != nil {
		c = *invalid
	}
	meta.SetStatusCondition(&s.Conditions, c)
}

// setPlaced sets Placed: True while the group has an owner, False when it cannot be placed.
func setPlaced(s *wolfpackv1alpha1.ResourceGroupStatus, out Outcome) {
	c := metav1.Condition{Type: wolfpackv1alpha1.PlacedCondition, Status: metav1.ConditionTrue,
		Reason: wolfpackv1alpha1.AsExpectedReason, Message: "owned by " + s.OwnerNode}
	switch {
	case out.Blocked != nil && out.Blocked.Reason == wolfpackv1alpha1.FailoverThresholdExceededReason:
		// FailoverAllowed says it; the group stays where it is.
	case out.Blocked != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, out.Blocked.Reason, out.Blocked.Message
	case s.OwnerNode == "":
		c.Status, c.Message = metav1.ConditionFalse, "the group has no owner"
	}
	meta.SetStatusCondition(&s.Conditions, c)
}

// setFailoverAllowed sets FailoverAllowed: False once the group used up its failovers.
func setFailoverAllowed(s *wolfpackv1alpha1.ResourceGroupStatus, out Outcome) {
	c := metav1.Condition{Type: wolfpackv1alpha1.FailoverAllowedCondition, Status: metav1.ConditionTrue,
		Reason: wolfpackv1alpha1.AsExpectedReason, Message: fmt.Sprintf("%d failovers in the current period", len(s.RecentFailovers))}
	if out.Blocked != nil && out.Blocked.Reason == wolfpackv1alpha1.FailoverThresholdExceededReason {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, out.Blocked.Reason, out.Blocked.Message
	}
	meta.SetStatusCondition(&s.Conditions, c)
}

// setMoveAccepted sets MoveAccepted from the answer to the move request this step handled; it
// stays as it was when there was none.
func setMoveAccepted(s *wolfpackv1alpha1.ResourceGroupStatus, answer *MoveAnswer) {
	if answer == nil {
		return
	}
	c := metav1.Condition{Type: wolfpackv1alpha1.MoveAcceptedCondition, Status: metav1.ConditionTrue,
		Reason: answer.Reason, Message: answer.Message()}
	if !answer.Accepted {
		c.Status = metav1.ConditionFalse
	}
	meta.SetStatusCondition(&s.Conditions, c)
}

// setReady sets Ready: True when the group is in the state its spec asks for; when the group is
// inconsistent, False with Valid's reason.
func setReady(s *wolfpackv1alpha1.ResourceGroupStatus, desired wolfpackv1alpha1.DesiredState) {
	c := metav1.Condition{Type: wolfpackv1alpha1.ReadyCondition, Status: metav1.ConditionFalse,
		Reason: wolfpackv1alpha1.ReconcilingReason, Message: fmt.Sprintf("the group is %s, desired %s", s.State, desired)}
	want := wolfpackv1alpha1.GroupOnline
	if desired == wolfpackv1alpha1.DesiredOffline {
		want = wolfpackv1alpha1.GroupOffline
	}
	if valid := meta.FindStatusCondition(s.Conditions, wolfpackv1alpha1.ValidCondition); valid != nil && valid.Status == metav1.ConditionFalse {
		c.Reason, c.Message = valid.Reason, valid.Message
	} else if s.State == want {
		c.Status, c.Reason = metav1.ConditionTrue, wolfpackv1alpha1.AsExpectedReason
	}
	meta.SetStatusCondition(&s.Conditions, c)
}

// ConditionEvents are the warnings to tell when the group's Valid, Placed or FailoverAllowed
// condition turns False, or False for another reason, between before and after.
func ConditionEvents(before, after []metav1.Condition) []Event {
	var out []Event
	for _, t := range []string{wolfpackv1alpha1.ValidCondition, wolfpackv1alpha1.PlacedCondition, wolfpackv1alpha1.FailoverAllowedCondition} {
		c, was := meta.FindStatusCondition(after, t), meta.FindStatusCondition(before, t)
		if c != nil && c.Status == metav1.ConditionFalse && (was == nil || was.Status != c.Status || was.Reason != c.Reason) {
			out = append(out, Event{Warning: true, Reason: c.Reason, Message: c.Message})
		}
	}
	return out
}
