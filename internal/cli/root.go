// Package cli is `kubectl cluster`, Wolfpack's Cluster Administrator: a kubectl plugin that shows
// a failover cluster at a glance and drives it (move, online, offline, restart, pause, resume)
// through the Wolfpack API objects, as MSCS's Cluster Administrator drives the Cluster Service.
//
// Every command is an Options struct with Complete, Validate and Run, built on cli-runtime's
// kubeconfig flags; output goes to the IO streams it is given and times are read from the clock
// it is given, so that tests capture the output and pin the time.
package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// scheme holds the Kubernetes types and Wolfpack's.
var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(wolfpackv1alpha1.AddToScheme(scheme))
}

// FieldManager is the field manager of every change kubectl cluster makes.
const FieldManager = "kubectl-cluster"

// Globals are the flags and dependencies every command shares.
type Globals struct {
	// ConfigFlags are kubectl's connection flags (--kubeconfig, --context, -n, ...), without
	// --cluster, which names the Wolfpack cluster here.
	ConfigFlags *genericclioptions.ConfigFlags
	// Cluster is --cluster: the QuorumDisk to work on.
	Cluster string
	// Streams are where commands read and write.
	Streams genericiooptions.IOStreams
	// Clock tells the time for ages and --since.
	Clock clock.PassiveClock

	c client.Client
}

// Client returns a client of the API server that the kubeconfig flags point at, with the
// Wolfpack types, made once.
func (g *Globals) Client() (client.Client, error) {
	if g.c != nil {
		return g.c, nil
	}
	cfg, err := g.ConfigFlags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	cfg.UserAgent = "kubectl-cluster"
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the API server: %w", err)
	}
	g.c = c
	return c, nil
}

// Namespace is the namespace of -n, else the kubeconfig context's, else "default"; explicit says
// whether -n was given.
func (g *Globals) Namespace() (ns string, explicit bool, err error) {
	ns, _, err = g.ConfigFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", false, fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	return ns, g.ConfigFlags.Namespace != nil && *g.ConfigFlags.Namespace != "", nil
}

// NewCommand returns `kubectl cluster` with every subcommand, writing to streams and reading
// the time from clk.
func NewCommand(streams genericiooptions.IOStreams, clk clock.PassiveClock) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	// --cluster names the Wolfpack cluster (a QuorumDisk), not a kubeconfig cluster; --context
	// still selects the kubeconfig entry.
	flags.ClusterName = nil
	g := &Globals{ConfigFlags: flags, Streams: streams, Clock: clk}

	cmd := &cobra.Command{
		Use: "kubectl-cluster",
		// kubectl runs the plugin kubectl-cluster as "kubectl cluster".
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl cluster"},
		Short:       "Administer Wolfpack failover clusters",
		Long: `kubectl cluster is the Cluster Administrator of Wolfpack failover clusters: it shows the
cluster's nodes, groups and resources, moves groups between nodes, takes them online and offline,
pauses and resumes nodes, prints the cluster's event log and checks that a cluster is set up right.

A cluster is a QuorumDisk; --cluster names it, and may be left out when there is only one.
Groups and resources live in namespaces: -n selects one, -A (where offered) all of them.`,
		Example: `  # The cluster at a glance
  kubectl cluster status

  # Move the group sql to node demo-2 and follow the move to its end
  kubectl cluster move sql --to demo-2 --wait -n prod

  # What a move would do, without doing it
  kubectl cluster move sql --to demo-2 --dry-run -n prod`,
		SilenceUsage: true,
		// Execute prints errors, once.
		SilenceErrors: true,
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	flags.AddFlags(cmd.PersistentFlags())
	cmd.PersistentFlags().StringVar(&g.Cluster, "cluster", "", "The Wolfpack cluster (QuorumDisk) to work on; may be left out when there is only one")
	_ = cmd.RegisterFlagCompletionFunc("cluster", completeClusters(g))
	_ = cmd.RegisterFlagCompletionFunc("namespace", completeNamespaces(g))

	cmd.AddGroup(&cobra.Group{ID: "show", Title: "Show the cluster:"}, &cobra.Group{ID: "drive", Title: "Drive the cluster:"})
	for _, c := range []*cobra.Command{
		newStatusCommand(g), newNodesCommand(g), newGroupsCommand(g), newResourcesCommand(g),
		newDependsCommand(g), newLogCommand(g), newValidateCommand(g),
	} {
		c.GroupID = "show"
		cmd.AddCommand(c)
	}
	for _, c := range []*cobra.Command{
		newMoveCommand(g), newStateCommand(g, wolfpackv1alpha1.DesiredOnline), newStateCommand(g, wolfpackv1alpha1.DesiredOffline),
		newRestartCommand(g), newPauseCommand(g), newResumeCommand(g),
	} {
		c.GroupID = "drive"
		cmd.AddCommand(c)
	}
	return cmd
}

// Execute runs cmd with args and prints its error, if any, the way kubectl does; it returns the
// process exit code.
func Execute(ctx context.Context, cmd *cobra.Command, args []string) int {
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if !errors.Is(err, errSilent) {
		fmt.Fprintln(cmd.ErrOrStderr(), "error:", err)
	}
	return 1
}

// errSilent ends a command with a non-zero exit code after it has said why itself.
var errSilent = errors.New("failed")

// options are a command's options, completed from the flags and arguments, validated, then run.
type options interface {
	Complete(cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// run runs the three steps of a command's options.
func run(o options) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}

// exactlyOne is a cobra argument check naming what the one argument is.
func exactlyOne(what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("expected one %s, got %d arguments%s", what, len(args), listed(args))
		}
		return nil
	}
}

func listed(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return ": " + strings.Join(slices.Clone(args), " ")
}
