package quorum

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestTiming(t *testing.T) {
	t.Parallel()
	tm, err := LeaseConfig{LeaseDuration: 10 * time.Second, IOTimeout: time.Second}.Timing()
	if err != nil {
		t.Fatal(err)
	}
	want := Timing{LeaseDuration: 10 * time.Second, IOTimeout: time.Second, MaxClockDrift: DefaultMaxClockDrift,
		Margin: 1011 * time.Millisecond, ConfirmDelay: 2004004005, PollInterval: time.Second,
		RenewInterval: (10*time.Second - 1011*time.Millisecond) / 4}
	if tm != want {
		t.Errorf("Timing:\n got %+v\nwant %+v", tm, want)
	}
	for _, tc := range []struct {
		cfg  LeaseConfig
		want string
	}{
		{LeaseConfig{LeaseDuration: 10 * time.Second}, "must be positive"},
		{LeaseConfig{LeaseDuration: 10 * time.Second, IOTimeout: time.Second, Margin: time.Second}, "less than the safe minimum"},
		{LeaseConfig{LeaseDuration: 5 * time.Second, IOTimeout: time.Second}, "want at least 4 x IOTimeout"},
		{LeaseConfig{LeaseDuration: 10 * time.Second, IOTimeout: time.Second, MaxClockDrift: 0.5}, "max clock drift"},
	} {
		if _, err := tc.cfg.Timing(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestLeaseLifecycle: acquire a fresh disk, renew, release; the next node acquires with the
// next epoch, and both changes are in the log.
func TestLeaseLifecycle(t *testing.T) {
	t.Parallel()
	fc := clocktesting.NewFakeClock(epoch0)
	dev, d := newMemDisk(t)
	a := newTestLease(t, d, "node-a", 0, fc)
	b := newTestLease(t, d, "node-b", 1, fc)
	tm := a.Timing()

	start := fc.Now()
	if err := acquire(t, fc, a); err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	took := fc.Since(start)
	// Join (D before a new process's first slot write, then W), the window (L+m), the claim's
	// confirmation (W), 10ms steps.
	if least := tm.IOTimeout + 2*tm.ConfirmDelay + tm.LeaseDuration + tm.Margin; took < least || took > least+time.Second {
		t.Errorf("Acquire took %v of fake time, want about %v", took, least)
	}
	if !a.Valid() || a.Epoch() != 1 {
		t.Fatalf("after Acquire: valid %v epoch %d", a.Valid(), a.Epoch())
	}
	if left := a.ValidUntil().Sub(fc.Now()); left > tm.LeaseDuration-tm.Margin || left < tm.LeaseDuration-tm.Margin-tm.ConfirmDelay-time.Second {
		t.Errorf("valid for %v more, want a little less than L-m = %v", left, tm.LeaseDuration-tm.Margin)
	}
	rec, err := d.ReadOwner()
	if err != nil || !rec.Held || rec.Node != "node-a" || rec.Epoch != 1 || rec.Incarnation != a.Incarnation() || rec.Owner() != "node-a" {
		t.Fatalf("owner record %+v, %v", rec, err)
	}
	if got := a.LastAcquisition(); got.Reason != ReasonFree || got.Previous != "" || got.Epoch != 1 {
		t.Errorf("LastAcquisition %+v", got)
	}

	// Renew: validity moves on, the counter goes up.
	fc.Step(tm.RenewInterval)
	before := a.ValidUntil()
	if err := a.Renew(t.Context()); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if !a.ValidUntil().Equal(fc.Now().Add(tm.LeaseDuration-tm.Margin)) || !a.ValidUntil().After(before) {
		t.Errorf("ValidUntil %v after renewing at %v", a.ValidUntil(), fc.Now())
	}
	rec2, _ := d.ReadOwner()
	if rec2.Counter <= rec.Counter || rec2.Epoch != 1 {
		t.Errorf("after Renew: %+v (before %+v)", rec2, rec)
	}
	// Acquire while held is a no-op.
	if err := a.Acquire(t.Context()); err != nil {
		t.Errorf("Acquire while held: %v", err)
	}

	// Release: "no owner", same epoch.
	if err := a.Release(t.Context()); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if a.Valid() {
		t.Error("still valid after Release")
	}
	rec3, _ := d.ReadOwner()
	if rec3.Held || rec3.Owner() != "" || rec3.Node != "node-a" || rec3.Epoch != 1 {
		t.Errorf("after Release: %+v", rec3)
	}
	if err := a.Release(t.Context()); !errors.Is(err, ErrNotHeld) {
		t.Errorf("second Release: %v, want ErrNotHeld", err)
	}
	if err := a.Renew(t.Context()); !errors.Is(err, ErrNotHeld) {
		t.Errorf("Renew after Release: %v, want ErrNotHeld", err)
	}

	if err := acquire(t, fc, b); err != nil {
		t.Fatalf("b Acquire: %v", err)
	}
	if b.Epoch() != 2 || b.LastAcquisition().Reason != ReasonFree || b.LastAcquisition().Previous != "node-a" {
		t.Errorf("b: epoch %d, %+v", b.Epoch(), b.LastAcquisition())
	}
	log, err := d.ReadLog()
	if err != nil || len(log) != 2 || log[0].Epoch != 1 || log[0].Owner != "node-a" || log[1].Epoch != 2 || log[1].Owner != "node-b" {
		t.Errorf("log %+v, %v", log, err)
	}
	slots, err := d.Slots()
	if err != nil || slots[0].Node != "node-a" || slots[0].Epoch != 1 || slots[1].Node != "node-b" || slots[1].Epoch != 2 || slots[2].Node != "" {
		t.Errorf("slots %+v, %v", slots, err)
	}
	if errs := d.Check(); len(errs) != 0 {
		t.Errorf("Check: %v", errs)
	}
	if dev.Ops(OpWrite) == 0 {
		t.Error("no writes counted")
	}
}

// TestTakeover: the holder stops renewing; a challenger gets the lease only after the holder's
// own validity has run out, with the next epoch, and the old holder learns it has lost.
func TestTakeover(t *testing.T) {
	t.Parallel()
	fc := clocktesting.NewFakeClock(epoch0)
	_, d := newMemDisk(t)
	a := newTestLease(t, d, "node-a", 0, fc)
	b := newTestLease(t, d, "node-b", 1, fc)
	if err := acquire(t, fc, a); err != nil {
		t.Fatal(err)
	}
	aUntil := a.ValidUntil()
	if err := acquire(t, fc, b); err != nil {
		t.Fatalf("b Acquire: %v", err)
	}
	if !fc.Now().After(aUntil) {
		t.Errorf("b holds at %v, before a's validity ended at %v", fc.Now(), aUntil)
	}
	if a.Valid() {
		t.Error("a still believes it holds the lease")
	}
	if got := b.LastAcquisition(); got.Reason != ReasonTakeover || got.Previous != "node-a" || got.Epoch != 2 {
		t.Errorf("b's acquisition: %+v", got)
	}
	if err := a.Renew(t.Context()); !errors.Is(err, ErrNotHeld) {
		t.Errorf("a Renew after the takeover: %v, want ErrNotHeld", err)
	}
	// a comes back and wants it again: it waits for b, which renews.
	ctx, cancel := context.WithCancel(t.Context())
	renewed := 0
	err := drive(t, fc, 2, 2*time.Minute, func() error {
		errc := make(chan error, 1)
		go func() { errc <- a.Acquire(ctx) }()
		for renewed < 20 {
			<-fc.After(b.Timing().RenewInterval) // (FakeClock.Sleep would step the clock)
			if err := b.Renew(t.Context()); err != nil {
				cancel()
				return err
			}
			renewed++
		}
		cancel()
		return <-errc
	})
	if !errors.Is(err, context.Canceled) || renewed != 20 {
		t.Fatalf("a Acquire against a renewing holder: %v after %d renewals", err, renewed)
	}
	if a.Valid() || !b.Valid() || a.Observed().Node != "node-b" {
		t.Errorf("a valid %v, b valid %v, a observed %+v", a.Valid(), b.Valid(), a.Observed())
	}
}

// TestRestartSameNode: a new incarnation of the holder's node takes it over like any other
// challenger (its predecessor stopped renewing), with a new epoch.
func TestRestartSameNode(t *testing.T) {
	t.Parallel()
	fc := clocktesting.NewFakeClock(epoch0)
	_, d := newMemDisk(t)
	a1 := newTestLease(t, d, "node-a", 0, fc)
	if err := acquire(t, fc, a1); err != nil {
		t.Fatal(err)
	}
	a2 := newTestLease(t, d, "node-a", 0, fc)
	if err := acquire(t, fc, a2); err != nil {
		t.Fatal(err)
	}
	if a2.Epoch() != 2 || a2.LastAcquisition().Reason != ReasonRestart || a1.Valid() {
		t.Errorf("a2 epoch %d %+v; a1 valid %v", a2.Epoch(), a2.LastAcquisition(), a1.Valid())
	}
}

// TestLost: a holder whose record another node has overwritten stops believing at its next
// renewal, and neither renews nor releases over the other's record.
func TestLost(t *testing.T) {
	t.Parallel()
	fc := clocktesting.NewFakeClock(epoch0)
	dev, d := newMemDisk(t)
	a := newTestLease(t, d, "node-a", 0, fc)
	if err := acquire(t, fc, a); err != nil {
		t.Fatal(err)
	}
	foreign := encodeOwner(OwnerRecord{Held: true, Node: "node-b", Incarnation: 7, Epoch: 2, Counter: 1}, testUID)
	dev.SetBlock(ownerBlock, foreign)
	if err := a.Release(t.Context()); !errors.Is(err, ErrLost) {
		t.Errorf("Release over another's record: %v, want ErrLost", err)
	}
	if got := dev.Block(ownerBlock); string(got) != string(foreign) {
		t.Error("Release overwrote another node's record")
	}

	a2 := newTestLease(t, d, "node-a", 0, fc)
	dev.SetBlock(ownerBlock, encodeOwner(OwnerRecord{}, testUID))
	if err := acquire(t, fc, a2); err != nil {
		t.Fatal(err)
	}
	dev.SetBlock(ownerBlock, foreign)
	err := a2.Renew(t.Context())
	if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "node-b") || a2.Valid() {
		t.Errorf("Renew over another's record: %v, valid %v", err, a2.Valid())
	}
	if got := dev.Block(ownerBlock); string(got) != string(foreign) {
		t.Error("Renew overwrote another node's record")
	}
}

// TestLateRenewal: a renewal whose write completes more than 2D after its anchor lands but
// does not extend the lease.
func TestLateRenewal(t *testing.T) {
	t.Parallel()
	fc := clocktesting.NewFakeClock(epoch0)
	dev, d := newMemDisk(t)
	a := newTestLease(t, d, "node-a", 0, fc)
	if err := acquire(t, fc, a); err != nil {
		t.Fatal(err)
	}
	until := a.ValidUntil()
	dev.SetDelay(fc, func(op Op, block int64) time.Duration {
		if op == OpWrite && block == ownerBlock {
			return 2500 * time.Millisecond
		}
		return 0
	})
	before, _ := d.ReadOwner()
	err := drive(t, fc, 1, time.Minute, func() error { return a.Renew(t.Context()) })
	if !errors.Is(err, ErrLate) {
		t.Fatalf("slow Renew: %v, want ErrLate", err)
	}
	if !a.ValidUntil().Equal(until) {
		t.Errorf("a late renewal moved ValidUntil from %v to %v", until, a.ValidUntil())
	}
	after, _ := d.ReadOwner()
	if after.Counter != before.Counter+1 {
		t.Errorf("the late write did not land: %+v", after)
	}
	// The next, timely renewal reads its own late write and extends the lease.
	dev.SetDelay(nil, nil)
	if err := a.Renew(t.Context()); err != nil || !a.ValidUntil().After(until) {
		t.Errorf("next Renew: %v, ValidUntil %v", err, a.ValidUntil())
	}
}

// TestOwnTornRenewal: a renewal torn by an I/O error leaves a damaged owner block; the holder's
// next renewal takes it for its own and overwrites it.
func TestOwnTornRenewal(t *testing.T) {
	t.Parallel()
	fc := clocktesting.NewFakeClock(epoch0)
	dev, d := newMemDisk(t)
	a := newTestLease(t, d, "node-a", 0, fc)
	if err := acquire(t, fc, a); err != nil {
		t.Fatal(err)
	}
	dev.Inject(Fault{Op: OpWrite, Block: ownerBlock, Torn: 100})
	err := a.Renew(t.Context())
	if !errors.Is(err, ErrInjected) || !strings.Contains(err.Error(), "block 1 (owner record)") {
		t.Fatalf("torn Renew: %v", err)
	}
	if _, err := d.ReadOwner(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("owner block after a torn write: %v", err)
	}
	if err := a.Renew(t.Context()); err != nil {
		t.Fatalf("Renew over its own torn write: %v", err)
	}
	if rec, err := d.ReadOwner(); err != nil || rec.Node != "node-a" {
		t.Errorf("after the repair: %+v, %v", rec, err)
	}
}

// TestCorruptOwnerNoTakeover: a damaged owner block stops a challenger with an error naming
// the block; it writes nothing. With ClaimCorruptOwner it claims the block once it has stayed
// the same for a lease period, with an epoch above every slot's mark.
func TestCorruptOwnerNoTakeover(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		damage func(dev *MemDevice)
		reason string
	}{
		{"flipped byte", func(dev *MemDevice) { dev.Flip(ownerBlock*BlockSize+40, 0x10) }, "checksum mismatch"},
		{"torn write", func(dev *MemDevice) {
			rec := encodeOwner(OwnerRecord{Held: true, Node: "node-z", Incarnation: 9, Epoch: 9, Counter: 9}, testUID)
			old := dev.Block(ownerBlock)
			copy(old, rec[:512])
			dev.SetBlock(ownerBlock, old)
		}, "checksum mismatch"},
		{"zeroed", func(dev *MemDevice) { dev.SetBlock(ownerBlock, make([]byte, BlockSize)) }, "all zeros"},
		{"misdirected", func(dev *MemDevice) { dev.SetBlock(ownerBlock, encodeNode(NodeRecord{}, 7, testUID)) }, "a node record block where a owner record belongs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fc := clocktesting.NewFakeClock(epoch0)
			dev, d := newMemDisk(t)
			a := newTestLease(t, d, "node-a", 0, fc)
			if err := acquire(t, fc, a); err != nil {
				t.Fatal(err)
			}
			tc.damage(dev)
			damaged := dev.Block(ownerBlock)
			b := newTestLease(t, d, "node-b", 1, fc)
			err := acquire(t, fc, b)
			be := blockErr(t, err)
			if !errors.Is(err, ErrCorrupt) || be.Block != ownerBlock || be.Kind != "owner record" || !strings.Contains(be.Reason, tc.reason) {
				t.Fatalf("Acquire over a damaged owner block: %v", err)
			}
			if b.Valid() || string(dev.Block(ownerBlock)) != string(damaged) {
				t.Fatal("the challenger took over or wrote the damaged block")
			}
			// The holder, whose own writes did not fail, does not overwrite it either.
			if err := a.Renew(t.Context()); !errors.Is(err, ErrCorrupt) {
				t.Errorf("holder Renew over damage it did not cause: %v", err)
			}

			c := newTestLease(t, d, "node-c", 2, fc, func(cfg *LeaseConfig) { cfg.ClaimCorruptOwner = true })
			if err := acquire(t, fc, c); err != nil {
				t.Fatalf("Acquire with ClaimCorruptOwner: %v", err)
			}
			if got := c.LastAcquisition(); got.Reason != ReasonCorrupt || got.Epoch != 2 || a.Valid() {
				t.Errorf("claim of the damaged block: %+v, a valid %v", got, a.Valid())
			}
		})
	}
}

// TestEpochHighWater: an old owner record put back by a late write does not make an epoch be
// handed out twice: the claim takes an epoch above every slot's high-water mark.
func TestEpochHighWater(t *testing.T) {
	t.Parallel()
	fc := clocktesting.NewFakeClock(epoch0)
	dev, d := newMemDisk(t)
	a := newTestLease(t, d, "node-a", 0, fc)
	if err := acquire(t, fc, a); err != nil {
		t.Fatal(err)
	}
	b := newTestLease(t, d, "node-b", 1, fc)
	if err := acquire(t, fc, b); err != nil {
		t.Fatal(err)
	}
	if b.Epoch() != 2 {
		t.Fatalf("b epoch %d", b.Epoch())
	}
	// A late write of a's first claim lands over b's record.
	dev.SetBlock(ownerBlock, encodeOwner(OwnerRecord{Held: true, Node: "node-a", Incarnation: 1, Epoch: 1, Counter: 1}, testUID))
	c := newTestLease(t, d, "node-c", 2, fc)
	if err := acquire(t, fc, c); err != nil {
		t.Fatal(err)
	}
	if c.Epoch() != 3 {
		t.Errorf("c took epoch %d over a record of epoch 1; epoch 2 was already granted", c.Epoch())
	}
}

// TestSlots: a slot of another node is refused; a torn slot record loses nothing.
func TestSlots(t *testing.T) {
	t.Parallel()
	fc := clocktesting.NewFakeClock(epoch0)
	dev, d := newMemDisk(t)
	a := newTestLease(t, d, "node-a", 0, fc)
	if err := acquire(t, fc, a); err != nil {
		t.Fatal(err)
	}
	imposter := newTestLease(t, d, "node-b", 0, fc)
	if err := acquire(t, fc, imposter); !errors.Is(err, ErrSlotTaken) {
		t.Errorf("Acquire on another node's slot: %v", err)
	}
	if _, err := NewLease(d, LeaseConfig{Node: "node-b", Slot: 3, LeaseDuration: 10 * time.Second, IOTimeout: time.Second}); err == nil {
		t.Error("NewLease accepted slot 3 of 3")
	}
	if _, err := NewLease(d, LeaseConfig{Node: "", Slot: 1, LeaseDuration: 10 * time.Second, IOTimeout: time.Second}); err == nil {
		t.Error("NewLease accepted an empty node name")
	}
	// Tear the current record of slot 0: the other still has the name and the mark.
	s, _ := d.readSlot(0)
	_, cur := s.current()
	idx := d.layout.recordBlock(0, cur)
	dev.Flip(idx*BlockSize+100, 1)
	slots, err := d.Slots()
	if err != nil || slots[0].Node != "node-a" {
		t.Errorf("slots after tearing one record: %+v, %v", slots, err)
	}
	if slot, err := d.FindSlot("node-a"); err != nil || slot != 0 {
		t.Errorf("FindSlot: %d, %v", slot, err)
	}
	if _, err := d.FindSlot("node-q"); !errors.Is(err, ErrNoSuchNode) {
		t.Errorf("FindSlot of an unknown node: %v", err)
	}
	// Both records damaged: the slot's mark is unknown, and a claim refuses to guess.
	dev.Flip(d.layout.recordBlock(0, 1-cur)*BlockSize+100, 1)
	b := newTestLease(t, d, "node-b", 1, fc)
	err = acquire(t, fc, b)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "slot 0 has no valid record") {
		t.Errorf("Acquire with an unreadable slot: %v", err)
	}
}

// TestIOErrors: I/O errors come back wrapped, naming the block, and grant nothing.
func TestIOErrors(t *testing.T) {
	t.Parallel()
	fc := clocktesting.NewFakeClock(epoch0)
	dev, d := newMemDisk(t)
	a := newTestLease(t, d, "node-a", 0, fc)
	dev.Inject(Fault{Op: OpRead, Block: ownerBlock})
	err := acquire(t, fc, a)
	if !errors.Is(err, ErrInjected) || !strings.Contains(err.Error(), "reading quorum disk block 1 (owner record)") || a.Valid() {
		t.Fatalf("Acquire with a failing read: %v", err)
	}
	dev.Inject(Fault{Op: OpWrite, Block: ownerBlock, Err: errors.New("EIO")})
	err = acquire(t, fc, a)
	if err == nil || !strings.Contains(err.Error(), "writing quorum disk block 1 (owner record): EIO") || a.Valid() {
		t.Fatalf("Acquire with a failing claim write: %v", err)
	}
	// The failed claim may have landed or not; the next Acquire starts over and succeeds.
	if err := acquire(t, fc, a); err != nil || !a.Valid() {
		t.Fatalf("Acquire after the errors: %v", err)
	}
	dev.Inject(Fault{Op: OpRead, Block: ownerBlock})
	until := a.ValidUntil()
	if err := a.Renew(t.Context()); !errors.Is(err, ErrInjected) || !a.ValidUntil().Equal(until) {
		t.Errorf("Renew with a failing read: %v, ValidUntil %v (was %v)", err, a.ValidUntil(), until)
	}
	dev.Inject(Fault{Op: OpWrite, Block: d.layout.recordBlock(1, 1)})
	b := newTestLease(t, d, "node-b", 1, fc)
	if err := acquire(t, fc, b); !errors.Is(err, ErrInjected) || !strings.Contains(err.Error(), "slot 1 record B") {
		t.Errorf("join with a failing slot write: %v", err)
	}
}

func TestPoisonPill(t *testing.T) {
	t.Parallel()
	fc := clocktesting.NewFakeClock(epoch0)
	_, d := newMemDisk(t)
	a := newTestLease(t, d, "node-a", 0, fc)
	b := newTestLease(t, d, "node-b", 1, fc)
	if err := acquire(t, fc, a); err != nil {
		t.Fatal(err)
	}
	if err := acquire(t, fc, b); err != nil { // joins slot 1; takes the lease over from a
		t.Fatal(err)
	}
	if m, err := d.ReadMessage("node-a"); err != nil || m.Kind != MessageNone {
		t.Fatalf("empty slot: %+v, %v", m, err)
	}
	if err := d.SendMessage("node-a", Message{Kind: MessagePoisonPill, From: "node-b", Epoch: b.Epoch(), Time: fc.Now()}); err != nil {
		t.Fatal(err)
	}
	m, err := d.ReadMessage("node-a")
	if err != nil || m.Kind != MessagePoisonPill || m.From != "node-b" || m.To != "node-a" || m.Epoch != 2 || m.Seq != 1 {
		t.Fatalf("pill: %+v, %v", m, err)
	}
	if err := d.ClearMessage("node-a", m.Seq+1); err != nil { // not the current one: left alone
		t.Fatal(err)
	}
	if m2, _ := d.ReadMessage("node-a"); m2.Kind != MessagePoisonPill {
		t.Errorf("a clear of another sequence number cleared the pill: %+v", m2)
	}
	if err := d.ClearMessage("node-a", m.Seq); err != nil {
		t.Fatal(err)
	}
	if m3, err := d.ReadMessage("node-a"); err != nil || m3.Kind != MessageNone || m3.Seq != 2 {
		t.Errorf("after clearing: %+v, %v", m3, err)
	}
	if err := d.SendMessage("node-q", Message{Kind: MessagePoisonPill, From: "node-b"}); !errors.Is(err, ErrNoSuchNode) {
		t.Errorf("pill for an unknown node: %v", err)
	}
	if m, _ := d.ReadMessage("node-b"); m.Kind != MessageNone {
		t.Errorf("node-b got %+v", m)
	}
}
