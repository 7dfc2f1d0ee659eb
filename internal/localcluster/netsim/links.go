package netsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/wolfpack-ha/wolfpack/internal/ipaddr"
)

// commandTimeout bounds one `ip` command.
const commandTimeout = 30 * time.Second

// ip runs `ip args...` and returns its output; its error names the command and ends with the
// output.
func ip(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// inNamespace calls f with a netlink handle in the named namespace.
func inNamespace(name string, f func(h *netlink.Handle) error) error {
	ns, err := netns.GetFromPath(filepath.Join(runDir, name))
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w", name, err)
	}
	defer func() { _ = ns.Close() }()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in namespace %s: %w", name, err)
	}
	defer h.Close()
	return f(h)
}

// makeBridge makes the bridge called name, gives it addr unless addr is invalid, and sets it up.
func makeBridge(name string, addr netip.Prefix) error {
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		return fmt.Errorf("creating bridge %s: %w", name, err)
	}
	br, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	if addr.IsValid() {
		if err := netlink.AddrAdd(br, ipaddr.ToNetlink(addr)); err != nil {
			return fmt.Errorf("adding %s to bridge %s: %w", addr, name, err)
		}
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("setting bridge %s up: %w", name, err)
	}
	return nil
}

// link is one node's link to one network: a veth pair from a port of the bridge to an
// interface in the node's namespace.
type link struct {
	namespace string       // the node's namespace
	bridge    string       // the bridge on the host
	hostEnd   string       // the veth end on the host, a port of the bridge
	iface     string       // the veth end in the namespace
	addr      netip.Prefix // the node's address on iface
	isolated  bool         // whether the port may forward only to the bridge, not to other ports
}

// create makes the veth pair with its peer already in the namespace, makes the host end a port
// of the bridge, and sets both up.
func (l link) create() error {
	ns, err := netns.GetFromPath(filepath.Join(runDir, l.namespace))
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w", l.namespace, err)
	}
	defer func() { _ = ns.Close() }()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.hostEnd}, PeerName: l.iface, PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("creating veth %s (peer %s in %s): %w", l.hostEnd, l.iface, l.namespace, err)
	}
	if err := l.plugIn(); err != nil {
		return err
	}
	return inNamespace(l.namespace, func(h *netlink.Handle) error {
		in, err := h.LinkByName(l.iface)
		if err != nil {
			return fmt.Errorf("%s in %s: %w", l.iface, l.namespace, err)
		}
		if err := h.AddrAdd(in, ipaddr.ToNetlink(l.addr)); err != nil {
			return fmt.Errorf("adding %s to %s in %s: %w", l.addr, l.iface, l.namespace, err)
		}
		if err := h.LinkSetUp(in); err != nil {
			return fmt.Errorf("setting %s in %s up: %w", l.iface, l.namespace, err)
		}
		return nil
	})
}

// plugIn makes the host end a port of the bridge and sets it up.
func (l link) plugIn() error {
	end, err := netlink.LinkByName(l.hostEnd)
	if err != nil {
		return fmt.Errorf("veth %s: %w", l.hostEnd, err)
	}
	br, err := netlink.LinkByName(l.bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", l.bridge, err)
	}
	if err := netlink.LinkSetMaster(end, br); err != nil {
		return fmt.Errorf("adding %s to bridge %s: %w", l.hostEnd, l.bridge, err)
	}
	if l.isolated {
		if err := netlink.LinkSetIsolated(end, true); err != nil {
			return fmt.Errorf("isolating port %s of bridge %s: %w", l.hostEnd, l.bridge, err)
		}
	}
	if err := netlink.LinkSetUp(end); err != nil {
		return fmt.Errorf("setting %s up: %w", l.hostEnd, err)
	}
	return nil
}

// setLinkUp sets the host interface called name up or down.
func setLinkUp(name string, up bool) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	if up {
		return netlink.LinkSetUp(l)
	}
	return netlink.LinkSetDown(l)
}

// deleteLink deletes the host interface called name, if it is still there: deleting a bridge
// or one end of a veth pair can take others with it.
func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil
	}
	if err == nil {
		err = netlink.LinkDel(l)
	}
	if err != nil && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	return nil
}

// setLoopbackUp sets lo up in the named namespace.
func setLoopbackUp(namespace string) error {
	return inNamespace(namespace, func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("lo in %s: %w", namespace, err)
		}
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("setting lo in %s up: %w", namespace, err)
		}
		return nil
	})
}

// addresses lists the addresses on every interface of the named namespace.
func addresses(namespace string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	err := inNamespace(namespace, func(h *netlink.Handle) error {
		addrs, err := ipaddr.RetryDump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
		if err != nil {
			return fmt.Errorf("listing the addresses in %s: %w", namespace, err)
		}
		for _, a := range addrs {
			if p, ok := ipaddr.FromNetlink(a.IPNet); ok {
				out = append(out, p)
			}
		}
		return nil
	})
	return out, err
}

// removeAddresses deletes from the named namespace's interfaces every IPv4 address outside lo
// that keep does not list, and returns those it deleted.
func removeAddresses(namespace string, keep []netip.Prefix) ([]netip.Prefix, error) {
	var removed []netip.Prefix
	err := inNamespace(namespace, func(h *netlink.Handle) error {
		addrs, err := ipaddr.RetryDump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_V4) })
		if err != nil {
			return fmt.Errorf("listing the addresses in %s: %w", namespace, err)
		}
		for _, a := range addrs {
			p, ok := ipaddr.FromNetlink(a.IPNet)
			if !ok || p.Addr().IsLoopback() || slices.Contains(keep, p) {
				continue
			}
			link, err := h.LinkByIndex(a.LinkIndex)
			if err != nil {
				return fmt.Errorf("the interface of %s in %s: %w", p, namespace, err)
			}
			if err := h.AddrDel(link, &a); err != nil {
				return fmt.Errorf("removing %s from %s in %s: %w", p, link.Attrs().Name, namespace, err)
			}
			removed = append(removed, p)
		}
		return nil
	})
	return removed, err
}

// bridgeAddress is the IPv4 address of the host's bridge called name.
func bridgeAddress(name string) (netip.Addr, error) {
	br, err := netlink.LinkByName(name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bridge %s: %w", name, err)
	}
	addrs, err := ipaddr.RetryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(br, netlink.FAMILY_V4) })
	if err != nil {
		return netip.Addr{}, fmt.Errorf("listing the addresses of bridge %s: %w", name, err)
	}
	for _, a := range addrs {
		if p, ok := ipaddr.FromNetlink(a.IPNet); ok {
			return p.Addr(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("bridge %s has no IPv4 address", name)
}

// hostPrefixes are the ranges of the host's IPv4 addresses and routes, except the default route.
func hostPrefixes() ([]netip.Prefix, error) {
	addrs, err := ipaddr.RetryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return nil, fmt.Errorf("listing the host's addresses: %w", err)
	}
	routes, err := ipaddr.RetryDump(func() ([]netlink.Route, error) { return netlink.RouteList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return nil, fmt.Errorf("listing the host's routes: %w", err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if p, ok := ipaddr.FromNetlink(a.IPNet); ok {
			out = append(out, p.Masked())
		}
	}
	for _, r := range routes {
		if p, ok := ipaddr.FromNetlink(r.Dst); ok && p.Bits() > 0 {
			out = append(out, p)
		}
	}
	return out, nil
}

// hostLinks are the names of the host's interfaces.
func hostLinks() ([]string, error) {
	links, err := ipaddr.RetryDump(netlink.LinkList)
	if err != nil {
		return nil, fmt.Errorf("listing the host's interfaces: %w", err)
	}
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	return names, nil
}

// namespaces are the names of the named network namespaces (the files in /run/netns).
func namespaces() ([]string, error) {
	entries, err := os.ReadDir(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// probe makes a bridge and a veth pair in a new, unnamed namespace on a thread of its own,
// which ends with the goroutine: the kernel frees the namespace once nothing holds it.
func probe() error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread, left in the new namespace, ends
		ns, err := netns.New()
		if err != nil {
			errc <- fmt.Errorf("creating a network namespace: %w", err)
			return
		}
		defer func() { _ = ns.Close() }()
		errc <- probeLinks(ns)
	}()
	return <-errc
}

func probeLinks(ns netns.NsHandle) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in a new namespace: %w", err)
	}
	defer h.Close()
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "probe-br"}}); err != nil {
		return fmt.Errorf("creating a bridge: %w", err)
	}
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "probe-a"}, PeerName: "probe-b"}); err != nil {
		return fmt.Errorf("creating a veth pair: %w", err)
	}
	return nil
}
