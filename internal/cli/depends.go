package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/graph"
)

// DependsOutput is a group's dependency graph, as -o json|yaml prints it.
type DependsOutput struct {
	Namespace string `json:"namespace"`
	Group     string `json:"group"`
	Cluster   string `json:"cluster"`
	// Waves are the resources in online order; OfflineWaves in offline order.
	Waves        [][]string        `json:"waves"`
	OfflineWaves [][]string        `json:"offlineWaves"`
	Resources    []DependsResource `json:"resources"`
}

// DependsResource is one resource of a dependency graph.
type DependsResource struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	State string `json:"state,omitempty"`
	Node  string `json:"node,omitempty"`
	// Wave is the resource's online wave, from 1.
	Wave       int      `json:"wave"`
	DependsOn  []string `json:"dependsOn,omitempty"`
	Dependents []string `json:"dependents,omitempty"`
}

// DependsOptions are the options of `depends`.
type DependsOptions struct {
	*Globals
	Output string
	Group  string

	namespace string
}

func newDependsCommand(g *Globals) *cobra.Command {
	o := &DependsOptions{Globals: g}
	cmd := &cobra.Command{
		Use:   "depends GROUP",
		Short: "Show a group's dependency tree and the waves in which it comes online",
		Long: `Show the dependencies between the resources of a group: the waves in which they come online
(every resource of a wave depends only on resources of earlier waves, so a wave's resources start
in parallel; offline runs the waves backwards), and a tree that starts from the resources that
depend on nothing and lists under each resource the resources that depend on it. A resource that
depends on several others appears under each of them; after the first time it is marked (*).

A group whose dependencies cannot be ordered (a cycle, a missing or foreign dependency) is an
error that names the resources involved.`,
		Example: `  kubectl cluster depends sql -n prod
  kubectl cluster depends sql -n prod -o json`,
		Args:              exactlyOne("GROUP"),
		ValidArgsFunction: completeGroups(g, 1),
		RunE:              run(o),
	}
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// Complete reads the group and namespace.
func (o *DependsOptions) Complete(_ *cobra.Command, args []string) error {
	o.Group = args[0]
	ns, _, err := o.Namespace()
	o.namespace = ns
	return err
}

// Validate checks the flags.
func (o *DependsOptions) Validate() error { return validateOutput(o.Output) }

// Run prints the dependencies.
func (o *DependsOptions) Run(ctx context.Context) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	g, err := group(ctx, c, o.namespace, o.Group)
	if err != nil {
		return err
	}
	qd, err := o.clusterOfGroup(ctx, c, g)
	if err != nil {
		return err
	}
	all, err := resourcesIn(ctx, c, g.Namespace)
	if err != nil {
		return err
	}
	plan, err := planOf(g, all)
	if err != nil {
		return err
	}
	members := ofGroup(all, g.Namespace, g.Name)
	out := DependsOutput{Namespace: g.Namespace, Group: g.Name, Cluster: qd.Name, Waves: plan.Waves, OfflineWaves: plan.OfflineWaves()}
	if out.Waves == nil {
		out.Waves, out.OfflineWaves = [][]string{}, [][]string{}
	}
	dependents := map[string][]string{}
	for _, r := range members {
		for _, d := range r.Spec.DependsOn {
			dependents[d.Name] = append(dependents[d.Name], r.Name)
		}
	}
	for _, r := range members {
		out.Resources = append(out.Resources, DependsResource{
			Name: r.Name, Type: resourceType(&r), State: string(r.Status.State), Node: r.Status.Node,
			Wave: waveOf(plan.Waves, r.Name) + 1, DependsOn: dependsOn(&r), Dependents: sorted(dependents[r.Name]),
		})
	}
	if done, err := structured(o.Streams.Out, o.Output, out); done {
		return err
	}
	return printDepends(o.Streams.Out, out)
}

// planOf orders the group's resources; all are the resources of its namespace.
func planOf(g *wolfpackv1alpha1.ResourceGroup, all []wolfpackv1alpha1.Resource) (graph.Plan, error) {
	plan, problems := graph.Build(g.Name, graph.FromAPI(all))
	if len(problems) == 0 {
		return plan, nil
	}
	msgs := make([]string, 0, len(problems))
	for _, p := range problems {
		msgs = append(msgs, p.Message)
	}
	return plan, fmt.Errorf("the resources of group %s/%s cannot be ordered: %s", g.Namespace, g.Name, strings.Join(msgs, "; "))
}

func waveOf(waves [][]string, name string) int {
	for i, w := range waves {
		if slices.Contains(w, name) {
			return i
		}
	}
	return -1
}

func sorted(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return out
}

// printWaves prints waves, one per line, indented.
func printWaves(w io.Writer, waves [][]string) {
	if len(waves) == 0 {
		fmt.Fprintln(w, "  (no resources)")
	}
	for i, names := range waves {
		fmt.Fprintf(w, "  wave %d: %s\n", i+1, strings.Join(names, ", "))
	}
}

func printDepends(w io.Writer, out DependsOutput) error {
	fmt.Fprintf(w, "Group %s/%s (cluster %s): %d resources in %d waves\n", out.Namespace, out.Group, out.Cluster, len(out.Resources), len(out.Waves))
	fmt.Fprintf(w, "\nOnline order (offline runs it backwards):\n")
	printWaves(w, out.Waves)
	if len(out.Resources) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nDependency tree (each resource is listed under the ones it depends on):\n")
	byName := map[string]DependsResource{}
	for _, r := range out.Resources {
		byName[r.Name] = r
	}
	t := newTable(w)
	shown := map[string]bool{}
	repeated := false
	var walk func(name, prefix, branch string)
	walk = func(name, prefix, branch string) {
		r := byName[name]
		label := prefix + branch + name
		if shown[name] {
			t.raw(label + " (*)")
			repeated = true
			return
		}
		shown[name] = true
		t.raw(label, r.Type, or(r.State, "-"), or(r.Node, "-"))
		childPrefix := prefix
		switch branch {
		case "├── ":
			childPrefix += "│   "
		case "└── ":
			childPrefix += "    "
		}
		for i, d := range r.Dependents {
			b := "├── "
			if i == len(r.Dependents)-1 {
				b = "└── "
			}
			walk(d, childPrefix, b)
		}
	}
	for _, r := range out.Resources {
		if len(r.DependsOn) == 0 {
			walk(r.Name, "", "")
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	if repeated {
		fmt.Fprintln(w, "(*) depends on more than one resource: listed in full above")
	}
	if len(shown) < len(out.Resources) {
		return errors.New("some resources were not reached from a resource without dependencies")
	}
	return nil
}
