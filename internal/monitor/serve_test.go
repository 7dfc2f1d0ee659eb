package monitor

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// serving is Serve running on pipes, as the monitor process runs it on stdin and stdout.
type serving struct {
	in     *io.PipeWriter // the supervisor's end of the monitor's input
	out    *io.PipeReader // the supervisor's end of the monitor's output
	outW   *io.PipeWriter
	msgs   chan message
	served chan error
}

func startServe(ctx context.Context, t *testing.T) *serving {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &serving{in: inW, out: outR, outW: outW, msgs: make(chan message, 16), served: make(chan error, 1)}
	go func() { s.served <- Serve(ctx, inR, outW, NewChecker(fakeExecer{})) }()
	go func() {
		defer close(s.msgs)
		for {
			m, err := readMessage(outR)
			if err != nil {
				return
			}
			s.msgs <- m
		}
	}()
	t.Cleanup(func() {
		_ = inW.Close()
		_ = inR.Close()
		_ = outW.Close()
	})
	return s
}

func (s *serving) send(t *testing.T, m message) {
	t.Helper()
	if _, err := s.in.Write(mustEncode(t, m)); err != nil {
		t.Fatal(err)
	}
}

func (s *serving) receive(t *testing.T) message {
	t.Helper()
	select {
	case m, ok := <-s.msgs:
		if !ok {
			t.Fatal("the monitor's output ended")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("nothing from the monitor")
	}
	return message{}
}

func (s *serving) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.served:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	return nil
}

func serveExec(command string, timeout time.Duration) *Check {
	c := execCheck(command, command, timeout)
	return &c
}

func TestServe(t *testing.T) {
	s := startServe(context.Background(), t)

	s.send(t, message{Kind: kindPing, ID: 41})
	if m := s.receive(t); m.Kind != kindPong || m.ID != 41 {
		t.Errorf("got %+v, want pong 41", m)
	}

	// A slow check does not hold up a quick one, nor a ping.
	s.send(t, message{Kind: kindCheck, ID: 1, Check: serveExec("sleep", 500*time.Millisecond)})
	s.send(t, message{Kind: kindCheck, ID: 2, Check: serveExec("true", 10*time.Second)})
	s.send(t, message{Kind: kindPing, ID: 42})
	got := map[uint64]message{}
	for range 3 {
		m := s.receive(t)
		got[m.ID] = m
	}
	if m := got[2]; m.Kind != kindResult || m.Result.Reason != Passed || m.Result.Key != "true" {
		t.Errorf("quick check: got %+v, want Passed", m)
	}
	if m := got[42]; m.Kind != kindPong {
		t.Errorf("ping: got %+v, want a pong", m)
	}
	if m := got[1]; m.Kind != kindResult || m.Result.Reason != TimedOut {
		t.Errorf("slow check: got %+v, want TimedOut", m)
	}

	// The end of input ends Serve, canceling what still runs.
	s.send(t, message{Kind: kindCheck, ID: 3, Check: serveExec("sleep", time.Minute)})
	_ = s.in.Close()
	if m := s.receive(t); m.ID != 3 || m.Result.Reason != Canceled {
		t.Errorf("check running at EOF: got %+v, want Canceled", m)
	}
	if err := s.result(t); err != nil {
		t.Errorf("Serve at EOF: %v", err)
	}
}

func TestServeContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := startServe(ctx, t)
	s.send(t, message{Kind: kindPing, ID: 1})
	s.receive(t)
	cancel()
	if err := s.result(t); err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
}

func TestServeBadInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input []byte
		want  string
	}{
		{"garbage", []byte("hello, monitor\n"), "frame size out of range"},
		{"not a request", rawFrame(`{"kind":"pong","id":1}`), "unexpected pong message"},
		{"truncated", []byte{0, 0, 0, 9, '{'}, "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServe(context.Background(), t)
			if _, err := s.in.Write(tc.input); err != nil {
				t.Fatal(err)
			}
			_ = s.in.Close()
			if err := s.result(t); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestServeOutputFails(t *testing.T) {
	s := startServe(context.Background(), t)
	_ = s.out.CloseWithError(errors.New("supervisor gone"))
	s.send(t, message{Kind: kindPing, ID: 1})
	if err := s.result(t); err == nil || !strings.Contains(err.Error(), "supervisor gone") {
		t.Errorf("got %v, want the write error", err)
	}
}
