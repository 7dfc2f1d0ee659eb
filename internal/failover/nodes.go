package failover

import (
	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// Nodes are the member nodes as the cluster's membership (QuorumDisk status) tells them, with
// the drain flag of the paused ones.
func Nodes(status []wolfpackv1alpha1.NodeStatus, paused []wolfpackv1alpha1.PausedNode) []Node {
	out := make([]Node, 0, len(status))
	for _, n := range status {
		node := Node{Name: n.Name, State: n.State, Fenced: n.Fenced}
		for _, p := range paused {
			if p.Name == n.Name && n.State == wolfpackv1alpha1.NodePaused {
				node.Drain = p.Drain
			}
		}
		out = append(out, node)
	}
	return out
}
