package arbitration

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
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
//   - the cluster has it Down and fenced (membership.Fenced: the Membership Manager's verdict,
//     the node's own report or its silence past its self-fence deadline), so its group
//     workloads have stopped;
//   - its kubelet has stopped too: the Node's Ready condition is not True (the node lifecycle
//     controller sets it Unknown once the kubelet stops renewing).
//
// A taint Wolfpack added comes off once the node is back: a member that is not Down, whose
// kubelet reports Ready. A taint someone else added is never touched.
func OutOfService(n wolfpackv1alpha1.NodeStatus, node *corev1.Node) (TaintChange, string) {
	tainted, ours := false, node.Annotations[OutOfServiceAnnotation] != ""
	for _, t := range node.Spec.Taints {
		if t.Key == OutOfServiceTaint.Key {
			tainted = true
		}
	}
	ready := nodeReady(node)
	fenced := membership.Fenced(n)
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

// Taint is a change to a member node's out-of-service taint, and why.
type Taint struct {
	Node   string
	Change TaintChange
	Why    string
}

// Taints decides the out-of-service taint of each member node (see OutOfService) from the
// cluster's node states and the Nodes. Time alone changes nothing here: a node counts as fenced
// when the Membership Manager writes so, and that change of status is watched.
func Taints(states []wolfpackv1alpha1.NodeStatus, nodes []corev1.Node) []Taint {
	var out []Taint
	for i := range nodes {
		node := &nodes[i]
		j := slices.IndexFunc(states, func(s wolfpackv1alpha1.NodeStatus) bool { return s.Name == node.Name })
		if j < 0 {
			continue
		}
		if change, why := OutOfService(states[j], node); change != TaintKeep {
			out = append(out, Taint{Node: node.Name, Change: change, Why: why})
		}
	}
	return out
}

// Apply makes the change to node: the taint with Wolfpack's annotation on, or both off.
func (c TaintChange) Apply(node *corev1.Node) {
	switch c {
	case TaintAdd:
		node.Spec.Taints = append(node.Spec.Taints, OutOfServiceTaint)
		if node.Annotations == nil {
			node.Annotations = map[string]string{}
		}
		node.Annotations[OutOfServiceAnnotation] = "true"
	case TaintRemove:
		node.Spec.Taints = slices.DeleteFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == OutOfServiceTaint.Key })
		delete(node.Annotations, OutOfServiceAnnotation)
	case TaintKeep:
	}
}
