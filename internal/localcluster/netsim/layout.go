package netsim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// The networks, by the names the API takes.
const (
	// Private is the private heartbeat network (MSCS's "private" or cluster-only network).
	Private = "private"
	// Public is the public heartbeat network, which also carries the floating addresses.
	Public = "public"
	// Mgmt is the management network, through which the nodes reach the API server on the host.
	Mgmt = "mgmt"
)

const (
	// runDir is where `ip netns add` bind-mounts a named namespace, and where nsenter finds it.
	runDir = "/run/netns"
	// firstNodeHost is the host part of the first node's address on each network; node i has
	// firstNodeHost+i.
	firstNodeHost = 11
	// maxNodes keeps the node addresses below FirstFree.
	maxNodes = FirstFree - firstNodeHost
	// FirstFree is the first host part that no node or host address takes on any network:
	// .50 to .254 are free for floating addresses.
	FirstFree = 50
)

// network is one of the three networks: its bridge on the host, its interface in every
// namespace, and its address range 10.<octet>.<k>.0/24, k chosen per Net.
type network struct {
	name   string
	iface  string // in every node's namespace
	letter string // in the names of the bridge and the host-side veths
	octet  byte   // the second octet of its range
}

var networks = []network{
	{name: Mgmt, iface: "mgmt0", letter: "m", octet: 210},
	{name: Public, iface: "pub0", letter: "u", octet: 211},
	{name: Private, iface: "priv0", letter: "r", octet: 212},
}

func networkNamed(name string) (network, error) {
	for _, nw := range networks {
		if nw.name == name {
			return nw, nil
		}
	}
	return network{}, fmt.Errorf("netsim: no network %q (want %s, %s or %s)", name, Private, Public, Mgmt)
}

var (
	idPattern   = regexp.MustCompile(`^[a-z0-9]{1,8}$`)
	nodePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)
)

func validate(o Options) error {
	if !idPattern.MatchString(o.ID) {
		return fmt.Errorf("netsim: ID %q: want 1 to 8 lower-case letters or digits", o.ID)
	}
	if len(o.Nodes) == 0 || len(o.Nodes) > maxNodes {
		return fmt.Errorf("netsim: %d nodes: want 1 to %d", len(o.Nodes), maxNodes)
	}
	seen := map[string]bool{}
	for _, node := range o.Nodes {
		if !nodePattern.MatchString(node) || seen[node] {
			return fmt.Errorf("netsim: node names must be distinct DNS labels: %q", node)
		}
		seen[node] = true
	}
	return nil
}

// namespaceName is the name of node's namespace: wp-<ID>-<node>. The ID has no dash, so the
// prefix wp-<ID>- is the ID's alone.
func namespaceName(id, node string) string { return namespacePrefix(id) + node }

func namespacePrefix(id string) string { return "wp-" + id + "-" }

// bridgeName is the name of nw's bridge on the host: wp<letter><ID>.
func bridgeName(id string, nw network) string { return "wp" + nw.letter + id }

// vethName is the name of the host end of node i's veth pair on nw: wp<letter><ID>-<i>, at
// most 15 characters (IFNAMSIZ-1) with an 8-character ID and two-digit i.
func vethName(id string, nw network, i int) string {
	return bridgeName(id, nw) + "-" + strconv.Itoa(i)
}

// ours tells whether the host interface called name is a bridge or veth of the Net with id.
func ours(id, name string) bool {
	for _, nw := range networks {
		b := bridgeName(id, nw)
		if name == b || strings.HasPrefix(name, b+"-") {
			return true
		}
	}
	return false
}

// cidr is nw's range when the Net's third octet is k.
func cidr(nw network, k byte) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, nw.octet, k, 0}), 24)
}

// hostAddr is the address host in nw's range.
func hostAddr(nw network, k, host byte) netip.Addr {
	return netip.AddrFrom4([4]byte{10, nw.octet, k, host})
}

// pickThirdOctet returns the k whose three ranges no prefix in used overlaps, trying first the
// one the ID hashes to, so that a Net's addresses usually depend on its ID alone while two Nets,
// or a leftover of a crashed run, never share a management range on the host.
func pickThirdOctet(id string, used []netip.Prefix) (byte, error) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	k := h.Sum(nil)[3]
	for range 256 {
		if !overlapsAny(k, used) {
			return k, nil
		}
		k++ // from 255 on to 0
	}
	return 0, errors.New("netsim: every range 10.210-212.<k>.0/24 overlaps an address or route of the host")
}

func overlapsAny(k byte, used []netip.Prefix) bool {
	for _, nw := range networks {
		for _, p := range used {
			if p.Overlaps(cidr(nw, k)) {
				return true
			}
		}
	}
	return false
}
