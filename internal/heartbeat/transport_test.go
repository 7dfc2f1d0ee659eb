package heartbeat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vishvananda/netns"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/wolfpack-ha/wolfpack/internal/test/freeport"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

// The loopback tests' timing: fast enough to keep the tests short, slow enough that a loaded
// machine does not lose a peer that is still sending.
const (
	testInterval  = 200 * time.Millisecond
	testThreshold = 4
	testTimeout   = testInterval * testThreshold
	// slack is what a loaded 2-core machine, under the race detector, may add to a detection.
	slack = 3 * time.Second
)

var (
	both   = []string{"private", "public"}
	public = []string{"public"}
)

func TestNewChecksConfig(t *testing.T) {
	good := node{name: "a", private: netip.MustParseAddr("127.0.0.1"), public: netip.MustParseAddr("127.0.1.1")}.config(0, 0, 0)
	cases := []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"no name", func(c *Config) { c.Self = "" }, "Config.Self"},
		{"no cluster", func(c *Config) { c.ClusterUID = [16]byte{} }, "Config.ClusterUID"},
		{"short key", func(c *Config) { c.Key = c.Key[:8] }, "Config.Key of 8 bytes"},
		{"port", func(c *Config) { c.Port = 70000 }, "Config.Port 70000"},
		{"interval", func(c *Config) { c.Interval = -time.Second }, "Config.Interval"},
		{"threshold", func(c *Config) { c.Threshold = -1 }, "Config.Threshold"},
		{"skew", func(c *Config) { c.MaxSkew = -time.Second }, "Config.MaxSkew"},
		{"no networks", func(c *Config) { c.Networks = nil }, "Config.Networks is empty"},
		{"unnamed network", func(c *Config) { c.Networks[1].Name = "" }, "Config.Networks[1].Name is empty"},
		{"same name", func(c *Config) { c.Networks[1].Name = "private" }, `Config.Networks[1].Name "private" is not unique`},
		{"no address", func(c *Config) { c.Networks[0].Local = netip.Addr{} }, "Config.Networks[0].Local"},
		{"any address", func(c *Config) { c.Networks[0].Local = netip.IPv4Unspecified() }, "Config.Networks[0].Local"},
		{"same address", func(c *Config) { c.Networks[1].Local = c.Networks[0].Local }, "another network's too"},
	}
	for _, tc := range cases {
		cfg := good
		cfg.Networks = slices.Clone(good.Networks)
		tc.change(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New() = %v, want an error with %q", tc.name, err, tc.want)
		}
	}

	tr, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	c := tr.cfg
	if c.Port != 3343 || c.Interval != 500*time.Millisecond || c.Threshold != 4 || c.MaxSkew != 3*time.Second {
		t.Errorf("defaults: port %d, interval %v, threshold %d, max skew %v; want 3343, 500ms, 4, 3s",
			c.Port, c.Interval, c.Threshold, c.MaxSkew)
	}
	other, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	if tr.incarnation == other.incarnation {
		t.Errorf("two transports have the incarnation %d", tr.incarnation)
	}
}

// TestChangesNeverBlock fills Changes with nobody reading: the oldest Changes go.
func TestChangesNeverBlock(t *testing.T) {
	tr, err := New(node{name: "a", private: netip.MustParseAddr("127.0.0.1")}.config(0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	const n = changesBuffer + 10
	for i := range n {
		tr.publish(Change{Peer: "p" + strconv.Itoa(i), After: public})
	}
	if first := <-tr.Changes(); first.Peer != "p10" {
		t.Errorf("the first Change waiting is of %s, want p10: the oldest 10 dropped", first.Peer)
	}
	if got := len(tr.Reachable()); got != n {
		t.Errorf("Reachable() has %d peers, want %d: dropped Changes still count", got, n)
	}
}

// TestLoopback runs three transports on two loopback "networks": they hear each other on
// both; when one loses its private network, the others fall back to the public one without
// losing it; when one stops, the others lose it within the detection time.
func TestLoopback(t *testing.T) {
	nodes := []node{
		{"a", netip.MustParseAddr("127.0.0.11"), netip.MustParseAddr("127.0.1.11")},
		{"b", netip.MustParseAddr("127.0.0.12"), netip.MustParseAddr("127.0.1.12")},
		{"c", netip.MustParseAddr("127.0.0.13"), netip.MustParseAddr("127.0.1.13")},
	}
	addrs := make([]netip.Addr, 0, 2*len(nodes))
	for _, n := range nodes {
		addrs = append(addrs, n.private, n.public)
	}
	port := freeport.UDP(t, addrs...)
	agents := map[string]*agent{}
	began := time.Now()
	for _, n := range nodes {
		agents[n.name] = start(t, n.config(port, testInterval, testThreshold), peersOf(nodes...), netns.None())
	}
	a, b, c := agents["a"], agents["b"], agents["c"]

	t.Run("all hear each other on both networks", func(t *testing.T) {
		a.waitReachable(t, map[string][]string{"b": both, "c": both})
		b.waitReachable(t, map[string][]string{"a": both, "c": both})
		c.waitReachable(t, map[string][]string{"a": both, "b": both})
		a.waitHeardBy(t, "b", "c")
		b.waitHeardBy(t, "a", "c")
		c.waitHeardBy(t, "a", "b")
		t.Logf("all heard on both networks %v after starting", time.Since(began).Round(time.Millisecond))
		for _, x := range agents {
			for _, network := range both {
				if v := testutil.ToFloat64(x.metrics.PeerReachable.WithLabelValues(other(x.name), network)); v != 1 {
					t.Errorf("%s: wolfpack_agent_peer_reachable{peer=%q,network=%q} = %v, want 1", x.name, other(x.name), network, v)
				}
			}
		}
	})

	cutAt, markA, markB := time.Now(), a.changes.mark(), b.changes.mark()
	t.Run("c loses its private network: fallback to public", func(t *testing.T) {
		markC := c.changes.mark()
		c.cut(t, "private")
		for x, mark := range map[*agent]int{a: markA, b: markB} {
			ch := x.changes.waitFor(t, mark, "c", public...)
			if !slices.Equal(ch.Before, both) {
				t.Errorf("%s: Change of c to public from %v, want from %v", x.name, ch.Before, both)
			}
			t.Logf("%s noticed c's private network gone %v after the cut (timeout %v)", x.name, ch.At.Sub(cutAt).Round(time.Millisecond), testTimeout)
		}
		c.changes.waitFor(t, markC, "a", public...)
		c.changes.waitFor(t, markC, "b", public...)
		a.waitReachable(t, map[string][]string{"b": both, "c": public})
		c.waitReachable(t, map[string][]string{"a": public, "b": public})
		if v := testutil.ToFloat64(a.metrics.PeerReachable.WithLabelValues("c", "private")); v != 0 {
			t.Errorf("a: wolfpack_agent_peer_reachable{peer=c,network=private} = %v, want 0", v)
		}
		if v := testutil.ToFloat64(c.metrics.SendErrors.WithLabelValues("private")); v == 0 {
			t.Errorf("c: no send errors on its closed private socket")
		}
	})

	t.Run("b stops: the others lose it", func(t *testing.T) {
		marks := map[*agent]int{a: a.changes.mark(), c: c.changes.mark()}
		stopped := time.Now()
		b.stop(t)
		for x, mark := range marks {
			ch := x.changes.waitFor(t, mark, "b")
			took := ch.At.Sub(stopped)
			t.Logf("%s lost b %v after it stopped, heard on %v before (timeout %v, interval %v)",
				x.name, took.Round(time.Millisecond), ch.Before, testTimeout, testInterval)
			if bound := testTimeout + 2*testInterval + slack; took > bound {
				t.Errorf("%s lost b %v after it stopped, more than %v", x.name, took, bound)
			}
			if v := testutil.ToFloat64(x.metrics.PeerLost.WithLabelValues("b")); v != 1 {
				t.Errorf("%s: wolfpack_agent_peer_lost_total{peer=b} = %v, want 1", x.name, v)
			}
			for _, network := range both {
				if v := testutil.ToFloat64(x.metrics.PeerReachable.WithLabelValues("b", network)); v != 0 {
					t.Errorf("%s: wolfpack_agent_peer_reachable{peer=b,network=%s} = %v, want 0", x.name, network, v)
				}
			}
		}
		a.waitReachable(t, map[string][]string{"c": public})
	})

	t.Run("c was never lost", func(t *testing.T) {
		if held := time.Since(cutAt); held < 2*testTimeout {
			time.Sleep(2*testTimeout - held)
		}
		if l := lost(a.changes.since(markA), "c"); len(l) > 0 {
			t.Errorf("a lost c on its public network: %v", l)
		}
		if l := lost(b.changes.since(markB), "c"); len(l) > 0 {
			t.Errorf("b lost c on its public network: %v", l)
		}
		if v := testutil.ToFloat64(a.metrics.PeerLost.WithLabelValues("c")); v != 0 {
			t.Errorf("a: wolfpack_agent_peer_lost_total{peer=c} = %v, want 0", v)
		}
		a.waitReachable(t, map[string][]string{"c": public})
		t.Logf("c heard on public only for %v", time.Since(cutAt).Round(time.Millisecond))
	})
}

// other returns a peer of the loopback test's node name.
func other(name string) string {
	if name == "a" {
		return "b"
	}
	return "a"
}

// TestForgedAndReplayed sends a transport datagrams that it must not believe, from its peer's
// address: none makes the peer reachable, and each is counted under its reason.
func TestForgedAndReplayed(t *testing.T) {
	nodeA := node{name: "a", private: netip.MustParseAddr("127.0.0.21")}
	nodeB := node{name: "b", private: netip.MustParseAddr("127.0.0.22")}
	tap := node{name: "tap", private: netip.MustParseAddr("127.0.0.23")}
	stranger := netip.MustParseAddr("127.0.0.24")
	port := freeport.UDP(t, nodeA.private, nodeB.private, tap.private)
	cfgA := nodeA.config(port, testInterval, testThreshold)
	cfgA.MaxSkew = time.Minute // a replay is caught as a replay, not as stale
	a := start(t, cfgA, peersOf(nodeB), netns.None())
	capture := listen(t, netip.AddrPortFrom(tap.private, uint16(port)))

	// b sends to a and to the tap, which captures its genuine heartbeats; then it stops.
	b := start(t, nodeB.config(port, testInterval, testThreshold), peersOf(nodeA, tap), netns.None())
	a.waitReachable(t, map[string][]string{"b": {"private"}})
	mark := a.changes.mark()
	b.stop(t)
	captured := drain(t, capture)
	if len(captured) == 0 {
		t.Fatal("the tap captured none of b's heartbeats")
	}
	a.changes.waitFor(t, mark, "b")
	genuine, err := Decode(captured[len(captured)-1], key)
	if err != nil {
		t.Fatalf("a captured heartbeat: %v", err)
	}
	replayed := captured[max(0, len(captured)-3):]

	received := testutil.ToFloat64(a.metrics.Received.WithLabelValues("private"))
	mark = a.changes.mark()
	fresh := func(incarnation uint64) *Message {
		return &Message{ClusterUID: cluster, Sender: "b", Incarnation: incarnation, Sequence: 1, SentAt: time.Now()}
	}
	otherKey := bytes.Repeat([]byte{8}, 32)
	foreign := fresh(genuine.Incarnation + 1)
	foreign.ClusterUID = [16]byte{9}
	longest := fresh(genuine.Incarnation + 1)
	longest.Sender = strings.Repeat("b", MaxSenderLen)
	longest.HearsKnown, longest.Hears = true, make([]NameDigest, MaxHears)
	stale := fresh(genuine.Incarnation + 1)
	stale.SentAt = time.Now().Add(-time.Hour)
	type send struct {
		what   string
		from   netip.Addr
		packet []byte
	}
	sends := make([]send, 0, 6+len(replayed))
	sends = append(sends, []send{
		{"another key", nodeB.private, encode(t, fresh(genuine.Incarnation+1), otherKey)},
		{"another cluster", nodeB.private, encode(t, foreign, key)},
		{"one byte too long", nodeB.private, append(encode(t, longest, key), 0)},
		{"1500 bytes", nodeB.private, bytes.Repeat(encode(t, fresh(genuine.Incarnation+1), key), 20)[:1500]},
		{"stale", nodeB.private, encode(t, stale, key)},
		{"b's heartbeat from another address", stranger, encode(t, fresh(genuine.Incarnation+2), key)},
	}...)
	for _, p := range replayed {
		sends = append(sends, send{"replayed", nodeB.private, p})
	}
	for _, s := range sends {
		t.Logf("sending from %s: %s (%d bytes)", s.from, s.what, len(s.packet))
		sendFrom(t, s.from, netip.AddrPortFrom(nodeA.private, uint16(port)), s.packet)
	}

	want := map[Drop]float64{DropMAC: 1, DropCluster: 1, DropSize: 2, DropStale: 1, DropSender: 1, DropReplay: float64(len(replayed))}
	poll.WaitEvery(t, "every drop counted", wait, 10*time.Millisecond, func() error {
		for _, reason := range drops {
			got := testutil.ToFloat64(a.metrics.Dropped.WithLabelValues("private", string(reason)))
			if got > want[reason] {
				t.Fatalf("wolfpack_agent_heartbeats_dropped_total{network=private,reason=%q} = %v, want %v", reason, got, want[reason])
			}
			if got != want[reason] {
				return fmt.Errorf("wolfpack_agent_heartbeats_dropped_total{network=private,reason=%q} = %v, want %v", reason, got, want[reason])
			}
		}
		return nil
	})
	if got := a.changes.since(mark); len(got) != 0 {
		t.Errorf("datagrams not to be believed changed what a hears: %v", got)
	}
	if got := a.Reachable(); len(got) != 0 {
		t.Errorf("Reachable() = %v after datagrams not to be believed, want nothing", got)
	}
	if got := testutil.ToFloat64(a.metrics.Received.WithLabelValues("private")); got != received {
		t.Errorf("wolfpack_agent_heartbeats_received_total went from %v to %v", received, got)
	}

	// The path works: a genuine new heartbeat from b's address makes b reachable.
	sendFrom(t, nodeB.private, netip.AddrPortFrom(nodeA.private, uint16(port)), encode(t, fresh(genuine.Incarnation+3), key))
	a.changes.waitFor(t, mark, "b", "private")
}

// TestHeardBy sends a transport heartbeats from its peer's address that say, or do not say, that
// the peer hears it: HeardBy follows the latest one, a heartbeat of wire format version 1 does
// not count as hearing, and a peer that goes silent is not in HeardBy any more.
func TestHeardBy(t *testing.T) {
	nodeA := node{name: "a", private: netip.MustParseAddr("127.0.0.31")}
	nodeB := node{name: "b", private: netip.MustParseAddr("127.0.0.32")}
	port := freeport.UDP(t, nodeA.private, nodeB.private)
	a := start(t, nodeA.config(port, testInterval, testThreshold), peersOf(nodeB), netns.None())
	a.waitBound(t)
	to := netip.AddrPortFrom(nodeA.private, uint16(port))
	seq := uint64(0)
	from := func(hearsKnown bool, hears ...string) []byte {
		seq++
		m := &Message{ClusterUID: cluster, Sender: "b", Incarnation: 1, Sequence: seq, SentAt: time.Now(), HearsKnown: hearsKnown}
		for _, h := range hears {
			m.Hears = append(m.Hears, NameDigestOf(h))
		}
		return encode(t, m, key)
	}
	// keep sends b's heartbeats every interval until the returned stop is called.
	keep := func(packet func() []byte) (stop func()) {
		done, stopped := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			for {
				sendFrom(t, nodeB.private, to, packet())
				select {
				case <-done:
					return
				case <-time.After(testInterval):
				}
			}
		}()
		return func() { close(done); <-stopped }
	}

	for _, step := range []struct {
		name   string
		packet func() []byte
		want   []string
	}{
		{"b hears a", func() []byte { return from(true, "c", "a") }, []string{"b"}},
		{"b stops hearing a, a still hears b", func() []byte { return from(true, "c") }, nil},
		{"b hears a again", func() []byte { return from(true, "a") }, []string{"b"}},
		{"b runs an older release", func() []byte { return from(false) }, nil},
		{"b hears a once more", func() []byte { return from(true, "a") }, []string{"b"}},
	} {
		stop := keep(step.packet)
		a.waitReachable(t, map[string][]string{"b": {"private"}})
		a.waitHeardBy(t, step.want...)
		t.Logf("%s: HeardBy() = %v", step.name, step.want)
		stop()
	}
	mark := a.changes.mark()
	a.changes.waitFor(t, mark, "b")
	if got := a.HeardBy(); len(got) != 0 {
		t.Errorf("HeardBy() = %v once b is silent, want nothing", got)
	}
}

// listen binds a UDP socket, closed when the test ends.
func listen(tb testing.TB, at netip.AddrPort) *net.UDPConn {
	tb.Helper()
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(context.Background(), "udp", at.String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = pc.Close() })
	return pc.(*net.UDPConn)
}

// drain returns what c has received, waiting briefly for more.
func drain(tb testing.TB, c *net.UDPConn) [][]byte {
	tb.Helper()
	var out [][]byte
	buf := make([]byte, MaxSize+1)
	for {
		if err := c.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
			tb.Fatal(err)
		}
		n, err := c.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, bytes.Clone(buf[:n]))
	}
}

// sendFrom sends packet to to from an ephemeral port of from.
func sendFrom(tb testing.TB, from netip.Addr, to netip.AddrPort, packet []byte) {
	tb.Helper()
	c := listen(tb, netip.AddrPortFrom(from, 0))
	if _, err := c.WriteToUDPAddrPort(packet, to); err != nil {
		tb.Fatal(err)
	}
	_ = c.Close()
}

// TestDetectionOnTheClock runs two transports on a fake clock: the detector's timer is set for
// the instant after a peer's deadline, not polled. At interval x threshold after the last
// heartbeat the peer is still reachable, an instant later it is lost.
func TestDetectionOnTheClock(t *testing.T) {
	nodeA := node{name: "a", private: netip.MustParseAddr("127.0.0.31")}
	nodeB := node{name: "b", private: netip.MustParseAddr("127.0.0.32")}
	port := freeport.UDP(t, nodeA.private, nodeB.private)
	begin := time.Now().Truncate(time.Second)
	clk := testingclock.NewFakeClock(begin)
	configs := map[string]Config{}
	for _, n := range []node{nodeA, nodeB} {
		cfg := n.config(port, 0, 0) // the defaults: 500 ms x 4
		cfg.Clock = clk
		configs[n.name] = cfg
	}
	a := start(t, configs["a"], peersOf(nodeB), netns.None())
	a.waitBound(t)
	// b sends once when it starts, at begin; the clock stands still until the test moves it.
	b := start(t, configs["b"], peersOf(nodeA), netns.None())
	found := a.changes.waitFor(t, 0, "b", "private")
	if !found.At.Equal(begin) {
		t.Errorf("a found b at begin+%v, want at begin", found.At.Sub(begin))
	}
	b.stop(t)

	timeout := DefaultInterval * DefaultThreshold
	clk.Step(timeout)
	time.Sleep(100 * time.Millisecond) // time for a mistaken detection
	if got := a.changes.since(0); len(got) != 1 {
		t.Fatalf("a's changes at begin+%v: %v, want only b found", timeout, got)
	}
	if got := a.Reachable(); !slices.Equal(got["b"], []string{"private"}) {
		t.Errorf("Reachable() at begin+%v = %v, want b on private", timeout, got)
	}
	clk.Step(time.Nanosecond)
	lostAt := a.changes.waitFor(t, 1, "b").At
	if want := begin.Add(timeout + time.Nanosecond); !lostAt.Equal(want) {
		t.Errorf("a lost b at begin+%v, want begin+%v", lostAt.Sub(begin), want.Sub(begin))
	}
	if got := testutil.ToFloat64(a.metrics.PeerLost.WithLabelValues("b")); got != 1 {
		t.Errorf("wolfpack_agent_peer_lost_total{peer=b} = %v, want 1", got)
	}
}
