// Package patch writes what one reconcile changed in an object, once, at the end of the
// reconcile, as Cluster API's patch helper does: a reconciler takes a Helper right after it reads
// the object, changes the object in memory as it goes, and calls Patch in a deferred function, so
// that no return path, error or not, loses a change.
//
// The status goes first, through the status subresource: it is the checkpoint of what the
// manager decided (MSCS's Checkpoint Manager), and what follows it (a finalizer removed, a
// request annotation cleared) must never be seen before it.
package patch

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Helper remembers an object as it was read.
type Helper struct {
	client client.Client
	before client.Object
}

// NewHelper remembers obj as read, to write its changes later through c.
func NewHelper(obj client.Object, c client.Client) *Helper {
	return &Helper{client: c, before: obj.DeepCopyObject().(client.Object)}
}

// Patch writes what changed in obj since NewHelper, each part only when it changed:
//  1. the status, through the status subresource, over the version read: if anyone wrote the
//     object since, the patch fails with a conflict and the reconcile starts again from a fresh
//     read, so that a decision taken on a stale status is never written;
//  2. then the finalizers and annotations: over the version read (or just written) when the
//     finalizers changed, since a merge patch replaces the whole list; without that lock when
//     only annotations changed, since a merge patch changes only the keys it names.
//
// The spec is never written. After Patch, obj is what the API server returned.
func (h *Helper) Patch(ctx context.Context, obj client.Object) error {
	statusChanged, err := changed(h.before, obj, "status")
	if err != nil {
		return err
	}
	finalizers, annotations := obj.GetFinalizers(), obj.GetAnnotations()
	base := h.before
	if statusChanged {
		// The base carries obj's metadata, so that the status patch holds the status alone.
		from := h.before.DeepCopyObject().(client.Object)
		from.SetFinalizers(finalizers)
		from.SetAnnotations(annotations)
		if err := h.client.Status().Patch(ctx, obj, client.MergeFromWithOptions(from, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("writing the status of %s: %w", h.describe(obj), err)
		}
		// obj is now the server's copy: its new resourceVersion, and the metadata still to write.
		base = obj.DeepCopyObject().(client.Object)
	}
	finalizersChanged := !slices.Equal(base.GetFinalizers(), finalizers)
	if !finalizersChanged && maps.Equal(base.GetAnnotations(), annotations) {
		return nil
	}
	obj.SetFinalizers(finalizers)
	obj.SetAnnotations(annotations)
	var opts []client.MergeFromOption
	if finalizersChanged {
		opts = append(opts, client.MergeFromWithOptimisticLock{})
	}
	if err := h.client.Patch(ctx, obj, client.MergeFromWithOptions(base, opts...)); err != nil {
		return fmt.Errorf("writing the finalizers and annotations of %s: %w", h.describe(obj), err)
	}
	return nil
}

// changed reports whether the field of a and b differs.
func changed(a, b client.Object, field string) (bool, error) {
	ua, err := runtime.DefaultUnstructuredConverter.ToUnstructured(a)
	if err != nil {
		return false, err
	}
	ub, err := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	if err != nil {
		return false, err
	}
	return !equality.Semantic.DeepEqual(ua[field], ub[field]), nil
}

func (h *Helper) describe(obj client.Object) string {
	kind := fmt.Sprintf("%T", obj)
	if gvk, err := h.client.GroupVersionKindFor(obj); err == nil {
		kind = gvk.Kind
	}
	return fmt.Sprintf("%s %s", kind, client.ObjectKeyFromObject(obj))
}
