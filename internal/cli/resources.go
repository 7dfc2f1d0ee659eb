package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// ResourcesOutput is a list of resources, as -o json|yaml prints it.
type ResourcesOutput struct {
	Cluster   string         `json:"cluster"`
	Node      string         `json:"node,omitempty"`
	Resources []ResourceInfo `json:"resources"`
}

// ResourcesOptions are the options of `resources`.
type ResourcesOptions struct {
	*Globals
	Output        string
	AllNamespaces bool
	// Node limits the list to the resources active (not Offline) on a node.
	Node string
	// Group limits the list to one group.
	Group string

	namespace string
}

func newResourcesCommand(g *Globals) *cobra.Command {
	o := &ResourcesOptions{Globals: g}
	cmd := &cobra.Command{
		Use:     "resources [GROUP]",
		Aliases: []string{"resource", "res"},
		Short:   "List the resources of the cluster's groups, or what is active on a node",
		Long: `List the resources of the cluster's groups in the namespace (-A: in every namespace), or of one
GROUP: type, state, node and restarts in the current restart period. -o wide adds the
dependencies and the last failure.

--node NODE lists what is active on that node (every resource that is not Offline there), in
every namespace unless -n is given.`,
		Example: `  kubectl cluster resources sql -n prod
  kubectl cluster resources --node demo-1
  kubectl cluster resources -A -o wide`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeGroups(g, 1),
		RunE:              run(o),
	}
	addOutputFlag(cmd, &o.Output)
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "List the resources of every namespace")
	cmd.Flags().StringVar(&o.Node, "node", "", "List only what is active on this node")
	_ = cmd.RegisterFlagCompletionFunc("node", completeNodes(g))
	return cmd
}

// Complete reads the group and the namespace.
func (o *ResourcesOptions) Complete(_ *cobra.Command, args []string) error {
	if len(args) == 1 {
		o.Group = args[0]
	}
	ns, explicit, err := o.Namespace()
	if err != nil {
		return err
	}
	if !o.AllNamespaces && (o.Node == "" || explicit || o.Group != "") {
		o.namespace = ns
	}
	return nil
}

// Validate checks the flags.
func (o *ResourcesOptions) Validate() error {
	if o.AllNamespaces && o.Group != "" {
		return fmt.Errorf("a GROUP and -A cannot be used together: a group is in one namespace")
	}
	return validateOutput(o.Output)
}

// Run prints the resources.
func (o *ResourcesOptions) Run(ctx context.Context) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	out, err := o.collect(ctx, c)
	if err != nil {
		return err
	}
	if o.Node != "" {
		out.Node = o.Node
		out.Resources = slices.DeleteFunc(out.Resources, func(r ResourceInfo) bool {
			return r.Node != o.Node || r.State == "" || r.State == string(wolfpackv1alpha1.ResourceOffline)
		})
	}
	if out.Resources == nil {
		out.Resources = []ResourceInfo{}
	}
	if done, err := structured(o.Streams.Out, o.Output, out); done {
		return err
	}
	if len(out.Resources) == 0 {
		what := "No resources found" + inNamespace(o.namespace)
		if o.Node != "" {
			what = "Nothing is active on node " + o.Node + inNamespace(o.namespace)
		}
		_, err := io.WriteString(o.Streams.Out, what+".\n")
		return err
	}
	return printResources(o.Streams.Out, out.Resources, o.namespace == "", o.Output == outputWide, o.Clock.Now())
}

// collect lists the resources of the group, or of the cluster's groups.
func (o *ResourcesOptions) collect(ctx context.Context, c client.Client) (ResourcesOutput, error) {
	var out ResourcesOutput
	if o.Group != "" {
		g, err := group(ctx, c, o.namespace, o.Group)
		if err != nil {
			return out, err
		}
		qd, err := o.clusterOfGroup(ctx, c, g)
		if err != nil {
			return out, err
		}
		all, err := resourcesIn(ctx, c, o.namespace)
		if err != nil {
			return out, err
		}
		out.Cluster = qd.Name
		for _, r := range ofGroup(all, g.Namespace, g.Name) {
			out.Resources = append(out.Resources, resourceInfo(&r))
		}
		return out, nil
	}
	qd, err := o.cluster(ctx, c)
	if err != nil {
		return out, err
	}
	if o.Node != "" {
		if nodes := members(ctx, c, qd); !slices.Contains(nodes, o.Node) {
			return out, notMember(qd, o.Node, nodes)
		}
	}
	s, err := load(ctx, c, qd, o.namespace)
	if err != nil {
		return out, err
	}
	out.Cluster = qd.Name
	for _, r := range s.resources {
		out.Resources = append(out.Resources, resourceInfo(&r))
	}
	return out, nil
}

func printResources(w io.Writer, resources []ResourceInfo, withNamespace, wide bool, now time.Time) error {
	header := []string{"GROUP", "NAME", "TYPE", "STATE", "NODE", "RESTARTS"}
	if withNamespace {
		header = append([]string{"NAMESPACE"}, header...)
	}
	if wide {
		header = append(header, "DEPENDS-ON", "LAST-FAILURE")
	}
	t := newTable(w, header...)
	for _, r := range resources {
		row := []string{r.Group, r.Name, r.Type, r.State, r.Node, strconv.Itoa(int(r.Restarts))}
		if withNamespace {
			row = append([]string{r.Namespace}, row...)
		}
		if wide {
			failure := ""
			if f := r.LastFailure; f != nil {
				failure = f.Reason
				if f.Time != nil {
					failure += " (" + age(now, *f.Time) + " ago)"
				}
			}
			row = append(row, join(r.DependsOn), failure)
		}
		t.row(row...)
	}
	return t.flush()
}
