package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/fence"
	"github.com/wolfpack-ha/wolfpack/internal/heartbeat"
	"github.com/wolfpack-ha/wolfpack/internal/ipaddr"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
	"github.com/wolfpack-ha/wolfpack/internal/test/scheme"
)

// The loop tests run the NodeManager on a fake clock, with a fake heartbeat transport, a fake
// Fencer and a fake API (controller-runtime's fake client) that can be made to hang: every call
// then blocks until its context ends, as calls to a black-holed API server do.

const loopNamespace = "wolfpack-system"

// fakeTransport is a heartbeat transport whose hearing the test sets.
type fakeTransport struct {
	mu      sync.Mutex
	reach   map[string][]string
	heardBy map[string]bool
	changes chan heartbeat.Change
}

func newFakeTransport() *fakeTransport {
	return &fakeTransport{changes: make(chan heartbeat.Change, 64)}
}

func (f *fakeTransport) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *fakeTransport) SetPeers([]heartbeat.Peer)     {}
func (f *fakeTransport) SetViewDigest([sha256.Size]byte) {
}

func (f *fakeTransport) Reachable() map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]string{}
	for p, n := range f.reach {
		out[p] = n
	}
	return out
}

func (f *fakeTransport) HeardBy() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for p, ok := range f.heardBy {
		out[p] = ok
	}
	return out
}

func (f *fakeTransport) Changes() <-chan heartbeat.Change { return f.changes }

// hear makes the node hear peers (on "public") and be heard by heardBy, and says so on Changes.
func (f *fakeTransport) hear(peers []string, heardBy []string) {
	f.mu.Lock()
	f.reach, f.heardBy = map[string][]string{}, map[string]bool{}
	for _, p := range peers {
		f.reach[p] = []string{"public"}
	}
	for _, p := range heardBy {
		f.heardBy[p] = true
	}
	f.mu.Unlock()
	for _, p := range peers {
		select {
		case f.changes <- heartbeat.Change{Peer: p, After: []string{"public"}}:
		default:
		}
	}
}

// hangingClient is a client whose calls block until their context ends while hang is set, and
// whose Lease writes (only those) do so while hangWrites is set. onLease sees every Lease written.
type hangingClient struct {
	client.Client
	hang, hangWrites atomic.Bool
	mu               sync.Mutex
	onLease          func(*coordinationv1.Lease)
	calls            atomic.Int64
}

func (c *hangingClient) wait(ctx context.Context, write bool) error {
	c.calls.Add(1)
	if !c.hang.Load() && (!write || !c.hangWrites.Load()) {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func (c *hangingClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.wait(ctx, false); err != nil {
		return err
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c *hangingClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := c.wait(ctx, false); err != nil {
		return err
	}
	return c.Client.List(ctx, list, opts...)
}

func (c *hangingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if err := c.wait(ctx, true); err != nil {
		return err
	}
	if err := c.Client.Create(ctx, obj, opts...); err != nil {
		return err
	}
	c.seen(obj)
	return nil
}

func (c *hangingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if err := c.wait(ctx, true); err != nil {
		return err
	}
	if err := c.Client.Update(ctx, obj, opts...); err != nil {
		return err
	}
	c.seen(obj)
	return nil
}

func (c *hangingClient) seen(obj client.Object) {
	l, ok := obj.(*coordinationv1.Lease)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.onLease != nil {
		c.onLease(l.DeepCopy())
	}
}

// fakeFencer is a Fencer that fails while err is set, and has a watchdog fallback (Escalate).
type fakeFencer struct {
	clock *clocktesting.FakeClock

	mu          sync.Mutex
	err         error
	fences      []time.Time // fake clock times of the calls
	escalations int
	heartbeats  int
	closed      bool
	// handovers are the timeouts asked of Handover, when the fencer has it.
	handovers []time.Duration
}

func (f *fakeFencer) Fence(context.Context) (fence.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fences = append(f.fences, f.clock.Now())
	return fence.Report{Action: wp.FenceNone}, f.err
}

func (f *fakeFencer) Heartbeat() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.heartbeats++
	return nil
}

func (f *fakeFencer) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeFencer) Escalate() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.escalations++
	return nil
}

func (f *fakeFencer) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeFencer) fenceTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.fences...)
}

// timeoutFencer's watchdog granted a timeout.
type timeoutFencer struct {
	*fakeFencer
	timeout time.Duration
}

func (f timeoutFencer) Timeout() time.Duration { return f.timeout }

// handoverFencer is a watchdog (it reports a timeout) that stays armed for granted at a handover;
// before runs first.
type handoverFencer struct {
	*fakeFencer
	granted time.Duration
	before  func(d time.Duration)
}

func (f handoverFencer) Timeout() time.Duration { return 0 } // the device does not say

func (f handoverFencer) Handover(d time.Duration) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, errors.New("handover after Close")
	}
	if f.before != nil {
		f.before(d)
	}
	f.handovers = append(f.handovers, d)
	return max(d, f.granted), nil
}

// loop is one NodeManager running on a fake clock.
type loop struct {
	clk    *clocktesting.FakeClock
	api    client.Client // the fake API itself, which never hangs
	c      *hangingClient
	tr     *fakeTransport
	fencer *fakeFencer
	m      *NodeManager
	cancel context.CancelFunc
	done   chan error

	mu     sync.Mutex
	leases []*coordinationv1.Lease // every Lease written, in order
}

// startLoop runs the agent of node b of the cluster qd with fencer (f's fakeFencer when nil).
func startLoop(t *testing.T, qd *wp.QuorumDisk, wrap func(*fakeFencer) fence.Fencer, configure func(*loop)) *loop {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	qd.UID = types.UID(uuid.NewString())
	qd.Spec.KeySecretRef = wp.SecretKeyReference{Namespace: loopNamespace, Name: "key"}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: loopNamespace, Name: "key"},
		Data: map[string][]byte{"key": make([]byte, heartbeat.MinKeyLen)}}
	api := fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(qd, secret).Build()
	l := &loop{clk: clk, api: api, c: &hangingClient{Client: api}, tr: newFakeTransport(),
		fencer: &fakeFencer{clock: clk}, done: make(chan error, 1)}
	l.c.onLease = func(lease *coordinationv1.Lease) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.leases = append(l.leases, lease)
	}
	var f fence.Fencer = l.fencer
	if wrap != nil {
		f = wrap(l.fencer)
	}
	l.m = &NodeManager{
		Client: l.c, APIReader: l.c, Recorder: &events.FakeRecorder{}, Clock: clk,
		Node: "b", Cluster: qd.Name, LeaseNamespace: loopNamespace,
		Addresses:    map[string]netip.Addr{DefaultNetwork: netip.MustParseAddr("192.0.2.2")},
		Fencer:       f,
		NewTransport: func(heartbeat.Config) (Transport, error) { return l.tr, nil },
	}
	if configure != nil {
		configure(l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go func() { l.done <- l.m.Start(ctx) }()
	t.Cleanup(func() { l.stop(t) })
	return l
}

func (l *loop) stop(t *testing.T) {
	t.Helper()
	if l.cancel == nil {
		return
	}
	l.cancel()
	l.cancel = nil
	l.c.hang.Store(false)
	l.c.hangWrites.Store(false)
	select {
	case err := <-l.done:
		if err != nil {
			t.Errorf("the agent stopped with %v", err)
		}
	case <-time.After(loopPatience):
		t.Fatalf("the agent did not stop within %s of its context ending", loopPatience)
	}
}

// loopPatience bounds every wait in real time, on a loaded machine.
const loopPatience = 60 * time.Second

// stepUntil advances the fake clock in small steps until cond holds, and fails the test when it
// does not within loopPatience of real time. It returns the fake time at which cond held.
func (l *loop) stepUntil(t *testing.T, what string, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(loopPatience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (fake clock at %s)", what, loopPatience, l.clk.Now().Format(time.StampMilli))
		}
		l.clk.Step(50 * time.Millisecond)
		time.Sleep(2 * time.Millisecond)
	}
	return l.clk.Now()
}

// stepFor advances the fake clock by d in small steps, checking never at every step.
func (l *loop) stepFor(t *testing.T, d time.Duration, never func() string) {
	t.Helper()
	end := l.clk.Now().Add(d)
	for l.clk.Now().Before(end) {
		if msg := never(); msg != "" {
			t.Fatalf("at %s: %s", l.clk.Now().Format(time.StampMilli), msg)
		}
		l.clk.Step(50 * time.Millisecond)
		time.Sleep(2 * time.Millisecond)
	}
}

// written returns every Lease written so far.
func (l *loop) written() []*coordinationv1.Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*coordinationv1.Lease(nil), l.leases...)
}

// lastView is the view of the last Lease written, and whether there is one.
func (l *loop) lastView(t *testing.T) (membership.View, *coordinationv1.Lease) {
	t.Helper()
	ls := l.written()
	if len(ls) == 0 {
		return membership.View{}, nil
	}
	last := ls[len(ls)-1]
	v, err := membership.ParseView(last.Annotations[wp.ViewAnnotation])
	if err != nil {
		t.Fatalf("Lease view: %v", err)
	}
	return v, last
}

func twoNodes(owner string) *wp.QuorumDisk {
	return builder.QuorumDisk("demo").QuorumType(wp.DiskOnly).Owner(owner).
		Nodes(wp.NodeStatus{Name: "a", State: wp.NodeUp}, wp.NodeStatus{Name: "b", State: wp.NodeUp}).Obj()
}

// TestLoopFencesWhileAPICallsHang: once every API call hangs (a black-holed API server), the
// node is fenced at its renew deadline R(d) on the agent's clock, and the agent reports it once
// the API answers again.
func TestLoopFencesWhileAPICallsHang(t *testing.T) {
	l := startLoop(t, twoNodes("b"), nil, nil)
	l.stepUntil(t, "the first Lease", func() bool { return len(l.written()) > 0 })
	l.c.hang.Store(true)
	hung := l.clk.Now()
	fencedAt := l.stepUntil(t, "the node fenced while the API hangs", func() bool { return len(l.fencer.fenceTimes()) > 0 })
	first := l.fencer.fenceTimes()[0]
	// The last renewal began at most one renew interval (1s) before the API hung.
	if limit := hung.Add(RenewDeadline(wp.DefaultLeaseDuration) + 500*time.Millisecond); first.After(limit) {
		t.Errorf("fenced at %s, %s after the API hung; want by R(d) = %s", first.Format(time.StampMilli), first.Sub(hung), RenewDeadline(wp.DefaultLeaseDuration))
	}
	t.Logf("fenced %s after the API hung (fake clock at %s)", first.Sub(hung), fencedAt.Format(time.StampMilli))

	l.c.hang.Store(false)
	l.stepUntil(t, "a Lease that reports the node fenced", func() bool {
		v, _ := l.lastView(t)
		return v.Fenced
	})
}

// TestLoopFailedFenceIsRetriedNotReported: a fence action that fails is escalated and retried,
// and the node is not reported fenced until one succeeds.
func TestLoopFailedFenceIsRetriedNotReported(t *testing.T) {
	l := startLoop(t, twoNodes("a"), nil, func(l *loop) { l.fencer.err = errors.New("the container runtime does not answer") })
	// b hears nobody: once joined, its side has no quorum (the disk is a's).
	l.stepUntil(t, "three failed fences", func() bool { return len(l.fencer.fenceTimes()) >= 3 })
	l.fencer.mu.Lock()
	escalations := l.fencer.escalations
	l.fencer.mu.Unlock()
	if escalations == 0 {
		t.Error("the failed fence was not escalated to the watchdog fallback")
	}
	for _, lease := range l.written() {
		if v, _ := membership.ParseView(lease.Annotations[wp.ViewAnnotation]); v.Fenced {
			t.Fatalf("a Lease reports the node fenced while every fence failed: %s", lease.Annotations[wp.ViewAnnotation])
		}
	}
	l.fencer.setErr(nil)
	l.stepUntil(t, "a Lease that reports the node fenced once a fence succeeded", func() bool {
		v, _ := l.lastView(t)
		return v.Fenced
	})
	// While fenced, it fences again every renew interval: the kubelet restarts Always pods.
	n := len(l.fencer.fenceTimes())
	l.stepUntil(t, "two more fences while fenced", func() bool { return len(l.fencer.fenceTimes()) >= n+2 })
}

// TestLoopRemovesFloatingAddressesBeforeFenced: the fence path removes the node's floating
// addresses before the node is reported fenced; failing to remove one is a failed fence.
func TestLoopRemovesFloatingAddressesBeforeFenced(t *testing.T) {
	host := &ipaddr.Fake{}
	host.SetInterface("eth0", netip.MustParsePrefix("192.0.2.2/24"))
	floating := ipaddr.Address{Interface: "eth0", Prefix: netip.MustParsePrefix("192.0.2.50/24")}
	addrs := NewFloatingAddresses(host)
	if err := addrs.Add(context.Background(), floating); err != nil {
		t.Fatal(err)
	}
	host.SetError(ipaddr.OpRemove, errors.New("netlink is busy"))
	var violation atomic.Value
	l := startLoop(t, twoNodes("a"), nil, func(l *loop) {
		l.m.FloatingAddresses = addrs
		next := l.c.onLease
		l.c.onLease = func(lease *coordinationv1.Lease) {
			if v, _ := membership.ParseView(lease.Annotations[wp.ViewAnnotation]); v.Fenced {
				for _, p := range host.Addresses("eth0") {
					if p == floating.Prefix {
						violation.Store("a Lease reports the node fenced while it still holds " + floating.String())
					}
				}
			}
			next(lease)
		}
	})
	l.stepUntil(t, "two fences", func() bool { return len(l.fencer.fenceTimes()) >= 2 })
	for _, lease := range l.written() {
		if v, _ := membership.ParseView(lease.Annotations[wp.ViewAnnotation]); v.Fenced {
			t.Fatalf("a Lease reports the node fenced while its floating address could not be removed: %s", lease.Annotations[wp.ViewAnnotation])
		}
	}
	host.SetError(ipaddr.OpRemove, nil)
	l.stepUntil(t, "a Lease that reports the node fenced", func() bool {
		v, _ := l.lastView(t)
		return v.Fenced
	})
	if v := violation.Load(); v != nil {
		t.Fatal(v)
	}
	if err := addrs.Add(context.Background(), floating); !errors.Is(err, ErrFenced) {
		t.Errorf("adding a floating address on a fenced node: %v, want ErrFenced", err)
	}
}

// TestLoopRestartWithoutAPI: an agent that has just started (it has no renewal of its own) and
// cannot write its Lease keeps its node while it hears every other member both ways, and fails
// it at R(d) of its start when it does not.
func TestLoopRestartWithoutAPI(t *testing.T) {
	for _, tc := range []struct {
		name      string
		heardBy   []string
		wantFence bool
	}{
		{"full mutual connectivity", []string{"a"}, false},
		{"one-way: a does not hear b", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// b holds the disk: F1 keeps it, only F2 can fail it.
			l := startLoop(t, twoNodes("b"), nil, func(l *loop) {
				l.c.hangWrites.Store(true)
				l.tr.hear([]string{"a"}, tc.heardBy)
			})
			started := l.clk.Now()
			if !tc.wantFence {
				l.stepFor(t, 3*wp.DefaultLeaseDuration, func() string {
					if n := len(l.fencer.fenceTimes()); n > 0 {
						return "the restarted agent fenced its node while it hears every other member both ways"
					}
					return ""
				})
				return
			}
			l.stepUntil(t, "the node fenced", func() bool { return len(l.fencer.fenceTimes()) > 0 })
			if first := l.fencer.fenceTimes()[0]; first.Sub(started) <= RenewDeadline(wp.DefaultLeaseDuration) {
				t.Errorf("fenced %s after the start, before R(d) = %s", first.Sub(started), RenewDeadline(wp.DefaultLeaseDuration))
			}
		})
	}
}

// TestLoopRechecksWhenHearingChanges: an agent past its renew deadline that keeps its node on
// full mutual connectivity fails it as soon as a peer stops hearing it.
func TestLoopRechecksWhenHearingChanges(t *testing.T) {
	l := startLoop(t, twoNodes("b"), nil, func(l *loop) { l.tr.hear([]string{"a"}, []string{"a"}) })
	l.stepUntil(t, "the first Lease", func() bool { return len(l.written()) > 0 })
	l.c.hang.Store(true)
	l.stepFor(t, 2*wp.DefaultLeaseDuration, func() string {
		if len(l.fencer.fenceTimes()) > 0 {
			return "fenced while it hears every other member both ways"
		}
		return ""
	})
	l.tr.hear([]string{"a"}, nil) // a no longer hears b
	changed := l.clk.Now()
	l.stepUntil(t, "the node fenced once a stops hearing it", func() bool { return len(l.fencer.fenceTimes()) > 0 })
	if after := l.fencer.fenceTimes()[0].Sub(changed); after > time.Second {
		t.Errorf("fenced %s after the change of what it hears, want at once", after)
	}
}

// TestLoopPublishesTheDurationItActsOn: a change of the QuorumDisk's leaseDuration is taken up by
// a running agent and published in its Lease, and a watchdog that granted a longer timeout than
// R(d) makes the agent publish a duration whose deadline covers it.
func TestLoopPublishesTheDurationItActsOn(t *testing.T) {
	published := func(l *loop) int32 {
		_, lease := l.lastView(t)
		if lease == nil {
			return 0
		}
		return ptr.Deref(lease.Spec.LeaseDurationSeconds, 0)
	}
	t.Run("leaseDuration changed", func(t *testing.T) {
		l := startLoop(t, twoNodes("b"), nil, nil)
		l.stepUntil(t, "a Lease of 10s", func() bool { return published(l) == 10 })
		qd := &wp.QuorumDisk{}
		if err := l.api.Get(context.Background(), client.ObjectKey{Name: "demo"}, qd); err != nil {
			t.Fatal(err)
		}
		qd.Spec.LeaseDuration = &metav1.Duration{Duration: 30 * time.Second}
		if err := l.api.Update(context.Background(), qd); err != nil {
			t.Fatal(err)
		}
		l.stepUntil(t, "a Lease of 30s", func() bool { return published(l) == 30 })
	})
	t.Run("watchdog granted 12s", func(t *testing.T) {
		l := startLoop(t, twoNodes("b"), func(f *fakeFencer) fence.Fencer { return timeoutFencer{f, 12 * time.Second} }, nil)
		l.stepUntil(t, "a Lease of 18s, whose R(d) is the granted 12s", func() bool { return published(l) == 18 })
	})
}

// TestLoopHandover: an agent stopped (SIGTERM) writes its Lease once more, with a duration that
// covers the time its watchdog was granted for the handover, then closes its fence action.
func TestLoopHandover(t *testing.T) {
	var hf handoverFencer
	var early atomic.Value
	var l *loop
	l = startLoop(t, twoNodes("b"), func(f *fakeFencer) fence.Fencer {
		hf = handoverFencer{f, 40 * time.Second, func(d time.Duration) {
			// The manager must know of the handover before the watchdog waits for it.
			_, lease := l.lastView(t)
			if lease == nil || time.Duration(ptr.Deref(lease.Spec.LeaseDurationSeconds, 0))*time.Second < LeaseCovering(d) {
				early.Store("the watchdog was handed over before the Lease published a duration covering it")
			}
		}}
		return hf
	}, func(l *loop) { l.m.HandoverTimeout = 30 * time.Second })
	l.stepUntil(t, "the first Lease", func() bool { return len(l.written()) > 0 })
	before := len(l.written())
	l.stop(t)
	ls := l.written()
	if len(ls) == before {
		t.Fatal("no Lease written at the stop")
	}
	last := ls[len(ls)-1]
	// R(d) = 2d/3 >= 40s: d >= 60s.
	if got := ptr.Deref(last.Spec.LeaseDurationSeconds, 0); got < 60 {
		t.Errorf("the last Lease publishes %ds, want at least 60s to cover the granted 40s handover", got)
	}
	hf.mu.Lock()
	defer hf.mu.Unlock()
	if len(hf.handovers) == 0 || hf.handovers[0] != 30*time.Second {
		t.Errorf("handovers asked %v, want 30s", hf.handovers)
	}
	if !hf.closed {
		t.Error("the fence action was not closed after the handover")
	}
	if e := early.Load(); e != nil {
		t.Error(e)
	}
}

// noWatchdogHandover is a fence action without a watchdog (CRI, None): its Handover does nothing.
type noWatchdogHandover struct{ *fakeFencer }

func (f noWatchdogHandover) Handover(time.Duration) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handovers = append(f.handovers, 0)
	return 0, nil
}

// TestLoopStopWithoutWatchdog: an agent whose fence action has no watchdog writes its Lease at
// the stop with the duration it acts on, and hands nothing over.
func TestLoopStopWithoutWatchdog(t *testing.T) {
	l := startLoop(t, twoNodes("b"), func(f *fakeFencer) fence.Fencer { return noWatchdogHandover{f} },
		func(l *loop) { l.m.HandoverTimeout = 30 * time.Second })
	l.stepUntil(t, "the first Lease", func() bool { return len(l.written()) > 0 })
	before := len(l.written())
	l.stop(t)
	ls := l.written()
	if len(ls) == before {
		t.Fatal("no Lease written at the stop")
	}
	if got := ptr.Deref(ls[len(ls)-1].Spec.LeaseDurationSeconds, 0); got != 10 {
		t.Errorf("the last Lease publishes %ds, want the 10s the agent acts on", got)
	}
	l.fencer.mu.Lock()
	defer l.fencer.mu.Unlock()
	if len(l.fencer.handovers) != 0 || !l.fencer.closed {
		t.Errorf("handovers %v, closed %v; want none, closed", l.fencer.handovers, l.fencer.closed)
	}
}

// fakeLocal records the agent's node-local records with the fake clock's time.
type fakeLocal struct {
	clk     *clocktesting.FakeClock
	mu      sync.Mutex
	writes  []localWrite
	opened  int
	applied []time.Duration
}

type localWrite struct {
	at      time.Time
	failing bool
}

func (f *fakeLocal) Write(failing, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, localWrite{at: f.clk.Now(), failing: failing})
	return nil
}

func (f *fakeLocal) all() []localWrite {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

// TestLoopTellsTheHolder: the agent's node-local record, which the quorum holder on its node
// renews the disk by, is written at least every renew interval even while every API call
// hangs (so that an API outage alone does not cost the disk), and says the node is failing
// before the fence action runs (so that the holder stops defending the disk at once).
func TestLoopTellsTheHolder(t *testing.T) {
	local := &fakeLocal{}
	l := startLoop(t, twoNodes("b"), nil, func(l *loop) {
		local.clk = l.clk
		l.m.NewLocal = func(_ uint64, interval time.Duration) (LocalRecord, error) {
			local.mu.Lock()
			defer local.mu.Unlock()
			local.opened++
			local.applied = append(local.applied, interval)
			return local, nil
		}
	})
	l.stepUntil(t, "the first Lease", func() bool { return len(l.written()) > 0 })
	l.c.hang.Store(true)
	hung := l.clk.Now()
	l.stepUntil(t, "the node fenced while the API hangs", func() bool { return len(l.fencer.fenceTimes()) > 0 })
	fencedAt := l.fencer.fenceTimes()[0]

	writes := local.all()
	if len(writes) == 0 {
		t.Fatal("no node-local record written")
	}
	every := membership.RenewInterval(wp.DefaultLeaseDuration, membership.Detection(wp.HeartbeatSpec{}))
	prev := writes[0].at
	firstFailing := time.Time{}
	for _, w := range writes {
		if gap := w.at.Sub(prev); gap > every+time.Millisecond {
			t.Errorf("a gap of %s between node-local records at %s, more than the renew interval %s", gap, w.at.Format(time.StampMilli), every)
		}
		prev = w.at
		if w.failing && firstFailing.IsZero() {
			firstFailing = w.at
		}
		if !w.failing && w.at.After(fencedAt) {
			t.Errorf("a record at %s says not failing after the fence at %s", w.at.Format(time.StampMilli), fencedAt.Format(time.StampMilli))
		}
	}
	switch {
	case firstFailing.IsZero():
		t.Errorf("no node-local record says failing; the fence ran at %s", fencedAt.Format(time.StampMilli))
	case firstFailing.After(fencedAt):
		t.Errorf("the record said failing at %s, after the fence at %s", firstFailing.Format(time.StampMilli), fencedAt.Format(time.StampMilli))
	}
	t.Logf("%d records; the API hung at %s, failing reported at %s, fenced at %s", len(writes),
		hung.Format(time.StampMilli), firstFailing.Format(time.StampMilli), fencedAt.Format(time.StampMilli))
}
