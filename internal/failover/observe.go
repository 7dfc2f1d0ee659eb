package failover

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/graph"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
)

// Objects are the API objects that a group's next step is decided from.
type Objects struct {
	Group *wolfpackv1alpha1.ResourceGroup
	// Resources are the resources of the group's namespace: the group's own, and the others,
	// which tell a dependency on a resource of another group from one on a missing resource.
	Resources []wolfpackv1alpha1.Resource
	// Cluster is the QuorumDisk that spec.cluster names; nil when there is none.
	Cluster *wolfpackv1alpha1.QuorumDisk
}

// Observe turns the objects into what Next decides from, at now; a member node counts as fenced
// when the Membership Manager says so (membership.Fenced): no timer here adds to it. A group being deleted is desired
// Offline, and a move request on it is ignored. A non-nil condition (Valid, False) says that
// the objects are inconsistent together: a dependency cycle, a missing or foreign dependency, no
// such cluster, or an owner named outside the cluster; Next must not be called then.
//
// The Failover Manager and `kubectl cluster move` both decide through it, so that the dry run of
// a move is what the manager would do.
func Observe(objs Objects, now time.Time) (Observed, *metav1.Condition) {
	group := objs.Group
	invalid := func(reason, msg string) *metav1.Condition {
		return &metav1.Condition{Type: wolfpackv1alpha1.ValidCondition, Status: metav1.ConditionFalse, Reason: reason, Message: msg}
	}
	obs := Observed{Now: now, Desired: group.Spec.StateOrDefault(), MoveTo: group.Annotations[wolfpackv1alpha1.MoveToAnnotation],
		Status: group.Status, Fenced: map[string]bool{}, Resources: map[string]ResourceView{}}
	if !group.DeletionTimestamp.IsZero() {
		obs.Desired, obs.MoveTo = wolfpackv1alpha1.DesiredOffline, ""
	}
	for i := range objs.Resources {
		if res := &objs.Resources[i]; res.Spec.Group == group.Name {
			obs.Resources[res.Name] = ViewOf(res, group.Status.OwnerNode)
			obs.Placement.PossibleOwners = append(obs.Placement.PossibleOwners, res.Spec.PossibleOwners)
		}
	}
	cluster := objs.Cluster
	if cluster == nil {
		return obs, invalid(wolfpackv1alpha1.ClusterNotFoundReason, fmt.Sprintf("QuorumDisk %q does not exist", group.Spec.Cluster))
	}
	for _, n := range cluster.Status.Nodes {
		if membership.Fenced(n) {
			obs.Fenced[n.Name] = true
		}
	}
	obs.Placement.Nodes = Nodes(cluster.Status.Nodes, cluster.Spec.PausedNodes)

	plan, problems := graph.Build(group.Name, graph.FromAPI(objs.Resources))
	if len(problems) > 0 {
		msgs := make([]string, 0, len(problems))
		for _, p := range problems {
			msgs = append(msgs, p.Message)
		}
		return obs, invalid(problems[0].Reason, strings.Join(msgs, "; "))
	}
	obs.Plan = plan

	if unknown := unknownNodes(obs.Placement.Nodes, group.Spec.PreferredOwners, obs.Placement.PossibleOwners); len(unknown) > 0 {
		return obs, invalid(wolfpackv1alpha1.UnknownNodeReason, fmt.Sprintf("%s named in preferredOwners or possibleOwners %s not in cluster %s",
			strings.Join(unknown, ", "), plural(len(unknown), "is", "are"), cluster.Name))
	}
	obs.Placement.PreferredOwners = group.Spec.PreferredOwners
	obs.FailoverThreshold = Threshold(group.Spec.FailoverThreshold, len(obs.Placement.Nodes))
	obs.FailoverPeriod = group.Spec.FailoverPeriodOrDefault()
	obs.Failback = Failback{Policy: group.Spec.Failback.Policy,
		WindowStart: group.Spec.Failback.WindowStart, WindowEnd: group.Spec.Failback.WindowEnd}
	return obs, nil
}

// ViewOf is a resource as the Failover Manager sees it, owner being its group's owner node.
func ViewOf(res *wolfpackv1alpha1.Resource, owner string) ResourceView {
	v := ResourceView{State: res.Status.State, Node: res.Status.Node}
	f := res.Status.LastFailure
	v.WantsFailover = res.Status.State == wolfpackv1alpha1.ResourceFailed && f != nil &&
		f.Reason == wolfpackv1alpha1.RestartThresholdExceededReason && f.Node == owner &&
		res.Spec.RestartPolicy.Action == wolfpackv1alpha1.RestartOrFailover
	return v
}

// Summary is the per-resource summary of a group's status, sorted by name.
func Summary(resources map[string]ResourceView) []wolfpackv1alpha1.ResourceSummary {
	out := make([]wolfpackv1alpha1.ResourceSummary, 0, len(resources))
	for name, v := range resources {
		state := v.State
		if state == "" {
			state = wolfpackv1alpha1.ResourceOffline
		}
		out = append(out, wolfpackv1alpha1.ResourceSummary{Name: name, State: state, Node: v.Node})
	}
	slices.SortFunc(out, func(a, b wolfpackv1alpha1.ResourceSummary) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// unknownNodes are the nodes named as preferred or possible owners that are not members.
func unknownNodes(members []Node, preferred []string, possible [][]string) []string {
	known := map[string]bool{}
	for _, m := range members {
		known[m.Name] = true
	}
	var unknown []string
	for _, n := range slices.Concat(append([][]string{preferred}, possible...)...) {
		if !known[n] && !slices.Contains(unknown, n) {
			unknown = append(unknown, n)
		}
	}
	return unknown
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
