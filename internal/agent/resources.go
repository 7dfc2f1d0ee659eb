package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/ipaddr"
	"github.com/wolfpack-ha/wolfpack/internal/monitor"
)

// Checker runs one health check; the Resource Monitor's Supervisor is one.
type Checker interface {
	Check(ctx context.Context, c monitor.Check) monitor.Result
}

// FieldManager is the field manager under which the agent of node writes its conditions.
func FieldManager(node string) string {
	return "wolfpack-node-agent/" + node
}

// Resources is the agent's Resource Monitor and floating address keeper: for each resource its
// node owns, it holds the floating address and runs the node-local health checks, and reports
// both in the resource's conditions.
type Resources struct {
	Client   client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	Node     string
	// Cluster is the node's QuorumDisk, whose spec.allowedAddressCIDRs the node checks a
	// floating address against before it adds it; empty for no check.
	Cluster string
	// Addresses adds and removes floating addresses.
	Addresses ipaddr.Manager
	// DefaultInterface is the interface of an address whose resource names none.
	DefaultInterface func() string
	// Monitor runs the health checks.
	Monitor Checker
	// CallTimeout bounds each API call; defaultCallTimeout when zero.
	CallTimeout time.Duration

	// lastRun remembers when each check last ran, by check key.
	lastRun sync.Map
}

// call bounds one API call.
func (r *Resources) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, cmp.Or(r.CallTimeout, defaultCallTimeout))
}

// Reconcile brings one resource's address and health checks in line with its placement.
func (r *Resources) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	res := &wolfpackv1alpha1.Resource{}
	gctx, cancel := r.call(ctx)
	defer cancel()
	if err := r.Client.Get(gctx, req.NamespacedName, res); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if res.Spec.IPAddress != nil {
		if err := r.address(ctx, res); err != nil {
			return ctrl.Result{}, err
		}
	}
	return r.checks(ctx, res)
}

// address adds or removes the resource's floating address and reports it.
func (r *Resources) address(ctx context.Context, res *wolfpackv1alpha1.Resource) error {
	a, err := AddressOf(res, r.DefaultInterface())
	if err != nil {
		if AddressWanted(res, r.Node) {
			return r.apply(ctx, res, AddressCondition(ipaddr.Address{}, r.Node, false, err))
		}
		return nil
	}
	wanted := AddressWanted(res, r.Node)
	// The manager refuses to place such a resource; the node checks again, so that an address
	// edited on an Online resource is not added before the manager has seen the edit.
	refused := r.refused(ctx, res)
	if refused != nil {
		wanted = false
	}
	held, err := r.Addresses.Present(a)
	if err != nil && wanted {
		return r.apply(ctx, res, AddressCondition(a, r.Node, false, err))
	}
	switch {
	case wanted && (!held || !AddressReported(res, true)):
		err := r.Addresses.Add(ctx, a)
		if err == nil && !held {
			r.Recorder.Eventf(res, nil, corev1.EventTypeNormal, wolfpackv1alpha1.AddressAddedReason, "AddAddress", "node %s added and announced %s", r.Node, a)
		}
		return r.apply(ctx, res, AddressCondition(a, r.Node, err == nil, err))
	case !wanted && held:
		if err := r.Addresses.Remove(ctx, a); err != nil {
			return fmt.Errorf("removing %s: %w", a, err)
		}
		r.Recorder.Eventf(res, nil, corev1.EventTypeNormal, wolfpackv1alpha1.AddressRemovedReason, "RemoveAddress", "node %s removed %s", r.Node, a)
	}
	// Only the agent of the node the resource is placed on speaks for it: another node that
	// removed a stale copy says nothing.
	if refused != nil && placedHere(res, r.Node) {
		return r.apply(ctx, res, AddressCondition(a, r.Node, false, refused))
	}
	if !wanted && res.Status.Node == r.Node && !AddressReported(res, false) {
		return r.apply(ctx, res, AddressCondition(a, r.Node, false, nil))
	}
	return nil
}

// refused says why the cluster does not allow the resource's floating address
// (QuorumDisk.spec.allowedAddressCIDRs), nil when it does or when the cluster cannot be read.
func (r *Resources) refused(ctx context.Context, res *wolfpackv1alpha1.Resource) error {
	if r.Cluster == "" {
		return nil
	}
	qd := &wolfpackv1alpha1.QuorumDisk{}
	gctx, cancel := r.call(ctx)
	defer cancel()
	if err := r.Client.Get(gctx, client.ObjectKey{Name: r.Cluster}, qd); err != nil {
		return nil
	}
	return qd.CheckAddress(res.Spec.IPAddress.Address)
}

// checks runs the resource's due health checks while it is Online here, and says when the next
// one is due.
func (r *Resources) checks(ctx context.Context, res *wolfpackv1alpha1.Resource) (ctrl.Result, error) {
	if res.Spec.HealthChecks == nil || res.Status.Node != r.Node || res.Status.State != wolfpackv1alpha1.ResourceOnline {
		return ctrl.Result{}, nil
	}
	pod, err := r.pod(ctx, res)
	if err != nil {
		return ctrl.Result{}, err
	}
	scheduled, err := ChecksFor(res, pod)
	if err != nil {
		// Bad input fails nothing: the resource keeps running, and the Event says what is wrong.
		r.Recorder.Eventf(res, nil, corev1.EventTypeWarning, "HealthCheckInvalid", "Monitor", "%v", err)
		return ctrl.Result{RequeueAfter: time.Minute}, nil
	}
	now := r.Clock.Now()
	next := time.Duration(0)
	for _, s := range scheduled {
		due := now
		if last, ok := r.lastRun.Load(s.Check.Key); ok {
			due = last.(time.Time).Add(s.Interval)
		}
		if wait := due.Sub(now); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		result := r.Monitor.Check(ctx, s.Check)
		r.lastRun.Store(s.Check.Key, now)
		if next == 0 || s.Interval < next {
			next = s.Interval
		}
		c, ok := MonitorCondition(s.Kind, result, r.Node)
		if !ok || (MonitorReported(res, c) && c.Status == metav1.ConditionTrue) {
			continue
		}
		if err := r.apply(ctx, res, c); err != nil {
			return ctrl.Result{}, err
		}
		if c.Status == metav1.ConditionFalse {
			// The manager takes it from here; the next check is of the restarted resource.
			return ctrl.Result{}, nil
		}
	}
	return ctrl.Result{RequeueAfter: next}, nil
}

// pod is the resource's running pod on this node, if it has one.
func (r *Resources) pod(ctx context.Context, res *wolfpackv1alpha1.Resource) (*corev1.Pod, error) {
	if res.Spec.Workload == nil {
		return nil, nil
	}
	var pods corev1.PodList
	ctx, cancel := r.call(ctx)
	defer cancel()
	if err := r.Client.List(ctx, &pods, client.InNamespace(res.Namespace),
		client.MatchingLabels{wolfpackv1alpha1.ResourceLabel: res.Name}); err != nil {
		return nil, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.NodeName == r.Node && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			return p, nil
		}
	}
	return nil, nil
}

// apply writes one condition of the resource's status under the agent's own field manager, only
// if the resource is still as read: a write about an older placement fails with a conflict.
func (r *Resources) apply(ctx context.Context, res *wolfpackv1alpha1.Resource, c metav1.Condition) error {
	c.ObservedGeneration = res.Generation
	c.LastTransitionTime = metav1.NewTime(r.Clock.Now())
	cond, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&c)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": wolfpackv1alpha1.GroupVersion.String(), "kind": "Resource",
		"metadata": map[string]any{"name": res.Name, "namespace": res.Namespace, "resourceVersion": res.ResourceVersion},
		"status":   map[string]any{"conditions": []any{cond}},
	}}
	ctx, cancel := r.call(ctx)
	defer cancel()
	err = r.Client.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager(r.Node)), client.ForceOwnership)
	if apierrors.IsConflict(err) {
		// The resource changed meanwhile; its new version is reconciled anew.
		return nil
	}
	return err
}

// SetupWithManager registers the reconciler for the Resources and the pods of this node.
func (r *Resources) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&wolfpackv1alpha1.Resource{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if name := o.GetLabels()[wolfpackv1alpha1.ResourceLabel]; name != "" {
				return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
			}
			return nil
		})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(concurrency, 1)}).
		Named("agent-resource").
		Complete(r)
}

// FloatingAddresses is the agent's ipaddr.Manager: it remembers every floating address this node
// holds for its groups (added here, or found present, as by a previous run of the agent), so that
// the fence path can remove them all, and it adds none while the node is fenced.
type FloatingAddresses struct {
	ipaddr.Manager

	// op lets one Add, Remove or Fence change the host at a time; Fence waits for it only as
	// long as its context lets it, so that an Add stuck in the kernel fails the fence (which is
	// retried) rather than holding up the agent's guard.
	op chan struct{}
	// mu guards held and fenced; it is never held across a call to the host.
	mu     sync.Mutex
	held   map[ipaddr.Address]bool
	fenced bool
}

// NewFloatingAddresses returns the floating addresses kept through m.
func NewFloatingAddresses(m ipaddr.Manager) *FloatingAddresses {
	return &FloatingAddresses{Manager: m, op: make(chan struct{}, 1), held: map[ipaddr.Address]bool{}}
}

// ErrFenced is the error of adding a floating address on a fenced node.
var ErrFenced = errors.New("the node is fenced: it holds no floating address")

func (f *FloatingAddresses) acquire(ctx context.Context) error {
	select {
	case f.op <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *FloatingAddresses) release() { <-f.op }

// Add adds a unless the node is fenced.
func (f *FloatingAddresses) Add(ctx context.Context, a ipaddr.Address) error {
	if err := f.acquire(ctx); err != nil {
		return fmt.Errorf("adding %s: %w", a, err)
	}
	defer f.release()
	f.mu.Lock()
	fenced := f.fenced
	if !fenced {
		// Held from the first attempt: a failed Add may have left the address on its interface.
		f.held[a] = true
	}
	f.mu.Unlock()
	if fenced {
		return fmt.Errorf("adding %s: %w", a, ErrFenced)
	}
	return f.Manager.Add(ctx, a)
}

// Remove removes a.
func (f *FloatingAddresses) Remove(ctx context.Context, a ipaddr.Address) error {
	if err := f.acquire(ctx); err != nil {
		return fmt.Errorf("removing %s: %w", a, err)
	}
	defer f.release()
	if err := f.Manager.Remove(ctx, a); err != nil {
		return err
	}
	f.mu.Lock()
	delete(f.held, a)
	f.mu.Unlock()
	return nil
}

// Present reports whether a is on its interface, and remembers it as held when it is.
func (f *FloatingAddresses) Present(a ipaddr.Address) (bool, error) {
	ok, err := f.Manager.Present(a)
	if ok {
		f.mu.Lock()
		f.held[a] = true
		f.mu.Unlock()
	}
	return ok, err
}

// Held returns the addresses held, sorted.
func (f *FloatingAddresses) Held() []ipaddr.Address {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ipaddr.Address, 0, len(f.held))
	for a := range f.held {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b ipaddr.Address) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// Fence stops adding addresses and removes every one held, within ctx. Its error names each
// address it could not remove; those stay held, for the next call.
func (f *FloatingAddresses) Fence(ctx context.Context) error {
	f.mu.Lock()
	f.fenced = true
	f.mu.Unlock()
	if err := f.acquire(ctx); err != nil {
		return fmt.Errorf("removing the floating addresses: another change of them is under way: %w", err)
	}
	defer f.release()
	var errs []error
	for _, a := range f.Held() {
		if err := f.Manager.Remove(ctx, a); err != nil {
			errs = append(errs, fmt.Errorf("removing floating address %s: %w", a, err))
			continue
		}
		f.mu.Lock()
		delete(f.held, a)
		f.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Unfence lets addresses be added again, once the node is no longer fenced.
func (f *FloatingAddresses) Unfence() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fenced = false
}
