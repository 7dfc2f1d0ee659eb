package failover

import (
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/graph"
)

// ResourceView is one resource of a group as the Failover Manager sees it.
type ResourceView struct {
	State wolfpackv1alpha1.ResourceState
	Node  string
	// WantsFailover is true when the resource used up its restarts under RestartOrFailover.
	WantsFailover bool
}

// Observed is everything the next step of a group depends on.
type Observed struct {
	Now time.Time
	// Desired is spec.state.
	Desired wolfpackv1alpha1.DesiredState
	// MoveTo is the wolfpack.dev/move-to annotation, if any.
	MoveTo string
	// Status is the group's current status; Next does not change it.
	Status wolfpackv1alpha1.ResourceGroupStatus
	// Placement holds the preferred and possible owners and the member nodes; its Owner is
	// ignored in favour of Status.OwnerNode.
	Placement Placement
	// Fenced are the Down nodes that can no longer run the group's workloads.
	Fenced map[string]bool
	// Plan is the group's dependency order.
	Plan graph.Plan
	// Resources are the group's resources by name.
	Resources map[string]ResourceView
	// FailoverThreshold and FailoverPeriod bound automatic failovers.
	FailoverThreshold int32
	FailoverPeriod    time.Duration
	// Failback is the failback policy.
	Failback Failback
}

// Event is a transition worth an Event.
type Event struct {
	Warning bool
	Reason  string
	Message string
}

// Outcome is the group's next status and what to tell about it.
type Outcome struct {
	Status wolfpackv1alpha1.ResourceGroupStatus
	Events []Event
	// Move is the answer to the move request (the move-to annotation) that this step handled,
	// if any: the controller removes the annotation once the status is written.
	Move *MoveAnswer
	// Blocked says why the group cannot be placed or failed over, when it cannot.
	Blocked *Event
	// WaitingForFence is true while the owner is Down but not yet fenced.
	WaitingForFence bool
	// Requeue is when to look at the group again if nothing else changes: time alone changes
	// the decision then. Zero for never.
	Requeue time.Duration
}

// MoveAnswer is the Failover Manager's answer to a move request.
type MoveAnswer struct {
	// To is the node the move was asked to.
	To string
	// Accepted says whether the move started; Reason is a CamelCase code (MoveStarted, or why the
	// move was refused) and Why says it in words.
	Accepted    bool
	Reason, Why string
}

// Message is the answer in words.
func (a MoveAnswer) Message() string {
	if a.Accepted {
		return a.Why
	}
	return fmt.Sprintf("move to %s refused: %s", a.To, a.Why)
}

// Next decides one step of a group: it advances the operation in progress by as many waves as
// are done, or starts the operation that the desired state, a move request, a failed owner, a
// failed resource or the failback policy asks for. The result is written to status before
// anything is acted on: the Resource Manager acts on the status only, so a restarted manager
// resumes from the last written step.
func Next(o Observed) Outcome {
	out := Outcome{Status: *o.Status.DeepCopy()}
	s := &out.Status
	if op := s.Operation; InProgress(op) {
		switch {
		case op.To != "" && o.nodeState(op.To) == wolfpackv1alpha1.NodeDown:
			// The target died mid-operation: end it, and let the next step fail the group over.
			op.Phase = wolfpackv1alpha1.PhaseFailed
			op.Message = fmt.Sprintf("node %s went Down during the %s", op.To, op.Kind)
			out.Events = append(out.Events, Event{Warning: true, Reason: wolfpackv1alpha1.MoveFailedReason, Message: op.Message})
		case op.Phase == wolfpackv1alpha1.PhaseBringingOnline && o.resourceWantsFailover():
			// A resource cannot come online on the target: end the operation and fail over.
			op.Phase = wolfpackv1alpha1.PhaseFailed
			op.Message = fmt.Sprintf("a resource used up its restarts on %s during the %s", op.To, op.Kind)
		default:
			o.advance(&out)
			s.State = o.groupState(s)
			return out
		}
	}
	o.start(&out)
	if op := s.Operation; InProgress(op) {
		o.advance(&out)
	}
	s.State = o.groupState(s)
	if out.Blocked != nil && out.Blocked.Reason == wolfpackv1alpha1.FailoverThresholdExceededReason {
		s.State = wolfpackv1alpha1.GroupFailed
	}
	return out
}

// InProgress reports whether the group operation is still running: taking the group offline or
// bringing it online. A nil operation is not.
func InProgress(op *wolfpackv1alpha1.GroupOperation) bool {
	return op != nil && (op.Phase == wolfpackv1alpha1.PhaseTakingOffline || op.Phase == wolfpackv1alpha1.PhaseBringingOnline)
}

// draining reports whether node is Paused with drain.
func (o Observed) draining(node string) bool {
	for _, n := range o.Placement.Nodes {
		if n.Name == node {
			return n.State == wolfpackv1alpha1.NodePaused && n.Drain
		}
	}
	return false
}

func (o Observed) nodeState(name string) wolfpackv1alpha1.NodeState {
	for _, n := range o.Placement.Nodes {
		if n.Name == name {
			return n.State
		}
	}
	return ""
}

// start begins the operation the group needs, if any.
func (o Observed) start(out *Outcome) {
	s := &out.Status
	owner := s.OwnerNode
	begin := func(kind wolfpackv1alpha1.OperationKind, to, msg string) {
		s.Operation = &wolfpackv1alpha1.GroupOperation{
			Kind: kind, From: owner, To: to, Phase: wolfpackv1alpha1.PhaseTakingOffline,
			StartedAt: metav1.NewMicroTime(o.Now), Message: msg,
		}
	}
	p := o.Placement
	p.Owner = owner

	if o.MoveTo != "" {
		a := MoveAnswer{To: o.MoveTo, Accepted: true, Reason: wolfpackv1alpha1.MoveStartedReason,
			Why: fmt.Sprintf("moving from %s to %s as requested", or(owner, "nowhere"), o.MoveTo)}
		if reason, why := o.checkMove(o.MoveTo, owner); reason != "" {
			a.Accepted, a.Reason, a.Why = false, reason, why
		}
		out.Move = &a
		if !a.Accepted {
			out.Events = append(out.Events, Event{Warning: true, Reason: wolfpackv1alpha1.MoveFailedReason, Message: a.Message()})
		} else {
			begin(wolfpackv1alpha1.OperationMove, o.MoveTo, a.Why)
			out.Events = append(out.Events, Event{Reason: wolfpackv1alpha1.MoveRequestedReason, Message: a.Why})
			return
		}
	}

	if o.Desired == wolfpackv1alpha1.DesiredOffline {
		if o.anyRunning() {
			begin(wolfpackv1alpha1.OperationOffline, "", "taking the group offline as requested")
		}
		return
	}

	switch {
	case owner == "":
		target, ok := Place(p)
		if !ok {
			out.Blocked = &Event{Warning: true, Reason: wolfpackv1alpha1.NoEligibleNodeReason,
				Message: "no Up node is allowed by the group's preferred owners and every resource's possible owners"}
			return
		}
		begin(wolfpackv1alpha1.OperationOnline, target, "bringing the group online on "+target)

	case o.nodeState(owner) == wolfpackv1alpha1.NodeDown:
		if !o.Fenced[owner] {
			out.WaitingForFence = true
			return
		}
		o.failover(out, p, fmt.Sprintf("owner %s is Down", owner), wolfpackv1alpha1.OwnerDownReason)

	case o.resourceWantsFailover():
		p.Avoid = []string{owner}
		o.failover(out, p, "a resource used up its restarts on "+owner, wolfpackv1alpha1.RestartThresholdExceededReason)

	case o.draining(owner):
		p.Owner = ""
		if target, ok := Place(p); ok {
			msg := fmt.Sprintf("draining paused node %s: moving to %s", owner, target)
			begin(wolfpackv1alpha1.OperationMove, target, msg)
			out.Events = append(out.Events, Event{Reason: wolfpackv1alpha1.DrainReason, Message: msg})
		}

	case s.Operation != nil && s.Operation.Kind == wolfpackv1alpha1.OperationFailover:
		// Only a group that failed over fails back; one an administrator moved stays.
		if target, ok := FailbackTarget(o.Failback, p, o.Now); ok {
			begin(wolfpackv1alpha1.OperationFailback, target, fmt.Sprintf("failing back from %s to preferred owner %s", owner, target))
			out.Events = append(out.Events, Event{Reason: "Failback", Message: s.Operation.Message})
		}
	}
}

// failover starts a failover if the failover threshold allows it, else leaves the group Failed.
func (o Observed) failover(out *Outcome, p Placement, why, reason string) {
	s := &out.Status
	recent := make([]time.Time, 0, len(s.RecentFailovers))
	for _, t := range s.RecentFailovers {
		recent = append(recent, t.Time)
	}
	allowed, kept := AllowFailover(recent, o.FailoverThreshold, o.FailoverPeriod, o.Now)
	if !allowed {
		out.Blocked = &Event{Warning: true, Reason: wolfpackv1alpha1.FailoverThresholdExceededReason,
			Message: fmt.Sprintf("%s, but the group already failed over %d times within %s (failoverThreshold %d); it stays Failed until an administrator acts",
				why, len(kept), o.FailoverPeriod, o.FailoverThreshold)}
		return
	}
	target, ok := Place(p)
	if !ok {
		out.Blocked = &Event{Warning: true, Reason: wolfpackv1alpha1.NoEligibleNodeReason,
			Message: why + ", and no other Up node is allowed for the group"}
		return
	}
	s.RecentFailovers = s.RecentFailovers[:0]
	for _, t := range kept {
		s.RecentFailovers = append(s.RecentFailovers, metav1.NewTime(t))
	}
	msg := fmt.Sprintf("%s: failing over to %s", why, target)
	s.Operation = &wolfpackv1alpha1.GroupOperation{
		Kind: wolfpackv1alpha1.OperationFailover, From: s.OwnerNode, To: target,
		Phase: wolfpackv1alpha1.PhaseTakingOffline, StartedAt: metav1.NewMicroTime(o.Now), Message: msg,
	}
	out.Events = append(out.Events, Event{Warning: true, Reason: reason, Message: msg})
}

// advance moves the operation on through every wave that is done.
func (o Observed) advance(out *Outcome) {
	s := &out.Status
	op := s.Operation
	for {
		switch op.Phase {
		case wolfpackv1alpha1.PhaseTakingOffline:
			waves := o.Plan.OfflineWaves()
			// Wave by wave, also on a fenced node, where the Resource Manager terminates each
			// resource at once; nothing ran when the group had no owner.
			if op.From != "" && int(op.Wave) < len(waves) {
				if !o.allOffline(waves[op.Wave]) {
					return
				}
				op.Wave++
				continue
			}
			if op.To == "" {
				op.Phase = wolfpackv1alpha1.PhaseSucceeded
				s.OwnerNode = ""
				out.Events = append(out.Events, Event{Reason: "GroupOffline", Message: "every resource is offline"})
				return
			}
			op.Phase, op.Wave = wolfpackv1alpha1.PhaseBringingOnline, 0
			if s.OwnerNode != op.To {
				s.OwnerNode = op.To
				s.Epoch++
			}
		case wolfpackv1alpha1.PhaseBringingOnline:
			if int(op.Wave) < len(o.Plan.Waves) {
				if !o.allOnline(o.Plan.Waves[op.Wave], op.To) {
					return
				}
				op.Wave++
				continue
			}
			op.Phase = wolfpackv1alpha1.PhaseSucceeded
			out.Events = append(out.Events, Event{Reason: wolfpackv1alpha1.MoveSucceededReason,
				Message: fmt.Sprintf("%s done: every resource is online on %s (epoch %d) after %s",
					op.Kind, op.To, s.Epoch, o.Now.Sub(op.StartedAt.Time).Round(time.Millisecond))})
			return
		default:
			return
		}
	}
}

// allOffline says whether every resource named is offline. A Failed resource is not: it failed
// where it ran, and what is left of it (a pod that no longer passes its checks, a pod still
// terminating) may run on there; the Resource Manager takes it offline like any other, and what
// it depends on stays until then.
func (o Observed) allOffline(names []string) bool {
	for _, n := range names {
		switch o.Resources[n].State {
		case wolfpackv1alpha1.ResourceOffline, "":
		default:
			return false
		}
	}
	return true
}

func (o Observed) allOnline(names []string, node string) bool {
	for _, n := range names {
		r := o.Resources[n]
		if r.State != wolfpackv1alpha1.ResourceOnline || r.Node != node {
			return false
		}
	}
	return true
}

func (o Observed) anyRunning() bool {
	for _, r := range o.Resources {
		if r.State != wolfpackv1alpha1.ResourceOffline && r.State != wolfpackv1alpha1.ResourceFailed && r.State != "" {
			return true
		}
	}
	return false
}

func (o Observed) resourceWantsFailover() bool {
	for _, r := range o.Resources {
		if r.WantsFailover {
			return true
		}
	}
	return false
}

// checkMove says why a move to node is not possible, as a reason code and in words, or nothing.
func (o Observed) checkMove(node, owner string) (reason, why string) {
	if o.Desired != wolfpackv1alpha1.DesiredOnline {
		return wolfpackv1alpha1.DesiredOfflineReason, "the group's desired state is " + string(o.Desired)
	}
	if node == owner {
		return wolfpackv1alpha1.AlreadyOwnerReason, "the group is already there"
	}
	switch o.nodeState(node) {
	case "":
		return wolfpackv1alpha1.UnknownNodeReason, "it is not a node of the cluster"
	case wolfpackv1alpha1.NodeUp:
	default:
		return wolfpackv1alpha1.NodeNotUpReason, fmt.Sprintf("it is %s", o.nodeState(node))
	}
	for _, n := range o.Placement.Nodes {
		if n.Name == node && n.Fenced {
			return wolfpackv1alpha1.SelfFencedReason, "it has failed itself: its side of the cluster has no quorum"
		}
	}
	if !o.Placement.allowed(node) {
		return wolfpackv1alpha1.NotPossibleOwnerReason, "a resource of the group may not run there (possibleOwners)"
	}
	return "", ""
}

// groupState summarises the group for status.state.
func (o Observed) groupState(s *wolfpackv1alpha1.ResourceGroupStatus) wolfpackv1alpha1.GroupState {
	if InProgress(s.Operation) {
		return wolfpackv1alpha1.GroupPending
	}
	online, offline, failed := 0, 0, 0
	for _, r := range o.Resources {
		switch {
		case r.State == wolfpackv1alpha1.ResourceOnline && r.Node == s.OwnerNode:
			online++
		case r.State == wolfpackv1alpha1.ResourceOffline || r.State == "":
			offline++
		case r.State == wolfpackv1alpha1.ResourceFailed:
			failed++
		}
	}
	switch {
	case failed > 0 && online == 0:
		return wolfpackv1alpha1.GroupFailed
	case online == len(o.Resources) && online > 0:
		return wolfpackv1alpha1.GroupOnline
	case offline == len(o.Resources):
		return wolfpackv1alpha1.GroupOffline
	case online > 0:
		return wolfpackv1alpha1.GroupPartialOnline
	default:
		return wolfpackv1alpha1.GroupPending
	}
}

// Target says where the Resource Manager must keep resource name, given its group's status: online
// on node, or offline (node then names where it ran, for taking it offline there).
func Target(s *wolfpackv1alpha1.ResourceGroupStatus, plan graph.Plan, name string) (node string, online bool) {
	waveOf := func(waves [][]string) int {
		for i, w := range waves {
			if slices.Contains(w, name) {
				return i
			}
		}
		return -1
	}
	if op := s.Operation; op != nil {
		switch op.Phase {
		case wolfpackv1alpha1.PhaseTakingOffline:
			if w := waveOf(plan.OfflineWaves()); w > int(op.Wave) && op.From != "" {
				return op.From, true
			}
			return op.From, false
		case wolfpackv1alpha1.PhaseBringingOnline:
			if w := waveOf(plan.Waves); w >= 0 && w <= int(op.Wave) {
				return op.To, true
			}
			return op.To, false
		case wolfpackv1alpha1.PhaseSucceeded, wolfpackv1alpha1.PhaseFailed:
			// A finished operation leaves the group with its owner, below.
		}
	}
	if s.OwnerNode == "" {
		return "", false
	}
	return s.OwnerNode, true
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

// Waiting returns the dependencies that are not Online on node: a resource comes online only
// after them, also outside a group operation (a resource added to an online group, or one whose
// dependency restarts).
func Waiting(dependsOn []string, resources map[string]ResourceView, node string) []string {
	var out []string
	for _, d := range dependsOn {
		if r := resources[d]; r.State != wolfpackv1alpha1.ResourceOnline || r.Node != node {
			out = append(out, d)
		}
	}
	return out
}
