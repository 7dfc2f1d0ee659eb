package membership

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const (
	up      = wolfpackv1alpha1.NodeUp
	down    = wolfpackv1alpha1.NodeDown
	paused  = wolfpackv1alpha1.NodePaused
	joining = wolfpackv1alpha1.NodeJoining
)

// lease is a joined agent's Lease renewed ago before t0 and hearing the given peers on "private".
func lease(ago time.Duration, hears ...string) Lease {
	v := View{Incarnation: 1, Joined: true, Peers: map[string][]string{}}
	for _, p := range hears {
		v.Peers[p] = []string{"private", "public"}
	}
	return Lease{Seen: t0.Add(-ago), Duration: 10 * time.Second, View: v}
}

func TestCompute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		members []string
		leases  map[string]Lease
		paused  map[string]bool
		want    map[string]wolfpackv1alpha1.NodeState
		message map[string]string
	}{
		{
			name:    "both agents renewing and hearing each other",
			members: []string{"a", "b"},
			leases:  map[string]Lease{"a": lease(time.Second, "b"), "b": lease(0, "a")},
			want:    map[string]wolfpackv1alpha1.NodeState{"a": up, "b": up},
			message: map[string]string{"a": "heard by every peer"},
		},
		{
			name:    "no Lease at all",
			members: []string{"a", "b"},
			leases:  map[string]Lease{"a": lease(0)},
			want:    map[string]wolfpackv1alpha1.NodeState{"a": up, "b": down},
			message: map[string]string{"b": "no Lease"},
		},
		{
			name:    "Lease run out",
			members: []string{"a", "b"},
			leases:  map[string]Lease{"a": lease(0), "b": lease(11*time.Second, "a")},
			want:    map[string]wolfpackv1alpha1.NodeState{"a": up, "b": down},
			message: map[string]string{"b": "not renewed its Lease for 11s (lease duration 10s)"},
		},
		{
			name:    "crashed: unheard by its peer and two renewals missed, before the Lease runs out",
			members: []string{"a", "b"},
			leases:  map[string]Lease{"a": lease(0), "b": lease(5*time.Second, "a")},
			want:    map[string]wolfpackv1alpha1.NodeState{"a": up, "b": down},
			message: map[string]string{"b": "heard by none of its peers (a)"},
		},
		{
			name:    "unheard but still renewing: a partition, left to the quorum",
			members: []string{"a", "b"},
			leases:  map[string]Lease{"a": lease(0), "b": lease(time.Second)},
			want:    map[string]wolfpackv1alpha1.NodeState{"a": up, "b": up},
			message: map[string]string{"a": "not heard by b", "b": "not heard by a"},
		},
		{
			name:    "heard on the public network only is still Up",
			members: []string{"a", "b"},
			leases: map[string]Lease{"a": {Seen: t0, Duration: 10 * time.Second,
				View: View{Joined: true, Peers: map[string][]string{"b": {"public"}}}}, "b": lease(5*time.Second, "a")},
			want: map[string]wolfpackv1alpha1.NodeState{"a": up, "b": up},
		},
		{
			name:    "a stale observer does not vote a node Down",
			members: []string{"a", "b", "c"},
			leases:  map[string]Lease{"a": lease(0, "b"), "b": lease(5*time.Second, "a"), "c": lease(9 * time.Second)},
			want:    map[string]wolfpackv1alpha1.NodeState{"a": up, "b": up, "c": down},
		},
		{
			name:    "not joined yet",
			members: []string{"a", "b"},
			leases:  map[string]Lease{"a": lease(0, "b"), "b": {Seen: t0, Duration: 10 * time.Second, View: View{Incarnation: 7}}},
			want:    map[string]wolfpackv1alpha1.NodeState{"a": up, "b": joining},
		},
		{
			name:    "unreadable view",
			members: []string{"a", "b"},
			leases: map[string]Lease{"a": lease(0, "b"), "b": {Seen: t0, Duration: 10 * time.Second,
				ViewErr: errors.New("membership: bad view: unexpected EOF")}},
			want:    map[string]wolfpackv1alpha1.NodeState{"a": up, "b": joining},
			message: map[string]string{"b": "cannot be read: membership: bad view"},
		},
		{
			name:    "paused",
			members: []string{"a", "b"},
			leases:  map[string]Lease{"a": lease(0, "b"), "b": lease(0, "a")},
			paused:  map[string]bool{"b": true},
			want:    map[string]wolfpackv1alpha1.NodeState{"a": up, "b": paused},
		},
		{
			name:    "a paused node that dies is Down",
			members: []string{"a", "b"},
			leases:  map[string]Lease{"a": lease(0)},
			paused:  map[string]bool{"b": true},
			want:    map[string]wolfpackv1alpha1.NodeState{"a": up, "b": down},
		},
		{
			name:    "a single node needs no peer",
			members: []string{"a"},
			leases:  map[string]Lease{"a": lease(0)},
			want:    map[string]wolfpackv1alpha1.NodeState{"a": up},
		},
		{
			name:    "a Lease of a non-member is ignored",
			members: []string{"a"},
			leases:  map[string]Lease{"a": lease(0), "x": lease(0, "a")},
			want:    map[string]wolfpackv1alpha1.NodeState{"a": up},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := Input{Now: t0, Members: tt.members, Leases: tt.leases, Paused: tt.paused, RenewInterval: 2 * time.Second}
			got, changes := Compute(in)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d nodes, want %d: %+v", len(got), len(tt.want), got)
			}
			for _, n := range got {
				if n.State != tt.want[n.Name] {
					t.Errorf("%s: state %s (%s), want %s", n.Name, n.State, n.Message, tt.want[n.Name])
				}
				if m := tt.message[n.Name]; !strings.Contains(n.Message, m) {
					t.Errorf("%s: message %q, want it to contain %q", n.Name, n.Message, m)
				}
				if !n.Since.Time.Equal(t0) {
					t.Errorf("%s: since %s, want now for a first state", n.Name, n.Since)
				}
			}
			if len(changes) != len(tt.want) {
				t.Errorf("%d changes from nothing, want one per node: %+v", len(changes), changes)
			}
		})
	}
}

func TestComputeKeepsSinceAndReportsChanges(t *testing.T) {
	t.Parallel()
	earlier := metav1.NewTime(t0.Add(-time.Hour))
	prev := []wolfpackv1alpha1.NodeStatus{{Name: "a", State: up, Since: earlier}, {Name: "b", State: up, Since: earlier}}
	in := Input{Now: t0, Members: []string{"b", "a"}, RenewInterval: 2 * time.Second, Previous: prev,
		Leases: map[string]Lease{"a": lease(0), "b": lease(5*time.Second, "a")}}
	got, changes := Compute(in)
	if got[0].Name != "a" || !got[0].Since.Equal(&earlier) {
		t.Errorf("a stayed Up: want since kept at %s, got %+v", earlier, got[0])
	}
	if got[1].State != down || !got[1].Since.Time.Equal(t0) {
		t.Errorf("b went Down: want since now, got %+v", got[1])
	}
	if len(changes) != 1 || changes[0] != (Change{Node: "b", From: up, To: down, Message: got[1].Message}) {
		t.Errorf("changes = %+v, want only b Up -> Down", changes)
	}
}

func TestReachableNetworks(t *testing.T) {
	t.Parallel()
	in := Input{Now: t0, Members: []string{"a", "b", "c"}, RenewInterval: 2 * time.Second, Leases: map[string]Lease{
		"a": {Seen: t0, Duration: 10 * time.Second, View: View{Joined: true, Peers: map[string][]string{"c": {"public"}}}},
		"b": {Seen: t0, Duration: 10 * time.Second, View: View{Joined: true, Peers: map[string][]string{"c": {"private"}}}},
		"c": lease(0, "a", "b"),
	}}
	got, _ := Compute(in)
	if n := got[2]; strings.Join(n.ReachableNetworks, ",") != "private,public" {
		t.Errorf("c reachable on %v, want the union private,public", n.ReachableNetworks)
	}
	if n := got[0]; strings.Join(n.ReachableNetworks, ",") != "private,public" {
		t.Errorf("a reachable on %v, want private,public (from c)", n.ReachableNetworks)
	}
}

func TestNextChange(t *testing.T) {
	t.Parallel()
	in := Input{Now: t0, RenewInterval: 2 * time.Second, Leases: map[string]Lease{"a": lease(time.Second), "b": lease(3 * time.Second)}}
	// b misses two renewals 1 s from now (the bound is strict: a millisecond after).
	if got, want := NextChange(in), t0.Add(time.Second+time.Millisecond); !got.Equal(want) {
		t.Errorf("NextChange = %s, want %s", got, want)
	}
	if got := NextChange(Input{Now: t0}); !got.IsZero() {
		t.Errorf("NextChange without Leases = %s, want zero", got)
	}
}

func TestRenewInterval(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ lease, detection, want time.Duration }{
		{10 * time.Second, 2 * time.Second, time.Second},
		{1500 * time.Millisecond, 2 * time.Second, 500 * time.Millisecond},
	} {
		if got := RenewInterval(tt.lease, tt.detection); got != tt.want {
			t.Errorf("RenewInterval(%s, %s) = %s, want %s", tt.lease, tt.detection, got, tt.want)
		}
	}
}

func TestViewRoundTrip(t *testing.T) {
	t.Parallel()
	v := View{Incarnation: 42, Joined: true, Peers: map[string][]string{"b": {"public", "private", "public"}, "c": nil},
		Addresses: map[string]string{"private": "10.0.0.1"}}
	s := v.Encode()
	if s != `{"incarnation":42,"joined":true,"peers":{"b":["private","public"]},"addresses":{"private":"10.0.0.1"}}` {
		t.Fatalf("Encode = %s", s)
	}
	got, err := ParseView(s)
	if err != nil || got.Encode() != s {
		t.Fatalf("ParseView(Encode) = %+v, %v", got, err)
	}
	if v.Digest() != got.Digest() {
		t.Error("equal views have different digests")
	}
	for _, bad := range []string{"", "{", `{"incarnation":1}{}`, `{"peers":{"":["x"]}}`, `{"peers":{"b":[""]}}`,
		`{"unknown":1}`, `{"incarnation":-1}`, `{"addresses":{"private":"10.0.0"}}`, `{"addresses":{"":"10.0.0.1"}}`, strings.Repeat(" ", MaxViewSize+1)} {
		if _, err := ParseView(bad); !errors.Is(err, ErrView) {
			t.Errorf("ParseView(%.40q) = %v, want ErrView", bad, err)
		}
	}
}

func FuzzParseView(f *testing.F) {
	f.Add(`{"incarnation":42,"joined":true,"peers":{"b":["private","public"]}}`)
	f.Add(`{}`)
	f.Add(`{"peers":{"a":[]}}`)
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseView(s)
		if err != nil {
			return
		}
		// What parses encodes to something that parses to the same view.
		again, err := ParseView(v.Encode())
		if err != nil || again.Encode() != v.Encode() {
			t.Fatalf("re-parse of %q: %v, %q != %q", s, err, again.Encode(), v.Encode())
		}
	})
}

func TestFencedReport(t *testing.T) {
	fencedView := lease(0)
	fencedView.View.Fenced = true
	in := Input{Now: t0, Members: []string{"a", "b", "c", "d", "e"}, RenewInterval: time.Second, Leases: map[string]Lease{
		"a": lease(0, "b"),              // renewing
		"b": fencedView,                 // its agent failed it
		"c": lease(11*time.Second, "a"), // Lease ran out and unheard far longer than Silence: fenced by (b)
		"d": lease(3*time.Second, "a"),  // unheard and two renewals missed, Lease still running
	}}
	got, _ := Compute(in)
	want := map[string]bool{"a": false, "b": true, "c": true, "d": false, "e": false}
	for _, n := range got {
		if n.Fenced != want[n.Name] {
			t.Errorf("%s (%s): fenced %v, want %v", n.Name, n.State, n.Fenced, want[n.Name])
		}
	}
}
