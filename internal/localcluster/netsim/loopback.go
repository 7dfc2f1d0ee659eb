package netsim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os/exec"
	"slices"
)

// Network is how the nodes of an end-to-end test are wired: Net, a network namespace per node,
// or Loopback, the fallback where namespaces cannot be made.
type Network interface {
	// HostIP is where a node reaches the host, and so the API server.
	HostIP() netip.Addr
	// IP is node's address on network (Private, Public or Mgmt).
	IP(node, network string) netip.Addr
	// CIDR is network's range.
	CIDR(network string) netip.Prefix
	// Command runs a program as node.
	Command(ctx context.Context, node, name string, args ...string) *exec.Cmd
	// Cut takes node off network, and Restore puts it back; both fail with ErrNoLinks where
	// the nodes share one network.
	Cut(node, network string) error
	Restore(node, network string) error
	// Addresses lists node's addresses.
	Addresses(node string) []netip.Prefix
	// Reset removes from node the addresses its programs added, as a reboot does.
	Reset(node string) error
	// Close removes what New made.
	Close() error
}

var (
	_ Network = (*Net)(nil)
	_ Network = (*Loopback)(nil)
)

// ErrNoLinks is the error of Loopback's Cut and Restore.
var ErrNoLinks = errors.New("netsim: the nodes share the host's network (no network namespaces here), so no link of one node can be cut")

// Loopback is the fallback where network namespaces cannot be made (see Available): every node
// runs in the host's network namespace, and has addresses of its own in 127.0.0.0/8, all of
// which Linux routes to lo, so that any process binds them without privilege and without
// adding them anywhere. Node i's address on a network is 127.<octet>.<k>.<11+i>, with the
// octets of Net (210 mgmt, 211 public, 212 private) and k the one the ID hashes to.
//
// Heartbeats really travel between the nodes' addresses, but nothing can be cut: a node is
// partitioned only by stopping its programs, as a crash does. Nor can a node add a floating
// address of its own, since every node would see it on the one lo.
type Loopback struct {
	nodes []string
	hosts map[string]byte
	k     byte
}

// NewLoopback gives each of o.Nodes its loopback addresses. It makes nothing, so it needs no
// privilege; o.Log is unused.
func NewLoopback(o Options) (*Loopback, error) {
	if err := validate(o); err != nil {
		return nil, err
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(o.ID))
	l := &Loopback{nodes: slices.Clone(o.Nodes), hosts: map[string]byte{}, k: h.Sum(nil)[3]}
	for i, node := range l.nodes {
		l.hosts[node] = byte(firstNodeHost + i)
	}
	return l, nil
}

// HostIP is 127.0.0.1, where the API server listens anyway.
func (l *Loopback) HostIP() netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, 1}) }

// IP is node's address on network; the zero Addr for an unknown node or network.
func (l *Loopback) IP(node, network string) netip.Addr {
	nw, err := networkNamed(network)
	host, ok := l.hosts[node]
	if err != nil || !ok {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte{127, nw.octet, l.k, host})
}

// CIDR is network's range, a /24 of 127.0.0.0/8; the zero Prefix for an unknown network.
func (l *Loopback) CIDR(network string) netip.Prefix {
	nw, err := networkNamed(network)
	if err != nil {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, nw.octet, l.k, 0}), 24)
}

// Command runs name with args on the host.
func (l *Loopback) Command(ctx context.Context, node, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	if !slices.Contains(l.nodes, node) {
		cmd.Err = fmt.Errorf("netsim: no node %q", node)
	}
	return cmd
}

// Cut fails with ErrNoLinks.
func (l *Loopback) Cut(node, network string) error {
	return fmt.Errorf("cutting node %s's %s link: %w", node, network, ErrNoLinks)
}

// Restore fails with ErrNoLinks.
func (l *Loopback) Restore(node, network string) error {
	return fmt.Errorf("restoring node %s's %s link: %w", node, network, ErrNoLinks)
}

// Addresses are node's three addresses, each with its network's /24.
func (l *Loopback) Addresses(node string) []netip.Prefix {
	if !slices.Contains(l.nodes, node) {
		return nil
	}
	out := make([]netip.Prefix, 0, len(networks))
	for _, nw := range networks {
		out = append(out, netip.PrefixFrom(l.IP(node, nw.name), 24))
	}
	return out
}

// Reset does nothing: no program of a node adds addresses here.
func (l *Loopback) Reset(string) error { return nil }

// Close does nothing: NewLoopback made nothing.
func (l *Loopback) Close() error { return nil }
