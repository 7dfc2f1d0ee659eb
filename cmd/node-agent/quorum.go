package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/nodelocal"
	"github.com/wolfpack-ha/wolfpack/internal/quorum"
	"github.com/wolfpack-ha/wolfpack/internal/quorumholder"
)

// quorumOptions are the settings of "node-agent quorum", the quorum holder.
type quorumOptions struct {
	node           string
	cluster        string
	device         string
	format         bool
	slots          int
	logEntries     int
	leaseNamespace string
	localDir       string
	metricsAddr    string
	secureMetrics  bool
	zap            zap.Options
}

func parseQuorumFlags(args []string) (*quorumOptions, error) {
	o := &quorumOptions{}
	fs := flag.NewFlagSet("node-agent quorum", flag.ContinueOnError)
	fs.StringVar(&o.node, "node-name", os.Getenv("NODE_NAME"), "Name of this Node (default $NODE_NAME).")
	fs.StringVar(&o.cluster, "cluster", "", "QuorumDisk whose quorum disk to hold (required).")
	fs.StringVar(&o.device, "device", "",
		"Path of the quorum disk: a block device, or a file (created with --format if it does not exist) (required).")
	fs.BoolVar(&o.format, "format", true,
		"Format the device if it carries no quorum disk header (never one with a damaged or foreign header).")
	fs.IntVar(&o.slots, "slots", quorumholder.DefaultSlots, "Node slots of a disk this holder formats.")
	fs.IntVar(&o.logEntries, "log-entries", quorumholder.DefaultLogEntries, "Quorum log entries of a disk this holder formats.")
	fs.StringVar(&o.leaseNamespace, "lease-namespace", quorumholder.DefaultLeaseNamespace,
		"Namespace of the holder's Lease; the manager's --node-lease-namespace.")
	fs.StringVar(&o.localDir, "local-dir", nodelocal.RootDir(),
		"Directory shared with this node's agent (a hostPath): the node-local channel is its subdirectory named after --cluster "+
			"(default $"+nodelocal.DirEnv+", else "+nodelocal.DefaultDir+"). The holder holds the disk only while the agent's record there is fresh.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", "0", "Address of the metrics endpoint; \"0\" turns it off.")
	fs.BoolVar(&o.secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, to clients the API server authenticates and authorizes.")
	config.RegisterFlags(fs)
	o.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	case o.node == "":
		return nil, errors.New("--node-name (or $NODE_NAME) is required")
	case o.cluster == "":
		return nil, errors.New("--cluster is required: the QuorumDisk whose disk to hold")
	case o.device == "":
		return nil, errors.New("--device is required: the path of the quorum disk")
	case o.localDir == "":
		return nil, errors.New("--local-dir must not be empty: the directory shared with the node agent")
	case o.slots < 1 || o.slots > quorum.MaxSlots:
		return nil, fmt.Errorf("--slots must be 1 to %d, not %d", quorum.MaxSlots, o.slots)
	case o.logEntries < 1 || o.logEntries > quorum.MaxLogEntries:
		return nil, fmt.Errorf("--log-entries must be 1 to %d, not %d", quorum.MaxLogEntries, o.logEntries)
	}
	for _, v := range []struct{ flag, value string }{{"--node-name", o.node}, {"--cluster", o.cluster}} {
		if errs := validation.IsDNS1123Subdomain(v.value); len(errs) > 0 {
			return nil, fmt.Errorf("%s %q: %s", v.flag, v.value, strings.Join(errs, "; "))
		}
	}
	if errs := validation.IsDNS1123Label(o.leaseNamespace); len(errs) > 0 {
		return nil, fmt.Errorf("--lease-namespace %q: %s", o.leaseNamespace, strings.Join(errs, "; "))
	}
	return o, nil
}

// runQuorum is "node-agent quorum": it holds the quorum disk until SIGTERM or SIGINT, and
// returns the exit code.
func runQuorum(ctx context.Context, args []string) int {
	o, err := parseQuorumFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "node-agent quorum:", err)
		return 2
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap)))
	log := ctrl.Log.WithName("quorum")
	if err := o.run(ctx, log); err != nil {
		log.Error(err, "the quorum holder stopped")
		return 1
	}
	return 0
}

// run reads the QuorumDisk, opens the device and runs the holder.
func (o *quorumOptions) run(ctx context.Context, log logr.Logger) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("no Kubernetes client configuration (--kubeconfig, $KUBECONFIG or in-cluster): %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: newScheme()})
	if err != nil {
		return err
	}
	qd := &wolfpackv1alpha1.QuorumDisk{}
	if err := c.Get(ctx, client.ObjectKey{Name: o.cluster}, qd); err != nil {
		return fmt.Errorf("reading QuorumDisk %s (--cluster): %w", o.cluster, err)
	}
	duration := qd.Spec.LeaseDurationOrDefault()

	dev, err := openQuorumDevice(o.device, o.format, quorum.Layout{Slots: o.slots, LogEntries: o.logEntries}.Size())
	if err != nil {
		return err
	}
	defer func() { _ = dev.Close() }()
	if dev.Direct() {
		log.Info("opened the quorum device", "device", o.device, "mode", dev.Mode())
	} else {
		log.Info("opened the quorum device WITHOUT O_DIRECT: reads go through this host's page cache, "+
			"so the device must not be shared with another host", "device", o.device, "mode", dev.Mode())
	}

	local, err := nodelocal.OpenDir(o.localDir, o.cluster)
	if err != nil {
		return fmt.Errorf("--local-dir %s: %w", o.localDir, err)
	}
	localNode, err := nodelocal.SystemNode(o.node)
	if err != nil {
		return err
	}
	log.Info("the node-local channel to the node agent", "dir", local.Path(), "bootID", localNode.BootID)

	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	// Events are sent on a context of their own, so that the one the holder records on
	// shutdown, after ctx has ended, is sent too.
	eventsCtx, stopEvents := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEvents()
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: clientset.EventsV1()})
	if err := broadcaster.StartRecordingToSinkWithContext(eventsCtx); err != nil {
		return fmt.Errorf("recording Events: %w", err)
	}
	defer broadcaster.Shutdown()
	if err := o.serveMetrics(ctx, cfg, log); err != nil {
		return err
	}

	h, err := quorumholder.New(quorumholder.Config{
		Node: o.node, Cluster: o.cluster, ClusterUID: qd.UID, Device: dev, Format: o.format,
		Slots: o.slots, LogEntries: o.logEntries, LeaseDuration: duration, LeaseNamespace: o.leaseNamespace,
		Client: c, Clock: clock.RealClock{}, Recorder: broadcaster.NewRecorder(newScheme(), "wolfpack-quorum-holder"),
		Logger: log, Local: local, LocalNode: localNode,
	})
	if err != nil {
		return err
	}
	log.Info("holding the quorum disk", "cluster", o.cluster, "uid", qd.UID, "node", o.node, "leaseDuration", duration)
	err = h.Run(ctx)
	// The broadcaster sends Events in the background and cannot be flushed: give the last
	// ones a moment before the process exits (the holder pod's grace period is 10s).
	t := time.NewTimer(eventFlushDelay)
	defer t.Stop()
	<-t.C
	return err
}

// eventFlushDelay is how long "node-agent quorum" waits before it exits, for its last Events.
const eventFlushDelay = time.Second

// serveMetrics starts the metrics endpoint in the background, unless it is off.
func (o *quorumOptions) serveMetrics(ctx context.Context, cfg *rest.Config, log logr.Logger) error {
	if o.metricsAddr == "0" {
		return nil
	}
	opts := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.secureMetrics,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}}
	if o.secureMetrics {
		opts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	srv, err := metricsserver.NewServer(opts, cfg, httpClient)
	if err != nil {
		return fmt.Errorf("--metrics-bind-address %s: %w", o.metricsAddr, err)
	}
	go func() {
		if err := srv.Start(ctx); err != nil {
			log.Error(err, "the metrics endpoint stopped")
		}
	}()
	return nil
}

// openQuorumDevice opens path as the quorum disk. A path that does not exist is created as a
// plain file of size bytes, when the holder may format it; never otherwise.
func openQuorumDevice(path string, format bool, size int64) (*quorum.FileDevice, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !format:
		return nil, fmt.Errorf("--device %s does not exist (and --format=false: a file is created only to be formatted)", path)
	case errors.Is(err, fs.ErrNotExist):
		if err := createDeviceFile(path, size); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("--device %s: %w", path, err)
	case st.IsDir():
		return nil, fmt.Errorf("--device %s is a directory, not a block device or a file", path)
	}
	dev, err := quorum.OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("--device %s: %w", path, err)
	}
	return dev, nil
}

// createDeviceFile creates path with size zero bytes; if another process created it first,
// that one is used.
func createDeviceFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating --device %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return fmt.Errorf("creating --device %s of %d bytes: %w", path, size, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("creating --device %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("creating --device %s: %w", path, err)
	}
	return nil
}
