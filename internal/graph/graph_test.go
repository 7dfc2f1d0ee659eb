package graph

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

func res(name, group string, deps ...string) Resource {
	return Resource{Name: name, Group: group, DependsOn: deps}
}

func TestBuild(t *testing.T) {
	cases := []struct {
		name      string
		resources []Resource
		waves     [][]string
		problems  []Problem
	}{
		{
			name:  "empty group",
			waves: nil,
		},
		{
			name: "the sql sample: independent resources share a wave",
			resources: []Resource{
				res("disk", "sql"), res("ip", "sql", "disk"), res("name", "sql", "ip"),
				res("server", "sql", "name"), res("agent", "sql", "disk"),
			},
			waves: [][]string{{"disk"}, {"agent", "ip"}, {"name"}, {"server"}},
		},
		{
			name: "diamond: the join waits for the longer branch",
			resources: []Resource{
				res("d", "g"), res("b", "g", "d"), res("c", "g", "b"), res("a", "g", "c", "d"),
			},
			waves: [][]string{{"d"}, {"b"}, {"c"}, {"a"}},
		},
		{
			name:      "resources of other groups are left out",
			resources: []Resource{res("a", "g"), res("b", "g", "a"), res("x", "other"), res("y", "other", "x")},
			waves:     [][]string{{"a"}, {"b"}},
		},
		{
			name:      "dependency on a missing resource",
			resources: []Resource{res("a", "g"), res("b", "g", "a", "ghost")},
			problems: []Problem{{
				Reason: wolfpackv1alpha1.MissingDependencyReason, Resources: []string{"b", "ghost"},
				Message: `resource "b" depends on "ghost", which does not exist`,
			}},
		},
		{
			name:      "dependency on a resource of another group",
			resources: []Resource{res("a", "g", "x"), res("x", "other")},
			problems: []Problem{{
				Reason: wolfpackv1alpha1.ForeignDependencyReason, Resources: []string{"a", "x"},
				Message: `resource "a" depends on "x", which belongs to group "other"`,
			}},
		},
		{
			name:      "three-resource cycle, named in its order",
			resources: []Resource{res("a", "g", "c"), res("b", "g", "a"), res("c", "g", "b"), res("d", "g")},
			problems: []Problem{{
				Reason: wolfpackv1alpha1.DependencyCycleReason, Resources: []string{"a", "c", "b"},
				Message: "dependency cycle: a -> c -> b -> a",
			}},
		},
		{
			name:      "self dependency",
			resources: []Resource{res("a", "g", "a")},
			problems: []Problem{{
				Reason: wolfpackv1alpha1.DependencyCycleReason, Resources: []string{"a"},
				Message: "dependency cycle: a -> a",
			}},
		},
		{
			name: "two cycles and a missing dependency are all reported",
			resources: []Resource{
				res("a", "g", "b"), res("b", "g", "a"),
				res("x", "g", "y"), res("y", "g", "x", "ghost"),
			},
			problems: []Problem{
				{Reason: wolfpackv1alpha1.DependencyCycleReason, Resources: []string{"a", "b"}, Message: "dependency cycle: a -> b -> a"},
				{Reason: wolfpackv1alpha1.DependencyCycleReason, Resources: []string{"x", "y"}, Message: "dependency cycle: x -> y -> x"},
				{
					Reason: wolfpackv1alpha1.MissingDependencyReason, Resources: []string{"y", "ghost"},
					Message: `resource "y" depends on "ghost", which does not exist`,
				},
			},
		},
		{
			name:      "a cycle in another group does not concern this one",
			resources: []Resource{res("a", "g"), res("x", "other", "y"), res("y", "other", "x")},
			waves:     [][]string{{"a"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			group := "g"
			if len(tc.resources) > 0 {
				group = tc.resources[0].Group
			}
			plan, problems := Build(group, tc.resources)
			if !reflect.DeepEqual(problems, tc.problems) {
				t.Fatalf("problems\n got %+v\nwant %+v", problems, tc.problems)
			}
			if !reflect.DeepEqual(plan.Waves, tc.waves) {
				t.Fatalf("waves %v, want %v", plan.Waves, tc.waves)
			}
		})
	}
}

func TestOfflineWavesAreTheOnlineWavesReversed(t *testing.T) {
	p := Plan{Waves: [][]string{{"disk"}, {"agent", "ip"}, {"name"}}}
	want := [][]string{{"name"}, {"agent", "ip"}, {"disk"}}
	if got := p.OfflineWaves(); !reflect.DeepEqual(got, want) {
		t.Fatalf("OfflineWaves() = %v, want %v", got, want)
	}
	if p.Waves[0][0] != "disk" {
		t.Fatal("OfflineWaves changed the plan")
	}
}

// randomDAG makes n resources whose dependencies only point to resources made before them, so
// the graph is acyclic, with names shuffled so that order and names are unrelated.
func randomDAG(r *rand.Rand, n int, density float64) []Resource {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("r%03d", i)
	}
	r.Shuffle(n, func(i, j int) { names[i], names[j] = names[j], names[i] })
	out := make([]Resource, n)
	for i := range out {
		out[i] = Resource{Name: names[i], Group: "g"}
		for j := range i {
			if r.Float64() < density {
				out[i].DependsOn = append(out[i].DependsOn, names[j])
			}
		}
	}
	r.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// TestPropertyEveryEdgeIsRespected builds random DAGs and checks that online waves put every
// dependency before its dependent, offline waves after, each resource appears exactly once, and
// waves are as early as possible (each resource after a wave holding one of its dependencies).
func TestPropertyEveryEdgeIsRespected(t *testing.T) {
	r := rand.New(rand.NewPCG(2026, 11))
	for trial := range 2000 {
		n := 1 + r.IntN(40)
		resources := randomDAG(r, n, r.Float64()*0.5)
		plan, problems := Build("g", resources)
		if len(problems) > 0 {
			t.Fatalf("trial %d: a DAG was reported as %v", trial, problems)
		}
		onlineAt := map[string]int{}
		for w, wave := range plan.Waves {
			if len(wave) == 0 {
				t.Fatalf("trial %d: wave %d is empty", trial, w)
			}
			for _, name := range wave {
				if _, dup := onlineAt[name]; dup {
					t.Fatalf("trial %d: %s is in two waves", trial, name)
				}
				onlineAt[name] = w
			}
		}
		offlineAt := map[string]int{}
		for w, wave := range plan.OfflineWaves() {
			for _, name := range wave {
				offlineAt[name] = w
			}
		}
		if len(onlineAt) != n || len(offlineAt) != n {
			t.Fatalf("trial %d: %d resources, %d placed online and %d offline", trial, n, len(onlineAt), len(offlineAt))
		}
		for _, res := range resources {
			latest := -1
			for _, dep := range res.DependsOn {
				if onlineAt[dep] >= onlineAt[res.Name] {
					t.Fatalf("trial %d: %s (wave %d) comes online no later than its dependency %s (wave %d)",
						trial, res.Name, onlineAt[res.Name], dep, onlineAt[dep])
				}
				if offlineAt[dep] <= offlineAt[res.Name] {
					t.Fatalf("trial %d: %s goes offline no earlier than its dependent %s", trial, dep, res.Name)
				}
				latest = max(latest, onlineAt[dep])
			}
			if onlineAt[res.Name] != latest+1 {
				t.Fatalf("trial %d: %s is in wave %d, but its latest dependency is in wave %d",
					trial, res.Name, onlineAt[res.Name], latest)
			}
		}
	}
}

// TestPropertyAddedBackEdgeIsACycle adds one edge that closes a path of a random DAG and checks
// that the cycle reported is a real cycle of the graph that goes through that edge's resources.
func TestPropertyAddedBackEdgeIsACycle(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 2026))
	for trial := range 1000 {
		resources := randomDAG(r, 2+r.IntN(30), 0.3)
		// Pick a resource with a dependency path and make the end of the path depend on it.
		byName := map[string]*Resource{}
		for i := range resources {
			byName[resources[i].Name] = &resources[i]
		}
		var from *Resource
		for i := range resources {
			if len(resources[i].DependsOn) > 0 {
				from = &resources[i]
				break
			}
		}
		if from == nil {
			continue
		}
		end := from.Name
		for len(byName[end].DependsOn) > 0 {
			deps := byName[end].DependsOn
			end = deps[r.IntN(len(deps))]
		}
		byName[end].DependsOn = append(byName[end].DependsOn, from.Name)

		plan, problems := Build("g", resources)
		if plan.Waves != nil || len(problems) == 0 {
			t.Fatalf("trial %d: cycle through %s and %s not found", trial, from.Name, end)
		}
		for _, p := range problems {
			if p.Reason != wolfpackv1alpha1.DependencyCycleReason {
				t.Fatalf("trial %d: unexpected problem %v", trial, p)
			}
			closing := false
			for i, name := range p.Resources {
				next := p.Resources[(i+1)%len(p.Resources)]
				if !slices.Contains(byName[name].DependsOn, next) {
					t.Fatalf("trial %d: reported cycle %v has no edge %s -> %s", trial, p.Resources, name, next)
				}
				closing = closing || (name == end && next == from.Name)
			}
			// The graph was acyclic before, so every cycle uses the added edge.
			if !closing {
				t.Fatalf("trial %d: reported cycle %v does not use the added edge %s -> %s", trial, p.Resources, end, from.Name)
			}
		}
	}
}
