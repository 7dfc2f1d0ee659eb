package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/arbitration"
	"github.com/wolfpack-ha/wolfpack/internal/failover"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch

// outOfService puts the out-of-service taint on the member nodes that are gone and takes
// Wolfpack's taint off those that are back (see arbitration.OutOfService). It returns when a
// Down node will count as fenced, zero when no node is waiting for that.
func (r *QuorumDiskReconciler) outOfService(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk, members []corev1.Node, now time.Time) (time.Time, error) {
	var next time.Time
	for i := range members {
		node := &members[i]
		status := memberStatus(qd, node.Name)
		if status == nil {
			continue
		}
		if wait, fenced := failover.FencedAfter(*status, now, r.FenceGrace); !fenced && status.State == wolfpackv1alpha1.NodeDown {
			if at := now.Add(wait); next.IsZero() || at.Before(next) {
				next = at
			}
		}
		change, why := arbitration.OutOfService(*status, node, now, r.FenceGrace)
		if change == arbitration.TaintKeep {
			continue
		}
		before := node.DeepCopy()
		reason, kind := wolfpackv1alpha1.OutOfServiceReason, corev1.EventTypeWarning
		if change == arbitration.TaintAdd {
			node.Spec.Taints = append(node.Spec.Taints, arbitration.OutOfServiceTaint)
			if node.Annotations == nil {
				node.Annotations = map[string]string{}
			}
			node.Annotations[arbitration.OutOfServiceAnnotation] = "true"
		} else {
			reason, kind = wolfpackv1alpha1.BackInServiceReason, corev1.EventTypeNormal
			node.Spec.Taints = slices.DeleteFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == arbitration.OutOfServiceTaint.Key })
			delete(node.Annotations, arbitration.OutOfServiceAnnotation)
		}
		if err := r.Patch(ctx, node, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return time.Time{}, fmt.Errorf("patching the out-of-service taint of node %s: %w", node.Name, err)
		}
		r.Recorder.Eventf(qd, node, kind, reason, "Taint", "%s: %s", why, taintEffect(change))
	}
	return next, nil
}

func taintEffect(c arbitration.TaintChange) string {
	if c == arbitration.TaintAdd {
		return "tainted node.kubernetes.io/out-of-service, so that Kubernetes deletes its pods and detaches its volumes"
	}
	return "removed the out-of-service taint"
}

func memberStatus(qd *wolfpackv1alpha1.QuorumDisk, name string) *wolfpackv1alpha1.NodeStatus {
	for i := range qd.Status.Nodes {
		if qd.Status.Nodes[i].Name == name {
			return &qd.Status.Nodes[i]
		}
	}
	return nil
}

// placeHolder runs the quorum holder pod on the node arbitration.HolderNode picks, and deletes
// the holder pods of other nodes. What it did or why it could not is added to the Quorum
// condition's message while the quorum has no owner.
func (r *QuorumDiskReconciler) placeHolder(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk) error {
	if r.Holder.Image == "" {
		return nil
	}
	claim := qd.Spec.VolumeClaim
	pvc := &corev1.PersistentVolumeClaim{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: claim.Namespace, Name: claim.Name}, pvc); err != nil {
		if apierrors.IsNotFound(err) {
			noteHolder(qd, fmt.Sprintf("spec.volumeClaim %s/%s: no such PersistentVolumeClaim, so no quorum holder runs", claim.Namespace, claim.Name))
			return nil
		}
		return err
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(claim.Namespace), client.MatchingLabels{
		"app.kubernetes.io/component": arbitration.HolderComponent, wolfpackv1alpha1.ClusterLabel: qd.Name}); err != nil {
		return err
	}
	in := arbitration.Input{Nodes: qd.Status.Nodes, Owner: qd.Status.Owner}
	for i := range pods.Items {
		in.Pods = append(in.Pods, arbitration.Pod{Node: pods.Items[i].Spec.NodeName, Live: arbitration.PodLive(&pods.Items[i])})
	}
	target, why := arbitration.HolderNode(in)
	running := false
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.NodeName == target && arbitration.PodLive(p) {
			running = true
			continue
		}
		if p.DeletionTimestamp != nil {
			continue
		}
		if err := r.Delete(ctx, p); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting quorum holder pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		r.Recorder.Eventf(qd, p, corev1.EventTypeNormal, wolfpackv1alpha1.HolderRemovedReason, "Arbitrate",
			"deleted the quorum holder on node %s: the holder belongs on %q (%s)", p.Spec.NodeName, target, why)
	}
	if target == "" {
		noteHolder(qd, "no quorum holder runs: "+why)
		return nil
	}
	if running {
		noteHolder(qd, fmt.Sprintf("the quorum holder on node %s is acquiring the disk", target))
		return nil
	}
	o := r.Holder
	o.LeaseNamespace = r.LeaseNamespace
	o.Block = pvc.Spec.VolumeMode != nil && *pvc.Spec.VolumeMode == corev1.PersistentVolumeBlock
	pod := arbitration.HolderPod(qd, target, o)
	if err := r.Create(ctx, pod); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil // the old pod of that name is still going; its deletion requeues us
		}
		noteHolder(qd, fmt.Sprintf("creating quorum holder pod %s/%s on node %s: %v", pod.Namespace, pod.Name, target, err))
		return err
	}
	r.Recorder.Eventf(qd, pod, corev1.EventTypeNormal, wolfpackv1alpha1.HolderPlacedReason, "Arbitrate",
		"started the quorum holder on node %s: %s", target, why)
	noteHolder(qd, fmt.Sprintf("started the quorum holder on node %s", target))
	return nil
}

// noteHolder adds what the holder is doing to the Quorum condition while no node holds the disk.
func noteHolder(qd *wolfpackv1alpha1.QuorumDisk, note string) {
	c := meta.FindStatusCondition(qd.Status.Conditions, wolfpackv1alpha1.QuorumCondition)
	if c == nil || c.Status == metav1.ConditionTrue {
		return
	}
	c.Message += "; " + note
}
