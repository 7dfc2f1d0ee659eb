package monitor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

const (
	// sendQueue is how many frames may wait for the monitor to read them.
	sendQueue = 64
	// drainTimeout bounds the wait for the last frames of a monitor that is gone.
	drainTimeout = time.Second
	// waitDelay bounds the wait for the monitor's standard error to close once it has exited.
	waitDelay = time.Second
)

// child is one monitor process and the goroutines that talk to it.
type child struct {
	cmd    *exec.Cmd
	pid    int
	stdin  *os.File // the agent's end of the monitor's stdin
	stdout *os.File // the agent's end of the monitor's stdout

	sendq    chan []byte   // frames for the writer
	pongs    chan struct{} // a pong arrived; dropped when one is already waiting
	quit     chan struct{} // closed to stop the writer
	exited   chan struct{} // closed once the process has been waited for
	exitErr  error         // what Wait returned, once exited is closed
	readDone chan struct{} // closed when the reader stops
	readErr  error         // why the reader stopped, once readDone is closed
	wg       sync.WaitGroup

	mu      sync.Mutex
	pending map[uint64]chan Result // checks sent, by id
	closed  bool                   // pending has been failed; no more checks
}

// startChild starts the monitor process of cfg and the goroutines that talk to it.
func startChild(cfg *Config) (*child, error) {
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("monitor stdin: %w", err)
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		closeAll(stdinR, stdinW)
		return nil, fmt.Errorf("monitor stdout: %w", err)
	}
	// The command is the agent's own binary, or another that the agent's configuration names;
	// nothing in it comes from the resources being checked.
	cmd := exec.Command(cfg.Path, cfg.Args...) //nolint:gosec,noctx // G204: see above; the process outlives no context but is killed by stop.
	cmd.Env = cfg.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, stdoutW, cfg.Stderr
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = waitDelay
	err = cmd.Start()
	closeAll(stdinR, stdoutW) // the monitor has its own copies
	if err != nil {
		closeAll(stdinW, stdoutR)
		return nil, fmt.Errorf("start the monitor %s: %w", cfg.Path, err)
	}
	ch := &child{
		cmd: cmd, pid: cmd.Process.Pid, stdin: stdinW, stdout: stdoutR,
		sendq:    make(chan []byte, sendQueue),
		pongs:    make(chan struct{}, 1),
		quit:     make(chan struct{}),
		exited:   make(chan struct{}),
		readDone: make(chan struct{}),
		pending:  map[uint64]chan Result{},
	}
	ch.wg.Go(ch.wait)
	ch.wg.Go(ch.read)
	ch.wg.Go(ch.write)
	return ch, nil
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// wait reaps the process.
func (ch *child) wait() {
	ch.exitErr = ch.cmd.Wait()
	close(ch.exited)
}

// read delivers the monitor's results and pongs until its output fails.
func (ch *child) read() {
	defer close(ch.readDone)
	r := bufio.NewReader(ch.stdout)
	for {
		m, err := readMessage(r)
		if err != nil {
			ch.readErr = err
			return
		}
		switch m.Kind {
		case kindPong:
			select {
			case ch.pongs <- struct{}{}:
			default:
			}
		case kindResult:
			ch.deliver(m.ID, *m.Result)
		default:
			ch.readErr = fmt.Errorf("unexpected %s message from the monitor", m.Kind)
			return
		}
	}
}

// write writes queued frames to the monitor until quit. After a failed write it drops them: the
// monitor is gone, and stop will say so.
func (ch *child) write() {
	broken := false
	for {
		select {
		case <-ch.quit:
			return
		case frame := <-ch.sendq:
			if !broken {
				_, err := ch.stdin.Write(frame)
				broken = err != nil
			}
		}
	}
}

// trySend queues m for the monitor unless the queue is full: a monitor that reads nothing is
// about to be found hung anyway.
func (ch *child) trySend(m message) {
	frame, err := encodeMessage(m)
	if err != nil {
		return
	}
	select {
	case ch.sendq <- frame:
	default:
	}
}

// register makes a place for the result of check id, unless the monitor is going.
func (ch *child) register(id uint64) (<-chan Result, bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		return nil, false
	}
	results := make(chan Result, 1)
	ch.pending[id] = results
	return results, true
}

// forget drops the place for the result of check id.
func (ch *child) forget(id uint64) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	delete(ch.pending, id)
}

// deliver hands the monitor's result to the check waiting for it, if it still is.
func (ch *child) deliver(id uint64, r Result) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if results, ok := ch.pending[id]; ok {
		delete(ch.pending, id)
		results <- r
	}
}

// failPending gives every check still waiting the result r, and refuses new ones.
func (ch *child) failPending(r Result) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.closed = true
	for id, results := range ch.pending {
		delete(ch.pending, id)
		results <- r
	}
}

// stop ends the monitor and waits for its goroutines. A graceful stop closes the monitor's
// stdin and gives it grace to exit. The process group is then killed, whatever it still holds,
// and the results the monitor wrote before it went are read.
func (ch *child) stop(clk clock.Clock, graceful bool, grace time.Duration) {
	if graceful {
		_ = ch.stdin.Close()
		waitFor(clk, ch.exited, grace)
	}
	_ = killGroup(ch.pid)
	<-ch.exited
	// Its last results are in the pipe, unless something outside the group holds it open.
	waitFor(clk, ch.readDone, drainTimeout)
	_ = ch.stdout.Close()
	<-ch.readDone
	close(ch.quit)
	_ = ch.stdin.Close()
	ch.wg.Wait()
}

// crash says how a monitor that ended by itself ended.
func (ch *child) crash() string {
	how := "exit status 0"
	if ch.exitErr != nil {
		how = ch.exitErr.Error()
	}
	if err := ch.readErr; err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
		how += fmt.Sprintf(" (its output: %v)", err)
	}
	return how
}

// waitFor waits for done to close, or for d.
func waitFor(clk clock.Clock, done <-chan struct{}, d time.Duration) {
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C():
	}
}
