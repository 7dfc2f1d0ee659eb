package heartbeat

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	key     = bytes.Repeat([]byte{7}, 32)
	cluster = [16]byte{1, 2, 3}
	t0      = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
)

func msg(sender string, incarnation, seq uint64, at time.Time) *Message {
	return &Message{ClusterUID: cluster, Sender: sender, Incarnation: incarnation, Sequence: seq, SentAt: at,
		ViewDigest: sha256.Sum256([]byte("a,b"))}
}

func encode(t *testing.T, m *Message, k []byte) []byte {
	t.Helper()
	b, err := Encode(m, k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	m := msg(strings.Repeat("n", MaxSenderLen), 42, 7, t0.Add(123*time.Nanosecond))
	m.HearsKnown = true
	for i := range MaxHears {
		m.Hears = append(m.Hears, NameDigestOf(fmt.Sprint("node-", i)))
	}
	b := encode(t, m, key)
	if len(b) != MaxSize {
		t.Fatalf("a message with the longest sender is %d bytes, want MaxSize %d", len(b), MaxSize)
	}
	got, err := Decode(b, key)
	if err != nil {
		t.Fatal(err)
	}
	if !same(got, m) {
		t.Fatalf("Decode(Encode(m)) = %+v, want %+v", got, m)
	}
	if !got.HearsPeer("node-63") || got.HearsPeer("node-64") {
		t.Errorf("HearsPeer: node-63 %v (want true), node-64 %v (want false)", got.HearsPeer("node-63"), got.HearsPeer("node-64"))
	}
}

// TestVersion1 reads a heartbeat of the previous wire format, from an agent of an older release
// during a rolling update: it is believed, and does not say whom its sender hears.
func TestVersion1(t *testing.T) {
	m := msg("node-a", 1, 2, t0)
	b := encode(t, m, key)
	if b[0] != VersionV1 || len(b) != fixedLen+len("node-a") {
		t.Fatalf("a message without HearsKnown encodes as version %d in %d bytes, want version %d in %d", b[0], len(b), VersionV1, fixedLen+len("node-a"))
	}
	got, err := Decode(b, key)
	if err != nil {
		t.Fatal(err)
	}
	if !same(got, m) || got.HearsKnown || got.HearsPeer("node-b") {
		t.Fatalf("Decode(version 1) = %+v, want %+v and nothing heard", got, m)
	}
}

func same(a, b *Message) bool {
	return a.SentAt.Equal(b.SentAt) && a.Sender == b.Sender && a.Sequence == b.Sequence &&
		a.Incarnation == b.Incarnation && a.ClusterUID == b.ClusterUID && a.ViewDigest == b.ViewDigest &&
		a.HearsKnown == b.HearsKnown && slices.Equal(a.Hears, b.Hears)
}

// FuzzRoundTrip encodes messages of arbitrary fields: what Encode accepts, Decode returns
// unchanged, and a message cut short by any number of bytes is refused.
func FuzzRoundTrip(f *testing.F) {
	f.Add("node-a", uint64(1), uint64(2), t0.UnixNano(), []byte("view"), 1, 2)
	f.Add("node-a", uint64(1), uint64(2), t0.UnixNano(), []byte("view"), 1, -1)
	f.Fuzz(func(t *testing.T, sender string, incarnation, seq uint64, nanos int64, view []byte, cut, hears int) {
		m := &Message{ClusterUID: cluster, Sender: sender, Incarnation: incarnation, Sequence: seq,
			SentAt: time.Unix(0, nanos), ViewDigest: sha256.Sum256(view), HearsKnown: hears >= 0}
		for i := range hears % (MaxHears + 2) {
			m.Hears = append(m.Hears, NameDigestOf(fmt.Sprint(sender, i)))
		}
		b, err := Encode(m, key)
		if err != nil {
			return
		}
		got, err := Decode(b, key)
		if err != nil || !same(got, m) {
			t.Fatalf("Decode(Encode(%+v)) = %+v, %v", m, got, err)
		}
		if cut = 1 + int(uint(cut)%uint(len(b))); cut < len(b) {
			if _, err := Decode(b[:len(b)-cut], key); err == nil {
				t.Fatalf("a message cut by %d bytes was accepted", cut)
			}
		}
	})
}

func TestEncodeRefuses(t *testing.T) {
	cases := []struct {
		name string
		m    *Message
		key  []byte
		want string
	}{
		{"short key", msg("a", 1, 1, t0), key[:31], "key of 31 bytes"},
		{"no sender", msg("", 1, 1, t0), key, "sender name of 0 bytes"},
		{"long sender", msg(strings.Repeat("n", 254), 1, 1, t0), key, "sender name of 254 bytes"},
		{"too many heard", &Message{Sender: "a", HearsKnown: true, Hears: make([]NameDigest, MaxHears+1)}, key, "65 peers heard"},
		{"heard in version 1", &Message{Sender: "a", Hears: make([]NameDigest, 1)}, key, "1 peers heard"},
	}
	for _, tc := range cases {
		if _, err := Encode(tc.m, tc.key); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Encode() = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

func TestFilter(t *testing.T) {
	otherKey := bytes.Repeat([]byte{8}, 32)
	good := func(seq uint64) []byte { return encode(t, msg("a", 5, seq, t0), key) }
	tampered := good(1)
	tampered[len(tampered)-40] ^= 1
	foreign := msg("a", 5, 1, t0)
	foreign.ClusterUID = [16]byte{9}
	badVersion := good(1)
	badVersion[0] = 3
	badLength := good(1)
	badLength[17] = 2 // sender length no longer matches the size

	type step struct {
		packet []byte
		at     time.Time
		want   Drop
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{good(1), t0, Accepted}, {good(2), t0, Accepted}, {good(10), t0, Accepted}}},
		{"replayed", []step{{good(1), t0, Accepted}, {good(1), t0, DropReplay}}},
		{"older sequence", []step{{good(5), t0, Accepted}, {good(4), t0, DropReplay}}},
		{"new incarnation starts over", []step{
			{good(9), t0, Accepted},
			{encode(t, msg("a", 6, 1, t0), key), t0, Accepted},
			{good(10), t0, DropReplay}, // the old incarnation is over
		}},
		{"senders have their own windows", []step{
			{good(3), t0, Accepted}, {encode(t, msg("b", 5, 1, t0), key), t0, Accepted},
		}},
		{"another cluster", []step{{encode(t, foreign, key), t0, DropCluster}}},
		{"another key", []step{{encode(t, msg("a", 5, 1, t0), otherKey), t0, DropMAC}}},
		{"tampered", []step{{tampered, t0, DropMAC}, {good(1), t0, Accepted}}},
		{"unknown version", []step{{badVersion, t0, DropVersion}}},
		{"lengths do not add up", []step{{badLength, t0, DropMalformed}}},
		{"too short", []step{{good(1)[:50], t0, DropSize}}},
		{"too long", []step{{append(good(1), make([]byte, MaxSize)...), t0, DropSize}}},
		{"stale", []step{{good(1), t0.Add(3 * time.Second), DropStale}}},
		{"from the future", []step{{good(1), t0.Add(-3 * time.Second), DropStale}}},
		{"a stale copy does not move the window", []step{
			{good(2), t0.Add(3 * time.Second), DropStale}, {good(1), t0, Accepted},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &Filter{ClusterUID: cluster, Key: key, MaxSkew: 2 * time.Second}
			for i, s := range tc.steps {
				m, drop := f.Accept(s.packet, s.at)
				if drop != s.want || (drop == Accepted) != (m != nil) {
					t.Fatalf("step %d: Accept() = %v, %q; want %q", i, m, drop, s.want)
				}
			}
		})
	}
}

// FuzzDecode feeds arbitrary datagrams to the decoder: it never panics, never accepts more than
// MaxSize bytes, and what it accepts encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(encodeSeed(msg("node-a", 1, 1, t0)))
	f.Add(encodeSeed(msg(strings.Repeat("x", MaxSenderLen), 9, 9, t0)))
	f.Add([]byte{})
	f.Add([]byte{Version})
	v1 := msg("node-b", 2, 3, t0)
	v2 := msg("node-b", 2, 3, t0)
	v2.HearsKnown, v2.Hears = true, []NameDigest{NameDigestOf("node-a")}
	f.Add(encodeSeed(v1))
	f.Add(encodeSeed(v2))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b, key)
		if err != nil {
			return
		}
		if len(b) > MaxSize {
			t.Fatalf("accepted %d bytes", len(b))
		}
		again, err := Encode(m, key)
		if err != nil {
			t.Fatalf("an accepted message does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}

func encodeSeed(m *Message) []byte {
	b, err := Encode(m, key)
	if err != nil {
		panic(err)
	}
	return b
}
