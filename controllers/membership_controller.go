package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
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
//
// Every time it judges by is its own monotonic clock (Clock): when it first saw a Lease's
// renewTime, when it started observing (membership.Window), when a fresh peer view last heard a
// node. No Lease runs out on the cache's word: one that looks old is read again from the API
// server (APIReader) first.
type MembershipReconciler struct {
	client.Client
	// APIReader reads Leases from the API server, past the cache, to confirm that a Lease that
	// looks run out or missing really is.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Clock is the manager's monotonic clock; its tickers drive the stall detector.
	Clock clock.WithTicker
	// LeaseNamespace is where the node agents and the quorum holders keep their Leases.
	LeaseNamespace string
	// FenceGrace is an extra margin added to the silence after which a node whose Lease ran out
	// counts as fenced (the manager's --fence-grace; zero by default). It fences nothing itself.
	FenceGrace time.Duration

	// window is when this manager last started observing.
	window membership.Window
	mu     sync.Mutex
	// renewals remembers, per Lease (namespace/name), the last renewal seen and when this
	// manager saw it, so that freshness is judged by the manager's clock alone.
	renewals map[string]renewal
	// lastHeard is, per cluster/node, when a fresh peer view last heard the node.
	lastHeard map[string]time.Time
}

// renewalHistory is how many of a Lease's past renewTimes are remembered (half a minute of
// renewals at the fastest renew interval), so that a cache that
// lags behind an uncached read does not make an old renewal look new again.
const renewalHistory = 64

type renewal struct {
	renewTime time.Time
	seen      time.Time
	// past are earlier renewTimes of the Lease, the latest last.
	past []time.Time
	// duration is the duration the Lease was last judged by; longest is the longest that a
	// Lease without leaseDurationSeconds was judged by.
	duration, longest time.Duration
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
	// The first reconcile: the process started or became leader.
	r.window.Start(now)
	holder, err := r.holderLease(ctx, qd, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	in, err := r.observe(ctx, qd, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	// The owner goes first: the membership's partition rules ask for it.
	quorumExpiry := membership.SetQuorum(&qd.Status, holder, now, in.ObservingSince)
	in.Quorum.Owner = qd.Status.Owner
	qd.Status.Nodes, *changes = membership.Compute(in)
	membership.SetReady(&qd.Status)
	return requeueAt(now, membership.NextChange(in), quorumExpiry), nil
}

// observe gathers the members, their agents' Leases (by name: Lease <LeaseNamespace>/<node>) and
// the paused nodes. A Lease that looks run out or missing in the cache is read again from the API
// server before it counts so.
func (r *MembershipReconciler) observe(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk, now time.Time) (membership.Input, error) {
	var nodes corev1.NodeList
	if err := r.List(ctx, &nodes, client.MatchingLabelsSelector{Selector: membership.Selector(qd)}); err != nil {
		return membership.Input{}, err
	}
	spec := qd.Spec.LeaseDurationOrDefault()
	detection := membership.Detection(qd.Spec.Heartbeat)
	renew := membership.RenewInterval(spec, detection)
	leases := map[string]*coordinationv1.Lease{}
	for _, n := range nodes.Items {
		l, err := r.nodeLease(ctx, r.Client, n.Name)
		if err != nil {
			return membership.Input{}, err
		}
		leases[n.Name] = l
		// Old, by the cache, or older than what the API server showed before? Read it from the
		// API server: a renewal the cache has not caught up with counts as seen now.
		j, behind := r.judge(n.Name, l, spec, now)
		if behind || j.Missing || membership.Age(now, j.Seen, r.window.Since(now)) > min(2*renew, j.Duration) {
			if leases[n.Name], err = r.nodeLease(ctx, r.APIReader, n.Name); err != nil {
				return membership.Input{}, fmt.Errorf("confirming the Lease of node %s: %w", n.Name, err)
			}
			r.window.Read(r.Clock.Now())
		}
	}
	in := membership.Input{Now: now, ObservingSince: r.window.Since(now), Leases: map[string]membership.Lease{},
		LastHeard: map[string]time.Time{}, Paused: map[string]bool{}, RenewInterval: renew, Detection: detection,
		HeartbeatInterval: qd.Spec.Heartbeat.IntervalOrDefault(), ExtraMargin: r.FenceGrace, Previous: qd.Status.Nodes,
		Quorum: membership.Quorum{Type: qd.Spec.QuorumTypeOrDefault(), Owner: qd.Status.Owner}}
	for _, n := range nodes.Items {
		in.Members = append(in.Members, n.Name)
		in.Leases[n.Name], _ = r.judge(n.Name, leases[n.Name], spec, now)
	}
	for _, p := range qd.Spec.PausedNodes {
		in.Paused[p.Name] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastHeard == nil {
		r.lastHeard = map[string]time.Time{}
	}
	for _, h := range membership.Heard(in) {
		r.lastHeard[qd.Name+"/"+h] = now
	}
	for _, m := range in.Members {
		if t, ok := r.lastHeard[qd.Name+"/"+m]; ok {
			in.LastHeard[m] = t
		}
	}
	return in, nil
}

// nodeLease reads node's agent's Lease through c: nil when there is none, or when it is not the
// node's (its holderIdentity is another's, or it was never renewed).
func (r *MembershipReconciler) nodeLease(ctx context.Context, c client.Reader, node string) (*coordinationv1.Lease, error) {
	l := &coordinationv1.Lease{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: r.LeaseNamespace, Name: node}, l); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != node || l.Spec.RenewTime == nil {
		return nil, nil
	}
	return l, nil
}

// judge turns node's agent's Lease (nil: none) into what Compute reads: when this manager first
// saw its renewTime, and the duration its agent published. behind says that l is older than a
// version this manager saw before (see seen).
func (r *MembershipReconciler) judge(node string, l *coordinationv1.Lease, spec time.Duration, now time.Time) (_ membership.Lease, behind bool) {
	key := r.LeaseNamespace + "/" + node
	if l == nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		rec := r.renewals[key]
		return membership.Lease{Missing: true, Seen: rec.seen, Duration: max(rec.duration, spec)}, false
	}
	seen, d, behind := r.seen(key, l, spec, now)
	v, err := membership.ParseView(l.Annotations[wolfpackv1alpha1.ViewAnnotation])
	return membership.Lease{Seen: seen, Duration: d, View: v, ViewErr: err}, behind
}

// holderLease reads the quorum holder's Lease, from the API server again when it looks run out.
func (r *MembershipReconciler) holderLease(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk, now time.Time) (membership.HolderLease, error) {
	key := client.ObjectKey{Namespace: r.LeaseNamespace, Name: membership.QuorumLeaseName(qd.Name)}
	out := membership.HolderLease{Name: key.String()}
	spec := qd.Spec.LeaseDurationOrDefault()
	for _, c := range []client.Reader{r.Client, r.APIReader} {
		l := &coordinationv1.Lease{}
		if err := c.Get(ctx, key, l); client.IgnoreNotFound(err) != nil {
			return out, err
		} else if c == r.APIReader {
			r.window.Read(r.Clock.Now())
		}
		out = membership.HolderLease{Name: key.String()}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || l.Spec.RenewTime == nil {
			// None, or released: no owner, and nobody is outvoted for want of one.
			return out, nil
		}
		out.Holder = *l.Spec.HolderIdentity
		var behind bool
		out.Seen, out.Duration, behind = r.seen(key.String(), l, spec, now)
		out.Epoch = l.Annotations[wolfpackv1alpha1.EpochAnnotation]
		if !behind && membership.Age(now, out.Seen, r.window.Since(now)) <= out.Duration {
			return out, nil
		}
		// Run out, or older than before, by the cache: read it again from the API server.
	}
	return out, nil
}

// seen returns when this manager first saw the Lease's latest renewTime, and the duration it is
// judged by (membership.LeaseDuration). A renewTime it never saw before counts as seen now; one
// it saw before (a cache that lags behind an uncached read) changes nothing. The renewTime,
// written by another machine's clock, is never compared with this manager's clock, nor ordered.
// A manager that just started observing gives every Lease a whole duration (membership.Age).
// behind says that l is such an older version.
func (r *MembershipReconciler) seen(key string, l *coordinationv1.Lease, spec time.Duration, now time.Time) (_ time.Time, _ time.Duration, behind bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.renewals == nil {
		r.renewals = map[string]renewal{}
	}
	rec := r.renewals[key]
	renewed := l.Spec.RenewTime.Time
	switch {
	case !rec.seen.IsZero() && rec.renewTime.Equal(renewed):
	case slices.ContainsFunc(rec.past, renewed.Equal):
		// An older renewal, from a cache that lags: not new.
		behind = true
	default:
		if !rec.seen.IsZero() {
			rec.past = append(rec.past, rec.renewTime)
			if len(rec.past) > renewalHistory {
				rec.past = slices.Clone(rec.past[len(rec.past)-renewalHistory:])
			}
		}
		rec.renewTime, rec.seen = renewed, now
	}
	rec.duration = membership.LeaseDuration(l.Spec.LeaseDurationSeconds, spec, rec.longest)
	if l.Spec.LeaseDurationSeconds == nil || *l.Spec.LeaseDurationSeconds <= 0 {
		rec.longest = rec.duration
	}
	r.renewals[key] = rec
	return rec.seen, rec.duration, behind
}

// watchStalls is the stall detector: it ticks every membership.StallTick, and a gap of more
// than membership.StallGap between ticks (the manager was stopped, starved or swapped out)
// restarts the observation. Beside it, a cheap uncached read of the Lease namespace every tick
// tells when the manager regains the API server after losing it, which restarts it too. It runs
// only while this manager is the leader.
func (r *MembershipReconciler) watchStalls(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("membership")
	go r.probeAPI(ctx)
	t := r.Clock.NewTicker(membership.StallTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			if r.window.Tick(r.Clock.Now()) {
				log.Info("the manager was stalled: observing every Lease for a whole duration again")
			}
		}
	}
}

func (r *MembershipReconciler) probeAPI(ctx context.Context) {
	log := ctrl.LoggerFrom(ctx).WithName("membership")
	t := r.Clock.NewTicker(membership.StallTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		pctx, cancel := context.WithTimeout(ctx, membership.StallGap)
		var leases coordinationv1.LeaseList
		err := r.APIReader.List(pctx, &leases, client.InNamespace(r.LeaseNamespace), client.Limit(1))
		cancel()
		if err == nil && r.window.Read(r.Clock.Now()) {
			log.Info("the manager regained the API server: observing every Lease for a whole duration again")
		}
	}
}

// SetupWithManager registers the controller, watching the clusters, their nodes and the agents'
// and holders' Leases (found by their cluster label; read by name), and its stall detector.
func (r *MembershipReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := ctrl.NewControllerManagedBy(mgr).
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
		Complete(r); err != nil {
		return err
	}
	return mgr.Add(manager.RunnableFunc(r.watchStalls))
}
