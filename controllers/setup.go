package controllers

import (
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wolfpack-ha/wolfpack/internal/arbitration"
	"github.com/wolfpack-ha/wolfpack/internal/resourcetype"
)

// Options configure the controllers.
type Options struct {
	// FenceGrace is an extra margin added to the silence after which the Membership Manager
	// counts a node whose Lease ran out as fenced (--fence-grace; zero by default, never
	// negative). No timer fences anything by itself.
	FenceGrace time.Duration
	// Concurrency is how many groups, and twice as many resources, are reconciled at once.
	Concurrency int
	// GroupClock and ResourceClock are the controllers' clocks; real time when nil.
	GroupClock, ResourceClock clock.PassiveClock
	// MembershipClock is the Membership Manager's monotonic clock, with the tickers of its
	// stall detector; real time when nil.
	MembershipClock clock.WithTicker
	// LeaseNamespace is where the node agents keep their Leases; the manager's cache must
	// include it.
	LeaseNamespace string
	// Holder says how quorum holder pods are made (LeaseNamespace and Block are filled in per
	// cluster). Without an image the manager runs no holder pods: they are run some other way.
	Holder arbitration.PodOptions
}

// CacheOptions limit the manager's cache of Leases to the node agents' namespace.
func CacheOptions(leaseNamespace string) cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&coordinationv1.Lease{}: {Namespaces: map[string]cache.Config{leaseNamespace: {}}},
	}}
}

// setup is a controller to register, by name for errors.
type setup struct {
	name string
	r    interface{ SetupWithManager(ctrl.Manager) error }
}

// Setup registers the controllers with mgr: the Membership Manager, the quorum holder's
// placement, the out-of-service taint, the Failover Manager and the Resource Manager.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.GroupClock == nil {
		o.GroupClock = clock.RealClock{}
	}
	if o.ResourceClock == nil {
		o.ResourceClock = clock.RealClock{}
	}
	if o.MembershipClock == nil {
		o.MembershipClock = clock.RealClock{}
	}
	if o.FenceGrace < 0 {
		return fmt.Errorf("FenceGrace %s: an extra margin cannot be negative", o.FenceGrace)
	}
	recorder := mgr.GetEventRecorder("wolfpack-manager")
	setups := []setup{
		{"membership", &MembershipReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder,
			Clock: o.MembershipClock, LeaseNamespace: o.LeaseNamespace, FenceGrace: o.FenceGrace}},
		{"out-of-service", &OutOfServiceReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder}},
		{"ResourceGroup", &ResourceGroupReconciler{Client: mgr.GetClient(), Recorder: recorder, Clock: o.GroupClock,
			Concurrency: o.Concurrency}},
		{"Resource", &ResourceReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder,
			Clock: o.ResourceClock, Concurrency: 2 * o.Concurrency,
			Handlers: resourcetype.NewRegistry(resourcetype.Clients{Client: mgr.GetClient(), Reader: mgr.GetAPIReader()})}},
	}
	if o.Holder.Image != "" {
		setups = append(setups, setup{"quorum holder", &QuorumHolderReconciler{Client: mgr.GetClient(), Recorder: recorder,
			LeaseNamespace: o.LeaseNamespace, Holder: o.Holder}})
	}
	for _, s := range setups {
		if err := s.r.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("setting up the %s controller: %w", s.name, err)
		}
	}
	return nil
}
