package fence

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// None is the None fence action: it records its calls and stops nothing. It is for tests only:
// it cannot stop a workload on a node that lost the API, so a node fenced with it may go on
// running its groups while another node starts them.
type None struct {
	clock clock.PassiveClock

	mu         sync.Mutex
	fences     int
	heartbeats int
	closed     bool
}

var (
	_ Fencer         = (*None)(nil)
	_ HandoverCloser = (*None)(nil)
)

// NewNone returns a None that stamps its reports with clk (the real clock when nil).
func NewNone(clk clock.PassiveClock) *None {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &None{clock: clk}
}

// Fence records the call and stops nothing.
func (n *None) Fence(context.Context) (Report, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fences++
	return Report{Action: wolfpackv1alpha1.FenceNone, Started: n.clock.Now()}, nil
}

// Heartbeat records the call.
func (n *None) Heartbeat() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.heartbeats++
	return nil
}

// Handover does nothing: None has no watchdog to hand over.
func (n *None) Handover(time.Duration) (time.Duration, error) { return 0, nil }

// Close records the call.
func (n *None) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	return nil
}

// Fences returns how many times Fence was called.
func (n *None) Fences() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fences
}

// Heartbeats returns how many times Heartbeat was called.
func (n *None) Heartbeats() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.heartbeats
}

// Closed reports whether Close was called.
func (n *None) Closed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}
