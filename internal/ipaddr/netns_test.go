package ipaddr

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/wolfpack-ha/wolfpack/internal/test/netnstest"
)

// wait bounds every wait of these tests: long enough for a loaded 2-core machine.
const wait = 10 * time.Second

// testNet is two network namespaces joined by a veth pair: "owner", where the tests run the
// Manager on the interface "wpa" (192.0.2.1/24), and "peer", whose interface "wpb" (192.0.2.2/24)
// sees what the owner sends.
type testNet struct {
	owner, peer   netns.NsHandle
	hOwner, hPeer *netlink.Handle // netlink in each namespace, for the tests' own checks
	wpa           netlink.Link
	mac           net.HardwareAddr // wpa's
}

// newTestNet makes a testNet, or skips the test when this process may not make namespaces.
//
// The namespaces have no name (no file under /var/run/netns): nothing can collide with another
// run, and the kernel frees them, with the veth pair, once their handles are closed or this
// process ends, even when it crashes.
func newTestNet(t *testing.T) *testNet {
	t.Helper()
	netnstest.SkipUnlessRoot(t)
	n := &testNet{owner: netnstest.NewNS(t), peer: netnstest.NewNS(t)}
	n.hOwner, n.hPeer = netnstest.Handle(t, n.owner), netnstest.Handle(t, n.peer)
	netnstest.Veth(t, n.hOwner, "wpa", "wpb", n.peer)
	n.wpa = netnstest.SetUp(t, n.hOwner, "wpa", "192.0.2.1/24")
	netnstest.SetUp(t, n.hPeer, "wpb", "192.0.2.2/24")
	n.mac = n.wpa.Attrs().HardwareAddr
	return n
}

// in runs f in the network namespace ns.
func in(ns netns.NsHandle, f func() error) error {
	return netnstest.OnThread(func() error {
		if err := netns.Set(ns); err != nil {
			return err
		}
		return f()
	})
}

// listed returns how many times p is among the addresses of l, with its flags, as netlink in the
// handle's namespace reports them: the tests' check independent of the Manager.
func listed(t *testing.T, h *netlink.Handle, l netlink.Link, p netip.Prefix) (count, flags int) {
	t.Helper()
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := h.AddrList(l, family)
	if err != nil {
		t.Fatalf("listing the addresses of %s: %v", l.Attrs().Name, err)
	}
	for _, a := range addrs {
		if q, ok := FromNetlink(a.IPNet); ok && q == p {
			count, flags = count+1, a.Flags
		}
	}
	return count, flags
}

// capture opens an ARP socket on wpb in the peer namespace.
func (n *testNet) capture(t *testing.T) *arp.Client {
	t.Helper()
	var c *arp.Client
	err := in(n.peer, func() error {
		ifi, err := net.InterfaceByName("wpb")
		if err != nil {
			return err
		}
		c, err = arp.Dial(ifi)
		return err
	})
	if err != nil {
		t.Fatalf("opening an ARP socket on wpb: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// announcements reads from c until it has seen want ARP packets whose sender is ip, or until the
// deadline, and returns them with their Ethernet frames.
func announcements(t *testing.T, c *arp.Client, ip netip.Addr, want int) ([]*arp.Packet, []*ethernet.Frame) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	var packets []*arp.Packet
	var frames []*ethernet.Frame
	for len(packets) < want {
		p, f, err := c.Read()
		if err != nil {
			t.Fatalf("reading ARP on wpb after %d of %d announcements of %s: %v", len(packets), want, ip, err)
		}
		if p.SenderIP == ip {
			packets, frames = append(packets, p), append(frames, f)
		}
	}
	return packets, frames
}

func TestNetlinkInNamespaces(t *testing.T) {
	n := newTestNet(t)
	opts := Options{ARPCount: 3, ARPInterval: 100 * time.Millisecond}
	m := NewNetlink(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 4*wait)
	defer cancel()
	floating := Address{Interface: "wpa", Prefix: netip.MustParsePrefix("192.0.2.100/24")}

	present := func(t *testing.T, a Address) bool {
		t.Helper()
		var ok bool
		if err := in(n.owner, func() (err error) { ok, err = m.Present(a); return err }); err != nil {
			t.Fatalf("Present(%s): %v", a, err)
		}
		return ok
	}

	t.Run("add announces the address", func(t *testing.T) {
		c := n.capture(t)
		start := time.Now()
		if err := in(n.owner, func() error { return m.Add(ctx, floating) }); err != nil {
			t.Fatalf("Add(%s): %v", floating, err)
		}
		if took, least := time.Since(start), time.Duration(opts.ARPCount-1)*opts.ARPInterval; took < least {
			t.Errorf("Add took %v, less than the %v that its announcements take", took, least)
		}
		if !present(t, floating) {
			t.Errorf("Present(%s) = false after Add", floating)
		}
		if count, _ := listed(t, n.hOwner, n.wpa, floating.Prefix); count != 1 {
			t.Errorf("netlink lists %s %d times on wpa, want once", floating.Prefix, count)
		}
		ip := floating.Prefix.Addr()
		packets, frames := announcements(t, c, ip, opts.ARPCount)
		for i, p := range packets {
			if p.Operation != arp.OperationRequest || p.TargetIP != ip || !bytes.Equal(p.SenderHardwareAddr, n.mac) {
				t.Errorf("announcement %d: %s from %s (%s) for %s, want a request from %s (%s) for itself",
					i, p.Operation, p.SenderIP, p.SenderHardwareAddr, p.TargetIP, ip, n.mac)
			}
			if f := frames[i]; !bytes.Equal(f.Destination, ethernet.Broadcast) || !bytes.Equal(f.Source, n.mac) {
				t.Errorf("announcement %d: frame from %s to %s, want from %s to the broadcast address", i, f.Source, f.Destination, n.mac)
			}
		}
	})

	t.Run("add again", func(t *testing.T) {
		if err := in(n.owner, func() error { return m.Add(ctx, floating) }); err != nil {
			t.Fatalf("Add(%s) again: %v", floating, err)
		}
		if count, _ := listed(t, n.hOwner, n.wpa, floating.Prefix); count != 1 {
			t.Errorf("netlink lists %s %d times on wpa after a second Add, want once", floating.Prefix, count)
		}
	})

	t.Run("interface for a network", func(t *testing.T) {
		var name string
		err := in(n.owner, func() (err error) {
			name, err = m.InterfaceFor(netip.MustParsePrefix("192.0.2.0/24"))
			return err
		})
		if err != nil || name != "wpa" {
			t.Errorf("InterfaceFor(192.0.2.0/24) = %q, %v; want wpa", name, err)
		}
		err = in(n.owner, func() (err error) {
			name, err = m.InterfaceFor(netip.MustParsePrefix("198.51.100.0/24"))
			return err
		})
		if !errors.Is(err, ErrNoInterface) {
			t.Errorf("InterfaceFor(198.51.100.0/24) = %q, %v; want ErrNoInterface", name, err)
		}
	})

	t.Run("remove", func(t *testing.T) {
		for i := range 2 { // the second time, it is already gone
			if err := in(n.owner, func() error { return m.Remove(ctx, floating) }); err != nil {
				t.Fatalf("Remove(%s) #%d: %v", floating, i+1, err)
			}
			if present(t, floating) {
				t.Errorf("Present(%s) = true after Remove #%d", floating, i+1)
			}
			if count, _ := listed(t, n.hOwner, n.wpa, floating.Prefix); count != 0 {
				t.Errorf("netlink still lists %s on wpa after Remove #%d", floating.Prefix, i+1)
			}
		}
		if count, _ := listed(t, n.hOwner, n.wpa, netip.MustParsePrefix("192.0.2.1/24")); count != 1 {
			t.Errorf("Remove took wpa's own address 192.0.2.1/24 with it")
		}
	})

	t.Run("missing interface", func(t *testing.T) {
		missing := Address{Interface: "wp-missing", Prefix: floating.Prefix}
		err := in(n.owner, func() error { return m.Add(ctx, missing) })
		if !errors.Is(err, ErrInterfaceNotFound) || !strings.Contains(err.Error(), `"wp-missing"`) ||
			!strings.Contains(err.Error(), "192.0.2.100/24") {
			t.Errorf("Add(%s) = %v, want ErrInterfaceNotFound naming the interface and the address", missing, err)
		}
		err = in(n.owner, func() (err error) { _, err = m.Present(missing); return err })
		if !errors.Is(err, ErrInterfaceNotFound) {
			t.Errorf("Present(%s): %v, want ErrInterfaceNotFound", missing, err)
		}
		if err := in(n.owner, func() error { return m.Remove(ctx, missing) }); err != nil {
			t.Errorf("Remove(%s) = %v, want nil: there is nothing to remove", missing, err)
		}
	})

	t.Run("context ends during the announcements", func(t *testing.T) {
		slow := NewNetlink(Options{ARPCount: 100, ARPInterval: 100 * time.Millisecond})
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := in(n.owner, func() error { return slow.Add(short, floating) })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Add with a short deadline: %v, want context.DeadlineExceeded", err)
		}
		if took := time.Since(start); took > wait {
			t.Errorf("Add took %v after its context ended", took)
		}
		if !present(t, floating) {
			t.Errorf("the address did not stay when the announcements were cut short")
		}
		if err := in(n.owner, func() error { return m.Remove(ctx, floating) }); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("IPv6 waits for duplicate address detection", func(t *testing.T) {
		v6 := Address{Interface: "wpa", Prefix: netip.MustParsePrefix("2001:db8::100/64")}
		for i := range 2 { // the second time, it is already there
			if err := in(n.owner, func() error { return m.Add(ctx, v6) }); err != nil {
				t.Fatalf("Add(%s) #%d: %v", v6, i+1, err)
			}
		}
		count, flags := listed(t, n.hOwner, n.wpa, v6.Prefix)
		if count != 1 || flags&(syscall.IFA_F_TENTATIVE|syscall.IFA_F_DADFAILED) != 0 {
			t.Errorf("after Add, netlink lists %s %d times with flags %#x, want once, neither tentative nor failed", v6.Prefix, count, flags)
		}
		if !present(t, v6) {
			t.Errorf("Present(%s) = false after Add", v6)
		}
		if err := in(n.owner, func() error { return m.Remove(ctx, v6) }); err != nil {
			t.Fatalf("Remove(%s): %v", v6, err)
		}
		if count, _ := listed(t, n.hOwner, n.wpa, v6.Prefix); count != 0 {
			t.Errorf("netlink still lists %s after Remove", v6.Prefix)
		}
	})

	t.Run("IPv6 held by another host", func(t *testing.T) {
		v6 := Address{Interface: "wpa", Prefix: netip.MustParsePrefix("2001:db8::200/64")}
		wpb, err := n.hPeer.LinkByName("wpb")
		if err != nil {
			t.Fatal(err)
		}
		held := ToNetlink(v6.Prefix)
		held.Flags = syscall.IFA_F_NODAD // usable at once, so that the peer defends it
		if err := n.hPeer.AddrAdd(wpb, held); err != nil {
			t.Fatalf("adding %s to wpb: %v", v6.Prefix, err)
		}
		err = in(n.owner, func() error { return m.Add(ctx, v6) })
		if !errors.Is(err, ErrDuplicate) {
			t.Fatalf("Add(%s) held by the peer: %v, want ErrDuplicate", v6, err)
		}
		if count, _ := listed(t, n.hOwner, n.wpa, v6.Prefix); count != 0 {
			t.Errorf("the duplicate %s stayed on wpa", v6.Prefix)
		}
	})
}
