// Package ipaddr is the host side of the ipAddress resource type, Wolfpack's counterpart of the
// IP Address resource of Microsoft Cluster Server: the node agent on a group's owner node adds the
// floating address to an interface, announces it so that neighbours forget the previous owner's
// hardware address, checks that it is still there, and removes it when the resource goes offline
// or the node fails itself.
//
// Manager is what the agent uses; Netlink is the implementation for a Linux host and Fake is one
// for other packages' unit tests.
package ipaddr

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
)

// Address is a floating address on one interface.
type Address struct {
	// Interface is the name of the interface that holds the address, such as "eth0".
	Interface string
	// Prefix is the address with its prefix length, such as 192.0.2.10/24.
	Prefix netip.Prefix
}

// String returns the address as "192.0.2.10/24 on eth0".
func (a Address) String() string {
	return fmt.Sprintf("%s on %s", a.Prefix, a.Interface)
}

// Validate reports why a cannot be added to a host, or nil when it can.
func (a Address) Validate() error {
	switch ip := a.Prefix.Addr(); {
	case a.Interface == "":
		return fmt.Errorf("ipaddr: %s: no interface", a.Prefix)
	case !a.Prefix.IsValid():
		return fmt.Errorf("ipaddr: invalid prefix %s on %q", a.Prefix, a.Interface)
	case ip.Is4In6():
		return fmt.Errorf("ipaddr: %s: IPv4-mapped IPv6 address, use the IPv4 form", a)
	case ip.IsUnspecified(), ip.IsMulticast():
		return fmt.Errorf("ipaddr: %s: not a unicast address", a)
	}
	return nil
}

// Manager adds, checks and removes floating addresses on this host.
type Manager interface {
	// Add adds a to its interface and announces it to the link. It is idempotent: an address that
	// is already there is announced again.
	Add(ctx context.Context, a Address) error
	// Remove removes a from its interface. It is idempotent: an address that is not there, or
	// whose interface no longer exists, is already removed.
	Remove(ctx context.Context, a Address) error
	// Present reports whether a is on its interface, with its prefix length. A missing interface
	// is an error that matches ErrInterfaceNotFound.
	Present(a Address) (bool, error)
	// InterfaceFor returns the name of the interface that holds an address in network, such as
	// the interface of the first Public heartbeat network. When several do, it returns the one
	// with the lowest index. None is an error that matches ErrNoInterface.
	InterfaceFor(network netip.Prefix) (string, error)
}

// ErrInterfaceNotFound is matched (with errors.Is) by the errors about a missing interface.
var ErrInterfaceNotFound = errors.New("not found")

// ErrNoInterface is matched (with errors.Is) by InterfaceFor's error when no interface holds an
// address in the network.
var ErrNoInterface = errors.New("no interface holds an address in the network")

// interfaceNotFound is the error for a missing interface, such as `ipaddr: interface "eth9" not
// found (adding 192.0.2.10/24)`.
func interfaceNotFound(name, doing string) error {
	return fmt.Errorf("ipaddr: interface %q %w (%s)", name, ErrInterfaceNotFound, doing)
}

// noInterface is InterfaceFor's error when no interface holds an address in network.
func noInterface(network netip.Prefix) error {
	return fmt.Errorf("ipaddr: %s: %w", network.Masked(), ErrNoInterface)
}

// link is one interface and the addresses it holds.
type link struct {
	name  string
	addrs []netip.Prefix
}

// interfaceFor returns the first of links that holds an address in network.
func interfaceFor(links []link, network netip.Prefix) (string, error) {
	if !network.IsValid() {
		return "", fmt.Errorf("ipaddr: invalid network %s", network)
	}
	network = network.Masked()
	for _, l := range links {
		for _, p := range l.addrs {
			if network.Contains(p.Addr()) {
				return l.name, nil
			}
		}
	}
	return "", noInterface(network)
}
