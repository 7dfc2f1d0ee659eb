package quorum

// A deterministic discrete-event simulation of the lease: two or three contenders run the real
// Lease code (Acquire, Renew, Release) on one simulated disk, each in its own goroutine, but only
// one goroutine runs at a time: a process runs until it blocks on its clock or on an I/O, and
// hands the baton back to the scheduler, which advances simulated time to the next event. So a
// schedule is a function of its seed alone, and race-free.
//
// Every node has its own clock, running at its own rate (within MaxClockDrift of real time)
// from its own arbitrary time of day. Every I/O takes effect at a random instant between its
// issue and its return (the latency is random, up to IOTimeout, sometimes far more). Faults:
// stalls of a process before an I/O or after a wake-up (short ones, and ones longer than the
// lease: GC pauses, SIGSTOP, a frozen VM), crashes at any instant (a write in flight then lands,
// does not, or tears) and restarts with a new incarnation, I/O errors (nothing written, written
// then failed, torn then failed, failed now and landing later).
//
// The checker runs after every event: at most one node believes, by its own Lease.Valid, that
// it holds the lease; every grant's epoch is above every earlier grant's; no node slot's
// high-water mark goes down. At the end, every log entry names the node that was granted its
// epoch.

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/utils/clock"
)

// Simulated durations: L=10s, D=1s; MaxClockDrift 0.1%.
const (
	simL     = 10 * time.Second
	simD     = time.Second
	simDrift = 1e-3
)

type simEventKind int

const (
	evWake simEventKind = iota
	evEffect
	evReturn
	evCrash
	evRestart
)

type simEvent struct {
	at   time.Duration
	seq  uint64
	kind simEventKind
	node *simNode
	gen  int
	io   *simIO
}

type eventHeap []*simEvent

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*simEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// simIO is one request in flight.
type simIO struct {
	op    Op
	buf   []byte // the process's buffer (reads land in it at the effect)
	data  []byte // a write's bytes, copied at issue
	off   int64
	torn  int   // bytes of a write that land; len(data) for all of it
	err   error // returned to the process
	apply bool  // whether the effect happens
	done  bool  // the effect has happened
}

type msgKind int

const (
	msgTimer msgKind = iota
	msgIO
	msgExit
)

type simMsg struct {
	kind msgKind
	wake time.Duration // msgTimer: real time to wake at
	io   *simIO
}

type simNode struct {
	s      *sim
	idx    int
	name   string
	rate   float64       // local clock rate, 1 +- drift
	offset time.Duration // local time of day at real 0
	gen    int
	alive  bool
	resume chan bool // true: die
	lease  *Lease
	rng    *rand.Rand // used by the process goroutine only
	pend   *simIO     // the I/O in flight, if any
	// heldEpoch and heldGen: the last grant the checker saw this node hold.
	heldEpoch uint64
	heldGen   int
}

// simStats are counted over schedules.
type simStats struct {
	schedules, events                    int
	grants, takeovers, restartsOwn, free int
	corruptClaims                        int
	crashes, restarts                    int
	ioErrors, tornWrites, lateLandings   int
	shortStalls, mediumStalls            int
	longStalls, slowIOs                  int
	lateWrites, lost, releases           int
	acquireErrs, corruptSeen             int
	ownerEpochDrops                      int
	violations                           int
	firstViolation                       string
}

func (a *simStats) add(b simStats) {
	a.schedules += b.schedules
	a.events += b.events
	a.grants += b.grants
	a.takeovers += b.takeovers
	a.restartsOwn += b.restartsOwn
	a.free += b.free
	a.corruptClaims += b.corruptClaims
	a.crashes += b.crashes
	a.restarts += b.restarts
	a.ioErrors += b.ioErrors
	a.tornWrites += b.tornWrites
	a.lateLandings += b.lateLandings
	a.shortStalls += b.shortStalls
	a.mediumStalls += b.mediumStalls
	a.longStalls += b.longStalls
	a.slowIOs += b.slowIOs
	a.lateWrites += b.lateWrites
	a.lost += b.lost
	a.releases += b.releases
	a.acquireErrs += b.acquireErrs
	a.corruptSeen += b.corruptSeen
	a.ownerEpochDrops += b.ownerEpochDrops
	a.violations += b.violations
	if a.firstViolation == "" {
		a.firstViolation = b.firstViolation
	}
}

func (a simStats) String() string {
	return fmt.Sprintf("%d schedules, %d events: %d grants (%d takeovers, %d restarts of the holder, %d of a free disk, %d of a damaged owner block), "+
		"%d crashes, %d restarts, %d I/O errors (%d torn writes, %d landing after their error), %d slow I/Os, "+
		"%d short, %d medium and %d long stalls, %d late writes refused, %d leases lost, %d releases, %d Acquire errors (%d damaged owner block), "+
		"%d times a late write put an older epoch back into the owner record; %d violations",
		a.schedules, a.events, a.grants, a.takeovers, a.restartsOwn, a.free, a.corruptClaims,
		a.crashes, a.restarts, a.ioErrors, a.tornWrites, a.lateLandings, a.slowIOs,
		a.shortStalls, a.mediumStalls, a.longStalls, a.lateWrites, a.lost, a.releases, a.acquireErrs, a.corruptSeen,
		a.ownerEpochDrops, a.violations)
}

// simConfig is one schedule.
type simConfig struct {
	seed     uint64
	nodes    int
	duration time.Duration
	knobs    unsafeKnobs
	// stress: the highest fault rates in every schedule, for the negative controls.
	stress bool
}

// faultRates are drawn per schedule, so that schedules differ in kind, not only in detail.
type faultRates struct {
	ioErr, slowIO                      float64
	shortStall, mediumStall, longStall float64
	crashEvery                         time.Duration // mean; 0: no crashes
	claimCorrupt                       bool
}

type sim struct {
	cfg    simConfig
	rates  faultRates
	rng    *rand.Rand
	now    time.Duration
	base   time.Time
	events eventHeap
	seq    uint64
	layout Layout
	dev    *MemDevice
	nodes  []*simNode
	toSch  chan simMsg

	stats      simStats
	violation  string
	maxGranted uint64
	grantedTo  map[uint64]string
	slotHW     []uint64
	ownerEpoch uint64
}

func newSim(cfg simConfig) *sim {
	rng := rand.New(rand.NewPCG(cfg.seed, 0x51a7e))
	s := &sim{cfg: cfg, rng: rng, base: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC),
		toSch: make(chan simMsg), grantedTo: map[uint64]string{}}
	pick := func(xs ...float64) float64 { return xs[rng.IntN(len(xs))] }
	s.rates = faultRates{
		ioErr:        pick(0, 0.003, 0.01, 0.03),
		slowIO:       pick(0, 0.005, 0.02),
		shortStall:   pick(0, 0.01, 0.05),
		mediumStall:  pick(0, 0.003, 0.01),
		longStall:    pick(0, 0.002, 0.005),
		claimCorrupt: rng.IntN(2) == 0,
	}
	if rng.IntN(4) != 0 {
		s.rates.crashEvery = time.Duration(20+rng.IntN(100)) * time.Second
	}
	if cfg.stress {
		s.rates = faultRates{ioErr: 0.01, slowIO: 0.02, shortStall: 0.05, mediumStall: 0.03, longStall: 0.005,
			crashEvery: 30 * time.Second, claimCorrupt: true}
	}
	s.layout = Layout{ClusterUID: [UIDLen]byte{0xc1, 0x05, 0x7e, 0x12}, Slots: cfg.nodes + 1, LogEntries: 8}
	s.dev = NewMemDevice(s.layout.Size())
	if err := Format(s.dev, s.layout); err != nil {
		panic(err)
	}
	s.slotHW = make([]uint64, s.layout.Slots)
	for i := range cfg.nodes {
		n := &simNode{s: s, idx: i, name: fmt.Sprintf("node-%c", 'a'+i), resume: make(chan bool),
			rate:   1 + (rng.Float64()*2-1)*simDrift,
			offset: time.Duration(rng.Int64N(int64(48*time.Hour))) - 24*time.Hour}
		s.nodes = append(s.nodes, n)
	}
	return s
}

func (s *sim) push(ev *simEvent) {
	s.seq++
	ev.seq = s.seq
	heap.Push(&s.events, ev)
}

func (s *sim) failf(format string, args ...any) {
	if s.violation == "" {
		s.violation = fmt.Sprintf("seed %d, %d nodes, at %v: ", s.cfg.seed, s.cfg.nodes, s.now) + fmt.Sprintf(format, args...)
	}
}

func (s *sim) uniform(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)))
}

// stall is how long a process stops before an I/O or after a wake-up, usually nothing:
// short (up to 2D: a GC pause, a busy host), medium (2D to L: a storage path failing over, a
// VM migrated) or long (L/2 to 3L: SIGSTOP, a frozen VM).
func (s *sim) stall() time.Duration {
	switch r := s.rng.Float64(); {
	case r < s.rates.longStall:
		s.stats.longStalls++
		return s.uniform(simL/2, 3*simL)
	case r < s.rates.longStall+s.rates.mediumStall:
		s.stats.mediumStalls++
		return s.uniform(2*simD, simL)
	case r < s.rates.longStall+s.rates.mediumStall+s.rates.shortStall:
		s.stats.shortStalls++
		return s.uniform(0, 2*simD)
	default:
		return 0
	}
}

func (s *sim) run() simStats {
	defer s.shutdown()
	for _, n := range s.nodes {
		s.start(n)
	}
	if s.rates.crashEvery > 0 {
		s.push(&simEvent{at: s.expo(s.rates.crashEvery), kind: evCrash})
	}
	for s.violation == "" && s.events.Len() > 0 {
		ev := heap.Pop(&s.events).(*simEvent)
		if ev.at > s.cfg.duration {
			break
		}
		s.now = ev.at
		s.stats.events++
		s.handle(ev)
	}
	s.checkLog()
	s.stats.schedules = 1
	if s.violation != "" {
		s.stats.violations, s.stats.firstViolation = 1, s.violation
	}
	return s.stats
}

func (s *sim) expo(mean time.Duration) time.Duration {
	return time.Duration(s.rng.ExpFloat64() * float64(mean))
}

func (s *sim) handle(ev *simEvent) {
	switch ev.kind {
	case evWake:
		if ev.gen == ev.node.gen && ev.node.alive {
			s.resume(ev.node, false)
		}
	case evEffect:
		s.effect(ev.io)
	case evReturn:
		if ev.gen == ev.node.gen && ev.node.alive {
			ev.node.pend = nil
			s.resume(ev.node, false)
		}
	case evCrash:
		var alive []*simNode
		for _, n := range s.nodes {
			if n.alive {
				alive = append(alive, n)
			}
		}
		if len(alive) > 0 {
			s.crash(alive[s.rng.IntN(len(alive))])
		}
		s.push(&simEvent{at: s.now + s.expo(s.rates.crashEvery), kind: evCrash})
	case evRestart:
		s.stats.restarts++
		s.start(ev.node)
	}
}

// crash kills n where it is blocked; a write it has in flight lands, does not, or tears,
// within D (the storage assumption: the host aborts or completes it).
func (s *sim) crash(n *simNode) {
	s.stats.crashes++
	if io := n.pend; io != nil && io.op == OpWrite && !io.done {
		switch s.rng.IntN(3) {
		case 0:
			io.apply = false
		case 1:
			io.apply, io.torn = true, 1+s.rng.IntN(BlockSize-1)
			s.stats.tornWrites++
		default:
			io.apply = true
		}
		// The scheduled effect, if later, finds the I/O done and does nothing.
		s.push(&simEvent{at: s.now + s.uniform(0, simD), kind: evEffect, io: io})
	}
	n.pend = nil
	n.resume <- true
	s.wait(n)
	n.gen++
	s.push(&simEvent{at: s.now + s.uniform(time.Second, 2*simL), kind: evRestart, node: n})
}

func (s *sim) start(n *simNode) {
	n.gen++
	n.alive = true
	n.lease = nil
	n.rng = rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
	incarnation := s.rng.Uint64() | 1
	go func() {
		defer func() {
			if r := recover(); r != nil {
				s.failf("node %s panicked: %v\n%s", n.name, r, debug.Stack())
			}
			s.toSch <- simMsg{kind: msgExit}
		}()
		n.run(incarnation)
	}()
	s.wait(n)
}

func (s *sim) resume(n *simNode, die bool) {
	n.resume <- die
	s.wait(n)
}

// wait takes the baton back from n and schedules what it asked for.
func (s *sim) wait(n *simNode) {
	m := <-s.toSch
	switch m.kind {
	case msgExit:
		n.alive = false
	case msgTimer:
		s.push(&simEvent{at: m.wake + s.stall(), kind: evWake, node: n, gen: n.gen})
	case msgIO:
		s.issue(n, m.io)
	}
	s.check()
}

// issue schedules the effect and the return of an I/O.
func (s *sim) issue(n *simNode, io *simIO) {
	n.pend = io
	start := s.now + s.stall()
	total := s.uniform(simD/20, simD*9/10)
	if s.rng.Float64() < s.rates.slowIO {
		s.stats.slowIOs++
		total = s.uniform(simD, 4*simD)
	}
	effect := start + time.Duration(s.rng.Float64()*float64(total))
	ret := start + total
	io.apply = true
	io.torn = len(io.data)
	if s.rng.Float64() < s.rates.ioErr {
		s.stats.ioErrors++
		io.err = fmt.Errorf("simulated %s error: %w", io.op, ErrInjected)
		switch k := s.rng.IntN(4); {
		case io.op == OpRead || k == 0:
			io.apply = false
		case k == 1: // written, then failed
		case k == 2:
			io.torn = 1 + s.rng.IntN(BlockSize-1)
			s.stats.tornWrites++
		default: // failed now, lands later (within D: the storage assumption)
			effect = ret + s.uniform(0, simD)
			s.stats.lateLandings++
		}
	}
	if io.apply {
		s.push(&simEvent{at: effect, kind: evEffect, io: io})
	}
	s.push(&simEvent{at: ret + s.stall(), kind: evReturn, node: n, gen: n.gen, io: io})
}

// effect applies an I/O to the disk.
func (s *sim) effect(io *simIO) {
	if !io.apply || io.done {
		return
	}
	io.done = true
	var err error
	switch {
	case io.op == OpRead:
		_, err = s.dev.ReadAt(io.buf, io.off)
	case io.torn == len(io.data):
		_, err = s.dev.WriteAt(io.data, io.off)
	default:
		block := s.dev.Block(io.off / BlockSize)
		copy(block, io.data[:io.torn])
		s.dev.SetBlock(io.off/BlockSize, block)
	}
	if err != nil {
		panic(err) // the MemDevice has no faults injected
	}
	if io.op == OpWrite {
		s.checkDisk(io.off / BlockSize)
	}
}

// check is the invariant: at most one node believes it holds the lease. It also notices new
// grants: a lease that is valid with an epoch its node has not been seen holding.
func (s *sim) check() {
	var holders []string
	var fresh []*simNode
	for _, n := range s.nodes {
		if n.alive && n.lease != nil && n.lease.Valid() {
			holders = append(holders, fmt.Sprintf("%s (epoch %d, valid for %v more by its clock)",
				n.name, n.lease.Epoch(), n.lease.ValidUntil().Sub(n.lease.clock.Now())))
			if e := n.lease.Epoch(); e != n.heldEpoch || n.gen != n.heldGen {
				n.heldEpoch, n.heldGen = e, n.gen
				fresh = append(fresh, n)
			}
		}
	}
	if len(holders) > 1 {
		s.failf("%d nodes hold the lease at once: %s", len(holders), strings.Join(holders, ", "))
	}
	for _, n := range fresh {
		s.granted(n, n.lease)
	}
}

// checkDisk follows the epochs on disk after every write: slot high-water marks never go
// down; the owner record's epoch may (a late write), which is counted.
func (s *sim) checkDisk(block int64) {
	uid := s.layout.ClusterUID
	if block == ownerBlock {
		if r, err := decodeOwner(s.dev.Block(ownerBlock), uid); err == nil {
			if r.Epoch < s.ownerEpoch {
				s.stats.ownerEpochDrops++
			}
			s.ownerEpoch = r.Epoch
		}
		return
	}
	if block < firstSlotBlock || block >= firstSlotBlock+blocksPerSlot*int64(s.layout.Slots) {
		return
	}
	slot := int((block - firstSlotBlock) / blocksPerSlot)
	st := slotState{slot: slot}
	for which := range 2 {
		idx := s.layout.recordBlock(slot, which)
		st.recs[which], st.errs[which] = decodeNode(s.dev.Block(idx), idx, "", uid)
	}
	hw, err := st.highWater()
	if err != nil {
		s.failf("slot %d lost both records: %v", slot, err)
		return
	}
	if hw < s.slotHW[slot] {
		s.failf("slot %d high-water mark went down from %d to %d", slot, s.slotHW[slot], hw)
	}
	s.slotHW[slot] = hw
}

// granted records a grant: its epoch must be above every earlier one.
func (s *sim) granted(n *simNode, l *Lease) {
	e := l.Epoch()
	if e <= s.maxGranted {
		s.failf("%s was granted epoch %d after epoch %d had been granted (to %s)", n.name, e, s.maxGranted, s.grantedTo[s.maxGranted])
	}
	s.maxGranted = max(s.maxGranted, e)
	s.grantedTo[e] = n.name
	s.stats.grants++
	switch l.LastAcquisition().Reason {
	case ReasonTakeover:
		s.stats.takeovers++
	case ReasonRestart:
		s.stats.restartsOwn++
	case ReasonFree:
		s.stats.free++
	case ReasonCorrupt:
		s.stats.corruptClaims++
		if !s.rates.claimCorrupt {
			s.failf("%s claimed a damaged owner block without ClaimCorruptOwner", n.name)
		}
	}
}

// checkLog: every log entry names the node its epoch was granted to.
func (s *sim) checkLog() {
	d := &Disk{dev: s.dev, layout: s.layout}
	entries, _ := d.ReadLog() // torn entries are possible and allowed
	for _, e := range entries {
		if to, ok := s.grantedTo[e.Epoch]; ok && to != e.Owner {
			s.failf("log entry of epoch %d names %s, but the epoch was granted to %s", e.Epoch, e.Owner, to)
		} else if !ok && s.violation == "" {
			s.failf("log entry of epoch %d (%s) for an epoch never granted", e.Epoch, e.Owner)
		}
	}
}

// shutdown kills every process still running.
func (s *sim) shutdown() {
	for _, n := range s.nodes {
		if n.alive {
			n.resume <- true
			<-s.toSch
			n.alive = false
		}
	}
}

// The process side: runs in the node's goroutine, only while it holds the baton.

// block hands the baton to the scheduler and waits for it to come back.
func (n *simNode) block(m simMsg) {
	n.s.toSch <- m
	if <-n.resume {
		runtime.Goexit()
	}
}

// run is the node's agent: acquire, renew until lost, sometimes release; forever.
func (n *simNode) run(incarnation uint64) {
	ctx := context.Background()
	clk := &simClock{n: n}
	var d *Disk
	for {
		var err error
		if d, err = Open(&simDevice{n: n}, n.s.layout.ClusterUID); err == nil {
			break
		}
		clk.Sleep(time.Second)
	}
	l, err := NewLease(d, LeaseConfig{Node: n.name, Slot: n.idx, LeaseDuration: simL, IOTimeout: simD,
		MaxClockDrift: simDrift, Clock: clk, Incarnation: incarnation, ClaimCorruptOwner: n.s.rates.claimCorrupt})
	if err != nil {
		panic(err)
	}
	l.unsafe = n.s.cfg.knobs
	n.lease = l
	renew := l.Timing().RenewInterval
	for {
		if err := l.Acquire(ctx); err != nil {
			n.s.stats.acquireErrs++
			if errors.Is(err, ErrCorrupt) {
				n.s.stats.corruptSeen++
			}
			clk.Sleep(time.Duration(n.rng.Int64N(int64(2 * time.Second))))
			continue
		}
		for {
			clk.Sleep(renew)
			if n.rng.Float64() < 0.01 {
				if l.Release(ctx) == nil {
					n.s.stats.releases++
				}
				clk.Sleep(time.Duration(n.rng.Int64N(int64(simL))))
				break
			}
			err := l.Renew(ctx)
			switch {
			case errors.Is(err, ErrLate):
				n.s.stats.lateWrites++
			case errors.Is(err, ErrLost):
				n.s.stats.lost++
			}
			if err != nil && !l.Valid() {
				break
			}
		}
	}
}

// simClock is a node's clock: real simulated time at the node's rate, from its own offset.
type simClock struct{ n *simNode }

var _ clock.Clock = (*simClock)(nil)

func (c *simClock) local(at time.Duration) time.Duration {
	return time.Duration(math.Floor(float64(at) * c.n.rate))
}

func (c *simClock) Now() time.Time {
	return c.n.s.base.Add(c.n.offset + c.local(c.n.s.now))
}

func (c *simClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// wakeAt is the first real time at which the local clock has advanced by d.
func (c *simClock) wakeAt(d time.Duration) time.Duration {
	target := c.local(c.n.s.now) + d
	r := time.Duration(math.Ceil(float64(target) / c.n.rate))
	for c.local(r) < target {
		r++
	}
	return r
}

func (c *simClock) NewTimer(d time.Duration) clock.Timer { return &simTimer{c: c, d: d} }

func (c *simClock) After(d time.Duration) <-chan time.Time { return c.NewTimer(d).C() }

func (c *simClock) Sleep(d time.Duration) { <-c.After(d) }

func (c *simClock) Tick(time.Duration) <-chan time.Time { panic("simClock: Tick is not simulated") }

// simTimer blocks in C(): the Lease evaluates C() in its select just before it would block, so
// that is where the baton goes back to the scheduler.
type simTimer struct {
	c *simClock
	d time.Duration
}

func (t *simTimer) C() <-chan time.Time {
	t.c.n.block(simMsg{kind: msgTimer, wake: t.c.wakeAt(t.d)})
	ch := make(chan time.Time, 1)
	ch <- t.c.Now()
	return ch
}

func (t *simTimer) Stop() bool { return false }

func (t *simTimer) Reset(d time.Duration) bool {
	t.d = d
	return false
}

// simDevice is a node's handle on the shared disk: every request goes through the scheduler.
type simDevice struct{ n *simNode }

func (d *simDevice) ReadAt(p []byte, off int64) (int, error) {
	io := &simIO{op: OpRead, buf: p, off: off}
	d.n.block(simMsg{kind: msgIO, io: io})
	if io.err != nil {
		return 0, io.err
	}
	return len(p), nil
}

func (d *simDevice) WriteAt(p []byte, off int64) (int, error) {
	io := &simIO{op: OpWrite, data: append([]byte(nil), p...), off: off}
	d.n.block(simMsg{kind: msgIO, io: io})
	if io.err != nil {
		return io.torn, io.err
	}
	return len(p), nil
}

func (d *simDevice) Sync() error  { return nil }
func (d *simDevice) Close() error { return nil }

// Running schedules.

// runSchedules runs count schedules from seed on, nodes contenders each, in parallel. With
// stopAtFirst it stops handing out schedules after the first violation; the lowest violating
// seed is still found (every lower seed was handed out before it), so the result does not
// depend on how the goroutines were scheduled.
func runSchedules(seed uint64, count, nodes int, knobs unsafeKnobs, stress, stopAtFirst bool) (simStats, uint64) {
	var (
		mu        sync.Mutex
		total     simStats
		next      = seed
		end       = seed + uint64(count)
		firstSeed = uint64(math.MaxUint64)
		wg        sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				mu.Lock()
				if next >= end || (stopAtFirst && total.violations > 0) {
					mu.Unlock()
					return
				}
				sd := next
				next++
				mu.Unlock()
				st := newSim(simConfig{seed: sd, nodes: nodes, duration: simDuration, knobs: knobs, stress: stress}).run()
				mu.Lock()
				if st.violations > 0 && sd < firstSeed {
					firstSeed = sd
					st.firstViolation, total.firstViolation = "", st.firstViolation
				}
				total.add(st)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return total, firstSeed
}

// scheduleCount is how many schedules each simulation test runs: QUORUM_SIM_SCHEDULES, or a
// default that fits the test budget (fewer under -race and -short).
func scheduleCount(t *testing.T, normal int) int {
	t.Helper()
	if v := os.Getenv("QUORUM_SIM_SCHEDULES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("QUORUM_SIM_SCHEDULES=%q: want a positive number", v)
		}
		return n
	}
	if raceEnabled {
		normal /= 8
	}
	if testing.Short() {
		normal /= 4
	}
	return max(normal, 20)
}

const simDuration = 300 * time.Second

func TestSimulation(t *testing.T) {
	t.Parallel()
	for _, nodes := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d contenders", nodes), func(t *testing.T) {
			n := scheduleCount(t, 1000)
			start := time.Now()
			st, _ := runSchedules(uint64(nodes)<<32, n, nodes, unsafeKnobs{}, false, false)
			t.Logf("%v in %v", st, time.Since(start).Round(time.Millisecond))
			if st.violations > 0 {
				t.Fatalf("%d schedules broke the invariants; the first: %s", st.violations, st.firstViolation)
			}
			// A simulation that never exercised the dangerous paths would pass silently.
			if st.takeovers == 0 || st.crashes == 0 || st.restarts == 0 || st.ioErrors == 0 || st.tornWrites == 0 ||
				st.longStalls == 0 || st.lateWrites == 0 || st.lost == 0 || st.releases == 0 || st.free == 0 ||
				st.ownerEpochDrops == 0 {
				t.Errorf("some faults or outcomes never happened: %v", st)
			}
			if st.grants < st.schedules {
				t.Errorf("fewer grants than schedules: %v", st)
			}
		})
	}
}

// TestSimulationNegativeControls breaks one rule at a time and expects the checker to catch
// it: proof that the checker can fail, and that the faults reach what each rule guards. They
// run with the highest fault rates. By default each stops at its first violation (at most 2000
// schedules); with QUORUM_SIM_SCHEDULES each runs that many and reports how many it caught.
func TestSimulationNegativeControls(t *testing.T) {
	t.Parallel()
	count, stopAtFirst := 2000, true
	if os.Getenv("QUORUM_SIM_SCHEDULES") != "" {
		count, stopAtFirst = scheduleCount(t, 0), false
	}
	for _, tc := range []struct {
		name  string
		knobs unsafeKnobs
		nodes int
	}{
		{"no re-read after the claim", unsafeKnobs{skipConfirm: true}, 3},
		{"late writes count", unsafeKnobs{skipLateCheck: true}, 3},
		{"epoch from the owner record alone", unsafeKnobs{noHighWater: true}, 3},
		{"window of a quarter lease", unsafeKnobs{shortWindow: simL*3/4 + MinMargin(simL, simD, simDrift)}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const base = 1 << 40
			start := time.Now()
			st, first := runSchedules(base, count, tc.nodes, tc.knobs, true, stopAtFirst)
			if st.violations == 0 {
				t.Fatalf("the checker caught nothing in %d schedules: %v", st.schedules, st)
			}
			t.Logf("caught in %d of %d schedules (in %v), first in schedule %d: %s",
				st.violations, st.schedules, time.Since(start).Round(time.Millisecond), first-base+1, st.firstViolation)
		})
	}
}

// TestSimulationReplay runs the one schedule QUORUM_SIM_SEED names (with QUORUM_SIM_NODES
// contenders, default 3), to look at a violation again.
func TestSimulationReplay(t *testing.T) {
	v := os.Getenv("QUORUM_SIM_SEED")
	if v == "" {
		t.Skip("QUORUM_SIM_SEED is not set")
	}
	seed, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	nodes := 3
	if v := os.Getenv("QUORUM_SIM_NODES"); v != "" {
		if nodes, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	st := newSim(simConfig{seed: seed, nodes: nodes, duration: simDuration}).run()
	t.Logf("%v", st)
	if st.violations > 0 {
		t.Fatal(st.firstViolation)
	}
}

// TestSimulationDeterministic: a schedule is a function of its seed.
func TestSimulationDeterministic(t *testing.T) {
	t.Parallel()
	for seed := range uint64(5) {
		a := newSim(simConfig{seed: seed, nodes: 3, duration: simDuration}).run()
		b := newSim(simConfig{seed: seed, nodes: 3, duration: simDuration}).run()
		if a != b {
			t.Fatalf("seed %d: two runs differ:\n%v\n%v", seed, a, b)
		}
	}
}
