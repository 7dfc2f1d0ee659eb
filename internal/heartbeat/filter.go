package heartbeat

import (
	"errors"
	"time"
)

// Drop is why a received heartbeat was not believed; the agent counts drops by it in a metric.
type Drop string

const (
	// Accepted is no drop.
	Accepted Drop = ""
	// DropSize means shorter than the smallest or longer than the largest message.
	DropSize Drop = "size"
	// DropVersion means a wire format this agent does not know.
	DropVersion Drop = "version"
	// DropMalformed means the length fields do not add up.
	DropMalformed Drop = "malformed"
	// DropMAC means not authenticated with the cluster's key.
	DropMAC Drop = "mac"
	// DropCluster means authentic, but of another cluster (another QuorumDisk with the same key).
	DropCluster Drop = "cluster"
	// DropReplay means a sequence number not newer than one already seen for that incarnation, or an
	// older incarnation.
	DropReplay Drop = "replay"
	// DropStale means sent too long ago, or too far in the future, by the receiver's clock.
	DropStale Drop = "stale"
)

// Filter decides which heartbeats a receiver believes. It is not safe for concurrent use: one
// receiving goroutine owns it.
type Filter struct {
	// ClusterUID is this agent's cluster.
	ClusterUID [uidLen]byte
	// Key is the cluster's shared key.
	Key []byte
	// MaxSkew is how far a heartbeat's send time may be from the receiver's clock: detection
	// time plus the clock drift allowed between nodes.
	MaxSkew time.Duration

	last map[string]position
}

// position is the newest heartbeat seen from a sender.
type position struct {
	incarnation, sequence uint64
}

// Accept decodes a datagram and returns the message when it is believed, or why it is dropped.
// Only a believed message moves the replay window on.
func (f *Filter) Accept(b []byte, now time.Time) (*Message, Drop) {
	m, err := Decode(b, f.Key)
	switch {
	case errors.Is(err, ErrSize):
		return nil, DropSize
	case errors.Is(err, ErrVersion):
		return nil, DropVersion
	case errors.Is(err, ErrMalformed):
		return nil, DropMalformed
	case err != nil:
		return nil, DropMAC
	}
	if m.ClusterUID != f.ClusterUID {
		return nil, DropCluster
	}
	if skew := now.Sub(m.SentAt); skew > f.MaxSkew || skew < -f.MaxSkew {
		return nil, DropStale
	}
	if f.last == nil {
		f.last = map[string]position{}
	}
	seen, ok := f.last[m.Sender]
	if ok && (m.Incarnation < seen.incarnation || (m.Incarnation == seen.incarnation && m.Sequence <= seen.sequence)) {
		return nil, DropReplay
	}
	f.last[m.Sender] = position{incarnation: m.Incarnation, sequence: m.Sequence}
	return m, Accepted
}
