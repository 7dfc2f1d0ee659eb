package controllers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/arbitration"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
)

// +kubebuilder:rbac:groups=wolfpack.dev,resources=quorumdisks,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;patch

// OutOfServiceReconciler puts Kubernetes' out-of-service taint on the member nodes that are gone
// altogether, so that Kubernetes releases their pods and volumes at once, and takes Wolfpack's
// taint off the nodes that are back (see arbitration.OutOfService). It writes no status: the
// Membership Manager's status is what it reads, and a taint that cannot be written never holds
// that status back.
type OutOfServiceReconciler struct {
	client.Client
	// APIReader reads the QuorumDisk from the API server: a taint makes Kubernetes delete pods
	// and detach volumes, so it is decided on the latest membership, not on the cache's.
	APIReader client.Reader
	Recorder  events.EventRecorder
}

// Reconcile taints or untaints one cluster's member nodes.
func (r *OutOfServiceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	qd := &wolfpackv1alpha1.QuorumDisk{}
	if err := r.APIReader.Get(ctx, req.NamespacedName, qd); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var members corev1.NodeList
	if err := r.List(ctx, &members, client.MatchingLabelsSelector{Selector: membership.Selector(qd)}); err != nil {
		return ctrl.Result{}, err
	}
	taints := arbitration.Taints(qd.Status.Nodes, members.Items)
	var errs []error
	for _, t := range taints {
		for i := range members.Items {
			if members.Items[i].Name == t.Node {
				errs = append(errs, r.apply(ctx, qd, &members.Items[i], t))
			}
		}
	}
	return ctrl.Result{}, errors.Join(errs...)
}

// apply makes one taint change, over the version of the Node it was decided on, and tells it in
// an Event.
func (r *OutOfServiceReconciler) apply(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk, node *corev1.Node, t arbitration.Taint) error {
	before := node.DeepCopy()
	t.Change.Apply(node)
	if err := r.Patch(ctx, node, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patching the out-of-service taint of node %s: %w", node.Name, err)
	}
	if t.Change == arbitration.TaintAdd {
		r.Recorder.Eventf(qd, node, corev1.EventTypeWarning, wolfpackv1alpha1.OutOfServiceReason, "Taint",
			"%s: tainted node.kubernetes.io/out-of-service, so that Kubernetes deletes its pods and detaches its volumes", t.Why)
	} else {
		r.Recorder.Eventf(qd, node, corev1.EventTypeNormal, wolfpackv1alpha1.BackInServiceReason, "Taint",
			"%s: removed the out-of-service taint", t.Why)
	}
	return nil
}

// SetupWithManager registers the controller, watching the clusters (their membership) and the
// Nodes (their kubelets' Ready condition).
func (r *OutOfServiceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&wolfpackv1alpha1.QuorumDisk{}).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(allClusters(r.Client))).
		Named("outofservice").
		Complete(r)
}
