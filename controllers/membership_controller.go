package controllers

import (
	"context"
	"errors"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/patch"
)

// +kubebuilder:rbac:groups=wolfpack.dev,resources=quorumdisks,verbs=get;list;watch
// +kubebuilder:rbac:groups=wolfpack.dev,resources=quorumdisks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch,namespace=wolfpack-system
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch

// MembershipReconciler is the Membership Manager: it turns the node agents' Leases into the
// member nodes' states, and the quorum holder's Lease into the quorum disk's owner and epoch, in
// the QuorumDisk's status.
type MembershipReconciler struct {
	client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// LeaseNamespace is where the node agents and the quorum holders keep their Leases.
	LeaseNamespace string

	// renewals remembers, per Lease, the last renewal seen and when this manager saw it, so
	// that freshness is judged by the manager's clock alone.
	renewals sync.Map
}

type renewal struct {
	renewTime time.Time
	seenAt    time.Time
}

// Reconcile computes one cluster's membership.
func (r *MembershipReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	qd := &wolfpackv1alpha1.QuorumDisk{}
	if err := r.Get(ctx, req.NamespacedName, qd); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var changes []membership.Change
	helper := patch.NewHelper(qd, r.Client)
	defer func() {
		qd.Status.ObservedGeneration = qd.Generation
		if err := helper.Patch(ctx, qd); err != nil {
			reterr = errors.Join(reterr, err)
			return
		}
		for _, c := range changes {
			r.Recorder.Eventf(qd, nil, eventType(c.To == wolfpackv1alpha1.NodeDown), c.Reason(), "Membership",
				"node %s is %s: %s", c.Node, c.To, c.Message)
		}
		for _, n := range qd.Status.Nodes {
			setNodeState(qd.Name, n.Name, n.State)
		}
	}()
	return r.reconcileNormal(ctx, qd, &changes)
}

func (r *MembershipReconciler) reconcileNormal(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk, changes *[]membership.Change) (ctrl.Result, error) {
	now := r.Clock.Now()
	holder, err := r.holderLease(ctx, qd, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	// The owner goes first: the membership's partition rules ask for it.
	quorumExpiry := membership.SetQuorum(&qd.Status, holder, qd.Spec.LeaseDurationOrDefault(), now)
	in, err := r.observe(ctx, qd, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	qd.Status.Nodes, *changes = membership.Compute(in)
	membership.SetReady(&qd.Status)
	return requeueAt(now, membership.NextChange(in), quorumExpiry), nil
}

// observe gathers the members, their agents' Leases and the paused nodes.
func (r *MembershipReconciler) observe(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk, now time.Time) (membership.Input, error) {
	var nodes corev1.NodeList
	if err := r.List(ctx, &nodes, client.MatchingLabelsSelector{Selector: membership.Selector(qd)}); err != nil {
		return membership.Input{}, err
	}
	var leases coordinationv1.LeaseList
	if err := r.List(ctx, &leases, client.InNamespace(r.LeaseNamespace),
		client.MatchingLabels{wolfpackv1alpha1.ClusterLabel: qd.Name}); err != nil {
		return membership.Input{}, err
	}
	duration := qd.Spec.LeaseDurationOrDefault()
	in := membership.Input{Now: now, Leases: map[string]membership.Lease{}, Paused: map[string]bool{},
		RenewInterval: membership.RenewInterval(duration, membership.Detection(qd.Spec.Heartbeat)), Previous: qd.Status.Nodes,
		Quorum: membership.Quorum{Type: qd.Spec.QuorumTypeOrDefault(), Owner: qd.Status.Owner}}
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
	return in, nil
}

// holderLease reads the quorum holder's Lease.
func (r *MembershipReconciler) holderLease(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk, now time.Time) (membership.HolderLease, error) {
	key := client.ObjectKey{Namespace: r.LeaseNamespace, Name: membership.QuorumLeaseName(qd.Name)}
	out := membership.HolderLease{Name: key.String()}
	l := &coordinationv1.Lease{}
	if err := r.Get(ctx, key, l); err != nil {
		return out, client.IgnoreNotFound(err)
	}
	if l.Spec.HolderIdentity != nil && l.Spec.RenewTime != nil {
		out.Holder, out.LastRenewal = *l.Spec.HolderIdentity, r.seen(l, qd.Spec.LeaseDurationOrDefault(), now)
		out.Epoch = l.Annotations[wolfpackv1alpha1.EpochAnnotation]
	}
	return out, nil
}

// seen returns when this manager first saw the Lease's current renewal. A Lease seen for the
// first time counts as renewed now, unless its renewal is older than its whole duration: a
// restarted manager gives every agent one lease duration rather than trust their clocks.
func (r *MembershipReconciler) seen(l *coordinationv1.Lease, duration time.Duration, now time.Time) time.Time {
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

// SetupWithManager registers the controller, watching the clusters, their nodes and the agents'
// and holders' Leases.
func (r *MembershipReconciler) SetupWithManager(mgr ctrl.Manager) error {
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
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(allClusters(r.Client))).
		Named("membership").
		Complete(r)
}
