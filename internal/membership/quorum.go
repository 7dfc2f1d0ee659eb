package membership

import (
	"fmt"
	"slices"
	"strings"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// Quorum is what deciding a partition depends on.
type Quorum struct {
	// Type is the QuorumDisk's quorumType.
	Type wolfpackv1alpha1.QuorumType
	// Owner is the node that holds the quorum disk's lease, if any.
	Owner string
	// Members is how many member nodes the cluster has: the votes of NodeMajority, plus the
	// disk's for NodeAndDiskMajority.
	Members int
}

// Has reports whether a side of a partition, the nodes that hear each other, has quorum, and
// why (or why not):
//   - DiskOnly, the two-node MSCS rule: the side with the quorum disk's owner; with no owner,
//     no side can be told from another, so every side keeps what it runs.
//   - NodeMajority: more than half of the member nodes.
//   - NodeAndDiskMajority: more than half of the votes, one per member node and one for the
//     side holding the quorum disk.
func (q Quorum) Has(side []string) (bool, string) {
	owner := q.Owner != "" && slices.Contains(side, q.Owner)
	switch q.Type {
	case wolfpackv1alpha1.NodeMajority:
		return 2*len(side) > q.Members, fmt.Sprintf("%d of %d node votes", len(side), q.Members)
	case wolfpackv1alpha1.NodeAndDiskMajority:
		votes := len(side)
		if owner {
			votes++
		}
		return 2*votes > q.Members+1, fmt.Sprintf("%d of %d votes (nodes and the quorum disk)", votes, q.Members+1)
	default:
		if q.Owner == "" {
			return true, "no node holds the quorum disk yet"
		}
		if owner {
			return true, "it holds the quorum disk, owned by " + q.Owner
		}
		return false, "the quorum disk is owned by " + q.Owner + ", which it does not hear"
	}
}

// Mutual are the peers that a node and each of them hear both ways: the peers p of peers that
// hears (the node hears p) and heardBy (p hears the node) both hold. The agent passes what it
// hears by heartbeat and the peers whose heartbeats say they hear it; the manager passes fresh
// views.
func Mutual(peers []string, hears, heardBy func(string) bool) []string {
	var out []string
	for _, p := range peers {
		if hears(p) && heardBy(p) {
			out = append(out, p)
		}
	}
	return out
}

// outvoted returns, for each observer whose side has no quorum, why it is Down: its side is
// itself and the peers with fresh views that it and they hear both ways, decided by MustFence,
// the very function its agent applies to the same evidence from its heartbeats. A one-way loss
// thus puts both nodes on sides of their own, for the manager and the agents alike.
func (in Input) outvoted(members, observers, views []string) map[string]string {
	q := in.Quorum
	q.Members = len(members)
	out := map[string]string{}
	for _, x := range observers {
		others := slices.DeleteFunc(slices.Clone(views), func(p string) bool { return p == x })
		// A peer whose agent has not listened for a whole detection period yet (it just restarted)
		// says nothing about whom it hears: x's hearing it is what counts.
		mutual := Mutual(others, func(p string) bool { return len(in.Leases[x].View.Hears(p)) > 0 },
			func(p string) bool { return len(in.Leases[p].View.Hears(x)) > 0 || !in.Leases[p].View.Joined })
		if fence, why := MustFence(x, mutual, q); fence {
			side := append([]string{x}, mutual...)
			out[x] = fmt.Sprintf("partitioned from its peers without quorum (%s): its side is %s", why, strings.Join(side, ", "))
		}
	}
	return out
}

// MustFence is the partition rule, one function for the agent and the manager: whether node self
// must fail itself because its side, itself and mutual, has no quorum. mutual are the members
// that self and each of them hear both ways (see Mutual): the agent's heartbeats tell it, the
// manager reads it from the fresh views.
func MustFence(self string, mutual []string, q Quorum) (bool, string) {
	side := append([]string{self}, mutual...)
	ok, why := q.Has(side)
	return !ok, why
}
