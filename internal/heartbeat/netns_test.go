package heartbeat

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vishvananda/netlink"

	"github.com/wolfpack-ha/wolfpack/internal/test/netnstest"
)

// TestNamespaces runs two transports in two network namespaces joined by two veth pairs, a
// private and a public network, and cuts the links: with the private link down they hear
// each other on the public one and lose nothing; with both down they lose each other within
// the detection time; with both up again they find each other.
//
// The namespaces have no name: the kernel frees them, with the veth pairs, once their handles
// are closed or this process ends.
func TestNamespaces(t *testing.T) {
	netnstest.SkipUnlessRoot(t)
	nsA, nsB := netnstest.NewNS(t), netnstest.NewNS(t)
	hA, hB := netnstest.Handle(t, nsA), netnstest.Handle(t, nsB)
	links := map[string]netlink.Link{} // network -> a's end
	for _, l := range []struct {
		network, a, b string
		addrA, addrB  string
	}{
		{"private", "wpp-a", "wpp-b", "192.0.2.1/24", "192.0.2.2/24"},
		{"public", "wpq-a", "wpq-b", "198.51.100.1/24", "198.51.100.2/24"},
	} {
		netnstest.Veth(t, hA, l.a, l.b, nsB)
		links[l.network] = netnstest.SetUp(t, hA, l.a, l.addrA)
		netnstest.SetUp(t, hB, l.b, l.addrB)
	}

	nodeA := node{"a", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.1")}
	nodeB := node{"b", netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.2")}
	a := start(t, nodeA.config(DefaultPort, testInterval, testThreshold), peersOf(nodeB), nsA)
	b := start(t, nodeB.config(DefaultPort, testInterval, testThreshold), peersOf(nodeA), nsB)
	a.waitReachable(t, map[string][]string{"b": both})
	b.waitReachable(t, map[string][]string{"a": both})

	setLink := func(network string, up bool) {
		t.Helper()
		set := hA.LinkSetDown
		if up {
			set = hA.LinkSetUp
		}
		if err := set(links[network]); err != nil {
			t.Fatalf("setting a's %s link up=%v: %v", network, up, err)
		}
	}

	markA, markB := a.changes.mark(), b.changes.mark()
	cut := time.Now()
	setLink("private", false)
	for x, mark := range map[*agent]int{a: markA, b: markB} {
		ch := x.changes.waitFor(t, mark, other(x.name), public...)
		t.Logf("%s fell back to the public network %v after the private link went down", x.name, ch.At.Sub(cut).Round(time.Millisecond))
	}
	time.Sleep(2 * testTimeout)
	for x, mark := range map[*agent]int{a: markA, b: markB} {
		if l := lost(x.changes.since(mark), other(x.name)); len(l) > 0 {
			t.Errorf("%s lost its peer with only the private link down: %v", x.name, l)
		}
	}
	a.waitReachable(t, map[string][]string{"b": public})
	b.waitReachable(t, map[string][]string{"a": public})
	// With its link down, a has no route on the private network: its sends there fail.
	t.Logf("a counted %v send errors on its private network with the link down",
		testutil.ToFloat64(a.metrics.SendErrors.WithLabelValues("private")))

	markA, markB = a.changes.mark(), b.changes.mark()
	cut = time.Now()
	setLink("public", false)
	for x, mark := range map[*agent]int{a: markA, b: markB} {
		ch := x.changes.waitFor(t, mark, other(x.name))
		took := ch.At.Sub(cut)
		t.Logf("%s lost its peer %v after both links were down (timeout %v)", x.name, took.Round(time.Millisecond), testTimeout)
		if bound := testTimeout + testInterval + slack; took > bound {
			t.Errorf("%s lost its peer %v after both links were down, more than %v", x.name, took, bound)
		}
	}

	markA, markB = a.changes.mark(), b.changes.mark()
	restored := time.Now()
	setLink("private", true)
	setLink("public", true)
	for x, mark := range map[*agent]int{a: markA, b: markB} {
		x.changes.waitFor(t, mark, other(x.name), both...)
		if found := x.changes.since(mark); len(found[0].Before) != 0 {
			t.Errorf("%s: changes after the links came back %v, want the first from none", x.name, found)
		}
	}
	t.Logf("both heard on both networks %v after the links came back", time.Since(restored).Round(time.Millisecond))
}
