// Package agentbench measures what the node agent costs on its node: the CPU time and resident
// memory of a real node-agent process, with its Resource Monitor child, exchanging heartbeats
// at the default rate with 2 and with 16 peers against envtest. Run it with `make bench-agent`.
package agentbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/heartbeat"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/cluster"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/repo"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
	"github.com/wolfpack-ha/wolfpack/internal/test/freeport"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
	"github.com/wolfpack-ha/wolfpack/internal/test/scheme"
)

const (
	// warmup runs the agent after its view hears every peer on both networks, before measuring.
	warmup = 10 * time.Second
	// window is how long the agent is measured.
	window = 30 * time.Second
	// patience bounds the waits for the agent: generous, for a loaded 2-core machine.
	patience = 2 * time.Minute
	// keySecret is the Secret the agent's RBAC lets it read.
	keySecret = "wolfpack-heartbeat-key"
	// leaseDuration is the QuorumDisk's default leaseDuration.
	leaseDuration = 10 * time.Second
	// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on Linux.
	clockTicks = 100
)

// networks are the heartbeat networks, as the transports report them (sorted).
var networks = []string{"private", "public"}

// BenchmarkAgent runs the node-agent binary, built from cmd/node-agent, against envtest with
// its cluster's default heartbeat settings (interval 500 ms, threshold 4) and 2, then 16,
// peers: heartbeat transports in this process on other loopback addresses, each with a Lease
// renewed as often as an agent renews its own, which tells the agent its addresses. Once the
// agent's view hears every peer on both networks, and after a warm-up of 10 s, it samples the
// agent process for 30 s and reports:
//
//	cpu-ms/s          CPU time (user and system, all threads) of the agent process per second of
//	                  wall time
//	rss-MiB           the agent's resident memory (VmRSS), mean of one sample a second
//	rss-peak-MiB      its largest sample
//	rss-anon-MiB      the anonymous part of it (RssAnon: heap, stacks), without the pages of the
//	                  executable, which the agent and its monitor share
//	monitor-rss-MiB   the resident memory of the agent's Resource Monitor child process, which
//	                  the agent's own figures do not include (and monitor-rss-anon-MiB);
//	                  monitor-cpu-ms/s is its CPU time per second
//	datagrams/s       heartbeats the agent sent and received, as its peers counted them
//	lease-writes/s    the agent's writes of its Lease
//
// The peers, the Lease renewals, etcd and kube-apiserver run on the same machine and are not
// counted. Each peers=N takes about a minute.
func BenchmarkAgent(b *testing.B) {
	bin := buildAgent(b)
	env, err := envtest.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = env.Stop() })
	kubeconfig := filepath.Join(b.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		b.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	key := bytes.Repeat([]byte("k"), heartbeat.MinKeyLen)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: envtest.LeaseNamespace, Name: keySecret},
		Data: map[string][]byte{"key": key}}
	if err := c.Create(context.Background(), secret); err != nil {
		b.Fatal(err)
	}
	for _, peers := range []int{2, 16} {
		b.Run(fmt.Sprintf("peers=%d", peers), func(b *testing.B) {
			r := &run{c: c, cfg: env.Config, bin: bin, kubeconfig: kubeconfig, key: key, peers: peers,
				cluster: fmt.Sprintf("bench-%d", peers), port: freeport.UDP(b)}
			r.measure(b)
		})
	}
}

// run is one measurement: the agent of cluster with its peers.
type run struct {
	c          client.Client
	cfg        *rest.Config
	bin        string
	kubeconfig string
	key        []byte
	peers      int
	cluster    string
	port       int
	qd         *wolfpackv1alpha1.QuorumDisk
	transports []*heartbeat.Transport
	metrics    []*heartbeat.Metrics
}

// The agent's addresses are 127.0.2.1 (private) and 127.0.3.1 (public); peer i has 127.0.2.10+i
// and 127.0.3.10+i.
func address(network string, host int) netip.Addr {
	third := byte(2)
	if network == "public" {
		third = 3
	}
	return netip.AddrFrom4([4]byte{127, 0, third, byte(host)})
}

func (r *run) agentName() string     { return r.cluster + "-agent" }
func (r *run) peerName(i int) string { return fmt.Sprintf("%s-peer-%d", r.cluster, i) }

func (r *run) measure(b *testing.B) {
	b.Helper()
	ctx := context.Background()
	r.createCluster(b)
	r.startPeers(b)
	a := r.startAgent(b)

	// The agent hears every peer on both networks: it read their Leases and its heartbeats flow.
	r.waitFor(b, a, "the agent's view hears every peer on both networks", func() error {
		l := &coordinationv1.Lease{}
		if err := r.c.Get(ctx, client.ObjectKey{Namespace: envtest.LeaseNamespace, Name: r.agentName()}, l); err != nil {
			return err
		}
		v, err := membership.ParseView(l.Annotations[wolfpackv1alpha1.ViewAnnotation])
		if err != nil {
			return err
		}
		for i := range r.peers {
			if got := v.Hears(r.peerName(i)); !slices.Equal(got, networks) {
				return fmt.Errorf("the agent hears %s on %v", r.peerName(i), got)
			}
		}
		if !v.Joined {
			return errors.New("the agent's view is not joined")
		}
		return nil
	})
	monitorPID := r.monitorOf(b, a)
	time.Sleep(warmup)

	writes := r.countLeaseWrites(b)
	agentCPU0, monitorCPU0, datagrams0, wall0 := cpuTime(b, a.pid), cpuTime(b, monitorPID), r.datagrams(), time.Now()
	var rss, anon, monitorRSS, monitorAnon []float64
	for time.Since(wall0) < window {
		time.Sleep(time.Second)
		a.checkRunning(b)
		rss, anon = append(rss, memMiB(b, a.pid, "VmRSS")), append(anon, memMiB(b, a.pid, "RssAnon"))
		monitorRSS, monitorAnon = append(monitorRSS, memMiB(b, monitorPID, "VmRSS")), append(monitorAnon, memMiB(b, monitorPID, "RssAnon"))
	}
	elapsed := time.Since(wall0).Seconds()
	agentCPU, monitorCPU := cpuTime(b, a.pid)-agentCPU0, cpuTime(b, monitorPID)-monitorCPU0
	perSecond := (r.datagrams() - datagrams0) / elapsed
	leaseWrites := float64(writes()) / elapsed
	if again := r.monitorOf(b, a); again != monitorPID {
		b.Errorf("the Resource Monitor changed from pid %d to %d during the measurement", monitorPID, again)
	}
	for i, t := range r.transports {
		if got := t.Reachable()[r.agentName()]; !slices.Equal(got, networks) {
			b.Errorf("peer %s hears the agent on %v after the measurement", r.peerName(i), got)
		}
	}

	cpuPerSecond := ms(agentCPU) / elapsed
	monitorCPUPerSecond := ms(monitorCPU) / elapsed
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(cpuPerSecond, "cpu-ms/s")
	b.ReportMetric(mean(rss), "rss-MiB")
	b.ReportMetric(slices.Max(rss), "rss-peak-MiB")
	b.ReportMetric(mean(anon), "rss-anon-MiB")
	b.ReportMetric(mean(monitorRSS), "monitor-rss-MiB")
	b.ReportMetric(mean(monitorAnon), "monitor-rss-anon-MiB")
	b.ReportMetric(monitorCPUPerSecond, "monitor-cpu-ms/s")
	b.ReportMetric(perSecond, "datagrams/s")
	b.ReportMetric(leaseWrites, "lease-writes/s")
	b.Logf("%d peers, interval %v, threshold %d, over %.0f s: the agent uses %.2f ms of CPU per second (%.2f%% of a core), "+
		"RSS %.1f MiB (peak %.1f, anonymous %.1f); its Resource Monitor child %.2f ms/s, RSS %.1f MiB (anonymous %.1f); "+
		"%.0f heartbeats/s sent and received; %.2f writes of its Lease/s",
		r.peers, r.qd.Spec.Heartbeat.Interval.Duration, *r.qd.Spec.Heartbeat.Threshold, elapsed, cpuPerSecond, cpuPerSecond/10,
		mean(rss), slices.Max(rss), mean(anon), monitorCPUPerSecond, mean(monitorRSS), mean(monitorAnon), perSecond, leaseWrites)
}

// createCluster creates the QuorumDisk, with the default heartbeat interval and threshold, and
// the Nodes of the agent and its peers.
func (r *run) createCluster(b *testing.B) {
	b.Helper()
	ctx := context.Background()
	r.qd = builder.QuorumDisk(r.cluster).Claim("default", r.cluster+"-quorum").KeySecret(envtest.LeaseNamespace, keySecret).
		HeartbeatPort(int32(r.port)).
		Network("private", "127.0.2.0/24", wolfpackv1alpha1.PrivateNetwork).
		Network("public", "127.0.3.0/24", wolfpackv1alpha1.PublicNetwork).Obj()
	if err := r.c.Create(ctx, r.qd); err != nil {
		b.Fatal(err)
	}
	if d := r.qd.Spec.Heartbeat.Interval.Duration; d != heartbeat.DefaultInterval || *r.qd.Spec.Heartbeat.Threshold != heartbeat.DefaultThreshold {
		b.Fatalf("the QuorumDisk has interval %v and threshold %d, want the defaults", d, *r.qd.Spec.Heartbeat.Threshold)
	}
	nodes := make([]string, 0, 1+r.peers)
	nodes = append(nodes, r.agentName())
	for i := range r.peers {
		nodes = append(nodes, r.peerName(i))
	}
	for _, n := range nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{wolfpackv1alpha1.ClusterLabel: r.cluster}}}
		if err := r.c.Create(ctx, node); err != nil {
			b.Fatal(err)
		}
	}
}

// startPeers runs the peers' heartbeats to the agent, and renews their Leases as often as an
// agent does (membership.RenewInterval), each at its own phase, with what each hears, until the
// benchmark ends.
func (r *run) startPeers(b *testing.B) {
	b.Helper()
	uid, err := uuid.Parse(string(r.qd.UID))
	if err != nil {
		b.Fatal(err)
	}
	agent := heartbeat.Peer{Name: r.agentName(), Addrs: map[string]netip.Addr{}}
	for _, n := range networks {
		agent.Addrs[n] = address(n, 1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 2*r.peers)
	b.Cleanup(func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Errorf("peer: %v", err)
		}
	})
	renew := membership.RenewInterval(leaseDuration, heartbeat.DefaultInterval*heartbeat.DefaultThreshold)
	for i := range r.peers {
		m := heartbeat.NewMetrics()
		t, err := heartbeat.New(heartbeat.Config{Self: r.peerName(i), ClusterUID: uid, Key: r.key, Port: r.port, Metrics: m,
			Networks: []heartbeat.Network{
				{Name: "private", Private: true, Local: address("private", 10+i)},
				{Name: "public", Local: address("public", 10+i)},
			}})
		if err != nil {
			b.Fatal(err)
		}
		t.SetPeers([]heartbeat.Peer{agent})
		r.transports, r.metrics = append(r.transports, t), append(r.metrics, m)
		wg.Go(func() {
			if err := t.Run(ctx); err != nil {
				errs <- fmt.Errorf("%s: %w", r.peerName(i), err)
			}
		})
		lease := r.peerLease(i, t)
		if err := r.c.Create(ctx, lease); err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			time.Sleep(rand.N(renew))
			tick := time.NewTicker(renew)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				next := r.peerLease(i, t)
				lease.Annotations, lease.Spec.RenewTime = next.Annotations, next.Spec.RenewTime
				if err := r.c.Update(ctx, lease); err != nil && ctx.Err() == nil {
					errs <- fmt.Errorf("renewing the Lease of %s: %w", r.peerName(i), err)
					return
				}
			}
		})
	}
}

// peerLease is peer i's Lease as its agent would write it now.
func (r *run) peerLease(i int, t *heartbeat.Transport) *coordinationv1.Lease {
	name := r.peerName(i)
	addrs := map[string]string{}
	for _, n := range networks {
		addrs[n] = address(n, 10+i).String()
	}
	view := membership.View{Incarnation: uint64(i + 1), Joined: true, Peers: t.Reachable(), Addresses: addrs}
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: envtest.LeaseNamespace, Name: name,
			Labels:      map[string]string{wolfpackv1alpha1.ClusterLabel: r.cluster, wolfpackv1alpha1.NodeLabel: name},
			Annotations: map[string]string{wolfpackv1alpha1.ViewAnnotation: view.Encode()}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To(int32(leaseDuration / time.Second)),
			RenewTime: ptr.To(metav1.NewMicroTime(time.Now()))},
	}
}

// countLeaseWrites counts the writes of the agent's Lease from now on: the returned function
// stops counting and returns the count.
func (r *run) countLeaseWrites(b *testing.B) func() int {
	b.Helper()
	cs := kubernetes.NewForConfigOrDie(r.cfg)
	w, err := cs.CoordinationV1().Leases(envtest.LeaseNamespace).Watch(context.Background(),
		metav1.ListOptions{FieldSelector: "metadata.name=" + r.agentName(), ResourceVersion: r.leaseVersion(b)})
	if err != nil {
		b.Fatal(err)
	}
	count := make(chan int, 1)
	go func() {
		n := 0
		for ev := range w.ResultChan() {
			if ev.Type == watch.Modified {
				n++
			}
		}
		count <- n
	}()
	return func() int {
		w.Stop()
		return <-count
	}
}

// leaseVersion is the resourceVersion of the agent's Lease.
func (r *run) leaseVersion(b *testing.B) string {
	b.Helper()
	l := &coordinationv1.Lease{}
	if err := r.c.Get(context.Background(), client.ObjectKey{Namespace: envtest.LeaseNamespace, Name: r.agentName()}, l); err != nil {
		b.Fatal(err)
	}
	return l.ResourceVersion
}

// datagrams are the heartbeats the peers received from the agent and sent to it.
func (r *run) datagrams() float64 {
	var sum float64
	for _, m := range r.metrics {
		for _, n := range networks {
			sum += testutil.ToFloat64(m.Received.WithLabelValues(n)) + testutil.ToFloat64(m.Sent.WithLabelValues(n))
		}
	}
	return sum
}

// agentProcess is the node-agent process under measurement.
type agentProcess struct {
	pid     int
	log     string
	exited  chan struct{}
	waitErr error
}

// startAgent starts the agent binary for the cluster, and stops it, with its Resource Monitor,
// when the benchmark ends.
func (r *run) startAgent(b *testing.B) *agentProcess {
	b.Helper()
	dir := b.TempDir()
	a := &agentProcess{log: filepath.Join(dir, "agent.log"), exited: make(chan struct{})}
	logFile, err := os.Create(a.log)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = logFile.Close() }()
	probeAddr := freeport.TCPAddr(b)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, r.bin,
		"--node-name="+r.agentName(),
		"--heartbeat-address=private="+address("private", 1).String(),
		"--heartbeat-address=public="+address("public", 1).String(),
		"--lease-namespace="+envtest.LeaseNamespace,
		"--metrics-bind-address=0",
		"--health-probe-bind-address="+probeAddr,
		"--monitor-path="+r.bin,
		"--cri-endpoint=unix://"+filepath.Join(dir, "no-runtime.sock"),
	)
	cmd.Env = append(environ("KUBECONFIG", "NODE_NAME", "POD_NAMESPACE"), "KUBECONFIG="+r.kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A stop is a SIGTERM, as the kubelet sends, which lets the agent stop its monitor; a kill
	// if the agent is not gone 15 s later.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		b.Fatal(err)
	}
	a.pid = cmd.Process.Pid
	go func() {
		a.waitErr = cmd.Wait()
		close(a.exited)
	}()
	b.Cleanup(func() {
		monitors := children(a.pid, r.bin)
		cancel()
		<-a.exited
		// The monitor runs in a process group of its own; the agent stops it, and the kernel
		// kills it when the agent dies (Pdeathsig). Whatever is left of its group goes now.
		for _, pid := range monitors {
			if alive(pid) {
				b.Errorf("the Resource Monitor (pid %d) outlived the agent; killing its process group", pid)
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
		if b.Failed() {
			out, _ := os.ReadFile(a.log)
			b.Logf("the agent (pid %d, %v) logged:\n%s", a.pid, a.waitErr, tail(out, 60))
		}
	})
	r.waitFor(b, a, "the agent's readiness probe", func() error { return cluster.GetOK(context.Background(), "http://"+probeAddr+"/readyz") })
	return a
}

// checkRunning fails the benchmark if the agent has exited.
func (a *agentProcess) checkRunning(b *testing.B) {
	b.Helper()
	select {
	case <-a.exited:
		b.Fatalf("the agent exited: %v", a.waitErr)
	default:
	}
}

// monitorOf is the pid of the agent's one Resource Monitor process.
func (r *run) monitorOf(b *testing.B, a *agentProcess) int {
	b.Helper()
	var found []int
	r.waitFor(b, a, "the agent's Resource Monitor process", func() error {
		if found = children(a.pid, r.bin); len(found) != 1 {
			return fmt.Errorf("monitor processes %v, want one", found)
		}
		return nil
	})
	return found[0]
}

// waitFor polls check until it returns nil, failing when patience runs out or the agent exits.
func (r *run) waitFor(b *testing.B, a *agentProcess, what string, check func() error) {
	b.Helper()
	poll.WaitEvery(b, what, patience, 250*time.Millisecond, func() error {
		a.checkRunning(b)
		return check()
	})
}

// buildAgent builds cmd/node-agent into a temporary directory.
func buildAgent(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "node-agent")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/node-agent")
	cmd.Dir = repo.Root()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/node-agent: %v\n%s", err, out)
	}
	return bin
}

// environ is this process's environment without the variables named.
func environ(without ...string) []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(without, name)
	})
}

// procStat returns the fields of /proc/<pid>/stat after the command name: field 0 is the
// state, 1 the parent's pid, 11 and 12 utime and stime.
func procStat(pid int) ([]string, error) {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	// The command name, in parentheses, may hold spaces and parentheses.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 13 {
		return nil, fmt.Errorf("/proc/%d/stat has %d fields", pid, len(fields))
	}
	return fields, nil
}

// children are the processes of executable bin whose parent is pid and whose first argument is
// "monitor": the agent's Resource Monitors.
func children(pid int, bin string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fields, err := procStat(child)
		if err != nil || fields[1] != strconv.Itoa(pid) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if args := strings.Split(string(cmdline), "\x00"); err == nil && len(args) > 1 && args[0] == bin && args[1] == "monitor" {
			out = append(out, child)
		}
	}
	return out
}

// alive reports whether pid is a process that has not exited (not a zombie).
func alive(pid int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		fields, err := procStat(pid)
		if err != nil || fields[0] == "Z" || fields[0] == "X" {
			return false
		}
		if time.Now().After(deadline) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cpuTime is the CPU time pid has used, all its threads: the sum of their schedstat run times,
// in nanoseconds, or utime + stime from /proc/<pid>/stat in clock ticks where there is no
// schedstat.
//
// The schedstat sum leaves out threads that have exited, which a Go program's threads rarely
// do; stat counts them but only to 10 ms.
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	if d, err := schedstat(pid); err == nil {
		return d
	}
	fields, err := procStat(pid)
	if err != nil {
		b.Fatal(err)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		b.Fatal(err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}

func schedstat(pid int) (time.Duration, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, t := range tasks {
		data, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread exited meanwhile
		}
		if err != nil {
			return 0, err
		}
		fields := strings.Fields(string(data))
		if len(fields) == 0 {
			return 0, fmt.Errorf("%s/%s/schedstat is empty", dir, t.Name())
		}
		ns, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, err
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// memMiB is field of /proc/<pid>/status, a size such as VmRSS, in MiB.
func memMiB(b *testing.B, pid int, field string) float64 {
	b.Helper()
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kib, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatalf("/proc/%d/status: %q: %v", pid, line, err)
			}
			return kib / 1024
		}
	}
	b.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mean(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// tail is the last n lines of out.
func tail(out []byte, n int) string {
	lines := strings.SplitAfter(string(out), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}
