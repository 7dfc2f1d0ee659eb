package integration

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/patch"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
)

// TestPatchHelper writes a reconcile's changes through the patch helper against the API server.
func TestPatchHelper(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	g := builder.Group(ns, "g").Annotation(wp.MoveToAnnotation, "b").Annotation("keep", "me").
		Cluster("c").DesiredState(wp.DesiredOnline).Obj()
	must(t, k8sClient.Create(ctx, g))
	read := func() *wp.ResourceGroup {
		got := &wp.ResourceGroup{}
		must(t, k8sClient.Get(ctx, client.ObjectKeyFromObject(g), got))
		return got
	}

	// Nothing changed: nothing written.
	obj := read()
	if err := patch.NewHelper(obj, k8sClient).Patch(ctx, obj); err != nil {
		t.Fatal(err)
	}
	if rv := read().ResourceVersion; rv != obj.ResourceVersion {
		t.Errorf("nothing changed, but the resourceVersion went from %s to %s", obj.ResourceVersion, rv)
	}

	// Status, a finalizer and an annotation removed: all written.
	obj = read()
	h := patch.NewHelper(obj, k8sClient)
	obj.Status.State, obj.Status.OwnerNode = wp.GroupOnline, "a"
	obj.Finalizers = append(obj.Finalizers, "example.com/f")
	delete(obj.Annotations, wp.MoveToAnnotation)
	if err := h.Patch(ctx, obj); err != nil {
		t.Fatal(err)
	}
	got := read()
	if got.Status.OwnerNode != "a" || len(got.Finalizers) != 1 || got.Annotations[wp.MoveToAnnotation] != "" || got.Annotations["keep"] != "me" {
		t.Errorf("after Patch: status %+v, finalizers %v, annotations %v", got.Status, got.Finalizers, got.Annotations)
	}
	if obj.Finalizers[0] != "example.com/f" || obj.Status.OwnerNode != "a" || obj.ResourceVersion != got.ResourceVersion {
		t.Errorf("obj is not what the server returned: %+v", obj)
	}

	// A status decided on a version someone else has since changed is not written.
	obj = read()
	h = patch.NewHelper(obj, k8sClient)
	other := read()
	other.Labels = map[string]string{"touched": "yes"}
	must(t, k8sClient.Update(ctx, other))
	obj.Status.OwnerNode = "b"
	if err := h.Patch(ctx, obj); !apierrors.IsConflict(err) {
		t.Errorf("a stale status patch answered %v, want a conflict", err)
	}
	if got := read(); got.Status.OwnerNode != "a" {
		t.Errorf("a stale status was written: owner %q", got.Status.OwnerNode)
	}

	// So is a stale list of finalizers, which a merge patch replaces whole.
	obj = read()
	h = patch.NewHelper(obj, k8sClient)
	other = read()
	other.Finalizers = append(other.Finalizers, "example.com/g")
	must(t, k8sClient.Update(ctx, other))
	obj.Finalizers = nil
	if err := h.Patch(ctx, obj); !apierrors.IsConflict(err) {
		t.Errorf("a stale finalizers patch answered %v, want a conflict", err)
	}

	// An annotation removed alone needs no lock: the key goes, whatever else changed.
	obj = read()
	obj.Annotations[wp.MoveToAnnotation] = "c"
	must(t, k8sClient.Update(ctx, obj))
	obj = read()
	h = patch.NewHelper(obj, k8sClient)
	other = read()
	other.Labels["touched"] = "again"
	must(t, k8sClient.Update(ctx, other))
	delete(obj.Annotations, wp.MoveToAnnotation)
	if err := h.Patch(ctx, obj); err != nil {
		t.Fatal(err)
	}
	if got := read(); got.Annotations[wp.MoveToAnnotation] != "" || got.Labels["touched"] != "again" || len(got.Finalizers) != 2 {
		t.Errorf("after removing the annotation: %+v", got.ObjectMeta)
	}
	got = read()
	got.Finalizers = nil
	must(t, k8sClient.Update(ctx, got))
}
