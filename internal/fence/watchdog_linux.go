//go:build linux

package fence

import (
	"context"
	"errors"
	"fmt"
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
// Documentation/watchdog/watchdog-api.rst). The device is armed from the moment it is opened.
// A process that exits without a clean Close, because it crashed or was killed, leaves the
// watchdog running, so the node resets: an agent that cannot run cannot keep its node in the
// cluster either.
type watchdog struct {
	path   string
	opts   Options
	ctl    watchdogControl
	mu     sync.Mutex
	f      *os.File // nil once closed
	fenced bool     // Fence has run: no more feeding, no magic close
}

// openWatchdog opens, and so arms, the device at opts.WatchdogPath and sets its timeout to
// opts.WatchdogTimeout when that is positive. On a file that is not a watchdog device (a test's
// regular file or FIFO) the ioctls fail with ENOTTY, which is ignored.
func openWatchdog(opts Options) (Fencer, error) {
	return openWatchdogWith(opts, ioctlControl{})
}

// openWatchdogWith is openWatchdog with the device's ioctls made by ctl.
func openWatchdogWith(opts Options, ctl watchdogControl) (*watchdog, error) {
	f, err := os.OpenFile(opts.WatchdogPath, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open the watchdog: %w", err)
	}
	w := &watchdog{path: opts.WatchdogPath, opts: opts, ctl: ctl, f: f}
	if opts.WatchdogTimeout > 0 {
		s := seconds(opts.WatchdogTimeout)
		if err := w.setTimeout(int(s)); err != nil && !errors.Is(err, unix.ENOTTY) {
			return nil, errors.Join(fmt.Errorf("set the timeout of the watchdog %s to %ds: %w", w.path, s, err), w.Close())
		}
	}
	return w, nil
}

// Fence stops feeding the watchdog, for good: a later Close does not disarm it. It tries to set
// the watchdog's timeout to one second, so that the node resets at once, and reports how long
// the device says the reset takes.
func (w *watchdog) Fence(context.Context) (Report, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	report := Report{Action: wolfpackv1alpha1.FenceWatchdog, Started: w.opts.Clock.Now()}
	switch {
	case w.f == nil && !w.fenced:
		return report, fmt.Errorf("cannot fence: the watchdog %s was closed and disarmed", w.path)
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

// Heartbeat feeds the watchdog.
func (w *watchdog) Heartbeat() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.f == nil:
		return fmt.Errorf("feed the watchdog %s: %w", w.path, os.ErrClosed)
	case w.fenced:
		return fmt.Errorf("feed the watchdog %s: %w", w.path, ErrFenced)
	}
	if _, err := w.f.Write([]byte{keepaliveByte}); err != nil {
		return fmt.Errorf("feed the watchdog: %w", err)
	}
	return nil
}

// Close disarms the watchdog with the magic close, unless Fence has run, and closes the device.
func (w *watchdog) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	var errs []error
	if !w.fenced {
		if _, err := w.f.Write([]byte{magicClose}); err != nil {
			errs = append(errs, fmt.Errorf("disarm the watchdog: %w", err))
		}
	}
	if err := w.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close the watchdog: %w", err))
	}
	w.f = nil
	return errors.Join(errs...)
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
