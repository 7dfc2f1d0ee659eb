package cli

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/resourcetype"
)

// loadCluster reads the cluster of --cluster (see cluster) and its groups in namespace ("" for
// all) with their resources.
func (g *Globals) loadCluster(ctx context.Context, namespace string) (client.Client, *snapshot, error) {
	c, err := g.Client()
	if err != nil {
		return nil, nil, err
	}
	qd, err := g.cluster(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	s, err := load(ctx, c, qd, namespace)
	return c, s, err
}

// cluster returns the QuorumDisk of --cluster, or the only one there is.
func (g *Globals) cluster(ctx context.Context, c client.Client) (*wolfpackv1alpha1.QuorumDisk, error) {
	if g.Cluster != "" {
		qd := &wolfpackv1alpha1.QuorumDisk{}
		err := c.Get(ctx, client.ObjectKey{Name: g.Cluster}, qd)
		if apierrors.IsNotFound(err) {
			names, _ := clusterNames(ctx, c)
			return nil, fmt.Errorf("cluster %q not found (clusters: %s)", g.Cluster, orNone(names))
		}
		if err != nil {
			return nil, fmt.Errorf("reading cluster %q: %w", g.Cluster, err)
		}
		return qd, nil
	}
	var list wolfpackv1alpha1.QuorumDiskList
	if err := c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing clusters (QuorumDisks): %w", err)
	}
	switch len(list.Items) {
	case 0:
		return nil, fmt.Errorf("no Wolfpack cluster found: there is no QuorumDisk (is Wolfpack installed, and is this the right kubeconfig context?)")
	case 1:
		return &list.Items[0], nil
	}
	names := make([]string, 0, len(list.Items))
	for _, qd := range list.Items {
		names = append(names, qd.Name)
	}
	slices.Sort(names)
	return nil, fmt.Errorf("there are %d clusters (%s): choose one with --cluster", len(names), strings.Join(names, ", "))
}

// clusterOfGroup returns the cluster of group, checking it against --cluster.
func (g *Globals) clusterOfGroup(ctx context.Context, c client.Client, group *wolfpackv1alpha1.ResourceGroup) (*wolfpackv1alpha1.QuorumDisk, error) {
	if g.Cluster != "" && g.Cluster != group.Spec.Cluster {
		return nil, fmt.Errorf("group %s/%s belongs to cluster %q, not %q", group.Namespace, group.Name, group.Spec.Cluster, g.Cluster)
	}
	qd := &wolfpackv1alpha1.QuorumDisk{}
	if err := c.Get(ctx, client.ObjectKey{Name: group.Spec.Cluster}, qd); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("group %s/%s names cluster %q, which does not exist", group.Namespace, group.Name, group.Spec.Cluster)
		}
		return nil, fmt.Errorf("reading cluster %q: %w", group.Spec.Cluster, err)
	}
	return qd, nil
}

func clusterNames(ctx context.Context, c client.Client) ([]string, error) {
	var list wolfpackv1alpha1.QuorumDiskList
	if err := c.List(ctx, &list); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(list.Items))
	for _, qd := range list.Items {
		names = append(names, qd.Name)
	}
	slices.Sort(names)
	return names, nil
}

// group reads the ResourceGroup namespace/name, saying which groups there are when it does not
// exist.
func group(ctx context.Context, c client.Client, namespace, name string) (*wolfpackv1alpha1.ResourceGroup, error) {
	g := &wolfpackv1alpha1.ResourceGroup{}
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, g)
	if apierrors.IsNotFound(err) {
		var list wolfpackv1alpha1.ResourceGroupList
		names := []string{}
		if c.List(ctx, &list, client.InNamespace(namespace)) == nil {
			for _, g := range list.Items {
				names = append(names, g.Name)
			}
			slices.Sort(names)
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("group %q not found in namespace %q, which has no groups (-n selects the namespace)", name, namespace)
		}
		return nil, fmt.Errorf("group %q not found in namespace %q (groups there: %s)", name, namespace, strings.Join(names, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("reading group %s/%s: %w", namespace, name, err)
	}
	return g, nil
}

// resource reads the Resource namespace/name, saying which resources there are when it does not
// exist.
func resource(ctx context.Context, c client.Client, namespace, name string) (*wolfpackv1alpha1.Resource, error) {
	r := &wolfpackv1alpha1.Resource{}
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, r)
	if apierrors.IsNotFound(err) {
		var list wolfpackv1alpha1.ResourceList
		names := []string{}
		if c.List(ctx, &list, client.InNamespace(namespace)) == nil {
			for _, r := range list.Items {
				names = append(names, r.Name)
			}
			slices.Sort(names)
		}
		return nil, fmt.Errorf("resource %q not found in namespace %q (resources there: %s)", name, namespace, orNone(names))
	}
	if err != nil {
		return nil, fmt.Errorf("reading resource %s/%s: %w", namespace, name, err)
	}
	return r, nil
}

// groupsOf lists the groups of cluster in namespace ("" for all), by namespace and name.
func groupsOf(ctx context.Context, c client.Client, cluster, namespace string) ([]wolfpackv1alpha1.ResourceGroup, error) {
	var list wolfpackv1alpha1.ResourceGroupList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing groups: %w", err)
	}
	out := make([]wolfpackv1alpha1.ResourceGroup, 0, len(list.Items))
	for _, g := range list.Items {
		if g.Spec.Cluster == cluster {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b wolfpackv1alpha1.ResourceGroup) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

// resourcesIn lists the Resources of namespace ("" for all), by namespace, group and name.
func resourcesIn(ctx context.Context, c client.Client, namespace string) ([]wolfpackv1alpha1.Resource, error) {
	var list wolfpackv1alpha1.ResourceList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing resources: %w", err)
	}
	slices.SortFunc(list.Items, func(a, b wolfpackv1alpha1.Resource) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Spec.Group, b.Spec.Group), cmp.Compare(a.Name, b.Name))
	})
	return list.Items, nil
}

// ofGroup returns the resources of group namespace/name among resources.
func ofGroup(resources []wolfpackv1alpha1.Resource, namespace, name string) []wolfpackv1alpha1.Resource {
	var out []wolfpackv1alpha1.Resource
	for _, r := range resources {
		if r.Namespace == namespace && r.Spec.Group == name {
			out = append(out, r)
		}
	}
	return out
}

// selectorString is the node selector as kubectl's -l takes it.
func selectorString(qd *wolfpackv1alpha1.QuorumDisk) string {
	return membership.Selector(qd).String()
}

// members are the cluster's nodes: those its membership lists and those its node selector
// selects, by name. Nodes that cannot be listed are left out.
func members(ctx context.Context, c client.Client, qd *wolfpackv1alpha1.QuorumDisk) []string {
	var out []string
	for _, n := range qd.Status.Nodes {
		out = append(out, n.Name)
	}
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes, client.MatchingLabelsSelector{Selector: membership.Selector(qd)}); err == nil {
		for _, n := range nodes.Items {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// notMember is the error for a node outside the cluster.
func notMember(qd *wolfpackv1alpha1.QuorumDisk, node string, nodes []string) error {
	return fmt.Errorf("node %q is not a node of cluster %q (nodes: %s)", node, qd.Name, orNone(nodes))
}

// nodeStatus is node's entry in the cluster's membership.
func nodeStatus(qd *wolfpackv1alpha1.QuorumDisk, node string) (wolfpackv1alpha1.NodeStatus, bool) {
	for _, n := range qd.Status.Nodes {
		if n.Name == node {
			return n, true
		}
	}
	return wolfpackv1alpha1.NodeStatus{}, false
}

// paused is node's entry in spec.pausedNodes.
func paused(qd *wolfpackv1alpha1.QuorumDisk, node string) (wolfpackv1alpha1.PausedNode, bool) {
	for _, p := range qd.Spec.PausedNodes {
		if p.Name == node {
			return p, true
		}
	}
	return wolfpackv1alpha1.PausedNode{}, false
}

// resourceType names the type of r, with the kind of a workloadRef.
func resourceType(r *wolfpackv1alpha1.Resource) string {
	if w := r.Spec.Workload; w != nil && w.WorkloadRef != nil {
		return "workload(" + string(w.WorkloadRef.Kind) + ")"
	}
	return resourcetype.Type(r)
}

func dependsOn(r *wolfpackv1alpha1.Resource) []string {
	out := make([]string, 0, len(r.Spec.DependsOn))
	for _, d := range r.Spec.DependsOn {
		out = append(out, d.Name)
	}
	return out
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}
