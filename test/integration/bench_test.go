package integration

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/controllers"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
	"github.com/wolfpack-ha/wolfpack/internal/test/scheme"
)

// benchConcurrency is the manager's default --concurrency.
const benchConcurrency = 4

// writeCounter counts the API requests that change something.
type writeCounter struct {
	rt     http.RoundTripper
	writes *atomic.Int64
}

func (c writeCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet {
		c.writes.Add(1)
	}
	return c.rt.RoundTrip(req)
}

// BenchmarkHundredGroups brings 100 groups of 5 resources online on one node, then moves them all
// to the other, with the manager in-process against envtest. It reports the time until all are
// Online, the time until all moves are done, and the manager's API writes per group move.
//
//	make bench
func BenchmarkHundredGroups(b *testing.B) {
	const groups = 100
	for range b.N {
		b.StopTimer()
		ctx := context.Background()
		ns := fmt.Sprintf("bench-%d", time.Now().UnixNano())
		must(b, k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
		a, bn := ns+"-a", ns+"-b"
		labels := map[string]string{wp.ClusterLabel: ns}
		must(b, createNode(ctx, a, labels))
		must(b, createNode(ctx, bn, labels))
		must(b, k8sClient.Create(ctx, builder.QuorumDisk(ns).NodeSelector(labels).Obj()))
		startKubelet(b, ns, a, bn)
		for i := range groups {
			createBenchGroup(b, ns, fmt.Sprintf("g%03d", i), []string{a, bn})
		}

		writes := &atomic.Int64{}
		cfg := rest.CopyConfig(env.Config)
		cfg.QPS, cfg.Burst = 50, 100 // the manager's defaults
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return writeCounter{rt: rt, writes: writes} }
		stop := startBenchManager(b, cfg)

		b.StartTimer()
		start := time.Now()
		waitAll(b, ns, a, groups)
		online := time.Since(start)

		writesBefore := writes.Load()
		var list wp.ResourceGroupList
		must(b, k8sClient.List(ctx, &list, client.InNamespace(ns)))
		moveStart := time.Now()
		for i := range list.Items {
			g := &list.Items[i]
			patch := client.MergeFrom(g.DeepCopy())
			g.Annotations = map[string]string{wp.MoveToAnnotation: bn}
			must(b, k8sClient.Patch(ctx, g, patch))
		}
		waitAll(b, ns, bn, groups)
		moved := time.Since(moveStart)
		b.StopTimer()
		stop()

		b.ReportMetric(online.Seconds(), "s-online")
		b.ReportMetric(moved.Seconds(), "s-move")
		b.ReportMetric(float64(writes.Load()-writesBefore)/groups, "writes/move")
	}
}

func startBenchManager(b *testing.B, cfg *rest.Config) func() {
	b.Helper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:     scheme.Scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	must(b, err)
	must(b, controllers.Setup(mgr, controllers.Options{FenceGrace: fenceGrace, Concurrency: benchConcurrency}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("manager: %v", err)
		}
	}
}

// createBenchGroup makes a group of the sample's shape: vol <- ip <- svc <- app, vol <- side.
func createBenchGroup(b *testing.B, ns, name string, owners []string) {
	b.Helper()
	ctx := context.Background()
	must(b, envtest.BoundClaim(ctx, k8sClient, ns, name))

	must(b, k8sClient.Create(ctx, builder.Group(ns, name).Cluster(ns).PreferredOwners(owners...).Obj()))
	pod := func(app string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: app, Image: "busybox"}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}}},
		}}
	}
	resource := func(kind string) *builder.ResourceWrapper { return builder.Resource(ns, name+"-"+kind).Group(name) }
	for _, r := range []*builder.ResourceWrapper{
		resource("vol").Volume(name),
		resource("ip").DependsOn(name + "-vol").IPAddress("192.0.2.10"),
		resource("svc").DependsOn(name + "-ip").Service(wp.ServiceResource{ServiceName: name, Ports: []corev1.ServicePort{{Port: 80}}}),
		resource("app").DependsOn(name + "-svc").Workload(pod("app")),
		resource("side").DependsOn(name + "-vol").Workload(pod("side")),
	} {
		must(b, k8sClient.Create(ctx, r.Obj()))
	}
}

// waitAll waits until every group of the namespace is Online on node.
func waitAll(b *testing.B, ns, node string, groups int) {
	b.Helper()
	poll.WaitEvery(b, fmt.Sprintf("every group Online on %s", node), 10*time.Minute, 100*time.Millisecond, func() error {
		var list wp.ResourceGroupList
		if err := k8sClient.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		done := 0
		for _, g := range list.Items {
			if g.Status.State == wp.GroupOnline && g.Status.OwnerNode == node {
				done++
			}
		}
		if done != groups {
			return fmt.Errorf("%d of %d groups Online", done, groups)
		}
		return nil
	})
}
