package framework

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/env"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

const (
	// minSnapshots is how many snapshots Check wants: fewer means that the checker did not watch.
	minSnapshots = 10
	// snapshotEvery is the time between two snapshots.
	snapshotEvery = 100 * time.Millisecond
	// apiTimeout bounds the checker's request to the API server: a paused one does not stop it.
	apiTimeout = 2 * time.Second
	// maxBlind is the longest time between two runtime snapshots that a downtime assertion
	// accepts: a checker that did not look cannot say that nothing was down.
	maxBlind = 2 * time.Second
)

// Checker is the invariant checker. It takes two kinds of snapshots, each every 100 ms:
//
//   - With the API: the sample group's resources, then what runs in the member nodes' container
//     runtimes and the nodes' addresses. It records a violation whenever they put the group on
//     more than one node. A resource counts where it is OnlinePending, Online or OfflinePending
//     (owned); a pod where its sandbox is ready in the node's runtime (running; a crashed node
//     runs nothing); the floating address on the node whose public interface carries it, unless
//     the node has crashed.
//   - Without the API, so that they go on while the API server is stopped or hangs: what runs in
//     the runtimes and the addresses alone. It records a violation whenever they put the group
//     on more than one node, and records DOWNTIME: every snapshot in which a resource of the
//     group that has been seen running (a pod of the group with that resource label, in any
//     runtime, since the checker started) runs on no node. Downtime, DowntimeBetween, NoDowntime
//     and MaxDowntime report it.
type Checker struct {
	e    *env.Env
	mu   sync.Mutex
	stop func()

	// snapshots counts the snapshots with the API, apiFailures the ones whose list failed.
	snapshots, apiFailures int
	errors                 []string

	// runtime are the snapshots without the API, oldest first; expected the group's resources
	// seen running.
	runtime  []runtimeSnapshot
	expected map[string]bool
}

// runtimeSnapshot is one snapshot without the API.
type runtimeSnapshot struct {
	at time.Time
	// missing are the resources of the group seen running before that run nowhere.
	missing []string
	// expected is how many resources of the group had been seen running by then.
	expected int
}

// Watch starts the checker for a test and checks it when the test ends.
func Watch(t *testing.T, e *env.Env) *Checker {
	t.Helper()
	c := StartChecker(e)
	t.Cleanup(func() { c.Check(t) })
	return c
}

// StartChecker starts taking snapshots until Stop.
func StartChecker(e *env.Env) *Checker {
	c := &Checker{e: e, expected: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, snapshot := range []func(context.Context){c.snapshot, c.runtimeSnapshot} {
		wg.Go(func() {
			for ctx.Err() == nil {
				snapshot(ctx)
				select {
				case <-ctx.Done():
				case <-time.After(snapshotEvery):
				}
			}
		})
	}
	c.stop = func() { cancel(); wg.Wait() }
	return c
}

// Stop stops taking snapshots; it may be called more than once.
func (c *Checker) Stop() { c.stop() }

// snapshot takes a snapshot with the API.
func (c *Checker) snapshot(ctx context.Context) {
	var resources wp.ResourceList
	list, cancel := context.WithTimeout(ctx, apiTimeout)
	err := c.e.Client.List(list, &resources, client.InNamespace(env.Namespace))
	cancel()
	if err != nil {
		// The API server may be restarting or stopped: the snapshots without it go on.
		c.mu.Lock()
		c.apiFailures++
		c.mu.Unlock()
		return
	}
	on := map[string][]string{}
	for _, r := range resources.Items {
		if s := r.Status.State; s == wp.ResourceOnlinePending || s == wp.ResourceOnline || s == wp.ResourceOfflinePending {
			on[r.Status.Node] = append(on[r.Status.Node], fmt.Sprintf("resource %s %s", r.Name, s))
		}
	}
	c.addRuntime(ctx, on)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snapshots++
	if len(on) > 1 {
		c.errors = append(c.errors, fmt.Sprintf("the group is active on %d nodes at once: %v", len(on), on))
	}
}

// addRuntime adds to on what runs in each member node's runtime and the floating address where a
// live node's interface carries it, and returns the sample group's pods that run, by resource.
func (c *Checker) addRuntime(ctx context.Context, on map[string][]string) (running map[string][]string) {
	running = map[string][]string{}
	crashed := c.e.Crashed()
	for _, n := range env.Member {
		for _, p := range c.e.RunningPods(ctx, n) {
			on[n] = append(on[n], "running pod "+p.Name)
			if p.Group == env.Group && p.Resource != "" {
				running[p.Resource] = append(running[p.Resource], n)
			}
		}
	}
	for _, n := range env.Member {
		for _, a := range c.e.Net.Addresses(n) {
			if a.Addr() == c.e.FloatingIP() && !slices.Contains(crashed, n) {
				on[n] = append(on[n], "address "+a.String())
			}
		}
	}
	return running
}

// runtimeSnapshot takes a snapshot without the API.
func (c *Checker) runtimeSnapshot(ctx context.Context) {
	on := map[string][]string{}
	running := c.addRuntime(ctx, on)
	at := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for r := range running {
		c.expected[r] = true
	}
	s := runtimeSnapshot{at: at, expected: len(c.expected)}
	for r := range c.expected {
		if len(running[r]) == 0 {
			s.missing = append(s.missing, r)
		}
	}
	sort.Strings(s.missing)
	c.runtime = append(c.runtime, s)
	if len(on) > 1 {
		c.errors = append(c.errors, fmt.Sprintf("the group runs on %d nodes at once (the runtimes and addresses alone): %v", len(on), on))
	}
}

// Check stops the checker and reports its violations as errors of tb.
func (c *Checker) Check(tb testing.TB) {
	tb.Helper()
	c.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snapshots < minSnapshots {
		tb.Errorf("the invariant checker took only %d snapshots with the API", c.snapshots)
	}
	if len(c.runtime) < minSnapshots {
		tb.Errorf("the invariant checker took only %d snapshots of the runtimes", len(c.runtime))
	}
	for i, e := range c.errors {
		if i == 10 {
			tb.Errorf("... and %d more", len(c.errors)-10)
			break
		}
		tb.Error(e)
	}
	tb.Logf("invariant checker: %s", c.summaryLocked())
}

// WaitWatching waits until the checker has taken the snapshots that Check wants, so that a test
// that ends soon after, such as one short scenario run alone, is watched all the same.
func (c *Checker) WaitWatching(ctx context.Context) error {
	return poll.Until(ctx, "the invariant checker watching", Settle, 100*time.Millisecond, func(context.Context) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.snapshots < minSnapshots || len(c.runtime) < minSnapshots {
			return fmt.Errorf("%d snapshots with the API and %d of the runtimes so far", c.snapshots, len(c.runtime))
		}
		return nil
	})
}

// Summary is the checker's count so far.
func (c *Checker) Summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.summaryLocked()
}

func (c *Checker) summaryLocked() string {
	return fmt.Sprintf("%d snapshots with the API (%d lists failed), %d of the runtimes, %d violations; %s",
		c.snapshots, c.apiFailures, len(c.runtime), len(c.errors), c.downtimeLocked(time.Time{}, time.Time{}))
}

// Gap is one stretch of downtime: from the first snapshot in which a resource of the group ran
// nowhere to the first one after in which every resource ran again (or the end of the window).
type Gap struct {
	From, To time.Time
	// Missing are the resources that ran nowhere at some snapshot of the gap.
	Missing []string
}

// Duration is the gap's length.
func (g Gap) Duration() time.Duration { return g.To.Sub(g.From) }

// Downtime is the group's downtime in a window, as the snapshots of the runtimes saw it.
type Downtime struct {
	From, To time.Time
	// Total is the sum of the gaps, Longest the longest.
	Total, Longest time.Duration
	Gaps           []Gap
	// Snapshots are the snapshots in the window, Down those in which the group was down, and
	// Unknown those taken before the checker had seen any of the group's pods run, which cannot
	// tell.
	Snapshots, Down, Unknown int
	// Blind is the longest time between two snapshots in the window (or between its ends and
	// the snapshots nearest to them).
	Blind time.Duration
}

func (d Downtime) String() string {
	if d.Down == 0 {
		return fmt.Sprintf("no downtime in %d snapshots of the runtimes", d.Snapshots)
	}
	var gaps []string
	for i, g := range d.Gaps {
		if i == 5 {
			gaps = append(gaps, fmt.Sprintf("and %d more", len(d.Gaps)-5))
			break
		}
		gaps = append(gaps, fmt.Sprintf("%s from %s (%s)", g.Duration().Round(time.Millisecond), g.From.Format("15:04:05.000"), strings.Join(g.Missing, ", ")))
	}
	return fmt.Sprintf("downtime %s in %d gaps, the longest %s (%d of %d snapshots of the runtimes): %s",
		d.Total.Round(time.Millisecond), len(d.Gaps), d.Longest.Round(time.Millisecond), d.Down, d.Snapshots, strings.Join(gaps, "; "))
}

// Downtime is the group's downtime since the checker started.
func (c *Checker) Downtime() Downtime { return c.DowntimeBetween(time.Time{}, time.Time{}) }

// DowntimeBetween is the group's downtime between from and to; a zero from is the checker's
// start, a zero to now.
func (c *Checker) DowntimeBetween(from, to time.Time) Downtime {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.downtimeLocked(from, to)
}

func (c *Checker) downtimeLocked(from, to time.Time) Downtime {
	if to.IsZero() {
		to = time.Now()
	}
	if from.IsZero() && len(c.runtime) > 0 {
		from = c.runtime[0].at
	}
	d := Downtime{From: from, To: to}
	var open *Gap
	last := from
	closeGap := func(at time.Time) {
		if open == nil {
			return
		}
		open.To = at
		d.Gaps = append(d.Gaps, *open)
		d.Total += open.Duration()
		d.Longest = max(d.Longest, open.Duration())
		open = nil
	}
	for _, s := range c.runtime {
		if s.at.Before(from) || s.at.After(to) {
			continue
		}
		d.Snapshots++
		d.Blind = max(d.Blind, s.at.Sub(last))
		last = s.at
		if s.expected == 0 {
			d.Unknown++
		}
		if len(s.missing) == 0 {
			closeGap(s.at)
			continue
		}
		d.Down++
		if open == nil {
			open = &Gap{From: s.at}
		}
		for _, r := range s.missing {
			if !slices.Contains(open.Missing, r) {
				open.Missing = append(open.Missing, r)
			}
		}
	}
	d.Blind = max(d.Blind, to.Sub(last))
	closeGap(to)
	return d
}

// NoDowntime fails tb unless the group ran, by every snapshot of the runtimes, from from until
// now, and the checker looked often enough to tell. It returns the window's Downtime.
func (c *Checker) NoDowntime(tb testing.TB, from time.Time) Downtime {
	tb.Helper()
	return c.MaxDowntime(tb, from, 0)
}

// MaxDowntime fails tb if the group's downtime from from until now adds up to more than limit
// (with limit zero: if any snapshot saw it down), or if the checker did not look often enough to
// tell. It returns the window's Downtime.
func (c *Checker) MaxDowntime(tb testing.TB, from time.Time, limit time.Duration) Downtime {
	tb.Helper()
	d := c.DowntimeBetween(from, time.Time{})
	window := d.To.Sub(d.From).Round(time.Millisecond)
	switch {
	case d.Unknown > 0:
		tb.Errorf("the invariant checker had not seen the group run at %d of the %d snapshots of the runtimes in the %s since %s: it cannot tell the downtime",
			d.Unknown, d.Snapshots, window, d.From.Format("15:04:05.000"))
	case d.Blind > maxBlind:
		tb.Errorf("the invariant checker did not look at the runtimes for %s in the %s since %s: it cannot tell the downtime (%s)",
			d.Blind.Round(time.Millisecond), window, d.From.Format("15:04:05.000"), d)
	case limit == 0 && d.Down > 0:
		tb.Errorf("the group was down in the %s since %s: %s", window, d.From.Format("15:04:05.000"), d)
	case d.Total > limit:
		tb.Errorf("the group was down for more than %s in the %s since %s: %s", limit, window, d.From.Format("15:04:05.000"), d)
	default:
		tb.Logf("group downtime in the %s since %s: %s", window, d.From.Format("15:04:05.000"), d)
	}
	return d
}
