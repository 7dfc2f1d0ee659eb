package failover

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/graph"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// sqlGroup is the sample group: waves [disk] [agent ip] [name] [server].
func sqlGroup() []graph.Resource {
	return []graph.Resource{
		{Name: "disk", Group: "sql"}, {Name: "ip", Group: "sql", DependsOn: []string{"disk"}},
		{Name: "name", Group: "sql", DependsOn: []string{"ip"}}, {Name: "server", Group: "sql", DependsOn: []string{"name"}},
		{Name: "agent", Group: "sql", DependsOn: []string{"disk"}},
	}
}

func observed(t *testing.T) Observed {
	t.Helper()
	plan, problems := graph.Build("sql", sqlGroup())
	if problems != nil {
		t.Fatal(problems)
	}
	res := map[string]ResourceView{}
	for _, r := range sqlGroup() {
		res[r.Name] = ResourceView{State: wp.ResourceOffline}
	}
	return Observed{
		Now: t0, Desired: wp.DesiredOnline,
		Placement:         Placement{PreferredOwners: []string{"a", "b"}, Nodes: nodes("a", "Up", "b", "Up")},
		Fenced:            map[string]bool{},
		Plan:              plan,
		Resources:         res,
		FailoverThreshold: 1,
		FailoverPeriod:    6 * time.Hour,
		Failback:          Failback{Policy: wp.FailbackPrevent},
	}
}

func allOn(o *Observed, node string, state wp.ResourceState) {
	for name := range o.Resources {
		o.Resources[name] = ResourceView{State: state, Node: node}
	}
}

func onlineOn(node string, epoch int64) wp.ResourceGroupStatus {
	return wp.ResourceGroupStatus{State: wp.GroupOnline, OwnerNode: node, Epoch: epoch}
}

func TestNext(t *testing.T) {
	type want struct {
		kind      wp.OperationKind
		phase     wp.OperationPhase
		wave      int32
		from, to  string
		owner     string
		epoch     int64
		state     wp.GroupState
		event     string // a reason among the events
		blocked   string
		move      string // the reason of the answer to a move request, if one was handled
		waitFence bool
	}
	cases := []struct {
		name  string
		setup func(o *Observed)
		want  want
	}{
		{
			name:  "new group comes online on its first preferred owner",
			setup: func(*Observed) {},
			want: want{kind: wp.OperationOnline, phase: wp.PhaseBringingOnline, wave: 0, to: "a", owner: "a", epoch: 1,
				state: wp.GroupPending},
		},
		{
			name: "a wave that is online lets the next one start",
			setup: func(o *Observed) {
				o.Status = wp.ResourceGroupStatus{OwnerNode: "a", Epoch: 1, Operation: &wp.GroupOperation{
					Kind: wp.OperationOnline, To: "a", Phase: wp.PhaseBringingOnline, StartedAt: metav1.NewMicroTime(t0)}}
				o.Resources["disk"] = ResourceView{State: wp.ResourceOnline, Node: "a"}
				o.Resources["agent"] = ResourceView{State: wp.ResourceOnline, Node: "a"}
				o.Resources["ip"] = ResourceView{State: wp.ResourceOnlinePending, Node: "a"}
			},
			want: want{kind: wp.OperationOnline, phase: wp.PhaseBringingOnline, wave: 1, to: "a", owner: "a", epoch: 1, state: wp.GroupPending},
		},
		{
			name: "last wave online: the operation succeeds",
			setup: func(o *Observed) {
				o.Status = wp.ResourceGroupStatus{OwnerNode: "a", Epoch: 1, Operation: &wp.GroupOperation{
					Kind: wp.OperationOnline, To: "a", Phase: wp.PhaseBringingOnline, Wave: 3, StartedAt: metav1.NewMicroTime(t0)}}
				allOn(o, "a", wp.ResourceOnline)
			},
			want: want{kind: wp.OperationOnline, phase: wp.PhaseSucceeded, wave: 4, to: "a", owner: "a", epoch: 1,
				state: wp.GroupOnline, event: wp.MoveSucceededReason},
		},
		{
			name: "move request: offline on the old owner first, epoch unchanged",
			setup: func(o *Observed) {
				o.Status = onlineOn("a", 1)
				allOn(o, "a", wp.ResourceOnline)
				o.MoveTo = "b"
			},
			want: want{kind: wp.OperationMove, phase: wp.PhaseTakingOffline, wave: 0, from: "a", to: "b", owner: "a", epoch: 1,
				state: wp.GroupPending, event: wp.MoveRequestedReason, move: wp.MoveStartedReason},
		},
		{
			name: "move: once everything is offline, online on the new owner with a new epoch",
			setup: func(o *Observed) {
				o.Status = wp.ResourceGroupStatus{OwnerNode: "a", Epoch: 1, Operation: &wp.GroupOperation{
					Kind: wp.OperationMove, From: "a", To: "b", Phase: wp.PhaseTakingOffline, Wave: 2, StartedAt: metav1.NewMicroTime(t0)}}
				allOn(o, "a", wp.ResourceOffline)
			},
			want: want{kind: wp.OperationMove, phase: wp.PhaseBringingOnline, wave: 0, from: "a", to: "b", owner: "b", epoch: 2, state: wp.GroupPending},
		},
		{
			name: "move to a node outside the cluster is refused",
			setup: func(o *Observed) {
				o.Status = onlineOn("a", 1)
				allOn(o, "a", wp.ResourceOnline)
				o.MoveTo = "ghost"
			},
			want: want{owner: "a", epoch: 1, state: wp.GroupOnline, event: wp.MoveFailedReason, move: wp.UnknownNodeReason},
		},
		{
			name: "move to a Down node is refused",
			setup: func(o *Observed) {
				o.Status = onlineOn("a", 1)
				allOn(o, "a", wp.ResourceOnline)
				o.Placement.Nodes = nodes("a", "Up", "b", "Down")
				o.MoveTo = "b"
			},
			want: want{owner: "a", epoch: 1, state: wp.GroupOnline, event: wp.MoveFailedReason, move: wp.NodeNotUpReason},
		},
		{
			name: "move to a node that failed itself (no quorum) is refused",
			setup: func(o *Observed) {
				o.Status = onlineOn("a", 1)
				allOn(o, "a", wp.ResourceOnline)
				o.Placement.Nodes = []Node{{Name: "a", State: "Up"}, {Name: "b", State: "Up", Fenced: true}}
				o.MoveTo = "b"
			},
			want: want{owner: "a", epoch: 1, state: wp.GroupOnline, event: wp.MoveFailedReason, move: wp.SelfFencedReason},
		},
		{
			name: "move where a resource may not run is refused",
			setup: func(o *Observed) {
				o.Status = onlineOn("a", 1)
				allOn(o, "a", wp.ResourceOnline)
				o.Placement.PossibleOwners = [][]string{{"a"}}
				o.MoveTo = "b"
			},
			want: want{owner: "a", epoch: 1, state: wp.GroupOnline, event: wp.MoveFailedReason, move: wp.NotPossibleOwnerReason},
		},
		{
			name: "owner paused with drain: the group moves to another Up node",
			setup: func(o *Observed) {
				o.Status = onlineOn("a", 1)
				allOn(o, "a", wp.ResourceOnline)
				o.Placement.Nodes = []Node{{Name: "a", State: wp.NodePaused, Drain: true}, {Name: "b", State: wp.NodeUp}}
			},
			want: want{kind: wp.OperationMove, phase: wp.PhaseTakingOffline, from: "a", to: "b", owner: "a", epoch: 1,
				state: wp.GroupPending, event: wp.DrainReason},
		},
		{
			name: "owner paused with drain and no other Up node: the group stays",
			setup: func(o *Observed) {
				o.Status = onlineOn("a", 1)
				allOn(o, "a", wp.ResourceOnline)
				o.Placement.Nodes = []Node{{Name: "a", State: wp.NodePaused, Drain: true}, {Name: "b", State: wp.NodePaused}}
			},
			want: want{owner: "a", epoch: 1, state: wp.GroupOnline},
		},
		{
			name: "owner paused without drain keeps its group",
			setup: func(o *Observed) {
				o.Status = onlineOn("a", 1)
				allOn(o, "a", wp.ResourceOnline)
				o.Placement.Nodes = nodes("a", "Paused", "b", "Up")
			},
			want: want{owner: "a", epoch: 1, state: wp.GroupOnline},
		},
		{
			name:  "a new group is not placed on a paused node",
			setup: func(o *Observed) { o.Placement.Nodes = nodes("a", "Paused", "b", "Up") },
			want: want{kind: wp.OperationOnline, phase: wp.PhaseBringingOnline, to: "b", owner: "b", epoch: 1,
				state: wp.GroupPending},
		},
		{
			name: "owner Down but not fenced: wait",
			setup: func(o *Observed) {
				o.Status = onlineOn("a", 1)
				allOn(o, "a", wp.ResourceOnline)
				o.Placement.Nodes = nodes("a", "Down", "b", "Up")
			},
			want: want{owner: "a", epoch: 1, state: wp.GroupOnline, waitFence: true},
		},
		{
			name: "owner Down and fenced: fail over, terminating on the owner in reverse order",
			setup: func(o *Observed) {
				o.Status = onlineOn("a", 1)
				allOn(o, "a", wp.ResourceOnline)
				o.Placement.Nodes = nodes("a", "Down", "b", "Up")
				o.Fenced["a"] = true
			},
			want: want{kind: wp.OperationFailover, phase: wp.PhaseTakingOffline, wave: 0, from: "a", to: "b", owner: "a", epoch: 1,
				state: wp.GroupPending, event: wp.OwnerDownReason},
		},
		{
			name: "failover from a fenced owner: once everything is terminated, online on the new owner",
			setup: func(o *Observed) {
				o.Status = wp.ResourceGroupStatus{OwnerNode: "a", Epoch: 1, Operation: &wp.GroupOperation{
					Kind: wp.OperationFailover, From: "a", To: "b", Phase: wp.PhaseTakingOffline, Wave: 3, StartedAt: metav1.NewMicroTime(t0)}}
				allOn(o, "", wp.ResourceOffline)
				o.Placement.Nodes = nodes("a", "Down", "b", "Up")
				o.Fenced["a"] = true
			},
			want: want{kind: wp.OperationFailover, phase: wp.PhaseBringingOnline, from: "a", to: "b", owner: "b", epoch: 2,
				state: wp.GroupPending},
		},
		{
			name: "owner Down past the failover threshold: the group stays Failed",
			setup: func(o *Observed) {
				o.Status = onlineOn("b", 2)
				o.Status.RecentFailovers = []metav1.Time{metav1.NewTime(t0.Add(-time.Hour))}
				allOn(o, "b", wp.ResourceOnline)
				o.Placement.Nodes = nodes("a", "Up", "b", "Down")
				o.Fenced["b"] = true
			},
			want: want{owner: "b", epoch: 2, state: wp.GroupFailed, blocked: wp.FailoverThresholdExceededReason},
		},
		{
			name: "a resource out of restarts fails the group over, offline first (the failed one is not offline yet)",
			setup: func(o *Observed) {
				o.Status = onlineOn("a", 1)
				allOn(o, "a", wp.ResourceOnline)
				o.Resources["server"] = ResourceView{State: wp.ResourceFailed, Node: "a", WantsFailover: true}
			},
			want: want{kind: wp.OperationFailover, phase: wp.PhaseTakingOffline, wave: 0, from: "a", to: "b", owner: "a", epoch: 1,
				state: wp.GroupPending, event: wp.RestartThresholdExceededReason},
		},
		{
			name: "desired Offline: the group goes offline in reverse order",
			setup: func(o *Observed) {
				o.Status = onlineOn("a", 1)
				allOn(o, "a", wp.ResourceOnline)
				o.Desired = wp.DesiredOffline
			},
			want: want{kind: wp.OperationOffline, phase: wp.PhaseTakingOffline, from: "a", owner: "a", epoch: 1, state: wp.GroupPending},
		},
		{
			name: "offline done: no owner",
			setup: func(o *Observed) {
				o.Status = wp.ResourceGroupStatus{OwnerNode: "a", Epoch: 1, Operation: &wp.GroupOperation{
					Kind: wp.OperationOffline, From: "a", Phase: wp.PhaseTakingOffline, Wave: 3, StartedAt: metav1.NewMicroTime(t0)}}
				allOn(o, "a", wp.ResourceOffline)
				o.Desired = wp.DesiredOffline
			},
			want: want{kind: wp.OperationOffline, phase: wp.PhaseSucceeded, wave: 4, from: "a", epoch: 1, state: wp.GroupOffline, event: "GroupOffline"},
		},
		{
			name: "target Down mid-move: the move fails and the group stays on its owner",
			setup: func(o *Observed) {
				o.Status = wp.ResourceGroupStatus{OwnerNode: "a", Epoch: 1, Operation: &wp.GroupOperation{
					Kind: wp.OperationMove, From: "a", To: "b", Phase: wp.PhaseTakingOffline, Wave: 1, StartedAt: metav1.NewMicroTime(t0)}}
				allOn(o, "a", wp.ResourceOnline)
				o.Placement.Nodes = nodes("a", "Up", "b", "Down")
			},
			want: want{kind: wp.OperationMove, phase: wp.PhaseFailed, wave: 1, from: "a", to: "b", owner: "a", epoch: 1,
				state: wp.GroupOnline, event: wp.MoveFailedReason},
		},
		{
			name: "failback inside the window",
			setup: func(o *Observed) {
				o.Status = onlineOn("b", 2)
				o.Status.Operation = &wp.GroupOperation{Kind: wp.OperationFailover, From: "a", To: "b", Phase: wp.PhaseSucceeded}
				allOn(o, "b", wp.ResourceOnline)
				o.Failback = Failback{Policy: wp.FailbackAllow, WindowStart: ptr.To[int32](9), WindowEnd: ptr.To[int32](11)}
			},
			want: want{kind: wp.OperationFailback, phase: wp.PhaseTakingOffline, from: "b", to: "a", owner: "b", epoch: 2,
				state: wp.GroupPending, event: "Failback"},
		},
		{
			name: "no failback after an administrator's move",
			setup: func(o *Observed) {
				o.Status = onlineOn("b", 2)
				o.Status.Operation = &wp.GroupOperation{Kind: wp.OperationMove, From: "a", To: "b", Phase: wp.PhaseSucceeded}
				allOn(o, "b", wp.ResourceOnline)
				o.Failback = Failback{Policy: wp.FailbackAllow}
			},
			want: want{kind: wp.OperationMove, phase: wp.PhaseSucceeded, from: "a", to: "b", owner: "b", epoch: 2, state: wp.GroupOnline},
		},
		{
			name: "no eligible node",
			setup: func(o *Observed) {
				o.Placement.Nodes = nodes("a", "Paused", "b", "Down")
			},
			want: want{state: wp.GroupOffline, blocked: wp.NoEligibleNodeReason},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := observed(t)
			tc.setup(&o)
			before := o.Status.DeepCopy()
			out := Next(o)
			s := out.Status
			w := tc.want
			if w.kind == "" {
				if s.Operation != nil && (before.Operation == nil || s.Operation.Kind != before.Operation.Kind) {
					t.Errorf("started operation %+v, want none", s.Operation)
				}
			} else if op := s.Operation; op == nil || op.Kind != w.kind || op.Phase != w.phase || op.Wave != w.wave || op.From != w.from || op.To != w.to {
				t.Errorf("operation %+v, want %s %s wave %d from %q to %q", op, w.kind, w.phase, w.wave, w.from, w.to)
			}
			if s.OwnerNode != w.owner || s.Epoch != w.epoch || s.State != w.state {
				t.Errorf("owner %q epoch %d state %s, want %q %d %s", s.OwnerNode, s.Epoch, s.State, w.owner, w.epoch, w.state)
			}
			if w.event != "" && !hasEvent(out.Events, w.event) {
				t.Errorf("events %+v, want one with reason %s", out.Events, w.event)
			}
			if (out.Blocked == nil) != (w.blocked == "") || (out.Blocked != nil && out.Blocked.Reason != w.blocked) {
				t.Errorf("blocked %+v, want %q", out.Blocked, w.blocked)
			}
			if got := moveReason(out.Move); got != w.move || out.WaitingForFence != w.waitFence {
				t.Errorf("move answer %+v waitingForFence %v, want %q %v", out.Move, out.WaitingForFence, w.move, w.waitFence)
			}
			if a := out.Move; a != nil && (a.Accepted != (a.Reason == wp.MoveStartedReason) || a.To != o.MoveTo || a.Why == "") {
				t.Errorf("move answer %+v does not answer the request to %q", a, o.MoveTo)
			}
			if before.Operation != nil && o.Status.Operation.Phase != before.Operation.Phase {
				t.Error("Next changed its input status")
			}
		})
	}
}

func moveReason(a *MoveAnswer) string {
	if a == nil {
		return ""
	}
	return a.Reason
}

func hasEvent(events []Event, reason string) bool {
	for _, e := range events {
		if e.Reason == reason {
			return true
		}
	}
	return false
}

func TestFailoverRecordsTheFailoverTime(t *testing.T) {
	o := observed(t)
	o.Status = onlineOn("a", 1)
	allOn(&o, "a", wp.ResourceOnline)
	o.Placement.Nodes = nodes("a", "Down", "b", "Up")
	o.Fenced["a"] = true
	out := Next(o)
	if len(out.Status.RecentFailovers) != 1 || !out.Status.RecentFailovers[0].Time.Equal(t0) {
		t.Fatalf("recentFailovers %v, want [%v]", out.Status.RecentFailovers, t0)
	}
	for _, e := range out.Events {
		if !strings.Contains(e.Message, "owner a is Down: failing over to b") {
			t.Errorf("event message %q", e.Message)
		}
	}
}

func TestTarget(t *testing.T) {
	o := observed(t)
	plan := o.Plan
	cases := []struct {
		name   string
		status wp.ResourceGroupStatus
		want   map[string]string // resource -> "node" when online, "-" when offline
	}{
		{
			name:   "no owner: everything offline",
			status: wp.ResourceGroupStatus{},
			want:   map[string]string{"disk": "-", "ip": "-", "agent": "-", "name": "-", "server": "-"},
		},
		{
			name:   "settled on b",
			status: onlineOn("b", 2),
			want:   map[string]string{"disk": "b", "ip": "b", "agent": "b", "name": "b", "server": "b"},
		},
		{
			name: "taking offline wave 1 of [server] [name] [agent ip] [disk]",
			status: wp.ResourceGroupStatus{OwnerNode: "a", Operation: &wp.GroupOperation{
				Kind: wp.OperationMove, From: "a", To: "b", Phase: wp.PhaseTakingOffline, Wave: 1}},
			want: map[string]string{"server": "-", "name": "-", "agent": "a", "ip": "a", "disk": "a"},
		},
		{
			name: "bringing online wave 1 of [disk] [agent ip] [name] [server]",
			status: wp.ResourceGroupStatus{OwnerNode: "b", Operation: &wp.GroupOperation{
				Kind: wp.OperationMove, From: "a", To: "b", Phase: wp.PhaseBringingOnline, Wave: 1}},
			want: map[string]string{"disk": "b", "agent": "b", "ip": "b", "name": "-", "server": "-"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for name, want := range tc.want {
				node, online := Target(&tc.status, plan, name)
				got := "-"
				if online {
					got = node
				}
				if got != want {
					t.Errorf("%s: %s, want %s", name, got, want)
				}
			}
		})
	}
}

// TestSimulatedMoves drives Next and Target against resources that follow their targets at random
// speeds, through moves back and forth, and checks the promises of a move at every step: a
// resource is online only once all its dependencies are online on the same node, no resource is
// online on two nodes' behalf at once (nothing on the new owner before everything is off the old
// one), and the epoch goes up by one per change of owner.
func TestSimulatedMoves(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 25))
	deps := map[string][]string{}
	for _, res := range sqlGroup() {
		deps[res.Name] = res.DependsOn
	}
	for trial := range 300 {
		o := observed(t)
		moves := []string{"b", "a", "b"}
		owners := 0
		lastOwner := ""
		for step := 0; step < 2000 && (len(moves) > 0 || o.Status.Operation == nil || InProgress(o.Status.Operation)); step++ {
			o.Now = t0.Add(time.Duration(step) * time.Second)
			if o.MoveTo == "" && len(moves) > 0 && o.Status.State == wp.GroupOnline && r.IntN(3) == 0 {
				o.MoveTo, moves = moves[0], moves[1:]
			}
			out := Next(o)
			if out.Move != nil {
				o.MoveTo = ""
			}
			if out.Status.OwnerNode != lastOwner {
				owners++
				if out.Status.Epoch != int64(owners) {
					t.Fatalf("trial %d: owner %s with epoch %d after %d owners", trial, out.Status.OwnerNode, out.Status.Epoch, owners)
				}
				lastOwner = out.Status.OwnerNode
			}
			o.Status = out.Status
			// Each resource takes one step towards its target, or not, at random.
			for name, view := range o.Resources {
				node, online := Target(&o.Status, o.Plan, name)
				if r.IntN(2) == 0 {
					continue
				}
				switch {
				case online && view.State == wp.ResourceOffline:
					view = ResourceView{State: wp.ResourceOnlinePending, Node: node}
				case online && view.State == wp.ResourceOnlinePending:
					view.State = wp.ResourceOnline
				case !online && view.State == wp.ResourceOnline:
					view.State = wp.ResourceOfflinePending
				case !online && view.State == wp.ResourceOfflinePending:
					view = ResourceView{State: wp.ResourceOffline}
				}
				o.Resources[name] = view
			}
			// The promises.
			nodesInUse := map[string]bool{}
			for name, view := range o.Resources {
				if view.State == wp.ResourceOffline {
					continue
				}
				nodesInUse[view.Node] = true
				if view.State != wp.ResourceOnline {
					continue
				}
				for _, d := range deps[name] {
					if dv := o.Resources[d]; dv.State != wp.ResourceOnline || dv.Node != view.Node {
						t.Fatalf("trial %d step %d: %s is online on %s while its dependency %s is %s on %q",
							trial, step, name, view.Node, d, dv.State, dv.Node)
					}
				}
			}
			if len(nodesInUse) > 1 {
				t.Fatalf("trial %d step %d: resources active on %v at once: %+v", trial, step, nodesInUse, o.Resources)
			}
		}
		if len(moves) > 0 || o.Status.State != wp.GroupOnline || o.Status.OwnerNode != "b" || o.Status.Epoch != 4 {
			t.Fatalf("trial %d: ended %s on %s at epoch %d with moves %v left; want Online on b at epoch 4",
				trial, o.Status.State, o.Status.OwnerNode, o.Status.Epoch, moves)
		}
	}
}

func TestWaiting(t *testing.T) {
	res := map[string]ResourceView{
		"disk": {State: wp.ResourceOnline, Node: "a"},
		"ip":   {State: wp.ResourceOnlinePending, Node: "a"},
		"old":  {State: wp.ResourceOnline, Node: "b"},
	}
	cases := []struct {
		deps []string
		want []string
	}{
		{nil, nil},
		{[]string{"disk"}, nil},
		{[]string{"disk", "ip"}, []string{"ip"}},
		{[]string{"old", "ghost"}, []string{"old", "ghost"}},
	}
	for _, tc := range cases {
		if got := Waiting(tc.deps, res, "a"); !slices.Equal(got, tc.want) {
			t.Errorf("Waiting(%v) = %v, want %v", tc.deps, got, tc.want)
		}
	}
}
