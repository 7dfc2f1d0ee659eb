package controllers

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/test/scheme"
)

const leaseNS = "wolfpack-system"

func agentLease(node string, renewed time.Time, hears ...string) *coordinationv1.Lease {
	v := membership.View{Incarnation: 1, Joined: true, Peers: map[string][]string{}}
	for _, p := range hears {
		v.Peers[p] = []string{"public"}
	}
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: leaseNS, Name: node,
		Labels:      map[string]string{wp.ClusterLabel: "prod", wp.NodeLabel: node},
		Annotations: map[string]string{wp.ViewAnnotation: v.Encode()}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(node), LeaseDurationSeconds: ptr.To[int32](10),
			RenewTime: ptr.To(metav1.NewMicroTime(renewed))}}
}

// TestMembershipConfirmsExpiryWithTheAPIServer: the manager's cache stops delivering the agents'
// renewals (a watch that lags) while they renew every second at the API server. However long
// the lag, no node counts as Down: a Lease that looks run out is read again past the cache, and
// a renewTime that changed counts as seen now. An agent that really stopped is Down once its
// Lease runs out at the API server too.
func TestMembershipConfirmsExpiryWithTheAPIServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	objs := []client.Object{
		&wp.QuorumDisk{ObjectMeta: metav1.ObjectMeta{Name: "prod"}, Spec: wp.QuorumDiskSpec{NodeSelector: map[string]string{wp.ClusterLabel: "prod"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{wp.ClusterLabel: "prod"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{wp.ClusterLabel: "prod"}}},
		agentLease("a", start, "b"), agentLease("b", start, "a"),
	}
	build := func() client.Client {
		cs := make([]client.Object, len(objs))
		for i, o := range objs {
			cs[i] = o.DeepCopyObject().(client.Object)
		}
		return fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(cs...).WithStatusSubresource(&wp.QuorumDisk{}).Build()
	}
	cache, api := build(), build()
	r := &MembershipReconciler{Client: cache, APIReader: api, Recorder: events.NewFakeRecorder(100), Clock: clk, LeaseNamespace: leaseNS}
	reconcile := func() map[string]wp.NodeStatus {
		t.Helper()
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: "prod"}}); err != nil {
			t.Fatal(err)
		}
		qd := &wp.QuorumDisk{}
		if err := cache.Get(ctx, client.ObjectKey{Name: "prod"}, qd); err != nil {
			t.Fatal(err)
		}
		out := map[string]wp.NodeStatus{}
		for _, n := range qd.Status.Nodes {
			out[n.Name] = n
		}
		return out
	}
	renew := func(node string, hears ...string) {
		t.Helper()
		l := agentLease(node, clk.Now(), hears...)
		cur := &coordinationv1.Lease{}
		if err := api.Get(ctx, client.ObjectKeyFromObject(l), cur); err != nil {
			t.Fatal(err)
		}
		cur.Spec, cur.Annotations = l.Spec, l.Annotations
		if err := api.Update(ctx, cur); err != nil {
			t.Fatal(err)
		}
	}

	reconcile()
	// 15 s of renewals that the cache never sees.
	for range 15 {
		clk.Step(time.Second)
		renew("a", "b")
		renew("b", "a")
		for name, n := range reconcile() {
			if n.State != wp.NodeUp || n.Fenced {
				t.Fatalf("%s after %s of a lagging cache: %s, fenced %v (%s)", name, clk.Since(start), n.State, n.Fenced, n.Message)
			}
		}
	}
	// b's agent stops for real: a stops hearing it, and its Lease runs out at the API server.
	for range 12 {
		clk.Step(time.Second)
		renew("a")
		reconcile()
	}
	if b := reconcile()["b"]; b.State != wp.NodeDown {
		t.Errorf("b stopped 12 s ago: %s (%s), want Down", b.State, b.Message)
	}
}
