//go:build linux

package fence

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/utils/clock"

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
		disarm    = "disarm"
	)
	for _, tc := range []struct {
		name string
		ops  []string
		// errs are the substrings the ops' errors must have, "" for none.
		errs []string
		want string // the bytes written to the device
	}{
		// Close leaves the watchdog armed: an agent that stops without a clean, deliberate stop
		// (SIGTERM from a kubelet that then never restarts it, a crash) must not leave its node
		// in the cluster without a watchdog.
		{name: "fed, then closed: left armed",
			ops: []string{heartbeat, heartbeat, heartbeat, closeOp}, errs: []string{"", "", "", ""},
			want: "\x00\x00\x00"},
		{name: "closed at once: left armed",
			ops: []string{closeOp}, errs: []string{""}, want: ""},
		{name: "fed, then disarmed: the magic close",
			ops: []string{heartbeat, heartbeat, disarm}, errs: []string{"", "", ""}, want: "\x00\x00V"},
		{name: "disarmed, then closed: Close has nothing left to do",
			ops: []string{disarm, closeOp}, errs: []string{"", ""}, want: "V"},
		{name: "disarmed twice",
			ops: []string{disarm, disarm}, errs: []string{"", ""}, want: "V"},
		{name: "closed, then disarmed: cannot, the device is closed",
			ops: []string{closeOp, disarm}, errs: []string{"", "closed"}, want: ""},
		{name: "fenced: no more feeding, no magic close",
			ops: []string{heartbeat, fence, heartbeat, closeOp}, errs: []string{"", "", "fenced", ""}, want: "\x00"},
		{name: "fenced, then disarmed: refused, the node must reset",
			ops: []string{heartbeat, fence, disarm, closeOp}, errs: []string{"", "", "fenced", ""}, want: "\x00"},
		{name: "fenced twice",
			ops: []string{fence, fence, closeOp}, errs: []string{"", "", ""}, want: ""},
		{name: "fenced, closed, fenced again",
			ops: []string{heartbeat, fence, closeOp, fence}, errs: []string{"", "", "", ""}, want: "\x00"},
		{name: "closed twice",
			ops: []string{closeOp, closeOp}, errs: []string{"", ""}, want: ""},
		{name: "fed after a close",
			ops: []string{closeOp, heartbeat}, errs: []string{"", "file already closed"}, want: ""},
		{name: "fenced after a close: cannot",
			ops: []string{closeOp, fence}, errs: []string{"", "cannot fence: the watchdog"}, want: ""},
		{name: "fenced after a disarm: cannot",
			ops: []string{disarm, fence}, errs: []string{"", "was closed and disarmed"}, want: "V"},
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
				case disarm:
					err = disarmer(t, f).Disarm()
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

// The optional interfaces of a Fencer, spelled out so that these tests say what is missing
// rather than fail to build.
type (
	timeouter interface{ Timeout() time.Duration }
	disarmerI interface{ Disarm() error }
	handoverI interface {
		Handover(d time.Duration) (time.Duration, error)
	}
)

func disarmer(t *testing.T, f Fencer) disarmerI {
	t.Helper()
	d, ok := f.(disarmerI)
	if !ok {
		t.Fatalf("%T has no Disarm", f)
	}
	return d
}

func timeoutOf(t *testing.T, f Fencer) time.Duration {
	t.Helper()
	d, ok := f.(timeouter)
	if !ok {
		t.Fatalf("%T has no Timeout", f)
	}
	return d.Timeout()
}

func handover(t *testing.T, f Fencer) handoverI {
	t.Helper()
	h, ok := f.(handoverI)
	if !ok {
		t.Fatalf("%T has no Handover", f)
	}
	return h
}

// fakeControl stands for the ioctls of a watchdog device, on a regular file (fakeDevice) that
// takes the writes. grant maps the timeout asked for to the one granted (the same when nil).
type fakeControl struct {
	mu      sync.Mutex
	grant   func(asked int) int
	setErr  error // WDIOC_SETTIMEOUT fails with it
	getErr  error // WDIOC_GETTIMEOUT and WDIOC_GETTIMELEFT fail with it
	noWrite bool  // WDIOC_SETTIMEOUT does not write the granted timeout back (an old driver)
	timeout int   // the device's timeout
	asked   []int // every WDIOC_SETTIMEOUT
}

func (c *fakeControl) setTimeout(_, seconds int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, seconds)
	if c.setErr != nil {
		return 0, c.setErr
	}
	c.timeout = seconds
	if c.grant != nil {
		c.timeout = c.grant(seconds)
	}
	if c.noWrite {
		return seconds, nil
	}
	return c.timeout, nil
}

func (c *fakeControl) getTimeout(int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.getErr != nil {
		return 0, c.getErr
	}
	return c.timeout, nil
}

func (c *fakeControl) timeLeft(fd int) (int, error) { return c.getTimeout(fd) }

func (c *fakeControl) askedFor() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.asked)
}

// TestWatchdogGrantedTimeout: Timeout is what the device granted, read back after the first
// Heartbeat asked for it, not what was asked for; a longer timeout than asked is no error (the
// agent publishes a longer lease for it).
func TestWatchdogGrantedTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		ask  time.Duration
		ctl  *fakeControl
		want time.Duration
	}{
		{name: "granted as asked", ask: 7 * time.Second, ctl: &fakeControl{}, want: 7 * time.Second},
		// Rounded down: the node must reset no later than the renew deadline (6.67 s by default).
		{name: "asked in part of a second: rounded down", ask: 6667 * time.Millisecond, ctl: &fakeControl{}, want: 6 * time.Second},
		{name: "less than a second: one", ask: 300 * time.Millisecond, ctl: &fakeControl{}, want: time.Second},
		{name: "the device grants longer (a coarse hardware timer)", ask: 7 * time.Second,
			ctl: &fakeControl{grant: func(int) int { return 30 }}, want: 30 * time.Second},
		{name: "the device grants shorter", ask: 7 * time.Second,
			ctl: &fakeControl{grant: func(int) int { return 5 }}, want: 5 * time.Second},
		{name: "an old driver does not write the grant back: WDIOC_GETTIMEOUT tells", ask: 7 * time.Second,
			ctl: &fakeControl{grant: func(int) int { return 10 }, noWrite: true}, want: 10 * time.Second},
		{name: "WDIOC_GETTIMEOUT unsupported: the grant written back", ask: 7 * time.Second,
			ctl: &fakeControl{grant: func(int) int { return 8 }, getErr: unix.EOPNOTSUPP}, want: 8 * time.Second},
		{name: "no timeout asked: the device's own", ctl: &fakeControl{timeout: 60}, want: 60 * time.Second},
		{name: "no timeout asked, none told: unknown", ctl: &fakeControl{getErr: unix.ENOTTY}, want: 0},
		{name: "not a watchdog (ENOTTY): unknown", ask: 7 * time.Second,
			ctl: &fakeControl{setErr: unix.ENOTTY, getErr: unix.ENOTTY}, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := fakeDevice(t)
			w, err := openWatchdogWith(Options{WatchdogPath: path, WatchdogTimeout: tc.ask, Clock: clock.RealClock{}}, tc.ctl)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = w.Close() }()
			if err := w.Heartbeat(); err != nil {
				t.Fatal(err)
			}
			if got := timeoutOf(t, w); got != tc.want {
				t.Errorf("Timeout() = %s, want %s", got, tc.want)
			}
			if want := watchdogSeconds(tc.ask); want > 0 && !slices.Equal(tc.ctl.askedFor(), []int{int(want)}) {
				t.Errorf("asked the device for %v, want [%d]", tc.ctl.askedFor(), want)
			}
		})
	}
}

// TestWatchdogHandover: Handover sets the timeout the next agent has to take the device over,
// feeds it once and closes it without the magic close.
func TestWatchdogHandover(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ctl       *fakeControl
		fenced    bool
		d         time.Duration
		want      time.Duration
		wantAsked []int
		wantErr   string
		written   string
	}{
		{name: "granted as asked", ctl: &fakeControl{}, d: 20 * time.Second,
			want: 20 * time.Second, wantAsked: []int{7, 20}, written: "\x00\x00"},
		{name: "asked in part of a second: rounded down", ctl: &fakeControl{}, d: 20500 * time.Millisecond,
			want: 20 * time.Second, wantAsked: []int{7, 20}, written: "\x00\x00"},
		{name: "granted longer", ctl: &fakeControl{grant: func(s int) int { return s + 10 }}, d: 20 * time.Second,
			want: 30 * time.Second, wantAsked: []int{7, 20}, written: "\x00\x00"},
		{name: "not a watchdog: unknown, still fed and left armed", ctl: &fakeControl{setErr: unix.ENOTTY, getErr: unix.ENOTTY},
			d: 20 * time.Second, want: 0, wantAsked: []int{7, 20}, written: "\x00\x00"},
		{name: "fenced: refused, the node must reset", ctl: &fakeControl{}, fenced: true, d: 20 * time.Second,
			wantAsked: []int{7, 1}, wantErr: "fenced", written: "\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := fakeDevice(t)
			w, err := openWatchdogWith(Options{WatchdogPath: path, WatchdogTimeout: 7 * time.Second, Clock: clock.RealClock{}}, tc.ctl)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Heartbeat(); err != nil {
				t.Fatal(err)
			}
			if tc.fenced {
				if _, err := w.Fence(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			got, err := handover(t, w).Handover(tc.d)
			if (tc.wantErr == "") != (err == nil) || !strings.Contains(errString(err), tc.wantErr) {
				t.Errorf("Handover: %v, want an error with %q", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("Handover granted %s, want %s", got, tc.want)
			}
			if asked := tc.ctl.askedFor(); !slices.Equal(asked, tc.wantAsked) {
				t.Errorf("asked the device for %v, want %v", asked, tc.wantAsked)
			}
			if err := w.Close(); err != nil {
				t.Errorf("Close after Handover: %v", err)
			}
			if err := w.Heartbeat(); err == nil {
				t.Errorf("Heartbeat after Handover and Close fed the device")
			}
			if got := written(t, path); got != tc.written {
				t.Errorf("the device got %q, want %q (no magic close)", got, tc.written)
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
	if err := disarmer(t, f).Disarm(); err != nil {
		t.Fatal(err)
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

// TestWatchdogOpenDoesNotFeed: opening the device neither feeds it nor sets its timeout (which
// feeds it too): a new agent whose predecessor handed the device over, or died, must not push the
// node's reset past the deadline its predecessor's Lease covers before it has renewed the Lease
// itself. The first Heartbeat, which follows the agent's first renewal, sets the timeout.
func TestWatchdogOpenDoesNotFeed(t *testing.T) {
	path := fakeDevice(t)
	ctl := &fakeControl{timeout: 20} // as a predecessor's Handover(20s) left it
	w, err := openWatchdogWith(Options{WatchdogPath: path, WatchdogTimeout: 7 * time.Second, Clock: clock.RealClock{}}, ctl)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	if asked := ctl.askedFor(); len(asked) > 0 {
		t.Errorf("opening asked the device for %v (WDIOC_SETTIMEOUT feeds it), want nothing before the first Heartbeat", asked)
	}
	if got := written(t, path); got != "" {
		t.Errorf("opening wrote %q, want nothing", got)
	}
	if got := timeoutOf(t, w); got != 0 {
		t.Errorf("Timeout() before the first Heartbeat = %s, want 0 (not granted yet)", got)
	}
	for range 2 {
		if err := w.Heartbeat(); err != nil {
			t.Fatal(err)
		}
	}
	if asked := ctl.askedFor(); !slices.Equal(asked, []int{7}) {
		t.Errorf("after two Heartbeats the device was asked for %v, want [7] once", asked)
	}
	if got := timeoutOf(t, w); got != 7*time.Second {
		t.Errorf("Timeout() = %s, want 7s", got)
	}
	if got := written(t, path); got != "\x00\x00" {
		t.Errorf("the device got %q, want two keepalives", got)
	}
}

// TestWatchdogRefusedTimeout: a device that refuses the timeout is not fed (its own timeout,
// which the agent did not choose, would then govern the reset): Heartbeat fails, naming it, and
// the device is left armed to reset the node.
func TestWatchdogRefusedTimeout(t *testing.T) {
	path := fakeDevice(t)
	w, err := openWatchdogWith(Options{WatchdogPath: path, WatchdogTimeout: 7 * time.Second, Clock: clock.RealClock{}},
		&fakeControl{setErr: unix.EINVAL, timeout: 60})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := w.Heartbeat(); err == nil || !strings.Contains(err.Error(), "set the timeout of the watchdog "+path+" to 7s") {
			t.Errorf("Heartbeat: %v, want the refused timeout named", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := written(t, path); got != "" {
		t.Errorf("the device got %q, want nothing: not fed, no magic close", got)
	}
}
