package cli

import (
	"context"
	"io"
	"strconv"

	"github.com/spf13/cobra"
)

// GroupsOutput is the cluster's groups, as -o json|yaml prints them.
type GroupsOutput struct {
	Cluster string      `json:"cluster"`
	Groups  []GroupInfo `json:"groups"`
}

// GroupsOptions are the options of `groups`.
type GroupsOptions struct {
	*Globals
	Output        string
	AllNamespaces bool

	namespace string
}

func newGroupsCommand(g *Globals) *cobra.Command {
	o := &GroupsOptions{Globals: g}
	cmd := &cobra.Command{
		Use:     "groups",
		Aliases: []string{"group", "rg"},
		Short:   "List the cluster's groups with their state and owner",
		Long: `List the groups of the cluster in the namespace (-A: in every namespace): desired and observed
state, owner node, epoch and how many resources are Online. -o wide adds the priority, the
preferred owners and the last operation.`,
		Example: `  kubectl cluster groups -n prod
  kubectl cluster groups -A -o wide`,
		Args: cobra.NoArgs,
		RunE: run(o),
	}
	addOutputFlag(cmd, &o.Output)
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "List the groups of every namespace")
	return cmd
}

// Complete reads the namespace.
func (o *GroupsOptions) Complete(*cobra.Command, []string) error {
	ns, _, err := o.Namespace()
	if err != nil {
		return err
	}
	if !o.AllNamespaces {
		o.namespace = ns
	}
	return nil
}

// Validate checks the flags.
func (o *GroupsOptions) Validate() error { return validateOutput(o.Output) }

// Run prints the groups.
func (o *GroupsOptions) Run(ctx context.Context) error {
	_, s, err := o.loadCluster(ctx, o.namespace)
	if err != nil {
		return err
	}
	qd := s.qd
	out := GroupsOutput{Cluster: qd.Name, Groups: s.groupInfos(false)}
	if done, err := structured(o.Streams.Out, o.Output, out); done {
		return err
	}
	if len(out.Groups) == 0 {
		_, err := io.WriteString(o.Streams.Out, "No groups of cluster "+qd.Name+" found"+inNamespace(o.namespace)+".\n")
		return err
	}
	return printGroups(o.Streams.Out, out.Groups, o.AllNamespaces, o.Output == outputWide)
}

// printGroups prints the GROUPS table, with a NAMESPACE column when withNamespace.
func printGroups(w io.Writer, groups []GroupInfo, withNamespace, wide bool) error {
	header := []string{"NAME", "DESIRED", "STATE", "OWNER", "EPOCH", "RESOURCES"}
	if withNamespace {
		header = append([]string{"NAMESPACE"}, header...)
	}
	if wide {
		header = append(header, "PRIORITY", "PREFERRED", "OPERATION")
	}
	t := newTable(w, header...)
	for _, g := range groups {
		row := []string{g.Name, g.DesiredState, g.State, g.OwnerNode, strconv.FormatInt(g.Epoch, 10), g.resourcesSummary()}
		if withNamespace {
			row = append([]string{g.Namespace}, row...)
		}
		if wide {
			row = append(row, strconv.Itoa(int(g.Priority)), join(g.PreferredOwners), g.operationSummary())
		}
		t.row(row...)
	}
	return t.flush()
}

func inNamespace(ns string) string {
	if ns == "" {
		return ""
	}
	return " in namespace " + ns
}
