package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Process is one component process: its command line and log file, and its pid while it runs.
// Each runs in its own session, so in its own process group (pgid = pid), which is what it is
// killed with; and it outlives the process that started it until it is stopped.
type Process struct {
	Name string   `json:"name"`
	Args []string `json:"args"` // Args[0] is the binary
	Log  string   `json:"log"`
	PID  int      `json:"pid,omitempty"`
	// Env is added to the environment this process inherits.
	Env []string `json:"env,omitempty"`
	// Exe is the program the process runs once Args[0] has exec'ed it (as nsenter does), when
	// that differs from Args[0].
	Exe string `json:"exe,omitempty"`

	// done is closed when the process, a child of this one, has been reaped; nil for a
	// process read from the state file.
	done chan struct{}
}

// start runs p.Args with output appended to p.Log.
func (p *Process) start() error {
	logFile, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	defer func() { _ = logFile.Close() }()
	_, _ = fmt.Fprintf(logFile, "\n=== %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(p.Args, " "))
	// Not exec.CommandContext: the process outlives the context and, for `make demo`, this
	// process. The command line is this package's, from the binary directory it was given.
	cmd := exec.Command(p.Args[0], p.Args[1:]...) //nolint:noctx,gosec // see above
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if len(p.Env) > 0 {
		cmd.Env = append(os.Environ(), p.Env...)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	p.PID = cmd.Process.Pid
	done := make(chan struct{})
	p.done = done
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return nil
}

// running tells whether the process recorded in p is alive. For a process read from the state
// file it checks that the pid still runs p's binary, so that a reused pid is not mistaken for it.
func (p *Process) running() bool {
	if p.PID == 0 {
		return false
	}
	if p.done != nil {
		select {
		case <-p.done:
			return false
		default:
			return true
		}
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID))
	if err != nil {
		return false
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	return (string(argv0) == p.Args[0] || (p.Exe != "" && string(argv0) == p.Exe)) && !zombie(p.PID)
}

// zombie tells whether pid has exited and waits for its parent to reap it.
func zombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may contain anything.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// stop sends SIGTERM to the process group and SIGKILL after grace (at once when grace is 0),
// and waits until the process is gone.
func (p *Process) stop(grace time.Duration) error {
	if !p.running() {
		p.PID = 0
		return nil
	}
	if grace > 0 {
		_ = syscall.Kill(-p.PID, syscall.SIGTERM)
		// A paused process (Pause) handles SIGTERM only once it runs again.
		_ = syscall.Kill(-p.PID, syscall.SIGCONT)
		if p.waitGone(grace) == nil {
			p.PID = 0
			return nil
		}
	}
	_ = syscall.Kill(-p.PID, syscall.SIGKILL)
	if err := p.waitGone(30 * time.Second); err != nil {
		return fmt.Errorf("%s (pid %d) survived SIGKILL: %w", p.Name, p.PID, err)
	}
	p.PID = 0
	return nil
}

// signal sends sig to the process group of a running process.
func (p *Process) signal(sig syscall.Signal) error {
	if !p.running() {
		return fmt.Errorf("%s is not running", p.Name)
	}
	if err := syscall.Kill(-p.PID, sig); err != nil {
		return fmt.Errorf("%s (pid %d): %v: %w", p.Name, p.PID, sig, err)
	}
	return nil
}

func (p *Process) waitGone(timeout time.Duration) error {
	if p.done != nil {
		select {
		case <-p.done:
			return nil
		case <-time.After(timeout):
			return errors.New("timed out")
		}
	}
	return wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true,
		func(context.Context) (bool, error) { return !p.running(), nil })
}

// waitReady polls ready until it returns nil, and fails with the component's name, the last
// error and the tail of its log when the process exits or timeout passes first.
func (p *Process) waitReady(ctx context.Context, timeout time.Duration, ready func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if !p.running() {
			return false, errors.New("the process exited")
		}
		last = ready(ctx)
		return last == nil, nil
	})
	if err == nil {
		return nil
	}
	if last != nil && wait.Interrupted(err) {
		err = fmt.Errorf("not ready after %s: %w", timeout, last)
	}
	return fmt.Errorf("%s: %w\n--- last lines of %s ---\n%s", p.Name, err, p.Log, tail(p.Log, 30))
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
