package controllers

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/arbitration"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
)

// +kubebuilder:rbac:groups=wolfpack.dev,resources=quorumdisks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch,namespace=wolfpack-system
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;patch

// QuorumDiskReconciler is the Membership Manager: it turns the node agents' Leases into the
// member nodes' states in the QuorumDisk's status. It also runs the quorum holder on the node
// that is to hold the quorum disk, and puts the out-of-service taint on member nodes that are
// gone.
type QuorumDiskReconciler struct {
	client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// LeaseNamespace is where the node agents keep their Leases.
	LeaseNamespace string
	// FenceGrace is how long a Down node must stay Down before it counts as fenced.
	FenceGrace time.Duration
	// Holder says how quorum holder pods are made; with no image, none are (the holder is run
	// some other way, as in the tests).
	Holder arbitration.PodOptions

	// renewals remembers, per Lease, the last renewal seen and when this manager saw it, so
	// that freshness is judged by the manager's clock alone.
	renewals sync.Map
}

type renewal struct {
	renewTime time.Time
	seenAt    time.Time
}

// Reconcile computes one cluster's membership.
func (r *QuorumDiskReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	qd := &wolfpackv1alpha1.QuorumDisk{}
	if err := r.Get(ctx, req.NamespacedName, qd); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	old := qd.DeepCopy()
	now := r.Clock.Now()

	quorumExpiry, err := r.observeQuorum(ctx, qd, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	in, members, err := r.observe(ctx, qd, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	nodes, changes := membership.Compute(in)
	qd.Status.Nodes = nodes
	setClusterReady(qd)
	taintWait, err := r.outOfService(ctx, qd, members, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.placeHolder(ctx, qd); err != nil {
		return ctrl.Result{}, err
	}
	qd.Status.ObservedGeneration = qd.Generation
	if !equality.Semantic.DeepEqual(old.Status, qd.Status) {
		if err := r.Status().Patch(ctx, qd, client.MergeFromWithOptions(old, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, err
		}
		for _, c := range changes {
			r.Recorder.Eventf(qd, nil, eventType(c.To == wolfpackv1alpha1.NodeDown), nodeReason(c.To), "Membership",
				"node %s is %s: %s", c.Node, c.To, c.Message)
		}
	}
	for _, n := range nodes {
		setNodeState(qd.Name, n.Name, n.State)
	}
	next := membership.NextChange(in)
	for _, t := range []time.Time{quorumExpiry, taintWait} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if !next.IsZero() {
		// Just past the moment, so that the state has changed when we look.
		return ctrl.Result{RequeueAfter: next.Sub(now) + 10*time.Millisecond}, nil
	}
	return ctrl.Result{}, nil
}

// observe gathers the members, their agents' Leases and the paused nodes.
func (r *QuorumDiskReconciler) observe(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk, now time.Time) (membership.Input, []corev1.Node, error) {
	var nodes corev1.NodeList
	if err := r.List(ctx, &nodes, client.MatchingLabelsSelector{Selector: membership.Selector(qd)}); err != nil {
		return membership.Input{}, nil, err
	}
	var leases coordinationv1.LeaseList
	if err := r.List(ctx, &leases, client.InNamespace(r.LeaseNamespace),
		client.MatchingLabels{wolfpackv1alpha1.ClusterLabel: qd.Name}); err != nil {
		return membership.Input{}, nil, err
	}
	duration := ptr.Deref(qd.Spec.LeaseDuration, metav1.Duration{Duration: 10 * time.Second}).Duration
	in := membership.Input{Now: now, Leases: map[string]membership.Lease{}, Paused: map[string]bool{},
		RenewInterval: membership.RenewInterval(duration, detection(qd)), Previous: qd.Status.Nodes,
		Quorum: membership.Quorum{Type: qd.Spec.QuorumType, Owner: qd.Status.Owner}}
	for _, n := range nodes.Items {
		in.Members = append(in.Members, n.Name)
	}
	for i := range leases.Items {
		l := &leases.Items[i]
		node := l.Labels[wolfpackv1alpha1.NodeLabel]
		if node == "" || l.Spec.RenewTime == nil {
			continue
		}
		v, err := membership.ParseView(l.Annotations[wolfpackv1alpha1.ViewAnnotation])
		in.Leases[node] = membership.Lease{LastRenewal: r.seen(l, duration, now), Duration: duration, View: v, ViewErr: err}
	}
	for _, p := range qd.Spec.PausedNodes {
		in.Paused[p.Name] = true
	}
	return in, nodes.Items, nil
}

// observeQuorum sets the quorum's owner and epoch from the quorum holder's Lease while it is
// fresh, and the Quorum condition, and says when the Lease runs out unless renewed. The epoch only
// goes up.
func (r *QuorumDiskReconciler) observeQuorum(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk, now time.Time) (time.Time, error) {
	duration := ptr.Deref(qd.Spec.LeaseDuration, metav1.Duration{Duration: 10 * time.Second}).Duration
	l := &coordinationv1.Lease{}
	err := r.Get(ctx, client.ObjectKey{Namespace: r.LeaseNamespace, Name: membership.QuorumLeaseName(qd.Name)}, l)
	if client.IgnoreNotFound(err) != nil {
		return time.Time{}, err
	}
	var expiry time.Time
	c := metav1.Condition{Type: wolfpackv1alpha1.QuorumCondition, Status: metav1.ConditionFalse,
		Reason: wolfpackv1alpha1.QuorumLostReason, Message: "no node holds the quorum disk"}
	qd.Status.Owner = ""
	var renewed time.Time
	held := err == nil && l.Spec.HolderIdentity != nil && l.Spec.RenewTime != nil
	if held {
		renewed = r.seen(l, duration, now)
		held = now.Sub(renewed) <= duration
	}
	if held {
		epoch, perr := strconv.ParseInt(l.Annotations[wolfpackv1alpha1.EpochAnnotation], 10, 64)
		if perr == nil && epoch >= 0 {
			qd.Status.Owner, qd.Status.Epoch = *l.Spec.HolderIdentity, max(qd.Status.Epoch, epoch)
			expiry = renewed.Add(duration)
			c.Status, c.Reason = metav1.ConditionTrue, wolfpackv1alpha1.QuorumHeldReason
			c.Message = fmt.Sprintf("node %s holds the quorum disk at epoch %d", qd.Status.Owner, epoch)
		} else {
			c.Message = fmt.Sprintf("the quorum holder's Lease %s/%s has no epoch %s: %q", l.Namespace, l.Name,
				wolfpackv1alpha1.EpochAnnotation, l.Annotations[wolfpackv1alpha1.EpochAnnotation])
		}
	}
	meta.SetStatusCondition(&qd.Status.Conditions, c)
	return expiry, nil
}

// seen returns when this manager first saw the Lease's current renewal. A Lease seen for the
// first time counts as renewed now, unless its renewal is older than its whole duration: a
// restarted manager gives every agent one lease duration rather than trust their clocks.
func (r *QuorumDiskReconciler) seen(l *coordinationv1.Lease, duration time.Duration, now time.Time) time.Time {
	key := l.Namespace + "/" + l.Name
	renewed := l.Spec.RenewTime.Time
	if v, ok := r.renewals.Load(key); ok && v.(renewal).renewTime.Equal(renewed) {
		return v.(renewal).seenAt
	}
	seenAt := now
	if _, ok := r.renewals.Load(key); !ok && renewed.Add(duration).Before(now) {
		seenAt = renewed
	}
	r.renewals.Store(key, renewal{renewTime: renewed, seenAt: seenAt})
	return seenAt
}

// detection is interval x threshold: how long a peer may be silent before an agent stops
// counting it as reachable.
func detection(qd *wolfpackv1alpha1.QuorumDisk) time.Duration {
	hb := qd.Spec.Heartbeat
	interval := ptr.Deref(hb.Interval, metav1.Duration{Duration: 500 * time.Millisecond}).Duration
	return interval * time.Duration(ptr.Deref(hb.Threshold, 4))
}

// setClusterReady sets Ready: True while at least one member node is Up.
func setClusterReady(qd *wolfpackv1alpha1.QuorumDisk) {
	up := 0
	for _, n := range qd.Status.Nodes {
		if n.State == wolfpackv1alpha1.NodeUp {
			up++
		}
	}
	c := metav1.Condition{Type: wolfpackv1alpha1.ReadyCondition, Status: metav1.ConditionTrue,
		Reason: wolfpackv1alpha1.AsExpectedReason, Message: fmt.Sprintf("%d of %d member nodes Up", up, len(qd.Status.Nodes))}
	if up == 0 {
		c.Status, c.Reason = metav1.ConditionFalse, wolfpackv1alpha1.NoEligibleNodeReason
	}
	meta.SetStatusCondition(&qd.Status.Conditions, c)
}

func nodeReason(s wolfpackv1alpha1.NodeState) string {
	switch s {
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

// SetupWithManager registers the controller, watching the clusters, their nodes and the agents'
// Leases.
func (r *QuorumDiskReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&wolfpackv1alpha1.QuorumDisk{}).
		Watches(&coordinationv1.Lease{}, handler.EnqueueRequestsFromMapFunc(
			func(_ context.Context, o client.Object) []reconcile.Request {
				// The agents' Leases and the quorum holder's carry the cluster label.
				if cluster := o.GetLabels()[wolfpackv1alpha1.ClusterLabel]; cluster != "" && o.GetNamespace() == r.LeaseNamespace {
					return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: cluster}}}
				}
				return nil
			})).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.allClusters)).
		Owns(&corev1.Pod{}).
		Named("quorumdisk").
		Complete(r)
}

func (r *QuorumDiskReconciler) allClusters(ctx context.Context, _ client.Object) []reconcile.Request {
	var clusters wolfpackv1alpha1.QuorumDiskList
	if err := r.List(ctx, &clusters); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing clusters")
		return nil
	}
	out := make([]reconcile.Request, 0, len(clusters.Items))
	for i := range clusters.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&clusters.Items[i])})
	}
	return out
}
