// Command manager is Wolfpack's central Cluster Service: one leader-elected process that runs the
// Failover Manager and Resource Manager controllers over the Wolfpack API.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/controllers"
	"github.com/wolfpack-ha/wolfpack/internal/arbitration"
)

// The manager records Events, and its metrics endpoint asks the API server to authenticate and
// authorize each scrape. Its leader election Role is in config/rbac/leader_election_role.yaml.
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// LeaderElectionID names the Lease through which manager replicas elect their leader.
const LeaderElectionID = "wolfpack-manager.wolfpack.dev"

// options are the manager's command-line settings.
type options struct {
	metricsAddr             string
	secureMetrics           bool
	probeAddr               string
	leaderElect             bool
	leaderElectionNamespace string
	leaseDuration           time.Duration
	renewDeadline           time.Duration
	retryPeriod             time.Duration
	enableHTTP2             bool
	fenceGrace              time.Duration
	leaseNamespace          string
	holderImage             string
	holderPullPolicy        string
	holderServiceAccount    string
	concurrency             int
	qps                     float64
	burst                   int
	zap                     zap.Options
}

func parseFlags(args []string) (*options, error) {
	o := &options{zap: zap.Options{Development: false}}
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443",
		"Address of the metrics endpoint; \"0\" turns it off.")
	fs.BoolVar(&o.secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, to clients the API server authenticates and authorizes.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz probes.")
	fs.BoolVar(&o.leaderElect, "leader-elect", true,
		"Elect a leader among manager replicas so that only one acts at a time.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "",
		"Namespace of the leader election Lease; defaults to the manager's own namespace in a cluster.")
	fs.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", 15*time.Second,
		"How long a non-leader waits before it may take over an unrenewed leadership.")
	fs.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", 10*time.Second,
		"How long the leader keeps trying to renew before it gives up leadership.")
	fs.DurationVar(&o.retryPeriod, "leader-elect-retry-period", 2*time.Second,
		"How often leader election clients retry.")
	fs.BoolVar(&o.enableHTTP2, "enable-http2", false,
		"Serve metrics over HTTP/2 as well (off because of the HTTP/2 rapid reset CVEs).")
	fs.DurationVar(&o.fenceGrace, "fence-grace", 0,
		"Extra margin, at least 0, added to the silence after which a node whose Lease ran out counts as "+
			"fenced (its heartbeat detection time + interval + fence budget + renew interval, by the manager's "+
			"clock). It fences nothing by itself: a node counts as fenced only when its agent reports its fence "+
			"done or that silence has passed.")
	fs.StringVar(&o.leaseNamespace, "node-lease-namespace", "wolfpack-system",
		"Namespace in which the node agents keep their Leases (where the node-agent DaemonSet runs).")
	fs.StringVar(&o.holderImage, "quorum-holder-image", "",
		"Image of the quorum holder pods (the node-agent image); empty runs none, for clusters whose "+
			"quorum holder is run some other way.")
	fs.StringVar(&o.holderPullPolicy, "quorum-holder-pull-policy", "",
		"Pull policy of the quorum holder's image: Always, IfNotPresent or Never (empty: Kubernetes' default).")
	fs.StringVar(&o.holderServiceAccount, "quorum-holder-service-account", arbitration.HolderServiceAccount,
		"ServiceAccount of the quorum holder pods, in the namespace of each QuorumDisk's claim.")
	fs.IntVar(&o.concurrency, "concurrency", 4,
		"How many groups, and twice as many resources, are reconciled at once.")
	fs.Float64Var(&o.qps, "kube-api-qps", 50, "Sustained rate of requests to the API server.")
	fs.IntVar(&o.burst, "kube-api-burst", 100, "Burst of requests to the API server.")
	o.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	switch corev1.PullPolicy(o.holderPullPolicy) {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return nil, fmt.Errorf("--quorum-holder-pull-policy %q: want Always, IfNotPresent or Never", o.holderPullPolicy)
	}
	if o.concurrency < 1 {
		return nil, fmt.Errorf("--concurrency must be at least 1, not %d", o.concurrency)
	}
	if o.fenceGrace < 0 {
		return nil, fmt.Errorf("--fence-grace must be at least 0 (an extra margin), not %s", o.fenceGrace)
	}
	if o.leaderElect && o.renewDeadline >= o.leaseDuration {
		return nil, fmt.Errorf("--leader-elect-renew-deadline (%s) must be shorter than --leader-elect-lease-duration (%s)",
			o.renewDeadline, o.leaseDuration)
	}
	return o, nil
}

// newScheme holds the built-in types and the Wolfpack API.
func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(wolfpackv1alpha1.AddToScheme(s))
	return s
}

// newManager builds the manager with its controllers, probes, metrics and leader election.
func newManager(cfg *rest.Config, o *options) (ctrl.Manager, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	var tlsOpts []func(*tls.Config)
	if !o.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{
		BindAddress:   o.metricsAddr,
		SecureServing: o.secureMetrics,
		TLSOpts:       tlsOpts,
	}
	if o.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        newScheme(),
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       o.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &o.leaseDuration,
		RenewDeadline:                 &o.renewDeadline,
		RetryPeriod:                   &o.retryPeriod,
		Cache:                         controllers.CacheOptions(o.leaseNamespace),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	if err := controllers.Setup(mgr, controllers.Options{
		FenceGrace: o.fenceGrace, Concurrency: o.concurrency, LeaseNamespace: o.leaseNamespace,
		Holder: arbitration.PodOptions{Image: o.holderImage, PullPolicy: corev1.PullPolicy(o.holderPullPolicy),
			ServiceAccount: o.holderServiceAccount},
	}); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("adding the readiness check: %w", err)
	}
	return mgr, nil
}

// run starts the manager and blocks until ctx ends or the manager fails.
func run(ctx context.Context, cfg *rest.Config, o *options) error {
	mgr, err := newManager(cfg, o)
	if err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("starting the manager",
		"leaderElection", o.leaderElect, "metrics", o.metricsAddr, "probes", o.probeAddr)
	return mgr.Start(ctx)
}

func main() {
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
	if err := run(ctrl.SetupSignalHandler(), cfg, o); err != nil {
		ctrl.Log.Error(err, "manager stopped")
		os.Exit(1)
	}
}
