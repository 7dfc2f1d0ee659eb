// Package arbitration holds the manager's decisions about the quorum disk, as pure functions:
// on which member node the quorum holder runs (the process that holds the disk's lease for its
// node, MSCS's quorum resource owner), the holder's pod, and which nodes get Kubernetes'
// out-of-service taint because they are gone altogether.
//
// The manager never decides who owns the disk: the disk lease does (internal/quorum). It only
// decides where a holder runs. A holder moves only when the quorum holder's Lease is no longer
// renewed (its holder stopped, or lost the disk) and its node is not a live member; the new
// holder then waits on the disk until the old holder's disk lease has run out, however the old
// one died. So moving a holder can delay the quorum, never split it.
package arbitration

import (
	"slices"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// Pod is a quorum holder pod that exists: the node it is bound to, and whether it may still
// hold the disk (not being deleted, not terminated).
type Pod struct {
	Node string
	Live bool
}

// Input is what choosing the holder's node depends on.
type Input struct {
	// Nodes are the member nodes and their states (the QuorumDisk's status.nodes).
	Nodes []wolfpackv1alpha1.NodeStatus
	// Owner is the node whose holder renews the quorum holder's Lease now, "" when the Lease is
	// missing, released or no longer renewed.
	Owner string
	// Pods are the holder pods that exist.
	Pods []Pod
}

// HolderNode says on which member node the quorum holder runs, and why; "" when on none.
//
//  1. The owner, while its holder renews the quorum Lease: the disk has an owner, and moving
//     the holder would only make every node wait out its lease.
//  2. Else a node that already has a live holder pod and is a member that is not Down: that
//     holder is waiting on the disk, which takes a lease period and more, and a new one
//     elsewhere would have to wait just as long.
//  3. Else the first Up member by name, then the first Paused one (a paused node keeps its
//     role, as in MSCS, but is not given new ones while an Up node can take them), then the
//     first Joining one.
func HolderNode(in Input) (string, string) {
	if in.Owner != "" {
		return in.Owner, "it holds the quorum disk"
	}
	state := map[string]wolfpackv1alpha1.NodeState{}
	for _, n := range in.Nodes {
		state[n.Name] = n.State
	}
	var waiting []string
	for _, p := range in.Pods {
		if s, member := state[p.Node]; p.Live && member && s != wolfpackv1alpha1.NodeDown {
			waiting = append(waiting, p.Node)
		}
	}
	if len(waiting) > 0 {
		slices.Sort(waiting)
		return waiting[0], "its holder is acquiring the quorum disk"
	}
	for _, want := range []wolfpackv1alpha1.NodeState{wolfpackv1alpha1.NodeUp, wolfpackv1alpha1.NodePaused, wolfpackv1alpha1.NodeJoining} {
		var names []string
		for _, n := range in.Nodes {
			if n.State == want {
				names = append(names, n.Name)
			}
		}
		if len(names) > 0 {
			slices.Sort(names)
			return names[0], "the quorum disk has no owner and it is the first " + string(want) + " member"
		}
	}
	return "", "no member node is Up"
}
