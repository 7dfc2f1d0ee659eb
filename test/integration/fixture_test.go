package integration

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/repo"
	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
	"github.com/wolfpack-ha/wolfpack/internal/test/simnode"
)

// fixture is the sample cluster and group in a namespace of their own: a QuorumDisk named after
// the namespace over two nodes <ns>-a and <ns>-b, and the group "sql" of config/samples.
type fixture struct {
	ns, cluster string
	a, b        string
	kubelet     *simnode.Kubelet
	deps        map[string][]string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureThen(t, func(*fixture) {})
}

// newFixtureThen is newFixture, calling before once the nodes exist and before the samples are
// applied.
func newFixtureThen(t *testing.T, before func(*fixture)) *fixture {
	t.Helper()
	ctx := context.Background()
	ns := newNamespace(t)
	f := &fixture{ns: ns, cluster: ns, a: ns + "-a", b: ns + "-b", deps: map[string][]string{}}
	labels := map[string]string{wp.ClusterLabel: f.cluster}
	for _, n := range []string{f.a, f.b} {
		if err := createNode(ctx, n, labels); err != nil {
			t.Fatal(err)
		}
	}
	f.kubelet = startKubelet(t, ns, f.a, f.b)
	must(t, envtest.BoundClaim(ctx, k8sClient, ns, "sql-data"))

	before(f)
	samples, err := repo.Samples()
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range samples {
		switch obj.GetKind() {
		case "QuorumDisk":
			obj.SetName(f.cluster)
			must(t, unstructured.SetNestedStringMap(obj.Object, labels, "spec", "nodeSelector"))
			// A silent node is noticed after 1 s, so that tests of node loss are quick.
			must(t, unstructured.SetNestedField(obj.Object, "250ms", "spec", "heartbeat", "interval"))
		case "ResourceGroup":
			obj.SetNamespace(ns)
			must(t, unstructured.SetNestedField(obj.Object, f.cluster, "spec", "cluster"))
			must(t, unstructured.SetNestedStringSlice(obj.Object, []string{f.a, f.b}, "spec", "preferredOwners"))
		default:
			obj.SetNamespace(ns)
			deps, _, _ := unstructured.NestedSlice(obj.Object, "spec", "dependsOn")
			for _, d := range deps {
				f.deps[obj.GetName()] = append(f.deps[obj.GetName()], d.(map[string]any)["name"].(string))
			}
		}
		if err := k8sClient.Create(ctx, obj); err != nil && (obj.GetKind() == "Resource" || !apierrors.IsAlreadyExists(err)) {
			t.Fatalf("creating %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	return f
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func (f *fixture) group(t *testing.T) *wp.ResourceGroup {
	t.Helper()
	g := &wp.ResourceGroup{}
	must(t, k8sClient.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "sql"}, g))
	return g
}

// waitOnline waits until the group is Online on node with every resource Online there.
func (f *fixture) waitOnline(t *testing.T, node string) *wp.ResourceGroup {
	t.Helper()
	var g *wp.ResourceGroup
	eventually(t, "group sql Online on "+node, func() error {
		g = f.group(t)
		if g.Status.State != wp.GroupOnline || g.Status.OwnerNode != node {
			return fmt.Errorf("group is %s on %q (operation %+v)", g.Status.State, g.Status.OwnerNode, g.Status.Operation)
		}
		for _, r := range g.Status.Resources {
			if r.State != wp.ResourceOnline || r.Node != node {
				return fmt.Errorf("resource %s is %s on %q", r.Name, r.State, r.Node)
			}
		}
		return nil
	})
	return g
}

// watcher takes snapshots of the group's resources and pods, and checks in each what must hold
// at every instant: a resource is active (pending, online or going offline) only while all its
// dependencies are Online on the same node, and the group is active on one node at most.
type watcher struct {
	f      *fixture
	mu     sync.Mutex
	errors []string
	// activated is the order in which resources were first seen active, by snapshot.
	activated map[string]int
	snapshots int
	stop      func()
}

func (f *fixture) watch(t *testing.T) *watcher {
	t.Helper()
	w := &watcher{f: f, activated: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			w.snapshot(ctx)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	w.stop = func() { cancel(); <-done }
	t.Cleanup(w.stop)
	return w
}

func active(s wp.ResourceState) bool {
	return s == wp.ResourceOnlinePending || s == wp.ResourceOnline || s == wp.ResourceOfflinePending
}

func (w *watcher) snapshot(ctx context.Context) {
	var list wp.ResourceList
	if err := k8sClient.List(ctx, &list, client.InNamespace(w.f.ns)); err != nil {
		return
	}
	// Pods as of the same etcd revision as the resources, so that the snapshot is consistent.
	var pods corev1.PodList
	if err := k8sClient.List(ctx, &pods, client.InNamespace(w.f.ns), &client.ListOptions{Raw: &metav1.ListOptions{
		ResourceVersion: list.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact,
	}}); err != nil {
		if ctx.Err() != nil {
			return // stopping
		}
		w.mu.Lock()
		w.errors = append(w.errors, "listing pods at revision "+list.ResourceVersion+": "+err.Error())
		w.mu.Unlock()
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.snapshots++
	byName := map[string]wp.ResourceStatus{}
	for _, r := range list.Items {
		byName[r.Name] = r.Status
	}
	nodes := map[string]bool{}
	var where []string
	for _, r := range list.Items {
		s := r.Status
		if !active(s.State) {
			continue
		}
		nodes[s.Node] = true
		where = append(where, fmt.Sprintf("%s %s on %s", r.Name, s.State, s.Node))
		if _, seen := w.activated[r.Name]; !seen {
			w.activated[r.Name] = w.snapshots
		}
		for _, d := range w.f.deps[r.Name] {
			if ds := byName[d]; ds.State != wp.ResourceOnline || ds.Node != s.Node {
				w.errors = append(w.errors, fmt.Sprintf("%s is %s on %s while its dependency %s is %s on %q",
					r.Name, s.State, s.Node, d, ds.State, ds.Node))
			}
		}
	}
	for _, p := range pods.Items {
		// The group's pods; a quorum holder's pod is the cluster's, not the group's.
		if p.Labels[wp.GroupLabel] != "" && p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodFailed {
			nodes[p.Spec.NodeName] = true
			where = append(where, fmt.Sprintf("pod %s %s on %s", p.Name, p.Status.Phase, p.Spec.NodeName))
		}
	}
	if len(nodes) > 1 {
		w.errors = append(w.errors, fmt.Sprintf("the group is active on %d nodes at once: %v", len(nodes), where))
	}
}

// activatedSoFar is a copy of the snapshot in which each resource was first seen active.
func (w *watcher) activatedSoFar() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.activated)
}

// check stops the watcher and fails the test with what it saw go wrong.
func (w *watcher) check(t *testing.T) {
	t.Helper()
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.snapshots < 2 {
		t.Fatalf("only %d snapshots taken", w.snapshots)
	}
	for i, e := range w.errors {
		if i == 10 {
			t.Errorf("... and %d more", len(w.errors)-10)
			break
		}
		t.Error(e)
	}
	t.Logf("%d snapshots checked", w.snapshots)
}
