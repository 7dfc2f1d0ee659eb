package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/failover"
)

// StateOptions are the options of `online` and `offline`.
type StateOptions struct {
	*Globals
	// State is the desired state to set.
	State   wolfpackv1alpha1.DesiredState
	Group   string
	Wait    bool
	Timeout time.Duration
	// PollInterval is how often --wait reads the group.
	PollInterval time.Duration

	namespace string
}

func newStateCommand(g *Globals, state wolfpackv1alpha1.DesiredState) *cobra.Command {
	o := &StateOptions{Globals: g, State: state, PollInterval: 200 * time.Millisecond}
	verb := strings.ToLower(string(state))
	what := "brings its resources online on the group's owner, or on the node placement chooses, in dependency order"
	if state == wolfpackv1alpha1.DesiredOffline {
		what = "takes its resources offline in reverse dependency order, and keeps them offline until the group is brought online again"
	}
	cmd := &cobra.Command{
		Use:   verb + " GROUP",
		Short: fmt.Sprintf("Set a group's desired state to %s", state),
		Long: fmt.Sprintf(`Set the persistent desired state of a group (spec.state) to %s: the manager %s.

%s accepts only groups. A resource has no desired state of its own in the Wolfpack API: it is
online exactly when its group is online on a node, so that its dependents can rely on it. To make
a failed resource start again, use "kubectl cluster restart RESOURCE", which deletes its pods so
that the Resource Manager applies the resource's restart policy.`, state, what, verb),
		Example: fmt.Sprintf(`  kubectl cluster %[1]s sql -n prod
  kubectl cluster %[1]s sql -n prod --wait`, verb),
		Args:              exactlyOne("GROUP"),
		ValidArgsFunction: completeGroups(g, 1),
		RunE:              run(o),
	}
	cmd.Flags().BoolVar(&o.Wait, "wait", false, fmt.Sprintf("Wait until the group is %s", state))
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 5*time.Minute, "How long --wait waits")
	return cmd
}

// Complete reads the group and namespace.
func (o *StateOptions) Complete(_ *cobra.Command, args []string) error {
	o.Group = args[0]
	ns, _, err := o.Namespace()
	o.namespace = ns
	return err
}

// Validate checks the flags.
func (o *StateOptions) Validate() error {
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, not %s", o.Timeout)
	}
	return nil
}

// Run sets the desired state.
func (o *StateOptions) Run(ctx context.Context) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	verb := strings.ToLower(string(o.State))
	g, err := group(ctx, c, o.namespace, o.Group)
	if err != nil {
		// A resource's name is a common mistake: say what to do instead.
		r := &wolfpackv1alpha1.Resource{}
		if rerr := c.Get(ctx, client.ObjectKey{Namespace: o.namespace, Name: o.Group}, r); rerr == nil {
			return fmt.Errorf("%s accepts only groups: %q is a resource of group %q, and a resource has no desired state of its own; "+
				"use \"kubectl cluster %s %s\" for its group, or \"kubectl cluster restart %s\" to restart it", verb, r.Name, r.Spec.Group,
				verb, r.Spec.Group, r.Name)
		} else if !apierrors.IsNotFound(rerr) {
			return errors.Join(err, rerr)
		}
		return err
	}
	if _, err := o.clusterOfGroup(ctx, c, g); err != nil {
		return err
	}
	key := g.Namespace + "/" + g.Name
	if g.Spec.State == o.State {
		fmt.Fprintf(o.Streams.Out, "Group %s is already desired %s (it is %s on %s).\n", key, o.State,
			or(string(g.Status.State), "unknown"), or(g.Status.OwnerNode, "no node"))
	} else {
		patch := client.MergeFrom(g.DeepCopy())
		g.Spec.State = o.State
		if err := c.Patch(ctx, g, patch, client.FieldOwner(FieldManager)); err != nil {
			return fmt.Errorf("setting group %s %s: %w", key, o.State, err)
		}
		fmt.Fprintf(o.Streams.Out, "Group %s desired %s.\n", key, o.State)
	}
	if !o.Wait {
		return nil
	}
	return o.wait(ctx, c, g)
}

// wait waits until the group is in its desired state.
func (o *StateOptions) wait(ctx context.Context, c client.Client, g *wolfpackv1alpha1.ResourceGroup) error {
	key := g.Namespace + "/" + g.Name
	want := wolfpackv1alpha1.GroupOnline
	if o.State == wolfpackv1alpha1.DesiredOffline {
		want = wolfpackv1alpha1.GroupOffline
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	ticker := time.NewTicker(o.PollInterval)
	defer ticker.Stop()
	for {
		if err := c.Get(ctx, client.ObjectKeyFromObject(g), g); err != nil && ctx.Err() == nil {
			return fmt.Errorf("following group %s: %w", key, err)
		}
		if g.Status.State == want && !failover.InProgress(g.Status.Operation) && g.Status.ObservedGeneration >= g.Generation {
			fmt.Fprintf(o.Streams.Out, "Group %s is %s%s.\n", key, want, onNode(g.Status.OwnerNode))
			return nil
		}
		if g.Status.State == wolfpackv1alpha1.GroupFailed && o.State == wolfpackv1alpha1.DesiredOnline && !failover.InProgress(g.Status.Operation) &&
			g.Status.ObservedGeneration >= g.Generation {
			return fmt.Errorf("group %s is Failed; see kubectl cluster status and kubectl cluster log", key)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group %s is not %s after %s (it is %s%s)", key, want, o.Timeout, or(string(g.Status.State), "unknown"), onNode(g.Status.OwnerNode))
		case <-ticker.C:
		}
	}
}

func onNode(node string) string {
	if node == "" {
		return ""
	}
	return " on " + node
}
