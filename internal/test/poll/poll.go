// Package poll is how tests wait: until a condition holds (Wait, WaitEvery, and Until for code
// that reports an error rather than failing a test), or while one must keep holding
// (Throughout). It polls with k8s.io/apimachinery's wait.
package poll

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Interval is how often Wait polls.
const Interval = 200 * time.Millisecond

// Until calls check at once and then every interval until it returns nil. It returns nil then,
// and otherwise, once timeout has passed or ctx is done, an error that names what with check's
// last error. check's context ends with the timeout.
func Until(ctx context.Context, what string, timeout, interval time.Duration, check func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(ctx context.Context) (bool, error) {
		last = check(ctx)
		return last == nil, nil
	})
	switch {
	case err == nil:
		return nil
	case last == nil:
		return fmt.Errorf("%s: %w", what, err)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w; the last check: %w", what, ctx.Err(), last)
	}
	return fmt.Errorf("%s: still failing after %s: %w", what, timeout, last)
}

// Wait polls check every Interval until it returns nil, and fails the test with check's last
// error when timeout passes first.
func Wait(tb testing.TB, what string, timeout time.Duration, check func() error) {
	tb.Helper()
	WaitEvery(tb, what, timeout, Interval, check)
}

// WaitEvery is Wait polling every interval: more often where a test must see a state that lasts
// only a moment, less where a check is costly.
func WaitEvery(tb testing.TB, what string, timeout, interval time.Duration, check func() error) {
	tb.Helper()
	if err := Until(context.Background(), what, timeout, interval, func(context.Context) error { return check() }); err != nil {
		tb.Fatal(err)
	}
}

// Throughout calls check at once and then every interval for d, and fails the test at its first
// error: for what must keep holding, such as nothing moving while only one link is cut.
func Throughout(tb testing.TB, what string, d, interval time.Duration, check func() error) {
	tb.Helper()
	var failed error
	_ = wait.PollUntilContextTimeout(context.Background(), interval, d, true, func(context.Context) (bool, error) {
		failed = check()
		return failed != nil, nil
	})
	if failed != nil {
		tb.Fatalf("%s: %v", what, failed)
	}
}
