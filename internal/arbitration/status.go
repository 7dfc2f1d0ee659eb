package arbitration

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// Placed is what placing the quorum holder came to.
type Placed struct {
	// Target is the node the holder belongs on (HolderNode), "" for none; Why says why.
	Target, Why string
	// Running says that a live holder pod already runs there; Waiting, that the pod of that name
	// is still being deleted, so that the new one can only be created after it. Otherwise the
	// holder's pod was just created, unless Err.
	Running, Waiting bool
	// ClaimMissing says that spec.volumeClaim names no claim, so no holder can run.
	ClaimMissing bool
	// Err is why the holder's pod could not be created.
	Err error
}

// SetHolderRunning sets the HolderRunning condition from what placing the holder came to.
func SetHolderRunning(s *wolfpackv1alpha1.QuorumDiskStatus, qd *wolfpackv1alpha1.QuorumDisk, p Placed) {
	c := metav1.Condition{Type: wolfpackv1alpha1.HolderRunningCondition, Status: metav1.ConditionFalse}
	claim := qd.Spec.VolumeClaim
	switch {
	case p.ClaimMissing:
		c.Reason = wolfpackv1alpha1.ClaimNotFoundReason
		c.Message = fmt.Sprintf("spec.volumeClaim %s/%s: no such PersistentVolumeClaim, so no quorum holder runs", claim.Namespace, claim.Name)
	case p.Target == "":
		c.Reason, c.Message = wolfpackv1alpha1.NoEligibleNodeReason, "no quorum holder runs: "+p.Why
	case p.Err != nil:
		c.Reason = wolfpackv1alpha1.HolderFailedReason
		c.Message = fmt.Sprintf("creating quorum holder pod %s/%s on node %s: %v", claim.Namespace, PodName(qd.Name, p.Target), p.Target, p.Err)
	case p.Waiting:
		c.Reason = wolfpackv1alpha1.ReconcilingReason
		c.Message = fmt.Sprintf("waiting for the old quorum holder pod %s/%s on node %s to stop, to start it anew: %s",
			claim.Namespace, PodName(qd.Name, p.Target), p.Target, p.Why)
	case p.Running:
		c.Status, c.Reason = metav1.ConditionTrue, wolfpackv1alpha1.AsExpectedReason
		c.Message = fmt.Sprintf("the quorum holder runs on node %s: %s", p.Target, p.Why)
	default:
		c.Status, c.Reason = metav1.ConditionTrue, wolfpackv1alpha1.HolderPlacedReason
		c.Message = fmt.Sprintf("started the quorum holder on node %s: %s", p.Target, p.Why)
	}
	meta.SetStatusCondition(&s.Conditions, c)
}
