package freeport

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
)

func TestTCPAddr(t *testing.T) {
	addr := TCPAddr(t)
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	_ = l.Close()
}

func TestUDP(t *testing.T) {
	loopbacks := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}
	for _, addrs := range [][]netip.Addr{nil, loopbacks} {
		port := UDP(t, addrs...)
		if len(addrs) == 0 {
			addrs = []netip.Addr{netip.IPv4Unspecified()}
		}
		for _, a := range addrs {
			c, err := (&net.ListenConfig{}).ListenPacket(context.Background(), "udp", net.JoinHostPort(a.String(), strconv.Itoa(port)))
			if err != nil {
				t.Fatalf("port %d on %s: %v", port, a, err)
			}
			_ = c.Close()
		}
	}
}
