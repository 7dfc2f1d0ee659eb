package controllers

import (
	"fmt"
	"time"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/wolfpack-ha/wolfpack/internal/resourcetype"
)

// Options configure the controllers.
type Options struct {
	// FenceGrace is how long a node must be NotReady before its groups are taken from it.
	FenceGrace time.Duration
	// Concurrency is how many groups, and twice as many resources, are reconciled at once.
	Concurrency int
	// GroupClock and ResourceClock are the controllers' clocks; real time when nil.
	GroupClock, ResourceClock clock.PassiveClock
}

// Setup registers the Failover Manager and the Resource Manager with mgr.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.GroupClock == nil {
		o.GroupClock = clock.RealClock{}
	}
	if o.ResourceClock == nil {
		o.ResourceClock = clock.RealClock{}
	}
	recorder := mgr.GetEventRecorder("wolfpack-manager")
	if err := (&ResourceGroupReconciler{
		Client: mgr.GetClient(), Recorder: recorder, Clock: o.GroupClock,
		FenceGrace: o.FenceGrace, Concurrency: o.Concurrency,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the ResourceGroup controller: %w", err)
	}
	if err := (&ResourceReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder, Clock: o.ResourceClock,
		FenceGrace: o.FenceGrace, Concurrency: 2 * o.Concurrency,
		Handlers: resourcetype.NewRegistry(resourcetype.Clients{Client: mgr.GetClient(), Reader: mgr.GetAPIReader()}),
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the Resource controller: %w", err)
	}
	return nil
}
