package ipaddr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/vishvananda/netlink"
)

// The defaults of Options are those of Pacemaker's IPaddr2 resource agent (arp_count=5,
// arp_interval=200ms); keepalived also sends 5 by default. Five announcements 200 ms apart make
// Add take 0.8 s and survive the loss of a few frames.
const (
	DefaultARPCount    = 5
	DefaultARPInterval = 200 * time.Millisecond
)

// dadTimeout bounds how long Add waits for the kernel's duplicate address detection of an IPv6
// address, which takes about one to two seconds with the kernel's defaults. An address on a link
// that is down stays tentative and makes Add fail after this long.
const dadTimeout = 10 * time.Second

// dadPoll is how often Add looks whether duplicate address detection has finished.
const dadPoll = 50 * time.Millisecond

// dumpTries is how many times a netlink dump that the kernel interrupted is tried.
const dumpTries = 5

// ErrDuplicate is matched (with errors.Is) by Add's error when the kernel's duplicate address
// detection found that another host on the link already holds the IPv6 address.
var ErrDuplicate = errors.New("duplicate address detection failed: another host on the link holds the address")

// Options tune Netlink's announcements. The zero value means the defaults.
type Options struct {
	// ARPCount is how many gratuitous ARPs Add sends for an IPv4 address. Zero means
	// DefaultARPCount and a negative count means none.
	ARPCount int
	// ARPInterval is the pause between two of them. Zero or less means DefaultARPInterval.
	ARPInterval time.Duration
}

// withDefaults returns o with its zero values replaced by the defaults.
func (o Options) withDefaults() Options {
	switch {
	case o.ARPCount == 0:
		o.ARPCount = DefaultARPCount
	case o.ARPCount < 0:
		o.ARPCount = 0
	}
	if o.ARPInterval <= 0 {
		o.ARPInterval = DefaultARPInterval
	}
	return o
}

// Netlink is the Manager of a Linux host. It changes addresses through rtnetlink and announces an
// added IPv4 address with gratuitous ARP: ARP requests broadcast on the link whose sender and
// target are both the address (the ARP Announcement of RFC 5227, also the form of the kernel's
// own gratuitous ARP), so that neighbours replace the previous owner's hardware address in their
// caches.
//
// Add waits for the kernel's duplicate address detection of an IPv6 address and sends no
// announcement for it: with its default settings the kernel sends only the detection's Neighbor
// Solicitation, from the unspecified address, which updates no neighbour's cache. Setting
// net.ipv6.conf.<interface>.ndisc_notify=1 makes it follow a successful detection with an
// unsolicited Neighbor Advertisement to all nodes that overrides cached entries.
//
// Netlink acts in the network namespace of the calling thread: the host's, for the agent. It is
// safe for concurrent use.
type Netlink struct {
	opts Options
}

var _ Manager = (*Netlink)(nil)

// NewNetlink returns a Netlink with opts.
func NewNetlink(opts Options) *Netlink {
	return &Netlink{opts: opts.withDefaults()}
}

// Add adds a to its interface, replacing an address that is already there, and announces it.
// For an IPv6 address it first waits, within ctx, until duplicate address detection has passed;
// when it has failed, Add removes the address again and returns an error that matches
// ErrDuplicate. When ctx ends during the announcements the address stays and Add returns ctx's
// error.
func (n *Netlink) Add(ctx context.Context, a Address) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ipaddr: adding %s: %w", a, err)
	}
	l, err := linkByName(a.Interface, "adding "+a.Prefix.String())
	if err != nil {
		return err
	}
	if err := netlink.AddrReplace(l, ToNetlink(a.Prefix)); err != nil {
		return fmt.Errorf("ipaddr: adding %s: %w", a, err)
	}
	if a.Prefix.Addr().Is6() {
		return waitDAD(ctx, l, a)
	}
	return n.announce(ctx, l.Attrs(), a)
}

// Remove removes a from its interface. An address that is not there, or whose interface no
// longer exists, is not an error.
func (n *Netlink) Remove(ctx context.Context, a Address) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ipaddr: removing %s: %w", a, err)
	}
	l, err := linkByName(a.Interface, "removing "+a.Prefix.String())
	if errors.Is(err, ErrInterfaceNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	err = netlink.AddrDel(l, ToNetlink(a.Prefix))
	if err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("ipaddr: removing %s: %w", a, err)
	}
	return nil
}

// Present reports whether a is on its interface with its prefix length. An IPv6 address that
// failed duplicate address detection is not present: the kernel keeps it but does not use it.
func (n *Netlink) Present(a Address) (bool, error) {
	if err := a.Validate(); err != nil {
		return false, err
	}
	l, err := linkByName(a.Interface, "looking for "+a.Prefix.String())
	if err != nil {
		return false, err
	}
	flags, found, err := addrFlags(l, a)
	return found && flags&syscall.IFA_F_DADFAILED == 0, err
}

// InterfaceFor returns the name of the interface with the lowest index that holds an address in
// network.
func (n *Netlink) InterfaceFor(network netip.Prefix) (string, error) {
	links, err := RetryDump(netlink.LinkList)
	if err != nil {
		return "", fmt.Errorf("ipaddr: listing interfaces: %w", err)
	}
	addrs, err := RetryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return "", fmt.Errorf("ipaddr: listing addresses: %w", err)
	}
	return interfaceFor(hostLinks(links, addrs), network)
}

// hostLinks joins the host's interfaces with their addresses, in the order of their indexes.
func hostLinks(links []netlink.Link, addrs []netlink.Addr) []link {
	slices.SortFunc(links, func(x, y netlink.Link) int { return x.Attrs().Index - y.Attrs().Index })
	out := make([]link, 0, len(links))
	for _, l := range links {
		hl := link{name: l.Attrs().Name}
		for _, a := range addrs {
			if p, ok := FromNetlink(a.IPNet); ok && a.LinkIndex == l.Attrs().Index {
				hl.addrs = append(hl.addrs, p)
			}
		}
		out = append(out, hl)
	}
	return out
}

// linkByName returns the interface called name; doing says what for, for the error.
func linkByName(name, doing string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil, interfaceNotFound(name, doing)
	}
	if err != nil {
		return nil, fmt.Errorf("ipaddr: interface %q (%s): %w", name, doing, err)
	}
	return l, nil
}

// addrFlags returns the flags (IFA_F_*) of a on interface l and whether it is there.
func addrFlags(l netlink.Link, a Address) (int, bool, error) {
	family := netlink.FAMILY_V4
	if a.Prefix.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := RetryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(l, family) })
	if err != nil {
		return 0, false, fmt.Errorf("ipaddr: listing the addresses of %q: %w", a.Interface, err)
	}
	for _, x := range addrs {
		if p, ok := FromNetlink(x.IPNet); ok && p == a.Prefix {
			return x.Flags, true, nil
		}
	}
	return 0, false, nil
}

// waitDAD waits until a on l is no longer tentative, for at most dadTimeout.
func waitDAD(ctx context.Context, l netlink.Link, a Address) error {
	ctx, cancel := context.WithTimeout(ctx, dadTimeout)
	defer cancel()
	tick := time.NewTicker(dadPoll)
	defer tick.Stop()
	for {
		flags, found, err := addrFlags(l, a)
		switch {
		case err != nil:
			return err
		case !found:
			return fmt.Errorf("ipaddr: %s went away during duplicate address detection", a)
		case flags&syscall.IFA_F_DADFAILED != 0:
			if err := netlink.AddrDel(l, ToNetlink(a.Prefix)); err != nil {
				return fmt.Errorf("ipaddr: adding %s: %w (and removing it: %w)", a, ErrDuplicate, err)
			}
			return fmt.Errorf("ipaddr: adding %s: %w", a, ErrDuplicate)
		case flags&syscall.IFA_F_TENTATIVE == 0:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ipaddr: %s still tentative (is the link up?): %w", a, ctx.Err())
		case <-tick.C:
		}
	}
}

// announce sends the gratuitous ARPs for a on the interface with attrs, n.opts.ARPInterval apart.
func (n *Netlink) announce(ctx context.Context, attrs *netlink.LinkAttrs, a Address) error {
	if n.opts.ARPCount == 0 || !usesARP(attrs) {
		return nil
	}
	ifi := &net.Interface{Index: attrs.Index, Name: attrs.Name, HardwareAddr: attrs.HardwareAddr, MTU: attrs.MTU}
	c, err := arp.Dial(ifi)
	if err != nil {
		return fmt.Errorf("ipaddr: announcing %s: %w", a, err)
	}
	defer c.Close()
	if deadline, ok := ctx.Deadline(); ok {
		if err := c.SetWriteDeadline(deadline); err != nil {
			return fmt.Errorf("ipaddr: announcing %s: %w", a, err)
		}
	}
	p, err := gratuitousARP(attrs.HardwareAddr, a.Prefix.Addr())
	if err != nil {
		return fmt.Errorf("ipaddr: announcing %s: %w", a, err)
	}
	for i := range n.opts.ARPCount {
		if i > 0 {
			if err := sleep(ctx, n.opts.ARPInterval); err != nil {
				return fmt.Errorf("ipaddr: announcing %s: %w", a, err)
			}
		}
		err := c.WriteTo(p, ethernet.Broadcast)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = context.DeadlineExceeded // the write deadline is ctx's
		}
		if err != nil {
			return fmt.Errorf("ipaddr: announcing %s: %w", a, err)
		}
	}
	return nil
}

// usesARP reports whether the interface with attrs resolves addresses with ARP over Ethernet.
func usesARP(attrs *netlink.LinkAttrs) bool {
	return len(attrs.HardwareAddr) == 6 && attrs.Flags&net.FlagLoopback == 0 &&
		attrs.RawFlags&syscall.IFF_NOARP == 0
}

// gratuitousARP returns the ARP Announcement of ip by the interface with hardware address hw.
func gratuitousARP(hw net.HardwareAddr, ip netip.Addr) (*arp.Packet, error) {
	unknown := make(net.HardwareAddr, len(hw)) // RFC 5227: the target hardware address is ignored and zero
	return arp.NewPacket(arp.OperationRequest, hw, ip, unknown, ip)
}

// sleep waits for d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RetryDump calls dump again while the kernel reports that its answer may be inconsistent
// because the list changed during the dump.
func RetryDump[T any](dump func() ([]T, error)) ([]T, error) {
	var err error
	for range dumpTries {
		var out []T
		if out, err = dump(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return nil, err
}

// ToNetlink returns p as netlink's address.
func ToNetlink(p netip.Prefix) *netlink.Addr {
	ip := p.Addr()
	return &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(p.Bits(), ip.BitLen())}}
}

// FromNetlink returns n as a prefix, with an IPv4 address in its 4-byte form.
func FromNetlink(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	ip = ip.Unmap()
	ones, bits := n.Mask.Size()
	switch {
	case !ok:
		return netip.Prefix{}, false
	case ip.Is4() && bits == 128: // an IPv4 address with an IPv4-mapped IPv6 mask
		ones -= 96
	case ip.Is4() && bits == 32, ip.Is6() && bits == 128:
	default: // a mask that does not fit the address, or is not a prefix
		return netip.Prefix{}, false
	}
	p := netip.PrefixFrom(ip, ones)
	return p, p.IsValid()
}
