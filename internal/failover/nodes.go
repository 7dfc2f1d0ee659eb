package failover

import (
	"time"

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

// FencedAfter says how long until a Down node counts as fenced (it can no longer run the
// group's workloads), and whether it already does: at once when its agent reports that it
// failed the node, else once it has been Down for grace. A node that is not Down is never
// fenced.
func FencedAfter(n wolfpackv1alpha1.NodeStatus, now time.Time, grace time.Duration) (time.Duration, bool) {
	if n.State != wolfpackv1alpha1.NodeDown {
		return 0, false
	}
	if n.Fenced {
		return 0, true
	}
	// since is stored to the whole second: the grace counts from the end of that second, so that a
	// node is never taken as fenced sooner than grace after it went Down.
	wait := n.Since.Add(time.Second + grace).Sub(now)
	return max(wait, 0), wait <= 0
}
