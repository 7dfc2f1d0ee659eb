package heartbeat

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// TestNamespaces runs two transports in two network namespaces joined by two veth pairs, a
// private and a public network, and cuts the links: with the private link down they hear
// each other on the public one and lose nothing; with both down they lose each other within
// the detection time; with both up again they find each other.
//
// The namespaces have no name: the kernel frees them, with the veth pairs, once their handles
// are closed or this process ends.
func TestNamespaces(t *testing.T) {
	if uid := os.Geteuid(); uid != 0 {
		t.Skipf("skipping: network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN); running as uid %d", uid)
	}
	nsA, nsB := newNS(t), newNS(t)
	hA, hB := newHandle(t, nsA), newHandle(t, nsB)
	links := map[string]netlink.Link{} // network -> a's end
	for _, l := range []struct {
		network, a, b string
		addrA, addrB  string
	}{
		{"private", "wpp-a", "wpp-b", "192.0.2.1/24", "192.0.2.2/24"},
		{"public", "wpq-a", "wpq-b", "198.51.100.1/24", "198.51.100.2/24"},
	} {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.a}, PeerName: l.b, PeerNamespace: netlink.NsFd(nsB)}
		if err := hA.LinkAdd(veth); err != nil {
			skipIfPermission(t, err, "creating a veth pair")
			t.Fatalf("creating the veth pair %s-%s: %v", l.a, l.b, err)
		}
		links[l.network] = setUp(t, hA, l.a, l.addrA)
		setUp(t, hB, l.b, l.addrB)
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

// newNS makes a network namespace and closes its handle when the test ends.
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	var ns netns.NsHandle
	err := onThread(func() error {
		var err error
		ns, err = netns.New() // moves the thread, which ends with onThread's goroutine
		return err
	})
	if err != nil {
		skipIfPermission(t, err, "creating a network namespace")
		t.Fatalf("creating a network namespace: %v", err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	return ns
}

// newHandle returns a netlink handle in ns, closed when the test ends.
func newHandle(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", ns, err)
	}
	t.Cleanup(h.Close)
	return h
}

// setUp gives the interface called name the address addr, brings it up and returns it.
func setUp(t *testing.T, h *netlink.Handle, name, addr string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p := netip.MustParsePrefix(addr)
	ipnet := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipnet}); err != nil {
		t.Fatalf("adding %s to %s: %v", addr, name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatalf("bringing %s up: %v", name, err)
	}
	return l
}

// skipIfPermission skips the test when err says that this process lacks the privilege.
func skipIfPermission(t *testing.T, err error, doing string) {
	t.Helper()
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		t.Skipf("skipping: %s is not permitted here (no CAP_SYS_ADMIN/CAP_NET_ADMIN?): %v", doing, err)
	}
}

// onThread runs f in a goroutine locked to an OS thread that it never unlocks, so that the
// runtime ends the thread with the goroutine, whatever f did to the thread's namespace.
func onThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- f()
	}()
	return <-errc
}
