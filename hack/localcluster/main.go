// Command localcluster starts a local Kubernetes cluster (package internal/localcluster/cluster:
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler and one kwok process per fake
// node) that keeps running after the command exits, and stops it again:
//
//	localcluster up --dir D --bin-dir B [--nodes a,b,c] [--label k=v]
//	localcluster down --dir D
//	localcluster pause|resume --dir D NAME
//
// up prints `export KUBECONFIG=...` on stdout, and progress on stderr. The label goes to the
// first two nodes, the members of the demo failover cluster; by default the nodes are
// wolfpack-a and wolfpack-b, labelled wolfpack.dev/cluster=demo, and wolfpack-c, unlabelled.
// The binaries come from `hack/k8s-binaries.sh etcd kube-apiserver kube-controller-manager
// kube-scheduler kwok`, whose output is the --bin-dir (default $WOLFPACK_E2E_BINDIR).
//
// pause stops the named process of a running cluster (kube-apiserver, etcd, kwok-<node>, or in
// `make demo`'s directory also manager, agent-<node> and holder-<node>) with SIGSTOP, as a hung
// process; resume continues it with SIGCONT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/wolfpack-ha/wolfpack/internal/localcluster/cluster"
)

// labelledNodes is how many of the nodes, the first ones, get --label.
const labelledNodes = 2

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: localcluster up|down|pause|resume --dir DIR [flags]")
	}
	switch args[0] {
	case "up":
		return up(ctx, args[1:], stdout, stderr)
	case "down":
		return down(args[1:], stdout)
	case "pause", "resume":
		return pauseOrResume(args[0], args[1:], stdout)
	default:
		return fmt.Errorf("unknown command %q: want up, down, pause or resume", args[0])
	}
}

func up(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("up", flag.ContinueOnError)
	dir := flags.String("dir", "", "directory for the cluster's files, logs and state (required)")
	binDir := flags.String("bin-dir", os.Getenv("WOLFPACK_E2E_BINDIR"), "directory printed by hack/k8s-binaries.sh")
	nodes := flags.String("nodes", "wolfpack-a,wolfpack-b,wolfpack-c", "comma-separated node names")
	label := flags.String("label", "wolfpack.dev/cluster=demo", "label key=value for the first two nodes")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *binDir == "" {
		return errors.New("up: --dir and --bin-dir (or WOLFPACK_E2E_BINDIR) are required")
	}
	nodeList, err := parseNodes(*nodes, *label)
	if err != nil {
		return err
	}
	c, err := cluster.Start(ctx, cluster.Options{Dir: *dir, BinDir: *binDir, Nodes: nodeList, Log: stderr})
	if err != nil {
		return err
	}
	// The processes run in their own sessions: they outlive this command.
	_, err = fmt.Fprintf(stdout, "export KUBECONFIG=%s\n# stop it with: go run ./hack/localcluster down --dir %s\n",
		c.Kubeconfig(), c.Dir())
	return err
}

// parseNodes makes the node list: names from a comma-separated list, the label on the first
// labelledNodes of them.
func parseNodes(names, label string) ([]cluster.Node, error) {
	var labels map[string]string
	if label != "" {
		k, v, ok := strings.Cut(label, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: want key=value", label)
		}
		labels = map[string]string{k: v}
	}
	var nodes []cluster.Node
	for name := range strings.SplitSeq(names, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		n := cluster.Node{Name: name}
		if len(nodes) < labelledNodes {
			n.Labels = labels
		}
		nodes = append(nodes, n)
	}
	if len(nodes) == 0 {
		return nil, errors.New("--nodes: no node names")
	}
	return nodes, nil
}

func down(args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("down", flag.ContinueOnError)
	dir := flags.String("dir", "", "directory given to up (required)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("down: --dir is required")
	}
	c, err := cluster.Attach(*dir)
	if errors.Is(err, os.ErrNotExist) {
		_, err = fmt.Fprintf(stdout, "no cluster running in %s\n", *dir)
		return err
	}
	if err != nil {
		return err
	}
	if err := c.Stop(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "stopped the cluster in %s\n", *dir)
	return err
}

// pauseOrResume pauses or resumes a process of the cluster in --dir.
func pauseOrResume(command string, args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet(command, flag.ContinueOnError)
	dir := flags.String("dir", "", "directory given to up (required)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *dir == "" || flags.NArg() != 1 {
		return fmt.Errorf("usage: localcluster %s --dir DIR NAME", command)
	}
	c, err := cluster.Attach(*dir)
	if err != nil {
		return err
	}
	name := flags.Arg(0)
	if command == "pause" {
		err = c.Pause(name)
	} else {
		err = c.Resume(name)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%sd %s\n", command, name)
	return err
}
