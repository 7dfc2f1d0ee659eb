//go:build linux

package fence

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

const (
	// keepaliveByte is what Heartbeat writes: any byte but magicClose feeds a Linux watchdog.
	keepaliveByte = 0
	// magicClose written before closing the device disarms the watchdog, unless the kernel was
	// built or loaded with nowayout.
	magicClose = 'V'
	// fenceTimeoutSeconds is the timeout Fence sets, so that the node resets this soon rather
	// than after the rest of the configured timeout.
	fenceTimeoutSeconds = 1
)

// watchdog is the Watchdog fence action on a Linux watchdog device (the watchdog API of
// Documentation/watchdog/watchdog-api.rst). The device is armed from the moment it is opened,
// and stays armed when the agent stops: Close does not disarm it, and neither does a crash or a
// kill, so that a node whose agent stops feeding the device resets, whatever the reason (it hung,
// it died, the kubelet never restarted it). Only Disarm, which a clean, deliberate stop calls
// (the node leaves the cluster; a test), writes the magic close; Handover hands the armed device
// on to the next agent with a longer timeout.
type watchdog struct {
	path string
	opts Options
	ctl  watchdogControl

	mu       sync.Mutex
	f        *os.File      // nil once closed
	fenced   bool          // Fence has run: no more feeding, no magic close
	disarmed bool          // closed by Disarm, with the magic close
	set      bool          // the first Heartbeat has set the timeout (or there is none to set)
	timeout  time.Duration // granted by the device; 0 when it does not say, or not yet set
}

var (
	_ TimeoutReporter = (*watchdog)(nil)
	_ Disarmer        = (*watchdog)(nil)
	_ HandoverCloser  = (*watchdog)(nil)
)

// openWatchdog opens, and so arms, the device at opts.WatchdogPath. The first Heartbeat sets its
// timeout to opts.WatchdogTimeout when that is positive. On a file that is not a watchdog device
// (a test's regular file or FIFO) the ioctls fail with ENOTTY, which is ignored.
func openWatchdog(opts Options) (Fencer, error) {
	return openWatchdogWith(opts, ioctlControl{})
}

// openWatchdogWith is openWatchdog with the device's ioctls made by ctl.
//
// Opening neither feeds the device nor sets its timeout (WDIOC_SETTIMEOUT feeds it too): a
// watchdog that is already running, because the previous agent handed it over or died, goes on
// counting down to the deadline that the previous agent's Lease covers, until this agent has
// renewed its own Lease and feeds it (the agent calls Heartbeat only then). Opening a device that
// is not running starts it, with the timeout the driver has.
func openWatchdogWith(opts Options, ctl watchdogControl) (*watchdog, error) {
	f, err := os.OpenFile(opts.WatchdogPath, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open the watchdog: %w", err)
	}
	w := &watchdog{path: opts.WatchdogPath, opts: opts, ctl: ctl, f: f}
	if opts.WatchdogTimeout <= 0 {
		w.set = true
		if t, err := w.getTimeout(); err == nil && t > 0 {
			w.timeout = time.Duration(t) * time.Second
		}
	}
	return w, nil
}

// Timeout returns the timeout that the device granted (0 when the device does not say, and
// before the first Heartbeat has set it): the node resets at most this long after the last
// Heartbeat. It may be longer than Options.WatchdogTimeout, which is no error: the agent must then
// publish a lease long enough for it. Without Options.WatchdogTimeout it is the device's own.
func (w *watchdog) Timeout() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.timeout
}

// Fence stops feeding the watchdog, for good: neither Close nor Disarm disarms it after that. It
// tries to set the watchdog's timeout to one second, so that the node resets at once, and reports
// how long the device says the reset takes.
func (w *watchdog) Fence(context.Context) (Report, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	report := Report{Action: wolfpackv1alpha1.FenceWatchdog, Started: w.opts.Clock.Now()}
	switch {
	case w.f == nil && w.disarmed:
		return report, fmt.Errorf("cannot fence: the watchdog %s was closed and disarmed", w.path)
	case w.f == nil && !w.fenced:
		// Closed armed: nothing here feeds it any more, but another process may have opened it
		// since (the next agent, after a Handover); this one cannot tell, so it does not claim a
		// fence.
		return report, fmt.Errorf("cannot fence: the watchdog %s was closed (armed) by this agent", w.path)
	case w.f == nil:
		// Fenced, then closed: the watchdog runs on, and the device can no longer be asked.
	case !w.fenced:
		w.fenced = true
		// Best effort: without it the node resets after the configured timeout instead.
		_ = w.setTimeout(fenceTimeoutSeconds)
		report.ResetIn = w.resetIn()
	default:
		report.ResetIn = w.resetIn()
	}
	report.Duration = w.opts.Clock.Since(report.Started)
	return report, nil
}

// Heartbeat feeds the watchdog. The first one sets the device's timeout to
// Options.WatchdogTimeout, and reads back the timeout granted (Timeout). A device that refuses
// that timeout is not fed: the reset would come after a timeout the agent did not choose.
func (w *watchdog) Heartbeat() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.f == nil:
		return fmt.Errorf("feed the watchdog %s: %w", w.path, os.ErrClosed)
	case w.fenced:
		return fmt.Errorf("feed the watchdog %s: %w", w.path, ErrFenced)
	}
	if !w.set {
		s := watchdogSeconds(w.opts.WatchdogTimeout)
		granted, err := w.askTimeout(int(s))
		if err != nil && !errors.Is(err, unix.ENOTTY) {
			return fmt.Errorf("set the timeout of the watchdog %s to %ds (not fed: it resets the node after its own timeout): %w", w.path, s, err)
		}
		w.set, w.timeout = true, granted
	}
	if _, err := w.f.Write([]byte{keepaliveByte}); err != nil {
		return fmt.Errorf("feed the watchdog: %w", err)
	}
	return nil
}

// Close closes the device and leaves the watchdog armed: the node resets unless another process
// opens the device and feeds it before the timeout. Only Disarm disarms it.
func (w *watchdog) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("close the watchdog %s: %w", w.path, err)
	}
	return nil
}

// Disarm disarms the watchdog with the magic close and closes the device. It is for a clean,
// deliberate stop only (the node leaves the cluster; a test): an agent that merely exits leaves
// the watchdog armed (Close). It refuses once Fence has run: a fenced node must reset. A kernel
// built or loaded with nowayout ignores the magic close; the watchdog then stays armed.
func (w *watchdog) Disarm() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.f == nil && w.disarmed:
		return nil
	case w.f == nil:
		return fmt.Errorf("cannot disarm the watchdog %s: it was closed, armed", w.path)
	case w.fenced:
		return fmt.Errorf("will not disarm the watchdog %s: the node is fenced and must reset: %w", w.path, ErrFenced)
	}
	var errs []error
	if _, err := w.f.Write([]byte{magicClose}); err != nil {
		errs = append(errs, fmt.Errorf("disarm the watchdog %s: %w", w.path, err))
	}
	if err := w.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close the watchdog %s: %w", w.path, err))
	}
	w.f = nil
	w.disarmed = len(errs) == 0
	return errors.Join(errs...)
}

// Handover hands the armed watchdog on to the agent that replaces this one (a rolling update, a
// restart): it sets the device's timeout to d, so that the next agent has d to open the device
// and feed it, feeds it once, and closes it without the magic close. It returns the timeout the
// device granted, which may be longer than d (0 when the device does not say). The next agent
// sets its own timeout at its first Heartbeat, after its first renewal. Handover feeds the
// device: the node must reset before the manager may count it fenced, so d is at most the
// published lease duration less the time since the last renewal began (HandoverCloser). Handover
// refuses once Fence has run: a fenced node must reset, not wait longer.
func (w *watchdog) Handover(d time.Duration) (time.Duration, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.f == nil:
		return 0, fmt.Errorf("cannot hand the watchdog %s over: %w", w.path, os.ErrClosed)
	case w.fenced:
		return 0, fmt.Errorf("will not hand the watchdog %s over: the node is fenced and must reset: %w", w.path, ErrFenced)
	case d <= 0:
		return 0, fmt.Errorf("cannot hand the watchdog %s over with a timeout of %s: want a positive one", w.path, d)
	}
	var errs []error
	s := watchdogSeconds(d)
	granted, err := w.askTimeout(int(s))
	if err != nil && !errors.Is(err, unix.ENOTTY) {
		// The device keeps the timeout it had: the next agent has that long.
		errs = append(errs, fmt.Errorf("set the timeout of the watchdog %s to %ds for the handover: %w", w.path, s, err))
		if t, err := w.getTimeout(); err == nil && t > 0 {
			granted = time.Duration(t) * time.Second
		}
	}
	if _, err := w.f.Write([]byte{keepaliveByte}); err != nil {
		errs = append(errs, fmt.Errorf("feed the watchdog %s: %w", w.path, err))
	}
	if err := w.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close the watchdog %s: %w", w.path, err))
	}
	w.f = nil
	return granted, errors.Join(errs...)
}

// askTimeout asks the device for a timeout of s seconds (which also feeds it) and returns the
// timeout it granted: what WDIOC_GETTIMEOUT reads back, else what WDIOC_SETTIMEOUT wrote back into
// its argument, else 0 (unknown).
func (w *watchdog) askTimeout(s int) (time.Duration, error) {
	var written int
	err := w.control(func(fd int) error {
		var err error
		written, err = w.ctl.setTimeout(fd, s)
		return err
	})
	if err != nil {
		return 0, err
	}
	if t, err := w.getTimeout(); err == nil && t > 0 {
		return time.Duration(t) * time.Second, nil
	}
	if written > 0 {
		return time.Duration(written) * time.Second, nil
	}
	return 0, nil
}

// resetIn returns how long until the watchdog resets the node, at most: the time left, rounded
// up to whole seconds, or else the timeout; zero when the device says neither.
func (w *watchdog) resetIn() time.Duration {
	if left, err := w.timeLeft(); err == nil && left >= 0 {
		return time.Duration(left+1) * time.Second
	}
	if timeout, err := w.getTimeout(); err == nil && timeout > 0 {
		return time.Duration(timeout) * time.Second
	}
	return 0
}

// setTimeout sets the watchdog's timeout, which also feeds it.
func (w *watchdog) setTimeout(seconds int) error {
	return w.control(func(fd int) error {
		_, err := w.ctl.setTimeout(fd, seconds)
		return err
	})
}

// getTimeout returns the watchdog's timeout in seconds.
func (w *watchdog) getTimeout() (int, error) {
	return w.controlInt(w.ctl.getTimeout)
}

// timeLeft returns the seconds left before the watchdog resets the node.
func (w *watchdog) timeLeft() (int, error) {
	return w.controlInt(w.ctl.timeLeft)
}

// controlInt runs fn, which reads an int, on the device's file descriptor.
func (w *watchdog) controlInt(fn func(fd int) (int, error)) (int, error) {
	var v int
	err := w.control(func(fd int) error {
		var err error
		v, err = fn(fd)
		return err
	})
	return v, err
}

// control runs fn on the device's file descriptor.
func (w *watchdog) control(fn func(fd int) error) error {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var fnErr error
	if err := rc.Control(func(fd uintptr) { fnErr = fn(int(fd)) }); err != nil {
		return err
	}
	return fnErr
}

// watchdogControl makes the ioctls of the watchdog API on an open device. It is a seam: a test
// stands in for a device that grants another timeout than the one asked for.
type watchdogControl interface {
	// setTimeout asks for a timeout of seconds, which also feeds the watchdog, and returns the
	// timeout that the device says it granted: the kernel writes it back into the argument.
	setTimeout(fd, seconds int) (granted int, err error)
	// getTimeout returns the watchdog's timeout in seconds.
	getTimeout(fd int) (int, error)
	// timeLeft returns the seconds left before the watchdog resets the node.
	timeLeft(fd int) (int, error)
}

// ioctlControl is the watchdogControl of a real device.
type ioctlControl struct{}

func (ioctlControl) setTimeout(fd, seconds int) (int, error) {
	if seconds < 0 || seconds > math.MaxInt32 {
		return 0, fmt.Errorf("a watchdog timeout of %ds: %w", seconds, unix.EINVAL)
	}
	// unix.IoctlSetPointerInt drops what the kernel writes back: the granted timeout.
	v := int32(seconds)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.WDIOC_SETTIMEOUT), uintptr(unsafe.Pointer(&v))); errno != 0 {
		return 0, errno
	}
	return int(v), nil
}

func (ioctlControl) getTimeout(fd int) (int, error) {
	return unix.IoctlGetInt(fd, unix.WDIOC_GETTIMEOUT)
}

func (ioctlControl) timeLeft(fd int) (int, error) {
	return unix.IoctlGetInt(fd, unix.WDIOC_GETTIMELEFT)
}
