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
	"slices"
	"time"
)

// Wire format versions. Version 2 adds the peers the sender hears; version 1 messages, from agents
// of an older release, are still read (during a rolling update), with Hears unknown.
const (
	// VersionV1 has no list of the peers the sender hears.
	VersionV1 = 1
	// Version is the wire format version this package writes.
	Version = 2
)

// Sizes of the fixed parts of a message.
const (
	uidLen    = 16
	digestLen = sha256.Size
	macLen    = sha256.Size
	// MaxSenderLen bounds a sender's node name (a DNS subdomain).
	MaxSenderLen = 253
	// fixedLen is everything of a version 1 message but the sender's name.
	fixedLen = 1 + uidLen + 1 + 8 + 8 + 8 + digestLen + macLen
	// NameDigestLen is the size of a peer's name digest in the list of peers a sender hears.
	NameDigestLen = 8
	// MaxHears bounds the list of peers a sender hears: more than any cluster has members.
	MaxHears = 64
	// MaxSize is the largest valid message; anything longer is dropped unread.
	MaxSize = fixedLen + MaxSenderLen + 1 + MaxHears*NameDigestLen
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
	// HearsKnown is true for a version 2 message: Hears lists the peers the sender hears. A
	// version 1 message (HearsKnown false) does not say, and Encode writes version 1 for it.
	HearsKnown bool
	// Hears are the name digests (NameDigestOf) of the peers the sender hears now, at most
	// MaxHears, so that a receiver knows whether it is heard back: two nodes are on one side of
	// a partition only when each hears the other.
	Hears []NameDigest
}

// NameDigest stands for a node name in a heartbeat: the first bytes of its SHA-256, so that a
// message stays small with many peers. Heartbeats are authenticated, so only a holder of the
// cluster's key could make two names collide on purpose; by chance it is a 2^-64 event.
type NameDigest [NameDigestLen]byte

// NameDigestOf returns the digest of a node name.
func NameDigestOf(name string) NameDigest {
	sum := sha256.Sum256([]byte("wolfpack heartbeat peer\x00" + name))
	var d NameDigest
	copy(d[:], sum[:])
	return d
}

// HearsPeer reports whether the message says that its sender hears the node named name; false
// when the message does not say (version 1).
func (m *Message) HearsPeer(name string) bool {
	d := NameDigestOf(name)
	return m.HearsKnown && slices.Contains(m.Hears, d)
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
	if len(m.Hears) > MaxHears || (!m.HearsKnown && len(m.Hears) > 0) {
		return nil, fmt.Errorf("heartbeat: %d peers heard, want at most %d, and none in a version 1 message", len(m.Hears), MaxHears)
	}
	version := byte(VersionV1)
	if m.HearsKnown {
		version = Version
	}
	buf := make([]byte, 0, fixedLen+len(m.Sender)+1+NameDigestLen*len(m.Hears))
	buf = append(buf, version)
	buf = append(buf, m.ClusterUID[:]...)
	buf = append(buf, byte(len(m.Sender))) //nolint:gosec // at most MaxSenderLen, checked above
	buf = append(buf, m.Sender...)
	buf = binary.BigEndian.AppendUint64(buf, m.Incarnation)
	buf = binary.BigEndian.AppendUint64(buf, m.Sequence)
	buf = binary.BigEndian.AppendUint64(buf, uint64(m.SentAt.UnixNano()))
	buf = append(buf, m.ViewDigest[:]...)
	if m.HearsKnown {
		buf = append(buf, byte(len(m.Hears))) //nolint:gosec // at most MaxHears, checked above
		for _, d := range m.Hears {
			buf = append(buf, d[:]...)
		}
	}
	return append(buf, mac(key, buf)...), nil
}

// Decode reads and authenticates a message. It checks the size before anything else and the MAC
// before it trusts any field.
func Decode(b, key []byte) (*Message, error) {
	if len(b) < fixedLen+1 || len(b) > MaxSize {
		return nil, ErrSize
	}
	if b[0] != VersionV1 && b[0] != Version {
		return nil, ErrVersion
	}
	body, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	senderLen := int(b[1+uidLen])
	want := fixedLen - macLen + senderLen
	hears := 0
	if b[0] == Version {
		if len(body) < want+1 {
			return nil, ErrMalformed
		}
		hears = int(body[want])
		want += 1 + hears*NameDigestLen
	}
	if senderLen == 0 || senderLen > MaxSenderLen || hears > MaxHears || len(body) != want {
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
	if b[0] == Version {
		m.HearsKnown = true
		p += 24 + digestLen + 1
		for i := range hears {
			var d NameDigest
			copy(d[:], b[p+i*NameDigestLen:])
			m.Hears = append(m.Hears, d)
		}
	}
	return m, nil
}

func mac(key, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(body)
	return h.Sum(nil)
}
