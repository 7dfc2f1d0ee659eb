package cli

import (
	"strings"
	"testing"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/fence"
)

func TestFencingCheck(t *testing.T) {
	const (
		watchdog = wolfpackv1alpha1.FenceWatchdog
		cri      = wolfpackv1alpha1.FenceCRI
		none     = wolfpackv1alpha1.FenceNone
	)
	members := []string{"node-a", "node-b"}
	for _, tc := range []struct {
		name    string
		spec    wolfpackv1alpha1.FencingSpec
		members []string
		result  string
		// message holds these substrings, and not the unwanted ones.
		want, unwanted []string
	}{
		{name: "watchdog everywhere", spec: wolfpackv1alpha1.FencingSpec{Action: watchdog}, members: members,
			result: resultPass, want: []string{"every node fences with Watchdog: node-a, node-b"}},
		{name: "the default: CRI", members: members, result: resultWarn,
			want: []string{"nodes node-a, node-b fence with CRI, which does not cover a hung agent", "use Watchdog"}},
		{name: "CRI and None", members: []string{"node-a", "node-b", "node-c"}, result: resultWarn,
			spec: wolfpackv1alpha1.FencingSpec{Action: cri, Nodes: []wolfpackv1alpha1.NodeFencing{
				{Node: "node-a", Action: none}, {Node: "node-c", Action: watchdog}}},
			want: []string{"node node-a fences with None", "node node-b fences with CRI"}, unwanted: []string{"node-c"}},
		{name: "one node overridden to CRI", members: members, result: resultWarn,
			spec: wolfpackv1alpha1.FencingSpec{Action: watchdog, Nodes: []wolfpackv1alpha1.NodeFencing{{Node: "node-b", Action: cri}}},
			want: []string{"node node-b fences with CRI"}, unwanted: []string{"node-a"}},
		{name: "one node overridden to Watchdog", members: members, result: resultWarn,
			spec: wolfpackv1alpha1.FencingSpec{Action: none, Nodes: []wolfpackv1alpha1.NodeFencing{{Node: "node-a", Action: watchdog}}},
			want: []string{"node node-b fences with None, which stops nothing (for tests only) and does not cover a hung agent"}, unwanted: []string{"node-a"}},
		{name: "an entry for a node that is not a member", members: members, result: resultPass,
			spec: wolfpackv1alpha1.FencingSpec{Action: watchdog, Nodes: []wolfpackv1alpha1.NodeFencing{{Node: "node-z", Action: none}}}},
		{name: "no members", result: resultPass, want: []string{"no member nodes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fencingCheck(tc.spec, tc.members)
			if c.Name != "fencing" || c.Result != tc.result {
				t.Fatalf("got %+v, want the fencing check with result %s", c, tc.result)
			}
			for _, w := range tc.want {
				if !strings.Contains(c.Message, w) {
					t.Errorf("message %q lacks %q", c.Message, w)
				}
			}
			for _, u := range tc.unwanted {
				if strings.Contains(c.Message, u) {
					t.Errorf("message %q has %q", c.Message, u)
				}
			}
			if wantRemedy := tc.result != resultPass; (c.Remedy != "") != wantRemedy || wantRemedy && !strings.Contains(c.Remedy, "agent.watchdog.enabled=true") {
				t.Errorf("remedy %q", c.Remedy)
			}
		})
	}
}

// fenceActionFor must be fence.ActionFor, which the CLI does not link.
func TestFenceActionForIsFenceActionFor(t *testing.T) {
	specs := []wolfpackv1alpha1.FencingSpec{
		{},
		{Action: wolfpackv1alpha1.FenceWatchdog},
		{Action: wolfpackv1alpha1.FenceNone, Nodes: []wolfpackv1alpha1.NodeFencing{{Node: "node-a", Action: wolfpackv1alpha1.FenceWatchdog}, {Node: "node-b"}}},
	}
	for _, spec := range specs {
		for _, node := range []string{"node-a", "node-b", "node-c"} {
			if got, want := fenceActionFor(spec, node), fence.ActionFor(spec, node); got != want {
				t.Errorf("fenceActionFor(%+v, %s) = %s, fence.ActionFor says %s", spec, node, got, want)
			}
		}
	}
}
