package arbitration

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/failover"
)

// OutOfServiceAnnotation on a Node says that Wolfpack put the out-of-service taint on it, so
// that Wolfpack takes it off again and never removes one an administrator put there.
const OutOfServiceAnnotation = "wolfpack.dev/out-of-service"

// OutOfServiceTaint is Kubernetes' taint for a node that is shut down or gone: the pod garbage
// collector force-deletes its terminating pods and the attach-detach controller detaches its
// volumes at once, instead of after six minutes.
var OutOfServiceTaint = corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}

// TaintChange is what to do with the out-of-service taint of a member node.
type TaintChange int

const (
	// TaintKeep leaves the node as it is.
	TaintKeep TaintChange = iota
	// TaintAdd puts the taint on.
	TaintAdd
	// TaintRemove takes Wolfpack's taint off.
	TaintRemove
)

// OutOfService decides the out-of-service taint of a member node, and why. A node is gone
// altogether, and gets the taint, when all of these hold:
//   - the cluster has it Down and fenced (its agent failed it, its Lease ran out, or it has been
//     Down for the fence grace), so its group workloads have stopped or are taken to have;
//   - its kubelet has stopped too: the Node's Ready condition is not True (the node lifecycle
//     controller sets it Unknown once the kubelet stops renewing).
//
// A taint Wolfpack added comes off once the node is back: a member that is not Down, whose
// kubelet reports Ready. A taint someone else added is never touched.
func OutOfService(n wolfpackv1alpha1.NodeStatus, node *corev1.Node, now time.Time, grace time.Duration) (TaintChange, string) {
	tainted, ours := false, node.Annotations[OutOfServiceAnnotation] != ""
	for _, t := range node.Spec.Taints {
		if t.Key == OutOfServiceTaint.Key {
			tainted = true
		}
	}
	ready := nodeReady(node)
	_, fenced := failover.FencedAfter(n, now, grace)
	switch {
	case !tainted && fenced && !ready:
		return TaintAdd, fmt.Sprintf("node %s is Down and fenced, and its kubelet is not Ready", node.Name)
	case tainted && ours && n.State != wolfpackv1alpha1.NodeDown && ready:
		return TaintRemove, fmt.Sprintf("node %s is %s again and its kubelet is Ready", node.Name, n.State)
	}
	return TaintKeep, ""
}

func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
