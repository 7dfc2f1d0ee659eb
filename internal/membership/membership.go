package membership

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// Lease is one node agent's Lease as the manager observed it.
type Lease struct {
	// LastRenewal is when the manager saw the Lease renewed, by the manager's own clock, so that
	// the agents' clocks do not matter.
	LastRenewal time.Time
	// Duration is the Lease's duration.
	Duration time.Duration
	// View is the agent's view; ViewErr says why it could not be read.
	View    View
	ViewErr error
}

// Input is everything the member nodes' states depend on.
type Input struct {
	Now time.Time
	// Members are the nodes the QuorumDisk selects.
	Members []string
	// Leases are the agents' Leases by node.
	Leases map[string]Lease
	// Paused are the nodes an administrator paused.
	Paused map[string]bool
	// RenewInterval is how often the agents renew their Leases (see RenewInterval).
	RenewInterval time.Duration
	// Previous is the last written status, for the time each node entered its state.
	Previous []wolfpackv1alpha1.NodeStatus
	// Quorum decides partitions; its Members is filled in from Members.
	Quorum Quorum
}

// Change is a node's change of state, worth an Event.
type Change struct {
	Node     string
	From, To wolfpackv1alpha1.NodeState
	Message  string
}

// RenewInterval is how often an agent renews its Lease: twice per detection period (interval x
// threshold), so that a crashed node's Lease has missed two renewals about when its peers stop
// hearing it, and at least three times per lease duration. An agent also renews at once when
// what it hears changes.
func RenewInterval(leaseDuration, detection time.Duration) time.Duration {
	return min(detection/2, leaseDuration/3)
}

// unheardAfter is how long a node whose peers all stopped hearing it may go without renewing
// its Lease before it counts as Down: two renewals missed.
func (in Input) unheardAfter() time.Duration {
	return 2 * in.RenewInterval
}

// Compute returns the member nodes' states, sorted by name, and the changes from Previous.
//
// A node is Down when its agent has no Lease or has not renewed it within its duration, or when
// every peer that is itself reporting stops hearing it and its own Lease has missed two renewals
// (a crashed node is noticed at detection time plus two renewals rather than after the whole
// lease). When the nodes that renew their Leases fall into sides that do not hear each other (a
// partition), the nodes of every side without quorum are Down: their agents fail themselves. A
// node whose agent has not yet listened for a whole detection period is Joining. A node an
// administrator paused is Paused. The others are Up.
func Compute(in Input) ([]wolfpackv1alpha1.NodeStatus, []Change) {
	members := slices.Clone(in.Members)
	slices.Sort(members)
	members = slices.Compact(members)
	observers := in.observers(members)
	outvoted := in.outvoted(observers)

	out := make([]wolfpackv1alpha1.NodeStatus, 0, len(members))
	var changes []Change
	for _, name := range members {
		state, msg := in.state(name, observers)
		if why, ok := outvoted[name]; ok {
			state, msg = wolfpackv1alpha1.NodeDown, why
		}
		n := wolfpackv1alpha1.NodeStatus{Name: name, State: state, Since: metav1.NewTime(in.Now), Message: msg,
			ReachableNetworks: reachable(name, observers, in.Leases), Fenced: in.fencedReport(name)}
		prev := previous(in.Previous, name)
		switch {
		case prev != nil && prev.State == state:
			n.Since = prev.Since
		default:
			from := wolfpackv1alpha1.NodeState("")
			if prev != nil {
				from = prev.State
			}
			changes = append(changes, Change{Node: name, From: from, To: state, Message: msg})
		}
		out = append(out, n)
	}
	return out, changes
}

// observers are the nodes whose views are current: Lease fresh, joined, and renewed within two
// renewals.
func (in Input) observers(members []string) []string {
	var out []string
	for _, m := range members {
		l, ok := in.Leases[m]
		if ok && l.ViewErr == nil && l.View.Joined && in.Now.Sub(l.LastRenewal) <= in.unheardAfter() && in.fresh(l) {
			out = append(out, m)
		}
	}
	return out
}

// fencedReport reports whether the node can no longer run group workloads: its agent says, in a
// Lease that has not run out, that it failed its node, or its Lease ran out (an agent fails its
// node before its Lease runs out, by its renew deadline). A node without a Lease is not known
// to be fenced.
func (in Input) fencedReport(name string) bool {
	l, ok := in.Leases[name]
	if !ok {
		return false
	}
	return !in.fresh(l) || (l.ViewErr == nil && l.View.Fenced)
}

func (in Input) fresh(l Lease) bool {
	return in.Now.Sub(l.LastRenewal) <= l.Duration
}

func (in Input) state(name string, observers []string) (wolfpackv1alpha1.NodeState, string) {
	l, ok := in.Leases[name]
	switch {
	case !ok:
		return wolfpackv1alpha1.NodeDown, "no Lease from its node agent"
	case !in.fresh(l):
		return wolfpackv1alpha1.NodeDown, fmt.Sprintf("its node agent has not renewed its Lease for %s (lease duration %s)",
			in.Now.Sub(l.LastRenewal).Round(time.Millisecond), l.Duration)
	}
	peers := slices.DeleteFunc(slices.Clone(observers), func(o string) bool { return o == name })
	if len(peers) > 0 && len(reachable(name, peers, in.Leases)) == 0 && in.Now.Sub(l.LastRenewal) > in.unheardAfter() {
		return wolfpackv1alpha1.NodeDown, fmt.Sprintf("heard by none of its peers (%s) and its Lease not renewed for %s",
			strings.Join(peers, ", "), in.Now.Sub(l.LastRenewal).Round(time.Millisecond))
	}
	switch {
	case l.ViewErr != nil:
		return wolfpackv1alpha1.NodeJoining, "its node agent's view cannot be read: " + l.ViewErr.Error()
	case !l.View.Joined:
		return wolfpackv1alpha1.NodeJoining, "its node agent is listening for its peers"
	case in.Paused[name]:
		return wolfpackv1alpha1.NodePaused, "paused by an administrator"
	}
	return wolfpackv1alpha1.NodeUp, upMessage(name, peers, in.Leases)
}

func upMessage(name string, peers []string, leases map[string]Lease) string {
	if len(peers) == 0 {
		return "renewing its Lease"
	}
	var unheard []string
	for _, p := range peers {
		if len(leases[p].View.Hears(name)) == 0 {
			unheard = append(unheard, p)
		}
	}
	if len(unheard) == 0 {
		return "renewing its Lease; heard by every peer"
	}
	return "renewing its Lease; not heard by " + strings.Join(unheard, ", ")
}

// reachable is the union of the networks on which the observers hear name.
func reachable(name string, observers []string, leases map[string]Lease) []string {
	var out []string
	for _, o := range observers {
		if o != name {
			out = append(out, leases[o].View.Hears(name)...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func previous(nodes []wolfpackv1alpha1.NodeStatus, name string) *wolfpackv1alpha1.NodeStatus {
	for i := range nodes {
		if nodes[i].Name == name {
			return &nodes[i]
		}
	}
	return nil
}

// NextChange is when, without any new renewal, time alone may change a state: the earliest
// moment a Lease misses two renewals or runs out. It is zero when nothing will.
func NextChange(in Input) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(in.Now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, l := range in.Leases {
		consider(l.LastRenewal.Add(in.unheardAfter()))
		consider(l.LastRenewal.Add(l.Duration))
	}
	return next
}

// Detection is how long a peer may be silent before an agent stops counting it as reachable:
// the heartbeat interval times the threshold.
func Detection(hb wolfpackv1alpha1.HeartbeatSpec) time.Duration {
	return hb.IntervalOrDefault() * time.Duration(hb.ThresholdOrDefault())
}
