package netsim_test

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wolfpack-ha/wolfpack/internal/localcluster/netsim"
)

// TestLoopback checks the fallback without privilege: distinct addresses for every node and
// network, each in its network's range; datagrams between two nodes' addresses; commands run
// on the host; and Cut and Restore failing with ErrNoLinks.
func TestLoopback(t *testing.T) {
	l, err := netsim.NewLoopback(netsim.Options{ID: newID(), Nodes: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]string{}
	for _, node := range []string{"a", "b"} {
		for _, network := range []string{netsim.Mgmt, netsim.Public, netsim.Private} {
			ip := l.IP(node, network)
			if !ip.IsLoopback() || !l.CIDR(network).Contains(ip) {
				t.Errorf("%s's %s address %s: want a loopback address in %s", node, network, ip, l.CIDR(network))
			}
			if other, dup := seen[ip]; dup {
				t.Errorf("%s's %s address %s is also %s", node, network, ip, other)
			}
			seen[ip] = node + "/" + network
		}
		if got := l.Addresses(node); len(got) != 3 || got[2].Addr() != l.IP(node, netsim.Private) {
			t.Errorf("Addresses(%s) = %v", node, got)
		}
	}
	if l.IP("z", netsim.Public).IsValid() || l.IP("a", "nope").IsValid() {
		t.Error("an unknown node or network has an address")
	}

	a := listenUDP(t, l.IP("a", netsim.Private))
	b := listenUDP(t, l.IP("b", netsim.Private))
	if _, err := a.WriteToUDPAddrPort([]byte("ping"), netip.AddrPortFrom(l.IP("b", netsim.Private), uint16(b.LocalAddr().(*net.UDPAddr).Port))); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	_ = b.SetReadDeadline(time.Now().Add(arrival))
	n, from, err := b.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "ping" || from.Addr() != l.IP("a", netsim.Private) {
		t.Errorf("b read %q from %s (%v); want ping from %s", buf[:n], from, err, l.IP("a", netsim.Private))
	}

	out, err := l.Command(t.Context(), "a", "echo", "on the host").Output()
	if err != nil || strings.TrimSpace(string(out)) != "on the host" {
		t.Errorf("Command: %q, %v", out, err)
	}
	if err := l.Command(t.Context(), "z", "true").Run(); err == nil {
		t.Error("Command for an unknown node ran")
	}
	if err := l.Cut("a", netsim.Private); !errors.Is(err, netsim.ErrNoLinks) {
		t.Errorf("Cut: %v, want ErrNoLinks", err)
	}
	if err := l.Restore("a", netsim.Private); !errors.Is(err, netsim.ErrNoLinks) {
		t.Errorf("Restore: %v, want ErrNoLinks", err)
	}
}

func listenUDP(t *testing.T, ip netip.Addr) *net.UDPConn {
	t.Helper()
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatalf("binding %s: %v", ip, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
