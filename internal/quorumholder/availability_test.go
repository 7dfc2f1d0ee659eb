package quorumholder

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/utils/ptr"

	"github.com/wolfpack-ha/wolfpack/internal/quorum"
)

// TestAPIOutageKeepsHold (issue 13, availability; RULES.md 6): with the API server unreachable
// (reads and writes fail) for three lease durations while the disk works, the holder keeps
// renewing the disk lease at the same epoch, the other node's holder never takes the disk, and
// once the API answers again the Lease is written again with the same epoch and acquireTime.
func TestAPIOutageKeepsHold(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "qh-api", 4)
	c := &flakyClient{Client: w.c}
	cfg := w.config("node-a", nil)
	cfg.Client = c
	a := w.start(cfg)
	w.waitFor("node-a holds", 5*time.Second, func() bool { return w.holder() == "node-a" })
	b := w.start(w.config("node-b", nil))
	first := w.lease()

	c.down.Store(true)
	end := w.main.Now().Add(3 * testL)
	w.waitFor("three lease durations without the API", 4*testL, func() bool {
		if rec := w.owner(); !rec.Held || rec.Node != "node-a" || rec.Epoch != 1 {
			t.Fatalf("during the API outage, after %v: owner record %+v, want held by node-a at epoch 1",
				w.main.Since(end.Add(-3*testL)), rec)
		}
		if !a.h.Held() || a.h.Epoch() != 1 || b.h.Held() {
			t.Fatalf("during the API outage: node-a held %v epoch %d, node-b held %v", a.h.Held(), a.h.Epoch(), b.h.Held())
		}
		return !w.main.Now().Before(end)
	})
	if c.failed.Load() < 2 {
		t.Errorf("%d failed API calls, want at least 2: the holder kept trying", c.failed.Load())
	}

	c.down.Store(false)
	back := w.main.Now()
	w.waitFor("the Lease written again", 5*time.Second, func() bool {
		return w.lease().Spec.RenewTime.After(back)
	})
	l := w.lease()
	if epochOf(w) != "1" || ptr.Deref(l.Spec.HolderIdentity, "") != "node-a" ||
		!l.Spec.AcquireTime.Equal(first.Spec.AcquireTime) ||
		ptr.Deref(l.Spec.LeaseTransitions, -1) != ptr.Deref(first.Spec.LeaseTransitions, -2) {
		t.Errorf("after the outage: epoch %q holder %v acquireTime %v (before %v) transitions %v (before %v)",
			epochOf(w), l.Spec.HolderIdentity, l.Spec.AcquireTime, first.Spec.AcquireTime,
			l.Spec.LeaseTransitions, first.Spec.LeaseTransitions)
	}
	if ev := w.rec.find("Warning QuorumLost node node-a"); len(ev) != 0 {
		t.Errorf("node-a reported a lost hold: %v", ev)
	}
}

// TestDamagedOtherSlot (issue 13, availability): damage to another node's slot (both of its
// records) and to a log entry does not stop the holder that holds the disk: it keeps renewing
// at the same epoch and reports each damaged block by number. A holder started on that disk does
// not stop either: it reports the damage and keeps running (the pod does not crash-loop).
func TestDamagedOtherSlot(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "qh-slot", 4)
	a := w.start(w.config("node-a", nil))
	w.waitFor("node-a holds", 5*time.Second, func() bool { return w.holder() == "node-a" })
	// Slot 2's records A and B are blocks 8 and 9 (2 + 3 x slot + record).
	for _, blk := range []int64{8, 9} {
		w.dev.Flip(blk*quorum.BlockSize+100, 0xff)
	}
	end := w.main.Now().Add(3 * testL)
	w.waitFor("three lease durations with a damaged slot", 4*testL, func() bool {
		if rec := w.owner(); !rec.Held || rec.Node != "node-a" || rec.Epoch != 1 || !a.h.Held() {
			t.Fatalf("with a damaged slot: owner record %+v, node-a held %v", rec, a.h.Held())
		}
		return !w.main.Now().Before(end)
	})
	ev := w.rec.find("Warning QuorumDiskDamaged")
	if len(ev) == 0 || !strings.Contains(ev[0], "block 8 (slot 2 record A)") || !strings.Contains(ev[0], "block 9 (slot 2 record B)") ||
		!strings.Contains(ev[0], "node-a") {
		t.Fatalf("Events %v, want a QuorumDiskDamaged Event naming blocks 8 and 9", w.rec.find(""))
	}
	if len(ev) != 1 {
		t.Errorf("Events %v, want one while the damage stays the same", ev)
	}
	if n := damagedMetric("qh-slot"); n != 2 {
		t.Errorf("wolfpack_quorum_damaged_blocks %v, want 2", n)
	}
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}

	// A holder started now cannot take an epoch (slot 2's high-water mark is unknown: see
	// package quorum), but it does not stop: it says why, and keeps trying.
	a2 := w.start(w.config("node-a", nil))
	w.waitFor("node-a's new holder reports the damage", 4*testL, func() bool {
		return len(w.rec.find("Warning QuorumDiskDamaged node node-a cannot acquire")) > 0
	})
	end = w.main.Now().Add(2 * testL)
	w.waitFor("two lease durations", 3*testL, func() bool {
		select {
		case <-a2.finished:
			t.Fatalf("Run returned: %v", a2.err)
		default:
		}
		return !w.main.Now().Before(end)
	})
}

// TestNoFormatOverDamagedMagic (issue 13, availability): a header whose magic is damaged is not
// taken for an empty device: the holder, allowed to format, refuses, names block 0, and writes
// nothing.
func TestNoFormatOverDamagedMagic(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "qh-magic", 4)
	a := w.start(w.config("node-a", nil))
	w.waitFor("node-a holds", 5*time.Second, func() bool { return w.holder() == "node-a" })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	before := make([][]byte, 0, 64)
	for blk := range int64(64) {
		before = append(before, w.dev.Block(blk))
	}
	w.dev.Flip(0, 0x20) // 'W' becomes 'w'
	before[0] = w.dev.Block(0)

	b := w.start(w.config("node-b", nil))
	err := b.wait(t)
	if err == nil || !strings.Contains(err.Error(), "block 0") {
		t.Fatalf("Run over a damaged magic: %v, want an error naming block 0", err)
	}
	for blk := range int64(64) {
		if string(w.dev.Block(blk)) != string(before[blk]) {
			t.Fatalf("block %d was written over a damaged header", blk)
		}
	}
}

// damagedMetric is wolfpack_quorum_damaged_blocks of node-a in cluster.
func damagedMetric(cluster string) float64 {
	return testutil.ToFloat64(damagedVec.WithLabelValues(cluster, "node-a"))
}

// TestHungAgentLetsDiskGo (issue 13 schedule 10; RULES.md 6): when the owner node's agent
// hangs (its node-local record ages past twice its interval) or says it has fenced the node,
// the holder stops renewing, so that its disk lease runs out and the other node's holder takes
// the disk; the holder's node-local record stops saying it holds the disk.
func TestHungAgentLetsDiskGo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		hurt func(*fakeAgent)
		why  string
	}{
		{"hung", func(a *fakeAgent) { a.hung.Store(true) }, "hung or gone"},
		{"fenced", func(a *fakeAgent) { a.fenced.Store(true) }, "has fenced this node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, "qh-agent-"+tc.name, 4)
			cfgA := w.config("node-a", nil)
			agentA := agentOf(cfgA)
			a := w.start(cfgA)
			w.waitFor("node-a holds", 5*time.Second, func() bool { return w.holder() == "node-a" })
			if err := agentA.holds(1); err != nil {
				t.Errorf("node-a's agent reads: %v", err)
			}
			b := w.start(w.config("node-b", nil))
			tm := a.h.Timing()

			tc.hurt(agentA)
			broken := w.main.Now()
			// node-a renews at most once more after its agent's record is stale (2 x interval),
			// then the owner record stays as it is.
			counter, changed := w.owner().Counter, w.main.Now()
			w.waitFor("node-a stops renewing", 2*agentInterval+4*tm.RenewInterval, func() bool {
				if c := w.owner().Counter; c != counter {
					counter, changed = c, w.main.Now()
				}
				return w.main.Since(changed) > 2*tm.RenewInterval
			})
			w.waitFor("node-b takes the disk", 3*testL, func() bool { return w.holder() == "node-b" })
			if took := w.main.Since(broken); took < tm.LeaseDuration {
				t.Errorf("node-b took the disk %v after node-a's agent broke, before a lease duration", took)
			}
			if epochOf(w) != "2" || !b.h.Held() || a.h.Held() {
				t.Errorf("after the takeover: epoch %q, node-b held %v, node-a held %v", epochOf(w), b.h.Held(), a.h.Held())
			}
			if err := agentA.holds(1); err == nil {
				t.Error("node-a's holder record still says it holds the disk")
			}
			w.waitFor("the QuorumLost Event", 5*time.Second, func() bool {
				ev := w.rec.find("Warning QuorumLost node node-a let the quorum disk lease (epoch 1) run out")
				return len(ev) == 1 && strings.Contains(ev[0], tc.why)
			})
		})
	}
}

// TestHolderWaitsForAgent (RULES.md 6): a holder does not contend for the disk before its node's
// agent has written a fresh record; once it has, it takes the disk.
func TestHolderWaitsForAgent(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "qh-wait", 4)
	cfg := w.config("node-a", nil)
	agent := agentOf(cfg)
	agent.hung.Store(true) // no record at all yet
	a := w.start(cfg)
	end := w.main.Now().Add(3 * testL)
	w.waitFor("three lease durations", 4*testL, func() bool {
		if rec := w.owner(); rec.Held || a.h.Held() {
			t.Fatalf("node-a took the disk with no agent record: %+v", rec)
		}
		return !w.main.Now().Before(end)
	})
	if err := agent.holds(0); err == nil || !strings.Contains(err.Error(), "does not hold") {
		t.Errorf("the holder's record: %v, want written, not held", err)
	}
	agent.hung.Store(false)
	w.waitFor("node-a holds", 5*time.Second, func() bool { return w.holder() == "node-a" })
	if err := agent.holds(1); err != nil {
		t.Errorf("the holder's record: %v", err)
	}
}
