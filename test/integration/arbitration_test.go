package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/arbitration"
)

// TestOutOfServiceTaint crashes a node (its agent and its kubelet stop): once it is Down and
// fenced, the manager taints it node.kubernetes.io/out-of-service so that Kubernetes releases its
// pods and volumes, and takes the taint off when the node is back. A taint an administrator put
// on a node is left alone.
func TestOutOfServiceTaint(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	startManager(t)
	f.waitOnline(t, f.a)

	must(t, f.kubelet.Kill(ctx, f.a))
	f.waitNodes(t, map[string]wp.NodeState{f.a: wp.NodeDown})
	f.waitTaint(t, f.a, true)
	f.expectClusterEvent(t, wp.OutOfServiceReason, "node "+f.a+" is Down and fenced")
	if n := f.kubeNode(t, f.b); hasOutOfService(n) {
		t.Errorf("the surviving node %s is tainted", f.b)
	}
	f.waitOnline(t, f.b)

	must(t, f.kubelet.Revive(ctx, f.a))
	f.waitNodes(t, map[string]wp.NodeState{f.a: wp.NodeUp})
	f.waitTaint(t, f.a, false)
	f.expectClusterEvent(t, wp.BackInServiceReason, "node "+f.a+" is Up again")
	if n := f.kubeNode(t, f.a); n.Annotations[arbitration.OutOfServiceAnnotation] != "" {
		t.Errorf("annotation %s left on node %s", arbitration.OutOfServiceAnnotation, f.a)
	}

	// An administrator's own taint on an Up node stays. The agents' Lease renewals, every
	// 250 ms, each make the manager reconcile the cluster: two seconds see several reconciles.
	n := f.kubeNode(t, f.b)
	n.Spec.Taints = append(n.Spec.Taints, arbitration.OutOfServiceTaint)
	must(t, k8sClient.Update(ctx, n))
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !hasOutOfService(f.kubeNode(t, f.b)) {
			t.Fatalf("the manager removed an administrator's out-of-service taint from %s", f.b)
		}
	}
}

func (f *fixture) kubeNode(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n := &corev1.Node{}
	must(t, k8sClient.Get(context.Background(), client.ObjectKey{Name: name}, n))
	return n
}

func hasOutOfService(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeOutOfService {
			return true
		}
	}
	return false
}

func (f *fixture) waitTaint(t *testing.T, node string, want bool) {
	t.Helper()
	eventually(t, fmt.Sprintf("out-of-service taint on %s %v", node, want), func() error {
		n := &corev1.Node{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Name: node}, n); err != nil {
			return err
		}
		if got := hasOutOfService(n); got != want {
			return fmt.Errorf("tainted %v, taints %v", got, n.Spec.Taints)
		}
		return nil
	})
}
