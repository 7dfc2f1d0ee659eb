package controllers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/arbitration"
	"github.com/wolfpack-ha/wolfpack/internal/patch"
)

// +kubebuilder:rbac:groups=wolfpack.dev,resources=quorumdisks,verbs=get;list;watch
// +kubebuilder:rbac:groups=wolfpack.dev,resources=quorumdisks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch

// QuorumHolderReconciler runs the quorum holder (`node-agent quorum`, the process that holds the
// quorum disk's lease for its node) as a pod on the member node arbitration.HolderNode picks, and
// deletes the holder pods of other nodes. The HolderRunning condition says where it runs, or why
// it does not.
type QuorumHolderReconciler struct {
	client.Client
	Recorder events.EventRecorder
	// LeaseNamespace is where the holder renews the quorum holder's Lease.
	LeaseNamespace string
	// Holder says how holder pods are made; its Image must be set.
	Holder arbitration.PodOptions
}

// Reconcile places one cluster's quorum holder.
func (r *QuorumHolderReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	qd := &wolfpackv1alpha1.QuorumDisk{}
	if err := r.Get(ctx, req.NamespacedName, qd); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	helper := patch.NewHelper(qd, r.Client)
	defer func() {
		if err := helper.Patch(ctx, qd); err != nil {
			reterr = errors.Join(reterr, err)
		}
	}()
	if !qd.DeletionTimestamp.IsZero() {
		// The holder pods are owned by the QuorumDisk and go with it.
		return ctrl.Result{}, nil
	}
	placed, err := r.place(ctx, qd)
	arbitration.SetHolderRunning(&qd.Status, qd, placed)
	return ctrl.Result{}, err
}

// place runs the holder where it belongs and deletes the others.
func (r *QuorumHolderReconciler) place(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk) (arbitration.Placed, error) {
	claim := qd.Spec.VolumeClaim
	pvc := &corev1.PersistentVolumeClaim{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: claim.Namespace, Name: claim.Name}, pvc); err != nil {
		return arbitration.Placed{ClaimMissing: apierrors.IsNotFound(err)}, client.IgnoreNotFound(err)
	}
	pods, err := r.pods(ctx, qd)
	if err != nil {
		return arbitration.Placed{}, err
	}
	in := arbitration.Input{Nodes: qd.Status.Nodes, Owner: qd.Status.Owner}
	for i := range pods {
		in.Pods = append(in.Pods, arbitration.Pod{Node: pods[i].Spec.NodeName, Live: arbitration.PodLive(&pods[i])})
	}
	var placed arbitration.Placed
	placed.Target, placed.Why = arbitration.HolderNode(in)

	var errs []error
	for i := range pods {
		p := &pods[i]
		if p.Spec.NodeName == placed.Target && arbitration.PodLive(p) {
			placed.Running = true
			continue
		}
		if p.DeletionTimestamp != nil {
			continue
		}
		if err := r.Delete(ctx, p); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("deleting quorum holder pod %s/%s: %w", p.Namespace, p.Name, err))
			continue
		}
		r.Recorder.Eventf(qd, p, corev1.EventTypeNormal, wolfpackv1alpha1.HolderRemovedReason, "Arbitrate",
			"deleted the quorum holder on node %s: the holder belongs on %q (%s)", p.Spec.NodeName, placed.Target, placed.Why)
	}
	if placed.Target == "" || placed.Running {
		return placed, errors.Join(errs...)
	}

	o := r.Holder
	o.LeaseNamespace = r.LeaseNamespace
	o.Block = pvc.Spec.VolumeMode != nil && *pvc.Spec.VolumeMode == corev1.PersistentVolumeBlock
	pod := arbitration.HolderPod(qd, placed.Target, o)
	switch err := r.Create(ctx, pod); {
	case apierrors.IsAlreadyExists(err):
		// The old pod of that name is still going; its deletion brings us back.
		placed.Waiting = true
	case err != nil:
		placed.Err = err
		errs = append(errs, fmt.Errorf("creating quorum holder pod %s/%s: %w", pod.Namespace, pod.Name, err))
	default:
		r.Recorder.Eventf(qd, pod, corev1.EventTypeNormal, wolfpackv1alpha1.HolderPlacedReason, "Arbitrate",
			"started the quorum holder on node %s: %s", placed.Target, placed.Why)
	}
	return placed, errors.Join(errs...)
}

func (r *QuorumHolderReconciler) pods(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk) ([]corev1.Pod, error) {
	var pods corev1.PodList
	err := r.List(ctx, &pods, client.InNamespace(qd.Spec.VolumeClaim.Namespace), client.MatchingLabels{
		"app.kubernetes.io/component": arbitration.HolderComponent, wolfpackv1alpha1.ClusterLabel: qd.Name})
	return pods.Items, err
}

// SetupWithManager registers the controller, watching the clusters (their membership decides
// where the holder runs), the holder pods and the claims the clusters name.
func (r *QuorumHolderReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&wolfpackv1alpha1.QuorumDisk{}).
		Owns(&corev1.Pod{}).
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(r.claimants)).
		Named("quorumholder").
		Complete(r)
}

// claimants enqueues the clusters whose quorum disk is the claim.
func (r *QuorumHolderReconciler) claimants(ctx context.Context, o client.Object) []reconcile.Request {
	var clusters wolfpackv1alpha1.QuorumDiskList
	if err := r.List(ctx, &clusters); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing clusters")
		return nil
	}
	var out []reconcile.Request
	for i := range clusters.Items {
		if c := clusters.Items[i].Spec.VolumeClaim; c.Namespace == o.GetNamespace() && c.Name == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&clusters.Items[i])})
		}
	}
	return out
}
