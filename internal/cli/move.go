package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/failover"
)

// MoveOutput is a move, as -o json|yaml prints it.
type MoveOutput struct {
	Namespace string `json:"namespace"`
	Group     string `json:"group"`
	Cluster   string `json:"cluster"`
	From      string `json:"from,omitempty"`
	To        string `json:"to"`
	// Epoch is the group's epoch on the target once the move is done.
	Epoch int64 `json:"epoch"`
	// OfflineWaves are taken offline on From, in this order; OnlineWaves are then brought online on
	// To.
	OfflineWaves [][]string `json:"offlineWaves"`
	OnlineWaves  [][]string `json:"onlineWaves"`
	DryRun       bool       `json:"dryRun"`
	// Phase is how the move ended, with --wait: Succeeded or Failed.
	Phase   string `json:"phase,omitempty"`
	Message string `json:"message,omitempty"`
}

// MoveOptions are the options of `move`.
type MoveOptions struct {
	*Globals
	Group   string
	To      string
	Wait    bool
	DryRun  bool
	Timeout time.Duration
	Output  string
	// PollInterval is how often --wait reads the group.
	PollInterval time.Duration

	namespace string
}

func newMoveCommand(g *Globals) *cobra.Command {
	o := &MoveOptions{Globals: g, PollInterval: 200 * time.Millisecond}
	cmd := &cobra.Command{
		Use:   "move GROUP [--to NODE] [--wait] [--dry-run]",
		Short: "Move a group to another node",
		Long: `Move a group to another node of its cluster, as MSCS's "Move Group" does: the manager takes the
group's resources offline on the current owner in reverse dependency order, wave by wave, then
brings them online on the target in dependency order, with the group's epoch one higher.

Without --to, the target is chosen as the manager places groups: the first Up node of the group's
preferred owners allowed by every resource's possibleOwners, else any such Up node, other than the
current owner. The move is checked first, as the manager checks it: the target must be a node of
the cluster, Up, allowed by every resource's possibleOwners and not the current owner, and the
group must be desired Online with no operation in progress.

The move is asked for with the annotation wolfpack.dev/move-to=NODE on the group, which the
manager removes once it has taken the request up. --dry-run prints the ordered plan (which
resources go offline and online in which wave) and changes nothing. --wait follows the move to its
end, printing each wave as it starts, and fails when the move fails or --timeout passes.`,
		Example: `  # What moving sql to demo-2 would do
  kubectl cluster move sql --to demo-2 --dry-run -n prod

  # Move sql to the best other node and wait until it is Online there
  kubectl cluster move sql --wait -n prod`,
		Args:              exactlyOne("GROUP"),
		ValidArgsFunction: completeGroups(g, 1),
		RunE:              run(o),
	}
	cmd.Flags().StringVar(&o.To, "to", "", "The node to move the group to (default: the best other Up node)")
	cmd.Flags().BoolVar(&o.Wait, "wait", false, "Follow the move to its end, showing its progress")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "Print the plan of the move without changing anything")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 5*time.Minute, "How long --wait waits for the move to end")
	addOutputFlag(cmd, &o.Output)
	_ = cmd.RegisterFlagCompletionFunc("to", completeNodes(g))
	return cmd
}

// Complete reads the group and namespace.
func (o *MoveOptions) Complete(_ *cobra.Command, args []string) error {
	o.Group = args[0]
	ns, _, err := o.Namespace()
	o.namespace = ns
	return err
}

// Validate checks the flags.
func (o *MoveOptions) Validate() error {
	if o.Wait && o.DryRun {
		return errors.New("--wait and --dry-run cannot be used together: a dry run starts nothing to wait for")
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, not %s", o.Timeout)
	}
	return validateOutput(o.Output)
}

// Run checks the move, then prints its plan or asks for it.
func (o *MoveOptions) Run(ctx context.Context) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	g, out, err := o.plan(ctx, c)
	if err != nil {
		return err
	}
	if o.DryRun {
		if done, err := structured(o.Streams.Out, o.Output, out); done {
			return err
		}
		printMovePlan(o.Streams.Out, out)
		return nil
	}

	key := g.Namespace + "/" + g.Name
	var before *metav1.MicroTime
	if g.Status.Operation != nil {
		before = g.Status.Operation.StartedAt.DeepCopy()
	}
	patch := client.MergeFrom(g.DeepCopy())
	if g.Annotations == nil {
		g.Annotations = map[string]string{}
	}
	g.Annotations[wolfpackv1alpha1.MoveToAnnotation] = out.To
	if err := c.Patch(ctx, g, patch, client.FieldOwner(FieldManager)); err != nil {
		return fmt.Errorf("asking for the move of group %s: %w", key, err)
	}
	humane := o.Output == outputTable || o.Output == outputWide
	if humane {
		fmt.Fprintf(o.Streams.Out, "Move of group %s from %s to %s requested.\n", key, or(out.From, "nowhere"), out.To)
	}
	var werr error
	if o.Wait {
		progress := io.Discard
		if humane {
			progress = o.Streams.Out
		}
		werr = o.wait(ctx, c, g, before, out, progress)
		out.Phase = string(wolfpackv1alpha1.PhaseSucceeded)
		if werr != nil {
			out.Phase, out.Message = string(wolfpackv1alpha1.PhaseFailed), werr.Error()
		}
	}
	if !humane {
		if _, err := structured(o.Streams.Out, o.Output, out); err != nil {
			return err
		}
	}
	return werr
}

// plan reads the group and checks the move, returning the group and the move's plan.
func (o *MoveOptions) plan(ctx context.Context, c client.Client) (*wolfpackv1alpha1.ResourceGroup, MoveOutput, error) {
	g, err := group(ctx, c, o.namespace, o.Group)
	if err != nil {
		return nil, MoveOutput{}, err
	}
	qd, err := o.clusterOfGroup(ctx, c, g)
	if err != nil {
		return nil, MoveOutput{}, err
	}
	all, err := resourcesIn(ctx, c, g.Namespace)
	if err != nil {
		return nil, MoveOutput{}, err
	}
	plan, err := planOf(g, all)
	if err != nil {
		return nil, MoveOutput{}, err
	}
	resources := ofGroup(all, g.Namespace, g.Name)
	key := g.Namespace + "/" + g.Name

	if op := g.Status.Operation; failover.InProgress(op) {
		return nil, MoveOutput{}, fmt.Errorf("group %s has a %s in progress (from %s to %s, %s): wait for it to end", key, op.Kind,
			or(op.From, "nowhere"), or(op.To, "nowhere"), op.Phase)
	}
	if pending := g.Annotations[wolfpackv1alpha1.MoveToAnnotation]; pending != "" && !o.DryRun {
		return nil, MoveOutput{}, fmt.Errorf("a move of group %s to %s is already requested and not yet taken up by the manager (is it running?)", key, pending)
	}
	target, err := o.target(ctx, c, qd, g, resources)
	if err != nil {
		return nil, MoveOutput{}, err
	}
	op, err := checkMove(o.Clock.Now(), qd, g, all, target)
	if err != nil {
		return nil, MoveOutput{}, err
	}
	out := MoveOutput{Namespace: g.Namespace, Group: g.Name, Cluster: qd.Name, From: op.From, To: target,
		Epoch: g.Status.Epoch + 1, OnlineWaves: plan.Waves, OfflineWaves: [][]string{}, DryRun: o.DryRun}
	if op.From != "" {
		out.OfflineWaves = plan.OfflineWaves()
	}
	if out.OnlineWaves == nil {
		out.OnlineWaves = [][]string{}
	}
	return g, out, nil
}

// target is --to, checked to be a member, or the best other node.
func (o *MoveOptions) target(ctx context.Context, c client.Client, qd *wolfpackv1alpha1.QuorumDisk, g *wolfpackv1alpha1.ResourceGroup,
	resources []wolfpackv1alpha1.Resource) (string, error) {
	key := g.Namespace + "/" + g.Name
	if o.To != "" {
		nodes := members(ctx, c, qd)
		if !slices.Contains(nodes, o.To) {
			return "", fmt.Errorf("cannot move group %s: %w", key, notMember(qd, o.To, nodes))
		}
		if _, ok := nodeStatus(qd, o.To); !ok {
			return "", fmt.Errorf("cannot move group %s to %s: the node has no state in the cluster's membership yet (is its node agent running?)", key, o.To)
		}
		return o.To, nil
	}
	var others []failover.Node
	var states []string
	for _, n := range failover.Nodes(qd.Status.Nodes, qd.Spec.PausedNodes) {
		if n.Name != g.Status.OwnerNode {
			others = append(others, n)
			states = append(states, fmt.Sprintf("%s %s", n.Name, n.State))
		}
	}
	to, ok := failover.Place(failover.Placement{PreferredOwners: g.Spec.PreferredOwners, PossibleOwners: possibleOwners(resources), Nodes: others})
	if !ok {
		return "", fmt.Errorf("cannot move group %s: no other node is Up and allowed by every resource's possibleOwners (other nodes: %s)",
			key, orNone(states))
	}
	return to, nil
}

func possibleOwners(resources []wolfpackv1alpha1.Resource) [][]string {
	out := make([][]string, 0, len(resources))
	for _, r := range resources {
		out = append(out, r.Spec.PossibleOwners)
	}
	return out
}

// checkMove asks the Failover Manager's own decision whether it would start a move of g to
// target, and returns the operation it would start, or why it would refuse. all are the
// resources of g's namespace.
func checkMove(now time.Time, qd *wolfpackv1alpha1.QuorumDisk, g *wolfpackv1alpha1.ResourceGroup, all []wolfpackv1alpha1.Resource,
	target string) (*wolfpackv1alpha1.GroupOperation, error) {
	asked := g.DeepCopy()
	if asked.Annotations == nil {
		asked.Annotations = map[string]string{}
	}
	asked.Annotations[wolfpackv1alpha1.MoveToAnnotation] = target
	// The fence grace matters only to a Down owner's failover, never to a move's answer.
	obs, invalid := failover.Observe(failover.Objects{Group: asked, Resources: all, Cluster: qd}, now)
	if invalid != nil {
		return nil, fmt.Errorf("cannot move group %s/%s to %s: %s", g.Namespace, g.Name, target, invalid.Message)
	}
	out := failover.Next(obs)
	if a := out.Move; a != nil && a.Accepted {
		return out.Status.Operation, nil
	}
	why := "the manager would not start it"
	if out.Move != nil {
		why = out.Move.Why
	}
	return nil, fmt.Errorf("cannot move group %s/%s to %s: %s", g.Namespace, g.Name, target, why)
}

func printMovePlan(w io.Writer, out MoveOutput) {
	fmt.Fprintf(w, "Move group %s/%s from %s to %s (dry run: nothing was changed)\n", out.Namespace, out.Group, or(out.From, "nowhere"), out.To)
	if out.From == "" {
		fmt.Fprintf(w, "\nNothing to take offline: the group has no owner.\n")
	} else {
		fmt.Fprintf(w, "\nTake offline on %s, in reverse dependency order:\n", out.From)
		printWaves(w, out.OfflineWaves)
	}
	fmt.Fprintf(w, "Bring online on %s, in dependency order, as epoch %d:\n", out.To, out.Epoch)
	printWaves(w, out.OnlineWaves)
}

// wait follows the move that g was just asked for until it ends. before is the start of the
// group's previous operation, so that the move is told apart from it.
func (o *MoveOptions) wait(ctx context.Context, c client.Client, g *wolfpackv1alpha1.ResourceGroup, before *metav1.MicroTime,
	plan MoveOutput, w io.Writer) error {
	key := g.Namespace + "/" + g.Name
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	ticker := time.NewTicker(o.PollInterval)
	defer ticker.Stop()

	p := &progress{plan: plan, w: w, printed: -1, last: "the manager has not taken the request up"}
	for {
		cur := &wolfpackv1alpha1.ResourceGroup{}
		err := c.Get(ctx, client.ObjectKeyFromObject(g), cur)
		switch op := cur.Status.Operation; {
		case err != nil && ctx.Err() == nil:
			return fmt.Errorf("following the move of group %s: %w", key, err)
		case err != nil:
		case op != nil && op.Kind == wolfpackv1alpha1.OperationMove && op.To == plan.To && (before == nil || !op.StartedAt.Equal(before)):
			if done, err := p.show(cur); done {
				return err
			}
		case cur.Annotations[wolfpackv1alpha1.MoveToAnnotation] == "":
			// The manager took the request up without starting the move: it refused it. Its
			// answer, the MoveAccepted condition, is written before the annotation is removed.
			if c := meta.FindStatusCondition(cur.Status.Conditions, wolfpackv1alpha1.MoveAcceptedCondition); c != nil && c.Status == metav1.ConditionFalse {
				return fmt.Errorf("the manager refused the move of group %s (%s): %s", key, c.Reason, c.Message)
			}
			return fmt.Errorf("the manager took the move of group %s to %s up but did not start it; see kubectl cluster log", key, plan.To)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("the move of group %s to %s did not end within %s (last seen: %s); it goes on without us", key, plan.To, o.Timeout, p.last)
			}
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// progress prints a move's waves as they start.
type progress struct {
	plan    MoveOutput
	w       io.Writer
	printed int
	last    string
}

// show prints the waves started since it last looked at the group, and the end of the move.
// It reports whether the move has ended, and its error if it failed.
func (p *progress) show(g *wolfpackv1alpha1.ResourceGroup) (bool, error) {
	op := g.Status.Operation
	steps := moveSteps(op, p.plan)
	pos := len(steps)
	switch op.Phase {
	case wolfpackv1alpha1.PhaseTakingOffline:
		pos = int(op.Wave)
	case wolfpackv1alpha1.PhaseBringingOnline:
		pos = int(op.Wave)
		if op.From != "" {
			pos += len(p.plan.OfflineWaves)
		}
	case wolfpackv1alpha1.PhaseSucceeded, wolfpackv1alpha1.PhaseFailed:
	}
	for op.Phase != wolfpackv1alpha1.PhaseFailed && p.printed < min(pos, len(steps)-1) {
		p.printed++
		fmt.Fprintln(p.w, steps[p.printed])
	}
	p.last = fmt.Sprintf("%s, wave %d", op.Phase, op.Wave+1)
	key := g.Namespace + "/" + g.Name
	switch op.Phase {
	case wolfpackv1alpha1.PhaseSucceeded:
		fmt.Fprintf(p.w, "Group %s is %s on %s (epoch %d).\n", key, or(string(g.Status.State), "Online"), g.Status.OwnerNode, g.Status.Epoch)
		return true, nil
	case wolfpackv1alpha1.PhaseFailed:
		return true, fmt.Errorf("the move of group %s to %s failed: %s (the group is now %s on %s)", key, p.plan.To, or(op.Message, "no reason given"),
			or(string(g.Status.State), "unknown"), or(g.Status.OwnerNode, "no node"))
	case wolfpackv1alpha1.PhaseTakingOffline, wolfpackv1alpha1.PhaseBringingOnline:
	}
	return false, nil
}

// moveSteps are the progress lines of a move, one per wave.
func moveSteps(op *wolfpackv1alpha1.GroupOperation, plan MoveOutput) []string {
	var steps []string
	if op.From != "" {
		for i, names := range plan.OfflineWaves {
			steps = append(steps, fmt.Sprintf("  offline on %s, wave %d/%d: %s", op.From, i+1, len(plan.OfflineWaves), strings.Join(names, ", ")))
		}
	}
	for i, names := range plan.OnlineWaves {
		steps = append(steps, fmt.Sprintf("  online on %s, wave %d/%d: %s", op.To, i+1, len(plan.OnlineWaves), strings.Join(names, ", ")))
	}
	return steps
}
