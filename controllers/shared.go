package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// What the controllers share: read-only helpers, none of which writes anything.

// allClusters enqueues every cluster, for a change that may concern any of them (a Node).
func allClusters(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, _ client.Object) []reconcile.Request {
		var clusters wolfpackv1alpha1.QuorumDiskList
		if err := c.List(ctx, &clusters); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing clusters")
			return nil
		}
		out := make([]reconcile.Request, 0, len(clusters.Items))
		for i := range clusters.Items {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&clusters.Items[i])})
		}
		return out
	}
}

// requeueAt asks to be called again just past the earliest of the moments at which time alone
// changes a decision (zero moments are none), so that the change has happened when we look.
func requeueAt(now time.Time, moments ...time.Time) ctrl.Result {
	var next time.Time
	for _, t := range moments {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if next.IsZero() {
		return ctrl.Result{}
	}
	return ctrl.Result{RequeueAfter: max(next.Sub(now), 0) + 10*time.Millisecond}
}

func eventType(warning bool) string {
	if warning {
		return corev1.EventTypeWarning
	}
	return corev1.EventTypeNormal
}
