package cli

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// PauseOptions are the options of `pause` and `resume`.
type PauseOptions struct {
	*Globals
	Node string
	// Drain moves the node's groups off it (pause only).
	Drain bool
	// Resume removes the node from the paused nodes instead.
	Resume bool
}

func newPauseCommand(g *Globals) *cobra.Command {
	o := &PauseOptions{Globals: g}
	cmd := &cobra.Command{
		Use:   "pause NODE [--drain]",
		Short: "Pause a node: it keeps its groups but gets no new ones",
		Long: `Pause a node of the cluster, as MSCS's "Pause Node" does: the node stays a member and keeps the
groups it owns, but no group is moved or failed over to it. With --drain its groups are first
moved to other Up nodes, as WSFC's "Pause and drain roles" does; follow them with
kubectl cluster status.

The node is added to the QuorumDisk's spec.pausedNodes (a merge patch with optimistic locking,
retried on conflict); "kubectl cluster resume NODE" removes it.`,
		Example: `  kubectl cluster pause demo-2
  kubectl cluster pause demo-1 --drain`,
		Args:              exactlyOne("NODE"),
		ValidArgsFunction: completeNodesArg(g),
		RunE:              run(o),
	}
	cmd.Flags().BoolVar(&o.Drain, "drain", false, "Move the node's groups to other Up nodes first")
	return cmd
}

func newResumeCommand(g *Globals) *cobra.Command {
	o := &PauseOptions{Globals: g, Resume: true}
	return &cobra.Command{
		Use:   "resume NODE",
		Short: "Resume a paused node: it may own groups again",
		Long: `Resume a paused node: remove it from the QuorumDisk's spec.pausedNodes, so that groups may move
and fail over to it again. Groups that were drained from it stay where they are: move them back
with kubectl cluster move, or let failback do it where the group allows it.`,
		Example:           `  kubectl cluster resume demo-2`,
		Args:              exactlyOne("NODE"),
		ValidArgsFunction: completeNodesArg(g),
		RunE:              run(o),
	}
}

// Complete reads the node.
func (o *PauseOptions) Complete(_ *cobra.Command, args []string) error {
	o.Node = args[0]
	return nil
}

// Validate has nothing to check.
func (o *PauseOptions) Validate() error { return nil }

// Run edits spec.pausedNodes.
func (o *PauseOptions) Run(ctx context.Context) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	var message string
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		qd, err := o.cluster(ctx, c)
		if err != nil {
			return err
		}
		current, isPaused := paused(qd, o.Node)
		nodes := members(ctx, c, qd)
		if !slices.Contains(nodes, o.Node) && !isPaused {
			return notMember(qd, o.Node, nodes)
		}
		patch := client.MergeFromWithOptions(qd.DeepCopy(), client.MergeFromWithOptimisticLock{})
		switch {
		case o.Resume && !isPaused:
			message = fmt.Sprintf("Node %s of cluster %s is not paused.", o.Node, qd.Name)
			return nil
		case o.Resume:
			qd.Spec.PausedNodes = slices.DeleteFunc(qd.Spec.PausedNodes, func(p wolfpackv1alpha1.PausedNode) bool { return p.Name == o.Node })
			message = fmt.Sprintf("Node %s of cluster %s resumed: groups may move and fail over to it again.", o.Node, qd.Name)
		case isPaused && current.Drain == o.Drain:
			message = fmt.Sprintf("Node %s of cluster %s is already paused%s.", o.Node, qd.Name, drained(o.Drain))
			return nil
		case isPaused:
			for i := range qd.Spec.PausedNodes {
				if qd.Spec.PausedNodes[i].Name == o.Node {
					qd.Spec.PausedNodes[i].Drain = o.Drain
				}
			}
			message = fmt.Sprintf("Node %s of cluster %s is now paused%s.", o.Node, qd.Name, drained(o.Drain))
		default:
			qd.Spec.PausedNodes = append(qd.Spec.PausedNodes, wolfpackv1alpha1.PausedNode{Name: o.Node, Drain: o.Drain})
			message = fmt.Sprintf("Node %s of cluster %s paused%s.", o.Node, qd.Name, drained(o.Drain))
		}
		return c.Patch(ctx, qd, patch, client.FieldOwner(FieldManager))
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(o.Streams.Out, message)
	return nil
}

func drained(drain bool) string {
	if drain {
		return " with drain: its groups move to other Up nodes"
	}
	return ": it keeps its groups and gets no new ones"
}
