package quorumholder

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/utils/ptr"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/quorum"
)

// heldMetric is wolfpack_quorum_held of node-a in cluster.
func heldMetric(cluster string) float64 {
	return testutil.ToFloat64(heldVec.WithLabelValues(cluster, "node-a"))
}

// renewErrorsMetric is wolfpack_quorum_renew_errors_total of node-a in cluster for reason.
func renewErrorsMetric(cluster, reason string) float64 {
	return testutil.ToFloat64(renewErrorsVec.WithLabelValues(cluster, "node-a", reason))
}

func epochOf(w *world) string {
	if l := w.lease(); l != nil {
		return l.Annotations[wolfpackv1alpha1.EpochAnnotation]
	}
	return ""
}

// TestAcquireRenewRelease: a holder formats an empty device, acquires it, publishes its hold
// at epoch 1 and renews it; stopped, it releases the disk and clears the Lease.
func TestAcquireRenewRelease(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "qh-lifecycle", 0)
	a := w.start(w.config("node-a", nil))
	tm := a.h.Timing()

	w.waitFor("node-a publishes its hold", 5*time.Second, func() bool { return w.holder() == "node-a" })
	l := w.lease()
	switch {
	case l.Annotations[wolfpackv1alpha1.EpochAnnotation] != "1":
		t.Errorf("epoch annotation %q, want 1", l.Annotations[wolfpackv1alpha1.EpochAnnotation])
	case l.Labels[wolfpackv1alpha1.ClusterLabel] != "qh-lifecycle":
		t.Errorf("labels %v", l.Labels)
	case ptr.Deref(l.Spec.LeaseDurationSeconds, 0) != 1 || ptr.Deref(l.Spec.LeaseTransitions, -1) != 0:
		t.Errorf("duration %v transitions %v", l.Spec.LeaseDurationSeconds, l.Spec.LeaseTransitions)
	case l.Spec.AcquireTime == nil || !l.Spec.AcquireTime.Equal(l.Spec.RenewTime):
		t.Errorf("acquireTime %v renewTime %v, want both the acquisition", l.Spec.AcquireTime, l.Spec.RenewTime)
	}
	if !a.h.Held() || a.h.Epoch() != 1 || heldMetric("qh-lifecycle") != 1 ||
		testutil.ToFloat64(epochVec.WithLabelValues("qh-lifecycle", "node-a")) != 1 {
		t.Errorf("held %v epoch %d, metrics held %v", a.h.Held(), a.h.Epoch(), heldMetric("qh-lifecycle"))
	}
	if ev := w.rec.find("Normal QuorumHeld node node-a holds the quorum disk at epoch 1"); len(ev) != 1 {
		t.Errorf("QuorumHeld events %v, want one", ev)
	}

	// Renewals move renewTime on, every RenewInterval; acquireTime stays.
	acquired := l.Spec.AcquireTime.Time
	renewals := map[time.Time]bool{}
	w.waitFor("five renewals", 10*tm.RenewInterval, func() bool {
		l := w.lease()
		if !l.Spec.AcquireTime.Time.Equal(acquired) || ptr.Deref(l.Spec.HolderIdentity, "") != "node-a" {
			t.Fatalf("during renewals: %+v", l.Spec)
		}
		if lag := w.main.Since(l.Spec.RenewTime.Time); lag > tm.RenewInterval+10*step {
			t.Fatalf("renewTime %v lags %v behind, more than RenewInterval %v", l.Spec.RenewTime, lag, tm.RenewInterval)
		}
		renewals[l.Spec.RenewTime.Time] = true
		return len(renewals) > 5
	})
	if rec := w.owner(); !rec.Held || rec.Node != "node-a" || rec.Epoch != 1 {
		t.Errorf("owner record %+v", rec)
	}

	if err := a.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	l = w.lease()
	if l.Spec.HolderIdentity != nil || l.Annotations[wolfpackv1alpha1.EpochAnnotation] != "1" {
		t.Errorf("after shutdown: holder %v, epoch %q; want no holder, epoch kept", l.Spec.HolderIdentity, l.Annotations[wolfpackv1alpha1.EpochAnnotation])
	}
	if rec := w.owner(); rec.Held || rec.Node != "node-a" || rec.Epoch != 1 {
		t.Errorf("owner record after shutdown %+v, want released by node-a at epoch 1", rec)
	}
	if a.h.Held() || heldMetric("qh-lifecycle") != 0 {
		t.Error("still held after shutdown")
	}
	if ev := w.rec.find("Normal QuorumReleased node node-a released the quorum disk (epoch 1) on shutdown"); len(ev) != 1 {
		t.Errorf("events %v", w.rec.find(""))
	}
	d, err := quorum.Open(w.dev, uidBytes())
	if err != nil || d.Layout().Slots != DefaultSlots || d.Layout().LogEntries != DefaultLogEntries {
		t.Errorf("formatted disk: %+v, %v", d, err)
	}
}

// TestSecondHolderWaits: while one holder renews, another never acquires; once the first is
// stopped, the second acquires at epoch 2 and the Lease counts a transition.
func TestSecondHolderWaits(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "qh-two", 4)
	a := w.start(w.config("node-a", nil))
	w.waitFor("node-a holds", 5*time.Second, func() bool { return w.holder() == "node-a" })
	first := w.lease()

	b := w.start(w.config("node-b", nil))
	end := w.main.Now().Add(5 * testL)
	w.waitFor("five lease durations", 6*testL, func() bool {
		if b.h.Held() {
			t.Fatal("node-b holds while node-a renews")
		}
		return !w.main.Now().Before(end)
	})
	if w.holder() != "node-a" || epochOf(w) != "1" || w.owner().Node != "node-a" {
		t.Fatalf("after five lease durations: Lease %+v, owner %+v", w.lease().Spec, w.owner())
	}

	if err := a.stop(t); err != nil {
		t.Fatalf("node-a Run: %v", err)
	}
	stopped := w.main.Now()
	w.waitFor("node-b holds", 5*time.Second, func() bool { return w.holder() == "node-b" })
	tm := b.h.Timing()
	if took := w.main.Since(stopped); took < tm.LeaseDuration+tm.Margin {
		t.Errorf("node-b held %v after node-a released, want at least L+m = %v", took, tm.LeaseDuration+tm.Margin)
	}
	l := w.lease()
	if epochOf(w) != "2" || b.h.Epoch() != 2 || ptr.Deref(l.Spec.LeaseTransitions, 0) != 1 ||
		!l.Spec.AcquireTime.After(first.Spec.AcquireTime.Time) {
		t.Errorf("node-b's Lease: epoch %q transitions %v acquireTime %v (node-a's %v)", epochOf(w),
			l.Spec.LeaseTransitions, l.Spec.AcquireTime, first.Spec.AcquireTime)
	}
	if rec := w.owner(); !rec.Held || rec.Node != "node-b" || rec.Epoch != 2 {
		t.Errorf("owner record %+v", rec)
	}
}

// TestTakeoverFromStalledHolder: a holder that stops renewing (its process stalls: its clock is
// not stepped) loses the disk to the other after the lease runs out; woken, it finds the other's
// record at its next renewal and stops publishing without writing the Lease.
func TestTakeoverFromStalledHolder(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "qh-stall", 4)
	ca := w.newClock()
	lostBefore := renewErrorsMetric("qh-stall", ReasonLost)
	a := w.start(w.config("node-a", ca))
	w.waitOn(ca, "node-a holds", 5*time.Second, func() bool { return w.holder() == "node-a" })
	ca.frozen.Store(true)

	b := w.start(w.config("node-b", nil))
	w.waitFor("node-b takes over", 5*time.Second, func() bool { return w.holder() == "node-b" })
	l := w.lease()
	if epochOf(w) != "2" || ptr.Deref(l.Spec.LeaseTransitions, 0) != 1 || !b.h.Held() {
		t.Errorf("after the takeover: epoch %q transitions %v", epochOf(w), l.Spec.LeaseTransitions)
	}
	if !a.h.Held() {
		t.Error("the stalled node-a no longer believes it holds: it has not run")
	}

	ca.frozen.Store(false)
	w.waitOn(ca, "node-a notices", 2*testL, func() bool { return !a.h.Held() })
	// The Event follows the end of the hold: wait for it.
	w.waitFor("the QuorumLost Event", 5*time.Second, func() bool {
		return len(w.rec.find("Warning QuorumLost node node-a lost the quorum disk (epoch 1)")) == 1
	})
	if n := renewErrorsMetric("qh-stall", ReasonLost) - lostBefore; n != 1 {
		t.Errorf("lost renewals %v, want 1", n)
	}
	// node-a contends again but never gets the disk, nor writes the Lease, while node-b renews.
	end := w.main.Now().Add(3 * testL)
	w.waitFor("three lease durations", 4*testL, func() bool {
		if a.h.Held() || w.holder() != "node-b" {
			t.Fatalf("node-a held %v, Lease holder %q", a.h.Held(), w.holder())
		}
		return !w.main.Now().Before(end)
	})
	// Stopped, node-a leaves node-b's Lease alone.
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	if w.holder() != "node-b" {
		t.Errorf("node-a's shutdown cleared node-b's Lease: holder %q", w.holder())
	}
}

// TestRenewFailuresRunOut: a holder whose writes to the disk fail stops publishing, keeps
// trying while its lease is valid, then lets it go; the other node takes over at epoch 2.
func TestRenewFailuresRunOut(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "qh-io", 4)
	dev := &flakyDevice{Device: w.dev}
	cfg := w.config("node-a", nil)
	cfg.Device = dev
	ioBefore := renewErrorsMetric("qh-io", ReasonIO)
	a := w.start(cfg)
	tm := a.h.Timing()
	w.waitFor("node-a holds", 5*time.Second, func() bool { return w.holder() == "node-a" })
	w.start(w.config("node-b", nil))

	dev.failWrites.Store(true)
	cut := w.main.Now()
	w.waitFor("node-a lets its hold go", 2*testL, func() bool { return !a.h.Held() })
	if took := w.main.Since(cut); took > tm.LeaseDuration-tm.Margin+tm.RenewInterval+10*step {
		t.Errorf("node-a held on %v after its writes began to fail, want at most L-m+RenewInterval", took)
	}
	if renewed := w.lease().Spec.RenewTime.Time; renewed.After(cut) {
		t.Errorf("node-a published a renewal at %v, after its writes failed at %v", renewed, cut)
	}
	if n := renewErrorsMetric("qh-io", ReasonIO) - ioBefore; n < 2 {
		t.Errorf("%v I/O renewal errors counted, want at least 2", n)
	}
	// The Event follows the end of the hold: wait for it.
	w.waitFor("the QuorumLost Event", 5*time.Second, func() bool {
		return len(w.rec.find("Warning QuorumLost node node-a could not renew the quorum disk lease (epoch 1)")) == 1
	})
	w.waitFor("node-b takes over", 5*time.Second, func() bool { return w.holder() == "node-b" })
	if epochOf(w) != "2" || a.h.Held() {
		t.Errorf("epoch %q, node-a held %v", epochOf(w), a.h.Held())
	}
}

// TestConflictRetried: a Lease changed by someone else is read again and written, keeping what
// the other wrote.
func TestConflictRetried(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "qh-conflict", 4)
	w.start(w.config("node-a", nil))
	w.waitFor("node-a holds", 5*time.Second, func() bool { return w.holder() == "node-a" })
	l := w.lease()
	l.Labels["example.com/team"] = "storage"
	if err := w.c.Update(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	w.waitFor("a renewal after the change", 5*time.Second, func() bool {
		return w.lease().Spec.RenewTime.After(l.Spec.RenewTime.Time)
	})
	if got := w.lease(); got.Labels["example.com/team"] != "storage" || ptr.Deref(got.Spec.HolderIdentity, "") != "node-a" {
		t.Errorf("after the conflict: labels %v holder %v", got.Labels, got.Spec.HolderIdentity)
	}
}

// TestDamagedOwnerBlock: a damaged owner block stops Run with an error that wraps ErrCorrupt
// and names the block, the device and the QuorumDisk; nothing is published.
func TestDamagedOwnerBlock(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "qh-corrupt", 4)
	w.dev.Flip(quorum.BlockSize+100, 0xff)
	a := w.start(w.config("node-a", nil))
	err := a.wait(t)
	var be *quorum.BlockError
	if !errors.Is(err, quorum.ErrCorrupt) || !errors.As(err, &be) || be.Block != 1 ||
		!strings.Contains(err.Error(), "QuorumDisk qh-corrupt") || !strings.Contains(err.Error(), "*quorum.MemDevice") {
		t.Fatalf("Run: %v, want a damaged owner block of QuorumDisk qh-corrupt", err)
	}
	if w.lease() != nil {
		t.Errorf("a Lease was written: %+v", w.lease().Spec)
	}
	if ev := w.rec.find("Warning QuorumLost node node-a cannot acquire"); len(ev) != 1 {
		t.Errorf("events %v", w.rec.find(""))
	}
}

// TestDamageWhileHolding: damage found by a renewal is retried while the lease is valid, then
// the next Acquire stops Run; the Lease is cleared.
func TestDamageWhileHolding(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "qh-damage", 4)
	corruptBefore := renewErrorsMetric("qh-damage", ReasonCorrupt)
	a := w.start(w.config("node-a", nil))
	w.waitFor("node-a holds", 5*time.Second, func() bool { return w.holder() == "node-a" })
	w.dev.Flip(quorum.BlockSize+100, 0xff)
	err := a.wait(t)
	if !errors.Is(err, quorum.ErrCorrupt) {
		t.Fatalf("Run: %v, want ErrCorrupt", err)
	}
	if n := renewErrorsMetric("qh-damage", ReasonCorrupt) - corruptBefore; n < 1 {
		t.Errorf("%v corrupt renewals counted", n)
	}
	if w.holder() != "" {
		t.Errorf("Lease holder %q after Run stopped", w.holder())
	}
}

// TestOpenErrors: an unformatted device without Format, another cluster's disk, no free slot.
func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	w := newWorld(t, "qh-open", 0)
	cfg := w.config("node-a", nil)
	cfg.Format = false
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = h.Run(ctx)
	if !errors.Is(err, quorum.ErrNotFormatted) || !strings.Contains(err.Error(), "QuorumDisk qh-open") ||
		!strings.Contains(err.Error(), "--format") {
		t.Errorf("unformatted: %v", err)
	}
	if b := w.dev.Block(0); strings.Trim(string(b), "\x00") != "" {
		t.Error("the device was written")
	}

	other := quorum.Layout{ClusterUID: [quorum.UIDLen]byte{1, 2, 3}, Slots: 2, LogEntries: 2}
	if err := quorum.Format(w.dev, other); err != nil {
		t.Fatal(err)
	}
	h, err = New(w.config("node-a", nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Run(ctx); !errors.Is(err, quorum.ErrOtherCluster) || !strings.Contains(err.Error(), "wipe") {
		t.Errorf("another cluster's disk: %v", err)
	}
	if _, err := quorum.Open(w.dev, other.ClusterUID); err != nil {
		t.Errorf("the other cluster's disk was touched: %v", err)
	}

	w = newWorld(t, "qh-full", 1)
	a := w.start(w.config("node-a", nil))
	w.waitFor("node-a holds", 5*time.Second, func() bool { return w.holder() == "node-a" })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	h, err = New(w.config("node-b", nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Run(ctx); err == nil || !strings.Contains(err.Error(), "no free node slot for node node-b") {
		t.Errorf("full disk: %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "qh-new", 1)
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no node", func(c *Config) { c.Node = "" }, "node name"},
		{"no cluster", func(c *Config) { c.Cluster = "" }, "no cluster"},
		{"bad UID", func(c *Config) { c.ClusterUID = "not-a-uuid" }, `UID "not-a-uuid" of QuorumDisk qh-new`},
		{"no device", func(c *Config) { c.Device = nil }, "no device"},
		{"no client", func(c *Config) { c.Client = nil }, "no API client"},
		{"negative lease", func(c *Config) { c.LeaseDuration = -time.Second }, "negative lease duration"},
		{"lease too short", func(c *Config) { c.LeaseDuration = 5 }, "lease duration 5ns"},
		{"too many slots", func(c *Config) { c.Slots = quorum.MaxSlots + 1 }, "node slots"},
		{"no node-local channel", func(c *Config) { c.Local = nil }, "no node-local channel"},
		{"no CLOCK_MONOTONIC", func(c *Config) { c.LocalNode.Clock = nil }, "no CLOCK_MONOTONIC"},
		{"no boot ID", func(c *Config) { c.LocalNode.BootID = "" }, "boot ID"},
		{"another node's channel", func(c *Config) { c.LocalNode.Name = "node-b" }, "node node-b's, not node-a's"},
	} {
		cfg := w.config("node-a", nil)
		tc.mod(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	cfg := w.config("node-a", nil)
	cfg.LeaseDuration, cfg.LeaseNamespace, cfg.Slots, cfg.LogEntries, cfg.Clock = 0, "", 0, 0, nil
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if h.cfg.LeaseDuration != wolfpackv1alpha1.DefaultLeaseDuration || h.cfg.LeaseNamespace != DefaultLeaseNamespace ||
		h.cfg.Slots != DefaultSlots || h.cfg.LogEntries != DefaultLogEntries || h.Timing().IOTimeout != time.Second {
		t.Errorf("defaults: %+v, timing %+v", h.cfg, h.Timing())
	}
	if h.NeedLeaderElection() {
		t.Error("a holder needs no leader election")
	}
}
