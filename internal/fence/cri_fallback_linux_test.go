//go:build linux

package fence

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/clock"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// noRuntime is a CRI endpoint with nothing behind it: every CRI Fence fails.
func noRuntime(t *testing.T) string {
	t.Helper()
	return "unix://" + filepath.Join(t.TempDir(), "no-runtime.sock")
}

// TestCRIWatchdogFallback: CRI with a watchdog fallback feeds the watchdog at every Heartbeat,
// goes on feeding it when the CRI fence fails, and stops for good on Escalate; it never disarms
// it on Close.
func TestCRIWatchdogFallback(t *testing.T) {
	path := fakeDevice(t)
	f, err := New(wolfpackv1alpha1.FenceCRI, Options{
		CRIEndpoint: noRuntime(t), CRITimeout: time.Second,
		WatchdogFallbackPath: path, WatchdogTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.Heartbeat(); err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := f.Fence(ctx)
	if !errors.Is(err, ErrRuntimeUnavailable) || r.Action != wolfpackv1alpha1.FenceCRI {
		t.Fatalf("Fence without a runtime: %+v, %v; want CRI and ErrRuntimeUnavailable", r, err)
	}
	// A failed CRI fence alone does not stop the feeding: the agent escalates.
	if err := f.Heartbeat(); err != nil {
		t.Fatalf("Heartbeat after a failed Fence: %v", err)
	}
	if got := written(t, path); got != "\x00\x00\x00" {
		t.Errorf("the watchdog got %q before Escalate, want three keepalives", got)
	}
	if err := Escalate(f); err != nil {
		t.Fatalf("Escalate: %v", err)
	}
	if err := f.Heartbeat(); !errors.Is(err, ErrFenced) {
		t.Errorf("Heartbeat after Escalate: %v, want ErrFenced", err)
	}
	if err := Disarm(f); !errors.Is(err, ErrFenced) {
		t.Errorf("Disarm after Escalate: %v, want refused with ErrFenced", err)
	}
	if _, err := Handover(f, 30*time.Second); !errors.Is(err, ErrFenced) {
		t.Errorf("Handover after Escalate: %v, want refused with ErrFenced", err)
	}
	if err := Escalate(f); err != nil {
		t.Errorf("Escalate again: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := written(t, path); got != "\x00\x00\x00" {
		t.Errorf("the watchdog got %q in all, want three keepalives and no magic close", got)
	}
}

// TestCRIWatchdogFallbackDevice: the fallback reports the timeout its device granted, Escalate
// asks the device to reset within a second, and Disarm (before any escalation) and Handover
// reach the device.
func TestCRIWatchdogFallbackDevice(t *testing.T) {
	open := func(t *testing.T, ctl *fakeControl) (*criFallback, string) {
		t.Helper()
		path := fakeDevice(t)
		opts := Options{CRIEndpoint: noRuntime(t), WatchdogTimeout: 7 * time.Second, Clock: clock.RealClock{}}.withDefaults()
		opts.WatchdogPath = path
		wd, err := openWatchdogWith(opts, ctl)
		if err != nil {
			t.Fatal(err)
		}
		return &criFallback{cri: newCRI(opts), wd: wd}, path
	}
	t.Run("granted timeout, escalation", func(t *testing.T) {
		ctl := &fakeControl{grant: func(int) int { return 10 }}
		c, _ := open(t, ctl)
		defer func() { _ = c.Close() }()
		if err := c.Heartbeat(); err != nil {
			t.Fatal(err)
		}
		if got := Timeout(c); got != 10*time.Second {
			t.Errorf("Timeout() = %s, want the granted 10s", got)
		}
		if err := c.Escalate(); err != nil {
			t.Fatal(err)
		}
		if asked := ctl.askedFor(); !slices.Equal(asked, []int{7, 1}) {
			t.Errorf("asked the device for %v, want [7 1]: the timeout, then a reset within a second", asked)
		}
	})
	t.Run("disarm", func(t *testing.T) {
		c, path := open(t, &fakeControl{})
		if err := c.Heartbeat(); err != nil {
			t.Fatal(err)
		}
		if err := c.Disarm(); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if got := written(t, path); got != "\x00V" {
			t.Errorf("the watchdog got %q, want a keepalive and the magic close", got)
		}
	})
	t.Run("handover", func(t *testing.T) {
		ctl := &fakeControl{}
		c, path := open(t, ctl)
		if err := c.Heartbeat(); err != nil {
			t.Fatal(err)
		}
		got, err := c.Handover(20 * time.Second)
		if err != nil || got != 20*time.Second {
			t.Errorf("Handover: %s, %v; want 20s granted", got, err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if asked := ctl.askedFor(); !slices.Equal(asked, []int{7, 20}) {
			t.Errorf("asked the device for %v, want [7 20]", asked)
		}
		if got := written(t, path); got != "\x00\x00" {
			t.Errorf("the watchdog got %q, want two keepalives (Heartbeat, Handover) and no magic close", got)
		}
	})
}

func TestCRIWatchdogFallbackMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watchdog")
	_, err := New(wolfpackv1alpha1.FenceCRI, Options{WatchdogFallbackPath: path})
	if err == nil || !strings.Contains(err.Error(), "watchdog fallback") || !strings.Contains(err.Error(), path) {
		t.Errorf("New(CRI) with a missing fallback: %v, want an error naming the fallback and %s", err, path)
	}
}
