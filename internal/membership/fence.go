package membership

import (
	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// Fenced says whether a member node can no longer run the groups' workloads, so that they may
// be taken from it: it is Down and the Membership Manager counted it as fenced (status.nodes[]
// .fenced; see Compute). The verdict is made once, there, from the node's own report or its
// silence past its self-fence deadline and fence budget; no consumer adds a timer of its own.
func Fenced(n wolfpackv1alpha1.NodeStatus) bool {
	return n.State == wolfpackv1alpha1.NodeDown && n.Fenced
}
