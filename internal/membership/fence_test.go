package membership

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

func TestFencedAfter(t *testing.T) {
	t.Parallel()
	status := func(state wolfpackv1alpha1.NodeState, since time.Duration, fenced bool) wolfpackv1alpha1.NodeStatus {
		return wolfpackv1alpha1.NodeStatus{Name: "n", State: state, Since: metav1.NewTime(t0.Add(-since)), Fenced: fenced}
	}
	cases := []struct {
		name   string
		node   wolfpackv1alpha1.NodeStatus
		wait   time.Duration
		fenced bool
	}{
		{name: "up", node: status(up, time.Hour, false)},
		{name: "joining", node: status(joining, time.Hour, false)},
		{name: "paused", node: status(paused, time.Hour, false)},
		// since is stored to the second, so the grace counts from the end of that second.
		{name: "down just now", node: status(down, 0, false), wait: 31 * time.Second},
		{name: "down for 10s of a 30s grace", node: status(down, 10*time.Second, false), wait: 21 * time.Second},
		{name: "down for 30s: not yet, the second of since may have just begun", node: status(down, 30*time.Second, false), wait: time.Second},
		{name: "down for 31s", node: status(down, 31*time.Second, false), fenced: true},
		{name: "down and its agent reports it fenced itself", node: status(down, time.Second, true), fenced: true},
		{name: "up, and its agent reports it failed itself: not fenced for failover", node: status(up, time.Second, true)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wait, fenced := FencedAfter(tc.node, t0, 30*time.Second)
			if wait != tc.wait || fenced != tc.fenced {
				t.Errorf("FencedAfter() = %v, %v; want %v, %v", wait, fenced, tc.wait, tc.fenced)
			}
		})
	}
}
