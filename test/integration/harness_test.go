package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/controllers"
	"github.com/wolfpack-ha/wolfpack/internal/resourcetype"
)

// fenceGrace is short so that tests of node loss finish quickly.
const fenceGrace = 2 * time.Second

// startManager runs the Failover Manager and Resource Manager in-process until the test ends or
// the returned stop is called.
func startManager(t *testing.T) (stop func()) {
	t.Helper()
	return startManagerWithClock(t, clock.RealClock{})
}

// startManagerWithClock is startManager with the Failover Manager's clock given.
func startManagerWithClock(t *testing.T, groupClock clock.PassiveClock) (stop func()) {
	t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		// Each test's manager is its own; controller names repeat across them.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	recorder := mgr.GetEventRecorder("wolfpack-manager")
	if err := (&controllers.ResourceGroupReconciler{Client: mgr.GetClient(), Recorder: recorder, Clock: groupClock,
		FenceGrace: fenceGrace}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	if err := (&controllers.ResourceReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder, Clock: clock.RealClock{},
		FenceGrace: fenceGrace,
		Handlers:   resourcetype.NewRegistry(resourcetype.Clients{Client: mgr.GetClient(), Reader: mgr.GetAPIReader()}),
	}).SetupWithManager(mgr); err != nil {
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

// kubelet stands in for the kubelets of a test's nodes: it runs pods bound to a live node
// (Running and Ready at once), finishes their graceful deletion, and does nothing for a dead one.
type kubelet struct {
	namespace string
	mu        sync.Mutex
	alive     map[string]bool
	// held are "resource@node" whose pods neither start nor stop, as on a wedged container runtime.
	held map[string]bool
	// started counts the pods that ran, by name: a pod that started twice is a bug.
	started map[string]int
}

func startKubelet(tb testing.TB, namespace string, nodes ...string) *kubelet {
	tb.Helper()
	k := &kubelet{namespace: namespace, alive: map[string]bool{}, held: map[string]bool{}, started: map[string]int{}}
	for _, n := range nodes {
		k.alive[n] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			k.sync(ctx)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	tb.Cleanup(func() { cancel(); <-done })
	return k
}

func (k *kubelet) sync(ctx context.Context) {
	var pods corev1.PodList
	if err := k8sClient.List(ctx, &pods, client.InNamespace(k.namespace)); err != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := range pods.Items {
		p := &pods.Items[i]
		if !k.alive[p.Spec.NodeName] || k.held[p.Labels[wp.ResourceLabel]+"@"+p.Spec.NodeName] {
			continue
		}
		switch {
		case p.DeletionTimestamp != nil:
			_ = k8sClient.Delete(ctx, p, client.GracePeriodSeconds(0))
		case p.Status.Phase == "" || p.Status.Phase == corev1.PodPending:
			p.Status.Phase = corev1.PodRunning
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
			if err := k8sClient.Status().Update(ctx, p); err == nil {
				k.started[p.Name]++
			}
		}
	}
}

// fail makes the running pod of a resource fail, as a crashed container would.
func (k *kubelet) fail(ctx context.Context, namespace, resource string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var pods corev1.PodList
	if err := k8sClient.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabels{wp.ResourceLabel: resource}); err != nil {
		return err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			p.Status.Phase = corev1.PodFailed
			p.Status.Reason = "Crashed"
			return k8sClient.Status().Update(ctx, p)
		}
	}
	return fmt.Errorf("no running pod of %s", resource)
}

// hold wedges the pods of a resource on a node: they neither start nor stop.
func (k *kubelet) hold(resource, node string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.held[resource+"@"+node] = true
}

// pause stops or resumes a node's kubelet without the node going NotReady: its pods neither
// start nor finish stopping meanwhile.
func (k *kubelet) pause(node string, paused bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.alive[node] = !paused
}

// kill stops a node's kubelet and marks the node NotReady, as the node lifecycle controller
// would after the node stopped renewing its Lease.
func (k *kubelet) kill(ctx context.Context, node string) error {
	k.mu.Lock()
	k.alive[node] = false
	k.mu.Unlock()
	return setNodeReady(ctx, node, corev1.ConditionUnknown)
}

func createNode(ctx context.Context, name string, labels map[string]string) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := k8sClient.Create(ctx, n); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return setNodeReady(ctx, name, corev1.ConditionTrue)
}

func setNodeReady(ctx context.Context, name string, status corev1.ConditionStatus) error {
	n := &corev1.Node{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
		return err
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status,
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "Test"}}
	return k8sClient.Status().Update(ctx, n)
}

// eventually polls check until it returns nil or the deadline passes; deadlines hold on a loaded
// two-core machine.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, settle, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
