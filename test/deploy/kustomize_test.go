package deploy

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// fieldManager applies the objects of the tests.
const fieldManager = "wolfpack-test-deploy"

// kustomize is `kubectl kustomize dir`, with kustomize's own library.
func kustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot, dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	objs, err := decode(out)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	if len(objs) == 0 {
		t.Fatalf("kustomize build %s: no objects", dir)
	}
	return objs
}

// TestKustomize builds every base of config/ and applies it, server-side, as `kubectl apply
// --server-side -k` would, in an order that works on an empty cluster: the CRDs, the manager
// (with the Namespace), the RBAC, the agent, everything again through config/default (a no-op
// by then), then the samples, on an API server that has none of them yet.
func TestKustomize(t *testing.T) {
	ctx := t.Context()
	c, err := client.New(kustomizeEnv.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}

	bases := map[string][]*unstructured.Unstructured{}
	var applied []*unstructured.Unstructured
	for _, dir := range []string{"config/crd", "config/manager", "config/rbac", "config/agent", "config/quorum-holder", "config/default", "config/samples"} {
		objs := kustomize(t, dir)
		bases[dir] = objs
		if dir == "config/samples" {
			waitEstablished(t, c, bases["config/crd"])
		}
		start := time.Now()
		for _, o := range objs {
			a, err := applyObject(ctx, c, o)
			if err != nil {
				t.Errorf("%s: applying %s: %v", dir, id(o), err)
				continue
			}
			applied = append(applied, a)
		}
		t.Logf("%s: %d objects applied in %s: %s", dir, len(objs), time.Since(start).Round(time.Millisecond), strings.Join(ids(objs), ", "))
		for _, w := range warnings.take() {
			t.Logf("%s: the API server warns: %s", dir, w)
		}
	}

	// config/default is the sum of the others but the samples.
	parts := make([]string, 0, len(bases["config/default"]))
	for _, dir := range []string{"config/crd", "config/manager", "config/rbac", "config/agent", "config/quorum-holder"} {
		parts = append(parts, ids(bases[dir])...)
	}
	slices.Sort(parts)
	if got := ids(bases["config/default"]); !slices.Equal(got, parts) {
		t.Errorf("config/default has\n  %q\nits bases have\n  %q", got, parts)
	}

	// The pods the Deployment and the DaemonSet would make are admitted in their namespace.
	t.Run("manager pod admitted", func(t *testing.T) {
		if err := admitPod(t, c, mustFind(t, bases["config/default"], "Deployment", "wolfpack-manager")); err != nil {
			t.Error(err)
		}
	})
	t.Run("node agent pod admitted", func(t *testing.T) {
		// wolfpack-system must admit the agent's host-network root pod (it once enforced the
		// restricted Pod Security level, and no agent pod would have started).
		if err := admitPod(t, c, mustFind(t, bases["config/default"], "DaemonSet", "wolfpack-node-agent")); err != nil {
			t.Error(err)
		}
	})

	// Every object is there.
	for _, o := range applied {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
			t.Errorf("%s: %v", id(o), err)
		}
	}
}

// applyObject applies o server-side and returns what it applied: a namespaced object without a
// namespace goes to "default", as kubectl would send it.
func applyObject(ctx context.Context, c client.Client, o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	o = o.DeepCopy()
	// A kind whose CRD has just been established may be unknown to the client for a moment.
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		namespaced, err := c.IsObjectNamespaced(o)
		if meta.IsNoMatchError(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if namespaced && o.GetNamespace() == "" {
			o.SetNamespace(metav1.NamespaceDefault)
		}
		err = c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(fieldManager), client.ForceOwnership)
		if meta.IsNoMatchError(err) {
			return false, nil
		}
		return err == nil, err
	})
	return o, err
}

// admitPod asks the API server, in a dry run, to create a pod from the template of a workload
// (Deployment or DaemonSet) on a node, as its controller would: admission, Pod Security
// included, answers as for a real pod.
func admitPod(t *testing.T, c client.Client, workload *unstructured.Unstructured) error {
	t.Helper()
	tmpl := podTemplate(t, workload)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: workload.GetNamespace(), GenerateName: workload.GetName() + "-", Labels: tmpl.Labels},
		Spec:       tmpl.Spec,
	}
	pod.Spec.NodeName = "node-1"
	if err := c.Create(t.Context(), pod, client.DryRunAll); err != nil {
		return fmt.Errorf("a pod of %s is refused: %w", id(workload), err)
	}
	return nil
}

// waitEstablished waits until the API server serves the CRDs.
func waitEstablished(t *testing.T, c client.Client, crds []*unstructured.Unstructured) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, crd := range crds {
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(crd.GroupVersionKind())
			if err := c.Get(ctx, client.ObjectKeyFromObject(crd), got); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			if !established(got) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the CRDs are not established: %v", err)
	}
}

func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
