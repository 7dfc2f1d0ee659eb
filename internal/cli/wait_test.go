package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/controllers"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/repo"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
	"github.com/wolfpack-ha/wolfpack/internal/test/simnode"
)

// TestMoveWaitWithManager follows a real move: the manager's controllers run in-process over a
// cluster of their own (cluster, namespace and nodes "wait"), with simulated kubelets and node
// agents, and kubectl cluster move --wait follows the sample group to the other node.
func TestMoveWaitWithManager(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the manager")
	}
	ctx := context.Background()
	const ns, name = "wait", "wait"
	a, b := "wait-1", "wait-2"
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	nodeLabels := map[string]string{wolfpackv1alpha1.ClusterLabel: name}
	for _, n := range []string{a, b} {
		must(t, simnode.CreateNode(ctx, k8sClient, n, nodeLabels))
	}
	must(t, envtest.BoundClaim(ctx, k8sClient, ns, "sql-data"))
	samples, err := repo.Samples()
	must(t, err)
	for _, obj := range samples {
		switch obj.GetKind() {
		case "QuorumDisk":
			obj.SetName(name)
			// This test's manager sees only this cluster, so that it leaves the fixture alone.
			obj.SetLabels(map[string]string{"wolfpack.dev/test": name})
			must(t, unstructured.SetNestedStringMap(obj.Object, nodeLabels, "spec", "nodeSelector"))
			must(t, unstructured.SetNestedField(obj.Object, "250ms", "spec", "heartbeat", "interval"))
		case "ResourceGroup":
			obj.SetNamespace(ns)
			must(t, unstructured.SetNestedField(obj.Object, name, "spec", "cluster"))
			must(t, unstructured.SetNestedStringSlice(obj.Object, []string{a, b}, "spec", "preferredOwners"))
		default:
			obj.SetNamespace(ns)
		}
		must(t, k8sClient.Create(ctx, obj))
	}
	// Deleted last, once the manager has stopped: the other tests expect one cluster.
	t.Cleanup(func() {
		_ = k8sClient.Delete(context.Background(), builder.QuorumDisk(name).Obj())
	})
	kubelet := simnode.Start(k8sClient, ns, a, b)
	t.Cleanup(kubelet.Stop)
	startManager(t, ns, name)

	poll.WaitEvery(t, "group sql Online on "+a, 90*time.Second, 100*time.Millisecond, func() error {
		g := getGroup(t, ns, "sql")
		if g.Status.State != wolfpackv1alpha1.GroupOnline || g.Status.OwnerNode != a {
			return fmt.Errorf("group is %s on %q", g.Status.State, g.Status.OwnerNode)
		}
		return nil
	})

	out := ok(t, "move", "sql", "--wait", "--timeout", "2m", "-n", ns)
	for _, want := range []string{
		"Move of group wait/sql from wait-1 to wait-2 requested.",
		"  offline on wait-1, wave 1/4: server\n",
		"  online on wait-2, wave 4/4: server\n",
		"Group wait/sql is Online on wait-2 (epoch 2).",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("move --wait output lacks %q:\n%s", want, out)
		}
	}
	if g := getGroup(t, ns, "sql"); g.Status.OwnerNode != b || g.Annotations[wolfpackv1alpha1.MoveToAnnotation] != "" {
		t.Errorf("after the move, the group is on %q with annotations %v", g.Status.OwnerNode, g.Annotations)
	}
	// The manager's Events are in the cluster log.
	poll.WaitEvery(t, "the MoveSucceeded Event in the log", 30*time.Second, 100*time.Millisecond, func() error {
		if log := ok(t, "log", "--group", "sql", "-n", ns); !strings.Contains(log, "MoveSucceeded") || !strings.Contains(log, "wolfpack-manager") {
			return fmt.Errorf("log:\n%s", log)
		}
		return nil
	})
}

// startManager runs the manager's controllers, watching only namespace and the QuorumDisk
// labelled for test, until the test ends.
func startManager(t *testing.T, namespace, test string) {
	t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:     scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		Cache: cache.Options{
			DefaultNamespaces: map[string]cache.Config{namespace: {}},
			ByObject: map[client.Object]cache.ByObject{
				&coordinationv1.Lease{}:        {Namespaces: map[string]cache.Config{envtest.LeaseNamespace: {}}},
				&wolfpackv1alpha1.QuorumDisk{}: {Label: labels.SelectorFromSet(labels.Set{"wolfpack.dev/test": test})},
			},
		},
	})
	must(t, err)
	must(t, controllers.Setup(mgr, controllers.Options{FenceGrace: 2 * time.Second, Concurrency: 2, LeaseNamespace: envtest.LeaseNamespace}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}
