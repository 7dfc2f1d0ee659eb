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

// Sides splits the observers into the sides of a partition: nodes that hear each other (both
// ways) are on one side, and so are nodes joined through others. Each side is sorted, and the
// sides are ordered by their first node.
func Sides(observers []string, leases map[string]Lease) [][]string {
	parent := map[string]string{}
	var find func(string) string
	find = func(n string) string {
		if p, ok := parent[n]; ok && p != n {
			parent[n] = find(p)
			return parent[n]
		}
		return n
	}
	for _, n := range observers {
		parent[n] = n
	}
	for i, a := range observers {
		for _, b := range observers[i+1:] {
			if len(leases[a].View.Hears(b)) > 0 && len(leases[b].View.Hears(a)) > 0 {
				parent[find(a)] = find(b)
			}
		}
	}
	groups := map[string][]string{}
	for _, n := range observers {
		groups[find(n)] = append(groups[find(n)], n)
	}
	out := make([][]string, 0, len(groups))
	for _, g := range groups {
		slices.Sort(g)
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// outvoted returns, for each observer on a side of a partition without quorum, why it is Down.
// Without a partition (one side) nothing is outvoted: a lone node that lost its peers is judged
// by the Lease rules instead.
func (in Input) outvoted(observers []string) map[string]string {
	sides := Sides(observers, in.Leases)
	if len(sides) < 2 {
		return nil
	}
	q := in.Quorum
	q.Members = len(in.Members)
	out := map[string]string{}
	for _, side := range sides {
		if ok, why := q.Has(side); !ok {
			for _, n := range side {
				out[n] = fmt.Sprintf("partitioned from its peers without quorum (%s): its side is %s", why, strings.Join(side, ", "))
			}
		}
	}
	return out
}

// MustFence is the agent's own decision, from what it hears, whether its node must fail itself:
// its side of the cluster (itself and the members it hears) has no quorum. hears are the members
// the agent hears on any network.
func MustFence(self string, hears []string, q Quorum) (bool, string) {
	side := append([]string{self}, hears...)
	ok, why := q.Has(side)
	return !ok, why
}
