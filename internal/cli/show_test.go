package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/yaml"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

func TestStatus(t *testing.T) {
	fixture(t)
	golden(t, "status.golden", ok(t, "status"))
	golden(t, "status-wide.golden", ok(t, "status", "-o", "wide"))

	// -n limits the groups to one namespace.
	out := ok(t, "status", "-n", staging)
	if strings.Contains(out, "sql") || !strings.Contains(out, "reports") {
		t.Errorf("status -n staging shows other namespaces' groups:\n%s", out)
	}

	var s StatusOutput
	if err := json.Unmarshal([]byte(ok(t, "status", "-o", "json")), &s); err != nil {
		t.Fatalf("status -o json does not parse: %v", err)
	}
	if s.Cluster != cluster || s.QuorumOwner != nodeA || s.Epoch != 3 || len(s.Nodes) != 2 || len(s.Groups) != 3 {
		t.Errorf("status -o json = %+v, want cluster demo owned by node-a at epoch 3 with 2 nodes and 3 groups", s)
	}
	if g := s.Groups[0]; g.Name != "sql" || g.ResourcesOnline != 5 || g.ResourcesTotal != 5 || len(g.Resources) != 5 {
		t.Errorf("status -o json: first group %+v, want sql with 5 of 5 resources Online", g)
	}
	var y StatusOutput
	if err := yaml.UnmarshalStrict([]byte(ok(t, "status", "-o", "yaml")), &y); err != nil || y.Cluster != cluster {
		t.Errorf("status -o yaml does not parse into the same fields: %v (%+v)", err, y)
	}
}

func TestNodesGroupsResources(t *testing.T) {
	fixture(t)
	golden(t, "nodes.golden", ok(t, "nodes"))
	golden(t, "nodes-wide.golden", ok(t, "nodes", "-o", "wide"))
	golden(t, "groups.golden", ok(t, "groups", "-n", prod))
	golden(t, "groups-all-wide.golden", ok(t, "groups", "-A", "-o", "wide"))
	golden(t, "resources-sql.golden", ok(t, "resources", "sql", "-n", prod, "-o", "wide"))

	// What is active on a node, in every namespace.
	out := ok(t, "resources", "--node", nodeB)
	if !strings.Contains(out, "frontend") || strings.Contains(out, "server") {
		t.Errorf("resources --node node-b should list frontend only:\n%s", out)
	}
	var r ResourcesOutput
	if err := json.Unmarshal([]byte(ok(t, "resources", "--node", nodeA, "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Resources) != len(sqlResources) || r.Node != nodeA {
		t.Errorf("resources --node node-a -o json = %+v, want the 5 resources of sql", r)
	}
	fails(t, []string{"resources", "--node", "node-x"}, `node "node-x" is not a node of cluster "demo" (nodes: node-a, node-b)`)
	fails(t, []string{"resources", "nosuch", "-n", prod}, `group "nosuch" not found in namespace "prod" (groups there: sql, web)`)
	fails(t, []string{"groups", "-o", "xml"}, `unknown output format "xml"`)
}

func TestDepends(t *testing.T) {
	fixture(t)
	golden(t, "depends-sql.golden", ok(t, "depends", "sql", "-n", prod))

	var d DependsOutput
	if err := json.Unmarshal([]byte(ok(t, "depends", "sql", "-n", prod, "-o", "json")), &d); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"disk"}, {"agent", "ip"}, {"name"}, {"server"}}
	if got := mustJSON(t, d.Waves); got != mustJSON(t, want) {
		t.Errorf("depends -o json: waves %s, want %s", got, mustJSON(t, want))
	}

	fails(t, []string{"depends", "nosuch", "-n", prod}, `group "nosuch" not found in namespace "prod"`)
	fails(t, []string{"depends", "-n", prod}, "expected one GROUP, got 0 arguments")
	fails(t, []string{"depends", "sql"}, `group "sql" not found in namespace "default", which has no groups (-n selects the namespace)`)
	fails(t, []string{"depends", "sql", "-n", prod, "--cluster", "other"}, `group prod/sql belongs to cluster "demo", not "other"`)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	return string(b)
}

func TestClusterChoice(t *testing.T) {
	fixture(t)
	ctx := context.Background()
	other := &wolfpackv1alpha1.QuorumDisk{}
	*other = *getCluster(t)
	other.ObjectMeta = metav1.ObjectMeta{Name: "other"}
	other.Status = wolfpackv1alpha1.QuorumDiskStatus{}
	must(t, k8sClient.Create(ctx, other))
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), other) })

	fails(t, []string{"nodes"}, "there are 2 clusters (demo, other): choose one with --cluster")
	fails(t, []string{"nodes", "--cluster", "nosuch"}, `cluster "nosuch" not found (clusters: demo, other)`)
	if out := ok(t, "groups", "-A", "--cluster", "other"); !strings.Contains(out, "No groups of cluster other") {
		t.Errorf("groups of an empty cluster:\n%s", out)
	}
	if out := ok(t, "status", "--cluster", "demo"); !strings.Contains(out, "Cluster demo (DiskOnly)") {
		t.Errorf("status --cluster demo:\n%s", out)
	}
}

func TestExecuteExitCode(t *testing.T) {
	fixture(t)
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	cmd := NewCommand(streams, clocktesting.NewFakePassiveClock(now))
	if code := Execute(context.Background(), cmd, []string{"--kubeconfig", kubeconfig, "move", "nosuch", "-n", prod}); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if want := "error: group \"nosuch\" not found in namespace \"prod\" (groups there: sql, web)\n"; errOut.String() != want {
		t.Errorf("stderr %q, want %q", errOut.String(), want)
	}
	cmd = NewCommand(streams, clocktesting.NewFakePassiveClock(now))
	if code := Execute(context.Background(), cmd, []string{"--kubeconfig", kubeconfig, "nodes"}); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

func TestCompletion(t *testing.T) {
	fixture(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"move", "-n", prod, ""}, []string{"sql", "web"}},
		{[]string{"move", "-n", prod, "s"}, []string{"sql"}},
		{[]string{"move", "sql", "-n", prod, "--to", ""}, []string{nodeA, nodeB}},
		{[]string{"restart", "-n", prod, "se"}, []string{"server"}},
		{[]string{"pause", ""}, []string{nodeA, nodeB}},
		{[]string{"depends", "-n", staging, ""}, []string{"reports"}},
		{[]string{"status", "--cluster", ""}, []string{cluster}},
		{[]string{"status", "-o", ""}, outputFormats},
	} {
		out := ok(t, append([]string{"__complete"}, tc.args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		got := lines[:len(lines)-1] // the last line is the directive
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("completing %q: %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestDependsTreeDiamond renders a true diamond: a resource that depends on two others is listed
// in full under the first and marked under the second.
func TestDependsTreeDiamond(t *testing.T) {
	var b bytes.Buffer
	out := DependsOutput{Namespace: "ns", Group: "g", Cluster: "c",
		Waves: [][]string{{"disk"}, {"ip", "volume"}, {"app"}, {"check"}},
		Resources: []DependsResource{
			{Name: "app", Type: "workload", Wave: 3, DependsOn: []string{"ip", "volume"}, Dependents: []string{"check"}},
			{Name: "check", Type: "custom", Wave: 4, DependsOn: []string{"app"}},
			{Name: "disk", Type: "volume", State: "Online", Node: "n1", Wave: 1, Dependents: []string{"ip", "volume"}},
			{Name: "ip", Type: "ipAddress", Wave: 2, DependsOn: []string{"disk"}, Dependents: []string{"app"}},
			{Name: "volume", Type: "volume", Wave: 2, DependsOn: []string{"disk"}, Dependents: []string{"app"}},
		}}
	must(t, printDepends(&b, out))
	golden(t, "depends-diamond.golden", b.String())
}
