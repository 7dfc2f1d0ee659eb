package integration

import (
	"context"
	"sync"
	"testing"
	"time"

	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/wolfpack-ha/wolfpack/controllers"
	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
	"github.com/wolfpack-ha/wolfpack/internal/test/scheme"
	"github.com/wolfpack-ha/wolfpack/internal/test/simnode"
)

// fenceGrace is the extra fence margin (--fence-grace): none, as by default.
const fenceGrace = 0

// startManager runs the Failover Manager and Resource Manager in-process until the test ends or
// the returned stop is called.
func startManager(t *testing.T) (stop func()) {
	t.Helper()
	return startManagerWithClock(t, clock.RealClock{})
}

// startManagerWithClock is startManager with the Failover Manager's clock given.
func startManagerWithClock(t *testing.T, groupClock clock.PassiveClock) (stop func()) {
	t.Helper()
	return startManagerWith(t, func(o *controllers.Options) { o.GroupClock = groupClock })
}

// startManagerWith is startManager with the options changed by set.
func startManagerWith(t *testing.T, set func(*controllers.Options)) (stop func()) {
	t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:  scheme.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		// Each test's manager is its own; controller names repeat across them.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		Cache:      controllers.CacheOptions(envtest.LeaseNamespace),
	})
	if err != nil {
		t.Fatal(err)
	}
	o := controllers.Options{FenceGrace: fenceGrace, Concurrency: 2, LeaseNamespace: envtest.LeaseNamespace}
	set(&o)
	if err := controllers.Setup(mgr, o); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func startKubelet(tb testing.TB, namespace string, nodes ...string) *simnode.Kubelet {
	tb.Helper()
	k := simnode.Start(k8sClient, namespace, nodes...)
	tb.Cleanup(k.Stop)
	return k
}

func createNode(ctx context.Context, name string, labels map[string]string) error {
	return simnode.CreateNode(ctx, k8sClient, name, labels)
}

// eventually polls check until it returns nil or the deadline passes; deadlines hold on a loaded
// two-core machine.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	poll.WaitEvery(t, what, settle, 50*time.Millisecond, check)
}
