package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/heartbeat"
	localcluster "github.com/wolfpack-ha/wolfpack/internal/localcluster/cluster"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
	"github.com/wolfpack-ha/wolfpack/internal/test/freeport"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

// monitorEnv is set in the test binary's environment, which the agents started by the tests
// pass on to their Resource Monitor: the test binary, re-executed as "monitor ...", then runs
// runMonitor as the real node-agent binary would.
const monitorEnv = "WOLFPACK_AGENT_TEST_MONITOR"

// A test that runs an agent runs in a process of its own (see inOwnProcess): the test binary
// re-executed with the name of the test in ownProcessEnv and the kubeconfig of the parent's
// envtest in kubeconfigEnv.
const (
	ownProcessEnv = "WOLFPACK_AGENT_TEST_RUN"
	kubeconfigEnv = "WOLFPACK_AGENT_TEST_KUBECONFIG"
)

// keySecret is the Secret the agent's RBAC lets it read; envtest runs as an administrator, but
// the tests use the same name.
const keySecret = "wolfpack-heartbeat-key"

var (
	// restConfig reaches the API server of the envtest that TestMain starts, as an administrator.
	restConfig *rest.Config
	// kubeconfig is the path of a kubeconfig file with restConfig, for the tests' own processes.
	kubeconfig string
	// logs receives the in-process agent's logs.
	logs = &logBuffer{}
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "monitor" && os.Getenv(monitorEnv) == "1" {
		os.Exit(monitorMain(os.Args[2:]))
	}
	if err := os.Setenv(monitorEnv, "1"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var out io.Writer = logs
	if os.Getenv("WOLFPACK_TEST_LOGS") != "" {
		out = io.MultiWriter(logs, os.Stderr)
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(out), zap.UseDevMode(true)))
	if kubeconfig = os.Getenv(kubeconfigEnv); kubeconfig != "" {
		os.Exit(ownProcessMain(m))
	}
	os.Exit(envtestMain(m))
}

// envtestMain runs the tests against an envtest of their own.
func envtestMain(m *testing.M) int {
	env, err := envtest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()
	dir, err := os.MkdirTemp("", "node-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	restConfig = env.Config
	return m.Run()
}

// ownProcessMain runs one test in its own process, against the parent's envtest.
func ownProcessMain(m *testing.M) int {
	data, err := os.ReadFile(kubeconfig)
	if err == nil {
		restConfig, err = clientcmd.RESTConfigFromKubeConfig(data)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// inOwnProcess runs the calling test in a process of its own, and returns true in the parent,
// which has nothing more to do: main builds one agent per process, and controller-runtime does
// not allow two controllers of one name (nor the metrics two collectors) in one process.
func inOwnProcess(t *testing.T) bool {
	t.Helper()
	if os.Getenv(ownProcessEnv) == t.Name() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1", "-test.timeout=4m")
	cmd.Env = append(os.Environ(), ownProcessEnv+"="+t.Name(), kubeconfigEnv+"="+kubeconfig)
	out, err := cmd.CombinedOutput()
	t.Logf("%s in its own process:\n%s", t.Name(), out)
	if err != nil {
		t.Fatalf("%s in its own process: %v", t.Name(), err)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("%s in its own process did not pass", t.Name())
	}
	return true
}

// monitorMain is main's "monitor" subcommand in the test binary.
func monitorMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runMonitor(ctx, args); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "monitor:", err)
		return 1
	}
	return 0
}

// logBuffer collects log output; reset starts a test's own.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
}

func TestParseFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(*options) error
	}{
		{name: "defaults", args: []string{"--node-name=n1"}, check: func(o *options) error {
			if o.node != "n1" || o.cluster != "" || o.leaseNamespace != "wolfpack-system" || len(o.addresses) != 0 ||
				o.metricsAddr != ":8445" || !o.secureMetrics || o.probeAddr != ":8082" || o.monitorPath != "/proc/self/exe" ||
				o.criEndpoint != "unix:///run/containerd/containerd.sock" || o.concurrency != 4 || o.qps != 20 || o.burst != 40 ||
				o.handover != 30*time.Second || o.watchdogDevice != "/dev/watchdog" {
				return fmt.Errorf("defaults %+v", *o)
			}
			return nil
		}},
		{name: "node name from the environment", env: map[string]string{"NODE_NAME": "n2"}, check: func(o *options) error {
			if o.node != "n2" {
				return fmt.Errorf("node %q, want n2 from $NODE_NAME", o.node)
			}
			return nil
		}},
		{name: "flag over the environment", args: []string{"--node-name=n3"}, env: map[string]string{"NODE_NAME": "n2"},
			check: func(o *options) error {
				if o.node != "n3" {
					return fmt.Errorf("node %q, want n3 from --node-name", o.node)
				}
				return nil
			}},
		{name: "lease namespace from the environment", args: []string{"--node-name=n1"}, env: map[string]string{"POD_NAMESPACE": "ha"},
			check: func(o *options) error {
				if o.leaseNamespace != "ha" {
					return fmt.Errorf("lease namespace %q, want ha from $POD_NAMESPACE", o.leaseNamespace)
				}
				return nil
			}},
		{name: "heartbeat addresses", args: []string{"--node-name=n1",
			"--heartbeat-address", "private=10.0.0.1", "--heartbeat-address=public=fd00::1"},
			check: func(o *options) error {
				want := map[string]netip.Addr{"private": netip.MustParseAddr("10.0.0.1"), "public": netip.MustParseAddr("fd00::1")}
				if !maps.Equal(o.addresses, want) {
					return fmt.Errorf("addresses %v, want %v", o.addresses, want)
				}
				return nil
			}},
		{name: "watchdog fallback", args: []string{"--node-name=n1", "--watchdog-fallback=/dev/watchdog1"},
			check: func(o *options) error {
				if o.watchdogFallback != "/dev/watchdog1" {
					return fmt.Errorf("watchdog fallback %q, want /dev/watchdog1", o.watchdogFallback)
				}
				return nil
			}},
		{name: "relative watchdog fallback", args: []string{"--node-name=n1", "--watchdog-fallback=watchdog"},
			wantErr: `--watchdog-fallback must be the absolute path of a watchdog device, not "watchdog"`},
		{name: "watchdog device", args: []string{"--node-name=n1", "--watchdog-device=/run/wd0"}, check: func(o *options) error {
			if o.watchdogDevice != "/run/wd0" {
				return fmt.Errorf("watchdog device %q, want /run/wd0", o.watchdogDevice)
			}
			return nil
		}},
		{name: "no node name", wantErr: "--node-name (or $NODE_NAME) is required"},
		{name: "address without a network", args: []string{"--node-name=n1", "--heartbeat-address=10.0.0.1"},
			wantErr: `want network=ip, got "10.0.0.1"`},
		{name: "empty network", args: []string{"--node-name=n1", "--heartbeat-address==10.0.0.1"},
			wantErr: `want network=ip, got "=10.0.0.1"`},
		{name: "bad address names its network", args: []string{"--node-name=n1", "--heartbeat-address=private=10.0.0.1",
			"--heartbeat-address=public=10.0.0.256"}, wantErr: `address of network "public"`},
		{name: "a network given twice", args: []string{"--node-name=n1", "--heartbeat-address=private=10.0.0.1",
			"--heartbeat-address=private=10.0.0.2"}, wantErr: `network "private" given twice (10.0.0.1 and 10.0.0.2)`},
		{name: "empty address names its network", args: []string{"--node-name=n1", "--heartbeat-address=private="},
			wantErr: `address of network "private"`},
		{name: "no concurrency", args: []string{"--node-name=n1", "--concurrency=0"},
			wantErr: "--concurrency must be at least 1, not 0"},
		{name: "negative concurrency", args: []string{"--node-name=n1", "--concurrency=-2"},
			wantErr: "--concurrency must be at least 1, not -2"},
		{name: "handover timeout", args: []string{"--node-name=n1", "--handover-timeout=1m"}, check: func(o *options) error {
			if o.handover != time.Minute {
				return fmt.Errorf("handover %s, want 1m", o.handover)
			}
			return nil
		}},
		{name: "negative handover timeout", args: []string{"--node-name=n1", "--handover-timeout=-1s"},
			wantErr: "--handover-timeout must be between 0 and 3m0s, not -1s"},
		{name: "handover timeout too long", args: []string{"--node-name=n1", "--handover-timeout=4m"},
			wantErr: "--handover-timeout must be between 0 and 3m0s, not 4m0s"},
		{name: "stray argument", args: []string{"--node-name=n1", "monitor"}, wantErr: "unexpected arguments: [monitor]"},
		{name: "unknown flag", args: []string{"--node-name=n1", "--kubeconfig=x"}, wantErr: "flag provided but not defined: -kubeconfig"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("NODE_NAME", tc.env["NODE_NAME"])
			t.Setenv("POD_NAMESPACE", tc.env["POD_NAMESPACE"])
			o, err := parseFlags(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseFlags(%q) = %v, want an error with %q", tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags(%q): %v", tc.args, err)
			}
			if err := tc.check(o); err != nil {
				t.Fatalf("parseFlags(%q): %v", tc.args, err)
			}
		})
	}
}

// fixture is one cluster of the tests: a QuorumDisk with a private and a public heartbeat
// network on loopback, the Node of the agent under test, and one peer played by a heartbeat
// transport of the test's own with a Lease that tells the agent its addresses.
type fixture struct {
	c             client.Client
	cs            kubernetes.Interface
	cluster, node string
	agent         map[string]netip.Addr // the agent's addresses, by network
	peerName      string
	peerAddrs     map[string]netip.Addr
	port          int
	qd            *wolfpackv1alpha1.QuorumDisk
	peer          *heartbeat.Transport
}

// both are the fixtures' networks, as the transports report them (sorted).
var both = []string{"private", "public"}

// newFixture creates the cluster's objects with the key the Secret holds. Host byte h of the
// addresses 127.0.0.h (private) and 127.0.1.h (public) is the agent's; h+1 is the peer's.
func newFixture(t *testing.T, cluster, node, peer string, h byte, key []byte) *fixture {
	t.Helper()
	c, err := client.New(restConfig, client.Options{Scheme: newScheme()})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		c: c, cs: kubernetes.NewForConfigOrDie(restConfig), cluster: cluster, node: node, peerName: peer,
		agent:     map[string]netip.Addr{"private": netip.AddrFrom4([4]byte{127, 0, 0, h}), "public": netip.AddrFrom4([4]byte{127, 0, 1, h})},
		peerAddrs: map[string]netip.Addr{"private": netip.AddrFrom4([4]byte{127, 0, 0, h + 1}), "public": netip.AddrFrom4([4]byte{127, 0, 1, h + 1})},
	}
	f.port = freeport.UDP(t)
	ctx := context.Background()
	setKey(t, c, key)
	t.Cleanup(func() {
		_ = c.Delete(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: envtest.LeaseNamespace, Name: keySecret}})
	})
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{wolfpackv1alpha1.ClusterLabel: cluster}}}
	if err := c.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
	f.qd = builder.QuorumDisk(cluster).Claim("default", cluster+"-quorum").KeySecret(envtest.LeaseNamespace, keySecret).
		HeartbeatPort(int32(f.port)).
		Network("private", "127.0.0.0/24", wolfpackv1alpha1.PrivateNetwork).
		Network("public", "127.0.1.0/24", wolfpackv1alpha1.PublicNetwork).Obj()
	if err := c.Create(ctx, f.qd); err != nil {
		t.Fatal(err)
	}
	f.startPeer(t, key)
	return f
}

// setKey creates or updates the key Secret.
func setKey(t *testing.T, c client.Client, key []byte) {
	t.Helper()
	ctx := context.Background()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: envtest.LeaseNamespace, Name: keySecret},
		Data: map[string][]byte{"key": key}}
	err := c.Create(ctx, s)
	if apierrors.IsAlreadyExists(err) {
		err = c.Update(ctx, s)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// startPeer runs the peer's heartbeats with key, sending to the agent's addresses, and writes
// the peer's Lease with its addresses.
func (f *fixture) startPeer(t *testing.T, key []byte) {
	t.Helper()
	uid, err := uuid.Parse(string(f.qd.UID))
	if err != nil {
		t.Fatal(err)
	}
	f.peer, err = heartbeat.New(heartbeat.Config{Self: f.peerName, ClusterUID: uid, Key: key, Port: f.port, Networks: []heartbeat.Network{
		{Name: "private", Private: true, Local: f.peerAddrs["private"]}, {Name: "public", Local: f.peerAddrs["public"]},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.peer.SetPeers([]heartbeat.Peer{{Name: f.node, Addrs: f.agent}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.peer.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the peer's heartbeats: %v", err)
		}
	})
	addrs := map[string]string{}
	for n, a := range f.peerAddrs {
		addrs[n] = a.String()
	}
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: envtest.LeaseNamespace, Name: f.peerName,
			Labels:      map[string]string{wolfpackv1alpha1.ClusterLabel: f.cluster, wolfpackv1alpha1.NodeLabel: f.peerName},
			Annotations: map[string]string{wolfpackv1alpha1.ViewAnnotation: membership.View{Incarnation: 1, Joined: true, Addresses: addrs}.Encode()}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(f.peerName), LeaseDurationSeconds: ptr.To(int32(10)),
			RenewTime: ptr.To(metav1.NewMicroTime(time.Now()))},
	}
	if err := f.c.Create(context.Background(), lease); err != nil {
		t.Fatal(err)
	}
}

// agentArgs are the agent's flags for the fixture, with its probes on probeAddr.
func (f *fixture) agentArgs(t *testing.T, probeAddr string) []string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		"--node-name=" + f.node,
		"--heartbeat-address=private=" + f.agent["private"].String(),
		"--heartbeat-address=public=" + f.agent["public"].String(),
		"--lease-namespace=" + envtest.LeaseNamespace,
		"--metrics-bind-address=0",
		"--health-probe-bind-address=" + probeAddr,
		"--monitor-path=" + self,
		"--cri-endpoint=unix://" + filepath.Join(t.TempDir(), "no-runtime.sock"),
	}
}

// runningAgent is the agent running in the test process.
type runningAgent struct {
	cancel context.CancelFunc
	done   chan error
}

// startAgent builds the agent with newManager, as main does, and starts it.
func startAgent(t *testing.T, args []string) *runningAgent {
	t.Helper()
	logs.reset()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the agent's log:\n%s", logs.String())
		}
	})
	o, err := parseFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &runningAgent{cancel: cancel, done: make(chan error, 1)}
	mgr, err := newManager(ctx, restConfig, o)
	if err != nil {
		cancel()
		t.Fatalf("newManager: %v", err)
	}
	go func() { a.done <- mgr.Start(ctx) }()
	t.Cleanup(func() { a.stop(t) })
	return a
}

// stop ends the agent's context and waits for its manager to return.
func (a *runningAgent) stop(t *testing.T) {
	t.Helper()
	if a.cancel == nil {
		return
	}
	a.cancel()
	a.cancel = nil
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("the agent stopped with %v", err)
		}
	case <-time.After(patience):
		t.Fatalf("the agent did not stop within %s of its context ending", patience)
	}
}

// counter is the sum of the counter name over its labels, from the agent's metrics.
func counter(t *testing.T, name string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestAgentRuns runs the agent's real wiring against a real API server, next to one peer: its
// probes, its Lease with a view that becomes joined after interval x threshold and hears the
// peer on both networks, its heartbeats as the peer hears them, its Resource Monitor child (this
// test binary, re-executed), and a clean stop that takes the monitor and the sockets with it.
func TestAgentRuns(t *testing.T) {
	if inOwnProcess(t) {
		return
	}
	key := bytes.Repeat([]byte("k"), heartbeat.MinKeyLen)
	f := newFixture(t, "qd-runs", "node-a", "node-b", 21, key)
	detection := f.qd.Spec.Heartbeat.Interval.Duration * time.Duration(*f.qd.Spec.Heartbeat.Threshold)
	if detection != 2*time.Second {
		t.Fatalf("interval x threshold %v, want the defaults' 2s", detection)
	}
	ctx := context.Background()
	w, err := f.cs.CoordinationV1().Leases(envtest.LeaseNamespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + f.node})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	probeAddr := freeport.TCPAddr(t)
	a := startAgent(t, f.agentArgs(t, probeAddr))

	poll.Wait(t, "readiness probe", patience, func() error { return localcluster.GetOK(context.Background(), "http://"+probeAddr+"/readyz") })
	if err := localcluster.GetOK(context.Background(), "http://"+probeAddr+"/healthz"); err != nil {
		t.Fatal(err)
	}

	// Every version of the agent's Lease, until its view is joined and hears the peer.
	wantAddrs := map[string]string{"private": f.agent["private"].String(), "public": f.agent["public"].String()}
	var versions []membership.View
	deadline := time.After(patience)
	for len(versions) == 0 || !versions[len(versions)-1].Joined || !slices.Equal(versions[len(versions)-1].Hears(f.peerName), both) {
		var ev watch.Event
		select {
		case ev = <-w.ResultChan():
		case <-deadline:
			t.Fatalf("the agent's Lease did not show a joined view that hears %s on %v within %s; views %+v", f.peerName, both, patience, versions)
		}
		l, ok := ev.Object.(*coordinationv1.Lease)
		if !ok {
			t.Fatalf("watch event %s of a %T", ev.Type, ev.Object)
		}
		v := checkLease(t, f, l, wantAddrs)
		// The incarnation is the instant the agent started: joined once a whole detection
		// period has passed since.
		since := l.Spec.RenewTime.Sub(time.Unix(0, int64(v.Incarnation)))
		if v.Joined && since < detection {
			t.Fatalf("view joined %v after the agent started, before interval x threshold (%v): %+v", since, detection, v)
		}
		if !v.Joined && since > detection+time.Second {
			t.Fatalf("view not joined %v after the agent started, interval x threshold is %v: %+v", since, detection, v)
		}
		t.Logf("Lease %s renewed %v after the agent started: %s", f.node, since.Round(time.Millisecond), l.Annotations[wolfpackv1alpha1.ViewAnnotation])
		versions = append(versions, v)
	}
	if versions[0].Joined {
		t.Fatalf("the agent's first view is already joined: %+v", versions[0])
	}
	poll.Wait(t, "the peer hears the agent on both networks", patience, func() error {
		if got := f.peer.Reachable()[f.node]; !slices.Equal(got, both) {
			return fmt.Errorf("the peer hears %s on %v", f.node, got)
		}
		return nil
	})

	// The Resource Monitor is this test binary running runMonitor: it answers the supervisor's
	// pings (one a second; a monitor silent for 5 s is killed), so it stays the same process.
	pid := monitorChild(t)
	time.Sleep(6 * time.Second)
	if again := monitorChild(t); again != pid {
		t.Fatalf("the monitor process changed from %d to %d: it was restarted", pid, again)
	}
	if n := counter(t, "wolfpack_agent_monitor_restarts_total"); n != 0 {
		t.Fatalf("%v monitor restarts", n)
	}
	if n := counter(t, "wolfpack_agent_heartbeats_received_total"); n == 0 {
		t.Fatal("the agent's metrics count no heartbeat received")
	}

	a.stop(t)
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the monitor process %d is still there after the agent stopped: %v", pid, err)
	}
	for network, addr := range f.agent {
		if err := bindUDP(addr, f.port); err != nil {
			t.Fatalf("the agent's heartbeat socket on %s is still open after it stopped: %v", network, err)
		}
	}
	if err := localcluster.GetOK(context.Background(), "http://"+probeAddr+"/readyz"); err == nil {
		t.Fatal("the probes still answer after the agent stopped")
	}
}

// TestAgentBadKey starts the agent while its cluster's key is too short: the agent runs (its
// probes answer) and retries, logging why, but sends no heartbeat, binds no heartbeat socket
// and writes no Lease. Once the Secret holds a usable key, it starts its heartbeats.
func TestAgentBadKey(t *testing.T) {
	if inOwnProcess(t) {
		return
	}
	good := bytes.Repeat([]byte("g"), heartbeat.MinKeyLen)
	f := newFixture(t, "qd-bad-key", "node-c", "node-d", 31, good)
	setKey(t, f.c, []byte("too-short")) // after the peer took the good key
	probeAddr := freeport.TCPAddr(t)
	startAgent(t, f.agentArgs(t, probeAddr))

	poll.Wait(t, "readiness probe", patience, func() error { return localcluster.GetOK(context.Background(), "http://"+probeAddr+"/readyz") })
	const complaint = "has 9 bytes, want at least 32"
	poll.Wait(t, "two attempts that log the short key", patience, func() error {
		if n := strings.Count(logs.String(), complaint); n < 2 {
			return fmt.Errorf("%d log lines with %q", n, complaint)
		}
		return nil
	})
	if strings.Contains(logs.String(), string(good[:8])) || strings.Contains(logs.String(), "too-short") {
		t.Fatal("the agent logged key material")
	}
	err := f.c.Get(context.Background(), client.ObjectKey{Namespace: envtest.LeaseNamespace, Name: f.node}, &coordinationv1.Lease{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("the agent's Lease: %v; want none while it has no usable key", err)
	}
	for network, addr := range f.agent {
		if err := bindUDP(addr, f.port); err != nil {
			t.Fatalf("the agent holds its heartbeat socket on %s without a usable key: %v", network, err)
		}
	}
	if got := f.peer.Reachable(); len(got) != 0 {
		t.Fatalf("the peer hears %v from an agent without a usable key", got)
	}
	if err := localcluster.GetOK(context.Background(), "http://"+probeAddr+"/healthz"); err != nil {
		t.Fatalf("the agent without a usable key: %v", err)
	}

	setKey(t, f.c, good)
	wantAddrs := map[string]string{"private": f.agent["private"].String(), "public": f.agent["public"].String()}
	poll.Wait(t, "the agent's Lease once the key is usable", patience, func() error {
		l := &coordinationv1.Lease{}
		if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: envtest.LeaseNamespace, Name: f.node}, l); err != nil {
			return err
		}
		if v := checkLease(t, f, l, wantAddrs); !slices.Equal(v.Hears(f.peerName), both) {
			return fmt.Errorf("view %+v does not hear %s on %v", v, f.peerName, both)
		}
		return nil
	})
	poll.Wait(t, "the peer hears the agent on both networks", patience, func() error {
		if got := f.peer.Reachable()[f.node]; !slices.Equal(got, both) {
			return fmt.Errorf("the peer hears %s on %v", f.node, got)
		}
		return nil
	})
}

// checkLease checks the labels of the agent's Lease and its view's addresses, and returns the
// view.
func checkLease(t *testing.T, f *fixture, l *coordinationv1.Lease, wantAddrs map[string]string) membership.View {
	t.Helper()
	if l.Labels[wolfpackv1alpha1.ClusterLabel] != f.cluster || l.Labels[wolfpackv1alpha1.NodeLabel] != f.node {
		t.Fatalf("Lease %s has labels %v, want %s=%s and %s=%s", l.Name, l.Labels,
			wolfpackv1alpha1.ClusterLabel, f.cluster, wolfpackv1alpha1.NodeLabel, f.node)
	}
	if h := ptr.Deref(l.Spec.HolderIdentity, ""); h != f.node || l.Spec.RenewTime == nil {
		t.Fatalf("Lease %s is held by %q, renewed at %v", l.Name, h, l.Spec.RenewTime)
	}
	v, err := membership.ParseView(l.Annotations[wolfpackv1alpha1.ViewAnnotation])
	if err != nil {
		t.Fatalf("Lease %s: %v", l.Name, err)
	}
	if !maps.Equal(v.Addresses, wantAddrs) {
		t.Fatalf("view addresses %v, want %v", v.Addresses, wantAddrs)
	}
	return v
}

// monitorChild is the pid of the one Resource Monitor process this test process runs.
func monitorChild(t *testing.T) int {
	t.Helper()
	var found []int
	poll.Wait(t, "the Resource Monitor process", patience, func() error {
		found = found[:0]
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return err
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || parentOf(pid) != os.Getpid() {
				continue
			}
			cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if args := strings.Split(string(cmdline), "\x00"); err == nil && len(args) > 1 && args[1] == "monitor" {
				found = append(found, pid)
			}
		}
		if len(found) != 1 {
			return fmt.Errorf("monitor children %v, want one", found)
		}
		return nil
	})
	return found[0]
}

// parentOf is the parent of pid, or 0 when it cannot be read.
func parentOf(pid int) int {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// bindUDP binds addr:port and lets it go: it fails while someone else holds it.
func bindUDP(addr netip.Addr, port int) error {
	pc, err := (&net.ListenConfig{}).ListenPacket(context.Background(), "udp", net.JoinHostPort(addr.String(), strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return pc.Close()
}

// patience bounds every wait of the tests: generous, for a loaded 2-core machine.
const patience = time.Minute
