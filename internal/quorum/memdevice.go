package quorum

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Op is the kind of a device request, for MemDevice's fault injection.
type Op uint8

// Device operations.
const (
	OpRead Op = iota + 1
	OpWrite
	OpSync
)

func (o Op) String() string {
	switch o {
	case OpRead:
		return "read"
	case OpWrite:
		return "write"
	case OpSync:
		return "sync"
	default:
		return fmt.Sprintf("Op(%d)", uint8(o))
	}
}

// ErrInjected is the error a Fault returns when it sets none.
var ErrInjected = errors.New("injected I/O error")

// Fault is an I/O failure for MemDevice to inject.
type Fault struct {
	// Op is the kind of request it hits.
	Op Op
	// Block is the block index it hits (the first block of a request); -1 hits any block.
	// Sync requests have no block: a sync fault hits whatever its Block.
	Block int64
	// Err is returned by the request; nil means ErrInjected, unless Torn > 0 and Silent.
	Err error
	// Torn, for a write, is how many bytes of the request land before it fails: 0 < Torn <
	// BlockSize makes a torn block (the new bytes followed by the old ones).
	Torn int
	// Silent makes a torn write report success: a device that lies. Only tests of the
	// checksums use it; the lease's guarantees assume a device that never does this.
	Silent bool
	// Count is how many requests it hits; 0 means one.
	Count int
}

// MemDevice is an in-memory Device for tests and simulations. It can inject I/O errors and torn
// writes (Inject) and delay every request on a clock (SetDelay; a fake clock makes the delay
// deterministic). It is safe for concurrent use.
type MemDevice struct {
	mu     sync.Mutex
	data   []byte
	faults []Fault
	closed bool
	clk    clock.Clock
	delay  func(op Op, block int64) time.Duration
	ops    map[Op]int
}

// NewMemDevice returns a zeroed device of size bytes (rounded up to whole blocks).
func NewMemDevice(size int64) *MemDevice {
	blocks := (size + BlockSize - 1) / BlockSize
	return &MemDevice{data: make([]byte, blocks*BlockSize), ops: map[Op]int{}}
}

// Inject adds a fault; faults are matched in the order they were added.
func (m *MemDevice) Inject(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults = append(m.faults, f)
}

// SetDelay makes every request first wait delay(op, block) on clk, with clk.Sleep: a
// FakeClock's Sleep steps the clock, so the delay is then simply added to the fake time.
func (m *MemDevice) SetDelay(clk clock.Clock, delay func(op Op, block int64) time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clk, m.delay = clk, delay
}

// Ops returns how many requests of kind op the device has served (failed ones included).
func (m *MemDevice) Ops(op Op) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ops[op]
}

// Block returns a copy of block i.
func (m *MemDevice) Block(i int64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.data[i*BlockSize:(i+1)*BlockSize]...)
}

// SetBlock overwrites block i with b (at most BlockSize bytes), bypassing faults and delays.
func (m *MemDevice) SetBlock(i int64, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	copy(m.data[i*BlockSize:(i+1)*BlockSize], b)
}

// Flip XORs the byte at off with mask, bypassing faults: a damaged medium.
func (m *MemDevice) Flip(off int64, mask byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[off] ^= mask
}

// wait applies the configured delay, outside the lock.
func (m *MemDevice) wait(op Op, block int64) {
	m.mu.Lock()
	clk, delay := m.clk, m.delay
	m.mu.Unlock()
	if clk != nil && delay != nil {
		if d := delay(op, block); d > 0 {
			clk.Sleep(d)
		}
	}
}

// fault returns the first fault matching the request, consuming one use of it; m.mu is held.
func (m *MemDevice) fault(op Op, block int64) (Fault, bool) {
	for i, f := range m.faults {
		if f.Op != op || (f.Block >= 0 && block >= 0 && f.Block != block) {
			continue
		}
		m.faults[i].Count--
		if m.faults[i].Count == 0 {
			m.faults = append(m.faults[:i], m.faults[i+1:]...)
		}
		if f.Err == nil && (!f.Silent || f.Torn <= 0) {
			f.Err = ErrInjected
		}
		return f, true
	}
	return Fault{}, false
}

// ReadAt implements Device.
func (m *MemDevice) ReadAt(p []byte, off int64) (int, error) {
	if err := checkRequest(p, off); err != nil {
		return 0, err
	}
	m.wait(OpRead, off/BlockSize)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops[OpRead]++
	if m.closed {
		return 0, os.ErrClosed
	}
	if off+int64(len(p)) > int64(len(m.data)) {
		return 0, fmt.Errorf("reading %d bytes at %d: beyond the end of a %d-byte device", len(p), off, len(m.data))
	}
	if f, ok := m.fault(OpRead, off/BlockSize); ok {
		return 0, f.Err
	}
	return copy(p, m.data[off:]), nil
}

// WriteAt implements Device.
func (m *MemDevice) WriteAt(p []byte, off int64) (int, error) {
	if err := checkRequest(p, off); err != nil {
		return 0, err
	}
	m.wait(OpWrite, off/BlockSize)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops[OpWrite]++
	if m.closed {
		return 0, os.ErrClosed
	}
	if off+int64(len(p)) > int64(len(m.data)) {
		return 0, fmt.Errorf("writing %d bytes at %d: beyond the end of a %d-byte device", len(p), off, len(m.data))
	}
	if f, ok := m.fault(OpWrite, off/BlockSize); ok {
		n := min(max(f.Torn, 0), len(p))
		copy(m.data[off:], p[:n])
		return n, f.Err
	}
	return copy(m.data[off:], p), nil
}

// Sync implements Device.
func (m *MemDevice) Sync() error {
	m.wait(OpSync, -1)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops[OpSync]++
	if m.closed {
		return os.ErrClosed
	}
	if f, ok := m.fault(OpSync, -1); ok {
		return f.Err
	}
	return nil
}

// Close implements Device; later requests fail with os.ErrClosed.
func (m *MemDevice) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
