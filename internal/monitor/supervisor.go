package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// Defaults of Config.
const (
	DefaultGrace        = 500 * time.Millisecond
	DefaultPingInterval = time.Second
	DefaultPingTimeout  = 5 * time.Second
	DefaultStopGrace    = 2 * time.Second
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 5 * time.Second
	DefaultBackoffReset = 30 * time.Second
)

// Config configures a Supervisor. Only Path is required; a zero field takes its default.
type Config struct {
	// Path is the monitor's executable. The node agent runs itself, "/proc/self/exe", with Args
	// ["monitor"], and its monitor subcommand calls Serve on stdin and stdout.
	Path string
	// Args are the arguments after the program name.
	Args []string
	// Env is the monitor's environment; nil means the agent's.
	Env []string
	// Stderr receives the monitor's standard error; nil means the agent's.
	Stderr io.Writer

	// Grace is added to a check's timeout for the round trip to the monitor: a check without a
	// result after both is unhealthy, TimedOut, whatever the monitor does.
	Grace time.Duration
	// PingInterval is how often the monitor is pinged.
	PingInterval time.Duration
	// PingTimeout is how long the monitor may go without answering a ping before it is
	// considered hung and killed. It must be longer than PingInterval.
	PingTimeout time.Duration
	// StopGrace is how long a stopping monitor has to exit after its stdin is closed before it
	// is killed.
	StopGrace time.Duration
	// MinBackoff and MaxBackoff bound the delay before a restart, which doubles from one
	// restart to the next and starts again from MinBackoff once a monitor has run for
	// BackoffReset.
	MinBackoff, MaxBackoff, BackoffReset time.Duration

	// Clock is the clock of every timeout, interval and backoff; nil means the real one.
	Clock clock.WithTicker
	// Metrics receives the counters; nil means unregistered ones of the Supervisor's own.
	Metrics *Metrics
	// Logger logs the monitor's restarts; the zero Logger discards.
	Logger logr.Logger
}

// Supervisor runs health checks in a monitor process that it starts, watches and restarts, as
// MSCS's Cluster Service does with its Resource Monitor. Run runs the monitor; Check, called
// concurrently from anywhere, runs a check in it. Whatever the monitor does, Check answers
// within the check's timeout plus Config.Grace.
type Supervisor struct {
	cfg     Config
	metrics *Metrics
	log     logr.Logger
	ids     atomic.Uint64
	ran     atomic.Bool

	mu      sync.Mutex
	current *child        // the running monitor, nil while there is none
	changed chan struct{} // closed and replaced when current changes
	stopped bool          // Run has returned
}

// NewSupervisor returns a Supervisor of the monitor that cfg describes. Nothing starts before Run.
func NewSupervisor(cfg Config) (*Supervisor, error) {
	if cfg.Path == "" {
		return nil, errors.New("monitor: Config.Path is required")
	}
	cfg.setDefaults()
	if cfg.PingTimeout <= cfg.PingInterval {
		return nil, fmt.Errorf("monitor: Config.PingTimeout (%s) must be longer than PingInterval (%s)", cfg.PingTimeout, cfg.PingInterval)
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		return nil, fmt.Errorf("monitor: Config.MaxBackoff (%s) must not be shorter than MinBackoff (%s)", cfg.MaxBackoff, cfg.MinBackoff)
	}
	return &Supervisor{cfg: cfg, metrics: cfg.Metrics, log: cfg.Logger, changed: make(chan struct{})}, nil
}

func (c *Config) setDefaults() {
	setDefault(&c.Grace, DefaultGrace)
	setDefault(&c.PingInterval, DefaultPingInterval)
	setDefault(&c.PingTimeout, DefaultPingTimeout)
	setDefault(&c.StopGrace, DefaultStopGrace)
	setDefault(&c.MinBackoff, DefaultMinBackoff)
	setDefault(&c.MaxBackoff, DefaultMaxBackoff)
	setDefault(&c.BackoffReset, DefaultBackoffReset)
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Run starts the monitor process and keeps one running, restarting it with backoff when it
// crashes, hangs or cannot be started, until ctx ends. It then stops the monitor and returns nil
// once the process is gone. Run may be called once.
func (s *Supervisor) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("monitor: Supervisor.Run called twice")
	}
	defer s.setCurrent(nil, true)
	b := backoff{min: s.cfg.MinBackoff, max: s.cfg.MaxBackoff, reset: s.cfg.BackoffReset}
	for {
		started := s.cfg.Clock.Now()
		reason := s.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		s.metrics.Restarts.WithLabelValues(reason).Inc()
		delay := b.next(s.cfg.Clock.Since(started))
		s.log.Info("Restarting the resource monitor", "reason", reason, "delay", delay)
		if !s.sleep(ctx, delay) {
			return nil
		}
	}
}

// runOnce starts a monitor and watches it until it must go, and returns the reason to restart.
func (s *Supervisor) runOnce(ctx context.Context) string {
	ch, err := startChild(&s.cfg)
	if err != nil {
		s.log.Error(err, "Cannot start the resource monitor")
		return RestartStartFailed
	}
	log := s.log.WithValues("pid", ch.pid)
	log.V(1).Info("Started the resource monitor")
	s.setCurrent(ch, false)
	cause := s.watch(ctx, ch)
	s.setCurrent(nil, false)
	ch.stop(s.cfg.Clock, cause == causeShutdown, s.cfg.StopGrace)
	ch.failPending(s.inFlightResult(cause, ch))
	switch cause {
	case causeHung:
		log.Info("Killed the resource monitor: it stopped answering pings", "pingTimeout", s.cfg.PingTimeout)
		return RestartHung
	case causeCrashed:
		log.Info("The resource monitor ended", "cause", ch.crash())
		return RestartCrashed
	default:
		return "" // stopped: Run returns without counting a restart
	}
}

// inFlightResult is the result of the checks in flight when a monitor went for cause.
func (s *Supervisor) inFlightResult(cause stopCause, ch *child) Result {
	switch cause {
	case causeHung:
		return Result{Reason: MonitorHung, Message: fmt.Sprintf("the monitor process answered no ping for %s and was killed", s.cfg.PingTimeout)}
	case causeCrashed:
		return Result{Reason: MonitorCrashed, Message: "the monitor process ended: " + ch.crash()}
	default:
		return Result{Reason: MonitorUnavailable, Message: "the monitor process was stopped"}
	}
}

// stopCause is why watch stopped watching a monitor.
type stopCause int

const (
	causeShutdown stopCause = iota
	causeCrashed
	causeHung
)

// watch pings the monitor until it exits, closes its output, stops answering, or ctx ends.
func (s *Supervisor) watch(ctx context.Context, ch *child) stopCause {
	ticker := s.cfg.Clock.NewTicker(s.cfg.PingInterval)
	defer ticker.Stop()
	lastPong := s.cfg.Clock.Now()
	var ping uint64
	for {
		select {
		case <-ctx.Done():
			return causeShutdown
		case <-ch.exited:
			return causeCrashed
		case <-ch.readDone:
			return causeCrashed
		case <-ch.pongs:
			lastPong = s.cfg.Clock.Now()
		case <-ticker.C():
			if s.cfg.Clock.Since(lastPong) > s.cfg.PingTimeout {
				return causeHung
			}
			ping++
			ch.trySend(message{Kind: kindPing, ID: ping})
		}
	}
}

// sleep waits for d or the end of ctx, and says whether it was d.
func (s *Supervisor) sleep(ctx context.Context, d time.Duration) bool {
	t := s.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// setCurrent makes ch the running monitor, and wakes the checks waiting for one.
func (s *Supervisor) setCurrent(ch *child, stopped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current = ch
	s.stopped = s.stopped || stopped
	close(s.changed)
	s.changed = make(chan struct{})
}

// monitor returns the running monitor (nil if none), a channel closed when that changes, and
// whether Run has returned.
func (s *Supervisor) monitor() (*child, <-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current, s.changed, s.stopped
}

// Check runs c in the monitor and returns its result, within c's timeout plus Config.Grace:
//
//   - a check without a result by then is TimedOut, even if the monitor never answers;
//   - a check running when the monitor crashes or hangs is MonitorCrashed or MonitorHung;
//   - a check that finds no running monitor waits for one until then, and is MonitorUnavailable;
//   - a check whose ctx ends first is Canceled.
func (s *Supervisor) Check(ctx context.Context, c Check) Result {
	started := s.cfg.Clock.Now()
	res := s.check(ctx, &c, started)
	res.Key = c.Key
	if res.Started.IsZero() {
		res.Started, res.Duration = started, s.cfg.Clock.Since(started)
	}
	s.metrics.Checks.WithLabelValues(string(res.Reason)).Inc()
	return res
}

func (s *Supervisor) check(ctx context.Context, c *Check, started time.Time) Result {
	if err := c.Validate(); err != nil {
		return c.unhealthy(Invalid, started, 0, "%v", err)
	}
	id := s.ids.Add(1)
	frame, err := encodeMessage(message{Kind: kindCheck, ID: id, Check: c})
	if err != nil {
		return c.unhealthy(Invalid, started, 0, "%v", err)
	}
	limit := c.timeout() + s.cfg.Grace
	timer := s.cfg.Clock.NewTimer(limit)
	defer timer.Stop()
	for {
		ch, changed, stopped := s.monitor()
		if ch != nil {
			if results, ok := ch.register(id); ok {
				defer ch.forget(id)
				return s.await(ctx, c, ch, frame, results, timer)
			}
		}
		if stopped {
			return Result{Reason: MonitorUnavailable, Message: "the monitor is stopped"}
		}
		select {
		case <-changed:
		case <-timer.C():
			return Result{Reason: MonitorUnavailable, Message: fmt.Sprintf("no monitor process to run the check within %s", limit)}
		case <-ctx.Done():
			return Result{Reason: Canceled, Message: fmt.Sprintf("waiting for a monitor process: %v", ctx.Err())}
		}
	}
}

// await sends the check's frame to the monitor and waits for its result.
func (s *Supervisor) await(ctx context.Context, c *Check, ch *child, frame []byte, results <-chan Result, timer clock.Timer) Result {
	send := ch.sendq
	for {
		select {
		case send <- frame:
			send = nil // sent: now only wait
		case r := <-results:
			return r
		case <-timer.C():
			return Result{Reason: TimedOut, Message: fmt.Sprintf("no result within the check's timeout of %s", c.timeout())}
		case <-ctx.Done():
			return Result{Reason: Canceled, Message: fmt.Sprintf("waiting for the result: %v", ctx.Err())}
		}
	}
}

// backoff is the capped exponential delay before a restart.
type backoff struct {
	min, max, reset time.Duration
	last            time.Duration
}

// next returns the delay before the next restart of a monitor that ran for ran.
func (b *backoff) next(ran time.Duration) time.Duration {
	switch {
	case b.last == 0 || ran >= b.reset:
		b.last = b.min
	default:
		b.last = min(2*b.last, b.max)
	}
	return b.last
}
