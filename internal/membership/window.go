package membership

import (
	"sync"
	"time"
)

const (
	// StallTick is how often the manager's stall detector ticks.
	StallTick = 250 * time.Millisecond
	// StallGap is how long the manager may go without a tick of its stall detector, or without a
	// successful uncached read from the API server, before it counts as having stopped observing.
	StallGap = time.Second
)

// Window tracks observingSince: the last time the manager (re)started observing the agents'
// Leases, by its monotonic clock. It starts at the first reconcile (the process started or
// became leader), and starts again when the manager itself stalled (a gap of more than StallGap
// between ticks of its stall detector) or regained the API server after more than StallGap
// without a successful uncached read. A Lease's age never counts from before it (see Age), so a
// manager that was not looking gives every agent a whole lease again. The zero Window is ready
// to use and safe for concurrent use.
type Window struct {
	mu                  sync.Mutex
	since, tick, readOK time.Time
	started             bool
}

// Start starts observing at now, the first time only.
func (w *Window) Start(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		w.started, w.since = true, now
	}
}

// Tick is a tick of the stall detector at now; it reports whether it found the manager stalled.
func (w *Window) Tick(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	stalled := !w.tick.IsZero() && now.Sub(w.tick) > StallGap
	if stalled {
		w.since = later(w.since, now)
	}
	w.tick = now
	return stalled
}

// Read records a successful uncached read from the API server at now; it reports whether the
// manager regained the API server after losing it.
func (w *Window) Read(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	regained := !w.readOK.IsZero() && now.Sub(w.readOK) > StallGap
	if regained {
		w.since = later(w.since, now)
	}
	w.readOK = later(w.readOK, now)
	return regained
}

// Since is observingSince as of now. A tick of the stall detector overdue by more than StallGap
// counts as a stall already, so that a manager that resumes does not act before its detector
// has ticked.
func (w *Window) Since(now time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.tick.IsZero() && now.Sub(w.tick) > StallGap {
		w.since = later(w.since, now)
	}
	if !w.started {
		w.started, w.since = true, later(w.since, now)
	}
	return w.since
}
