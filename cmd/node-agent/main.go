// Command node-agent is Wolfpack's agent on one cluster node (a DaemonSet with host networking):
// it exchanges authenticated UDP heartbeats with its peers, renews its node's Lease with what it
// hears, holds the floating addresses of the groups its node owns, and runs their node-local
// health checks in a separate Resource Monitor process ("node-agent monitor"). The same binary is
// the quorum holder ("node-agent quorum"), which the manager runs as a pod on the node that is to
// hold the quorum disk.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/agent"
	"github.com/wolfpack-ha/wolfpack/internal/fence"
	"github.com/wolfpack-ha/wolfpack/internal/heartbeat"
	"github.com/wolfpack-ha/wolfpack/internal/ipaddr"
	"github.com/wolfpack-ha/wolfpack/internal/monitor"
	"github.com/wolfpack-ha/wolfpack/internal/nodelocal"
)

// The agent's RBAC, generated into config/agent: its own Lease and its peers', its cluster, node
// and pods, the Resources and their status conditions, Events, the heartbeat key Secret (get,
// by name, uncached), and the reviews that guard its metrics.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update,namespace=wolfpack-system
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get,resourceNames=wolfpack-heartbeat-key,namespace=wolfpack-system
// +kubebuilder:rbac:groups="",resources=nodes;pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=wolfpack.dev,resources=quorumdisks;resources,verbs=get;list;watch
// +kubebuilder:rbac:groups=wolfpack.dev,resources=resources/status,verbs=patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// options are the agent's command-line settings.
type options struct {
	node           string
	cluster        string
	leaseNamespace string
	addresses      map[string]netip.Addr
	metricsAddr    string
	secureMetrics  bool
	probeAddr      string
	criEndpoint    string
	watchdogDevice string
	monitorPath    string
	concurrency    int
	handover       time.Duration
	qps            float64
	burst          int
	zap            zap.Options

	// watchdogFallback is fence.Options.WatchdogFallbackPath (--watchdog-fallback).
	watchdogFallback string
}

// addressFlag parses repeated --heartbeat-address network=ip.
type addressFlag map[string]netip.Addr

func (a addressFlag) String() string {
	parts := make([]string, 0, len(a))
	for n, ip := range a {
		parts = append(parts, n+"="+ip.String())
	}
	return strings.Join(parts, ",")
}

func (a addressFlag) Set(v string) error {
	network, ip, ok := strings.Cut(v, "=")
	if !ok || network == "" {
		return fmt.Errorf("want network=ip, got %q", v)
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return fmt.Errorf("address of network %q: %w", network, err)
	}
	if prev, ok := a[network]; ok {
		return fmt.Errorf("network %q given twice (%s and %s)", network, prev, addr)
	}
	a[network] = addr
	return nil
}

func parseFlags(args []string) (*options, error) {
	o := &options{addresses: map[string]netip.Addr{}}
	fs := flag.NewFlagSet("node-agent", flag.ContinueOnError)
	fs.StringVar(&o.node, "node-name", os.Getenv("NODE_NAME"), "Name of this agent's Node (default $NODE_NAME).")
	fs.StringVar(&o.cluster, "cluster", "",
		"QuorumDisk this node belongs to; by default the value of the Node's "+wolfpackv1alpha1.ClusterLabel+" label.")
	fs.StringVar(&o.leaseNamespace, "lease-namespace", envOr("POD_NAMESPACE", "wolfpack-system"),
		"Namespace of the agents' Leases (default $POD_NAMESPACE, else wolfpack-system); the manager's --node-lease-namespace.")
	fs.Var(addressFlag(o.addresses), "heartbeat-address",
		"network=ip: this node's address on a heartbeat network, where the host's addresses do not tell (repeatable).")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8445", "Address of the metrics endpoint; \"0\" turns it off.")
	fs.BoolVar(&o.secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, to clients the API server authenticates and authorizes.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8082", "Address of the /healthz and /readyz probes.")
	fs.StringVar(&o.criEndpoint, "cri-endpoint", "unix:///run/containerd/containerd.sock",
		"The container runtime's CRI socket, through which exec health checks run and the CRI fence action stops group containers.")
	fs.StringVar(&o.watchdogFallback, "watchdog-fallback", "",
		"A watchdog device (e.g. /dev/watchdog) that the CRI fence action feeds while the agent renews its Lease and stops feeding when a CRI fence fails, so that the node resets; empty for none.")
	fs.StringVar(&o.watchdogDevice, "watchdog-device", fence.DefaultWatchdogPath,
		"The watchdog device that the Watchdog fence action feeds (spec.fencing of the QuorumDisk).")
	fs.StringVar(&o.monitorPath, "monitor-path", "/proc/self/exe", "Executable of the Resource Monitor (this program).")
	fs.IntVar(&o.concurrency, "concurrency", 4, "How many resources are checked at once.")
	fs.DurationVar(&o.handover, "handover-timeout", defaultHandover,
		"When the agent stops (SIGTERM) without having fenced its node, how long a Watchdog fence action stays armed for the next agent to take it over; "+
			"the agent's last Lease publishes a lease duration that covers it. 0 hands nothing over.")
	fs.Float64Var(&o.qps, "kube-api-qps", 20, "Sustained rate of requests to the API server.")
	fs.IntVar(&o.burst, "kube-api-burst", 40, "Burst of requests to the API server.")
	o.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	case o.node == "":
		return nil, errors.New("--node-name (or $NODE_NAME) is required")
	case o.concurrency < 1:
		return nil, fmt.Errorf("--concurrency must be at least 1, not %d", o.concurrency)
	case o.handover < 0 || o.handover > maxHandover:
		return nil, fmt.Errorf("--handover-timeout must be between 0 and %s, not %s", maxHandover, o.handover)
	case o.watchdogFallback != "" && !strings.HasPrefix(o.watchdogFallback, "/"):
		return nil, fmt.Errorf("--watchdog-fallback must be the absolute path of a watchdog device, not %q", o.watchdogFallback)
	}
	return o, nil
}

// defaultHandover is the default of --handover-timeout: time for the kubelet to start the next
// agent of a DaemonSet's rolling update; maxHandover keeps the lease duration that covers it
// within the 5 minutes a QuorumDisk's leaseDuration may have.
const (
	defaultHandover = 30 * time.Second
	maxHandover     = 3 * time.Minute
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(wolfpackv1alpha1.AddToScheme(s))
	return s
}

// cluster is the QuorumDisk the node belongs to: the flag, else the Node's label.
func cluster(ctx context.Context, c client.Client, o *options) (string, error) {
	if o.cluster != "" {
		return o.cluster, nil
	}
	n := &corev1.Node{}
	// Bounded like every API call of the agent, and retried: a black-holed API server must not
	// hang the agent's start for good.
	var err error
	for {
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		err = c.Get(gctx, client.ObjectKey{Name: o.node}, n)
		cancel()
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("reading Node %s: %w", o.node, err)
	}
	if v := n.Labels[wolfpackv1alpha1.ClusterLabel]; v != "" {
		return v, nil
	}
	return "", fmt.Errorf("node %s has no %s label and no --cluster was given", o.node, wolfpackv1alpha1.ClusterLabel)
}

// newManager builds the agent: a controller-runtime manager whose cache holds only this node,
// its pods, its cluster, the agents' Leases and the Resources.
func newManager(ctx context.Context, cfg *rest.Config, o *options) (ctrl.Manager, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	direct, err := client.New(cfg, client.Options{Scheme: newScheme()})
	if err != nil {
		return nil, err
	}
	name, err := cluster(ctx, direct, o)
	if err != nil {
		return nil, err
	}
	metricsOpts := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.secureMetrics,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}}
	if o.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: newScheme(), Metrics: metricsOpts, HealthProbeBindAddress: o.probeAddr,
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Node{}:                 {Field: fields.OneTermEqualSelector("metadata.name", o.node)},
			&corev1.Pod{}:                  {Field: fields.OneTermEqualSelector("spec.nodeName", o.node)},
			&wolfpackv1alpha1.QuorumDisk{}: {Field: fields.OneTermEqualSelector("metadata.name", name)},
			&coordinationv1.Lease{}:        {Namespaces: map[string]cache.Config{o.leaseNamespace: {}}},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the agent's manager: %w", err)
	}
	if err := setup(mgr, o, name); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, mgr.AddReadyzCheck("readyz", healthz.Ping)
}

// setup adds the node manager, the Resource Monitor and the floating addresses to mgr.
func setup(mgr ctrl.Manager, o *options, clusterName string) error {
	recorder := mgr.GetEventRecorder("wolfpack-node-agent")
	hbMetrics := heartbeat.NewMetrics()
	monMetrics := monitor.NewMetrics()
	metrics.Registry.MustRegister(append(hbMetrics.Collectors(), monMetrics.Collectors()...)...)

	// The floating addresses go through the node manager's hands too: its fence path removes them.
	addrs := agent.NewFloatingAddresses(ipaddr.NewNetlink(ipaddr.Options{}))
	m := &agent.NodeManager{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder, Clock: clock.RealClock{},
		Node: o.node, Cluster: clusterName, LeaseNamespace: o.leaseNamespace,
		Addresses: o.addresses, HostAddrs: hostAddrs, Metrics: hbMetrics,
		FenceOptions: fence.Options{CRIEndpoint: o.criEndpoint, WatchdogPath: o.watchdogDevice,
			WatchdogFallbackPath: o.watchdogFallback},
		FloatingAddresses: addrs, HandoverTimeout: o.handover,
		NewLocal: func(incarnation uint64, interval time.Duration) (agent.LocalRecord, error) {
			return nodelocal.NewAgentWriter("", clusterName, o.node, incarnation, interval)
		},
		HoldsDisk: holdsDisk(clusterName, o.node),
	}
	if err := mgr.Add(m); err != nil {
		return err
	}
	sup, err := monitor.NewSupervisor(monitor.Config{
		Path: o.monitorPath, Args: []string{"monitor", "--cri-endpoint", o.criEndpoint},
		Metrics: monMetrics, Logger: ctrl.Log.WithName("monitor"),
	})
	if err != nil {
		return err
	}
	if err := mgr.Add(supervisorRunnable{sup}); err != nil {
		return err
	}
	r := &agent.Resources{
		Client: mgr.GetClient(), Recorder: recorder, Clock: clock.RealClock{}, Node: o.node,
		Cluster: clusterName, Addresses: addrs, Monitor: sup,
		DefaultInterface: func() string { return m.DefaultInterface(context.Background(), addrs) },
	}
	return r.SetupWithManager(mgr, o.concurrency)
}

// supervisorRunnable runs the Resource Monitor's supervisor on every agent.
type supervisorRunnable struct{ *monitor.Supervisor }

func (s supervisorRunnable) Start(ctx context.Context) error { return s.Run(ctx) }
func (supervisorRunnable) NeedLeaderElection() bool          { return false }

// hostAddrs lists the host's interface addresses.
func hostAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out, nil
}

// runMonitor is the Resource Monitor process: it runs checks for its parent, the agent, over
// stdin and stdout.
func runMonitor(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("node-agent monitor", flag.ContinueOnError)
	endpoint := fs.String("cri-endpoint", "unix:///run/containerd/containerd.sock", "The container runtime's CRI socket.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	execer := monitor.NewCRIExecer(*endpoint, 5*time.Second)
	defer execer.Close()
	return monitor.Serve(ctx, os.Stdin, os.Stdout, monitor.NewChecker(execer))
}

func main() {
	ctx := ctrl.SetupSignalHandler()
	if len(os.Args) > 1 && os.Args[1] == "monitor" {
		if err := runMonitor(ctx, os.Args[2:]); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "monitor:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "quorum" {
		os.Exit(runQuorum(ctx, os.Args[2:]))
	}
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap)))
	cfg, err := ctrl.GetConfig()
	if err != nil {
		ctrl.Log.Error(err, "no Kubernetes client configuration")
		os.Exit(1)
	}
	mgr, err := newManager(ctx, cfg, o)
	if err != nil {
		ctrl.Log.Error(err, "cannot start the agent")
		os.Exit(1)
	}
	ctrl.Log.WithName("setup").Info("starting the node agent", "node", o.node)
	if err := mgr.Start(ctx); err != nil {
		ctrl.Log.Error(err, "node agent stopped")
		os.Exit(1)
	}
}

// holdsDisk asks the node-local channel whether this node's quorum holder holds the disk lease
// now (valid by the node's CLOCK_MONOTONIC). The channel is opened once, at the first call that
// can open it; until then it says no.
func holdsDisk(cluster, node string) func() bool {
	var r *nodelocal.HolderReader
	return func() bool {
		if r == nil {
			var err error
			if r, err = nodelocal.NewHolderReader("", cluster, node); err != nil {
				r = nil
				return false
			}
		}
		_, err := r.Holds()
		return err == nil
	}
}
