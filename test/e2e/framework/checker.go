package framework

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/env"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

// minSnapshots is how many snapshots Check wants: fewer means that the checker did not watch.
const minSnapshots = 10

// Checker is the invariant checker: every 100 ms it takes the sample group's resources, what
// runs in the member nodes' container runtimes and the nodes' addresses, and records a violation
// whenever they put the group on more than one node. A resource counts where it is
// OnlinePending, Online or OfflinePending (owned); a pod where its sandbox is ready in the node's
// runtime (running; a crashed node runs nothing); the floating address on the node whose public
// interface carries it, unless the node has crashed.
type Checker struct {
	e         *env.Env
	mu        sync.Mutex
	snapshots int
	errors    []string
	stop      func()
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
	c := &Checker{e: e}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			c.snapshot(ctx)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	c.stop = func() { cancel(); <-done }
	return c
}

// Stop stops taking snapshots; it may be called more than once.
func (c *Checker) Stop() { c.stop() }

func (c *Checker) snapshot(ctx context.Context) {
	var resources wp.ResourceList
	if c.e.Client.List(ctx, &resources, client.InNamespace(env.Namespace)) != nil {
		return // the API server may be restarting
	}
	crashed := c.e.Crashed()
	on := map[string][]string{}
	for _, r := range resources.Items {
		if s := r.Status.State; s == wp.ResourceOnlinePending || s == wp.ResourceOnline || s == wp.ResourceOfflinePending {
			on[r.Status.Node] = append(on[r.Status.Node], fmt.Sprintf("resource %s %s", r.Name, s))
		}
	}
	for _, n := range env.Member {
		for _, p := range c.e.Running(ctx, n) {
			on[n] = append(on[n], "running pod "+p)
		}
	}
	for _, n := range env.Member {
		for _, a := range c.e.Net.Addresses(n) {
			if a.Addr() == c.e.FloatingIP() && !slices.Contains(crashed, n) {
				on[n] = append(on[n], "address "+a.String())
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snapshots++
	if len(on) > 1 {
		c.errors = append(c.errors, fmt.Sprintf("the group is active on %d nodes at once: %v", len(on), on))
	}
}

// Check stops the checker and reports its violations as errors of tb.
func (c *Checker) Check(tb testing.TB) {
	tb.Helper()
	c.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snapshots < minSnapshots {
		tb.Errorf("the invariant checker took only %d snapshots", c.snapshots)
	}
	for i, e := range c.errors {
		if i == 10 {
			tb.Errorf("... and %d more", len(c.errors)-10)
			break
		}
		tb.Error(e)
	}
	tb.Logf("invariant checker: %d snapshots, %d violations", c.snapshots, len(c.errors))
}

// WaitWatching waits until the checker has taken the snapshots that Check wants, so that a test
// that ends soon after, such as one short scenario run alone, is watched all the same.
func (c *Checker) WaitWatching(ctx context.Context) error {
	return poll.Until(ctx, "the invariant checker watching", Settle, 100*time.Millisecond, func(context.Context) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.snapshots < minSnapshots {
			return fmt.Errorf("%d snapshots so far", c.snapshots)
		}
		return nil
	})
}

// Summary is the checker's count so far.
func (c *Checker) Summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("%d snapshots, %d violations", c.snapshots, len(c.errors))
}
