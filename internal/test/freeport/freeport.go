// Package freeport finds ports that are free at the moment, for the servers and sockets a test
// starts. A port found free can be taken by someone else before the test binds it; on a test
// machine that is rare enough.
package freeport

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
)

// TCPAddr is a TCP address on 127.0.0.1 that is free at the moment, such as 127.0.0.1:40123.
func TCPAddr(tb testing.TB) string {
	tb.Helper()
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// UDP is a UDP port that is free at the moment on every one of addrs, or on every IPv4 address
// (0.0.0.0) when there is none.
func UDP(tb testing.TB, addrs ...netip.Addr) int {
	tb.Helper()
	if len(addrs) == 0 {
		addrs = []netip.Addr{netip.IPv4Unspecified()}
	}
	var lc net.ListenConfig
	listen := func(a netip.Addr, port int) (net.PacketConn, error) {
		return lc.ListenPacket(context.Background(), "udp", net.JoinHostPort(a.String(), strconv.Itoa(port)))
	}
	for range 50 {
		first, err := listen(addrs[0], 0)
		if err != nil {
			tb.Fatalf("binding %s: %v", addrs[0], err)
		}
		port := first.LocalAddr().(*net.UDPAddr).Port
		conns, free := []net.PacketConn{first}, true
		for _, a := range addrs[1:] {
			c, err := listen(a, port)
			if err != nil {
				free = false
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			_ = c.Close()
		}
		if free {
			return port
		}
	}
	tb.Fatalf("no UDP port free on all of %v", addrs)
	return 0
}
