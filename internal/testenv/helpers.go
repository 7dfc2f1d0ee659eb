package testenv

import (
	"context"
	"net"
	"testing"
	"time"
)

// FreeTCPAddr is a TCP address on 127.0.0.1 that is free at the moment, for a server a test
// starts.
func FreeTCPAddr(tb testing.TB) string {
	tb.Helper()
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// WaitFor polls check every 200 ms until it returns nil, and fails the test with check's last
// error when timeout passes first.
func WaitFor(tb testing.TB, what string, timeout time.Duration, check func() error) {
	tb.Helper()
	Poll(tb, what, timeout, 200*time.Millisecond, check)
}

// Poll is WaitFor polling every interval: more often where a test must see a state that lasts
// only a moment.
func Poll(tb testing.TB, what string, timeout, interval time.Duration, check func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(interval)
	}
}
