package cli

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"
)

// NodesOutput is the cluster's nodes, as -o json|yaml prints them.
type NodesOutput struct {
	Cluster string     `json:"cluster"`
	Nodes   []NodeInfo `json:"nodes"`
}

// NodesOptions are the options of `nodes`.
type NodesOptions struct {
	*Globals
	Output string
}

func newNodesCommand(g *Globals) *cobra.Command {
	o := &NodesOptions{Globals: g}
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the cluster's nodes with their state, networks and groups",
		Long: `List the member nodes of the cluster: their state (Up, Down, Paused, Joining), since when, the
heartbeat networks on which their peers hear them, and the groups they own. A node that the node
selector selects but that the membership does not list yet is Unknown. -o wide adds whether the
node is paused or drained, whether it holds the quorum, and why it is in its state.`,
		Example: `  kubectl cluster nodes
  kubectl cluster nodes -o wide`,
		Args: cobra.NoArgs,
		RunE: run(o),
	}
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// Complete does nothing: nodes needs no namespace.
func (o *NodesOptions) Complete(*cobra.Command, []string) error { return nil }

// Validate checks the flags.
func (o *NodesOptions) Validate() error { return validateOutput(o.Output) }

// Run prints the nodes.
func (o *NodesOptions) Run(ctx context.Context) error {
	c, s, err := o.loadCluster(ctx, "")
	if err != nil {
		return err
	}
	qd := s.qd
	out := NodesOutput{Cluster: qd.Name, Nodes: s.nodes(members(ctx, c, qd))}
	if done, err := structured(o.Streams.Out, o.Output, out); done {
		return err
	}
	return printNodes(o.Streams.Out, out.Nodes, o.Clock.Now(), o.Output == outputWide)
}

// printNodes prints the NODES table.
func printNodes(w io.Writer, nodes []NodeInfo, now time.Time, wide bool) error {
	if len(nodes) == 0 {
		_, err := io.WriteString(w, "No nodes: label nodes for the cluster, or check its nodeSelector.\n")
		return err
	}
	header := []string{"NAME", "STATE", "SINCE", "NETWORKS", "GROUPS"}
	if wide {
		header = append(header, "PAUSED", "QUORUM", "MESSAGE")
	}
	t := newTable(w, header...)
	for _, n := range nodes {
		since := ""
		if n.Since != nil {
			since = age(now, *n.Since)
		}
		row := []string{n.Name, n.stateColumn(), since, join(n.Networks), join(n.Groups)}
		if wide {
			pausedCol := "no"
			if n.Paused {
				pausedCol = "yes"
				if n.Drain {
					pausedCol = "drain"
				}
			}
			quorum := ""
			if n.QuorumOwner {
				quorum = "owner"
			}
			row = append(row, pausedCol, quorum, n.Message)
		}
		t.row(row...)
	}
	return t.flush()
}
