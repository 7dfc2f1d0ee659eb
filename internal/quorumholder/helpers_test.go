package quorumholder

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/nodelocal"
	"github.com/wolfpack-ha/wolfpack/internal/quorum"
	"github.com/wolfpack-ha/wolfpack/internal/test/scheme"
)

const (
	testUID   = types.UID("6f3c1c9e-8a34-4d7c-9e51-0c1d2e3f4a5b")
	testNS    = "wolfpack-system"
	testL     = time.Second          // the shortest lease a QuorumDisk allows: D = 100ms
	step      = 5 * time.Millisecond // fake time per step of the simulation
	realLimit = 20 * time.Second     // no test waits longer than this in real time
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func testLayout(slots int) quorum.Layout {
	return quorum.Layout{ClusterUID: uidBytes(), Slots: slots, LogEntries: 8}
}

func uidBytes() [quorum.UIDLen]byte { return uuid.MustParse(string(testUID)) }

// clk is one fake clock of a world, stepped while every holder running on it waits on it.
type clk struct {
	*clocktesting.FakeClock
	live   atomic.Int32 // holders running on it
	frozen atomic.Bool  // not stepped: its holders stall
}

// world is a quorum disk, a fake API server and fake clocks, stepped in the background.
type world struct {
	t       *testing.T
	cluster string
	dev     *quorum.MemDevice
	c       client.Client
	rec     *recorder
	main    *clk

	mu     sync.Mutex
	clocks []*clk
}

// newWorld makes a world whose device is formatted with slots node slots (0: left empty).
func newWorld(t *testing.T, cluster string, slots int) *world {
	t.Helper()
	w := &world{t: t, cluster: cluster, rec: &recorder{},
		c: fake.NewClientBuilder().WithScheme(scheme.Scheme).Build()}
	w.dev = quorum.NewMemDevice(quorum.Layout{Slots: DefaultSlots, LogEntries: DefaultLogEntries}.Size())
	if slots > 0 {
		if err := quorum.Format(w.dev, testLayout(slots)); err != nil {
			t.Fatal(err)
		}
	}
	w.main = w.newClock()
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go w.step(stop, stopped)
	t.Cleanup(func() { close(stop); <-stopped })
	return w
}

func (w *world) newClock() *clk {
	c := &clk{FakeClock: clocktesting.NewFakeClock(t0)}
	w.mu.Lock()
	w.clocks = append(w.clocks, c)
	w.mu.Unlock()
	return c
}

// step advances every clock that is not frozen whenever all the holders on it wait on it.
func (w *world) step(stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	for {
		select {
		case <-stop:
			return
		default:
		}
		w.mu.Lock()
		clocks := append([]*clk(nil), w.clocks...)
		w.mu.Unlock()
		for _, c := range clocks {
			if n := c.live.Load(); n > 0 && !c.frozen.Load() && c.Waiters() >= int(n) {
				c.Step(step)
			}
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// config is a holder's configuration for node on clock c (nil: the main clock).
func (w *world) config(node string, c *clk) Config {
	if c == nil {
		c = w.main
	}
	agent := &fakeAgent{c: c, node: node}
	return Config{Node: node, Cluster: w.cluster, ClusterUID: testUID, Device: w.dev, Format: true,
		LeaseDuration: testL, LeaseNamespace: testNS, Client: w.c, Clock: c, Recorder: w.rec,
		Local: agent, LocalNode: nodelocal.Node{Name: node, BootID: testBoot, Clock: agent.mono, PID: 4242}}
}

// testBoot is the boot ID of every node of the tests.
const testBoot = "0f4e6d1c-2b3a-4c5d-8e9f-a0b1c2d3e4f5"

// agentInterval is the fake node agents' write interval: their records are stale after twice it.
const agentInterval = 100 * time.Millisecond

// fakeAgent is a node's node-local channel with a node agent that writes its record whenever it
// is read (it is always fresh), until it hangs: then its last record ages on the node's clock.
type fakeAgent struct {
	nodelocal.Fake
	c      *clk
	node   string
	hung   atomic.Bool // the agent writes nothing
	fenced atomic.Bool // the agent says it has fenced its node
}

// agentOf is the fake agent of a holder's configuration.
func agentOf(cfg Config) *fakeAgent { return cfg.Local.(*fakeAgent) }

// mono is the node's CLOCK_MONOTONIC: the fake clock's time since t0, plus an hour of uptime.
func (a *fakeAgent) mono() (nodelocal.Mono, error) {
	return nodelocal.Mono(a.c.Since(t0) + time.Hour), nil
}

func (a *fakeAgent) ReadAgent() (nodelocal.AgentRecord, error) {
	if !a.hung.Load() {
		now, _ := a.mono()
		if err := a.WriteAgent(nodelocal.AgentRecord{Node: a.node, BootID: testBoot, PID: 7, Incarnation: 1,
			WrittenAt: now, Interval: agentInterval, Fenced: a.fenced.Load(), HasQuorum: true}); err != nil {
			return nodelocal.AgentRecord{}, err
		}
	}
	return a.Fake.ReadAgent()
}

// holds is what the node's agent reads in the holder's record: nil when the holder holds the
// disk at epoch.
func (a *fakeAgent) holds(epoch uint64) error {
	r, err := nodelocal.Node{Name: a.node, BootID: testBoot, Clock: a.mono}.HolderHolds(a)
	if err == nil && r.Epoch != epoch {
		err = fmt.Errorf("the holder's record says epoch %d, want %d", r.Epoch, epoch)
	}
	return err
}

// run is a holder running in the background.
type run struct {
	h        *Holder
	c        *clk
	cancel   context.CancelFunc
	finished chan struct{} // closed when Run has returned err
	err      error
}

// start runs a holder made from cfg; cfg.Clock must be one of the world's clocks.
func (w *world) start(cfg Config) *run {
	w.t.Helper()
	h, err := New(cfg)
	if err != nil {
		w.t.Fatalf("New: %v", err)
	}
	c, ok := cfg.Clock.(*clk)
	if !ok {
		w.t.Fatalf("clock %T is not one of the world's", cfg.Clock)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{h: h, c: c, cancel: cancel, finished: make(chan struct{})}
	c.live.Add(1)
	go func() {
		defer close(r.finished)
		r.err = h.Run(ctx)
		c.live.Add(-1)
		if r.err != nil {
			w.t.Logf("Run of %s returned: %v", cfg.Node, r.err)
		}
	}()
	w.t.Cleanup(func() { cancel(); <-r.finished })
	return r
}

// stop cancels the holder and returns what Run returned.
func (r *run) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// wait waits for Run to return.
func (r *run) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.finished:
		return r.err
	case <-time.After(realLimit):
		t.Fatal("Run did not return")
		return nil
	}
}

// waitFor waits until cond holds, for at most limit of the main clock's time.
func (w *world) waitFor(what string, limit time.Duration, cond func() bool) {
	w.t.Helper()
	w.waitOn(w.main, what, limit, cond)
}

// waitOn waits until cond holds, for at most limit of c's time.
func (w *world) waitOn(c *clk, what string, limit time.Duration, cond func() bool) {
	w.t.Helper()
	end := c.Now().Add(limit)
	deadline := time.Now().Add(realLimit)
	for !cond() {
		if c.Now().After(end) {
			w.t.Fatalf("%s: not after %v of fake time", what, limit)
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: not after %v of real time (fake time %v)", what, realLimit, c.Since(t0))
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// lease returns the holder's Lease, nil when there is none.
func (w *world) lease() *coordinationv1.Lease {
	w.t.Helper()
	l := &coordinationv1.Lease{}
	err := w.c.Get(context.Background(), client.ObjectKey{Namespace: testNS, Name: membership.QuorumLeaseName(w.cluster)}, l)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		w.t.Fatalf("reading the Lease: %v", err)
	}
	return l
}

// holder is the Lease's holderIdentity ("" when none).
func (w *world) holder() string {
	if l := w.lease(); l != nil && l.Spec.HolderIdentity != nil {
		return *l.Spec.HolderIdentity
	}
	return ""
}

// owner reads the disk's owner record.
func (w *world) owner() quorum.OwnerRecord {
	w.t.Helper()
	d, err := quorum.Open(w.dev, uidBytes())
	if err != nil {
		w.t.Fatalf("Open: %v", err)
	}
	rec, err := d.ReadOwner()
	if err != nil {
		w.t.Fatalf("ReadOwner: %v", err)
	}
	return rec
}

// recorder keeps Events as "type reason note".
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Eventf(_, _ runtime.Object, eventType, reason, _, note string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, eventType+" "+reason+" "+fmt.Sprintf(note, args...))
}

// find returns the Events whose text starts with prefix.
func (r *recorder) find(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// flakyDevice fails every write while failWrites is set: a node cut off from the disk.
type flakyDevice struct {
	quorum.Device
	failWrites atomic.Bool
}

var errCutOff = errors.New("cut off from the disk")

func (d *flakyDevice) WriteAt(p []byte, off int64) (int, error) {
	if d.failWrites.Load() {
		return 0, errCutOff
	}
	return d.Device.WriteAt(p, off)
}

// flakyClient fails every Create and Update while failWrites is set: a node cut off from the
// API server for writes; and every Get as well while down is set: a node cut off from it.
type flakyClient struct {
	client.Client
	failWrites atomic.Bool
	down       atomic.Bool
	failed     atomic.Int32
}

func (c *flakyClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if c.down.Load() {
		c.failed.Add(1)
		return errAPIDown
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

var errAPIDown = errors.New("the API server does not answer")

func (c *flakyClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if c.failWrites.Load() || c.down.Load() {
		c.failed.Add(1)
		return errAPIDown
	}
	return c.Client.Create(ctx, obj, opts...)
}

func (c *flakyClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if c.failWrites.Load() || c.down.Load() {
		c.failed.Add(1)
		return errAPIDown
	}
	return c.Client.Update(ctx, obj, opts...)
}
