package heartbeat

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vishvananda/netns"

	"github.com/wolfpack-ha/wolfpack/internal/test/freeport"
)

// BenchmarkDetection stops a peer 20 times at the default interval and threshold and measures
// how long after the peer's last heartbeat the observer reports it lost (min, median, p95,
// max, and by how much the median and the max exceed the timeout), against the timeout,
// interval x threshold. The last heartbeat's send time is read from
// the heartbeat itself, captured by a tap listening as a third peer. The peer stops at a random
// phase of its interval; median-after-stop-ms is measured from the stop instead, which is up
// to an interval less.
// Each run takes about a minute: run it with -bench=Detection -benchtime=1x.
func BenchmarkDetection(b *testing.B) {
	const trials = 20
	observer := node{"x", netip.MustParseAddr("127.0.4.1"), netip.MustParseAddr("127.0.5.1")}
	peer := node{"y", netip.MustParseAddr("127.0.4.2"), netip.MustParseAddr("127.0.5.2")}
	tap := node{name: "tap", private: netip.MustParseAddr("127.0.4.3")}
	port := freeport.UDP(b, observer.private, observer.public, peer.private, peer.public, tap.private)
	x := start(b, observer.config(port, 0, 0), peersOf(peer), netns.None())
	capture := listen(b, netip.AddrPortFrom(tap.private, uint16(port)))
	timeout := DefaultInterval * DefaultThreshold

	detections, afterStop := make([]time.Duration, 0, trials), make([]time.Duration, 0, trials)
	for i := range trials {
		mark := x.changes.mark()
		y := start(b, peer.config(port, 0, 0), peersOf(observer, tap), netns.None())
		x.changes.waitFor(b, mark, "y", both...)
		time.Sleep(rand.N(DefaultInterval))
		mark = x.changes.mark()
		stopped := time.Now()
		y.stop(b)
		captured := drain(b, capture)
		if len(captured) == 0 {
			b.Fatal("the tap captured none of y's heartbeats")
		}
		last, err := Decode(captured[len(captured)-1], key)
		if err != nil {
			b.Fatal(err)
		}
		lostAt := x.changes.waitFor(b, mark, "y").At
		d := lostAt.Sub(last.SentAt)
		b.Logf("trial %2d: lost %v after y's last heartbeat, %v after y stopped (timeout %v)",
			i+1, d.Round(time.Microsecond), lostAt.Sub(stopped).Round(time.Microsecond), timeout)
		detections = append(detections, d)
		afterStop = append(afterStop, lostAt.Sub(stopped))
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(timeout), "timeout-ms")
	b.ReportMetric(ms(quantile(detections, 0)), "min-ms")
	b.ReportMetric(ms(quantile(detections, 0.5)), "median-ms")
	b.ReportMetric(ms(quantile(detections, 0.95)), "p95-ms")
	b.ReportMetric(ms(quantile(detections, 1)), "max-ms")
	b.ReportMetric(ms(quantile(detections, 0.5)-timeout), "median-over-timeout-ms")
	b.ReportMetric(ms(quantile(detections, 1)-timeout), "max-over-timeout-ms")
	b.ReportMetric(ms(quantile(afterStop, 0.5)), "median-after-stop-ms")
}

// BenchmarkSteadyState measures what one transport costs with 2 and with 16 peers at the
// default rate: the CPU time (user and system, from getrusage) of this process per second of
// wall time, while the transport sends a heartbeat to each peer on two networks every 500 ms
// and receives theirs. The peers run in another process, started from this test binary, so
// that their cost is not counted; idle-cpu-ms/s is the same measure before the transport
// starts; datagrams/s counts those sent and received, cpu-us/datagram divides the difference
// by them. Run it without the race detector, e.g. -bench=SteadyState -benchtime=1x.
func BenchmarkSteadyState(b *testing.B) {
	for _, peers := range []int{2, 16} {
		b.Run(fmt.Sprintf("peers=%d", peers), func(b *testing.B) {
			self := node{"self", netip.MustParseAddr("127.0.6.1"), netip.MustParseAddr("127.0.7.1")}
			nodes := peerNodes(peers)
			addrs := []netip.Addr{self.private, self.public}
			for _, n := range nodes {
				addrs = append(addrs, n.private, n.public)
			}
			port := freeport.UDP(b, addrs...)
			startPeers(b, peers, port)

			const window = 5 * time.Second
			idle := cpuPerSecond(b, 2*time.Second)
			x := start(b, self.config(port, 0, 0), peersOf(nodes...), netns.None())
			want := map[string][]string{}
			for _, n := range nodes {
				want[n.name] = both
			}
			x.waitReachable(b, want)
			time.Sleep(time.Second) // warm up
			datagrams := func() float64 {
				var sum float64
				for _, network := range both {
					sum += testutil.ToFloat64(x.metrics.Sent.WithLabelValues(network)) +
						testutil.ToFloat64(x.metrics.Received.WithLabelValues(network))
				}
				return sum
			}
			d0 := datagrams()
			busy := cpuPerSecond(b, window)
			perSecond := (datagrams() - d0) / window.Seconds()
			x.stop(b)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(busy, "cpu-ms/s")
			b.ReportMetric(idle, "idle-cpu-ms/s")
			b.ReportMetric(perSecond, "datagrams/s")
			b.ReportMetric(1000*(busy-idle)/perSecond, "cpu-us/datagram")
		})
	}
}

// cpuPerSecond returns the CPU time of this process, in milliseconds per second of wall time,
// over window.
func cpuPerSecond(tb testing.TB, window time.Duration) float64 {
	tb.Helper()
	cpu := func() time.Duration {
		var u syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
			tb.Fatal(err)
		}
		return time.Duration(u.Utime.Nano() + u.Stime.Nano())
	}
	c0, w0 := cpu(), time.Now()
	time.Sleep(window)
	return ms(cpu()-c0) / time.Since(w0).Seconds()
}

// peersEnv tells the test binary to run peers for BenchmarkSteadyState: "count:port".
const peersEnv = "WOLFPACK_HEARTBEAT_BENCH_PEERS"

// peerNodes are BenchmarkSteadyState's peers.
func peerNodes(count int) []node {
	nodes := make([]node, count)
	for i := range nodes {
		nodes[i] = node{"peer-" + strconv.Itoa(i), netip.AddrFrom4([4]byte{127, 0, 6, byte(10 + i)}),
			netip.AddrFrom4([4]byte{127, 0, 7, byte(10 + i)})}
	}
	return nodes
}

// startPeers runs count peers in another process until the benchmark ends.
func startPeers(b *testing.B, count, port int) {
	b.Helper()
	// Not the benchmark's context: it ends before the cleanup, which lets the peers stop by themselves.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%d", peersEnv, count, port))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		defer cancel()
		_ = stdin.Close() // the peers stop when their input ends
		if err := cmd.Wait(); err != nil {
			b.Errorf("the peers' process: %v", err)
		}
	})
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("the peers' process said %q, %v", line, err)
	}
}

// runPeers runs the peers that spec ("count:port") asks for until its input ends.
func runPeers(spec string) int {
	count, port, err := parseSpec(spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	self := node{"self", netip.MustParseAddr("127.0.6.1"), netip.MustParseAddr("127.0.7.1")}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, count)
	for _, n := range peerNodes(count) {
		tr, err := New(n.config(port, 0, 0))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			cancel()
			return 1
		}
		tr.SetPeers(peersOf(self))
		go func() { errs <- tr.Run(ctx) }()
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	cancel()
	status := 0
	for range count {
		if err := <-errs; err != nil {
			fmt.Fprintln(os.Stderr, err)
			status = 1
		}
	}
	return status
}

func parseSpec(spec string) (count, port int, err error) {
	c, p, ok := strings.Cut(spec, ":")
	if count, err = strconv.Atoi(c); err == nil && ok {
		port, err = strconv.Atoi(p)
	}
	if err != nil || !ok {
		return 0, 0, fmt.Errorf("%s=%q: want count:port", peersEnv, spec)
	}
	return count, port, nil
}
