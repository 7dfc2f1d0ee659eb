package failover

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

func nodes(states ...string) []Node {
	out := make([]Node, 0, len(states)/2)
	for i := 0; i < len(states); i += 2 {
		out = append(out, Node{Name: states[i], State: wp.NodeState(states[i+1])})
	}
	return out
}

func TestPlace(t *testing.T) {
	cases := []struct {
		name   string
		p      Placement
		want   string
		wantOK bool
	}{
		{
			name:   "current owner while Up",
			p:      Placement{Owner: "b", PreferredOwners: []string{"a", "b"}, Nodes: nodes("a", "Up", "b", "Up")},
			want:   "b",
			wantOK: true,
		},
		{
			name:   "a paused owner keeps its group",
			p:      Placement{Owner: "b", PreferredOwners: []string{"a", "b"}, Nodes: nodes("a", "Up", "b", "Paused")},
			want:   "b",
			wantOK: true,
		},
		{
			name:   "owner Down: first Up preferred owner",
			p:      Placement{Owner: "a", PreferredOwners: []string{"a", "c", "b"}, Nodes: nodes("a", "Down", "b", "Up", "c", "Up")},
			want:   "c",
			wantOK: true,
		},
		{
			name:   "a node that failed itself is not chosen, even when preferred",
			p:      Placement{Owner: "a", PreferredOwners: []string{"a", "b", "c"}, Nodes: []Node{{Name: "a", State: "Down"}, {Name: "b", State: "Up", Fenced: true}, {Name: "c", State: "Up"}}},
			want:   "c",
			wantOK: true,
		},
		{
			name:   "only a node that failed itself is Up: nowhere",
			p:      Placement{Owner: "a", PreferredOwners: []string{"a", "b"}, Nodes: []Node{{Name: "a", State: "Down"}, {Name: "b", State: "Up", Fenced: true}}},
			wantOK: false,
		},
		{
			name:   "new group: preferred order, not name order",
			p:      Placement{PreferredOwners: []string{"b", "a"}, Nodes: nodes("a", "Up", "b", "Up")},
			want:   "b",
			wantOK: true,
		},
		{
			name: "preferred owner not allowed by a resource's possibleOwners",
			p: Placement{PreferredOwners: []string{"a", "b"}, PossibleOwners: [][]string{nil, {"b", "c"}},
				Nodes: nodes("a", "Up", "b", "Up", "c", "Up")},
			want:   "b",
			wantOK: true,
		},
		{
			name:   "no preferred owner Up: any Up node by name",
			p:      Placement{PreferredOwners: []string{"a"}, Nodes: nodes("a", "Down", "c", "Up", "b", "Up")},
			want:   "b",
			wantOK: true,
		},
		{
			name:   "paused and joining nodes get no new groups",
			p:      Placement{Nodes: nodes("a", "Paused", "b", "Joining", "c", "Down")},
			wantOK: false,
		},
		{
			name:   "owner not allowed any more moves",
			p:      Placement{Owner: "a", PossibleOwners: [][]string{{"b"}}, Nodes: nodes("a", "Up", "b", "Up")},
			want:   "b",
			wantOK: true,
		},
		{
			name:   "avoided node is left when another will do",
			p:      Placement{Owner: "a", Avoid: []string{"a"}, PreferredOwners: []string{"a", "b"}, Nodes: nodes("a", "Up", "b", "Up")},
			want:   "b",
			wantOK: true,
		},
		{
			name:   "avoided node is taken when it is the only one",
			p:      Placement{Owner: "a", Avoid: []string{"a"}, Nodes: nodes("a", "Up", "b", "Down")},
			want:   "a",
			wantOK: true,
		},
		{
			name:   "resources with disjoint possible owners fit nowhere",
			p:      Placement{PossibleOwners: [][]string{{"a"}, {"b"}}, Nodes: nodes("a", "Up", "b", "Up")},
			wantOK: false,
		},
		{
			name:   "preferred owner that is not a member is skipped",
			p:      Placement{PreferredOwners: []string{"ghost", "b"}, Nodes: nodes("a", "Up", "b", "Up")},
			want:   "b",
			wantOK: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Place(tc.p)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("Place() = %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestStartOrder(t *testing.T) {
	got := StartOrder([]Group{
		{Key: "ns/low", Priority: 1000}, {Key: "ns/never", Priority: 0}, {Key: "ns/b-high", Priority: 3000},
		{Key: "ns/medium", Priority: 2000}, {Key: "ns/a-high", Priority: 3000},
	})
	want := []Group{{"ns/a-high", 3000}, {"ns/b-high", 3000}, {"ns/medium", 2000}, {"ns/low", 1000}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("StartOrder() = %v, want %v", got, want)
	}
}

func TestOnResourceFailure(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	policy := func(a wp.RestartAction) RestartPolicy {
		return RestartPolicy{Action: a, Threshold: 3, Period: 15 * time.Minute, Delay: 500 * time.Millisecond}
	}
	cases := []struct {
		name  string
		p     RestartPolicy
		count RestartCount
		now   time.Time
		want  Decision
	}{
		{
			name: "first failure starts a period and restarts after the delay",
			p:    policy(wp.RestartOrFailover),
			now:  t0,
			want: Decision{Action: RestartResource, At: t0.Add(500 * time.Millisecond), Count: RestartCount{1, t0}},
		},
		{
			name:  "third restart within the period",
			p:     policy(wp.RestartOrFailover),
			count: RestartCount{2, t0},
			now:   t0.Add(time.Minute),
			want:  Decision{Action: RestartResource, At: t0.Add(time.Minute + 500*time.Millisecond), Count: RestartCount{3, t0}},
		},
		{
			name:  "threshold used up: the group fails over",
			p:     policy(wp.RestartOrFailover),
			count: RestartCount{3, t0},
			now:   t0.Add(2 * time.Minute),
			want:  Decision{Action: FailoverGroup, Count: RestartCount{3, t0}},
		},
		{
			name:  "threshold used up with Restart: the resource stays Failed",
			p:     policy(wp.Restart),
			count: RestartCount{3, t0},
			now:   t0.Add(2 * time.Minute),
			want:  Decision{Action: LeaveFailed, Count: RestartCount{3, t0}},
		},
		{
			name:  "period over: counting starts again",
			p:     policy(wp.RestartOrFailover),
			count: RestartCount{3, t0},
			now:   t0.Add(15 * time.Minute),
			want:  Decision{Action: RestartResource, At: t0.Add(15*time.Minute + 500*time.Millisecond), Count: RestartCount{1, t0.Add(15 * time.Minute)}},
		},
		{
			name: "DoNotRestart",
			p:    policy(wp.DoNotRestart),
			now:  t0,
			want: Decision{Action: LeaveFailed, Count: RestartCount{0, t0}},
		},
		{
			name: "threshold 0 fails over at once",
			p:    RestartPolicy{Action: wp.RestartOrFailover, Threshold: 0, Period: time.Minute},
			now:  t0,
			want: Decision{Action: FailoverGroup, Count: RestartCount{0, t0}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := OnResourceFailure(tc.p, tc.count, tc.now); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("OnResourceFailure() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestThreshold(t *testing.T) {
	cases := []struct {
		spec  *int32
		nodes int
		want  int32
	}{
		{nil, 2, 1}, {nil, 5, 4}, {nil, 1, 1}, {ptr.To[int32](0), 2, 0}, {ptr.To[int32](7), 2, 7},
	}
	for _, tc := range cases {
		if got := Threshold(tc.spec, tc.nodes); got != tc.want {
			t.Errorf("Threshold(%v, %d) = %d, want %d", ptr.Deref(tc.spec, -1), tc.nodes, got, tc.want)
		}
	}
}

func TestAllowFailover(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	period := 6 * time.Hour
	cases := []struct {
		name      string
		recent    []time.Time
		threshold int32
		now       time.Time
		allowed   bool
		kept      []time.Time
	}{
		{name: "first failover", threshold: 1, now: t0, allowed: true, kept: []time.Time{t0}},
		{
			name: "second within the period, threshold 1", recent: []time.Time{t0}, threshold: 1,
			now: t0.Add(time.Hour), allowed: false, kept: []time.Time{t0},
		},
		{
			name: "old failovers drop out of the period", recent: []time.Time{t0}, threshold: 1,
			now: t0.Add(6 * time.Hour), allowed: true, kept: []time.Time{t0.Add(6 * time.Hour)},
		},
		{
			name: "threshold 3", recent: []time.Time{t0, t0.Add(time.Hour)}, threshold: 3,
			now: t0.Add(2 * time.Hour), allowed: true, kept: []time.Time{t0, t0.Add(time.Hour), t0.Add(2 * time.Hour)},
		},
		{name: "threshold 0 never fails over", threshold: 0, now: t0, allowed: false, kept: []time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			allowed, kept := AllowFailover(tc.recent, tc.threshold, period, tc.now)
			if allowed != tc.allowed || !reflect.DeepEqual(kept, tc.kept) {
				t.Fatalf("AllowFailover() = %v, %v; want %v, %v", allowed, kept, tc.allowed, tc.kept)
			}
		})
	}
}

func TestInWindow(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 11, 25, h, 30, 0, 0, time.UTC) }
	cases := []struct {
		start, end *int32
		hours      map[int]bool
	}{
		{nil, nil, map[int]bool{0: true, 12: true, 23: true}},
		{ptr.To[int32](1), ptr.To[int32](5), map[int]bool{0: false, 1: true, 4: true, 5: false, 23: false}},
		{ptr.To[int32](22), ptr.To[int32](2), map[int]bool{21: false, 22: true, 23: true, 0: true, 1: true, 2: false, 12: false}},
	}
	for _, tc := range cases {
		f := Failback{Policy: wp.FailbackAllow, WindowStart: tc.start, WindowEnd: tc.end}
		for h, want := range tc.hours {
			if got := f.InWindow(at(h)); got != want {
				t.Errorf("window [%v, %v) at %02d:30: %v, want %v", ptr.Deref(tc.start, -1), ptr.Deref(tc.end, -1), h, got, want)
			}
		}
	}
}

func TestFailbackTarget(t *testing.T) {
	night := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	day := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	allow := Failback{Policy: wp.FailbackAllow, WindowStart: ptr.To[int32](1), WindowEnd: ptr.To[int32](5)}
	back := Placement{Owner: "b", PreferredOwners: []string{"a", "b"}, Nodes: nodes("a", "Up", "b", "Up")}
	cases := []struct {
		name string
		f    Failback
		p    Placement
		now  time.Time
		want string
	}{
		{name: "inside the window, back to the preferred owner", f: allow, p: back, now: night, want: "a"},
		{name: "outside the window, stay", f: allow, p: back, now: day},
		{name: "policy Prevent, stay", f: Failback{Policy: wp.FailbackPrevent}, p: back, now: night},
		{name: "no window, any time", f: Failback{Policy: wp.FailbackAllow}, p: back, now: day, want: "a"},
		{
			name: "preferred owner still Down", f: allow, now: night,
			p: Placement{Owner: "b", PreferredOwners: []string{"a", "b"}, Nodes: nodes("a", "Down", "b", "Up")},
		},
		{
			name: "already on the most preferred owner", f: allow, now: night,
			p: Placement{Owner: "a", PreferredOwners: []string{"a", "b"}, Nodes: nodes("a", "Up", "b", "Up")},
		},
		{
			name: "owner not preferred at all, a preferred one is Up", f: allow, now: night, want: "a",
			p: Placement{Owner: "c", PreferredOwners: []string{"a"}, Nodes: nodes("a", "Up", "c", "Up")},
		},
		{name: "offline group does not fail back", f: allow, now: night,
			p: Placement{PreferredOwners: []string{"a"}, Nodes: nodes("a", "Up")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := FailbackTarget(tc.f, tc.p, tc.now)
			if got != tc.want || ok != (tc.want != "") {
				t.Fatalf("FailbackTarget() = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

func TestNodes(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	status := func(state wp.NodeState, since time.Duration) wp.NodeStatus {
		return wp.NodeStatus{Name: "n", State: state, Since: metav1.NewTime(now.Add(-since))}
	}
	cases := []struct {
		name   string
		node   wp.NodeStatus
		paused []wp.PausedNode
		drain  bool
	}{
		{name: "up", node: status(wp.NodeUp, time.Hour)},
		{name: "joining", node: status(wp.NodeJoining, time.Hour)},
		{name: "paused", node: status(wp.NodePaused, time.Hour), paused: []wp.PausedNode{{Name: "n"}}},
		{name: "paused with drain", node: status(wp.NodePaused, time.Hour), paused: []wp.PausedNode{{Name: "n", Drain: true}}, drain: true},
		{name: "drain asked but the node is Down", node: status(wp.NodeDown, 0), paused: []wp.PausedNode{{Name: "n", Drain: true}}},
		{name: "up, and its agent reports it failed itself: given no group", node: func() wp.NodeStatus {
			n := status(wp.NodeUp, time.Second)
			n.Fenced = true
			return n
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Nodes([]wp.NodeStatus{tc.node}, tc.paused)
			if len(got) != 1 || got[0] != (Node{Name: "n", State: tc.node.State, Drain: tc.drain, Fenced: tc.node.Fenced}) {
				t.Errorf("Nodes() = %+v, want state %s drain %v", got, tc.node.State, tc.drain)
			}
		})
	}
}
