package monitor

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// childEnv tells the test binary, re-executed by a test, what to be instead of a test run:
// "serve" is a monitor process (Serve on stdin and stdout, with childExecer), "sleep" a process
// that sleeps, for a monitor to start.
const childEnv = "WOLFPACK_MONITOR_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "serve":
		os.Exit(serveChild())
	case "sleep":
		sleepForever()
	}
	goleak.VerifyTestMain(m)
}

// serveChild is the monitor process of the isolation tests.
func serveChild() int {
	out := &freezableWriter{w: os.Stdout}
	if err := Serve(context.Background(), os.Stdin, out, NewChecker(&childExecer{out: out})); err != nil {
		fmt.Fprintln(os.Stderr, "monitor:", err)
		return 1
	}
	return 0
}

// childExecer misbehaves as the isolation tests need, by the exec check's command:
//
//	ok      exit 0
//	fail    exit 1
//	hang    never return, ignoring the context
//	crash   exit the monitor process with status 2
//	freeze  hang the whole monitor: it writes nothing more, not even pongs
//	spawn   start a process that sleeps, in the monitor's process group, and print its pid
type childExecer struct {
	out *freezableWriter
}

func (e *childExecer) ExecSync(_ context.Context, _ string, cmd []string, _ time.Duration) (stdout, stderr []byte, exitCode int, err error) {
	switch cmd[0] {
	case "ok":
		return []byte("ok"), nil, 0, nil
	case "fail":
		return nil, []byte("not ok"), 1, nil
	case "hang":
		sleepForever()
	case "crash":
		os.Exit(2)
	case "freeze":
		e.out.frozen.Store(true)
		sleepForever()
	case "spawn":
		return spawnSleeper()
	}
	return nil, nil, 0, fmt.Errorf("unknown command %q", cmd[0])
}

func spawnSleeper() (stdout, stderr []byte, exitCode int, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, 0, err
	}
	cmd := exec.Command(self) //nolint:noctx // it is meant to outlive the check
	cmd.Env = childEnviron("sleep")
	if err := cmd.Start(); err != nil {
		return nil, nil, 0, err
	}
	go func() { _ = cmd.Wait() }()
	return []byte(strconv.Itoa(cmd.Process.Pid)), nil, 0, nil
}

// freezableWriter passes writes through until frozen, and then blocks them forever.
type freezableWriter struct {
	mu     sync.Mutex
	w      io.Writer
	frozen atomic.Bool
}

func (f *freezableWriter) Write(p []byte) (int, error) {
	if f.frozen.Load() {
		sleepForever()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Write(p)
}

// sleepForever blocks the calling goroutine for good; a sleep, unlike select {}, never looks like
// a deadlock to the runtime.
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}
