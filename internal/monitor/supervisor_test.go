package monitor

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

// slack is how late, beyond what the code promises, a loaded machine may make something happen.
const slack = 3 * time.Second

// testSupervisor is a Supervisor running the test binary as its monitor.
type testSupervisor struct {
	*Supervisor
	metrics *Metrics
	cancel  context.CancelFunc
	done    chan error
	once    sync.Once
}

// startSupervisor starts a Supervisor of a "serve" child; edit changes its configuration.
func startSupervisor(t *testing.T, edit func(*Config)) *testSupervisor {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Path:         self,
		Env:          childEnviron("serve"),
		Grace:        200 * time.Millisecond,
		PingInterval: 100 * time.Millisecond,
		PingTimeout:  10 * time.Second, // no test but the hung one wants a hang detected
		StopGrace:    500 * time.Millisecond,
		MinBackoff:   50 * time.Millisecond,
		MaxBackoff:   time.Second,
		Metrics:      NewMetrics(),
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := NewSupervisor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testSupervisor{Supervisor: s, metrics: cfg.Metrics, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Run(ctx) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop cancels Run and waits for it to return.
func (ts *testSupervisor) stop(t *testing.T) {
	t.Helper()
	ts.once.Do(func() {
		ts.cancel()
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(ts.cfg.StopGrace + drainTimeout + slack):
			t.Error("Run did not return after its context was canceled")
		}
	})
}

// childEnviron is the environment of a child in mode. Under the race detector a Go program
// sleeps a second before it exits; the children need not.
func childEnviron(mode string) []string {
	return append(os.Environ(), childEnv+"="+mode, strings.TrimSpace("GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

func execCheck(key, command string, timeout time.Duration) Check {
	return Check{Key: key, Exec: &ExecCheck{ContainerID: "c", Command: []string{command}}, Timeout: timeout}
}

// mustPass runs a passing check, with time for the monitor to (re)start, and returns the pid of
// the monitor that ran it.
func (ts *testSupervisor) mustPass(t *testing.T) int {
	t.Helper()
	if r := ts.Check(context.Background(), execCheck("ok", "ok", 10*time.Second)); r.Reason != Passed || !r.Healthy || r.Message != "ok" {
		t.Fatalf("ok check: got %+v, want Passed", r)
	}
	ch, _, _ := ts.monitor()
	if ch == nil {
		t.Fatal("no monitor after a passed check")
	}
	return ch.pid
}

// checkAsync runs a check in the background.
func (ts *testSupervisor) checkAsync(c Check) <-chan Result {
	out := make(chan Result, 1)
	go func() { out <- ts.Check(context.Background(), c) }()
	return out
}

// waitPending waits until the running monitor has n checks in flight.
func (ts *testSupervisor) waitPending(t *testing.T, n int) {
	t.Helper()
	eventually(t, "checks in flight", func() bool {
		ch, _, _ := ts.monitor()
		if ch == nil {
			return false
		}
		ch.mu.Lock()
		defer ch.mu.Unlock()
		return len(ch.pending) == n
	})
}

func (ts *testSupervisor) restarts(reason string) float64 {
	return testutil.ToFloat64(ts.metrics.Restarts.WithLabelValues(reason))
}

func (ts *testSupervisor) checks(reason Reason) float64 {
	return testutil.ToFloat64(ts.metrics.Checks.WithLabelValues(string(reason)))
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.WaitEvery(t, what, 10*time.Second, 10*time.Millisecond, func() error {
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	})
}

// gone says whether process pid has exited: it does not exist or is a zombie.
func gone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// The state follows the command name in parentheses.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] == "Z"
}

func TestSupervisorHangingCheckTimesOut(t *testing.T) {
	ts := startSupervisor(t, nil)
	pid := ts.mustPass(t)

	// While a check hangs, ignoring its context, others are answered.
	const timeout = 300 * time.Millisecond
	start := time.Now()
	hung := ts.checkAsync(execCheck("hang", "hang", timeout))
	if r := ts.Check(context.Background(), execCheck("fail", "fail", 10*time.Second)); r.Reason != Failed || r.Healthy {
		t.Errorf("fail check beside a hanging one: got %+v, want Failed", r)
	}

	r := <-hung
	elapsed := time.Since(start)
	if r.Reason != TimedOut || r.Healthy || r.Key != "hang" {
		t.Errorf("hanging check: got %+v, want TimedOut", r)
	}
	if limit := timeout + ts.cfg.Grace; elapsed < limit || elapsed > limit+slack {
		t.Errorf("hanging check answered after %s, want about %s", elapsed, limit)
	}

	// The monitor is the same one, and goes on.
	if got := ts.mustPass(t); got != pid {
		t.Errorf("monitor pid %d after a hanging check, want still %d", got, pid)
	}
	for _, reason := range []string{RestartCrashed, RestartHung, RestartStartFailed} {
		if n := ts.restarts(reason); n != 0 {
			t.Errorf("restarts{reason=%s} = %v, want 0", reason, n)
		}
	}
	if n := ts.checks(TimedOut); n != 1 {
		t.Errorf("checks{result=TimedOut} = %v, want 1", n)
	}
	if n := ts.checks(Passed); n != 2 {
		t.Errorf("checks{result=Passed} = %v, want 2", n)
	}
}

func TestSupervisorCrashedMonitorIsRestarted(t *testing.T) {
	ts := startSupervisor(t, nil)
	pid := ts.mustPass(t)

	// A check in flight when another crashes the monitor shares its fate.
	inFlight := ts.checkAsync(execCheck("hang", "hang", 30*time.Second))
	ts.waitPending(t, 1)
	crashed := ts.Check(context.Background(), execCheck("crash", "crash", 30*time.Second))
	if crashed.Reason != MonitorCrashed || crashed.Healthy || !strings.Contains(crashed.Message, "exit status 2") {
		t.Errorf("crashing check: got %+v, want MonitorCrashed with exit status 2", crashed)
	}
	if r := <-inFlight; r.Reason != MonitorCrashed {
		t.Errorf("check in flight: got %+v, want MonitorCrashed", r)
	}

	// The next check waits for the new monitor and passes.
	if got := ts.mustPass(t); got == pid {
		t.Errorf("monitor pid still %d after a crash", got)
	}
	if !gone(pid) {
		t.Errorf("the crashed monitor %d is still there", pid)
	}
	if n := ts.restarts(RestartCrashed); n != 1 {
		t.Errorf("restarts{reason=Crashed} = %v, want 1", n)
	}
	if n := ts.checks(MonitorCrashed); n != 2 {
		t.Errorf("checks{result=MonitorCrashed} = %v, want 2", n)
	}
}

func TestSupervisorHungMonitorIsKilledAndRestarted(t *testing.T) {
	const pingTimeout = 1500 * time.Millisecond
	ts := startSupervisor(t, func(c *Config) { c.PingTimeout = pingTimeout })
	pid := ts.mustPass(t)

	// The monitor starts a process of its own, which must die with it.
	r := ts.Check(context.Background(), execCheck("spawn", "spawn", 10*time.Second))
	sleeper, err := strconv.Atoi(r.Message)
	if r.Reason != Passed || err != nil {
		t.Fatalf("spawn check: got %+v, want Passed with a pid", r)
	}

	// Then it freezes, with a check in flight.
	start := time.Now()
	inFlight := ts.checkAsync(execCheck("hang", "hang", 30*time.Second))
	ts.waitPending(t, 1)
	frozen := ts.Check(context.Background(), execCheck("freeze", "freeze", 30*time.Second))
	elapsed := time.Since(start)
	if frozen.Reason != MonitorHung || frozen.Healthy {
		t.Errorf("freezing check: got %+v, want MonitorHung", frozen)
	}
	if r := <-inFlight; r.Reason != MonitorHung {
		t.Errorf("check in flight: got %+v, want MonitorHung", r)
	}
	// The last pong came at most a ping interval before the freeze.
	if earliest := pingTimeout - ts.cfg.PingInterval; elapsed < earliest || elapsed > pingTimeout+slack {
		t.Errorf("hung monitor found after %s, want about %s", elapsed, pingTimeout)
	}

	// Killed, with its process group, and replaced.
	eventually(t, "the hung monitor and its child to die", func() bool { return gone(pid) && gone(sleeper) })
	if got := ts.mustPass(t); got == pid {
		t.Errorf("monitor pid still %d after a hang", got)
	}
	if n := ts.restarts(RestartHung); n != 1 {
		t.Errorf("restarts{reason=Hung} = %v, want 1", n)
	}
	if n := ts.restarts(RestartCrashed); n != 0 {
		t.Errorf("restarts{reason=Crashed} = %v, want 0", n)
	}
}

func TestSupervisorRunStopsTheMonitor(t *testing.T) {
	ts := startSupervisor(t, func(c *Config) { c.StopGrace = 10 * time.Second })
	pid := ts.mustPass(t)
	ch, _, _ := ts.monitor()
	ts.stop(t)
	if ch.exitErr != nil {
		t.Errorf("the idle monitor ended with %v, want it to exit by itself once its stdin closed", ch.exitErr)
	}
	if !gone(pid) {
		t.Errorf("monitor %d still there after Run returned", pid)
	}
	if r := ts.Check(context.Background(), execCheck("late", "ok", 10*time.Second)); r.Reason != MonitorUnavailable || r.Healthy {
		t.Errorf("check after Run returned: got %+v, want MonitorUnavailable", r)
	}
}

func TestSupervisorRunKillsAMonitorThatWillNotStop(t *testing.T) {
	ts := startSupervisor(t, nil)
	pid := ts.mustPass(t)
	inFlight := ts.checkAsync(execCheck("hang", "hang", 30*time.Second))
	ts.waitPending(t, 1)

	ts.stop(t) // closes the monitor's stdin, waits StopGrace for it, then kills it
	if r := <-inFlight; r.Reason != MonitorUnavailable {
		t.Errorf("check in flight at shutdown: got %+v, want MonitorUnavailable", r)
	}
	if !gone(pid) {
		t.Errorf("monitor %d still there after Run returned", pid)
	}
}

func TestSupervisorMonitorThatCannotStart(t *testing.T) {
	ts := startSupervisor(t, func(c *Config) {
		c.Path = "/nonexistent/node-agent"
		c.MaxBackoff = 100 * time.Millisecond
	})
	eventually(t, "restarts", func() bool { return ts.restarts(RestartStartFailed) >= 3 })
	if r := ts.Check(context.Background(), execCheck("ok", "ok", 100*time.Millisecond)); r.Reason != MonitorUnavailable {
		t.Errorf("check without a monitor: got %+v, want MonitorUnavailable", r)
	}
}

func TestSupervisorManyChecks(t *testing.T) {
	ts := startSupervisor(t, nil)
	ts.mustPass(t)
	var wg sync.WaitGroup
	for i := range 50 {
		command, want := "ok", Passed
		if i%2 == 1 {
			command, want = "fail", Failed
		}
		key := strconv.Itoa(i)
		wg.Go(func() {
			if r := ts.Check(context.Background(), execCheck(key, command, 10*time.Second)); r.Key != key || r.Reason != want {
				t.Errorf("check %s (%s): got %+v, want %s", key, command, r, want)
			}
		})
	}
	wg.Wait()
}

func TestSupervisorCheckWithoutMonitor(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Now())
	s, err := NewSupervisor(Config{Path: "/unused", Clock: fc, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	result := make(chan Result, 1)
	go func() { result <- s.Check(context.Background(), execCheck("k", "ok", 2*time.Second)) }()

	eventually(t, "the check to wait", fc.HasWaiters)
	fc.Step(2999 * time.Millisecond)
	select {
	case r := <-result:
		t.Fatalf("check answered before its timeout and grace: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	fc.Step(time.Millisecond)
	if r := <-result; r.Reason != MonitorUnavailable || r.Healthy || r.Duration != 3*time.Second {
		t.Errorf("got %+v, want MonitorUnavailable after 3s", r)
	}
}

func TestSupervisorCheckCanceledAndInvalid(t *testing.T) {
	s, err := NewSupervisor(Config{Path: "/unused"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := s.Check(ctx, execCheck("k", "ok", time.Minute)); r.Reason != Canceled {
		t.Errorf("canceled check: got %+v, want Canceled", r)
	}
	if r := s.Check(context.Background(), Check{Key: "k"}); r.Reason != Invalid || !strings.Contains(r.Message, "exactly one") {
		t.Errorf("invalid check: got %+v, want Invalid", r)
	}
}

func TestNewSupervisorRejects(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no path":                  {},
		"ping timeout <= interval": {Path: "x", PingInterval: time.Second, PingTimeout: time.Second},
		"max backoff < min":        {Path: "x", MinBackoff: time.Second, MaxBackoff: time.Millisecond},
	} {
		if _, err := NewSupervisor(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRunTwice(t *testing.T) {
	s, err := NewSupervisor(Config{Path: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Errorf("first Run: %v", err)
	}
	if err := s.Run(ctx); err == nil {
		t.Error("second Run: no error")
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second, reset: 10 * time.Second}
	ms := time.Millisecond
	for i, step := range []struct {
		ran, want time.Duration
	}{
		{0, 100 * ms}, {ms, 200 * ms}, {ms, 400 * ms}, {ms, 800 * ms}, {ms, time.Second}, {ms, time.Second},
		{10 * time.Second, 100 * ms}, // ran fine for a while: back to the start
		{9 * time.Second, 200 * ms},
	} {
		if got := b.next(step.ran); got != step.want {
			t.Errorf("step %d (ran %s): got %s, want %s", i, step.ran, got, step.want)
		}
	}
}
