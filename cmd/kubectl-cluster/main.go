// Command kubectl-cluster is the kubectl plugin `kubectl cluster`, the Cluster Administrator of
// Wolfpack failover clusters. Install it on the PATH (or with krew) and run `kubectl cluster
// --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/clock"

	"github.com/wolfpack-ha/wolfpack/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	code := cli.Execute(ctx, cli.NewCommand(streams, clock.RealClock{}), os.Args[1:])
	stop()
	os.Exit(code)
}
