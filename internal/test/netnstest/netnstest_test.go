package netnstest

import (
	"net"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestVethBetweenNamespaces(t *testing.T) {
	SkipUnlessRoot(t)
	a, b := NewNS(t), NewNS(t)
	ha, hb := Handle(t, a), Handle(t, b)
	Veth(t, ha, "wpt-a", "wpt-b", b)
	la := SetUp(t, ha, "wpt-a", "192.0.2.1/24")
	SetUp(t, hb, "wpt-b", "192.0.2.2/24")

	addrs, err := ha.AddrList(la, netlink.FAMILY_V4)
	if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != "192.0.2.1/24" {
		t.Errorf("wpt-a's addresses: %v, %v; want 192.0.2.1/24", addrs, err)
	}
	// The peer is in b, not in a.
	if _, err := ha.LinkByName("wpt-b"); err == nil {
		t.Errorf("wpt-b is in a's namespace, want it in b's only")
	}
	var names []string
	err = OnThread(func() error {
		if err := netns.Set(b); err != nil {
			return err
		}
		ifis, err := net.Interfaces()
		for _, ifi := range ifis {
			names = append(names, ifi.Name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"lo", "wpt-b"}) {
		t.Errorf("interfaces in b: %q, want lo and wpt-b", names)
	}
}
