package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/failover"
	"github.com/wolfpack-ha/wolfpack/internal/graph"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/patch"
	"github.com/wolfpack-ha/wolfpack/internal/resourcetype"
)

// +kubebuilder:rbac:groups=wolfpack.dev,resources=resources,verbs=get;list;watch
// +kubebuilder:rbac:groups=wolfpack.dev,resources=resources/status,verbs=get;update;patch

// ResourceReconciler is the Resource Manager: it keeps each resource where its group's status
// says it must be, through the resource type's handler, checks its health, and applies its
// restart policy.
type ResourceReconciler struct {
	client.Client
	// APIReader reads the group from the API server rather than the cache: a resource acts on
	// its group's latest step only, never on an older one.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	Handlers  resourcetype.Registry
	// Concurrency is how many objects are reconciled at once (at least one).
	Concurrency int

	// lastIsAlive remembers when each resource last had its thorough check.
	lastIsAlive sync.Map
}

// Reconcile brings one resource to where its group wants it. What it learns on the way (a
// failure, a restart, a new state) is written at the end whatever else happens, so that an
// action that fails never hides it.
func (r *ResourceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	res := &wolfpackv1alpha1.Resource{}
	if err := r.Get(ctx, req.NamespacedName, res); err != nil {
		if apierrors.IsNotFound(err) {
			forgetResource(req.Namespace, req.Name)
			r.lastIsAlive.Delete(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var group *wolfpackv1alpha1.ResourceGroup
	var events []failover.Event
	helper := patch.NewHelper(res, r.Client)
	defer func() {
		failover.SetResourceConditions(&res.Status)
		res.Status.ObservedGeneration = res.Generation
		if err := helper.Patch(ctx, res); err != nil {
			reterr = errors.Join(reterr, err)
			return
		}
		for _, e := range events {
			r.Recorder.Eventf(res, group, eventType(e.Warning), e.Reason, "Reconcile", "%s", e.Message)
		}
		setResourceState(res.Namespace, res.Name, res.Status.State)
	}()

	group, plan, views, invalid, err := r.observe(ctx, res)
	if err != nil {
		return ctrl.Result{}, err
	}
	if invalid != nil {
		meta.SetStatusCondition(&res.Status.Conditions, *invalid)
		if invalid.Reason == wolfpackv1alpha1.AddressNotAllowedReason {
			// A refused address is never placed, and one placed before it was refused (the
			// allowed CIDRs or the address changed since) is taken offline: its node's agent
			// removes it.
			result, evs, err := r.refuse(ctx, res, group)
			events = evs
			return result, err
		}
		// Leave everything running as it is; the group says what is wrong.
		return ctrl.Result{}, nil
	}
	meta.SetStatusCondition(&res.Status.Conditions, metav1.Condition{Type: wolfpackv1alpha1.ValidCondition,
		Status: metav1.ConditionTrue, Reason: wolfpackv1alpha1.AsExpectedReason, Message: "the resource's group is consistent"})
	result, evs, err := r.reconcileNormal(ctx, res, group, plan, views)
	events = evs
	return result, err
}

// reconcileNormal keeps the resource online on its group's node, or takes it offline.
func (r *ResourceReconciler) reconcileNormal(ctx context.Context, res *wolfpackv1alpha1.Resource, group *wolfpackv1alpha1.ResourceGroup,
	plan graph.Plan, views map[string]failover.ResourceView) (ctrl.Result, []failover.Event, error) {
	now := r.Clock.Now()
	node, online := failover.Target(&group.Status, plan, res.Name)
	h, err := r.Handlers.For(res)
	if err != nil {
		return ctrl.Result{}, nil, err
	}
	hreq := resourcetype.Request{Resource: res, Placement: resourcetype.Placement{Node: node, Epoch: group.Status.Epoch},
		Fenced: r.fencedFunc(ctx, group.Spec.Cluster)}
	switch {
	case online && res.Status.State != wolfpackv1alpha1.ResourceOnline && len(failover.Waiting(dependencyNames(res), views, node)) > 0:
		// Not before its dependencies: a change of theirs brings this one back here.
		if res.Status.State == "" {
			res.Status.State = wolfpackv1alpha1.ResourceOffline
		}
		return ctrl.Result{}, nil, nil
	case online:
		return r.online(ctx, h, hreq, now)
	default:
		return r.offline(ctx, h, hreq, group.Spec.Cluster, now)
	}
}

// observe reads the resource's group and its dependency order. A non-nil condition says they
// are inconsistent.
func (r *ResourceReconciler) observe(ctx context.Context, res *wolfpackv1alpha1.Resource) (
	*wolfpackv1alpha1.ResourceGroup, graph.Plan, map[string]failover.ResourceView, *metav1.Condition, error,
) {
	group := &wolfpackv1alpha1.ResourceGroup{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: res.Namespace, Name: res.Spec.Group}, group); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, graph.Plan{}, nil, &metav1.Condition{Type: wolfpackv1alpha1.ValidCondition, Status: metav1.ConditionFalse,
				Reason: wolfpackv1alpha1.ClusterNotFoundReason, Message: fmt.Sprintf("ResourceGroup %q does not exist", res.Spec.Group)}, nil
		}
		return nil, graph.Plan{}, nil, nil, err
	}
	var resources wolfpackv1alpha1.ResourceList
	if err := r.List(ctx, &resources, client.InNamespace(res.Namespace)); err != nil {
		return nil, graph.Plan{}, nil, nil, err
	}
	plan, problems := graph.Build(group.Name, graph.FromAPI(resources.Items))
	if len(problems) > 0 {
		return group, plan, nil, &metav1.Condition{Type: wolfpackv1alpha1.ValidCondition, Status: metav1.ConditionFalse,
			Reason: problems[0].Reason, Message: "the group's dependencies are inconsistent: " + problems[0].Message}, nil
	}
	if c, err := r.checkAddress(ctx, res, group.Spec.Cluster); c != nil || err != nil {
		return group, plan, nil, c, err
	}
	views := map[string]failover.ResourceView{}
	for i := range resources.Items {
		if other := &resources.Items[i]; other.Spec.Group == group.Name {
			views[other.Name] = failover.ViewOf(other, group.Status.OwnerNode)
		}
	}
	return group, plan, views, nil, nil
}

// checkAddress refuses a floating address outside the cluster's spec.allowedAddressCIDRs: a
// False Valid condition naming the field and the QuorumDisk, or nothing when it is allowed.
func (r *ResourceReconciler) checkAddress(ctx context.Context, res *wolfpackv1alpha1.Resource, cluster string) (*metav1.Condition, error) {
	if res.Spec.IPAddress == nil {
		return nil, nil
	}
	qd := &wolfpackv1alpha1.QuorumDisk{}
	if err := r.Get(ctx, types.NamespacedName{Name: cluster}, qd); err != nil {
		if apierrors.IsNotFound(err) {
			return &metav1.Condition{Type: wolfpackv1alpha1.ValidCondition, Status: metav1.ConditionFalse, Reason: wolfpackv1alpha1.ClusterNotFoundReason,
				Message: fmt.Sprintf("QuorumDisk %q does not exist: spec.ipAddress.address cannot be checked against its spec.allowedAddressCIDRs", cluster)}, nil
		}
		return nil, err
	}
	refusal := qd.CheckAddress(res.Spec.IPAddress.Address)
	if refusal == nil {
		return nil, nil
	}
	return &metav1.Condition{Type: wolfpackv1alpha1.ValidCondition, Status: metav1.ConditionFalse,
		Reason: wolfpackv1alpha1.AddressNotAllowedReason, Message: refusal.Error()}, nil
}

func dependencyNames(res *wolfpackv1alpha1.Resource) []string {
	out := make([]string, 0, len(res.Spec.DependsOn))
	for _, d := range res.Spec.DependsOn {
		out = append(out, d.Name)
	}
	return out
}

// online brings the resource online where it must be and applies its restart policy.
func (r *ResourceReconciler) online(ctx context.Context, h resourcetype.Handler, req resourcetype.Request, now time.Time) (
	ctrl.Result, []failover.Event, error,
) {
	res := req.Resource
	s := &res.Status
	if s.Node != req.Node {
		// A new owner: the restart count starts over there.
		s.Restarts, s.RestartPeriodStart = 0, nil
		if s.State == wolfpackv1alpha1.ResourceFailed {
			s.State = wolfpackv1alpha1.ResourceOffline
		}
	}
	policy := failover.RestartPolicyOf(res)
	if s.State == wolfpackv1alpha1.ResourceFailed {
		// Failed on this node for good: the group decides what happens next.
		return ctrl.Result{}, nil, nil
	}
	if failover.Restarting(s, req.Node) {
		// The failure is counted; taking the resource offline did not go through: again.
		return r.restart(ctx, h, req, policy)
	}
	if f := s.LastFailure; s.State == wolfpackv1alpha1.ResourceOnlinePending && f != nil && f.Node == req.Node {
		if wait := f.Time.Add(policy.Delay).Sub(now); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil, nil
		}
	}

	if c := monitorFailure(res); c != nil {
		// The node agent's Resource Monitor saw it fail: a failure like any other. The condition
		// goes, to be written anew for the restarted resource.
		meta.RemoveStatusCondition(&s.Conditions, wolfpackv1alpha1.MonitorHealthyCondition)
		return r.failed(ctx, h, req, policy, c.Reason, fmt.Sprintf("node agent on %s: %s", req.Node, c.Message), now)
	}

	if s.State == wolfpackv1alpha1.ResourceOnlinePending && failover.PendingTooLong(res, now) {
		return r.failed(ctx, h, req, policy, wolfpackv1alpha1.PendingTimeoutReason,
			fmt.Sprintf("not online on %s within pendingTimeout %s", req.Node, res.Spec.PendingTimeoutOrDefault()), now)
	}

	result, thorough, err := r.probe(ctx, h, req, now)
	if err != nil {
		return ctrl.Result{}, nil, err
	}
	was := s.State
	s.Node = req.Node
	switch result.State {
	case resourcetype.Online:
		s.State = wolfpackv1alpha1.ResourceOnline
		poll := res.Spec.LooksAlivePollIntervalOrDefault()
		var evs []failover.Event
		if was != s.State {
			// A MonitorHealthy left from an earlier run does not speak for this one.
			meta.RemoveStatusCondition(&s.Conditions, wolfpackv1alpha1.MonitorHealthyCondition)
			evs = append(evs, failover.Event{Reason: "ResourceOnline", Message: fmt.Sprintf("online on %s: %s", req.Node, result.Message)})
		}
		return ctrl.Result{RequeueAfter: poll}, evs, nil
	case resourcetype.Pending, resourcetype.Offline:
		s.State = wolfpackv1alpha1.ResourceOnlinePending
		// Pods, Services, Deployments and StatefulSets are watched; claims, attachments and
		// custom objects are polled.
		return ctrl.Result{RequeueAfter: min(res.Spec.LooksAlivePollIntervalOrDefault(), res.Spec.PendingTimeoutOrDefault())}, nil, nil
	case resourcetype.Failed:
	}
	reason := wolfpackv1alpha1.LooksAliveFailedReason
	if thorough {
		reason = wolfpackv1alpha1.IsAliveFailedReason
	}
	return r.failed(ctx, h, req, policy, reason, result.Message, now)
}

// probe brings the resource online, or checks it once it is: IsAlive when due, LooksAlive
// otherwise. thorough says whether it was IsAlive.
func (r *ResourceReconciler) probe(ctx context.Context, h resourcetype.Handler, req resourcetype.Request, now time.Time) (
	result resourcetype.Result, thorough bool, err error,
) {
	res := req.Resource
	switch {
	case res.Status.State == wolfpackv1alpha1.ResourceOnline && r.isAliveDue(res, now):
		result, err = h.IsAlive(ctx, req)
		if err == nil {
			r.lastIsAlive.Store(client.ObjectKeyFromObject(res), now)
		}
		return result, true, err
	case res.Status.State == wolfpackv1alpha1.ResourceOnline:
		result, err = h.LooksAlive(ctx, req)
	default:
		result, err = h.Online(ctx, req)
	}
	return result, false, err
}

// monitorFailure is the node agent's failed MonitorHealthy condition of an Online resource, if
// any.
func monitorFailure(res *wolfpackv1alpha1.Resource) *metav1.Condition {
	c := meta.FindStatusCondition(res.Status.Conditions, wolfpackv1alpha1.MonitorHealthyCondition)
	if c == nil || c.Status != metav1.ConditionFalse || res.Status.State != wolfpackv1alpha1.ResourceOnline {
		return nil
	}
	return c
}

// failed applies the restart policy to a failure: restart on this node, leave the resource
// Failed, or leave it Failed so that its group fails over.
func (r *ResourceReconciler) failed(ctx context.Context, h resourcetype.Handler, req resourcetype.Request,
	policy failover.RestartPolicy, reason, message string, now time.Time,
) (ctrl.Result, []failover.Event, error) {
	res := req.Resource
	s := &res.Status
	count := failover.RestartCount{Restarts: s.Restarts}
	if s.RestartPeriodStart != nil {
		count.PeriodStart = s.RestartPeriodStart.Time
	}
	d := failover.OnResourceFailure(policy, count, now)
	s.Restarts, s.RestartPeriodStart = d.Count.Restarts, ptr.To(metav1.NewTime(d.Count.PeriodStart))
	s.LastFailure = &wolfpackv1alpha1.ResourceFailure{Time: metav1.NewTime(now), Node: req.Node, Reason: reason, Message: message}
	if d.Action == failover.RestartResource {
		// The failure and the restart are counted now, and written even if taking the resource
		// offline fails: then the restart goes on from its offline step (Restarting).
		s.State, s.Node = wolfpackv1alpha1.ResourceOfflinePending, req.Node
		resourceRestarts.WithLabelValues(res.Namespace, res.Name).Inc()
		event := failover.Event{Warning: true, Reason: reason,
			Message: fmt.Sprintf("%s; restart %d of %d on %s", message, d.Count.Restarts, policy.Threshold, req.Node)}
		result, events, err := r.restart(ctx, h, req, policy)
		return result, append([]failover.Event{event}, events...), err
	}
	s.State = wolfpackv1alpha1.ResourceFailed
	msg := message + "; not restarted (restartPolicy DoNotRestart)"
	if policy.Action != wolfpackv1alpha1.DoNotRestart {
		s.LastFailure.Reason = wolfpackv1alpha1.RestartThresholdExceededReason
		msg = fmt.Sprintf("%s; %d restarts within %s used up", message, policy.Threshold, policy.Period)
		if d.Action == failover.FailoverGroup {
			msg += ": the group fails over"
		}
	}
	s.LastFailure.Message = msg
	return ctrl.Result{}, []failover.Event{{Warning: true, Reason: s.LastFailure.Reason, Message: msg}}, nil
}

// restart takes the resource offline for its restart, and brings it online after the restart
// delay.
func (r *ResourceReconciler) restart(ctx context.Context, h resourcetype.Handler, req resourcetype.Request, policy failover.RestartPolicy) (
	ctrl.Result, []failover.Event, error,
) {
	if _, err := h.Offline(ctx, req); err != nil {
		return ctrl.Result{}, nil, fmt.Errorf("taking resource %s/%s offline on %s to restart it: %w", req.Resource.Namespace, req.Resource.Name, req.Node, err)
	}
	req.Resource.Status.State = wolfpackv1alpha1.ResourceOnlinePending
	return ctrl.Result{RequeueAfter: policy.Delay}, nil, nil
}

// offline takes the resource offline where it ran: gracefully, or at once when that node is
// fenced.
func (r *ResourceReconciler) offline(ctx context.Context, h resourcetype.Handler, req resourcetype.Request, cluster string, now time.Time) (
	ctrl.Result, []failover.Event, error,
) {
	s := &req.Resource.Status
	if s.State == wolfpackv1alpha1.ResourceOffline || s.State == "" {
		s.State, s.Node = wolfpackv1alpha1.ResourceOffline, ""
		return ctrl.Result{}, nil, nil
	}
	where := s.Node
	if where == "" {
		where = req.Node
	}
	req.Node = where
	stop := h.Offline
	fenced := r.fenced(ctx, cluster, where)
	var events []failover.Event
	switch failover.OfflineStopOf(req.Resource, fenced, now) {
	case failover.StopAtOnce:
		stop = h.Terminate
	case failover.StopOverdue:
		// Not as MSCS does: its node is not fenced and may still run it, so it is neither
		// terminated nor counted offline; the graceful stop is asked for again.
		events = append(events, failover.Event{Warning: true, Reason: wolfpackv1alpha1.PendingTimeoutReason,
			Message: fmt.Sprintf("offline is taking longer than pendingTimeout %s on %s, which is not fenced: "+
				"still waiting for it to stop there, without forcing it", req.Resource.Spec.PendingTimeoutOrDefault(), where)})
	case failover.StopGracefully:
	}
	result, err := stop(ctx, req)
	if err != nil {
		return ctrl.Result{}, nil, err
	}
	if result.State == resourcetype.Offline {
		s.State, s.Node = wolfpackv1alpha1.ResourceOffline, ""
		// What the node agent said about the resource's last run does not carry over.
		meta.RemoveStatusCondition(&s.Conditions, wolfpackv1alpha1.MonitorHealthyCondition)
		meta.RemoveStatusCondition(&s.Conditions, wolfpackv1alpha1.AddressAssignedCondition)
		return ctrl.Result{}, append(events, failover.Event{Reason: "ResourceOffline", Message: fmt.Sprintf("offline on %s: %s", where, result.Message)}), nil
	}
	s.State = wolfpackv1alpha1.ResourceOfflinePending
	// Look again at the poll interval (a Down node's fenced verdict comes from the Membership
	// Manager, not from a timer here).
	poll := req.Resource.Spec.LooksAlivePollIntervalOrDefault()
	return ctrl.Result{RequeueAfter: min(poll, req.Resource.Spec.PendingTimeoutOrDefault())}, events, nil
}

// refuse keeps a resource that must not be placed offline: taken offline where it is, left
// Offline where it is not.
func (r *ResourceReconciler) refuse(ctx context.Context, res *wolfpackv1alpha1.Resource, group *wolfpackv1alpha1.ResourceGroup) (
	ctrl.Result, []failover.Event, error,
) {
	now := r.Clock.Now()
	h, err := r.Handlers.For(res)
	if err != nil {
		return ctrl.Result{}, nil, err
	}
	req := resourcetype.Request{Resource: res, Placement: resourcetype.Placement{Node: res.Status.Node, Epoch: group.Status.Epoch},
		Fenced: r.fencedFunc(ctx, group.Spec.Cluster)}
	return r.offline(ctx, h, req, group.Spec.Cluster, now)
}

// fencedFunc answers whether a node of the cluster can no longer run anything.
func (r *ResourceReconciler) fencedFunc(ctx context.Context, cluster string) func(string) bool {
	return func(name string) bool {
		return r.fenced(ctx, cluster, name)
	}
}

// fenced says whether a node can no longer run anything, as the cluster's membership tells it
// (membership.Fenced, the Membership Manager's verdict; no timer here adds to it), or because
// its Node is gone.
func (r *ResourceReconciler) fenced(ctx context.Context, cluster, name string) bool {
	if name == "" {
		return false
	}
	qd := &wolfpackv1alpha1.QuorumDisk{}
	if err := r.Get(ctx, types.NamespacedName{Name: cluster}, qd); err == nil {
		for _, n := range qd.Status.Nodes {
			if n.Name == name {
				return membership.Fenced(n)
			}
		}
	}
	// Not a member (any more): a Node that is gone runs nothing. Gone as the API server says,
	// not as the cache may still (or already) show it.
	err := r.APIReader.Get(ctx, types.NamespacedName{Name: name}, &corev1.Node{})
	return apierrors.IsNotFound(err)
}

func (r *ResourceReconciler) isAliveDue(res *wolfpackv1alpha1.Resource, now time.Time) bool {
	last, ok := r.lastIsAlive.Load(client.ObjectKeyFromObject(res))
	return !ok || now.Sub(last.(time.Time)) >= res.Spec.IsAlivePollIntervalOrDefault()
}

// SetupWithManager registers the controller.
func (r *ResourceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&wolfpackv1alpha1.Resource{}).
		Owns(&corev1.Pod{}).
		Owns(&corev1.Service{}).
		Watches(&wolfpackv1alpha1.ResourceGroup{}, handler.EnqueueRequestsFromMapFunc(r.resourcesWhere(
			func(res *wolfpackv1alpha1.Resource, o client.Object) bool { return res.Spec.Group == o.GetName() }))).
		Watches(&wolfpackv1alpha1.Resource{}, handler.EnqueueRequestsFromMapFunc(r.resourcesWhere(
			func(res *wolfpackv1alpha1.Resource, o client.Object) bool {
				return res.Spec.Group == o.(*wolfpackv1alpha1.Resource).Spec.Group && slices.Contains(dependencyNames(res), o.GetName())
			}))).
		// A change of a cluster's allowedAddressCIDRs (its spec; not its status, which changes
		// all the time) refuses or allows floating addresses.
		Watches(&wolfpackv1alpha1.QuorumDisk{}, handler.EnqueueRequestsFromMapFunc(r.addressResources),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(r.resourcesWhere(refersTo(wolfpackv1alpha1.DeploymentKind)))).
		Watches(&appsv1.StatefulSet{}, handler.EnqueueRequestsFromMapFunc(r.resourcesWhere(refersTo(wolfpackv1alpha1.StatefulSetKind)))).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Concurrency, 1)}).
		Named("resource").
		Complete(r)
}

// resourcesWhere enqueues the resources in the object's namespace that match.
func (r *ResourceReconciler) resourcesWhere(match func(*wolfpackv1alpha1.Resource, client.Object) bool) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var resources wolfpackv1alpha1.ResourceList
		if err := r.List(ctx, &resources, client.InNamespace(o.GetNamespace())); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing resources")
			return nil
		}
		var out []reconcile.Request
		for i := range resources.Items {
			if match(&resources.Items[i], o) {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&resources.Items[i])})
			}
		}
		return out
	}
}

// addressResources enqueues every floating address resource, in every namespace: those of the
// cluster's groups are among them.
func (r *ResourceReconciler) addressResources(ctx context.Context, _ client.Object) []reconcile.Request {
	var resources wolfpackv1alpha1.ResourceList
	if err := r.List(ctx, &resources); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing resources")
		return nil
	}
	var out []reconcile.Request
	for i := range resources.Items {
		if resources.Items[i].Spec.IPAddress != nil {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&resources.Items[i])})
		}
	}
	return out
}

// refersTo matches the resources whose workloadRef names the object as a kind.
func refersTo(kind wolfpackv1alpha1.WorkloadKind) func(*wolfpackv1alpha1.Resource, client.Object) bool {
	return func(res *wolfpackv1alpha1.Resource, o client.Object) bool {
		w := res.Spec.Workload
		return w != nil && w.WorkloadRef != nil && w.WorkloadRef.Kind == kind && w.WorkloadRef.Name == o.GetName()
	}
}
