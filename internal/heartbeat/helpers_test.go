package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"go.uber.org/goleak"

	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

// wait bounds every wait of these tests: long enough for a loaded 2-core machine.
const wait = 20 * time.Second

func TestMain(m *testing.M) {
	if spec := os.Getenv(peersEnv); spec != "" { // BenchmarkSteadyState's other process
		os.Exit(runPeers(spec))
	}
	goleak.VerifyTestMain(m)
}

// node is a test agent's name and addresses.
type node struct {
	name            string
	private, public netip.Addr
}

func (n node) networks() []Network {
	networks := []Network{{Name: "private", Private: true, Local: n.private}}
	if n.public.IsValid() {
		networks = append(networks, Network{Name: "public", Local: n.public})
	}
	return networks
}

func (n node) peer() Peer {
	addrs := map[string]netip.Addr{"private": n.private}
	if n.public.IsValid() {
		addrs["public"] = n.public
	}
	return Peer{Name: n.name, Addrs: addrs}
}

// config returns the configuration of n's transport with the test's key and cluster.
func (n node) config(port int, interval time.Duration, threshold int) Config {
	return Config{Self: n.name, ClusterUID: cluster, Key: key, Port: port, Interval: interval, Threshold: threshold,
		Networks: n.networks(), Metrics: NewMetrics()}
}

// peersOf returns every node as a peer; the transports leave themselves out.
func peersOf(nodes ...node) []Peer {
	peers := make([]Peer, 0, len(nodes))
	for _, n := range nodes {
		peers = append(peers, n.peer())
	}
	return peers
}

// agent is a running Transport.
type agent struct {
	*Transport
	name    string
	metrics *Metrics
	changes *watcher
	cancel  context.CancelFunc
	done    chan struct{} // closed when Run has returned
	err     error         // what Run returned, once done
	once    sync.Once
}

// start makes a Transport of cfg with peers and runs it, in the network namespace ns unless it
// is netns.None(). It is stopped when the test ends.
func start(tb testing.TB, cfg Config, peers []Peer, ns netns.NsHandle) *agent {
	tb.Helper()
	tr, err := New(cfg)
	if err != nil {
		tb.Fatalf("New(%s): %v", cfg.Self, err)
	}
	tr.SetPeers(peers)
	ctx, cancel := context.WithCancel(context.Background())
	a := &agent{Transport: tr, name: cfg.Self, metrics: cfg.Metrics, changes: watch(tr.Changes()), cancel: cancel,
		done: make(chan struct{})}
	go func() {
		defer close(a.done)
		if ns.IsOpen() {
			// The thread stays locked and ends with this goroutine, whatever namespace it is in.
			runtime.LockOSThread()
			if err := netns.Set(ns); err != nil {
				a.err = fmt.Errorf("entering %s: %w", ns, err)
				return
			}
		}
		a.err = tr.Run(ctx)
	}()
	tb.Cleanup(func() { a.stop(tb) })
	return a
}

// stop ends Run and waits for it.
func (a *agent) stop(tb testing.TB) {
	tb.Helper()
	a.once.Do(func() {
		a.cancel()
		select {
		case <-a.done:
		case <-time.After(wait):
			tb.Fatalf("%s: Run did not return within %v of its context ending", a.name, wait)
		}
		if a.err != nil {
			tb.Errorf("%s: Run: %v", a.name, a.err)
		}
		<-a.changes.closed
	})
}

// failed ends the test if Run returned.
func (a *agent) failed(tb testing.TB) {
	tb.Helper()
	select {
	case <-a.done:
		tb.Fatalf("%s: Run returned early: %v", a.name, a.err)
	default:
	}
}

// waitReachable waits until a's Reachable is want.
func (a *agent) waitReachable(tb testing.TB, want map[string][]string) {
	tb.Helper()
	poll.WaitEvery(tb, a.name+": Reachable()", wait, 10*time.Millisecond, func() error {
		a.failed(tb)
		if got := a.Reachable(); !maps.EqualFunc(got, want, slices.Equal) {
			return fmt.Errorf("%v, want %v", got, want)
		}
		return nil
	})
}

// waitHeardBy waits until a's HeardBy is want.
func (a *agent) waitHeardBy(tb testing.TB, want ...string) {
	tb.Helper()
	poll.WaitEvery(tb, a.name+": HeardBy()", wait, 10*time.Millisecond, func() error {
		a.failed(tb)
		got := slices.Sorted(maps.Keys(a.HeardBy()))
		if !slices.Equal(got, want) {
			return fmt.Errorf("%v, want %v", got, want)
		}
		return nil
	})
}

// waitBound waits until a's sockets are bound.
func (a *agent) waitBound(tb testing.TB) {
	tb.Helper()
	poll.WaitEvery(tb, a.name+": sockets bound", wait, time.Millisecond, func() error {
		a.failed(tb)
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.sockets == nil {
			return errors.New("no sockets")
		}
		return nil
	})
}

// cut closes the socket of a's network: the network is gone for a, as if its link were cut.
func (a *agent) cut(tb testing.TB, network string) {
	tb.Helper()
	a.mu.Lock()
	conn := a.sockets[network]
	a.mu.Unlock()
	if conn == nil {
		tb.Fatalf("%s has no socket on %q", a.name, network)
	}
	if err := conn.Close(); err != nil {
		tb.Fatal(err)
	}
}

// watcher keeps every Change of a Transport.
type watcher struct {
	mu      sync.Mutex
	changes []Change
	more    chan struct{} // closed, and replaced, when a Change comes
	closed  chan struct{} // closed when the Transport's channel is
}

func watch(ch <-chan Change) *watcher {
	w := &watcher{more: make(chan struct{}), closed: make(chan struct{})}
	go func() {
		defer close(w.closed)
		for c := range ch {
			w.mu.Lock()
			w.changes = append(w.changes, c)
			close(w.more)
			w.more = make(chan struct{})
			w.mu.Unlock()
		}
	}()
	return w
}

// mark is where the next Change will be.
func (w *watcher) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.changes)
}

// since returns the Changes from mark on.
func (w *watcher) since(mark int) []Change {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.changes[mark:])
}

// waitFor waits for the first Change from mark on of peer to after, and returns it.
func (w *watcher) waitFor(tb testing.TB, mark int, peer string, after ...string) Change {
	tb.Helper()
	timeout := time.After(wait)
	for i := mark; ; {
		w.mu.Lock()
		changes, more := w.changes, w.more
		w.mu.Unlock()
		for ; i < len(changes); i++ {
			if c := changes[i]; c.Peer == peer && slices.Equal(c.After, after) {
				return c
			}
		}
		select {
		case <-more:
		case <-w.closed:
			tb.Fatalf("no Change of %s to %v before Run returned; changes since: %v", peer, after, changes[mark:])
		case <-timeout:
			tb.Fatalf("no Change of %s to %v within %v; changes since: %v", peer, after, wait, changes[mark:])
		}
	}
}

// lost returns the Changes in which peer was lost.
func lost(changes []Change, peer string) []Change {
	var out []Change
	for _, c := range changes {
		if c.Peer == peer && len(c.After) == 0 {
			out = append(out, c)
		}
	}
	return out
}

// quantile returns the q-quantile of ds (nearest rank); ds is sorted.
func quantile(ds []time.Duration, q float64) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
