package monitor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Serve is the monitor process: it reads checks and pings from the Supervisor on in, runs each
// check concurrently with c, and writes results and pongs to out. Nothing else may write to out.
//
// Serve returns nil when in ends (the Supervisor is done) or ctx ends, and an error when in
// carries something that is not a valid frame or out cannot be written. Before returning it
// cancels the checks still running and waits for them. When Serve returns because ctx ended,
// its reader may stay blocked reading in until in is closed or yields a frame; in the monitor
// process, in is stdin, and the process exits.
func Serve(ctx context.Context, in io.Reader, out io.Writer, c *Checker) error {
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	var running sync.WaitGroup
	defer running.Wait()
	defer cancel(nil)

	w := &messageWriter{w: out, fail: cancel}
	msgs, readErr := readMessages(ctx, in)
	for {
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return nil
			}
			return context.Cause(ctx)
		case err := <-readErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read from the supervisor: %w", err)
		case m := <-msgs:
			switch m.Kind {
			case kindPing:
				w.write(message{Kind: kindPong, ID: m.ID})
			case kindCheck:
				running.Go(func() {
					res := c.Run(ctx, *m.Check)
					w.write(message{Kind: kindResult, ID: m.ID, Result: &res})
				})
			default:
				return fmt.Errorf("unexpected %s message from the supervisor", m.Kind)
			}
		}
	}
}

// readMessages reads messages from in until it fails, or ctx ends and a message is read.
// The error channel receives the failure (io.EOF at the clean end of in).
func readMessages(ctx context.Context, in io.Reader) (<-chan message, <-chan error) {
	msgs := make(chan message)
	errc := make(chan error, 1)
	go func() {
		r := bufio.NewReader(in)
		for {
			m, err := readMessage(r)
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return msgs, errc
}

// messageWriter writes whole frames to w from many goroutines. It calls fail with the first
// error and writes nothing after it.
type messageWriter struct {
	mu     sync.Mutex
	w      io.Writer
	fail   func(error)
	failed bool
}

func (mw *messageWriter) write(m message) {
	frame, err := encodeMessage(m)
	mw.mu.Lock()
	defer mw.mu.Unlock()
	if mw.failed {
		return
	}
	if err == nil {
		_, err = mw.w.Write(frame)
	}
	if err != nil {
		mw.failed = true
		mw.fail(fmt.Errorf("write to the supervisor: %w", err))
	}
}
