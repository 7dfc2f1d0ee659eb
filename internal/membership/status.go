package membership

import (
	"fmt"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// HolderLease is the quorum holder's Lease as the manager observed it.
type HolderLease struct {
	// Name is the Lease's namespace/name, for messages.
	Name string
	// Holder is its holderIdentity: "" when the Lease is missing, released or never renewed.
	Holder string
	// Seen is when the manager first saw its current renewTime, by the manager's monotonic clock
	// (see Lease).
	Seen time.Time
	// Duration is the duration its holder published in it (spec.leaseDurationSeconds, see
	// LeaseDuration): the holder is judged by the duration it acts on.
	Duration time.Duration
	// Epoch is its epoch annotation, as written.
	Epoch string
}

// SetQuorum sets the quorum disk's owner and epoch in s from the quorum holder's Lease while it
// has not run out (its Age by now, counted from no earlier than observingSince, within its own
// Duration), with the Quorum condition. The epoch only goes up. It returns when the Lease runs
// out unless renewed again; zero when no node holds the disk.
func SetQuorum(s *wolfpackv1alpha1.QuorumDiskStatus, l HolderLease, now, observingSince time.Time) time.Time {
	s.Owner = ""
	if l.Holder == "" || Age(now, l.Seen, observingSince) > l.Duration {
		setQuorumCondition(s, metav1.ConditionFalse, "no node holds the quorum disk")
		return time.Time{}
	}
	epoch, err := strconv.ParseInt(l.Epoch, 10, 64)
	if err != nil || epoch < 0 {
		setQuorumCondition(s, metav1.ConditionFalse, fmt.Sprintf("no node holds the quorum disk; the quorum holder's Lease %s has no epoch %s: %q",
			l.Name, wolfpackv1alpha1.EpochAnnotation, l.Epoch))
		return time.Time{}
	}
	s.Owner, s.Epoch = l.Holder, max(s.Epoch, epoch)
	setQuorumCondition(s, metav1.ConditionTrue, fmt.Sprintf("node %s holds the quorum disk at epoch %d", l.Holder, epoch))
	return later(l.Seen, observingSince).Add(l.Duration)
}

func setQuorumCondition(s *wolfpackv1alpha1.QuorumDiskStatus, status metav1.ConditionStatus, message string) {
	reason := wolfpackv1alpha1.QuorumHeldReason
	if status != metav1.ConditionTrue {
		reason = wolfpackv1alpha1.QuorumLostReason
	}
	meta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: wolfpackv1alpha1.QuorumCondition, Status: status,
		Reason: reason, Message: message})
}

// SetReady sets the cluster's Ready condition: True while at least one member node is Up.
func SetReady(s *wolfpackv1alpha1.QuorumDiskStatus) {
	up := 0
	for _, n := range s.Nodes {
		if n.State == wolfpackv1alpha1.NodeUp {
			up++
		}
	}
	c := metav1.Condition{Type: wolfpackv1alpha1.ReadyCondition, Status: metav1.ConditionTrue,
		Reason: wolfpackv1alpha1.AsExpectedReason, Message: fmt.Sprintf("%d of %d member nodes Up", up, len(s.Nodes))}
	if up == 0 {
		c.Status, c.Reason = metav1.ConditionFalse, wolfpackv1alpha1.NoEligibleNodeReason
	}
	meta.SetStatusCondition(&s.Conditions, c)
}

// Reason is the Event reason of the change.
func (c Change) Reason() string {
	switch c.To {
	case wolfpackv1alpha1.NodeUp:
		return wolfpackv1alpha1.NodeUpReason
	case wolfpackv1alpha1.NodeDown:
		return wolfpackv1alpha1.NodeDownReason
	case wolfpackv1alpha1.NodePaused:
		return wolfpackv1alpha1.NodePausedReason
	default:
		return wolfpackv1alpha1.NodeJoiningReason
	}
}
