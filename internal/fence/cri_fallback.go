package fence

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// armedWatchdog is what the CRI action needs of its fallback watchdog.
type armedWatchdog interface {
	Fencer
	TimeoutReporter
	Disarmer
	HandoverCloser
}

// criFallback is the CRI action with a watchdog fallback: Fence stops the group pods through the
// CRI as CRI does, Heartbeat feeds the watchdog as Watchdog does, and Escalate, which the agent
// calls when the CRI fence fails, stops feeding the watchdog for good, so that the node resets.
// The watchdog also resets the node when the agent hangs: CRI alone does not cover that.
type criFallback struct {
	cri *criFencer
	wd  armedWatchdog
}

var (
	_ Fencer          = (*criFallback)(nil)
	_ TimeoutReporter = (*criFallback)(nil)
	_ Disarmer        = (*criFallback)(nil)
	_ HandoverCloser  = (*criFallback)(nil)
	_ Escalator       = (*criFallback)(nil)
)

// newCRIWithFallback opens, and so arms, the watchdog at opts.WatchdogFallbackPath.
func newCRIWithFallback(opts Options) (*criFallback, error) {
	wopts := opts
	wopts.WatchdogPath = opts.WatchdogFallbackPath
	f, err := openWatchdog(wopts)
	if err != nil {
		return nil, fmt.Errorf("the CRI action's watchdog fallback: %w", err)
	}
	wd, ok := f.(armedWatchdog)
	if !ok {
		return nil, errors.Join(fmt.Errorf("the CRI action's watchdog fallback: %T is not a watchdog", f), f.Close())
	}
	return &criFallback{cri: newCRI(opts), wd: wd}, nil
}

// Fence is the CRI fence. It does not touch the watchdog: Escalate does.
func (c *criFallback) Fence(ctx context.Context) (Report, error) { return c.cri.Fence(ctx) }

// Heartbeat feeds the watchdog; ErrFenced once Escalate has run.
func (c *criFallback) Heartbeat() error { return c.wd.Heartbeat() }

// Escalate stops feeding the watchdog, for good, and asks it to reset the node within a second;
// without that, the node resets within the watchdog's timeout.
func (c *criFallback) Escalate() error {
	if _, err := c.wd.Fence(context.Background()); err != nil {
		return fmt.Errorf("escalate to the watchdog: %w", err)
	}
	return nil
}

// Timeout is the watchdog's granted timeout.
func (c *criFallback) Timeout() time.Duration { return c.wd.Timeout() }

// Disarm disarms the watchdog; refused once Escalate has run.
func (c *criFallback) Disarm() error { return c.wd.Disarm() }

// Handover hands the watchdog over; refused once Escalate has run.
func (c *criFallback) Handover(d time.Duration) (time.Duration, error) { return c.wd.Handover(d) }

// Close closes the connection to the runtime and the watchdog, which stays armed.
func (c *criFallback) Close() error { return errors.Join(c.cri.Close(), c.wd.Close()) }
