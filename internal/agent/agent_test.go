package agent

import (
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/events"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/heartbeat"
)

func TestRecordNetworkChanges(t *testing.T) {
	private := map[string]bool{"private": true, "public": false}
	type change struct{ before, after []string }
	cases := []struct {
		name    string
		changes []change
		want    []string // the Events, in order
	}{
		{"private lost, public still heard", []change{{[]string{"private", "public"}, []string{"public"}}},
			[]string{"Warning PrivateNetworkLost node a no longer hears b on a private network; heartbeats continue on [public]"}},
		{"private lost, then back", []change{{[]string{"private", "public"}, []string{"public"}}, {[]string{"public"}, []string{"private", "public"}}},
			[]string{"Warning PrivateNetworkLost node a no longer hears b on a private network; heartbeats continue on [public]",
				"Normal PrivateNetworkRestored node a hears b on a private network again ([private public])"}},
		{"first found on public, then on private: nothing was lost", []change{{nil, []string{"public"}}, {[]string{"public"}, []string{"private", "public"}}}, nil},
		{"everything lost", []change{{[]string{"public"}, nil}},
			[]string{"Warning HeartbeatLost node a no longer hears b on any network (was on [public])"}},
		{"first heard", []change{{nil, []string{"private", "public"}}}, nil},
		{"public lost, private still heard", []change{{[]string{"private", "public"}, []string{"private"}}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := events.NewFakeRecorder(10)
			m := &NodeManager{Node: "a", Recorder: rec}
			for _, c := range tc.changes {
				m.record(&wp.QuorumDisk{}, heartbeat.Change{Peer: "b", Before: c.before, After: c.after, At: time.Now()}, private)
			}
			close(rec.Events)
			var got []string
			for e := range rec.Events {
				got = append(got, e)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Events %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFieldManager(t *testing.T) {
	if got := FieldManager("node-a"); !strings.HasPrefix(got, "wolfpack-node-agent/") || !strings.HasSuffix(got, "node-a") {
		t.Errorf("FieldManager = %q", got)
	}
}
