package monitor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// header returns the length header of a frame of payload.
func header(payload string) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
}

func rawFrame(payload string) []byte {
	return append(header(payload), payload...)
}

func mustEncode(tb testing.TB, m message) []byte {
	tb.Helper()
	b, err := encodeMessage(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestMessageRoundTrip(t *testing.T) {
	started := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, m := range []message{
		{Kind: kindPing, ID: 1},
		{Kind: kindPong, ID: 1<<64 - 1},
		{Kind: kindCheck, ID: 2, Check: &Check{Key: "ns/r/looksAlive", Exec: &ExecCheck{ContainerID: "c", Command: []string{"sh", "-c", "<&>"}}, Timeout: time.Second}},
		{Kind: kindResult, ID: 2, Result: &Result{Key: "ns/r/looksAlive", Reason: Failed, Message: "exit code 1: ünïcode", Started: started, Duration: time.Millisecond}},
	} {
		var buf bytes.Buffer
		buf.Write(mustEncode(t, m))
		buf.Write(mustEncode(t, m))
		for range 2 {
			got, err := readMessage(&buf)
			if err != nil {
				t.Fatalf("%s: %v", m.Kind, err)
			}
			if !bytes.Equal(mustEncode(t, got), mustEncode(t, m)) {
				t.Errorf("%s: got %+v, want %+v", m.Kind, got, m)
			}
		}
		if _, err := readMessage(&buf); !errors.Is(err, io.EOF) {
			t.Errorf("%s: after the last frame got %v, want io.EOF", m.Kind, err)
		}
	}
}

func TestReadMessageErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input []byte
		want  string
	}{
		{"short header", []byte{0, 0}, "unexpected EOF"},
		{"empty frame", header(""), "frame size out of range"},
		{"too long", binary.BigEndian.AppendUint32(nil, MaxFrameSize+1), "frame size out of range"},
		{"short payload", append(header(`{"kind":"ping"}`), `{"ki`...), "unexpected EOF"},
		{"header only", header(`{"kind":"ping"}`), "unexpected EOF"},
		{"not json", rawFrame("hello"), "decode frame"},
		{"null", rawFrame("null"), `unknown message kind ""`},
		{"unknown kind", rawFrame(`{"kind":"shutdown"}`), "unknown message kind"},
		{"check without check", rawFrame(`{"kind":"check","id":1}`), "without a check"},
		{"result without result", rawFrame(`{"kind":"result","id":1}`), "without a result"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readMessage(bytes.NewReader(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestEncodeMessageTooLarge(t *testing.T) {
	c := &Check{Key: strings.Repeat("k", MaxFrameSize)}
	if _, err := encodeMessage(message{Kind: kindCheck, Check: c}); !errors.Is(err, errFrameSize) {
		t.Errorf("got %v, want errFrameSize", err)
	}
}

// FuzzReadMessage feeds readMessage arbitrary input: it must not panic or allocate beyond
// MaxFrameSize, and what it accepts must encode again to a frame that decodes the same.
func FuzzReadMessage(f *testing.F) {
	for _, m := range []message{
		{Kind: kindPing, ID: 7},
		{Kind: kindPong, ID: 7},
		{Kind: kindCheck, ID: 8, Check: &Check{Key: "k", HTTP: &HTTPCheck{Host: "h", Port: 80, Path: "/"}, Timeout: time.Second}},
		{Kind: kindResult, ID: 8, Result: &Result{Key: "k", Healthy: true, Reason: Passed, Started: time.Unix(1, 0).UTC()}},
	} {
		f.Add(mustEncode(f, m))
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, '{'})
	f.Add(rawFrame(`{"kind":"check","id":1,"check":{"timeout":"1s"}}`))
	f.Add(rawFrame(`{"kind":"result","id":1,"result":{"started":"0000-01-01T00:00:00+23:59"}}`))
	f.Add(rawFrame("\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := readMessage(bytes.NewReader(data))
		if err != nil {
			return
		}
		first, err := encodeMessage(m)
		if err != nil {
			return // e.g. a time that parses but does not format
		}
		again, err := readMessage(bytes.NewReader(first))
		if err != nil {
			t.Fatalf("re-encoded frame %q does not decode: %v", first, err)
		}
		if second := mustEncode(t, again); !bytes.Equal(first, second) {
			t.Fatalf("re-encoding changed the frame:\n%q\n%q", first, second)
		}
	})
}
