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
	// Seen is when the manager first saw the Lease's current renewTime, by the manager's
	// monotonic clock: the renewTime itself, written by the agent's clock, is never compared
	// with the manager's. Zero for a Lease the manager never saw renewed.
	Seen time.Time
	// Duration is d_X: the lease duration the node's agent acts on, as it published it in its
	// Lease (see LeaseDuration).
	Duration time.Duration
	// Missing says that the node has no Lease (any more): Seen and Duration are then what the
	// manager last knew of it, if anything.
	Missing bool
	// View is the agent's view; ViewErr says why it could not be read.
	View    View
	ViewErr error
}

// Input is everything the member nodes' states depend on. Every time in it is the manager's
// monotonic clock.
type Input struct {
	Now time.Time
	// ObservingSince is when the manager last started observing (see Window): no Lease is older
	// than that to it.
	ObservingSince time.Time
	// Members are the nodes the QuorumDisk selects.
	Members []string
	// Leases are the agents' Leases by node.
	Leases map[string]Lease
	// LastHeard is, by node, the latest time a fresh peer view heard it (see Heard); a node
	// heard now needs no entry.
	LastHeard map[string]time.Time
	// Paused are the nodes an administrator paused.
	Paused map[string]bool
	// RenewInterval is how often the agents renew their Leases (see RenewInterval).
	RenewInterval time.Duration
	// Detection is D, the heartbeat detection time (interval x threshold), and HeartbeatInterval
	// is I, the heartbeat interval.
	Detection, HeartbeatInterval time.Duration
	// ExtraMargin is added to the silence after which a node counts as fenced by time (the
	// manager's --fence-grace); zero by default.
	ExtraMargin time.Duration
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

// FenceBudget is B(d), the time an agent's fence action may take after its renew deadline
// R(d) = 2d/3: d - R(d).
func FenceBudget(d time.Duration) time.Duration {
	return d - d*2/3
}

// LeaseDuration is d_X, the duration a node is judged by: the leaseDurationSeconds its agent
// published in its Lease, the duration it acts on. A Lease without one (an agent older than the
// field) is judged by the cluster's spec.leaseDuration, or by longer if the manager judged it
// by longer before (atLeast): a spec that was shortened is not seen by an agent that runs on.
func LeaseDuration(published *int32, spec, atLeast time.Duration) time.Duration {
	if published != nil && *published > 0 {
		return time.Duration(*published) * time.Second
	}
	return max(spec, atLeast)
}

// Age is how long the manager has gone without seeing a new renewal, by its monotonic clock:
// since it saw the current one, or since it started observing, whichever is later. A manager
// that was not looking (just started, just became leader, stalled, or cut off from the API
// server) does not count that time against anyone.
func Age(now, seen, observingSince time.Time) time.Duration {
	return max(now.Sub(later(seen, observingSince)), 0)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (in Input) age(l Lease) time.Duration {
	return Age(in.Now, l.Seen, in.ObservingSince)
}

// runOut reports whether the Lease ran out: missing, or not seen renewed for longer than its
// duration.
func (in Input) runOut(l Lease) bool {
	return l.Missing || in.age(l) > l.Duration
}

// unheardAfter is how long a node whose peers all stopped hearing it may go without renewing
// its Lease before it counts as Down: two renewals missed.
func (in Input) unheardAfter() time.Duration {
	return 2 * in.RenewInterval
}

// Silence is how long after a node was last heard by a fresh peer view it counts as fenced
// once its Lease has also run out: D + I + the renew interval + max(B(d), R(d)), plus the extra
// margin. Within D + I + the renew interval of the last view that heard it, the node knows that
// it is no longer heard both ways; then either its agent runs, fails its node by F1 or F2 and
// its fence action has had its budget B(d), or its agent hung after its last feed of a watchdog
// (an agent that hears every peer both ways feeds it without renewing, F2's exception), which
// resets the node within its timeout, at most R(d): the larger of the two covers both.
func (in Input) Silence(d time.Duration) time.Duration {
	renew := max(in.RenewInterval, RenewInterval(d, in.Detection))
	return in.Detection + in.HeartbeatInterval + renew + max(FenceBudget(d), d*2/3) + in.ExtraMargin
}

// Compute returns the member nodes' states, sorted by name, and the changes from Previous.
//
// A node is Down when its agent has no Lease; when its Lease ran out and no fresh peer view
// hears it; when no fresh peer view hears it and its Lease has missed two renewals (a crashed
// node is noticed at detection time plus two renewals rather than after the whole lease); or
// when it is outvoted: its side (itself and the peers it hears both ways) has no quorum, by
// MustFence, as its agent decides. A Lease that ran out while a peer still hears the node leaves
// the node as its last view said: its agent cannot reach the API server, but its node is in the
// cluster. A node whose agent has not yet listened for a whole detection period is Joining. A
// node an administrator paused is Paused. The others are Up. See Fenced for status.nodes[].fenced.
func Compute(in Input) ([]wolfpackv1alpha1.NodeStatus, []Change) {
	members := slices.Clone(in.Members)
	slices.Sort(members)
	members = slices.Compact(members)
	views := in.views(members)
	observers := slices.DeleteFunc(slices.Clone(views), func(m string) bool { return !in.Leases[m].View.Joined })
	outvoted := in.outvoted(members, observers, views)

	out := make([]wolfpackv1alpha1.NodeStatus, 0, len(members))
	var changes []Change
	for _, name := range members {
		state, msg := in.state(name, observers, views)
		if why, ok := outvoted[name]; ok {
			state, msg = wolfpackv1alpha1.NodeDown, why
		}
		n := wolfpackv1alpha1.NodeStatus{Name: name, State: state, Since: metav1.NewTime(in.Now), Message: msg,
			ReachableNetworks: reachable(name, observers, in.Leases), Fenced: in.fenced(name, state, views)}
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

// views are the members whose views are fresh: a readable view in a Lease that has not run out
// and was renewed within two renewals. Observers are those of joined agents.
func (in Input) views(members []string) []string {
	var out []string
	for _, m := range members {
		l, ok := in.Leases[m]
		if ok && l.ViewErr == nil && !in.runOut(l) && in.age(l) <= in.unheardAfter() {
			out = append(out, m)
		}
	}
	return out
}

// heardBy are the nodes of views, other than name, whose view hears name.
func (in Input) heardBy(name string, views []string) []string {
	var out []string
	for _, v := range views {
		if v != name && len(in.Leases[v].View.Hears(name)) > 0 {
			out = append(out, v)
		}
	}
	return out
}

// Heard are the members a fresh peer view hears now, in either direction: another fresh view
// hears it, or its own fresh view hears a peer. The manager records the time for each, as
// lastHeard, and passes it back in Input.LastHeard.
func Heard(in Input) []string {
	members := slices.Clone(in.Members)
	slices.Sort(members)
	members = slices.Compact(members)
	views := in.views(members)
	var out []string
	for _, m := range members {
		if in.heardNow(m, views) {
			out = append(out, m)
		}
	}
	return out
}

// heardNow reports whether name counts as heard now: a fresh peer view hears it, or its own
// fresh view hears a peer, or no other member has a fresh view at all. In the last case nothing
// says that anyone stopped hearing it (every agent may have lost the API server while their
// nodes still hear each other, so that none fenced), and silence is measured only from evidence
// of absence: a fresh view of a peer that does not hear it.
func (in Input) heardNow(name string, views []string) bool {
	if len(in.heardBy(name, views)) > 0 {
		return true
	}
	if !slices.ContainsFunc(views, func(v string) bool { return v != name }) {
		return true
	}
	if slices.Contains(views, name) {
		for _, v := range views {
			if v != name && len(in.Leases[name].View.Hears(v)) > 0 {
				return true
			}
		}
	}
	return false
}

// lastHeard is when a fresh peer view last heard name: now if one does, never before the
// manager started observing.
func (in Input) lastHeard(name string, views []string) time.Time {
	if in.heardNow(name, views) {
		return in.Now
	}
	return later(in.LastHeard[name], in.ObservingSince)
}

// fenced is status.nodes[].fenced. For a Down node it is the verdict that its groups may be
// taken from it, by the manager's monotonic clock, and nothing else counts:
//
//	(a) a Lease of it that has not run out reports that its agent's fence action succeeded, or
//	(b) its Lease ran out (age > d_X) and no fresh peer view has heard it for Silence(d_X).
//
// For a node that is not Down it reports (a) alone, so that nothing is placed on a node that
// failed itself; it gives up no group then.
func (in Input) fenced(name string, state wolfpackv1alpha1.NodeState, views []string) bool {
	l, ok := in.Leases[name]
	reported := ok && !in.runOut(l) && l.ViewErr == nil && l.View.Fenced
	if state != wolfpackv1alpha1.NodeDown || reported {
		return reported
	}
	d := l.Duration
	if !ok || d <= 0 {
		return false // never judged by any duration: not fenced by time
	}
	return in.runOut(l) && in.Now.Sub(in.lastHeard(name, views)) > in.Silence(d)
}

func (in Input) state(name string, observers, views []string) (wolfpackv1alpha1.NodeState, string) {
	l, ok := in.Leases[name]
	if !ok || l.Missing {
		return wolfpackv1alpha1.NodeDown, "no Lease from its node agent"
	}
	heardBy := in.heardBy(name, views)
	var prefix string
	if in.runOut(l) {
		if len(heardBy) == 0 {
			return wolfpackv1alpha1.NodeDown, fmt.Sprintf("its node agent has not renewed its Lease for %s (lease duration %s) and no peer hears it",
				in.age(l).Round(time.Millisecond), l.Duration)
		}
		// Its agent cannot reach the API server, but its node is in the cluster: its last view
		// stands, its groups stay.
		prefix = fmt.Sprintf("its node agent cannot reach the API server (Lease not renewed for %s, lease duration %s); heard by %s; ",
			in.age(l).Round(time.Millisecond), l.Duration, strings.Join(heardBy, ", "))
	}
	peers := slices.DeleteFunc(slices.Clone(observers), func(o string) bool { return o == name })
	if len(peers) > 0 && len(heardBy) == 0 && in.age(l) > in.unheardAfter() {
		return wolfpackv1alpha1.NodeDown, fmt.Sprintf("heard by none of its peers (%s) and its Lease not renewed for %s",
			strings.Join(peers, ", "), in.age(l).Round(time.Millisecond))
	}
	switch {
	case l.ViewErr != nil:
		return wolfpackv1alpha1.NodeJoining, prefix + "its node agent's view cannot be read: " + l.ViewErr.Error()
	case !l.View.Joined:
		return wolfpackv1alpha1.NodeJoining, prefix + "its node agent is listening for its peers"
	case in.Paused[name]:
		return wolfpackv1alpha1.NodePaused, prefix + "paused by an administrator"
	case prefix != "":
		return wolfpackv1alpha1.NodeUp, strings.TrimSuffix(prefix, "; ")
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

// NextChange is when, without any new renewal, time alone may change a state or a fenced
// verdict: the earliest moment a Lease misses two renewals or runs out, or a node's silence
// makes it fenced (see Input.fenced (b)). It is zero when nothing will. The conditions are
// strict, so each moment is taken a millisecond after its bound.
func NextChange(in Input) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		t = t.Add(time.Millisecond)
		if t.After(in.Now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	members := slices.Clone(in.Members)
	slices.Sort(members)
	views := in.views(slices.Compact(members))
	for name, l := range in.Leases {
		base := later(l.Seen, in.ObservingSince)
		if !l.Missing {
			consider(base.Add(in.unheardAfter()))
		}
		if l.Duration <= 0 {
			continue
		}
		silent := in.lastHeard(name, views).Add(in.Silence(l.Duration))
		if l.Missing {
			consider(silent)
			continue
		}
		runOut := base.Add(l.Duration)
		consider(runOut)
		consider(later(runOut, silent))
	}
	return next
}

// Detection is how long a peer may be silent before an agent stops counting it as reachable:
// the heartbeat interval times the threshold.
func Detection(hb wolfpackv1alpha1.HeartbeatSpec) time.Duration {
	return hb.IntervalOrDefault() * time.Duration(hb.ThresholdOrDefault())
}
