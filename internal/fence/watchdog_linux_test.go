//go:build linux

package fence

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// fakeDevice returns the path of an empty regular file standing in for /dev/watchdog: writes
// land in it, and every watchdog ioctl fails with ENOTTY.
func fakeDevice(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "watchdog")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func written(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWatchdog(t *testing.T) {
	const (
		heartbeat = "heartbeat"
		fence     = "fence"
		closeOp   = "close"
	)
	for _, tc := range []struct {
		name string
		ops  []string
		// errs are the substrings the ops' errors must have, "" for none.
		errs []string
		want string // the bytes written to the device
	}{
		{name: "fed, then closed cleanly",
			ops: []string{heartbeat, heartbeat, heartbeat, closeOp}, errs: []string{"", "", "", ""},
			want: "\x00\x00\x00V"},
		{name: "closed at once",
			ops: []string{closeOp}, errs: []string{""}, want: "V"},
		{name: "fenced: no more feeding, no magic close",
			ops: []string{heartbeat, fence, heartbeat, closeOp}, errs: []string{"", "", "fenced", ""}, want: "\x00"},
		{name: "fenced twice",
			ops: []string{fence, fence, closeOp}, errs: []string{"", "", ""}, want: ""},
		{name: "fenced, closed, fenced again",
			ops: []string{heartbeat, fence, closeOp, fence}, errs: []string{"", "", "", ""}, want: "\x00"},
		{name: "closed twice",
			ops: []string{closeOp, closeOp}, errs: []string{"", ""}, want: "V"},
		{name: "fed after a clean close",
			ops: []string{closeOp, heartbeat}, errs: []string{"", "file already closed"}, want: "V"},
		{name: "fenced after a clean close: cannot",
			ops: []string{closeOp, fence}, errs: []string{"", "cannot fence: the watchdog"}, want: "V"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := fakeDevice(t)
			f, err := New(wolfpackv1alpha1.FenceWatchdog, Options{WatchdogPath: path})
			if err != nil {
				t.Fatal(err)
			}
			for i, op := range tc.ops {
				var err error
				switch op {
				case heartbeat:
					err = f.Heartbeat()
				case fence:
					var r Report
					r, err = f.Fence(context.Background())
					// The regular file answers no ioctl: the reset time is unknown.
					if err == nil && (r.Action != wolfpackv1alpha1.FenceWatchdog || r.ResetIn != 0) {
						t.Errorf("Fence reported %+v, want Watchdog with an unknown reset time", r)
					}
				case closeOp:
					err = f.Close()
				}
				if msg := errString(err); (tc.errs[i] == "") != (err == nil) || !strings.Contains(msg, tc.errs[i]) {
					t.Errorf("op %d, %s: error %q, want %q", i, op, msg, tc.errs[i])
				}
			}
			if got := written(t, path); got != tc.want {
				t.Errorf("the device got %q, want %q", got, tc.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestWatchdogFencedError(t *testing.T) {
	f, err := New(wolfpackv1alpha1.FenceWatchdog, Options{WatchdogPath: fakeDevice(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Fence(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := f.Heartbeat(); !errors.Is(err, ErrFenced) {
		t.Errorf("Heartbeat after Fence: %v, want ErrFenced", err)
	}
}

// A file that is not a watchdog device answers the ioctls with ENOTTY: opening with a timeout
// and fencing both go on without them.
func TestWatchdogNotATTY(t *testing.T) {
	path := fakeDevice(t)
	f, err := New(wolfpackv1alpha1.FenceWatchdog, Options{WatchdogPath: path, WatchdogTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("New with a timeout on a regular file: %v, want ENOTTY ignored", err)
	}
	w := f.(*watchdog)
	if err := w.setTimeout(5); !errors.Is(err, unix.ENOTTY) {
		t.Errorf("WDIOC_SETTIMEOUT on a regular file: %v, want ENOTTY", err)
	}
	if _, err := w.getTimeout(); !errors.Is(err, unix.ENOTTY) {
		t.Errorf("WDIOC_GETTIMEOUT on a regular file: %v, want ENOTTY", err)
	}
	r, err := f.Fence(context.Background())
	if err != nil || r.ResetIn != 0 {
		t.Errorf("Fence: %+v, %v; want no error and an unknown reset time", r, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := written(t, path); got != "" {
		t.Errorf("the device got %q, want nothing", got)
	}
}

func TestWatchdogFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watchdog")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// Opening a FIFO for writing waits for a reader, and the other way round.
	got := make(chan string, 1)
	go func() {
		r, err := os.Open(path)
		if err != nil {
			got <- "open: " + err.Error()
			return
		}
		defer func() { _ = r.Close() }()
		b, err := io.ReadAll(r)
		if err != nil {
			got <- "read: " + err.Error()
			return
		}
		got <- string(b)
	}()
	f, err := New(wolfpackv1alpha1.FenceWatchdog, Options{WatchdogPath: path, WatchdogTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.Heartbeat(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "\x00\x00V" {
			t.Errorf("the reader got %q, want two keepalives and the magic close", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reader got nothing")
	}
}

func TestWatchdogMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watchdog")
	_, err := New(wolfpackv1alpha1.FenceWatchdog, Options{WatchdogPath: path})
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "open the watchdog: open "+path) {
		t.Errorf("New without a device: %v, want not exist, naming the path", err)
	}
}

// TestWatchdogDevice arms the machine's real watchdog, feeds it, reads its timeout and disarms
// it. It never fences. A kernel with nowayout cannot disarm it, and the machine then resets, so
// the test runs only when asked to.
func TestWatchdogDevice(t *testing.T) {
	if _, err := os.Stat(DefaultWatchdogPath); err != nil {
		t.Skipf("no watchdog device: %v", err)
	}
	if os.Getenv("WOLFPACK_TEST_WATCHDOG") != "1" {
		t.Skipf("%s exists; set WOLFPACK_TEST_WATCHDOG=1 to arm it (a kernel with nowayout then resets the machine)", DefaultWatchdogPath)
	}
	f, err := New(wolfpackv1alpha1.FenceWatchdog, Options{WatchdogTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	if err := f.Heartbeat(); err != nil {
		t.Fatal(err)
	}
	w := f.(*watchdog)
	timeout, err := w.getTimeout()
	t.Logf("timeout %ds (%v), reset in %s", timeout, err, w.resetIn())
}

// Heartbeats racing with Fence: once Fence has returned, nothing more reaches the device.
func TestWatchdogFenceStopsConcurrentFeeding(t *testing.T) {
	path := fakeDevice(t)
	f, err := New(wolfpackv1alpha1.FenceWatchdog, Options{WatchdogPath: path})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-stop:
					return
				default:
					_ = f.Heartbeat()
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := f.Fence(context.Background()); err != nil {
		t.Fatal(err)
	}
	atFence := written(t, path)
	time.Sleep(20 * time.Millisecond)
	close(stop)
	for range 4 {
		<-done
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := written(t, path); got != atFence || len(got) == 0 || strings.Trim(got, "\x00") != "" {
		t.Errorf("the device got %d bytes by Fence and %d in all, want the same, all keepalives", len(atFence), len(got))
	}
}
