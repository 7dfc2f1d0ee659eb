// Command demo is `make demo`: Wolfpack on a local cluster of real processes
// (internal/localcluster/env). It starts etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and a kwok per node, installs the Helm chart, runs the manager and a node agent
// per member node (each in its own network namespace, or on loopback addresses of its own where
// the machine has none), applies the sample group, shows `kubectl cluster status`, moves the
// group, crashes its node, and shows the group back on the other node with the timeline from
// `kubectl cluster log`. The cluster is left running, with the stand-in kubelet that runs the
// quorum holders and the nodes' container runtimes handed over to a `demo kubelet` process; `demo
// down` stops it all.
//
//	demo --dir DIR --kube-bin DIR --wolfpack-bin DIR --helm PATH [--network netns|loopback]
//	demo down --dir DIR
//	demo kubelet --dir DIR
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/wolfpack-ha/wolfpack/internal/localcluster/env"
)

type options struct {
	command                                  string // "", "down" or "kubelet"
	dir, kubeBin, wolfpackBin, helm, network string
	verbose                                  bool
}

func main() {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	o, err := parse(os.Args[1:])
	if err == nil {
		switch o.command {
		case "down":
			err = env.Down(o.dir)
		case "kubelet":
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			err = env.RunKubelet(ctx, o.dir, os.Stderr)
			stop()
		default:
			err = run(context.Background(), o)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func parse(args []string) (options, error) {
	var o options
	if len(args) > 0 && (args[0] == "down" || args[0] == "kubelet") {
		o.command, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "bin/demo", "Directory of the cluster: state, logs, kubeconfig, quorum disk.")
	fs.StringVar(&o.kubeBin, "kube-bin", "", "Directory of etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.")
	fs.StringVar(&o.wolfpackBin, "wolfpack-bin", "bin", "Directory of manager, node-agent and kubectl-cluster.")
	fs.StringVar(&o.helm, "helm", "bin/helm", "The helm binary.")
	fs.StringVar(&o.network, "network", env.NetworkAuto,
		"How the nodes are wired: netns (a network namespace each), loopback (loopback addresses of their own), or empty for netns where the machine allows.")
	fs.BoolVar(&o.verbose, "v", false, "Print every step of the set-up.")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if o.command == "" && o.kubeBin == "" {
		return o, errors.New("--kube-bin is required")
	}
	var err error
	o.dir, err = filepath.Abs(o.dir)
	return o, err
}

func run(ctx context.Context, o options) error {
	if err := env.Down(o.dir); err != nil {
		return fmt.Errorf("stopping the previous demo in %s: %w", o.dir, err)
	}
	// A new cluster: etcd's data and the quorum disk (whose header names the old cluster) go too.
	if err := os.RemoveAll(o.dir); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	log := io.Discard
	if o.verbose {
		log = os.Stderr
	}
	stepf("Starting a local cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok nodes "+
		"%s, %s and %s), the Helm chart, the manager, a node agent per member node and the sample group", env.NodeA, env.NodeB, env.NodeC)
	began := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	e, err := env.Start(sctx, env.Options{Dir: o.dir, KubeBin: o.kubeBin, WolfpackBin: o.wolfpackBin, Helm: o.helm,
		Network: o.network, Log: log})
	if err != nil {
		return fmt.Errorf("%w (logs in %s)", err, o.dir)
	}
	handedOver := false
	defer func() {
		if !handedOver {
			e.Detach()
		}
	}()
	fmt.Printf("ready in %s\n", time.Since(began).Round(100*time.Millisecond))
	if err := e.Partitions(); err != nil {
		fmt.Printf("(without network namespaces: the nodes run on loopback addresses of their own, no link is cut, and the sample group has no floating address)\n")
	}
	plugin := func(args ...string) error {
		cmd := exec.CommandContext(ctx, filepath.Join(o.wolfpackBin, "kubectl-cluster"), append(args, "--kubeconfig", e.Kubeconfig())...) //nolint:gosec // our binary
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		fmt.Printf("$ kubectl cluster %s\n", strings.Join(args, " "))
		return cmd.Run()
	}
	if err := plugin("status"); err != nil {
		return err
	}
	g, err := e.Group(ctx)
	if err != nil {
		return err
	}
	from, to := g.Status.OwnerNode, env.NodeA
	if from == env.NodeA {
		to = env.NodeB
	}

	stepf("Moving the group %s from %s to %s: offline in reverse dependency order, online in dependency order", env.Group, from, to)
	if err := plugin("move", env.Group, "-n", env.Namespace, "--to", to, "--wait"); err != nil {
		return err
	}

	links := "its links go dead, "
	if e.Partitions() != nil {
		links = ""
	}
	stepf("Crashing %s: %sits node agent is killed, its kubelet (kwok) stops", to, links)
	crashed := time.Now()
	if err := e.Crash(to); err != nil {
		return err
	}
	if err := e.WaitGroupOnline(ctx, from, 3*time.Minute); err != nil {
		return err
	}
	fmt.Printf("the group is Online on %s %s after the crash\n", from, time.Since(crashed).Round(100*time.Millisecond))
	if err := plugin("status"); err != nil {
		return err
	}
	stepf("The timeline")
	if err := plugin("log", "--since", (time.Since(crashed) + 5*time.Second).Round(time.Second).String()); err != nil {
		return err
	}

	// Holder pods and group pods keep being run after this process exits.
	handedOver = true
	if err := e.Handover(ctx, self, "kubelet", "--dir", o.dir); err != nil {
		return fmt.Errorf("handing the stand-in kubelet over to a process of its own: %w", err)
	}
	stepf("The cluster keeps running (%s stays crashed)", to)
	fmt.Printf("export KUBECONFIG=%s\n", e.Kubeconfig())
	fmt.Printf("kubectl cluster status        # the plugin is %s\n", filepath.Join(o.wolfpackBin, "kubectl-cluster"))
	fmt.Println("make demo-down                # stops everything")
	return nil
}

func stepf(format string, args ...any) {
	fmt.Printf("\n== "+format+"\n", args...)
}
