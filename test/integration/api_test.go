package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/repo"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
)

func duration(s string) *metav1.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return &metav1.Duration{Duration: d}
}

func TestSamplesAreAccepted(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	samples, err := repo.Samples()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, obj := range samples {
		if obj.GetKind() == "QuorumDisk" {
			// Cluster-scoped: a name of this run's own, so that the test can run again.
			obj.SetName(obj.GetName() + "-" + ns)
		} else {
			obj.SetNamespace(ns)
		}
		if err := k8sClient.Create(ctx, obj); err != nil {
			t.Fatalf("sample %s %s was rejected: %v", obj.GetKind(), obj.GetName(), err)
		}
		kinds[obj.GetKind()]++
		t.Logf("accepted sample %s %s", obj.GetKind(), obj.GetName())
	}
	if want := map[string]int{"QuorumDisk": 1, "ResourceGroup": 1, "Resource": 5}; !equalMaps(kinds, want) {
		t.Fatalf("samples hold %v, want %v", kinds, want)
	}

	// The API server filled in the documented defaults.
	var qd wp.QuorumDisk
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: "demo-" + ns}, &qd); err != nil {
		t.Fatal(err)
	}
	if qd.Spec.Fencing.Action != wp.FenceCRI {
		t.Errorf("QuorumDisk demo: fencing.action defaulted to %q, want %q", qd.Spec.Fencing.Action, wp.FenceCRI)
	}
	var agent wp.Resource
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "agent"}, &agent); err != nil {
		t.Fatal(err)
	}
	rp := agent.Spec.RestartPolicy
	if ptr.Deref(rp.Threshold, -1) != 3 || rp.Period.Duration != 15*time.Minute || rp.Delay.Duration != 500*time.Millisecond {
		t.Errorf("Resource agent: restartPolicy defaulted to %+v, want threshold 3, period 15m, delay 500ms", rp)
	}
	if agent.Spec.PendingTimeout.Duration != 3*time.Minute || agent.Spec.LooksAlivePollInterval.Duration != 5*time.Second ||
		agent.Spec.IsAlivePollInterval.Duration != time.Minute {
		t.Errorf("Resource agent: timings defaulted to pending %v, looksAlive %v, isAlive %v; want 3m, 5s, 1m",
			agent.Spec.PendingTimeout, agent.Spec.LooksAlivePollInterval, agent.Spec.IsAlivePollInterval)
	}

	// The sample group has the documented dependencies.
	var resources wp.ResourceList
	if err := k8sClient.List(ctx, &resources, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, r := range resources.Items {
		if r.Spec.Group != "sql" {
			t.Errorf("Resource %s is in group %q, want sql", r.Name, r.Spec.Group)
		}
		deps := make([]string, 0, len(r.Spec.DependsOn))
		for _, d := range r.Spec.DependsOn {
			deps = append(deps, d.Name)
		}
		got[r.Name] = deps
	}
	want := map[string][]string{"disk": {}, "ip": {"disk"}, "name": {"ip"}, "server": {"name"}, "agent": {"disk"}}
	for name, deps := range want {
		if !slices.Equal(got[name], deps) {
			t.Errorf("Resource %s depends on %v, want %v", name, got[name], deps)
		}
	}
}

func equalMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// badInput is one object that a single look at it shows is wrong.
type badInput struct {
	name string
	// obj is the object to create; with update set, it is created first and must be accepted.
	obj func(ns string) client.Object
	// update changes the created object; the update must be rejected.
	update func(obj client.Object)
	// field and message must both appear in the API server's answer.
	field, message string
}

func badInputs() []badInput {
	resource := func(mutate func(r *wp.Resource)) func(string) client.Object {
		return func(ns string) client.Object {
			r := builder.Resource(ns, "res").Group("sql").Volume("data").Obj()
			mutate(r)
			return r
		}
	}
	group := func(mutate func(g *wp.ResourceGroup)) func(string) client.Object {
		return func(ns string) client.Object {
			g := builder.Group(ns, "grp").Cluster("demo").PreferredOwners("node-a", "node-b").Obj()
			mutate(g)
			return g
		}
	}
	quorum := func(mutate func(q *wp.QuorumDisk)) func(string) client.Object {
		return func(ns string) client.Object {
			q := builder.QuorumDisk("qd-" + ns).Obj()
			mutate(q)
			return q
		}
	}
	return []badInput{
		{
			name:    "resource without a type",
			obj:     resource(func(r *wp.Resource) { r.Spec.Volume = nil }),
			field:   "spec",
			message: "exactly one of workload, volume, service, ipAddress or custom must be set",
		},
		{
			name: "resource with two types",
			obj: resource(func(r *wp.Resource) {
				r.Spec.IPAddress = &wp.IPAddressResource{Address: "192.0.2.10"}
			}),
			field:   "spec",
			message: "exactly one of workload, volume, service, ipAddress or custom must be set",
		},
		{
			name: "resource that depends on itself",
			obj: resource(func(r *wp.Resource) {
				r.Spec.DependsOn = []wp.Dependency{{Name: "disk"}, {Name: "res"}}
			}),
			field:   "spec.dependsOn",
			message: "a resource cannot depend on itself",
		},
		{
			name: "dependency named twice",
			obj: resource(func(r *wp.Resource) {
				r.Spec.DependsOn = []wp.Dependency{{Name: "disk"}, {Name: "disk"}}
			}),
			field:   "spec.dependsOn",
			message: "dependsOn must not name a resource twice",
		},
		{
			name:    "possible owner named twice",
			obj:     resource(func(r *wp.Resource) { r.Spec.PossibleOwners = []string{"node-a", "node-a"} }),
			field:   "spec.possibleOwners",
			message: "possibleOwners must not name a node twice",
		},
		{
			name:    "restart threshold above 100",
			obj:     resource(func(r *wp.Resource) { r.Spec.RestartPolicy.Threshold = ptr.To[int32](101) }),
			field:   "spec.restartPolicy.threshold",
			message: "should be less than or equal to 100",
		},
		{
			name:    "unknown restart action",
			obj:     resource(func(r *wp.Resource) { r.Spec.RestartPolicy.Action = "Reboot" }),
			field:   "spec.restartPolicy.action",
			message: `supported values: "DoNotRestart", "Restart", "RestartOrFailover"`,
		},
		{
			name:    "pending timeout out of range",
			obj:     resource(func(r *wp.Resource) { r.Spec.PendingTimeout = duration("2h") }),
			field:   "spec.pendingTimeout",
			message: "pendingTimeout must be between 1s and 1h",
		},
		{
			name: "isAlive more frequent than looksAlive",
			obj: resource(func(r *wp.Resource) {
				r.Spec.LooksAlivePollInterval = duration("30s")
				r.Spec.IsAlivePollInterval = duration("10s")
			}),
			field:   "spec.isAlivePollInterval",
			message: "isAlivePollInterval (the thorough check) must not be shorter than looksAlivePollInterval",
		},
		{
			name: "health check with two kinds",
			obj: resource(func(r *wp.Resource) {
				r.Spec.HealthChecks = &wp.HealthChecks{LooksAlive: &wp.HealthCheck{
					TCPSocket: &wp.TCPSocketCheck{Host: "db", Port: 5432}, HTTPGet: &wp.HTTPGetCheck{Host: "db", Port: 80}}}
			}),
			field:   "spec.healthChecks.looksAlive",
			message: "exactly one of exec, tcpSocket or httpGet must be set",
		},
		{
			name:    "health checks without a check",
			obj:     resource(func(r *wp.Resource) { r.Spec.HealthChecks = &wp.HealthChecks{} }),
			field:   "spec.healthChecks",
			message: "healthChecks must set looksAlive, isAlive or both",
		},
		{
			name: "exec health check on a volume",
			obj: resource(func(r *wp.Resource) {
				r.Spec.HealthChecks = &wp.HealthChecks{IsAlive: &wp.HealthCheck{Exec: &wp.ExecCheck{Command: []string{"true"}}}}
			}),
			field:   "spec.healthChecks",
			message: "exec health checks need a workload resource",
		},
		{
			name: "health check timeout of 10m",
			obj: resource(func(r *wp.Resource) {
				r.Spec.HealthChecks = &wp.HealthChecks{LooksAlive: &wp.HealthCheck{TCPSocket: &wp.TCPSocketCheck{Host: "db", Port: 5432},
					Timeout: duration("10m")}}
			}),
			field:   "spec.healthChecks.looksAlive.timeout",
			message: "timeout must be between 100ms and 5m",
		},
		{
			name: "floating address that is not an IP",
			obj: resource(func(r *wp.Resource) {
				r.Spec.Volume = nil
				r.Spec.IPAddress = &wp.IPAddressResource{Address: "300.1.2.3"}
			}),
			field:   "spec.ipAddress.address",
			message: "address must be an IP address in canonical form",
		},
		{
			name: "IPv4 address with a /64 prefix",
			obj: resource(func(r *wp.Resource) {
				r.Spec.Volume = nil
				r.Spec.IPAddress = &wp.IPAddressResource{Address: "192.0.2.10", PrefixLength: ptr.To[int32](64)}
			}),
			field:   "spec.ipAddress.prefixLength",
			message: "prefixLength of an IPv4 address must be at most 32",
		},
		{
			name: "workload with both a template and a reference",
			obj: resource(func(r *wp.Resource) {
				r.Spec.Volume = nil
				r.Spec.Workload = &wp.WorkloadResource{
					Template: &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
						Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
					}},
					WorkloadRef: &wp.WorkloadReference{Kind: wp.DeploymentKind, Name: "web"},
				}
			}),
			field:   "spec.workload",
			message: "exactly one of template or workloadRef must be set",
		},
		{
			name: "custom resource template without a kind",
			obj: resource(func(r *wp.Resource) {
				r.Spec.Volume = nil
				r.Spec.Custom = &wp.CustomResource{
					Template: runtime.RawExtension{Raw: []byte(`{"apiVersion":"v1","metadata":{"name":"x"}}`)},
					Healthy:  "true",
				}
			}),
			field:   "spec.custom.template.kind",
			message: "Required value",
		},
		{
			name:    "resource moved to another group",
			obj:     func(ns string) client.Object { return builder.Resource(ns, "moved").Group("sql").Obj() },
			update:  func(o client.Object) { o.(*wp.Resource).Spec.Group = "other" },
			field:   "spec.group",
			message: "group is immutable",
		},
		{
			name:    "group without a cluster",
			obj:     group(func(g *wp.ResourceGroup) { g.Spec.Cluster = "" }),
			field:   "spec.cluster",
			message: "should be at least 1 chars long",
		},
		{
			name:    "preferred owner named twice",
			obj:     group(func(g *wp.ResourceGroup) { g.Spec.PreferredOwners = []string{"node-a", "node-b", "node-a"} }),
			field:   "spec.preferredOwners",
			message: "preferredOwners must not name a node twice",
		},
		{
			name:    "priority above 3000",
			obj:     group(func(g *wp.ResourceGroup) { g.Spec.Priority = ptr.To[int32](5000) }),
			field:   "spec.priority",
			message: "should be less than or equal to 3000",
		},
		{
			name:    "failover period of 10s",
			obj:     group(func(g *wp.ResourceGroup) { g.Spec.FailoverPeriod = duration("10s") }),
			field:   "spec.failoverPeriod",
			message: "failoverPeriod must be between 1m and 720h",
		},
		{
			name: "failback window hour 24",
			obj: group(func(g *wp.ResourceGroup) {
				g.Spec.Failback = wp.FailbackSpec{Policy: wp.FailbackAllow, WindowStart: ptr.To[int32](22), WindowEnd: ptr.To[int32](24)}
			}),
			field:   "spec.failback.windowEnd",
			message: "should be less than or equal to 23",
		},
		{
			name: "failback window with a start only",
			obj: group(func(g *wp.ResourceGroup) {
				g.Spec.Failback = wp.FailbackSpec{Policy: wp.FailbackAllow, WindowStart: ptr.To[int32](1)}
			}),
			field:   "spec.failback",
			message: "windowStart and windowEnd must be set together",
		},
		{
			name: "failback window while failback is prevented",
			obj: group(func(g *wp.ResourceGroup) {
				g.Spec.Failback = wp.FailbackSpec{WindowStart: ptr.To[int32](1), WindowEnd: ptr.To[int32](5)}
			}),
			field:   "spec.failback",
			message: "a failback window needs policy Allow",
		},
		{
			name: "group moved to another cluster",
			obj: func(ns string) client.Object {
				return builder.Group(ns, "moved").Cluster("demo").PreferredOwners("node-a", "node-b").Obj()
			},
			update:  func(o client.Object) { o.(*wp.ResourceGroup).Spec.Cluster = "other" },
			field:   "spec.cluster",
			message: "cluster is immutable",
		},
		{
			name:    "unknown quorum type",
			obj:     quorum(func(q *wp.QuorumDisk) { q.Spec.QuorumType = "Majority" }),
			field:   "spec.quorumType",
			message: `supported values: "DiskOnly", "NodeAndDiskMajority", "NodeMajority"`,
		},
		{
			name:    "paused node without a name",
			obj:     quorum(func(q *wp.QuorumDisk) { q.Spec.PausedNodes = []wp.PausedNode{{Drain: true}} }),
			field:   "spec.pausedNodes[0].name",
			message: "should be at least 1 chars long",
		},
		{
			name:    "heartbeat interval of 50ms",
			obj:     quorum(func(q *wp.QuorumDisk) { q.Spec.Heartbeat.Interval = duration("50ms") }),
			field:   "spec.heartbeat.interval",
			message: "interval must be between 100ms and 10s",
		},
		{
			name:    "heartbeat port 70000",
			obj:     quorum(func(q *wp.QuorumDisk) { q.Spec.Heartbeat.Port = ptr.To[int32](70000) }),
			field:   "spec.heartbeat.port",
			message: "should be less than or equal to 65535",
		},
		{
			name: "heartbeat network that is not a CIDR",
			obj: quorum(func(q *wp.QuorumDisk) {
				q.Spec.Heartbeat.Networks = []wp.HeartbeatNetwork{{Name: "private", CIDR: "10.0.0.0/33", Role: wp.PrivateNetwork}}
			}),
			field:   "spec.heartbeat.networks[0].cidr",
			message: "cidr must be a CIDR such as 10.0.0.0/24",
		},
		{
			name:    "allowed address CIDR that is not a CIDR",
			obj:     quorum(func(q *wp.QuorumDisk) { q.Spec.AllowedAddressCIDRs = []string{"192.0.2.48/28", "192.0.2.300/32"} }),
			field:   "spec.allowedAddressCIDRs[1]",
			message: "each of allowedAddressCIDRs must be a CIDR with no host bits set, such as 192.0.2.48/28 or fd00:50::/64",
		},
		{
			name:    "allowed address CIDR with host bits",
			obj:     quorum(func(q *wp.QuorumDisk) { q.Spec.AllowedAddressCIDRs = []string{"192.0.2.50/28"} }),
			field:   "spec.allowedAddressCIDRs[0]",
			message: "each of allowedAddressCIDRs must be a CIDR with no host bits set",
		},
		{
			name:    "allowed address CIDR named twice",
			obj:     quorum(func(q *wp.QuorumDisk) { q.Spec.AllowedAddressCIDRs = []string{"fd00:50::/64", "fd00:50::/64"} }),
			field:   "spec.allowedAddressCIDRs[1]",
			message: "Duplicate value",
		},
		{
			name: "two heartbeat networks with one CIDR",
			obj: quorum(func(q *wp.QuorumDisk) {
				q.Spec.Heartbeat.Networks = []wp.HeartbeatNetwork{
					{Name: "private", CIDR: "10.0.0.0/24", Role: wp.PrivateNetwork},
					{Name: "public", CIDR: "10.0.0.0/24", Role: wp.PublicNetwork},
				}
			}),
			field:   "spec.heartbeat.networks",
			message: "each heartbeat network must have its own cidr",
		},
		{
			name: "lease shorter than heartbeat detection",
			obj: quorum(func(q *wp.QuorumDisk) {
				q.Spec.LeaseDuration = duration("2s")
				q.Spec.Heartbeat.Interval = duration("1s")
				q.Spec.Heartbeat.Threshold = ptr.To[int32](3)
			}),
			field:   "spec.leaseDuration",
			message: "leaseDuration must be longer than heartbeat interval x threshold",
		},
		{
			name:    "lease duration that is not a duration",
			obj:     quorum(func(q *wp.QuorumDisk) { q.Spec.LeaseDuration = &metav1.Duration{Duration: -time.Second} }),
			field:   "spec.leaseDuration",
			message: "should match",
		},
		{
			name:    "quorum without a key secret",
			obj:     quorum(func(q *wp.QuorumDisk) { q.Spec.KeySecretRef.Name = "" }),
			field:   "spec.keySecretRef.name",
			message: "should be at least 1 chars long",
		},
	}
}

func TestBadInputIsRejectedNamingTheField(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	cases := badInputs()
	if len(cases) < 12 {
		t.Fatalf("the table holds %d cases, want at least 12", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.obj(ns)
			var err error
			if tc.update == nil {
				err = k8sClient.Create(ctx, obj)
			} else {
				if err := k8sClient.Create(ctx, obj); err != nil {
					t.Fatalf("creating the valid object before the update: %v", err)
				}
				tc.update(obj)
				err = k8sClient.Update(ctx, obj)
			}
			if err == nil {
				t.Fatalf("accepted; want a rejection naming %s", tc.field)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("rejected with %v (%s), want 422 Invalid", err, apierrors.ReasonForError(err))
			}
			if !causeNames(err, tc.field, tc.message) {
				t.Fatalf("rejection %q does not name field %q with %q", err, tc.field, tc.message)
			}
			t.Logf("rejected: %v", err)
		})
	}
}

// causeNames reports whether one cause of an Invalid error is about field and says message.
func causeNames(err error, field, message string) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if c.Field == field && strings.Contains(c.Message, message) {
			return true
		}
	}
	return false
}

func TestStatusIsWrittenThroughTheSubresourceOnly(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)

	g := builder.Group(ns, "sql").PreferredOwners("node-a", "node-b").State(wp.GroupOnline).OwnerNode("node-a").Epoch(7).Obj()
	if err := k8sClient.Create(ctx, g); err != nil {
		t.Fatal(err)
	}
	get := func() *wp.ResourceGroup {
		t.Helper()
		var got wp.ResourceGroup
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(g), &got); err != nil {
			t.Fatal(err)
		}
		return &got
	}
	if got := get(); got.Status.State != "" || got.Status.OwnerNode != "" || got.Status.Epoch != 0 {
		t.Fatalf("create stored status %+v; want it ignored", got.Status)
	}

	// A write of the main resource changes the spec and ignores the status.
	g = get()
	g.Spec.State = wp.DesiredOffline
	g.Status.OwnerNode = "node-a"
	if err := k8sClient.Update(ctx, g); err != nil {
		t.Fatal(err)
	}
	afterSpec := get()
	if afterSpec.Spec.State != wp.DesiredOffline || afterSpec.Status.OwnerNode != "" {
		t.Fatalf("update of the main resource stored spec.state %q and status.ownerNode %q; want Offline and empty",
			afterSpec.Spec.State, afterSpec.Status.OwnerNode)
	}

	// A write of the status subresource changes the status and ignores the spec.
	patch := client.MergeFrom(afterSpec.DeepCopy())
	afterSpec.Spec.State = wp.DesiredOnline
	afterSpec.Status.OwnerNode = "node-a"
	afterSpec.Status.Epoch = 1
	afterSpec.Status.ObservedGeneration = afterSpec.Generation
	if err := k8sClient.Status().Patch(ctx, afterSpec, patch); err != nil {
		t.Fatal(err)
	}
	afterStatus := get()
	if afterStatus.Status.OwnerNode != "node-a" || afterStatus.Status.Epoch != 1 {
		t.Fatalf("status patch stored %+v; want ownerNode node-a, epoch 1", afterStatus.Status)
	}
	if afterStatus.Spec.State != wp.DesiredOffline {
		t.Fatalf("status patch changed spec.state to %q", afterStatus.Spec.State)
	}
	if afterStatus.Generation != afterSpec.Generation {
		t.Fatalf("status patch moved generation from %d to %d", afterSpec.Generation, afterStatus.Generation)
	}
}

func TestPrinterColumns(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)

	qd := builder.QuorumDisk("printer-" + ns).Obj()
	g := builder.Group(ns, "sql").Cluster("demo").PreferredOwners("node-a", "node-b").Obj()
	r := builder.Resource(ns, "ip").Group("sql").DependsOn("disk").Obj()
	for _, obj := range []client.Object{qd, g, r} {
		if err := k8sClient.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	qd.Status = wp.QuorumDiskStatus{Owner: "node-a", Epoch: 4, Conditions: []metav1.Condition{{
		Type: wp.ReadyCondition, Status: metav1.ConditionTrue, Reason: wp.AsExpectedReason, LastTransitionTime: metav1.Now(),
	}}}
	g.Status = wp.ResourceGroupStatus{State: wp.GroupOnline, OwnerNode: "node-a", Epoch: 3,
		Operation: &wp.GroupOperation{Kind: wp.OperationMove, Phase: wp.PhaseSucceeded, StartedAt: metav1.NowMicro()}}
	r.Status = wp.ResourceStatus{State: wp.ResourceOnline, Node: "node-a", Restarts: 2}
	for _, obj := range []client.Object{qd, g, r} {
		if err := k8sClient.Status().Update(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		path string
		name string
		// columns are "name" for the default view and "name*" for `-o wide` only.
		columns []string
		// cells are the values of the named columns in the object's row.
		cells map[string]string
	}{
		{
			path:    "/apis/wolfpack.dev/v1alpha1/quorumdisks",
			name:    qd.Name,
			columns: []string{"Name", "Type", "Owner", "Epoch", "Ready", "Age", "Volume*", "Port*", "Lease*"},
			cells:   map[string]string{"Type": "DiskOnly", "Owner": "node-a", "Epoch": "4", "Ready": "True", "Port": "3343", "Lease": "10s"},
		},
		{
			path: "/apis/wolfpack.dev/v1alpha1/namespaces/" + ns + "/resourcegroups",
			name: "sql",
			columns: []string{"Name", "State", "Owner", "Desired", "Epoch", "Age",
				"Cluster*", "Priority*", "Operation*", "Phase*"},
			cells: map[string]string{"State": "Online", "Owner": "node-a", "Desired": "Online", "Epoch": "3",
				"Cluster": "demo", "Priority": "2000", "Operation": "Move", "Phase": "Succeeded"},
		},
		{
			path: "/apis/wolfpack.dev/v1alpha1/namespaces/" + ns + "/resources",
			name: "ip",
			columns: []string{"Name", "Group", "State", "Node", "Restarts", "Age",
				"Depends-On*", "Restart-Action*", "Last-Failure*"},
			cells: map[string]string{"Group": "sql", "State": "Online", "Node": "node-a", "Restarts": "2",
				"Depends-On": "disk", "Restart-Action": "RestartOrFailover"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			tbl, err := envtest.GetTable(ctx, env.Config, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			index := map[string]int{}
			for i, c := range tbl.ColumnDefinitions {
				name := c.Name
				if c.Priority > 0 {
					name += "*"
				}
				got = append(got, name)
				index[c.Name] = i
			}
			if !slices.Equal(got, tc.columns) {
				t.Fatalf("columns %v, want %v", got, tc.columns)
			}
			var row []any
			for _, r := range tbl.Rows {
				if r.Cells[0] == tc.name {
					row = r.Cells
				}
			}
			if row == nil {
				t.Fatalf("no row for %s", tc.name)
			}
			for col, want := range tc.cells {
				if got := fmt.Sprint(row[index[col]]); got != want {
					t.Errorf("column %s = %q, want %q", col, got, want)
				}
			}
			t.Logf("columns %v, row %v", got, row)
		})
	}
}

// TestCRDsFitClientSideApply makes sure `kubectl apply` (client side) can record each CRD in its
// last-applied annotation: the API server rejects annotations over 256 KiB.
func TestCRDsFitClientSideApply(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"quorumdisks.wolfpack.dev", "resourcegroups.wolfpack.dev", "resources.wolfpack.dev"} {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
			t.Fatal(err)
		}
		applied := crd.DeepCopy()
		applied.ObjectMeta = metav1.ObjectMeta{Name: crd.Name, Annotations: crd.Annotations}
		applied.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
		lastApplied, err := json.Marshal(applied)
		if err != nil {
			t.Fatal(err)
		}
		if crd.Annotations == nil {
			crd.Annotations = map[string]string{}
		}
		crd.Annotations["kubectl.kubernetes.io/last-applied-configuration"] = string(lastApplied)
		if err := k8sClient.Update(ctx, &crd, client.DryRunAll); err != nil {
			t.Fatalf("CRD %s with its %d-byte last-applied annotation was rejected: %v", name, len(lastApplied), err)
		}
		t.Logf("CRD %s: last-applied annotation of %d bytes accepted", name, len(lastApplied))
	}
}
