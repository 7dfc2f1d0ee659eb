// Package heartbeat is the wire format of the node agents' UDP heartbeats (MSCS's Cluster Network
// Driver) and the checks a receiver makes before it believes one: the right cluster, an
// authentic sender (HMAC-SHA256 under the cluster's shared key), not replayed, not stale.
package heartbeat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Version is the wire format version this package writes and reads.
const Version = 1

// Sizes of the fixed parts of a message.
const (
	uidLen    = 16
	digestLen = sha256.Size
	macLen    = sha256.Size
	// MaxSenderLen bounds a sender's node name (a DNS subdomain).
	MaxSenderLen = 253
	// fixedLen is everything but the sender's name.
	fixedLen = 1 + uidLen + 1 + 8 + 8 + 8 + digestLen + macLen
	// MaxSize is the largest valid message; anything longer is dropped unread.
	MaxSize = fixedLen + MaxSenderLen
	// MinKeyLen is the shortest shared key accepted.
	MinKeyLen = 32
)

// Message is one heartbeat.
type Message struct {
	// ClusterUID is the QuorumDisk's UID: heartbeats of another cluster are dropped.
	ClusterUID [uidLen]byte
	// Sender is the sending node's name.
	Sender string
	// Incarnation changes every time the sender's agent starts, so that sequence numbers may
	// start over.
	Incarnation uint64
	// Sequence goes up by one with every heartbeat of an incarnation.
	Sequence uint64
	// SentAt is the sender's clock when it sent the heartbeat.
	SentAt time.Time
	// ViewDigest summarises the sender's membership view (which peers it hears), so that
	// receivers notice views that disagree.
	ViewDigest [digestLen]byte
}

// Errors of Decode; each is counted by the receiver under its own reason.
var (
	ErrSize      = errors.New("heartbeat: size out of range")
	ErrVersion   = errors.New("heartbeat: unknown version")
	ErrMalformed = errors.New("heartbeat: malformed")
	ErrMAC       = errors.New("heartbeat: bad MAC")
)

// Encode writes m, authenticated with key.
func Encode(m *Message, key []byte) ([]byte, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("heartbeat: key of %d bytes, want at least %d", len(key), MinKeyLen)
	}
	if m.Sender == "" || len(m.Sender) > MaxSenderLen {
		return nil, fmt.Errorf("heartbeat: sender name of %d bytes, want 1 to %d", len(m.Sender), MaxSenderLen)
	}
	buf := make([]byte, 0, fixedLen+len(m.Sender))
	buf = append(buf, Version)
	buf = append(buf, m.ClusterUID[:]...)
	buf = append(buf, byte(len(m.Sender))) //nolint:gosec // at most MaxSenderLen, checked above
	buf = append(buf, m.Sender...)
	buf = binary.BigEndian.AppendUint64(buf, m.Incarnation)
	buf = binary.BigEndian.AppendUint64(buf, m.Sequence)
	buf = binary.BigEndian.AppendUint64(buf, uint64(m.SentAt.UnixNano()))
	buf = append(buf, m.ViewDigest[:]...)
	return append(buf, mac(key, buf)...), nil
}

// Decode reads and authenticates a message. It checks the size before anything else and the MAC
// before it trusts any field.
func Decode(b, key []byte) (*Message, error) {
	if len(b) < fixedLen+1 || len(b) > MaxSize {
		return nil, ErrSize
	}
	if b[0] != Version {
		return nil, ErrVersion
	}
	body, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	senderLen := int(b[1+uidLen])
	if senderLen == 0 || len(body) != fixedLen-macLen+senderLen {
		return nil, ErrMalformed
	}
	if !hmac.Equal(sum, mac(key, body)) {
		return nil, ErrMAC
	}
	m := &Message{}
	copy(m.ClusterUID[:], b[1:1+uidLen])
	p := 1 + uidLen + 1
	m.Sender = string(b[p : p+senderLen])
	p += senderLen
	m.Incarnation = binary.BigEndian.Uint64(b[p:])
	m.Sequence = binary.BigEndian.Uint64(b[p+8:])
	m.SentAt = time.Unix(0, int64(binary.BigEndian.Uint64(b[p+16:]))) //nolint:gosec // written from an int64
	copy(m.ViewDigest[:], b[p+24:p+24+digestLen])
	return m, nil
}

func mac(key, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(body)
	return h.Sum(nil)
}
