package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
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

// GetOK gets url, within 10 s, and wants 200 OK.
func GetOK(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
