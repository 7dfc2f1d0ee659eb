// Package netsim gives each node of an end-to-end test a Linux network namespace of its own,
// wired to networks that the test controls, so that the node agents run as real processes whose
// heartbeats really cross a network, and a test partitions nodes by pulling a cable rather than
// by asking the code under test to pretend.
//
// # Layout
//
// A Net has an ID (Options.ID, such as 4 hex digits) that is part of every name it makes, so
// that two Nets, or a Net and the leftovers of a crashed run, never collide; Remove deletes a
// Net's leftovers by its ID, and New does so first. Node i (Options.Nodes[i]) gets:
//
//	namespace  wp-<ID>-<node>, bind-mounted at /run/netns/wp-<ID>-<node> by `ip netns add`; lo up
//
//	network  bridge   veth end of node i  its peer, in the namespace  range
//	mgmt     wpm<ID>  wpm<ID>-<i>          mgmt0                       10.210.<k>.0/24
//	public   wpu<ID>  wpu<ID>-<i>          pub0                        10.211.<k>.0/24
//	private  wpr<ID>  wpr<ID>-<i>          priv0                       10.212.<k>.0/24
//
// Every network is a Linux bridge on the host with one port per node: the host's end of a veth
// pair whose peer is the node's interface, with the node's address .<11+i>. The host holds
// .1 on the management bridge only (HostIP); the private and public bridges carry no host
// address, so heartbeats go between nodes only. Addresses .50 to .254 (FirstFree) are never
// given out, for floating addresses. k is the third octet: the one the ID hashes to, or the next
// one whose ranges no address or route of the host overlaps. No namespace has a default route:
// a node reaches its networks' neighbours and, through mgmt0, the host.
//
// Cut takes a node off a network the way a pulled cable does: it sets the host end of the node's
// veth down, so the node's interface stays up with its address but loses its carrier
// (NO-CARRIER): nobody on that network hears the node, nor the node anybody, and the node's
// sends there still succeed, the datagrams vanishing. Restore plugs it back in.
//
// # Why a separate management link
//
// The agents renew their Leases with the API server, and the tests start, probe and stop them;
// neither may depend on the heartbeat networks that a test cuts. The management network is that
// path: the host's address on it (HostIP) is where the API server listens (see
// cluster.Options.ExtraAPIAddresses), and a node's mgmt address is where the host reaches the
// node's endpoints. Its bridge ports are isolated (the bridge port flag "isolated"): a node
// reaches the host through it but no other node, so that it is no back door between nodes, and
// cutting a node's private and public links partitions the node for real. Cut works on mgmt too,
// to take a node off the API server; nothing here does so by itself.
//
// # Processes in a namespace
//
// Command runs a program as `nsenter --net=/run/netns/wp-<ID>-<node> -- program args...`.
// nsenter enters the network namespace only, and execs the program, so the pid is the program's
// and signals reach it directly. The program keeps the host's mount namespace: /proc/net and
// netlink show the node's interfaces, but /sys/class/net shows the host's, since sysfs was
// mounted in the host's namespace. A namespace lives on, with its interfaces, while a process
// runs in it, even after Close; so stop the processes first.
package netsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Options configure New.
type Options struct {
	// ID is a short suffix, unique among the Nets on this machine, for the names of the
	// namespaces, bridges and veths: 1 to 8 lower-case letters or digits, such as 4 hex digits.
	ID string
	// Nodes are the nodes' names, each a DNS label; at most 39.
	Nodes []string
	// Log receives one line per step; nil discards them.
	Log io.Writer
}

// Net is the nodes' namespaces and networks. Its methods may be called concurrently.
type Net struct {
	id    string
	nodes []string
	hosts map[string]byte // the host part of each node's addresses
	k     byte            // the third octet of the ranges
	log   io.Writer
}

// Available returns nil when this process can make network namespaces, veth pairs and bridges,
// and run `ip` and nsenter; else the reason.
func Available() error {
	for _, bin := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("netsim: %w", err)
		}
	}
	if _, err := ip("netns", "list"); err != nil {
		return fmt.Errorf("netsim: %w", err)
	}
	if err := probe(); err != nil {
		return fmt.Errorf("netsim: %w (uid %d: namespaces, veths and bridges need CAP_SYS_ADMIN and CAP_NET_ADMIN)", err, os.Geteuid())
	}
	return nil
}

// New makes the namespaces and networks, after removing any leftovers of a Net with the same
// ID. When it fails, it removes what it made.
func New(o Options) (*Net, error) {
	if err := validate(o); err != nil {
		return nil, err
	}
	n := &Net{id: o.ID, nodes: slices.Clone(o.Nodes), hosts: map[string]byte{}, log: o.Log}
	for i, node := range n.nodes {
		n.hosts[node] = byte(firstNodeHost + i)
	}
	if n.log == nil {
		n.log = io.Discard
	}
	if err := remove(n.id, n.log); err != nil {
		return nil, fmt.Errorf("netsim: removing the leftovers of %s: %w", n.id, err)
	}
	used, err := hostPrefixes()
	if err != nil {
		return nil, fmt.Errorf("netsim: %w", err)
	}
	if n.k, err = pickThirdOctet(n.id, used); err != nil {
		return nil, err
	}
	if err := n.build(); err != nil {
		return nil, errors.Join(fmt.Errorf("netsim: %w", err), n.Close())
	}
	n.logf("made %d namespaces wp-%s-*; mgmt %s (host %s), public %s, private %s", len(n.nodes), n.id,
		n.CIDR(Mgmt), n.HostIP(), n.CIDR(Public), n.CIDR(Private))
	warnBridgeNetfilter(n.log)
	return n, nil
}

// build makes the bridges, then each node's namespace and links.
func (n *Net) build() error {
	for _, nw := range networks {
		var addr netip.Prefix
		if nw.name == Mgmt {
			addr = netip.PrefixFrom(n.HostIP(), 24)
		}
		if err := makeBridge(bridgeName(n.id, nw), addr); err != nil {
			return fmt.Errorf("network %s: %w", nw.name, err)
		}
	}
	for i, node := range n.nodes {
		if err := n.makeNode(i, node); err != nil {
			return fmt.Errorf("node %s: %w", node, err)
		}
	}
	return nil
}

func (n *Net) makeNode(i int, node string) error {
	ns := namespaceName(n.id, node)
	if _, err := ip("netns", "add", ns); err != nil {
		return err
	}
	if err := setLoopbackUp(ns); err != nil {
		return err
	}
	for _, nw := range networks {
		l := link{
			namespace: ns,
			bridge:    bridgeName(n.id, nw),
			hostEnd:   vethName(n.id, nw, i),
			iface:     nw.iface,
			addr:      netip.PrefixFrom(n.IP(node, nw.name), 24),
			isolated:  nw.name == Mgmt,
		}
		if err := l.create(); err != nil {
			return fmt.Errorf("network %s: %w", nw.name, err)
		}
	}
	return nil
}

// Attach returns the Net with the given ID and nodes that New made, in this process or another,
// such as the process that leaves `make demo` running. Its log is discarded.
func Attach(id string, nodes []string) (*Net, error) {
	if err := validate(Options{ID: id, Nodes: nodes}); err != nil {
		return nil, err
	}
	n := &Net{id: id, nodes: slices.Clone(nodes), hosts: map[string]byte{}, log: io.Discard}
	for i, node := range n.nodes {
		n.hosts[node] = byte(firstNodeHost + i)
	}
	host, err := bridgeAddress(bridgeName(id, networks[0]))
	if err != nil {
		return nil, fmt.Errorf("netsim: attaching to %s: %w", id, err)
	}
	n.k = host.As4()[2]
	if n.HostIP() != host {
		return nil, fmt.Errorf("netsim: attaching to %s: its management bridge has %s, not a host address of this package", id, host)
	}
	return n, nil
}

// Close deletes the namespaces, bridges and veths. It may be called again, and after a failed
// New. A namespace in which a process still runs lives on until the process exits (Close logs
// its pids), but without its links to the networks.
func (n *Net) Close() error {
	if err := remove(n.id, n.log); err != nil {
		return fmt.Errorf("netsim: closing %s: %w", n.id, err)
	}
	return nil
}

// Remove deletes the namespaces, bridges and veths of the Net with the given ID, such as one
// that a crashed run left behind. It is Close for a Net this process no longer has.
func Remove(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("netsim: ID %q: want 1 to 8 lower-case letters or digits", id)
	}
	if err := remove(id, io.Discard); err != nil {
		return fmt.Errorf("netsim: removing %s: %w", id, err)
	}
	return nil
}

// remove deletes the host ends of the veths (which deletes their pairs, even in a namespace that
// a process keeps alive), then the bridges, then the namespaces.
func remove(id string, log io.Writer) error {
	links, err := hostLinks()
	if err != nil {
		return err
	}
	// The veths' names are their bridge's and a suffix: longer names first.
	slices.SortFunc(links, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, name := range links {
		if ours(id, name) {
			if err := deleteLink(name); err != nil {
				errs = append(errs, err)
				continue
			}
			logf(log, "deleted %s", name)
		}
	}
	nss, err := namespaces()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, ns := range nss {
		if strings.HasPrefix(ns, namespacePrefix(id)) {
			errs = append(errs, removeNamespace(ns, log))
		}
	}
	return errors.Join(errs...)
}

func removeNamespace(ns string, log io.Writer) error {
	if pids, err := ip("netns", "pids", ns); err == nil && strings.TrimSpace(pids) != "" {
		logf(log, "processes still run in namespace %s, which lives on until they exit: pids %s",
			ns, strings.Join(strings.Fields(pids), " "))
	}
	if _, err := ip("netns", "del", ns); err != nil {
		return err
	}
	logf(log, "deleted namespace %s", ns)
	return nil
}

// HostIP is the host's address on the management network, where the API server must listen
// for the nodes to reach it.
func (n *Net) HostIP() netip.Addr { return hostAddr(networks[0], n.k, 1) }

// IP is node's address on network (Private, Public or Mgmt); the zero Addr for an unknown node
// or network.
func (n *Net) IP(node, network string) netip.Addr {
	nw, err := networkNamed(network)
	host, ok := n.hosts[node]
	if err != nil || !ok {
		return netip.Addr{}
	}
	return hostAddr(nw, n.k, host)
}

// CIDR is network's range, a /24; the zero Prefix for an unknown network.
func (n *Net) CIDR(network string) netip.Prefix {
	nw, err := networkNamed(network)
	if err != nil {
		return netip.Prefix{}
	}
	return cidr(nw, n.k)
}

// Interface is the name of network's interface in every node's namespace: priv0, pub0 or mgmt0;
// "" for an unknown network.
func (n *Net) Interface(network string) string {
	nw, err := networkNamed(network)
	if err != nil {
		return ""
	}
	return nw.iface
}

// Namespace is the name of node's network namespace, as `ip netns` knows it.
func (n *Net) Namespace(node string) string { return namespaceName(n.id, node) }

// NamespacePath is the file that holds node's network namespace, for nsenter --net or
// netns.GetFromPath.
func (n *Net) NamespacePath(node string) string { return filepath.Join(runDir, n.Namespace(node)) }

// Command returns the command that runs name with args in node's network namespace, through
// nsenter, which execs it: the pid is the program's, and the context's cancellation kills the
// program itself.
func (n *Net) Command(ctx context.Context, node, name string, args ...string) *exec.Cmd {
	argv := append([]string{"--net=" + n.NamespacePath(node), "--", name}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", argv...)
	if !slices.Contains(n.nodes, node) {
		cmd.Err = fmt.Errorf("netsim: no node %q", node)
	}
	return cmd
}

// Cut takes node off network: the host end of its veth goes down, so that nobody on the network
// hears the node any more, nor the node anybody.
func (n *Net) Cut(node, network string) error { return n.plug(node, network, false) }

// Restore puts node back on network after Cut. The link forwards at once, but a node that sent
// to a neighbour while cut may wait up to a second (the kernel's ARP retransmit time) for its
// next ARP request before its datagrams flow again: the carrier loss flushed its neighbour
// entries, and the resolution it started is still retrying.
func (n *Net) Restore(node, network string) error { return n.plug(node, network, true) }

func (n *Net) plug(node, network string, up bool) error {
	doing, state := "cutting", "down"
	if up {
		doing, state = "restoring", "up"
	}
	nw, err := networkNamed(network)
	if err != nil {
		return err
	}
	i := slices.Index(n.nodes, node)
	if i < 0 {
		return fmt.Errorf("netsim: %s node %q's %s link: no such node", doing, node, network)
	}
	veth := vethName(n.id, nw, i)
	if err := setLinkUp(veth, up); err != nil {
		return fmt.Errorf("netsim: %s node %s's %s link (%s): %w", doing, node, network, veth, err)
	}
	n.logf("%s node %s's %s link: %s %s", doing, node, network, veth, state)
	return nil
}

// Addresses lists the addresses on node's interfaces (lo included), to see a floating address
// come and go; nil when they cannot be read, the reason going to the log (see ListAddresses).
func (n *Net) Addresses(node string) []netip.Prefix {
	addrs, err := n.ListAddresses(node)
	if err != nil {
		n.logf("%v", err)
	}
	return addrs
}

// ListAddresses is Addresses with its error.
func (n *Net) ListAddresses(node string) ([]netip.Prefix, error) {
	if !slices.Contains(n.nodes, node) {
		return nil, fmt.Errorf("netsim: no node %q", node)
	}
	addrs, err := addresses(n.Namespace(node))
	if err != nil {
		return nil, fmt.Errorf("netsim: node %s: %w", node, err)
	}
	return addrs, nil
}

// Reset removes from node's interfaces every IPv4 address that New did not give it, such as a
// floating address its agent added, as a reboot does.
func (n *Net) Reset(node string) error {
	if !slices.Contains(n.nodes, node) {
		return fmt.Errorf("netsim: no node %q", node)
	}
	keep := make([]netip.Prefix, 0, len(networks))
	for _, nw := range networks {
		keep = append(keep, netip.PrefixFrom(n.IP(node, nw.name), 24))
	}
	removed, err := removeAddresses(n.Namespace(node), keep)
	if err != nil {
		return fmt.Errorf("netsim: resetting node %s: %w", node, err)
	}
	if len(removed) > 0 {
		n.logf("reset node %s: removed %v", node, removed)
	}
	return nil
}

// warnBridgeNetfilter logs when bridged traffic passes the host's iptables: br_netfilter is
// loaded with bridge-nf-call-iptables=1 (its default) and the host has legacy iptables tables,
// whose FORWARD rules could drop the heartbeats. nftables rules, which could too, are not looked
// for. netsim leaves the sysctl, which is the host's, alone: with no rules, nothing is dropped.
func warnBridgeNetfilter(log io.Writer) {
	call, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	if err != nil || strings.TrimSpace(string(call)) != "1" {
		return
	}
	tables, err := os.ReadFile("/proc/net/ip_tables_names")
	if err != nil || strings.TrimSpace(string(tables)) == "" {
		return
	}
	logf(log, "bridge-nf-call-iptables is 1 and iptables has tables (%s): the FORWARD chain sees the bridged heartbeats and must accept them",
		strings.Join(strings.Fields(string(tables)), ", "))
}

func (n *Net) logf(format string, args ...any) { logf(n.log, format, args...) }

func logf(log io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(log, "netsim: "+format+"\n", args...)
}
