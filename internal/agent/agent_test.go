package agent

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/events"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/heartbeat"
)

func TestRecordNetworkChanges(t *testing.T) {
	private := map[string]bool{"private": true, "public": false}
	cases := []struct {
		name          string
		before, after []string
		want          string // the Event, or "" for none
	}{
		{"private lost, public still heard", []string{"private", "public"}, []string{"public"},
			"Warning PrivateNetworkLost node a no longer hears b on a private network; heartbeats continue on [public]"},
		{"private back", []string{"public"}, []string{"private", "public"},
			"Normal PrivateNetworkRestored node a hears b on a private network again ([private public])"},
		{"everything lost", []string{"public"}, nil,
			"Warning HeartbeatLost node a no longer hears b on any network (was on [public])"},
		{"first heard", nil, []string{"private", "public"}, ""},
		{"public lost, private still heard", []string{"private", "public"}, []string{"private"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := events.NewFakeRecorder(1)
			m := &Membership{Node: "a", Recorder: rec}
			m.record(&wp.QuorumDisk{}, heartbeat.Change{Peer: "b", Before: tc.before, After: tc.after, At: time.Now()}, private)
			select {
			case got := <-rec.Events:
				if got != tc.want {
					t.Errorf("Event %q, want %q", got, tc.want)
				}
			default:
				if tc.want != "" {
					t.Errorf("no Event, want %q", tc.want)
				}
			}
		})
	}
}

func TestAddressIn(t *testing.T) {
	host := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.10.0.7"), netip.MustParseAddr("fd00::7")}
	for cidr, want := range map[string]string{"10.10.0.0/24": "10.10.0.7", "fd00::/64": "fd00::7", "192.0.2.0/24": "", "bad": ""} {
		got, ok := addressIn(host, cidr)
		if (want == "") == ok || (ok && got.String() != want) {
			t.Errorf("addressIn(%s) = %v, %v; want %q", cidr, got, ok, want)
		}
	}
}

func TestFieldManager(t *testing.T) {
	if got := FieldManager("node-a"); !strings.HasPrefix(got, "wolfpack-node-agent/") || !strings.HasSuffix(got, "node-a") {
		t.Errorf("FieldManager = %q", got)
	}
}
