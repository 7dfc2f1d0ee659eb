package env

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fires records the resets of a simulated watchdog.
type fires struct {
	mu sync.Mutex
	n  int
}

func (f *fires) fire(string) { f.mu.Lock(); f.n++; f.mu.Unlock() }

func (f *fires) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.n }

// TestWatchdogDevice drives a simulated watchdog as the agent's Watchdog fence action does
// (internal/fence/watchdog_linux.go): fed, it does nothing; unfed for its timeout, it resets the
// node once; a close without the magic 'V' leaves it counting; 'V' then close disarms it.
func TestWatchdogDevice(t *testing.T) {
	const timeout = 400 * time.Millisecond
	var f fires
	w, err := newWatchdogDevice("n", filepath.Join(t.TempDir(), "watchdog"), timeout, f.fire)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.close(); err != nil {
			t.Error(err)
		}
	})
	open := func() *os.File {
		t.Helper()
		dev, err := os.OpenFile(w.path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		return dev
	}
	feed := func(dev *os.File, b byte) {
		t.Helper()
		if _, err := dev.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(what string, want int) {
		t.Helper()
		if got := f.count(); got != want {
			t.Fatalf("%s: %d resets, want %d", what, got, want)
		}
	}

	time.Sleep(3 * timeout)
	expect("never opened", 0)

	dev := open()
	for range 20 {
		feed(dev, 0)
		time.Sleep(timeout / 4)
	}
	expect("fed every quarter of the timeout", 0)
	if !w.isArmed() {
		t.Fatal("an open, fed watchdog is not armed")
	}

	time.Sleep(3 * timeout) // unfed, still open: a hung agent
	expect("open and unfed for three timeouts", 1)
	if w.isArmed() {
		t.Error("armed after the reset")
	}
	feed(dev, 0) // the reset node's agent is dead: what it wrote before does not count
	time.Sleep(3 * timeout)
	expect("written after the reset by the writer of before", 1)
	_ = dev.Close()
	time.Sleep(3 * timeout)
	expect("closed after the reset", 1)

	dev = open() // the next boot's agent
	feed(dev, 0)
	_ = dev.Close() // killed, or SIGTERM without a clean handover: no magic close
	time.Sleep(3 * timeout)
	expect("closed without the magic close", 2)

	dev = open()
	feed(dev, 0)
	feed(dev, 'V')
	_ = dev.Close()
	time.Sleep(3 * timeout)
	expect("disarmed with the magic close", 2)

	dev = open() // a restarted agent: the device is armed again once opened
	time.Sleep(3 * timeout)
	expect("opened again and never fed", 3)
	_ = dev.Close()

	dev = open()
	feed(dev, 0)
	_ = dev.Close() // a rolling restart that does not disarm ...
	dev = open()    // ... and the new agent, feeding within the timeout
	for range 12 {
		feed(dev, 0)
		time.Sleep(timeout / 4)
	}
	expect("a restart that feeds on within the timeout", 3)
	w.disarm() // a power loss
	_ = dev.Close()
	time.Sleep(3 * timeout)
	expect("disarmed by a power loss", 3)
}
