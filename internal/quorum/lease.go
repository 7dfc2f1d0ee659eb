package quorum

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// DefaultMaxClockDrift is the clock rate error assumed when LeaseConfig.MaxClockDrift is zero:
// 0.1%, twice the most an NTP daemon slews a clock (500 ppm) and far more than a quartz
// oscillator's error.
const DefaultMaxClockDrift = 1e-3

// maxAllowedDrift bounds LeaseConfig.MaxClockDrift: past it the formulas still hold, but such a
// clock is broken rather than drifting.
const maxAllowedDrift = 0.05

// LeaseConfig configures a Lease. See the package documentation for what the durations mean
// and the rules that bind them.
type LeaseConfig struct {
	// Node is this node's name.
	Node string
	// Slot is this node's slot on the disk, 0 to Layout.Slots-1, given by whoever assigns
	// them (as sanlock's host_id or SBD's allocated slots). On first use the lease writes the
	// node's name into a free slot, and it refuses a slot that carries another name.
	Slot int
	// LeaseDuration (L) is how long an owner record must stay unchanged before a challenger
	// may claim it. A holder counts its lease valid for L-Margin after each renewal's anchor.
	LeaseDuration time.Duration
	// IOTimeout (D) is how long one read or one write may take. It is enforced, not assumed:
	// a renewal or claim whose write completes more than 2*D after its anchor grants nothing.
	IOTimeout time.Duration
	// MaxClockDrift (rho) bounds the rate error of every node's monotonic clock against real
	// time (0 means DefaultMaxClockDrift). Clocks need not agree on the time of day.
	MaxClockDrift float64
	// Margin (m) is taken off the holder's validity and added to the challenger's wait. Zero
	// means the least safe value, MinMargin(L, D, rho); a smaller one is refused.
	Margin time.Duration
	// PollInterval is how often a challenger re-reads the owner record; zero means D.
	PollInterval time.Duration
	// Clock is the clock (nil: the real one). Only durations on it are used, never its time
	// of day against another node's.
	Clock clock.Clock
	// Incarnation identifies this process in the records it writes; zero means random. It
	// must differ from every earlier process of the node.
	Incarnation uint64
	// ClaimCorruptOwner lets Acquire claim a damaged owner block that stays byte-for-byte the
	// same for a whole lease period, logging it with reason CorruptOwnerBlock. Off, a damaged
	// owner block stops Acquire with a *BlockError until a person looks. The claim rules
	// never look at the record's content, so this is as safe as an ordinary takeover; it is
	// off by default so that damage is seen first.
	ClaimCorruptOwner bool
	// Logger receives what the lease notices (zero value: discarded).
	Logger logr.Logger
}

// Timing is a LeaseConfig's durations, defaults filled in, and those derived from them.
type Timing struct {
	// LeaseDuration is L.
	LeaseDuration time.Duration
	// IOTimeout is D.
	IOTimeout time.Duration
	// MaxClockDrift is rho.
	MaxClockDrift float64
	// Margin is m, at least MinMargin(L, D, rho).
	Margin time.Duration
	// ConfirmDelay (W) is how long a challenger waits after its claim was written before it
	// re-reads the owner record: 2*D*(1+rho)/(1-rho), rounded up, so that any claim written
	// on the strength of a read made before this one landed has landed too.
	ConfirmDelay time.Duration
	// PollInterval is how often a challenger re-reads the owner record.
	PollInterval time.Duration
	// RenewInterval is how often a holder should renew: (L-m)/4, so that a renewal (at most
	// 2*D, and L-m >= 4*D) starts and ends well within the validity of the one before.
	RenewInterval time.Duration
}

// MinMargin is the least safe margin for lease duration l, I/O timeout d and clock rate error
// rho: d + rho*(l+d), rounded up. See the package documentation for why.
func MinMargin(l, d time.Duration, rho float64) time.Duration {
	return d + time.Duration(math.Ceil(rho*float64(l+d)))
}

// Timing checks the configuration's durations and returns them with the defaults filled in.
func (c LeaseConfig) Timing() (Timing, error) {
	t := Timing{LeaseDuration: c.LeaseDuration, IOTimeout: c.IOTimeout, MaxClockDrift: c.MaxClockDrift,
		Margin: c.Margin, PollInterval: c.PollInterval}
	if t.LeaseDuration <= 0 || t.IOTimeout <= 0 {
		return Timing{}, fmt.Errorf("lease duration %v and I/O timeout %v must be positive", t.LeaseDuration, t.IOTimeout)
	}
	if t.MaxClockDrift == 0 {
		t.MaxClockDrift = DefaultMaxClockDrift
	}
	if t.MaxClockDrift < 0 || t.MaxClockDrift > maxAllowedDrift || math.IsNaN(t.MaxClockDrift) {
		return Timing{}, fmt.Errorf("max clock drift %v: want 0 to %v", t.MaxClockDrift, maxAllowedDrift)
	}
	minMargin := MinMargin(t.LeaseDuration, t.IOTimeout, t.MaxClockDrift)
	if t.Margin == 0 {
		t.Margin = minMargin
	}
	if t.Margin < minMargin {
		return Timing{}, fmt.Errorf("margin %v is less than the safe minimum %v = IOTimeout + drift x (LeaseDuration + IOTimeout)", t.Margin, minMargin)
	}
	if t.LeaseDuration-t.Margin < 4*t.IOTimeout {
		return Timing{}, fmt.Errorf("lease duration %v leaves a validity of %v after the margin %v; want at least 4 x IOTimeout (%v) to renew in",
			t.LeaseDuration, t.LeaseDuration-t.Margin, t.Margin, 4*t.IOTimeout)
	}
	if t.PollInterval == 0 {
		t.PollInterval = t.IOTimeout
	}
	if t.PollInterval < 0 {
		return Timing{}, fmt.Errorf("poll interval %v is negative", t.PollInterval)
	}
	rho := t.MaxClockDrift
	t.ConfirmDelay = time.Duration(math.Ceil(float64(2*t.IOTimeout) * (1 + rho) / (1 - rho)))
	t.RenewInterval = (t.LeaseDuration - t.Margin) / 4
	return t, nil
}

// unsafeKnobs break the lease's rules on purpose, for the simulation's negative controls: they
// show that the checker catches what each rule prevents. Never set outside tests.
type unsafeKnobs struct {
	skipConfirm   bool          // claim without waiting ConfirmDelay and re-reading
	skipLateCheck bool          // let writes grant however late they complete
	noHighWater   bool          // take the epoch from the owner record alone
	shortWindow   time.Duration // watch the owner record this much less than L+m
}

// errRetry marks an attempt that did not get the lease but may be tried again at once.
var errRetry = errors.New("retry")

// Lease is one node's view of, and hold on, the quorum disk's lease: a delta lease in the
// manner of sanlock's. Acquire, Renew and Release are serialised; Valid, ValidUntil, Epoch and
// Observed may be called at any time from any goroutine.
type Lease struct {
	disk   *Disk
	cfg    LeaseConfig
	timing Timing
	clock  clock.Clock
	log    logr.Logger
	unsafe unsafeKnobs

	opMu sync.Mutex // serialises Acquire, Renew and Release; guards the fields below it
	// counter is the renewal counter of this incarnation's last owner record write.
	counter uint64
	// last is the bytes of this incarnation's last owner record write known to have landed;
	// pending those of a write whose outcome is unknown (it failed).
	last, pending []byte
	joined        bool
	slotSeq       uint64 // the highest Seq of our slot's records
	slotCur       int    // which of our slot's records is current (0, 1; -1: neither valid)
	slotEpoch     uint64 // the high-water mark on our slot
	// slotQuietUntil: no slot write before then (IOTimeout after a failed one).
	slotQuietUntil time.Time
	// ownFloor is the highest epoch this node may have been granted, in any incarnation.
	ownFloor uint64

	mu         sync.Mutex // guards the fields below
	held       bool
	validUntil time.Time
	epoch      uint64
	observed   OwnerRecord
	lastAcq    LogEntry
}

// NewLease returns a lease for node cfg.Node on disk d. It does no I/O.
func NewLease(d *Disk, cfg LeaseConfig) (*Lease, error) {
	if err := validName(cfg.Node); err != nil {
		return nil, err
	}
	if cfg.Slot < 0 || cfg.Slot >= d.layout.Slots {
		return nil, fmt.Errorf("slot %d: the disk has slots 0 to %d", cfg.Slot, d.layout.Slots-1)
	}
	t, err := cfg.Timing()
	if err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	for cfg.Incarnation == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("choosing an incarnation: %w", err)
		}
		cfg.Incarnation = binary.LittleEndian.Uint64(b[:])
	}
	// A new process writes its slot only once IOTimeout has passed: a write its dead
	// predecessor had in flight has landed by then, if it ever will.
	return &Lease{disk: d, cfg: cfg, timing: t, clock: cfg.Clock, log: cfg.Logger, slotCur: -1,
		slotQuietUntil: cfg.Clock.Now().Add(t.IOTimeout)}, nil
}

// Timing returns the lease's durations.
func (l *Lease) Timing() Timing { return l.timing }

// Incarnation returns the incarnation this lease writes.
func (l *Lease) Incarnation() uint64 { return l.cfg.Incarnation }

// Valid reports whether this node holds the lease now, by its own clock: the last successful
// claim or renewal's anchor plus L-m has not passed. A caller that acts on it must finish
// before ValidUntil, or fence its action with Epoch.
func (l *Lease) Valid() bool {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held && now.Before(l.validUntil)
}

// ValidUntil is when the current hold runs out by this node's clock (zero when not held).
func (l *Lease) ValidUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held {
		return time.Time{}
	}
	return l.validUntil
}

// Epoch is the epoch of this node's current or last hold (0 if it never held the lease).
func (l *Lease) Epoch() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// Observed is the last owner record this lease read and could decode.
func (l *Lease) Observed() OwnerRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.observed
}

// LastAcquisition is the log entry of this node's last successful Acquire.
func (l *Lease) LastAcquisition() LogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastAcq
}

func (l *Lease) observe(raw []byte) {
	if r, err := decodeOwner(raw, l.disk.layout.ClusterUID); err == nil {
		l.mu.Lock()
		l.observed = r
		l.mu.Unlock()
	}
}

// drop stops believing in the lease.
func (l *Lease) drop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held, l.validUntil = false, time.Time{}
}

// sleep waits d on the lease's clock, or until ctx is done.
func (l *Lease) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := l.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// late reports whether a write that completed at done, on the strength of a read anchored at
// anchor, is too late to grant anything.
func (l *Lease) late(anchor, done time.Time) bool {
	return !l.unsafe.skipLateCheck && done.Sub(anchor) > 2*l.timing.IOTimeout
}

// Acquire blocks until this node holds the lease, ctx is done, or something needs attention:
// an I/O error, a damaged owner block (a *BlockError wrapping ErrCorrupt, unless
// ClaimCorruptOwner), a slot of another node (ErrSlotTaken). It returns at once if the lease is
// already validly held. While another node renews, it keeps watching (Observed says who).
//
// It claims only after seeing the owner record byte-for-byte unchanged for L+m, measured from
// the return of its first read to the start of its last one; the claim write must complete
// within 2*D of that last read's start; then it waits ConfirmDelay and re-reads, and it holds
// the lease only if the record is still its claim. The claim's epoch is one above every epoch
// that may ever have been granted (the owner record's and every slot's high-water mark), and
// is recorded in this node's slot before the claim is written.
func (l *Lease) Acquire(ctx context.Context) error {
	l.opMu.Lock()
	defer l.opMu.Unlock()
	if l.Valid() {
		return nil
	}
	l.drop()
	if !l.joined {
		if err := l.join(ctx); err != nil {
			return err
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := l.attempt(ctx)
		if !errors.Is(err, errRetry) {
			return err
		}
		l.log.V(2).Info("quorum lease not acquired yet", "reason", err.Error())
	}
}

// attempt is one watch-and-claim round of Acquire.
func (l *Lease) attempt(ctx context.Context) error {
	uid := l.disk.layout.ClusterUID
	raw0, err := l.disk.readBlock(ownerBlock)
	if err != nil {
		return err
	}
	s0 := l.clock.Now()
	rec0, decErr := decodeOwner(raw0, uid)
	if decErr != nil {
		if !l.cfg.ClaimCorruptOwner {
			return decErr
		}
		l.log.Error(decErr, "quorum disk owner block is damaged; it is claimed if it stays the same for a lease period")
	} else {
		l.observe(raw0)
	}
	epoch, err := l.watch(ctx, raw0, s0, rec0.Epoch, decErr == nil)
	if err != nil {
		return err
	}
	anchor, claim, err := l.claim(ctx, raw0, epoch)
	if err != nil {
		return err
	}
	validUntil := anchor.Add(l.timing.LeaseDuration - l.timing.Margin)
	if !l.clock.Now().Before(validUntil) {
		return fmt.Errorf("%w: stalled until the claim had run out", errRetry)
	}

	entry := LogEntry{Epoch: epoch, Owner: l.cfg.Node, Incarnation: l.cfg.Incarnation, Time: l.clock.Now()}
	switch {
	case decErr != nil:
		entry.Reason = ReasonCorrupt
	case !rec0.Held:
		entry.Reason, entry.Previous = ReasonFree, rec0.Node
	case rec0.Node == l.cfg.Node:
		entry.Reason, entry.Previous = ReasonRestart, rec0.Node
	default:
		entry.Reason, entry.Previous = ReasonTakeover, rec0.Node
	}
	l.ownFloor = max(l.ownFloor, epoch)
	l.mu.Lock()
	l.held, l.validUntil, l.epoch, l.lastAcq = true, validUntil, epoch, entry
	l.observed, _ = decodeOwner(claim, uid)
	l.mu.Unlock()
	if err := l.disk.writeLog(entry); err != nil {
		l.log.Error(err, "writing the quorum log entry", "epoch", epoch)
	}
	return nil
}

// watch re-reads the owner record until it has stayed raw0 for L+m from s0 (rule 3), and
// returns the epoch to claim with. It returns errRetry when the record changed.
func (l *Lease) watch(ctx context.Context, raw0 []byte, s0 time.Time, ownerEpoch uint64, known bool) (uint64, error) {
	// The epoch is chosen (and recorded in this node's slot) half-way through the window: late
	// enough that a live holder's renewals restart the window before it (no slot reads while a
	// holder is alive), early enough that the slot reads are done when the window ends.
	window := l.timing.LeaseDuration + l.timing.Margin - l.unsafe.shortWindow
	var epoch uint64
	for {
		left := window - l.clock.Since(s0)
		if epoch == 0 && left <= window/2 {
			var err error
			if epoch, err = l.nextEpoch(ctx, ownerEpoch, known); err != nil {
				return 0, err
			}
			continue
		}
		if left <= 0 {
			return epoch, nil
		}
		if err := l.sleep(ctx, min(left, l.timing.PollInterval)); err != nil {
			return 0, err
		}
		raw, err := l.disk.readBlock(ownerBlock)
		if err != nil {
			return 0, err
		}
		if !bytes.Equal(raw, raw0) {
			l.observe(raw)
			return 0, fmt.Errorf("%w: the owner record changed", errRetry)
		}
	}
}

// claim makes the last read (the anchor), writes the claim, and confirms it (rule 4). It
// returns the anchor and the claim's bytes, or errRetry when the claim did not win.
func (l *Lease) claim(ctx context.Context, raw0 []byte, epoch uint64) (time.Time, []byte, error) {
	anchor := l.clock.Now()
	raw, err := l.disk.readBlock(ownerBlock)
	if err != nil {
		return anchor, nil, err
	}
	if !bytes.Equal(raw, raw0) {
		l.observe(raw)
		return anchor, nil, fmt.Errorf("%w: the owner record changed at the last look", errRetry)
	}
	l.counter++
	claim := encodeOwner(OwnerRecord{Held: true, Node: l.cfg.Node, Incarnation: l.cfg.Incarnation,
		Epoch: epoch, Counter: l.counter, Time: l.clock.Now()}, l.disk.layout.ClusterUID)
	if err := l.disk.writeBlock(ownerBlock, claim); err != nil {
		l.pending = claim
		return anchor, nil, err
	}
	l.last, l.pending = claim, nil
	if l.late(anchor, l.clock.Now()) {
		return anchor, nil, fmt.Errorf("%w: %w", errRetry, ErrLate)
	}
	if l.unsafe.skipConfirm {
		return anchor, claim, nil
	}
	if err := l.sleep(ctx, l.timing.ConfirmDelay); err != nil {
		return anchor, nil, err
	}
	if raw, err = l.disk.readBlock(ownerBlock); err != nil {
		return anchor, nil, err
	}
	if !bytes.Equal(raw, claim) {
		l.observe(raw)
		return anchor, nil, fmt.Errorf("%w: another claim replaced ours", errRetry)
	}
	return anchor, claim, nil
}

// join makes sure this node's slot is its own: it carries the node's name, or is free and is
// taken (write, wait ConfirmDelay, re-read, as a claim). It loads the slot's high-water mark.
func (l *Lease) join(ctx context.Context) error {
	s, err := l.disk.readSlot(l.cfg.Slot)
	if err != nil {
		return err
	}
	if err := l.checkSlotNames(s); err != nil {
		return err
	}
	hw, err := s.highWater()
	if err != nil {
		return err
	}
	if len(s.names()) == 0 {
		cur, which := s.current()
		rec := NodeRecord{Node: l.cfg.Node, Incarnation: l.cfg.Incarnation, Seq: cur.Seq + 1, Epoch: hw, Time: l.clock.Now()}
		if err := l.writeSlot(ctx, rec, 1-max(which, 0)); err != nil {
			return err
		}
		if err := l.sleep(ctx, l.timing.ConfirmDelay); err != nil {
			return err
		}
		if s, err = l.disk.readSlot(l.cfg.Slot); err != nil {
			return err
		}
		if err := l.checkSlotNames(s); err != nil {
			return err
		}
		if hw, err = s.highWater(); err != nil {
			return err
		}
	}
	_, l.slotCur = s.current()
	l.slotSeq = max(s.recs[0].Seq, s.recs[1].Seq)
	l.slotEpoch, l.ownFloor = hw, max(l.ownFloor, hw)
	l.joined = true
	return nil
}

func (l *Lease) checkSlotNames(s slotState) error {
	for _, n := range s.names() {
		if n != l.cfg.Node {
			return fmt.Errorf("%w: slot %d carries node %q, not %q", ErrSlotTaken, s.slot, n, l.cfg.Node)
		}
	}
	return nil
}

// writeSlot writes one of this node's slot records. After a failed slot write it first waits
// until IOTimeout has passed since the failure, by when that write has landed if it ever will
// (the storage assumption), so that it cannot land over a newer record and lower the slot's
// high-water mark.
func (l *Lease) writeSlot(ctx context.Context, rec NodeRecord, which int) error {
	if err := l.sleep(ctx, l.slotQuietUntil.Sub(l.clock.Now())); err != nil {
		return err
	}
	idx := l.disk.layout.recordBlock(l.cfg.Slot, which)
	if err := l.disk.writeBlock(idx, encodeNode(rec, idx, l.disk.layout.ClusterUID)); err != nil {
		l.slotQuietUntil = l.clock.Now().Add(l.timing.IOTimeout)
		return err
	}
	return nil
}

// nextEpoch returns the epoch of a claim: one above the owner record's epoch (when it could be
// decoded), every other slot's high-water mark, and every epoch this node may have been
// granted. It records the epoch in this node's slot if the slot's mark is lower, before the
// claim is written, so that a later claim takes a higher one even if a late write has put an
// old epoch back into the owner record.
func (l *Lease) nextEpoch(ctx context.Context, ownerEpoch uint64, known bool) (uint64, error) {
	floor := l.ownFloor
	if known {
		floor = max(floor, ownerEpoch)
	}
	if l.unsafe.noHighWater {
		return floor + 1, nil
	}
	var mine slotState
	for slot := range l.disk.layout.Slots {
		s, err := l.disk.readSlot(slot)
		if err != nil {
			return 0, err
		}
		hw, err := s.highWater()
		if err != nil {
			return 0, err
		}
		if slot != l.cfg.Slot {
			floor = max(floor, hw)
			continue
		}
		if err := l.checkSlotNames(s); err != nil {
			return 0, err
		}
		if hw > l.slotEpoch {
			// Someone else wrote this node's slot: count what they wrote.
			l.log.Info("this node's slot carries a higher epoch than this process wrote", "slot", slot, "epoch", hw)
			floor, l.slotEpoch = max(floor, hw), hw
		}
		mine = s
	}
	epoch := floor + 1
	if epoch > l.slotEpoch {
		_, which := mine.current()
		seq := max(mine.recs[0].Seq, mine.recs[1].Seq, l.slotSeq) + 1
		rec := NodeRecord{Node: l.cfg.Node, Incarnation: l.cfg.Incarnation, Seq: seq, Epoch: epoch, Time: l.clock.Now()}
		target := 1 - max(which, 0)
		if err := l.writeSlot(ctx, rec, target); err != nil {
			return 0, err
		}
		l.slotSeq, l.slotCur, l.slotEpoch = seq, target, epoch
	}
	return epoch, nil
}

// Renew extends the lease: it reads the owner record, checks that it is still this holder's
// last write, and writes it again with the next counter. The lease is then valid until this
// call's start (its anchor) plus L-m, provided the write completed within 2*D of the anchor
// (ErrLate otherwise: the write landed, the validity is unchanged). A renewal is only tried
// while the lease is still valid (ErrNotHeld otherwise; Acquire again). If the record is
// another node's, the lease is lost at once (ErrLost). If it is damaged and this holder's own
// last write failed, the damage is taken for that torn write and overwritten; otherwise it is
// returned (a *BlockError) and the validity runs out unless a later Renew succeeds.
func (l *Lease) Renew(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.opMu.Lock()
	defer l.opMu.Unlock()
	anchor := l.clock.Now()
	l.mu.Lock()
	held, validUntil, epoch := l.held, l.validUntil, l.epoch
	l.mu.Unlock()
	if !held {
		return ErrNotHeld
	}
	if !anchor.Before(validUntil) {
		l.drop()
		return fmt.Errorf("%w: it ran out at %v", ErrNotHeld, validUntil)
	}
	if err := l.checkOwn("renewing"); err != nil {
		return err
	}
	l.counter++
	b := encodeOwner(OwnerRecord{Held: true, Node: l.cfg.Node, Incarnation: l.cfg.Incarnation,
		Epoch: epoch, Counter: l.counter, Time: l.clock.Now()}, l.disk.layout.ClusterUID)
	if err := l.disk.writeBlock(ownerBlock, b); err != nil {
		l.pending = b
		return err
	}
	l.last, l.pending = b, nil
	if done := l.clock.Now(); l.late(anchor, done) {
		return fmt.Errorf("%w: the renewal took %v", ErrLate, done.Sub(anchor))
	}
	l.mu.Lock()
	if l.held {
		l.validUntil = anchor.Add(l.timing.LeaseDuration - l.timing.Margin)
	}
	l.mu.Unlock()
	return nil
}

// checkOwn reads the owner record and checks that it is still this holder's last write (or the
// write that failed). opMu is held.
func (l *Lease) checkOwn(doing string) error {
	raw, err := l.disk.readBlock(ownerBlock)
	if err != nil {
		return err
	}
	if bytes.Equal(raw, l.last) || (l.pending != nil && bytes.Equal(raw, l.pending)) {
		return nil
	}
	rec, derr := decodeOwner(raw, l.disk.layout.ClusterUID)
	if derr != nil {
		if l.pending == nil {
			return derr
		}
		l.log.Error(derr, "overwriting a damaged owner block, taken for this holder's own torn write", "doing", doing)
		return nil
	}
	l.observe(raw)
	l.drop()
	return fmt.Errorf("%w: %s: the owner record now names %q (incarnation %x, epoch %d, held %v)",
		ErrLost, doing, rec.Node, rec.Incarnation, rec.Epoch, rec.Held)
}

// Release gives the lease up: this node stops believing it holds it at once, then, if the
// owner record is still its own (read, check, write: a release never overwrites another
// node's record), writes "no owner", keeping the epoch. A release does not shorten the next
// holder's wait: a challenger still watches the record for L+m (a late release could not be
// told from a timely one), so it mostly tells people and the next holder's log entry.
func (l *Lease) Release(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.opMu.Lock()
	defer l.opMu.Unlock()
	now := l.clock.Now()
	l.mu.Lock()
	wasValid := l.held && now.Before(l.validUntil)
	epoch := l.epoch
	l.mu.Unlock()
	l.drop()
	if !wasValid {
		return ErrNotHeld
	}
	if err := l.checkOwn("releasing"); err != nil {
		return err
	}
	l.counter++
	b := encodeOwner(OwnerRecord{Node: l.cfg.Node, Incarnation: l.cfg.Incarnation, Epoch: epoch,
		Counter: l.counter, Time: l.clock.Now()}, l.disk.layout.ClusterUID)
	if err := l.disk.writeBlock(ownerBlock, b); err != nil {
		l.pending = b
		return err
	}
	l.last, l.pending = b, nil
	return nil
}
