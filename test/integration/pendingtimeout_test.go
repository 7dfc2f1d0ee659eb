package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

// TestPendingTimeout is schedule 6 of issue 13: pendingTimeout on a live node. The server's pod on
// node a never gets going and, once asked to stop, never stops (a wedged runtime; a database with
// a long termination grace looks the same). Online times out, once and after one restart, and
// the group fails over; but a is Up and not fenced, so the server is not offline there until its
// pod is really gone: it stays OfflinePending past pendingTimeout, the overrun is reported, the
// pod is never force-deleted, and nothing of the group starts on b. A finalizer then keeps the
// pod Terminating after the kubelet let it go: still not offline, since the pod object is there. Only once the pod object is
// gone does the group come online on b.
func TestPendingTimeout(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.kubelet.Hold("server", f.a)
	server := f.server(t)
	server.Spec.PendingTimeout = &metav1.Duration{Duration: 2 * time.Second}
	server.Spec.RestartPolicy.Threshold = ptr.To[int32](1)
	must(t, k8sClient.Update(ctx, server))
	w := f.watch(t)
	startManager(t)

	// A finalizer keeps the pod object after its containers are gone (it can only be added
	// before the pod is deleted).
	var pod *corev1.Pod
	eventually(t, "the server's pod on "+f.a, func() (err error) { pod, err = f.serverPod(ctx); return err })
	patch := client.MergeFrom(pod.DeepCopy())
	pod.Finalizers = append(pod.Finalizers, "test.wolfpack.dev/hold")
	must(t, k8sClient.Patch(ctx, pod, patch))

	f.expectEvent(t, wp.RestartThresholdExceededReason, "failing over to "+f.b)
	f.expectResourceEvent(t, "server", wp.PendingTimeoutReason, "not online on "+f.a+" within pendingTimeout 2s")

	// Not offline while its pod is there: never forced, never counted offline, reported.
	notForced := func() error {
		pod, err := f.serverPod(ctx)
		if err != nil {
			return err
		}
		if pod.DeletionTimestamp != nil && pod.DeletionGracePeriodSeconds != nil && *pod.DeletionGracePeriodSeconds == 0 {
			return fmt.Errorf("pod %s on %s was force-deleted (gracePeriodSeconds 0) while %s is Up", pod.Name, pod.Spec.NodeName, f.a)
		}
		return nil
	}
	stillOnA := func() error {
		if err := f.serverStillOn(ctx, f.a); err != nil {
			return err
		}
		return notForced()
	}
	overdue := "offline is taking longer than pendingTimeout 2s on " + f.a
	poll.Wait(t, "the overrun reported, the server still on "+f.a, settle, func() error {
		// On its way from Failed to OfflinePending; but never offline nor forced meanwhile.
		if err := f.serverNotOffline(ctx, f.a); err != nil {
			t.Fatal(err)
		}
		if err := notForced(); err != nil {
			t.Fatal(err)
		}
		return f.resourceEvent(ctx, "server", wp.PendingTimeoutReason, overdue)
	})
	poll.Throughout(t, "the server OfflinePending on "+f.a+" past pendingTimeout", 3*time.Second, 100*time.Millisecond, stillOnA)

	// The kubelet lets the pod go, but the finalizer keeps it Terminating: still not offline.
	f.kubelet.Release("server", f.a)
	eventually(t, "the kubelet finishing the pod's deletion", func() error {
		p, err := f.serverPod(ctx)
		if err != nil {
			return err
		}
		if g := p.DeletionGracePeriodSeconds; g == nil || *g != 0 {
			return fmt.Errorf("pod %s: deletionGracePeriodSeconds %v", p.Name, g)
		}
		return nil
	})
	poll.Throughout(t, "the server OfflinePending on "+f.a+" while its pod is Terminating", 3*time.Second, 100*time.Millisecond,
		func() error { return f.serverStillOn(ctx, f.a) })

	// The pod is gone: the group goes on to b.
	pod, err := f.serverPod(ctx)
	must(t, err)
	patch = client.MergeFrom(pod.DeepCopy())
	pod.Finalizers = slices.DeleteFunc(pod.Finalizers, func(s string) bool { return s == "test.wolfpack.dev/hold" })
	must(t, k8sClient.Patch(ctx, pod, patch))
	g := f.waitOnline(t, f.b)
	if op := g.Status.Operation; op.Kind != wp.OperationFailover || op.From != f.a {
		t.Errorf("operation %+v, want a Failover from %s", op, f.a)
	}
	w.check(t)
}

// serverNotOffline fails when the server resource is Offline or on another node than node, or
// anything of the group is active elsewhere.
func (f *fixture) serverNotOffline(ctx context.Context, node string) error {
	var list wp.ResourceList
	if err := k8sClient.List(ctx, &list, client.InNamespace(f.ns)); err != nil {
		return err
	}
	for _, r := range list.Items {
		s := r.Status
		if r.Name == "server" && (s.State == wp.ResourceOffline || s.Node != node) {
			return fmt.Errorf("server is %s on %q while its pod is still on %s: counted offline before its pod is gone", s.State, s.Node, node)
		}
		if active(s.State) && s.Node != node {
			return fmt.Errorf("resource %s is %s on %s while the server's pod is still on %s", r.Name, s.State, s.Node, node)
		}
	}
	return nil
}

// serverStillOn fails when the server resource is not OfflinePending on node or anything of
// the group is active elsewhere.
func (f *fixture) serverStillOn(ctx context.Context, node string) error {
	var list wp.ResourceList
	if err := k8sClient.List(ctx, &list, client.InNamespace(f.ns)); err != nil {
		return err
	}
	for _, r := range list.Items {
		s := r.Status
		if r.Name == "server" && (s.State != wp.ResourceOfflinePending || s.Node != node) {
			return fmt.Errorf("server is %s on %q, want OfflinePending on %s: counted offline before its pod is gone", s.State, s.Node, node)
		}
		if active(s.State) && s.Node != node {
			return fmt.Errorf("resource %s is %s on %s while the server's pod is still on %s", r.Name, s.State, s.Node, node)
		}
	}
	return nil
}

// serverPod is the one pod of the server resource.
func (f *fixture) serverPod(ctx context.Context) (*corev1.Pod, error) {
	var pods corev1.PodList
	if err := k8sClient.List(ctx, &pods, client.InNamespace(f.ns), client.MatchingLabels{wp.ResourceLabel: "server"}); err != nil {
		return nil, err
	}
	if len(pods.Items) != 1 {
		return nil, fmt.Errorf("%d pods of the server, want 1", len(pods.Items))
	}
	return &pods.Items[0], nil
}

// resourceEvent finds an Event about a resource with the reason and a note containing note.
func (f *fixture) resourceEvent(ctx context.Context, resource, reason, note string) error {
	var list eventsv1.EventList
	if err := k8sClient.List(ctx, &list, client.InNamespace(f.ns)); err != nil {
		return err
	}
	var seen []string
	for _, e := range list.Items {
		if e.Regarding.Kind != "Resource" || e.Regarding.Name != resource {
			continue
		}
		if e.Reason == reason && strings.Contains(e.Note, note) {
			return nil
		}
		seen = append(seen, e.Reason+": "+e.Note)
	}
	return errors.New("no Event " + reason + " " + fmt.Sprintf("%q", note) + " about " + resource + " among " + fmt.Sprint(seen))
}

func (f *fixture) expectResourceEvent(t *testing.T, resource, reason, note string) {
	t.Helper()
	eventually(t, "Event "+reason+" about "+resource, func() error { return f.resourceEvent(context.Background(), resource, reason, note) })
}
