package controllers

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/failover"
	"github.com/wolfpack-ha/wolfpack/internal/patch"
)

// GroupFinalizer keeps a deleted group until its resources are offline.
const GroupFinalizer = "wolfpack.dev/offline"

// +kubebuilder:rbac:groups=wolfpack.dev,resources=resourcegroups,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=wolfpack.dev,resources=resourcegroups/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=wolfpack.dev,resources=resourcegroups/finalizers,verbs=update
// +kubebuilder:rbac:groups=wolfpack.dev,resources=quorumdisks,verbs=get;list;watch

// ResourceGroupReconciler is the Failover Manager: it places groups, and moves and fails them over
// in dependency order by writing each step to the group's status, which the Resource Manager
// carries out.
type ResourceGroupReconciler struct {
	client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// Concurrency is how many objects are reconciled at once (at least one).
	Concurrency int
}

// Reconcile takes one step of a group. The step is written to status before anything follows
// from it: the Resource Manager acts on the status only, the move-to annotation goes and the
// finalizer comes off after it.
func (r *ResourceGroupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	group := &wolfpackv1alpha1.ResourceGroup{}
	if err := r.Get(ctx, req.NamespacedName, group); err != nil {
		if client.IgnoreNotFound(err) == nil {
			forgetGroup(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := group.DeepCopy()
	var out failover.Outcome
	helper := patch.NewHelper(group, r.Client)
	defer func() {
		if err := helper.Patch(ctx, group); err != nil {
			reterr = errors.Join(reterr, err)
			return
		}
		r.record(group, before, &out)
	}()

	if !group.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, group, &out)
	}
	if controllerutil.AddFinalizer(group, GroupFinalizer) {
		return ctrl.Result{}, nil
	}
	return r.reconcileNormal(ctx, group, &out)
}

func (r *ResourceGroupReconciler) reconcileNormal(ctx context.Context, group *wolfpackv1alpha1.ResourceGroup, out *failover.Outcome) (ctrl.Result, error) {
	objs, err := r.observe(ctx, group)
	if err != nil {
		return ctrl.Result{}, err
	}
	*out = failover.Decide(objs, r.Clock.Now())
	group.Status = out.Status
	if out.Move != nil {
		// Removed once the answer is in status.
		delete(group.Annotations, wolfpackv1alpha1.MoveToAnnotation)
	}
	return ctrl.Result{RequeueAfter: out.Requeue}, nil
}

// reconcileDelete takes the group offline, and lets it go once nothing of it runs.
func (r *ResourceGroupReconciler) reconcileDelete(ctx context.Context, group *wolfpackv1alpha1.ResourceGroup, out *failover.Outcome) (ctrl.Result, error) {
	result, err := r.reconcileNormal(ctx, group, out)
	if err != nil {
		return result, err
	}
	if op := group.Status.Operation; group.Status.OwnerNode == "" && !failover.InProgress(op) {
		controllerutil.RemoveFinalizer(group, GroupFinalizer)
	}
	return result, nil
}

// observe reads the objects the group's next step depends on.
func (r *ResourceGroupReconciler) observe(ctx context.Context, group *wolfpackv1alpha1.ResourceGroup) (failover.Objects, error) {
	objs := failover.Objects{Group: group}
	var resources wolfpackv1alpha1.ResourceList
	if err := r.List(ctx, &resources, client.InNamespace(group.Namespace)); err != nil {
		return objs, err
	}
	objs.Resources = resources.Items
	cluster := &wolfpackv1alpha1.QuorumDisk{}
	if err := r.Get(ctx, types.NamespacedName{Name: group.Spec.Cluster}, cluster); err != nil {
		return objs, client.IgnoreNotFound(err)
	}
	objs.Cluster = cluster
	return objs, nil
}

// record tells, once the step is written, what it changed: Events and metrics.
func (r *ResourceGroupReconciler) record(group, before *wolfpackv1alpha1.ResourceGroup, out *failover.Outcome) {
	for _, e := range append(out.Events, failover.ConditionEvents(before.Status.Conditions, group.Status.Conditions)...) {
		r.Recorder.Eventf(group, nil, eventType(e.Warning), e.Reason, "Reconcile", "%s", e.Message)
	}
	op, was := group.Status.Operation, before.Status.Operation
	if op != nil && (was == nil || !was.StartedAt.Equal(&op.StartedAt)) && op.Kind == wolfpackv1alpha1.OperationFailover {
		failoversTotal.WithLabelValues(group.Namespace, group.Name, failoverReason(out)).Inc()
	}
	if op != nil && !failover.InProgress(op) && failover.InProgress(was) {
		operationDuration.WithLabelValues(string(op.Kind), string(op.Phase)).Observe(r.Clock.Since(op.StartedAt.Time).Seconds())
	}
	setGroupState(group.Namespace, group.Name, group.Status.State)
}

func failoverReason(out *failover.Outcome) string {
	for _, e := range out.Events {
		if e.Warning {
			return e.Reason
		}
	}
	return "Unknown"
}

// SetupWithManager registers the controller, watching the groups and what they depend on.
func (r *ResourceGroupReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&wolfpackv1alpha1.ResourceGroup{}).
		Watches(&wolfpackv1alpha1.Resource{}, handler.EnqueueRequestsFromMapFunc(
			func(_ context.Context, o client.Object) []reconcile.Request {
				res := o.(*wolfpackv1alpha1.Resource)
				return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: res.Namespace, Name: res.Spec.Group}}}
			})).
		Watches(&wolfpackv1alpha1.QuorumDisk{}, handler.EnqueueRequestsFromMapFunc(r.groupsOf)).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Concurrency, 1)}).
		Named("resourcegroup").
		Complete(r)
}

// groupsOf enqueues the groups of the cluster.
func (r *ResourceGroupReconciler) groupsOf(ctx context.Context, cluster client.Object) []reconcile.Request {
	var groups wolfpackv1alpha1.ResourceGroupList
	if err := r.List(ctx, &groups); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing groups")
		return nil
	}
	var out []reconcile.Request
	for _, g := range groups.Items {
		if g.Spec.Cluster == cluster.GetName() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&g)})
		}
	}
	return out
}
