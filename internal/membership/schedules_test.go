package membership

import (
	"strings"
	"testing"
	"time"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// The schedules of issue 13 that the Membership Manager closes, with the cluster's default
// timing: D = 2 s, I = 500 ms, d = 10 s, renew interval 1 s, so a node whose Lease ran out
// counts as fenced once unheard for Silence(10 s) = 2 s + 500 ms + 1 s + R(10 s) 6.67 s = 10.17 s.

func defaults(leases map[string]Lease) Input {
	return Input{Now: t0, Members: []string{"a", "b"}, Leases: leases, RenewInterval: time.Second,
		Detection: 2 * time.Second, HeartbeatInterval: 500 * time.Millisecond}
}

// nodeB is node b's status as Compute has it.
func nodeB(t *testing.T, in Input) wolfpackv1alpha1.NodeStatus {
	t.Helper()
	got, _ := Compute(in)
	for _, n := range got {
		if n.Name == "b" {
			return n
		}
	}
	t.Fatalf("no node b in %+v", got)
	return wolfpackv1alpha1.NodeStatus{}
}

func TestSilence(t *testing.T) {
	t.Parallel()
	if got, want := defaults(nil).Silence(10*time.Second), 10166666666*time.Nanosecond; got != want {
		t.Errorf("Silence(10s) = %s, want %s", got, want)
	}
	in := defaults(nil)
	in.ExtraMargin = 5 * time.Second
	if got, want := in.Silence(10*time.Second), 15166666666*time.Nanosecond; got != want {
		t.Errorf("Silence(10s) with a 5 s margin = %s, want %s", got, want)
	}
}

// TestOneWayLossAgentAndManagerAgree: b stops hearing a while a still hears b, or the other way
// round. The manager (Compute) and each agent (MustFence over its heartbeat evidence) reach the
// same verdict, whoever owns the disk.
func TestOneWayLossAgentAndManagerAgree(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		owner  string
		leases map[string]Lease
	}{
		{"a owns the disk, a stopped hearing b", "a", map[string]Lease{"a": lease(0), "b": lease(0, "a")}},
		{"a owns the disk, b stopped hearing a", "a", map[string]Lease{"a": lease(0, "b"), "b": lease(0)}},
		{"b owns the disk, a stopped hearing b", "b", map[string]Lease{"a": lease(0), "b": lease(0, "a")}},
		{"b owns the disk, b stopped hearing a", "b", map[string]Lease{"a": lease(0, "b"), "b": lease(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := defaults(tc.leases)
			in.Quorum = Quorum{Type: wolfpackv1alpha1.DiskOnly, Owner: tc.owner}
			got, _ := Compute(in)
			for _, n := range got {
				// The agent of n: it hears p by heartbeat; p's heartbeats say whether p hears it.
				peer := map[string]string{"a": "b", "b": "a"}[n.Name]
				mutual := Mutual([]string{peer}, func(p string) bool { return len(tc.leases[n.Name].View.Hears(p)) > 0 },
					func(p string) bool { return len(tc.leases[p].View.Hears(n.Name)) > 0 })
				agent, _ := MustFence(n.Name, mutual, Quorum{Type: wolfpackv1alpha1.DiskOnly, Owner: tc.owner, Members: 2})
				if manager := n.State == down; manager != agent {
					t.Errorf("%s: the manager says Down=%v (%s), its agent fences=%v", n.Name, manager, n.Message, agent)
				}
				if n.Name == tc.owner && n.State == down {
					t.Errorf("the disk owner %s is Down: %s", n.Name, n.Message)
				}
			}
		})
	}
}

// TestRunOutButHeard: an agent that cannot reach the API server lets its Lease run out, but its
// peer still hears it: its node is in the cluster, not Down and not fenced.
func TestRunOutButHeard(t *testing.T) {
	t.Parallel()
	in := defaults(map[string]Lease{"a": lease(0, "b"), "b": lease(time.Minute, "a")})
	b := nodeB(t, in)
	if b.State == down || b.Fenced {
		t.Errorf("b: %s, fenced %v (%s); want not Down, not fenced", b.State, b.Fenced, b.Message)
	}
	if !strings.Contains(b.Message, "cannot reach the API server") || !strings.Contains(b.Message, "heard by a") {
		t.Errorf("b's message %q does not say why", b.Message)
	}
	// The same, with nobody hearing it any more: Down, and fenced once silent long enough.
	in.Leases["a"] = lease(0)
	in.LastHeard = map[string]time.Time{"b": t0.Add(-11 * time.Second)}
	if b := nodeB(t, in); b.State != down || !b.Fenced {
		t.Errorf("b unheard for 11 s with its Lease run out: %s fenced %v (%s); want Down and fenced", b.State, b.Fenced, b.Message)
	}
}

// TestPartitionNeverFencedByTime: a node outvoted by the partition rule whose agent keeps
// renewing its Lease is Down but never fenced however long it stays so, until its agent reports
// that its fence action succeeded.
func TestPartitionNeverFencedByTime(t *testing.T) {
	t.Parallel()
	in := defaults(map[string]Lease{"a": lease(0), "b": lease(500 * time.Millisecond)})
	in.Quorum = Quorum{Type: wolfpackv1alpha1.DiskOnly, Owner: "a"}
	in.ObservingSince = t0.Add(-time.Hour)
	in.LastHeard = map[string]time.Time{"b": t0.Add(-time.Hour)}
	b := nodeB(t, in)
	if b.State != down || b.Fenced {
		t.Errorf("b outvoted for an hour with a fresh Lease: %s fenced %v (%s); want Down, not fenced", b.State, b.Fenced, b.Message)
	}
	reported := lease(500 * time.Millisecond)
	reported.View.Fenced = true
	in.Leases["b"] = reported
	if b := nodeB(t, in); b.State != down || !b.Fenced {
		t.Errorf("b outvoted and reporting its fence done: %s fenced %v; want Down and fenced", b.State, b.Fenced)
	}
}

// TestFencedByTimeOnlyAfterBoth: without a report, a Down node counts as fenced only once its
// Lease ran out (age > d) and no fresh peer view heard it for Silence(d), both by the manager's
// clock, both counted from no earlier than the manager started observing.
func TestFencedByTimeOnlyAfterBoth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		age, unheard    time.Duration
		observing       time.Duration // ago
		margin          time.Duration
		fencedLease     bool
		wantDown, fence bool
	}{
		{name: "Lease run out, unheard 3 s", age: 11 * time.Second, unheard: 3 * time.Second, wantDown: true},
		{name: "Lease run out, unheard 7 s", age: 11 * time.Second, unheard: 7 * time.Second, wantDown: true},
		{name: "Lease run out, unheard 11 s", age: 11 * time.Second, unheard: 11 * time.Second, wantDown: true, fence: true},
		{name: "unheard 9 s, Lease 9 s old: not run out", age: 9 * time.Second, unheard: 9 * time.Second, wantDown: true},
		{name: "Lease run out, unheard 11 s, extra margin 5 s", age: 11 * time.Second, unheard: 11 * time.Second, margin: 5 * time.Second, wantDown: true},
		{name: "Lease run out, unheard 16 s, extra margin 5 s", age: 16 * time.Second, unheard: 16 * time.Second, margin: 5 * time.Second, wantDown: true, fence: true},
		{name: "manager observing for 5 s only", age: time.Hour, unheard: time.Hour, observing: 5 * time.Second, wantDown: true},
		{name: "a report in a Lease that ran out counts for nothing", age: 11 * time.Second, unheard: 3 * time.Second, fencedLease: true, wantDown: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := lease(tc.age)
			b.View.Fenced = tc.fencedLease
			in := defaults(map[string]Lease{"a": lease(0), "b": b})
			in.LastHeard = map[string]time.Time{"b": t0.Add(-tc.unheard)}
			in.ExtraMargin = tc.margin
			in.ObservingSince = t0.Add(-time.Hour)
			if tc.observing > 0 {
				in.ObservingSince = t0.Add(-tc.observing)
			}
			n := nodeB(t, in)
			if (n.State == down) != tc.wantDown || n.Fenced != tc.fence {
				t.Errorf("b: %s fenced %v (%s); want Down %v, fenced %v", n.State, n.Fenced, n.Message, tc.wantDown, tc.fence)
			}
			if !tc.fence {
				// Requeued for when it would be fenced, at the latest.
				next := NextChange(in)
				if next.IsZero() {
					t.Fatal("no NextChange while b waits to count as fenced")
				}
				later := in
				// a, alive, renews all along: its fresh view not hearing b is the evidence.
				alive := func() {
					later.Leases = map[string]Lease{"a": in.Leases["a"], "b": in.Leases["b"]}
					a := later.Leases["a"]
					a.Seen = later.Now
					later.Leases["a"] = a
				}
				later.Now = next
				alive()
				for i := 0; i < 10 && !nodeB(t, later).Fenced; i++ {
					if later.Now = NextChange(later); later.Now.IsZero() {
						t.Fatal("NextChange ran out before b counted as fenced")
					}
					alive()
				}
				if !tc.fencedLease && tc.margin == 0 && !nodeB(t, later).Fenced {
					t.Error("b never counted as fenced by NextChange's requeues")
				}
			}
		})
	}
}

// TestNextChangeIsWhenFencedByTime: the requeue comes when (b) becomes true, not later.
func TestNextChangeIsWhenFencedByTime(t *testing.T) {
	t.Parallel()
	in := defaults(map[string]Lease{"a": lease(0), "b": lease(11 * time.Second)})
	in.ObservingSince = t0.Add(-time.Hour)
	in.LastHeard = map[string]time.Time{"b": t0.Add(-9 * time.Second)}
	want := t0.Add(-9 * time.Second).Add(in.Silence(10 * time.Second)).Add(time.Millisecond)
	if got := NextChange(in); !got.Equal(want) {
		t.Errorf("NextChange = t0%+v, want t0%+v", got.Sub(t0), want.Sub(t0))
	}
	in.Now = want
	if b := nodeB(t, in); !b.Fenced {
		t.Errorf("b not fenced at NextChange: %+v", b)
	}
}

// TestStalledManagerExpiresNobody: the manager saw both renewals at t0, then stalled for 12 s,
// longer than the lease. On resuming, before and after its stall detector ticks, nobody's Lease
// has run out: it observes a whole lease again.
func TestStalledManagerExpiresNobody(t *testing.T) {
	t.Parallel()
	for _, detectorFirst := range []bool{false, true} {
		var w Window
		w.Start(t0)
		for at := t0; !at.After(t0.Add(time.Second)); at = at.Add(StallTick) {
			w.Tick(at)
			w.Read(at)
		}
		now := t0.Add(13 * time.Second)
		if detectorFirst && !w.Tick(now) {
			t.Error("the stall detector did not notice a 12 s gap")
		}
		in := defaults(map[string]Lease{"a": lease(0, "b"), "b": lease(0, "a")})
		in.Now, in.ObservingSince = now, w.Since(now)
		got, _ := Compute(in)
		for _, n := range got {
			if n.State != up || n.Fenced {
				t.Errorf("detector ticked first %v: %s is %s fenced %v (%s)", detectorFirst, n.Name, n.State, n.Fenced, n.Message)
			}
		}
		// Without a renewal in the following lease, they do expire.
		later := t0.Add(24 * time.Second)
		for at := now; !at.After(later); at = at.Add(StallTick) {
			w.Tick(at)
		}
		in.Now, in.ObservingSince = later, w.Since(later)
		if n := nodeB(t, in); n.State != down {
			t.Errorf("b not Down a whole lease after the stall: %s (%s)", n.State, n.Message)
		}
	}
}

// TestRestartedManagerWaitsAFullLease: a manager that just started (or became leader) sees the
// Leases for the first time, hour-old renewTimes included: none runs out before a whole lease.
func TestRestartedManagerWaitsAFullLease(t *testing.T) {
	t.Parallel()
	var w Window
	start := t0.Add(-9 * time.Second)
	w.Start(start)
	// Never seen renewed by this manager: Seen is zero.
	b := Lease{Duration: 10 * time.Second, View: View{Joined: true, Peers: map[string][]string{"a": {"private"}}}}
	in := defaults(map[string]Lease{"a": lease(0, "b"), "b": b})
	in.ObservingSince = w.Since(t0)
	if n := nodeB(t, in); n.State != up || n.Fenced {
		t.Errorf("9 s after the start: b %s fenced %v (%s)", n.State, n.Fenced, n.Message)
	}
	in.LastHeard = map[string]time.Time{}
	for _, h := range Heard(in) {
		in.LastHeard[h] = in.Now
	}
	in.Leases["a"] = lease(0)
	in.Now = start.Add(11 * time.Second)
	if n := nodeB(t, in); n.State != down || n.Fenced {
		t.Errorf("11 s after the start, unheard: b %s fenced %v (%s); want Down, not yet fenced", n.State, n.Fenced, n.Message)
	}
}

func TestAge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		seen, observing time.Duration // before t0; negative: after
		want            time.Duration
	}{
		{"seen after the start", 3 * time.Second, time.Minute, 3 * time.Second},
		{"seen before the start", time.Hour, 2 * time.Second, 2 * time.Second},
		{"never seen", -1, 4 * time.Second, 4 * time.Second},
		{"started after now (a read just now): zero", time.Hour, -time.Millisecond, 0},
	} {
		seen := t0.Add(-tc.seen)
		if tc.seen < 0 {
			seen = time.Time{}
		}
		if got := Age(t0, seen, t0.Add(-tc.observing)); got != tc.want {
			t.Errorf("%s: Age = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestWindow(t *testing.T) {
	t.Parallel()
	var w Window
	if got := w.Since(t0); !got.Equal(t0) {
		t.Errorf("an unstarted window observes from the first look: %s", got)
	}
	w.Start(t0.Add(time.Minute))
	if got := w.Since(t0); !got.Equal(t0) {
		t.Errorf("Start after the first look moved observingSince to %s", got)
	}
	at := t0
	for range 8 {
		at = at.Add(StallTick)
		if w.Tick(at) || w.Read(at) {
			t.Fatalf("a regular tick or read at %s counted as a stall", at.Sub(t0))
		}
	}
	if got := w.Since(at); !got.Equal(t0) {
		t.Errorf("observingSince moved without a stall: %s", got.Sub(t0))
	}
	// The API server is lost for 1.5 s; the detector ticks on.
	lost := at
	for range 6 {
		at = at.Add(StallTick)
		w.Tick(at)
	}
	if !w.Read(at) || !w.Since(at).Equal(at) {
		t.Errorf("regaining the API server after %s did not restart the observation", at.Sub(lost))
	}
	// The detector's tick is overdue: a stall, even before it ticks.
	stalled := at.Add(1500 * time.Millisecond)
	if got := w.Since(stalled); !got.Equal(stalled) {
		t.Errorf("Since with the detector 1.5 s overdue = %s, want now", got.Sub(t0))
	}
}

func TestLeaseDuration(t *testing.T) {
	t.Parallel()
	seconds := func(n int32) *int32 { return &n }
	for _, tc := range []struct {
		name      string
		published *int32
		spec      time.Duration
		atLeast   time.Duration
		want      time.Duration
	}{
		{"published, longer than the spec", seconds(20), 10 * time.Second, 0, 20 * time.Second},
		{"published, shorter than the spec", seconds(5), 10 * time.Second, 0, 5 * time.Second},
		{"not published: the spec", nil, 10 * time.Second, 0, 10 * time.Second},
		{"not published, spec shortened: never shorter", nil, 5 * time.Second, 10 * time.Second, 10 * time.Second},
		{"zero published counts as none", seconds(0), 10 * time.Second, 0, 10 * time.Second},
	} {
		if got := LeaseDuration(tc.published, tc.spec, tc.atLeast); got != tc.want {
			t.Errorf("%s: LeaseDuration = %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestJudgedByItsOwnDuration: a node is judged by the duration its agent published, not the
// cluster's: a 20 s Lease 15 s old has not run out though the spec says 10 s.
func TestJudgedByItsOwnDuration(t *testing.T) {
	t.Parallel()
	b := lease(15*time.Second, "a")
	b.Duration = LeaseDuration(func() *int32 { n := int32(20); return &n }(), 10*time.Second, 0)
	in := defaults(map[string]Lease{"a": lease(0), "b": b})
	in.ObservingSince = t0.Add(-time.Hour)
	in.LastHeard = map[string]time.Time{"b": t0.Add(-15 * time.Second)}
	if n := nodeB(t, in); n.State != down || n.Fenced {
		t.Errorf("b: %s fenced %v (%s); want Down (unheard), not fenced before its own 20 s", n.State, n.Fenced, n.Message)
	}
}

func TestHeard(t *testing.T) {
	t.Parallel()
	in := Input{Now: t0, Members: []string{"a", "b", "c", "d"}, RenewInterval: time.Second, Leases: map[string]Lease{
		"a": lease(0, "b"),
		"b": lease(0),
		"c": lease(0),
		"d": lease(5*time.Second, "c"), // stale: its view counts for nothing
	}}
	if got := strings.Join(Heard(in), ","); got != "a,b" {
		t.Errorf("Heard = %s, want a,b (b heard by a, a hears b)", got)
	}
}

// TestNoEvidenceOfAbsence: every agent lost the API server while the manager kept it, and the
// nodes still hear each other (so no agent fenced: full mutual connectivity, F2's exception).
// No fresh peer view says that anyone stopped hearing anyone, so nobody counts as fenced by
// time, however long it lasts; once one agent is back, its fresh view hearing the other keeps
// that one unfenced too.
func TestNoEvidenceOfAbsence(t *testing.T) {
	t.Parallel()
	in := defaults(map[string]Lease{"a": lease(70*time.Second, "b"), "b": lease(70*time.Second, "a")})
	in.ObservingSince = t0.Add(-time.Hour)
	in.LastHeard = map[string]time.Time{"a": t0.Add(-69 * time.Second), "b": t0.Add(-69 * time.Second)}
	got, _ := Compute(in)
	for _, n := range got {
		if n.Fenced {
			t.Errorf("%s counts as fenced with no fresh view saying it is unheard: %s", n.Name, n.Message)
		}
	}
	if next := NextChange(in); !next.IsZero() {
		in.Now = next.Add(time.Hour)
		if b := nodeB(t, in); b.Fenced {
			t.Errorf("b counts as fenced an hour later: %s", b.Message)
		}
	}
	in.Now = t0
	in.Leases["a"] = lease(0, "b")
	if b := nodeB(t, in); b.Fenced || b.State == down {
		t.Errorf("a is back and hears b, yet b is %s, fenced %v: %s", b.State, b.Fenced, b.Message)
	}
}

// TestHungAfterFeedingWithoutRenewing: b lost the API server long ago (its Lease ran out a
// minute ago) but heard a both ways, so it kept its node and kept feeding its watchdog (F2's
// exception). Then b's agent hung just after a feed. a's view heard b until about D + I + a
// renew interval after that feed; the watchdog resets b up to R(d) after it. So b must not count
// as fenced until R(d) + D + I + the renew interval after it was last heard: 8 s is too soon.
func TestHungAfterFeedingWithoutRenewing(t *testing.T) {
	t.Parallel()
	in := defaults(map[string]Lease{"a": lease(0), "b": lease(time.Minute, "a")})
	in.ObservingSince = t0.Add(-time.Hour)
	for _, tc := range []struct {
		unheard time.Duration
		fenced  bool
	}{{8 * time.Second, false}, {10 * time.Second, false}, {10200 * time.Millisecond, true}} {
		in.LastHeard = map[string]time.Time{"b": t0.Add(-tc.unheard)}
		if b := nodeB(t, in); b.State != down || b.Fenced != tc.fenced {
			t.Errorf("b unheard for %s: %s, fenced %v; want Down, fenced %v", tc.unheard, b.State, b.Fenced, tc.fenced)
		}
	}
}

// TestRestartingPeerOutvotesNobody: b, the quorum disk's owner, restarts its agent: its new view
// has not listened for a whole detection period and hears nobody yet. That is no evidence that b
// does not hear a, so a, which still hears b, is not outvoted (seen end to end: NodeDown Events
// for a at every restart of b's agent).
func TestRestartingPeerOutvotesNobody(t *testing.T) {
	t.Parallel()
	b := lease(0)
	b.View.Joined = false
	in := defaults(map[string]Lease{"a": lease(0, "b"), "b": b})
	in.Quorum = Quorum{Type: wolfpackv1alpha1.DiskOnly, Owner: "b"}
	got, _ := Compute(in)
	for _, n := range got {
		if n.Name == "a" && n.State == down {
			t.Errorf("a is Down while b's agent restarts: %s", n.Message)
		}
	}
	// Once b has listened a whole detection period and still does not hear a, a is outvoted.
	b.View.Joined = true
	in.Leases["b"] = b
	got, _ = Compute(in)
	for _, n := range got {
		if n.Name == "a" && n.State != down {
			t.Errorf("a is %s while b, joined, does not hear it: %s", n.State, n.Message)
		}
	}
}
