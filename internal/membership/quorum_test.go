package membership

import (
	"slices"
	"strings"
	"testing"
	"time"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

func TestQuorumHas(t *testing.T) {
	disk := wolfpackv1alpha1.DiskOnly
	nodes := wolfpackv1alpha1.NodeMajority
	both := wolfpackv1alpha1.NodeAndDiskMajority
	cases := []struct {
		q    Quorum
		side []string
		want bool
	}{
		{Quorum{Type: disk, Owner: "a", Members: 2}, []string{"a"}, true},
		{Quorum{Type: disk, Owner: "a", Members: 2}, []string{"b"}, false},
		{Quorum{Type: disk, Members: 2}, []string{"b"}, true}, // no owner: nobody can be told apart
		{Quorum{Type: nodes, Members: 3}, []string{"a", "b"}, true},
		{Quorum{Type: nodes, Members: 3}, []string{"c"}, false},
		{Quorum{Type: nodes, Members: 4}, []string{"a", "b"}, false}, // a tie has no majority
		{Quorum{Type: both, Owner: "a", Members: 4}, []string{"a", "b"}, true},
		{Quorum{Type: both, Owner: "a", Members: 4}, []string{"c", "d"}, false},
		{Quorum{Type: both, Owner: "a", Members: 2}, []string{"a"}, true},
		{Quorum{Type: both, Owner: "a", Members: 2}, []string{"b"}, false},
	}
	for _, tc := range cases {
		if got, why := tc.q.Has(tc.side); got != tc.want || why == "" {
			t.Errorf("%+v.Has(%v) = %v (%s), want %v", tc.q, tc.side, got, why, tc.want)
		}
	}
}

func TestPartitionLeavesTheSideWithoutQuorumDown(t *testing.T) {
	cases := []struct {
		name    string
		quorum  Quorum
		members []string
		leases  map[string]Lease
		down    []string
	}{
		{
			name:    "two nodes, DiskOnly: the disk owner stays",
			quorum:  Quorum{Type: wolfpackv1alpha1.DiskOnly, Owner: "a"},
			members: []string{"a", "b"},
			leases:  map[string]Lease{"a": lease(0), "b": lease(0)},
			down:    []string{"b"},
		},
		{
			name:    "two nodes, DiskOnly, the other owns the disk",
			quorum:  Quorum{Type: wolfpackv1alpha1.DiskOnly, Owner: "b"},
			members: []string{"a", "b"},
			leases:  map[string]Lease{"a": lease(0), "b": lease(0)},
			down:    []string{"a"},
		},
		{
			name:    "two nodes, DiskOnly, no owner yet: nobody is taken down",
			quorum:  Quorum{Type: wolfpackv1alpha1.DiskOnly},
			members: []string{"a", "b"},
			leases:  map[string]Lease{"a": lease(0), "b": lease(0)},
		},
		{
			name:    "three nodes, NodeMajority: the lone node goes",
			quorum:  Quorum{Type: wolfpackv1alpha1.NodeMajority},
			members: []string{"a", "b", "c"},
			leases:  map[string]Lease{"a": lease(0, "b"), "b": lease(0, "a"), "c": lease(0)},
			down:    []string{"c"},
		},
		{
			name:    "four nodes split two and two, NodeMajority: no side has quorum",
			quorum:  Quorum{Type: wolfpackv1alpha1.NodeMajority},
			members: []string{"a", "b", "c", "d"},
			leases:  map[string]Lease{"a": lease(0, "b"), "b": lease(0, "a"), "c": lease(0, "d"), "d": lease(0, "c")},
			down:    []string{"a", "b", "c", "d"},
		},
		{
			name:    "four nodes split two and two, NodeAndDiskMajority: the disk breaks the tie",
			quorum:  Quorum{Type: wolfpackv1alpha1.NodeAndDiskMajority, Owner: "c"},
			members: []string{"a", "b", "c", "d"},
			leases:  map[string]Lease{"a": lease(0, "b"), "b": lease(0, "a"), "c": lease(0, "d"), "d": lease(0, "c")},
			down:    []string{"a", "b"},
		},
		{
			name:    "no partition: everyone hears everyone",
			quorum:  Quorum{Type: wolfpackv1alpha1.NodeMajority},
			members: []string{"a", "b", "c"},
			leases:  map[string]Lease{"a": lease(0, "b", "c"), "b": lease(0, "a", "c"), "c": lease(0, "a", "b")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := Compute(Input{Now: t0, Members: tc.members, Leases: tc.leases, RenewInterval: time.Second, Quorum: tc.quorum})
			var down []string
			for _, n := range got {
				if n.State == wolfpackv1alpha1.NodeDown {
					down = append(down, n.Name)
					if !strings.Contains(n.Message, "partitioned from its peers without quorum") {
						t.Errorf("%s Down for %q", n.Name, n.Message)
					}
				}
			}
			if !slices.Equal(down, tc.down) {
				t.Errorf("Down: %v, want %v", down, tc.down)
			}
		})
	}
}

func TestMustFence(t *testing.T) {
	q := Quorum{Type: wolfpackv1alpha1.DiskOnly, Owner: "a", Members: 2}
	if fence, _ := MustFence("a", nil, q); fence {
		t.Error("the disk owner alone fenced itself")
	}
	if fence, why := MustFence("b", nil, q); !fence || !strings.Contains(why, "owned by a") {
		t.Errorf("b, hearing nobody, fence = %v (%s); want true", fence, why)
	}
	if fence, _ := MustFence("b", []string{"a"}, q); fence {
		t.Error("b hears the owner and fenced itself")
	}
	m := Quorum{Type: wolfpackv1alpha1.NodeMajority, Members: 3}
	if fence, _ := MustFence("c", nil, m); !fence {
		t.Error("a lone node of three kept running")
	}
	if fence, _ := MustFence("c", []string{"b"}, m); fence {
		t.Error("two of three fenced themselves")
	}
}
