package poll

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

var errNotYet = errors.New("not yet")

func TestUntil(t *testing.T) {
	calls := 0
	err := Until(context.Background(), "the third call", time.Minute, time.Millisecond, func(context.Context) error {
		if calls++; calls < 3 {
			return errNotYet
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("Until = %v after %d calls, want nil after 3", err, calls)
	}
}

func TestUntilTimesOut(t *testing.T) {
	began := time.Now()
	err := Until(context.Background(), "never", 50*time.Millisecond, 10*time.Millisecond, func(context.Context) error { return errNotYet })
	if !errors.Is(err, errNotYet) || !strings.HasPrefix(err.Error(), "never: still failing after 50ms") {
		t.Errorf("Until = %v, want never: still failing after 50ms: not yet", err)
	}
	if took := time.Since(began); took < 50*time.Millisecond || took > 10*time.Second {
		t.Errorf("Until gave up after %s, want 50ms", took)
	}
}

func TestUntilContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	err := Until(ctx, "cancelled", time.Minute, time.Millisecond, func(context.Context) error {
		cancel()
		return errNotYet
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errNotYet) {
		t.Errorf("Until = %v, want context canceled with the last error", err)
	}
}

// recorder is a testing.TB that records a failure and ends its goroutine, as Fatal does.
type recorder struct {
	testing.TB
	failure string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatal(args ...any) {
	r.failure = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failure = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run runs f with a recorder in a goroutine of its own, and returns the failure, "" if none.
func run(f func(tb testing.TB)) string {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.failure
}

func TestWaitEvery(t *testing.T) {
	calls := 0
	if failure := run(func(tb testing.TB) {
		tb.Helper()
		WaitEvery(tb, "the second call", time.Minute, time.Millisecond, func() error {
			if calls++; calls < 2 {
				return errNotYet
			}
			return nil
		})
	}); failure != "" {
		t.Errorf("WaitEvery failed: %s", failure)
	}
	failure := run(func(tb testing.TB) {
		tb.Helper()
		WaitEvery(tb, "never", 20*time.Millisecond, time.Millisecond, func() error { return errNotYet })
	})
	if want := "never: still failing after 20ms: not yet"; failure != want {
		t.Errorf("WaitEvery failed with %q, want %q", failure, want)
	}
}

func TestThroughout(t *testing.T) {
	calls := 0
	if failure := run(func(tb testing.TB) {
		tb.Helper()
		Throughout(tb, "always", 30*time.Millisecond, 5*time.Millisecond, func() error { calls++; return nil })
	}); failure != "" || calls < 2 {
		t.Errorf("Throughout failed with %q after %d calls, want no failure after several", failure, calls)
	}
	calls = 0
	failure := run(func(tb testing.TB) {
		tb.Helper()
		Throughout(tb, "until the third call", time.Minute, time.Millisecond, func() error {
			if calls++; calls == 3 {
				return errors.New("it broke")
			}
			return nil
		})
	})
	if want := "until the third call: it broke"; failure != want || calls != 3 {
		t.Errorf("Throughout failed with %q after %d calls, want %q after 3", failure, calls, want)
	}
}
