package failover

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// NodeFromKubelet is a member node's state as the Node object tells it, until the node agents'
// membership replaces it: Up while Ready, Paused while Ready and cordoned, Down otherwise.
func NodeFromKubelet(n *corev1.Node) Node {
	state := wolfpackv1alpha1.NodeDown
	if ready(n) {
		state = wolfpackv1alpha1.NodeUp
		if n.Spec.Unschedulable {
			state = wolfpackv1alpha1.NodePaused
		}
	}
	return Node{Name: n.Name, State: state}
}

func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// FencedAfter says how long until a Down node counts as fenced (it can no longer run the
// group's workloads), and whether it already does. Until the quorum and self-fencing exist, a
// node is fenced once it has not been Ready for grace. An Up node is never fenced.
func FencedAfter(n *corev1.Node, now time.Time, grace time.Duration) (time.Duration, bool) {
	if ready(n) {
		return 0, false
	}
	since := n.CreationTimestamp.Time
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			since = c.LastTransitionTime.Time
		}
	}
	wait := since.Add(grace).Sub(now)
	return max(wait, 0), wait <= 0
}
