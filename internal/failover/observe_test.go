package failover

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
)

// objects are the sample group "sql" in namespace "ns", its resources (the dependency chain
// disk <- ip <- server) and cluster "prod" with nodes a (Up) and b (Down for a minute, fenced).
func objects() Objects {
	res := func(name string, deps ...string) wp.Resource {
		return *builder.Resource("ns", name).Group("sql").DependsOn(deps...).Obj()
	}
	return Objects{
		Group:     builder.Group("ns", "sql").Generation(3).Cluster("prod").DesiredState(wp.DesiredOnline).PreferredOwners("a", "b").Obj(),
		Resources: []wp.Resource{res("disk"), res("ip", "disk"), res("server", "ip")},
		Cluster: builder.QuorumDisk("prod").Nodes(
			wp.NodeStatus{Name: "a", State: wp.NodeUp}, wp.NodeStatus{Name: "b", State: wp.NodeDown, Since: metav1.NewTime(t0.Add(-time.Minute)), Fenced: true}).Obj(),
	}
}

func TestObserve(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(*Objects)
		check  func(Observed) string // what is wrong, if anything
		reason string                // of the Valid condition when invalid
		says   string
	}{
		{name: "consistent", check: func(o Observed) string {
			if len(o.Plan.Waves) != 3 || len(o.Resources) != 3 || o.FailoverThreshold != 1 || o.FailoverPeriod != 6*time.Hour ||
				!o.Fenced["b"] || o.Fenced["a"] || o.Desired != wp.DesiredOnline {
				return fmt.Sprintf("observed %+v", o)
			}
			return ""
		}},
		{name: "a node Down for an hour is not fenced without the Membership Manager's verdict", change: func(o *Objects) {
			o.Cluster.Status.Nodes[1] = wp.NodeStatus{Name: "b", State: wp.NodeDown, Since: metav1.NewTime(t0.Add(-time.Hour))}
		}, check: func(o Observed) string {
			if o.Fenced["b"] {
				return "b counts as fenced on time alone"
			}
			return ""
		}},
		{name: "a node that is Up and reports it failed itself is not fenced for failover", change: func(o *Objects) {
			o.Cluster.Status.Nodes[0].Fenced = true
		}, check: func(o Observed) string {
			if o.Fenced["a"] {
				return "an Up node counts as fenced"
			}
			return ""
		}},
		{name: "a move request is read", change: func(o *Objects) { o.Group.Annotations = map[string]string{wp.MoveToAnnotation: "b"} },
			check: func(o Observed) string {
				if o.MoveTo != "b" {
					return fmt.Sprintf("MoveTo %q", o.MoveTo)
				}
				return ""
			}},
		{name: "a group being deleted is desired Offline, and its move request ignored", change: func(o *Objects) {
			o.Group.DeletionTimestamp = &metav1.Time{Time: t0}
			o.Group.Annotations = map[string]string{wp.MoveToAnnotation: "b"}
		}, check: func(o Observed) string {
			if o.Desired != wp.DesiredOffline || o.MoveTo != "" {
				return fmt.Sprintf("desired %s, move to %q", o.Desired, o.MoveTo)
			}
			return ""
		}},
		{name: "resources of other groups are not the group's", change: func(o *Objects) {
			other := o.Resources[0].DeepCopy()
			other.Name, other.Spec.Group = "other", "web"
			o.Resources = append(o.Resources, *other)
		}, check: func(o Observed) string {
			if _, ok := o.Resources["other"]; ok || len(o.Placement.PossibleOwners) != 3 {
				return fmt.Sprintf("resources %v, possible owners %v", o.Resources, o.Placement.PossibleOwners)
			}
			return ""
		}},
		{name: "no cluster", change: func(o *Objects) { o.Cluster = nil }, reason: wp.ClusterNotFoundReason, says: `QuorumDisk "prod" does not exist`},
		{name: "a cycle", change: func(o *Objects) { o.Resources[0].Spec.DependsOn = []wp.Dependency{{Name: "server"}} },
			reason: wp.DependencyCycleReason},
		{name: "a missing dependency", change: func(o *Objects) { o.Resources = o.Resources[1:] }, reason: wp.MissingDependencyReason},
		{name: "owners outside the cluster", change: func(o *Objects) {
			o.Group.Spec.PreferredOwners = []string{"a", "x"}
			o.Resources[0].Spec.PossibleOwners = []string{"y", "x"}
		}, reason: wp.UnknownNodeReason, says: "x, y named in preferredOwners or possibleOwners are not in cluster prod"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := objects()
			if tc.change != nil {
				tc.change(&objs)
			}
			o, invalid := Observe(objs, t0)
			switch {
			case tc.reason == "" && invalid != nil:
				t.Fatalf("invalid: %+v", invalid)
			case tc.reason != "" && (invalid == nil || invalid.Reason != tc.reason || invalid.Status != metav1.ConditionFalse ||
				invalid.Type != wp.ValidCondition || !strings.Contains(invalid.Message, tc.says)):
				t.Fatalf("invalid %+v, want Valid False %s saying %q", invalid, tc.reason, tc.says)
			case tc.check != nil:
				if wrong := tc.check(o); wrong != "" {
					t.Error(wrong)
				}
			}
		})
	}
}

func TestViewOf(t *testing.T) {
	t.Parallel()
	failed := func(reason, node string, action wp.RestartAction) *wp.Resource {
		return builder.Resource("ns", "server").RestartPolicy(wp.RestartPolicy{Action: action}).
			State(wp.ResourceFailed).Node(node).LastFailure(wp.ResourceFailure{Reason: reason, Node: node}).Obj()
	}
	for _, tc := range []struct {
		name string
		res  *wp.Resource
		want bool
	}{
		{"restarts used up on the owner under RestartOrFailover", failed(wp.RestartThresholdExceededReason, "a", wp.RestartOrFailover), true},
		{"under Restart: stays Failed", failed(wp.RestartThresholdExceededReason, "a", wp.Restart), false},
		{"on another node than the owner", failed(wp.RestartThresholdExceededReason, "b", wp.RestartOrFailover), false},
		{"not restarted (DoNotRestart)", failed(wp.LooksAliveFailedReason, "a", wp.RestartOrFailover), false},
		{"online", builder.Resource("ns", "server").State(wp.ResourceOnline).Node("a").Obj(), false},
	} {
		if got := ViewOf(tc.res, "a"); got.WantsFailover != tc.want || got.State != tc.res.Status.State || got.Node != tc.res.Status.Node {
			t.Errorf("%s: ViewOf = %+v, want WantsFailover %v", tc.name, got, tc.want)
		}
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	got := Summary(map[string]ResourceView{"ip": {State: wp.ResourceOnline, Node: "a"}, "disk": {}})
	if len(got) != 2 || got[0] != (wp.ResourceSummary{Name: "disk", State: wp.ResourceOffline}) ||
		got[1] != (wp.ResourceSummary{Name: "ip", State: wp.ResourceOnline, Node: "a"}) {
		t.Errorf("Summary = %+v, want disk Offline then ip Online on a", got)
	}
}
