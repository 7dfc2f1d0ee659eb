package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// watchdogPoll is how often a simulated watchdog reads its device: the resolution of its timeout.
const watchdogPoll = 50 * time.Millisecond

// watchdogDevice is a member node's simulated watchdog device: a FIFO in the directory that the
// node's agent gets as its watchdog device (the Watchdog fence action opens it), read here as the
// kernel's watchdog driver reads /dev/watchdog. It follows the Linux watchdog API
// (Documentation/watchdog/watchdog-api.rst, internal/fence/watchdog_linux.go):
//   - the watchdog is armed once a writer has opened the device;
//   - any byte written feeds it, except 'V' (the magic close), which feeds it too;
//   - a close right after a 'V' disarms it; any other close (the agent killed, crashed, or
//     stopped with SIGTERM without a clean handover) leaves it armed, still counting;
//   - when it goes unfed for the timeout, it resets the node: here, fire (Env.Crash, a power
//     loss, which kills the agent), after which it is disarmed until every writer has closed it
//     and a new one opens it (the node's next boot).
//
// The timeout ioctls (WDIOC_SETTIMEOUT, WDIOC_GETTIMELEFT) do not work on a FIFO (ENOTTY, which
// the agent ignores), so the timeout is fixed when the device is made, to the value the agent
// asks for (Options.WatchdogTimeout); a Fence that asks for 1 s gets no shorter timeout here, so
// a fenced node resets a timeout after its last feed, as a device that ignored the ioctl would.
type watchdogDevice struct {
	node    string
	path    string
	timeout time.Duration
	// fire powers the node off; called without mu held, from the watcher's goroutine.
	fire func(node string)
	// now is the clock the timeout is measured on: this process's monotonic clock, which is
	// the node's (every node of the local cluster runs on this machine).
	now func() time.Time

	mu       sync.Mutex
	fd       int
	armed    bool
	lastFeed time.Time
	lastByte byte
	// spent is set from a reset (or a power loss, disarm) until no writer has the device open:
	// the writers of before the reset are dead, and only the next boot's arm it again.
	spent bool
	stop  chan struct{}
	done  chan struct{}
}

// newWatchdogDevice makes the FIFO at path and starts reading it.
func newWatchdogDevice(node, path string, timeout time.Duration, fire func(string)) (*watchdogDevice, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("the watchdog of %s: timeout %s, want a positive one", node, timeout)
	}
	if err := unix.Mkfifo(path, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("the watchdog device of %s: mkfifo %s: %w", node, path, err)
	}
	// Opened for reading without blocking, and kept open: the agent's open for writing then
	// succeeds at once, and a read tells whether a writer has the device open (EAGAIN: yes, no
	// data; 0: no writer).
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("the watchdog device of %s: %w", node, err)
	}
	w := &watchdogDevice{node: node, path: path, timeout: timeout, fire: fire, now: time.Now, fd: fd,
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w, nil
}

// run reads the device every watchdogPoll until close.
func (w *watchdogDevice) run() {
	defer close(w.done)
	t := time.NewTicker(watchdogPoll)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		if w.poll() {
			w.fire(w.node)
		}
	}
}

// poll reads what the writers wrote and reports whether the watchdog expired just now.
func (w *watchdogDevice) poll() (expired bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	buf := make([]byte, 512)
	for {
		n, err := unix.Read(w.fd, buf)
		switch {
		case w.spent:
			if err == nil && n == 0 {
				w.spent = false
			}
			if n > 0 || errors.Is(err, unix.EINTR) {
				continue
			}
		case n > 0:
			w.armed = true
			w.lastFeed = w.now()
			data := buf[:n]
			w.lastByte = data[len(data)-1]
			continue
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			// A writer has the device open and wrote nothing since.
			if !w.armed {
				w.armed, w.lastFeed, w.lastByte = true, w.now(), 0
			}
		case err == nil && n == 0:
			// No writer: the device was closed (or never opened). A close right after the
			// magic close disarms it.
			if w.armed && w.lastByte == 'V' {
				w.armed = false
			}
		}
		break
	}
	if w.armed && w.now().Sub(w.lastFeed) > w.timeout {
		w.armed, w.spent = false, true
		return true
	}
	return false
}

// disarm forgets the current arming, as a node's power loss does: the device counts again once
// a writer opens it after the node's next boot.
func (w *watchdogDevice) disarm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	// What a killed writer left unread goes with the power.
	buf := make([]byte, 512)
	for {
		if n, _ := unix.Read(w.fd, buf); n <= 0 {
			break
		}
	}
	w.armed, w.lastByte, w.spent = false, 0, true
}

// isArmed reports whether the watchdog is armed.
func (w *watchdogDevice) isArmed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.armed
}

// close stops reading and removes the FIFO.
func (w *watchdogDevice) close() error {
	close(w.stop)
	<-w.done
	return errors.Join(unix.Close(w.fd), os.Remove(w.path))
}

// makeWatchdogs makes a simulated watchdog device per member node; a device that expires crashes
// its node (Crash), unless the node has crashed already.
func (e *Env) makeWatchdogs(context.Context) error {
	e.watchdogs = map[string]*watchdogDevice{}
	for _, n := range Member {
		w, err := newWatchdogDevice(n, filepath.Join(e.o.Dir, "watchdog-"+n), e.o.WatchdogTimeout, e.watchdogFired)
		if err != nil {
			e.stopWatchdogs()
			return err
		}
		e.watchdogs[n] = w
	}
	return nil
}

// watchdogFired resets node, as its watchdog does when it goes unfed: a power loss (Crash).
func (e *Env) watchdogFired(node string) {
	if e.isCrashed(node) {
		return
	}
	e.logf("the watchdog of %s was not fed for %s: resetting the node (a crash)", node, e.o.WatchdogTimeout)
	if err := e.Crash(node); err != nil {
		e.logf("resetting %s: %v", node, err)
	}
	e.mu.Lock()
	e.watchdogResets = append(e.watchdogResets, WatchdogReset{Node: node, At: time.Now()})
	e.mu.Unlock()
}

func (e *Env) stopWatchdogs() {
	for n, w := range e.watchdogs {
		if err := w.close(); err != nil {
			e.logf("the watchdog of %s: %v", n, err)
		}
	}
	e.watchdogs = nil
}

// WatchdogReset is one reset of a node by its simulated watchdog.
type WatchdogReset struct {
	Node string
	At   time.Time
}

// WatchdogResets lists the nodes that their simulated watchdog reset, oldest first.
func (e *Env) WatchdogResets() []WatchdogReset {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]WatchdogReset(nil), e.watchdogResets...)
}

// WatchdogArmed tells whether node's simulated watchdog is armed: its agent has the device open
// (or closed it without the magic close) and it was not reset since.
func (e *Env) WatchdogArmed(node string) bool {
	w := e.watchdogs[node]
	if w == nil {
		return false
	}
	return w.isArmed()
}

// WatchdogDevice is node's simulated watchdog device, the path its agent gets.
func (e *Env) WatchdogDevice(node string) string {
	if w := e.watchdogs[node]; w != nil {
		return w.path
	}
	return ""
}
