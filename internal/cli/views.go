package cli

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// NodeInfo is one member node, as status and nodes print it.
type NodeInfo struct {
	Name string `json:"name"`
	// State is Up, Down, Paused or Joining; Unknown for a selected node that the membership does
	// not list yet.
	State       string     `json:"state"`
	Since       *time.Time `json:"since,omitempty"`
	Networks    []string   `json:"networks,omitempty"`
	Paused      bool       `json:"paused,omitempty"`
	Drain       bool       `json:"drain,omitempty"`
	QuorumOwner bool       `json:"quorumOwner,omitempty"`
	// Groups are the groups the node owns, as namespace/name.
	Groups  []string `json:"groups,omitempty"`
	Message string   `json:"message,omitempty"`
}

// OperationInfo is a group's operation in progress, or its last one.
type OperationInfo struct {
	Kind      string     `json:"kind"`
	From      string     `json:"from,omitempty"`
	To        string     `json:"to,omitempty"`
	Phase     string     `json:"phase"`
	Wave      int32      `json:"wave"`
	StartedAt *time.Time `json:"startedAt,omitempty"`
	Message   string     `json:"message,omitempty"`
}

// GroupInfo is one group, as status and groups print it.
type GroupInfo struct {
	Namespace       string         `json:"namespace"`
	Name            string         `json:"name"`
	DesiredState    string         `json:"desiredState"`
	State           string         `json:"state,omitempty"`
	OwnerNode       string         `json:"ownerNode,omitempty"`
	Epoch           int64          `json:"epoch"`
	Priority        int32          `json:"priority"`
	PreferredOwners []string       `json:"preferredOwners,omitempty"`
	ResourcesOnline int            `json:"resourcesOnline"`
	ResourcesTotal  int            `json:"resourcesTotal"`
	Operation       *OperationInfo `json:"operation,omitempty"`
	// Problems are the messages of the group's False Valid, Placed and FailoverAllowed conditions.
	Problems  []string       `json:"problems,omitempty"`
	Resources []ResourceInfo `json:"resources,omitempty"`
}

// FailureInfo is a resource's last failure.
type FailureInfo struct {
	Time    *time.Time `json:"time,omitempty"`
	Node    string     `json:"node,omitempty"`
	Reason  string     `json:"reason"`
	Message string     `json:"message,omitempty"`
}

// ResourceInfo is one resource, as status and resources print it.
type ResourceInfo struct {
	Namespace   string       `json:"namespace"`
	Group       string       `json:"group"`
	Name        string       `json:"name"`
	Type        string       `json:"type"`
	State       string       `json:"state,omitempty"`
	Node        string       `json:"node,omitempty"`
	DependsOn   []string     `json:"dependsOn,omitempty"`
	Restarts    int32        `json:"restarts"`
	LastFailure *FailureInfo `json:"lastFailure,omitempty"`
}

// snapshot is a cluster with its groups and their resources, read once.
type snapshot struct {
	qd        *wolfpackv1alpha1.QuorumDisk
	groups    []wolfpackv1alpha1.ResourceGroup
	resources []wolfpackv1alpha1.Resource
}

// load reads the cluster's groups in namespace ("" for all) and their resources.
func load(ctx context.Context, c client.Client, qd *wolfpackv1alpha1.QuorumDisk, namespace string) (*snapshot, error) {
	groups, err := groupsOf(ctx, c, qd.Name, namespace)
	if err != nil {
		return nil, err
	}
	all, err := resourcesIn(ctx, c, namespace)
	if err != nil {
		return nil, err
	}
	s := &snapshot{qd: qd, groups: groups}
	for _, g := range groups {
		s.resources = append(s.resources, ofGroup(all, g.Namespace, g.Name)...)
	}
	return s, nil
}

// nodes are the cluster's member nodes: the membership's, then selected nodes it does not list.
func (s *snapshot) nodes(selected []string) []NodeInfo {
	owned := map[string][]string{}
	for _, g := range s.groups {
		if g.Status.OwnerNode != "" {
			owned[g.Status.OwnerNode] = append(owned[g.Status.OwnerNode], g.Namespace+"/"+g.Name)
		}
	}
	var out []NodeInfo
	add := func(n NodeInfo) {
		p, isPaused := paused(s.qd, n.Name)
		n.Paused, n.Drain = isPaused, p.Drain
		n.QuorumOwner = s.qd.Status.Owner == n.Name
		n.Groups = owned[n.Name]
		out = append(out, n)
	}
	for _, n := range s.qd.Status.Nodes {
		add(NodeInfo{Name: n.Name, State: string(n.State), Since: timePtr(n.Since.Time), Networks: n.ReachableNetworks, Message: n.Message})
	}
	for _, name := range selected {
		if _, ok := nodeStatus(s.qd, name); !ok {
			add(NodeInfo{Name: name, State: "Unknown", Message: "not yet in the cluster's membership"})
		}
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// groupInfos describes the groups, with their resources when withResources.
func (s *snapshot) groupInfos(withResources bool) []GroupInfo {
	out := make([]GroupInfo, 0, len(s.groups))
	for i := range s.groups {
		g := &s.groups[i]
		info := GroupInfo{
			Namespace: g.Namespace, Name: g.Name, DesiredState: string(g.Spec.State), State: string(g.Status.State),
			OwnerNode: g.Status.OwnerNode, Epoch: g.Status.Epoch, Priority: g.Spec.PriorityOrDefault(),
			PreferredOwners: g.Spec.PreferredOwners, Operation: operationInfo(g.Status.Operation),
		}
		for _, r := range ofGroup(s.resources, g.Namespace, g.Name) {
			info.ResourcesTotal++
			if r.Status.State == wolfpackv1alpha1.ResourceOnline && (g.Status.OwnerNode == "" || r.Status.Node == g.Status.OwnerNode) {
				info.ResourcesOnline++
			}
			if withResources {
				info.Resources = append(info.Resources, resourceInfo(&r))
			}
		}
		for _, t := range []string{wolfpackv1alpha1.ValidCondition, wolfpackv1alpha1.PlacedCondition, wolfpackv1alpha1.FailoverAllowedCondition} {
			if c := findCondition(g.Status.Conditions, t); c != nil && c.Status == metav1.ConditionFalse {
				info.Problems = append(info.Problems, fmt.Sprintf("%s: %s", c.Reason, c.Message))
			}
		}
		out = append(out, info)
	}
	return out
}

func operationInfo(op *wolfpackv1alpha1.GroupOperation) *OperationInfo {
	if op == nil {
		return nil
	}
	return &OperationInfo{Kind: string(op.Kind), From: op.From, To: op.To, Phase: string(op.Phase), Wave: op.Wave,
		StartedAt: timePtr(op.StartedAt.Time), Message: op.Message}
}

func resourceInfo(r *wolfpackv1alpha1.Resource) ResourceInfo {
	info := ResourceInfo{Namespace: r.Namespace, Group: r.Spec.Group, Name: r.Name, Type: resourceType(r),
		State: string(r.Status.State), Node: r.Status.Node, DependsOn: dependsOn(r), Restarts: r.Status.Restarts}
	if f := r.Status.LastFailure; f != nil {
		info.LastFailure = &FailureInfo{Time: timePtr(f.Time.Time), Node: f.Node, Reason: f.Reason, Message: f.Message}
	}
	return info
}

func findCondition(conditions []metav1.Condition, t string) *metav1.Condition {
	for i := range conditions {
		if conditions[i].Type == t {
			return &conditions[i]
		}
	}
	return nil
}

// resourcesSummary is the RESOURCES column: "3/5 Online".
func (g GroupInfo) resourcesSummary() string {
	if g.ResourcesTotal == 0 {
		return "none"
	}
	return fmt.Sprintf("%d/%d Online", g.ResourcesOnline, g.ResourcesTotal)
}

// operationSummary is the OPERATION column: "Move node-a->node-b (BringingOnline)".
func (g GroupInfo) operationSummary() string {
	op := g.Operation
	if op == nil {
		return ""
	}
	route := ""
	switch {
	case op.From != "" && op.To != "":
		route = op.From + "->" + op.To
	case op.To != "":
		route = "to " + op.To
	case op.From != "":
		route = "from " + op.From
	}
	return fmt.Sprintf("%s %s (%s)", op.Kind, route, op.Phase)
}
