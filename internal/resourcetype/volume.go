package resourcetype

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// VolumeState is whether a volume resource can be used on the owner node.
type VolumeState string

const (
	// VolumeWaiting means the claim is not usable yet: unbound, or still attached elsewhere.
	VolumeWaiting VolumeState = "Waiting"
	// VolumeOnline means the claim is bound and attached to no node but the owner.
	VolumeOnline VolumeState = "Online"
	// VolumeFailed means the claim cannot serve as a failover disk.
	VolumeFailed VolumeState = "Failed"
)

// VolumeHealth decides whether a volume resource's claim may be used on node: it must be a
// ReadWriteOnce (or ReadWriteOncePod) claim, bound, and its volume must not be attached to
// another node (a VolumeAttachment that is attached, or not yet detached, on another node).
func VolumeHealth(pvc *corev1.PersistentVolumeClaim, attachments []storagev1.VolumeAttachment, node string) (VolumeState, string) {
	if pvc == nil {
		return VolumeWaiting, "the PersistentVolumeClaim does not exist"
	}
	modes := pvc.Spec.AccessModes
	if !slices.Contains(modes, corev1.ReadWriteOnce) && !slices.Contains(modes, corev1.ReadWriteOncePod) {
		return VolumeFailed, fmt.Sprintf("claim %s has access modes %v; a failover disk must be ReadWriteOnce", pvc.Name, modes)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return VolumeWaiting, fmt.Sprintf("claim %s is %s, not Bound", pvc.Name, pvc.Status.Phase)
	}
	for _, va := range attachments {
		pv := va.Spec.Source.PersistentVolumeName
		if pv == nil || *pv != pvc.Spec.VolumeName || va.Spec.NodeName == node {
			continue
		}
		// Attached, or detaching: either way the disk may still be in use on that node.
		if va.Status.Attached || va.DeletionTimestamp == nil {
			return VolumeWaiting, fmt.Sprintf("volume %s is still attached to node %s", pvc.Spec.VolumeName, va.Spec.NodeName)
		}
	}
	return VolumeOnline, fmt.Sprintf("claim %s is bound to %s and attached to no other node", pvc.Name, pvc.Spec.VolumeName)
}
