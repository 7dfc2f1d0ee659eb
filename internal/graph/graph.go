// Package graph validates the dependencies between the resources of a group and orders them into
// waves: every resource of a wave depends only on resources of earlier waves, so a wave's
// resources may come online in parallel once the wave before it is Online, and go offline in the
// reverse order. This is how MSCS's Failover Manager honours start order and dependencies.
package graph

import (
	"fmt"
	"slices"
	"strings"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// Resource is what ordering needs to know of a Resource.
type Resource struct {
	// Name of the Resource.
	Name string
	// Group is the ResourceGroup it belongs to.
	Group string
	// DependsOn are the names of the resources it depends on.
	DependsOn []string
}

// FromAPI converts Resources of the API.
func FromAPI(resources []wolfpackv1alpha1.Resource) []Resource {
	out := make([]Resource, 0, len(resources))
	for _, r := range resources {
		deps := make([]string, 0, len(r.Spec.DependsOn))
		for _, d := range r.Spec.DependsOn {
			deps = append(deps, d.Name)
		}
		out = append(out, Resource{Name: r.Name, Group: r.Spec.Group, DependsOn: deps})
	}
	return out
}

// Problem is one reason why a group's resources cannot be ordered.
type Problem struct {
	// Reason is the condition reason: DependencyCycle, MissingDependency or ForeignDependency.
	Reason string
	// Resources are the resources involved; for a cycle, in the order of the cycle.
	Resources []string
	// Message says what is wrong, naming the resources.
	Message string
}

func (p Problem) Error() string { return p.Message }

// Plan is the order in which a valid group's resources come online.
type Plan struct {
	// Waves are the resources in online order: a resource's dependencies are all in earlier
	// waves. Names within a wave are sorted.
	Waves [][]string
}

// OfflineWaves are the waves in offline order: the online waves reversed.
func (p Plan) OfflineWaves() [][]string {
	out := slices.Clone(p.Waves)
	slices.Reverse(out)
	return out
}

// Build validates the dependencies of the resources of group and orders them. resources are all
// the Resources of the group's namespace, so that a dependency on a resource of another group can
// be told apart from one on a resource that does not exist. Problems are sorted by reason and
// resource; when there are any, the plan is empty.
func Build(group string, resources []Resource) (Plan, []Problem) {
	groupOf := make(map[string]string, len(resources))
	members := map[string][]string{}
	for _, r := range resources {
		groupOf[r.Name] = r.Group
		if r.Group == group {
			members[r.Name] = r.DependsOn
		}
	}

	var problems []Problem
	for _, name := range sortedKeys(members) {
		for _, dep := range members[name] {
			switch other, ok := groupOf[dep]; {
			case !ok:
				problems = append(problems, Problem{
					Reason:    wolfpackv1alpha1.MissingDependencyReason,
					Resources: []string{name, dep},
					Message:   fmt.Sprintf("resource %q depends on %q, which does not exist", name, dep),
				})
			case other != group:
				problems = append(problems, Problem{
					Reason:    wolfpackv1alpha1.ForeignDependencyReason,
					Resources: []string{name, dep},
					Message:   fmt.Sprintf("resource %q depends on %q, which belongs to group %q", name, dep, other),
				})
			}
		}
	}
	for _, cycle := range cycles(members) {
		problems = append(problems, Problem{
			Reason:    wolfpackv1alpha1.DependencyCycleReason,
			Resources: cycle,
			Message:   "dependency cycle: " + strings.Join(append(slices.Clone(cycle), cycle[0]), " -> "),
		})
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b Problem) int { return strings.Compare(a.Reason, b.Reason) })
		return Plan{}, problems
	}
	return Plan{Waves: waves(members)}, nil
}

// waves puts each resource in the wave after its latest dependency. The graph must be acyclic.
func waves(members map[string][]string) [][]string {
	level := make(map[string]int, len(members))
	var levelOf func(string) int
	levelOf = func(name string) int {
		if l, ok := level[name]; ok {
			return l
		}
		l := 0
		for _, dep := range members[name] {
			l = max(l, levelOf(dep)+1)
		}
		level[name] = l
		return l
	}
	var out [][]string
	for _, name := range sortedKeys(members) {
		l := levelOf(name)
		for len(out) <= l {
			out = append(out, nil)
		}
		out[l] = append(out[l], name)
	}
	return out
}

// cycles finds the strongly connected components that contain a cycle (Tarjan's algorithm) and
// returns one cycle through each, starting at its smallest name. Dependencies outside members
// are ignored.
func cycles(members map[string][]string) [][]string {
	index := map[string]int{}
	low := map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	var components [][]string
	next := 0

	var visit func(string)
	visit = func(v string) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range members[v] {
			if _, member := members[w]; !member {
				continue
			}
			if _, seen := index[w]; !seen {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] != index[v] {
			return
		}
		var component []string
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			component = append(component, w)
			if w == v {
				break
			}
		}
		if len(component) > 1 || slices.Contains(members[v], v) {
			components = append(components, component)
		}
	}
	for _, name := range sortedKeys(members) {
		if _, seen := index[name]; !seen {
			visit(name)
		}
	}

	out := make([][]string, 0, len(components))
	for _, component := range components {
		out = append(out, cycleWithin(members, component))
	}
	slices.SortFunc(out, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// cycleWithin walks from the smallest name of a strongly connected component, always to the
// smallest dependency inside it, until a name repeats; the walk from that name on is a cycle.
func cycleWithin(members map[string][]string, component []string) []string {
	in := map[string]bool{}
	for _, c := range component {
		in[c] = true
	}
	start := slices.Min(component)
	var walk []string
	seenAt := map[string]int{}
	for v := start; ; {
		if i, ok := seenAt[v]; ok {
			cycle := walk[i:]
			// Start the cycle at its smallest name, keeping its direction.
			m := slices.Index(cycle, slices.Min(cycle))
			return append(slices.Clone(cycle[m:]), cycle[:m]...)
		}
		seenAt[v] = len(walk)
		walk = append(walk, v)
		var nextNode string
		for _, w := range members[v] {
			if in[w] && (nextNode == "" || w < nextNode) {
				nextNode = w
			}
		}
		v = nextNode
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
