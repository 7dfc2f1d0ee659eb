package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// completionTimeout bounds the API calls of a shell completion: a slow answer is no answer.
const completionTimeout = 5 * time.Second

type completeFunc = func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective)

// complete lists candidates from the API for a shell completion, keeping those that start with
// toComplete; nothing on any error.
func complete(g *Globals, list func(ctx context.Context, c client.Client) []string) completeFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		c, err := g.Client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
		defer cancel()
		var out []cobra.Completion
		for _, name := range list(ctx, c) {
			if strings.HasPrefix(name, toComplete) {
				out = append(out, name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// limitArgs completes only while fewer than n arguments are given; n = 0 means no limit.
func limitArgs(n int, f completeFunc) completeFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if n > 0 && len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return f(cmd, args, toComplete)
	}
}

func completeClusters(g *Globals) completeFunc {
	return complete(g, func(ctx context.Context, c client.Client) []string {
		names, _ := clusterNames(ctx, c)
		return names
	})
}

func completeNamespaces(g *Globals) completeFunc {
	return complete(g, func(ctx context.Context, c client.Client) []string {
		var list corev1.NamespaceList
		if c.List(ctx, &list) != nil {
			return nil
		}
		out := make([]string, 0, len(list.Items))
		for _, ns := range list.Items {
			out = append(out, ns.Name)
		}
		return out
	})
}

// completeGroups completes the groups of the namespace, of the --cluster when given.
func completeGroups(g *Globals, n int) completeFunc {
	return limitArgs(n, complete(g, func(ctx context.Context, c client.Client) []string {
		ns, _, err := g.Namespace()
		if err != nil {
			return nil
		}
		var list wolfpackv1alpha1.ResourceGroupList
		if c.List(ctx, &list, client.InNamespace(ns)) != nil {
			return nil
		}
		var out []string
		for _, rg := range list.Items {
			if g.Cluster == "" || rg.Spec.Cluster == g.Cluster {
				out = append(out, rg.Name)
			}
		}
		return out
	}))
}

// completeResources completes the resources of the namespace.
func completeResources(g *Globals, n int) completeFunc {
	return limitArgs(n, complete(g, func(ctx context.Context, c client.Client) []string {
		ns, _, err := g.Namespace()
		if err != nil {
			return nil
		}
		var list wolfpackv1alpha1.ResourceList
		if c.List(ctx, &list, client.InNamespace(ns)) != nil {
			return nil
		}
		out := make([]string, 0, len(list.Items))
		for _, r := range list.Items {
			out = append(out, r.Name)
		}
		return out
	}))
}

// completeNodes completes the nodes of the cluster.
func completeNodes(g *Globals) completeFunc {
	return complete(g, func(ctx context.Context, c client.Client) []string {
		qd, err := g.cluster(ctx, c)
		if err != nil {
			return nil
		}
		return members(ctx, c, qd)
	})
}

// completeNodesArg completes one NODE argument.
func completeNodesArg(g *Globals) completeFunc {
	return limitArgs(1, completeNodes(g))
}
