// Package netnstest makes network namespaces, veth pairs and netlink handles for tests that
// run real networking code without touching the host's network. Only tests import it.
//
// The namespaces have no name (no file under /var/run/netns): nothing can collide with another
// run, and the kernel frees them, with their veth pairs, once their handles are closed or the
// test process ends, even when it crashes.
package netnstest

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// SkipUnlessRoot skips the test unless this process runs as root, which making network
// namespaces needs.
func SkipUnlessRoot(tb testing.TB) {
	tb.Helper()
	if uid := os.Geteuid(); uid != 0 {
		tb.Skipf("skipping: network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN); running as uid %d", uid)
	}
}

// NewNS makes a network namespace and closes its handle when the test ends. It skips the test
// when this process may not make namespaces.
func NewNS(tb testing.TB) netns.NsHandle {
	tb.Helper()
	var ns netns.NsHandle
	err := OnThread(func() error {
		var err error
		ns, err = netns.New() // moves the thread, which ends with OnThread's goroutine
		return err
	})
	if err != nil {
		SkipIfPermission(tb, err, "creating a network namespace")
		tb.Fatalf("creating a network namespace: %v", err)
	}
	tb.Cleanup(func() { _ = ns.Close() })
	return ns
}

// Handle returns a netlink handle in ns, closed when the test ends.
func Handle(tb testing.TB, ns netns.NsHandle) *netlink.Handle {
	tb.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		tb.Fatalf("netlink handle in %s: %v", ns, err)
	}
	tb.Cleanup(h.Close)
	return h
}

// Veth makes a veth pair: the interface called name in h's namespace and the one called peer in
// the namespace peerNS. Both stay down and without an address (see SetUp). It skips the test
// when this process may not make the pair.
func Veth(tb testing.TB, h *netlink.Handle, name, peer string, peerNS netns.NsHandle) {
	tb.Helper()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer, PeerNamespace: netlink.NsFd(peerNS)}
	if err := h.LinkAdd(veth); err != nil {
		SkipIfPermission(tb, err, "creating a veth pair")
		tb.Fatalf("creating the veth pair %s-%s: %v", name, peer, err)
	}
}

// SetUp gives the interface called name, in h's namespace, the address addr (such as
// 192.0.2.1/24), brings it up and returns it.
func SetUp(tb testing.TB, h *netlink.Handle, name, addr string) netlink.Link {
	tb.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	p := netip.MustParsePrefix(addr)
	ipnet := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipnet}); err != nil {
		tb.Fatalf("adding %s to %s: %v", addr, name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		tb.Fatalf("bringing %s up: %v", name, err)
	}
	return l
}

// SkipIfPermission skips the test when err says that this process lacks the privilege for
// doing, such as "creating a veth pair".
func SkipIfPermission(tb testing.TB, err error, doing string) {
	tb.Helper()
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		tb.Skipf("skipping: %s is not permitted here (no CAP_SYS_ADMIN/CAP_NET_ADMIN?): %v", doing, err)
	}
}

// OnThread runs f in a goroutine locked to an OS thread that it never unlocks, so that the
// runtime ends the thread with the goroutine, whatever f did to the thread's namespace.
func OnThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- f()
	}()
	return <-errc
}
