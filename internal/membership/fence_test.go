package membership

import (
	"testing"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

func TestFenced(t *testing.T) {
	t.Parallel()
	cases := []struct {
		state  wolfpackv1alpha1.NodeState
		fenced bool
		want   bool
	}{
		{up, false, false},
		{joining, false, false},
		{paused, false, false},
		// Up, and its agent reports it failed itself: not fenced for failover.
		{up, true, false},
		// Down for however long: only the Membership Manager's verdict counts.
		{down, false, false},
		{down, true, true},
	}
	for _, tc := range cases {
		n := wolfpackv1alpha1.NodeStatus{Name: "n", State: tc.state, Fenced: tc.fenced}
		if got := Fenced(n); got != tc.want {
			t.Errorf("Fenced(%s, fenced=%v) = %v, want %v", tc.state, tc.fenced, got, tc.want)
		}
	}
}
