// Package failover holds the Failover Manager's decisions as pure functions of their inputs and
// the time: where a group runs, whether a failed resource is restarted or its group fails over,
// whether a group may fail over again, and when it fails back.
package failover

import (
	"cmp"
	"slices"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// Node is a member node and its state.
type Node struct {
	Name  string
	State wolfpackv1alpha1.NodeState
	// Drain is set on a Paused node whose groups are to be moved off.
	Drain bool
	// Fenced is set on a node whose agent reports that it failed the node (its side of a
	// partition has no quorum): it is given no group until it rejoins.
	Fenced bool
}

// Placement is what choosing a group's owner depends on.
type Placement struct {
	// Owner is the group's current owner, if any.
	Owner string
	// PreferredOwners are the group's preferred owners, most preferred first.
	PreferredOwners []string
	// PossibleOwners holds each resource's possibleOwners; an empty entry allows every node.
	PossibleOwners [][]string
	// Nodes are the cluster's member nodes.
	Nodes []Node
	// Avoid are nodes not to choose unless no other node will do, such as the node on which a
	// resource just used up its restarts.
	Avoid []string
}

// allowed reports whether every resource may run on node.
func (p Placement) allowed(node string) bool {
	for _, possible := range p.PossibleOwners {
		if len(possible) > 0 && !slices.Contains(possible, node) {
			return false
		}
	}
	return true
}

// Place chooses the group's owner: the current owner while it is Up or Paused (a paused node
// keeps its groups) and allowed; else the first Up node of PreferredOwners allowed by every
// resource; else any allowed Up node, by name. A node that failed itself (Fenced) is never
// chosen anew: a node without quorum starts no group. Nodes in Avoid are chosen only when nothing else
// is possible. It returns false when no node is possible.
func Place(p Placement) (string, bool) {
	state := make(map[string]wolfpackv1alpha1.NodeState, len(p.Nodes))
	fenced := map[string]bool{}
	for _, n := range p.Nodes {
		state[n.Name], fenced[n.Name] = n.State, n.Fenced
	}
	if s := state[p.Owner]; p.Owner != "" && (s == wolfpackv1alpha1.NodeUp || s == wolfpackv1alpha1.NodePaused) &&
		p.allowed(p.Owner) && !slices.Contains(p.Avoid, p.Owner) {
		return p.Owner, true
	}

	// Candidates: preferred owners in their order, then the other nodes by name.
	candidates := slices.Clone(p.PreferredOwners)
	others := make([]string, 0, len(p.Nodes))
	for _, n := range p.Nodes {
		if !slices.Contains(candidates, n.Name) {
			others = append(others, n.Name)
		}
	}
	slices.Sort(others)
	candidates = append(candidates, others...)

	fallback := ""
	for _, c := range candidates {
		if state[c] != wolfpackv1alpha1.NodeUp || fenced[c] || !p.allowed(c) {
			continue
		}
		if !slices.Contains(p.Avoid, c) {
			return c, true
		}
		if fallback == "" {
			fallback = c
		}
	}
	return fallback, fallback != ""
}

// Group is what ordering groups after a failure needs to know.
type Group struct {
	// Key identifies the group, such as namespace/name.
	Key string
	// Priority is spec.priority.
	Priority int32
}

// StartOrder returns the groups to start automatically after a failure, higher priority first
// and by key within a priority. Groups of priority 0 are never started automatically.
func StartOrder(groups []Group) []Group {
	out := make([]Group, 0, len(groups))
	for _, g := range groups {
		if g.Priority > 0 {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b Group) int {
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return out
}
