package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// StatusOutput is the cluster at a glance, as -o json|yaml prints it.
type StatusOutput struct {
	Cluster     string      `json:"cluster"`
	QuorumType  string      `json:"quorumType"`
	QuorumOwner string      `json:"quorumOwner,omitempty"`
	Epoch       int64       `json:"epoch"`
	Nodes       []NodeInfo  `json:"nodes"`
	Groups      []GroupInfo `json:"groups"`
}

// StatusOptions are the options of `status`.
type StatusOptions struct {
	*Globals
	Output string

	namespace string
}

func newStatusCommand(g *Globals) *cobra.Command {
	o := &StatusOptions{Globals: g}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster at a glance: quorum, nodes, groups and failed resources",
		Long: `Show the cluster at a glance, as crm_mon or Get-ClusterGroup do: the quorum owner and epoch,
every member node with its state, since when, and the heartbeat networks on which its peers hear
it, every group of the cluster with its state, owner, epoch and how many of its resources are
Online, then the operations in progress, the failed resources and the groups' problems.

status shows the groups of every namespace; -n limits them to one.`,
		Example: `  kubectl cluster status
  kubectl cluster status --cluster demo -o wide
  kubectl cluster status -o json`,
		Args: cobra.NoArgs,
		RunE: run(o),
	}
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// Complete reads the namespace: all of them unless -n was given.
func (o *StatusOptions) Complete(_ *cobra.Command, _ []string) error {
	ns, explicit, err := o.Namespace()
	if err != nil {
		return err
	}
	if explicit {
		o.namespace = ns
	}
	return nil
}

// Validate checks the flags.
func (o *StatusOptions) Validate() error { return validateOutput(o.Output) }

// Run prints the status.
func (o *StatusOptions) Run(ctx context.Context) error {
	c, s, err := o.loadCluster(ctx, o.namespace)
	if err != nil {
		return err
	}
	qd := s.qd
	out := StatusOutput{Cluster: qd.Name, QuorumType: string(qd.Spec.QuorumTypeOrDefault()), QuorumOwner: qd.Status.Owner, Epoch: qd.Status.Epoch,
		Nodes: s.nodes(members(ctx, c, qd)), Groups: s.groupInfos(true)}
	if done, err := structured(o.Streams.Out, o.Output, out); done {
		return err
	}
	return o.print(o.Streams.Out, out)
}

func (o *StatusOptions) print(w io.Writer, out StatusOutput) error {
	now := o.Clock.Now()
	wide := o.Output == outputWide
	fmt.Fprintf(w, "Cluster %s (%s)  quorum owner: %s  epoch: %d\n", out.Cluster, out.QuorumType, or(out.QuorumOwner, "none"), out.Epoch)

	fmt.Fprintf(w, "\nNodes:\n")
	if err := printNodes(w, out.Nodes, now, wide); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nGroups:\n")
	if len(out.Groups) == 0 {
		fmt.Fprintln(w, "No groups.")
	} else if err := printGroups(w, out.Groups, true, wide); err != nil {
		return err
	}

	var ops, failed, problems []string
	for _, g := range out.Groups {
		key := g.Namespace + "/" + g.Name
		if op := g.Operation; op != nil && (op.Phase == string(wolfpackv1alpha1.PhaseTakingOffline) || op.Phase == string(wolfpackv1alpha1.PhaseBringingOnline)) {
			started := ""
			if op.StartedAt != nil {
				started = ", started " + age(now, *op.StartedAt) + " ago"
			}
			ops = append(ops, fmt.Sprintf("%s: %s from %s to %s, %s wave %d%s", key, op.Kind, or(op.From, "nowhere"), or(op.To, "nowhere"),
				op.Phase, op.Wave+1, started))
		}
		for _, r := range g.Resources {
			if r.State != string(wolfpackv1alpha1.ResourceFailed) {
				continue
			}
			line := fmt.Sprintf("%s/%s (%s) on %s, restarts %d", key, r.Name, r.Type, or(r.Node, "no node"), r.Restarts)
			if f := r.LastFailure; f != nil {
				when := ""
				if f.Time != nil {
					when = " " + age(now, *f.Time) + " ago"
				}
				line += fmt.Sprintf(": %s%s: %s", f.Reason, when, f.Message)
			}
			failed = append(failed, line)
		}
		for _, p := range g.Problems {
			problems = append(problems, key+": "+p)
		}
	}
	for _, section := range []struct {
		title string
		lines []string
	}{{"Operations in progress", ops}, {"Failed resources", failed}, {"Problems", problems}} {
		if len(section.lines) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", section.title)
		for _, l := range section.lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	return nil
}

// stateColumn is the STATE column: the state, and whether the node is drained.
func (n NodeInfo) stateColumn() string {
	if n.Paused && n.Drain {
		return n.State + "(drain)"
	}
	if n.Paused && n.State != string(wolfpackv1alpha1.NodePaused) {
		return n.State + "(pausing)"
	}
	return n.State
}
