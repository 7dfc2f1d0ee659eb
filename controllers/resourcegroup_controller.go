// Package controllers holds the reconcilers: the Failover Manager (ResourceGroup) and the
// Resource Manager (Resource). They read, decide through internal/failover and internal/graph,
// act, and write one status patch.
package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/failover"
	"github.com/wolfpack-ha/wolfpack/internal/graph"
)

// GroupFinalizer keeps a deleted group until its resources are offline.
const GroupFinalizer = "wolfpack.dev/offline"

// failbackRecheck is how often a group that may fail back looks at its window again.
const failbackRecheck = time.Minute

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
	// FenceGrace is how long a node must be Down before its groups are taken from it, until the
	// quorum's fencing answers that question.
	FenceGrace time.Duration
}

// Reconcile takes one step of a group.
func (r *ResourceGroupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	group := &wolfpackv1alpha1.ResourceGroup{}
	if err := r.Get(ctx, req.NamespacedName, group); err != nil {
		if apierrors.IsNotFound(err) {
			forgetGroup(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	deleting := !group.DeletionTimestamp.IsZero()
	if !deleting && !controllerutil.ContainsFinalizer(group, GroupFinalizer) {
		// The finalizers list is replaced whole by a merge patch: only over the version read.
		patch := client.MergeFromWithOptions(group.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(group, GroupFinalizer)
		if err := r.Patch(ctx, group, patch); err != nil {
			return ctrl.Result{}, err
		}
	}
	old := group.DeepCopy()
	now := r.Clock.Now()

	obs, invalid, err := r.observe(ctx, group, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	result := ctrl.Result{}
	var out failover.Outcome
	if invalid != nil {
		// What several objects say together is wrong: say so, and change nothing else.
		out = failover.Outcome{Status: *group.Status.DeepCopy()}
		meta.SetStatusCondition(&out.Status.Conditions, *invalid)
	} else {
		if deleting {
			obs.Desired = wolfpackv1alpha1.DesiredOffline
			obs.MoveTo = ""
		}
		out = failover.Next(obs)
		meta.SetStatusCondition(&out.Status.Conditions, metav1.Condition{Type: wolfpackv1alpha1.ValidCondition,
			Status: metav1.ConditionTrue, Reason: wolfpackv1alpha1.AsExpectedReason, Message: "dependencies and owners are consistent"})
		result = r.requeue(group, obs, out, now)
	}
	setGroupConditions(group, &out)
	out.Status.Resources = summarise(obs.Resources)
	out.Status.ObservedGeneration = group.Generation

	if changed := !equality.Semantic.DeepEqual(old.Status, out.Status); changed || out.ClearMoveTo {
		if changed {
			group.Status = out.Status
			if err := r.Status().Patch(ctx, group, client.MergeFromWithOptions(old, client.MergeFromWithOptimisticLock{})); err != nil {
				return ctrl.Result{}, err
			}
		}
		// A refused move changes no status but is answered with an Event all the same.
		r.record(group, old, &out)
	}
	if out.ClearMoveTo {
		patch := client.MergeFrom(group.DeepCopy())
		delete(group.Annotations, wolfpackv1alpha1.MoveToAnnotation)
		if err := r.Patch(ctx, group, patch); err != nil {
			return ctrl.Result{}, err
		}
	}
	if deleting && out.Status.OwnerNode == "" && (out.Status.Operation == nil || !inProgress(out.Status.Operation)) {
		patch := client.MergeFromWithOptions(group.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if controllerutil.RemoveFinalizer(group, GroupFinalizer) {
			return ctrl.Result{}, r.Patch(ctx, group, patch)
		}
	}
	return result, nil
}

// observe reads what the group's next step depends on. A non-nil condition says the group's
// objects are inconsistent.
func (r *ResourceGroupReconciler) observe(ctx context.Context, group *wolfpackv1alpha1.ResourceGroup, now time.Time) (
	failover.Observed, *metav1.Condition, error,
) {
	invalid := func(reason, msg string) *metav1.Condition {
		return &metav1.Condition{Type: wolfpackv1alpha1.ValidCondition, Status: metav1.ConditionFalse, Reason: reason, Message: msg}
	}
	obs := failover.Observed{Now: now, Desired: group.Spec.State, MoveTo: group.Annotations[wolfpackv1alpha1.MoveToAnnotation],
		Status: group.Status, Fenced: map[string]bool{}}

	var resources wolfpackv1alpha1.ResourceList
	if err := r.List(ctx, &resources, client.InNamespace(group.Namespace)); err != nil {
		return obs, nil, err
	}
	obs.Resources = map[string]failover.ResourceView{}
	for _, res := range resources.Items {
		if res.Spec.Group == group.Name {
			obs.Resources[res.Name] = resourceView(&res, group.Status.OwnerNode)
			obs.Placement.PossibleOwners = append(obs.Placement.PossibleOwners, res.Spec.PossibleOwners)
		}
	}

	cluster := &wolfpackv1alpha1.QuorumDisk{}
	if err := r.Get(ctx, types.NamespacedName{Name: group.Spec.Cluster}, cluster); err != nil {
		if apierrors.IsNotFound(err) {
			return obs, invalid(wolfpackv1alpha1.ClusterNotFoundReason, fmt.Sprintf("QuorumDisk %q does not exist", group.Spec.Cluster)), nil
		}
		return obs, nil, err
	}
	members, fenced := r.members(cluster, now)
	obs.Placement.Nodes, obs.Fenced = members, fenced

	plan, problems := graph.Build(group.Name, graph.FromAPI(resources.Items))
	if len(problems) > 0 {
		msgs := make([]string, 0, len(problems))
		for _, p := range problems {
			msgs = append(msgs, p.Message)
		}
		return obs, invalid(problems[0].Reason, strings.Join(msgs, "; ")), nil
	}
	obs.Plan = plan

	if unknown := unknownNodes(members, group.Spec.PreferredOwners, obs.Placement.PossibleOwners); len(unknown) > 0 {
		return obs, invalid(wolfpackv1alpha1.UnknownNodeReason, fmt.Sprintf("%s named in preferredOwners or possibleOwners %s not in cluster %s",
			strings.Join(unknown, ", "), plural(len(unknown), "is", "are"), cluster.Name)), nil
	}
	obs.Placement.PreferredOwners = group.Spec.PreferredOwners
	obs.FailoverThreshold = failover.Threshold(group.Spec.FailoverThreshold, len(members))
	obs.FailoverPeriod = ptr.Deref(group.Spec.FailoverPeriod, metav1.Duration{Duration: 6 * time.Hour}).Duration
	obs.Failback = failover.Failback{Policy: group.Spec.Failback.Policy,
		WindowStart: group.Spec.Failback.WindowStart, WindowEnd: group.Spec.Failback.WindowEnd}
	return obs, nil, nil
}

// members are the cluster's nodes with their states, as its membership tells them, and which
// Down ones are fenced.
func (r *ResourceGroupReconciler) members(cluster *wolfpackv1alpha1.QuorumDisk, now time.Time) ([]failover.Node, map[string]bool) {
	fenced := map[string]bool{}
	for _, n := range cluster.Status.Nodes {
		if _, ok := failover.FencedAfter(n, now, r.FenceGrace); ok {
			fenced[n.Name] = true
		}
	}
	return failover.Nodes(cluster.Status.Nodes, cluster.Spec.PausedNodes), fenced
}

// requeue asks to be called again when time alone will change the decision.
func (r *ResourceGroupReconciler) requeue(group *wolfpackv1alpha1.ResourceGroup, obs failover.Observed, out failover.Outcome, now time.Time) ctrl.Result {
	if out.WaitingForFence {
		return ctrl.Result{RequeueAfter: r.FenceGrace / 4}
	}
	if group.Spec.Failback.Policy == wolfpackv1alpha1.FailbackAllow {
		return ctrl.Result{RequeueAfter: failbackRecheck}
	}
	if out.Blocked != nil && out.Blocked.Reason == wolfpackv1alpha1.FailoverThresholdExceededReason && len(out.Status.RecentFailovers) > 0 {
		// The oldest failover leaves the period then.
		return ctrl.Result{RequeueAfter: max(out.Status.RecentFailovers[0].Add(obs.FailoverPeriod).Sub(now), time.Second)}
	}
	return ctrl.Result{}
}

// record emits the Events and metrics of what changed between old and the patched group.
func (r *ResourceGroupReconciler) record(group, old *wolfpackv1alpha1.ResourceGroup, out *failover.Outcome) {
	for _, e := range out.Events {
		r.Recorder.Eventf(group, nil, eventType(e.Warning), e.Reason, "Reconcile", e.Message)
	}
	for _, t := range []string{wolfpackv1alpha1.ValidCondition, wolfpackv1alpha1.PlacedCondition, wolfpackv1alpha1.FailoverAllowedCondition} {
		c := meta.FindStatusCondition(out.Status.Conditions, t)
		before := meta.FindStatusCondition(old.Status.Conditions, t)
		if c != nil && c.Status == metav1.ConditionFalse && (before == nil || before.Status != c.Status || before.Reason != c.Reason) {
			r.Recorder.Eventf(group, nil, corev1.EventTypeWarning, c.Reason, "Reconcile", c.Message)
		}
	}
	op, before := out.Status.Operation, old.Status.Operation
	if op != nil && (before == nil || !before.StartedAt.Equal(&op.StartedAt)) && op.Kind == wolfpackv1alpha1.OperationFailover {
		failoversTotal.WithLabelValues(group.Namespace, group.Name, failoverReason(out)).Inc()
	}
	if op != nil && !inProgress(op) && before != nil && inProgress(before) {
		operationDuration.WithLabelValues(string(op.Kind), string(op.Phase)).Observe(r.Clock.Since(op.StartedAt.Time).Seconds())
	}
	setGroupState(group.Namespace, group.Name, out.Status.State)
}

func failoverReason(out *failover.Outcome) string {
	for _, e := range out.Events {
		if e.Warning {
			return e.Reason
		}
	}
	return "Unknown"
}

// setGroupConditions derives Ready, Placed and FailoverAllowed from the outcome.
func setGroupConditions(group *wolfpackv1alpha1.ResourceGroup, out *failover.Outcome) {
	s := &out.Status
	placed := metav1.Condition{Type: wolfpackv1alpha1.PlacedCondition, Status: metav1.ConditionTrue,
		Reason: wolfpackv1alpha1.AsExpectedReason, Message: "owned by " + s.OwnerNode}
	allowed := metav1.Condition{Type: wolfpackv1alpha1.FailoverAllowedCondition, Status: metav1.ConditionTrue,
		Reason: wolfpackv1alpha1.AsExpectedReason, Message: fmt.Sprintf("%d failovers in the current period", len(s.RecentFailovers))}
	switch {
	case out.Blocked != nil && out.Blocked.Reason == wolfpackv1alpha1.FailoverThresholdExceededReason:
		allowed.Status, allowed.Reason, allowed.Message = metav1.ConditionFalse, out.Blocked.Reason, out.Blocked.Message
	case out.Blocked != nil:
		placed.Status, placed.Reason, placed.Message = metav1.ConditionFalse, out.Blocked.Reason, out.Blocked.Message
	case s.OwnerNode == "":
		placed.Status, placed.Reason, placed.Message = metav1.ConditionFalse, wolfpackv1alpha1.AsExpectedReason, "the group has no owner"
	}
	if valid := meta.FindStatusCondition(s.Conditions, wolfpackv1alpha1.ValidCondition); valid == nil || valid.Status == metav1.ConditionTrue {
		meta.SetStatusCondition(&s.Conditions, placed)
		meta.SetStatusCondition(&s.Conditions, allowed)
	}

	ready := metav1.Condition{Type: wolfpackv1alpha1.ReadyCondition, Status: metav1.ConditionFalse,
		Reason: wolfpackv1alpha1.ReconcilingReason, Message: fmt.Sprintf("the group is %s, desired %s", s.State, group.Spec.State)}
	want := wolfpackv1alpha1.GroupOnline
	if group.Spec.State == wolfpackv1alpha1.DesiredOffline {
		want = wolfpackv1alpha1.GroupOffline
	}
	if valid := meta.FindStatusCondition(s.Conditions, wolfpackv1alpha1.ValidCondition); valid != nil && valid.Status == metav1.ConditionFalse {
		ready.Reason, ready.Message = valid.Reason, valid.Message
	} else if s.State == want {
		ready.Status, ready.Reason = metav1.ConditionTrue, wolfpackv1alpha1.AsExpectedReason
	}
	meta.SetStatusCondition(&s.Conditions, ready)
}

func resourceView(res *wolfpackv1alpha1.Resource, owner string) failover.ResourceView {
	v := failover.ResourceView{State: res.Status.State, Node: res.Status.Node}
	f := res.Status.LastFailure
	v.WantsFailover = res.Status.State == wolfpackv1alpha1.ResourceFailed && f != nil &&
		f.Reason == wolfpackv1alpha1.RestartThresholdExceededReason && f.Node == owner &&
		res.Spec.RestartPolicy.Action == wolfpackv1alpha1.RestartOrFailover
	return v
}

func summarise(resources map[string]failover.ResourceView) []wolfpackv1alpha1.ResourceSummary {
	out := make([]wolfpackv1alpha1.ResourceSummary, 0, len(resources))
	for name, v := range resources {
		state := v.State
		if state == "" {
			state = wolfpackv1alpha1.ResourceOffline
		}
		out = append(out, wolfpackv1alpha1.ResourceSummary{Name: name, State: state, Node: v.Node})
	}
	slices.SortFunc(out, func(a, b wolfpackv1alpha1.ResourceSummary) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func unknownNodes(members []failover.Node, preferred []string, possible [][]string) []string {
	known := map[string]bool{}
	for _, m := range members {
		known[m.Name] = true
	}
	var unknown []string
	for _, n := range slices.Concat(append([][]string{preferred}, possible...)...) {
		if !known[n] && !slices.Contains(unknown, n) {
			unknown = append(unknown, n)
		}
	}
	return unknown
}

func inProgress(op *wolfpackv1alpha1.GroupOperation) bool {
	return op.Phase == wolfpackv1alpha1.PhaseTakingOffline || op.Phase == wolfpackv1alpha1.PhaseBringingOnline
}

func eventType(warning bool) string {
	if warning {
		return corev1.EventTypeWarning
	}
	return corev1.EventTypeNormal
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
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
		Watches(&wolfpackv1alpha1.QuorumDisk{}, handler.EnqueueRequestsFromMapFunc(
			func(ctx context.Context, o client.Object) []reconcile.Request {
				return r.allGroups(o.GetName())(ctx, o)
			})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Concurrency, 1)}).
		Named("resourcegroup").
		Complete(r)
}

// allGroups enqueues every group, or those of one cluster.
func (r *ResourceGroupReconciler) allGroups(cluster string) handler.MapFunc {
	return func(ctx context.Context, _ client.Object) []reconcile.Request {
		var groups wolfpackv1alpha1.ResourceGroupList
		if err := r.List(ctx, &groups); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing groups")
			return nil
		}
		var out []reconcile.Request
		for _, g := range groups.Items {
			if cluster == "" || g.Spec.Cluster == cluster {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&g)})
			}
		}
		return out
	}
}
