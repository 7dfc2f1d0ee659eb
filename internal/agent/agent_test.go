package agent

import (
	"net/netip"
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

func TestMustFail(t *testing.T) {
	lease := 9 * time.Second // renew deadline 6s
	cluster := func(typ wp.QuorumType, owner string, members int) *wp.QuorumDisk {
		qd := &wp.QuorumDisk{Spec: wp.QuorumDiskSpec{QuorumType: typ}, Status: wp.QuorumDiskStatus{Owner: owner}}
		for range members {
			qd.Status.Nodes = append(qd.Status.Nodes, wp.NodeStatus{})
		}
		return qd
	}
	hears := func(peers ...string) map[string][]string {
		m := map[string][]string{}
		for _, p := range peers {
			m[p] = []string{"public"}
		}
		return m
	}
	cases := []struct {
		name      string
		unrenewed time.Duration
		joined    bool
		reachable map[string][]string
		qd        *wp.QuorumDisk
		want      string // the reason, "" for no
	}{
		{"renewed and hearing the owner", time.Second, true, hears("a"), cluster(wp.DiskOnly, "a", 2), ""},
		{"renew deadline passed, API unreachable", 6*time.Second + time.Millisecond, true, hears("a"), nil, "past the renew deadline 6s"},
		{"renew deadline passed even as the owner", 7 * time.Second, true, nil, cluster(wp.DiskOnly, "b", 2), "past the renew deadline"},
		{"DiskOnly, does not hear the owner", time.Second, true, nil, cluster(wp.DiskOnly, "a", 2), "owned by a, which it does not hear"},
		{"DiskOnly, is the owner", time.Second, true, nil, cluster(wp.DiskOnly, "b", 2), ""},
		{"DiskOnly, nobody owns the disk yet", time.Second, true, nil, cluster(wp.DiskOnly, "", 2), ""},
		{"not joined: too early to tell", time.Second, false, nil, cluster(wp.DiskOnly, "a", 2), ""},
		{"cluster unreadable, Lease renewed", time.Second, true, nil, nil, ""},
		{"NodeMajority, alone of three", time.Second, true, nil, cluster(wp.NodeMajority, "", 3), "1 of 3 node votes"},
		{"NodeMajority, two of three", time.Second, true, hears("c"), cluster(wp.NodeMajority, "", 3), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why := MustFail("b", tc.unrenewed, lease, tc.joined, tc.reachable, tc.qd)
			if got != (tc.want != "") || !strings.Contains(why, tc.want) {
				t.Errorf("MustFail = %v (%q), want %q", got, why, tc.want)
			}
		})
	}
}
