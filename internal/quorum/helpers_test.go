package quorum

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

var (
	testUID  = [UIDLen]byte{0x57, 0x6f, 0x6c, 0x66, 0x70, 0x61, 0x63, 0x6b, 1, 2, 3, 4, 5, 6, 7, 8}
	otherUID = [UIDLen]byte{0xff, 0xee, 0xdd}
	epoch0   = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
)

func testLayout() Layout { return Layout{ClusterUID: testUID, Slots: 3, LogEntries: 4} }

// newMemDisk formats a MemDevice and opens it.
func newMemDisk(t *testing.T) (*MemDevice, *Disk) {
	t.Helper()
	l := testLayout()
	dev := NewMemDevice(l.Size())
	if err := Format(dev, l); err != nil {
		t.Fatalf("Format: %v", err)
	}
	d, err := Open(dev, testUID)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return dev, d
}

// newFileDisk creates a file in t.TempDir(), formats it through a FileDevice and opens it.
func newFileDisk(t *testing.T, direct bool) (*FileDevice, *Disk, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "quorum.img")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dev, err := openFile(path, direct)
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	t.Cleanup(func() { _ = dev.Close() })
	if err := Format(dev, testLayout()); err != nil {
		t.Fatalf("Format: %v", err)
	}
	d, err := Open(dev, testUID)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return dev, d, path
}

// newTestLease is a lease with L=10s, D=1s on clock fc.
func newTestLease(t *testing.T, d *Disk, node string, slot int, fc *clocktesting.FakeClock, mods ...func(*LeaseConfig)) *Lease {
	t.Helper()
	cfg := LeaseConfig{Node: node, Slot: slot, LeaseDuration: 10 * time.Second, IOTimeout: time.Second, Clock: fc}
	for _, m := range mods {
		m(&cfg)
	}
	l, err := NewLease(d, cfg)
	if err != nil {
		t.Fatalf("NewLease: %v", err)
	}
	return l
}

// drive runs f in a goroutine and advances fc in 10ms steps whenever at least waiters timers
// are pending on it (every goroutine of the test is asleep on the fake clock), until f
// returns. It gives up after limit of fake time.
func drive(t *testing.T, fc *clocktesting.FakeClock, waiters int, limit time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	end := fc.Now().Add(limit)
	for {
		select {
		case err := <-done:
			return err
		default:
		}
		if fc.Now().After(end) {
			t.Fatalf("still running after %v of fake time", limit)
		}
		if fc.Waiters() >= waiters {
			fc.Step(10 * time.Millisecond)
		} else {
			runtime.Gosched()
		}
	}
}

// acquire drives l.Acquire alone on fc.
func acquire(t *testing.T, fc *clocktesting.FakeClock, l *Lease) error {
	t.Helper()
	return drive(t, fc, 1, 5*time.Minute, func() error { return l.Acquire(t.Context()) })
}

// blockErr extracts the *BlockError from err, failing the test if there is none.
func blockErr(t *testing.T, err error) *BlockError {
	t.Helper()
	var be *BlockError
	if !errors.As(err, &be) {
		t.Fatalf("want a *BlockError, got %v", err)
	}
	return be
}
