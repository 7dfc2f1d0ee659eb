package quorum

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

var when = time.Date(2026, 11, 24, 12, 34, 56, 789, time.UTC)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	l := Layout{ClusterUID: testUID, Slots: 7, LogEntries: 300}
	h, err := decodeHeader(encodeHeader(header{layout: l, created: when}))
	if err != nil || h.layout != l || !h.created.Equal(when) {
		t.Errorf("header: %+v, %v", h, err)
	}
	long := strings.Repeat("n", MaxNodeName)
	for _, r := range []OwnerRecord{{}, {Held: true, Node: long, Incarnation: 1<<64 - 1, Epoch: 7, Counter: 9, Time: when}, {Node: "released", Epoch: 3}} {
		got, err := decodeOwner(encodeOwner(r, testUID), testUID)
		if err != nil || got != r {
			t.Errorf("owner %+v: got %+v, %v", r, got, err)
		}
	}
	n := NodeRecord{Node: "node-a", Incarnation: 5, Seq: 6, Epoch: 7, Time: when}
	if got, err := decodeNode(encodeNode(n, 9, testUID), 9, "k", testUID); err != nil || got != n {
		t.Errorf("node: %+v, %v", got, err)
	}
	m := Message{To: "node-a", Kind: MessagePoisonPill, From: "node-b", Epoch: 4, Seq: 2, Time: when}
	if got, err := decodeMessage(encodeMessage(m, 4, testUID), 4, "k", testUID); err != nil || got != m {
		t.Errorf("message: %+v, %v", got, err)
	}
	e := LogEntry{Epoch: 12, Owner: "node-b", Incarnation: 3, Previous: "node-a", Reason: ReasonTakeover, Time: when}
	if got, err := decodeLog(encodeLog(e, 30, testUID), 30, "k", testUID); err != nil || got != e {
		t.Errorf("log: %+v, %v", got, err)
	}
	if s := ReasonCorrupt.String() + MessagePoisonPill.String() + OpWrite.String() + typeLog.String(); s != "CorruptOwnerBlockPoisonPillwritelog entry" {
		t.Errorf("names: %q", s)
	}
}

// reseal recomputes a block's checksum after a test edited it.
func reseal(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[crcOff:], crc32.Checksum(b[:crcOff], castagnoli))
	return b
}

// TestBlockErrors: every way a block can be wrong is a *BlockError of the right class that
// names the block and says why.
func TestBlockErrors(t *testing.T) {
	t.Parallel()
	good := func() []byte { return encodeOwner(OwnerRecord{Held: true, Node: "node-a", Epoch: 2}, testUID) }
	for _, tc := range []struct {
		name   string
		block  func() []byte
		class  error
		reason string
	}{
		{"short", func() []byte { return good()[:100] }, ErrCorrupt, "100 bytes, want 4096"},
		{"zeros", func() []byte { return make([]byte, BlockSize) }, ErrCorrupt, "all zeros"},
		{"magic", func() []byte { b := good(); b[0] = 'X'; return b }, ErrCorrupt, `bad magic "XPQD"`},
		{"bit flip", func() []byte { b := good(); b[200] ^= 4; return b }, ErrCorrupt, "checksum mismatch"},
		{"torn", func() []byte {
			b := make([]byte, BlockSize)
			copy(b, good()[:1024])
			return b
		}, ErrCorrupt, "checksum mismatch"},
		{"newer version", func() []byte { b := good(); b[5] = FormatVersion + 1; return reseal(b) }, ErrUnsupportedVersion, "format version 2"},
		{"version 0", func() []byte { b := good(); b[5] = 0; return reseal(b) }, ErrCorrupt, "format version 0"},
		{"wrong type", func() []byte { b := good(); b[4] = byte(typeLog); return reseal(b) }, ErrCorrupt, "a log entry block where a owner record belongs"},
		{"reserved", func() []byte { b := good(); b[7] = 1; return reseal(b) }, ErrCorrupt, "reserved"},
		{"misdirected", func() []byte { b := good(); b[8] = 5; return reseal(b) }, ErrCorrupt, "written for block 5"},
		{"other cluster", func() []byte { return encodeOwner(OwnerRecord{}, otherUID) }, ErrOtherCluster, "cluster UID ffeedd"},
		{"trailing garbage", func() []byte { b := good(); b[3000] = 1; return reseal(b) }, ErrCorrupt, "non-zero byte at offset 3000"},
		{"held flag", func() []byte { b := good(); b[commonLen] = 2; return reseal(b) }, ErrCorrupt, "held flag 2"},
		{"name too long", func() []byte { b := good(); b[commonLen+1], b[commonLen+2] = 0xff, 0xff; return reseal(b) }, ErrCorrupt, "node name of 65535 bytes"},
	} {
		_, err := decodeOwner(tc.block(), testUID)
		var be *BlockError
		if !errors.As(err, &be) || !errors.Is(err, tc.class) || be.Block != ownerBlock || be.Kind != "owner record" || !strings.Contains(be.Reason, tc.reason) {
			t.Errorf("%s: got %v; want %v with %q", tc.name, err, tc.class, tc.reason)
			continue
		}
		if !strings.HasPrefix(err.Error(), "quorum disk block 1 (owner record): ") {
			t.Errorf("%s: message %q", tc.name, err)
		}
	}
	// The header: no magic means not formatted, not corrupt.
	for _, b := range [][]byte{make([]byte, BlockSize), bytes.Repeat([]byte{0xaa}, BlockSize)} {
		if _, err := decodeHeader(b); !errors.Is(err, ErrNotFormatted) {
			t.Errorf("header %x...: %v, want ErrNotFormatted", b[:4], err)
		}
	}
	hb := encodeHeader(header{layout: testLayout()})
	hb[100] ^= 1
	if _, err := decodeHeader(hb); !errors.Is(err, ErrCorrupt) {
		t.Errorf("damaged header: %v", err)
	}
	bad := encodeHeader(header{layout: Layout{ClusterUID: testUID, Slots: MaxSlots + 1, LogEntries: 1}})
	if _, err := decodeHeader(bad); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "256 node slots") {
		t.Errorf("header with too many slots: %v", err)
	}
}

// fuzzDecoder checks a decoder on arbitrary blocks: it never panics, and what it accepts is
// the one encoding of what it returns.
func fuzzDecoder[T any](f *testing.F, seeds [][]byte, decode func([]byte) (T, error), encode func(T) []byte) {
	f.Helper()
	for _, s := range seeds {
		f.Add(s)
		for _, i := range []int{0, 4, 5, 9, 20, commonLen, commonLen + 3, 500, crcOff - 1, crcOff} {
			b := bytes.Clone(s)
			b[i] ^= 0x41
			f.Add(b)
			f.Add(reseal(bytes.Clone(b)))
		}
		f.Add(s[:BlockSize/2])
	}
	check := func(t *testing.T, b []byte) {
		t.Helper()
		v, err := decode(b)
		if err != nil {
			var be *BlockError
			if !errors.As(err, &be) || be.Reason == "" {
				t.Fatalf("error without a block: %v", err)
			}
			return
		}
		if again := encode(v); !bytes.Equal(again, b) {
			t.Fatalf("accepted a block that is not the encoding of %+v", v)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, b)
		if len(b) == BlockSize {
			// With a valid checksum, so that the fuzzer reaches the record's own checks.
			check(t, reseal(bytes.Clone(b)))
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	fuzzDecoder(f, [][]byte{encodeHeader(header{layout: testLayout(), created: when})},
		decodeHeader, encodeHeader)
}

func FuzzDecodeOwner(f *testing.F) {
	fuzzDecoder(f, [][]byte{encodeOwner(OwnerRecord{}, testUID), encodeOwner(OwnerRecord{Held: true, Node: "node-a", Incarnation: 3, Epoch: 4, Counter: 5, Time: when}, testUID)},
		func(b []byte) (OwnerRecord, error) { return decodeOwner(b, testUID) },
		func(r OwnerRecord) []byte { return encodeOwner(r, testUID) })
}

func FuzzDecodeNode(f *testing.F) {
	fuzzDecoder(f, [][]byte{encodeNode(NodeRecord{}, 2, testUID), encodeNode(NodeRecord{Node: "node-a", Incarnation: 3, Seq: 4, Epoch: 5, Time: when}, 2, testUID)},
		func(b []byte) (NodeRecord, error) { return decodeNode(b, 2, "slot 0 record A", testUID) },
		func(r NodeRecord) []byte { return encodeNode(r, 2, testUID) })
}

func FuzzDecodeMessage(f *testing.F) {
	fuzzDecoder(f, [][]byte{encodeMessage(Message{}, 4, testUID), encodeMessage(Message{To: "node-a", Kind: MessagePoisonPill, From: "node-b", Epoch: 2, Seq: 3, Time: when}, 4, testUID)},
		func(b []byte) (Message, error) { return decodeMessage(b, 4, "slot 0 message", testUID) },
		func(m Message) []byte { return encodeMessage(m, 4, testUID) })
}

func FuzzDecodeLog(f *testing.F) {
	fuzzDecoder(f, [][]byte{encodeLog(LogEntry{}, 11, testUID), encodeLog(LogEntry{Epoch: 9, Owner: "node-a", Incarnation: 1, Previous: "node-b", Reason: ReasonFree, Time: when}, 11, testUID)},
		func(b []byte) (LogEntry, error) { return decodeLog(b, 11, "log entry 0", testUID) },
		func(e LogEntry) []byte { return encodeLog(e, 11, testUID) })
}
