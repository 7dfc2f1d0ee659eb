package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/repo"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
)

func TestValidate(t *testing.T) {
	fixture(t)
	ctx := context.Background()

	// A cluster with nothing but its nodes: no PVC, no Secret, no agents, no RBAC.
	r := fails(t, []string{"validate"}, "4 of 9 checks of cluster demo failed")
	for _, want := range []string{
		"PASS    nodes               2 nodes labelled wolfpack.dev/cluster=demo: node-a, node-b",
		"FAIL    agents              node node-a has no agent Lease in wolfpack-system: its node agent does not run",
		"FAIL    quorum disk         PersistentVolumeClaim wolfpack-system/quorum-demo not found",
		"fix: create a ReadWriteOnce PersistentVolumeClaim wolfpack-system/quorum-demo",
		"FAIL    heartbeat key       Secret wolfpack-system/wolfpack-heartbeat-key not found",
		`fix: kubectl -n wolfpack-system create secret generic wolfpack-heartbeat-key --from-literal=key="$(head -c 32 /dev/urandom | base64)"`,
		"FAIL    rbac                wolfpack-system/wolfpack-manager may not patch resourcegroups.wolfpack.dev/status",
		"wolfpack-system/wolfpack-node-agent may not update leases.coordination.k8s.io in wolfpack-system",
		"WARN    heartbeat networks  cannot check node node-a, node-b: no agent reports for it (see the agents check)",
		"WARN    groups              group prod/web is Failed",
		"WARN    fencing             nodes node-a, node-b fence with CRI, which does not cover a hung agent (its workloads run on once its Lease runs out); use Watchdog",
		"9 checks: 2 passed, 3 with warnings, 4 failed",
	} {
		if !strings.Contains(squash(r.out), squash(want)) {
			t.Errorf("validate output lacks %q:\n%s", want, r.out)
		}
	}

	// Set the cluster up.
	ns := envtest.LeaseNamespace
	must(t, envtest.BoundClaim(ctx, k8sClient, ns, "quorum-demo"))
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "wolfpack-heartbeat-key"},
		Data: map[string][]byte{"key": bytes.Repeat([]byte{7}, 32)}})
	for _, file := range []string{"config/rbac/role.yaml", "config/rbac/role_binding.yaml", "config/agent/role.yaml", "config/agent/role_binding.yaml"} {
		apply(t, file)
	}
	addresses := map[string]map[string]string{
		nodeA: {"private": "10.10.0.1", "public": "192.0.2.1"},
		nodeB: {"private": "10.10.0.2", "public": "192.0.2.2"},
	}
	for _, n := range []string{nodeA, nodeB} {
		agentLease(t, n, now.Add(-time.Second), membership.View{Incarnation: 1, Joined: true, Addresses: addresses[n]})
	}
	golden(t, "validate.golden", ok(t, "validate"))
	var v ValidateOutput
	if err := json.Unmarshal([]byte(ok(t, "validate", "-o", "json")), &v); err != nil {
		t.Fatal(err)
	}
	if v.Passed != 7 || v.Warnings != 2 || v.Failed != 0 || len(v.Checks) != 9 || v.Checks[8].Result != resultWarn ||
		v.Checks[6].Name != "fencing" || v.Checks[6].Result != resultWarn {
		t.Errorf("validate -o json = %+v, want 7 passed, the CRI fencing's and the Failed group's warnings", v)
	}

	// An agent that stopped, and one that has no address on the private network.
	agentLease(t, nodeA, now.Add(-time.Minute), membership.View{Incarnation: 1, Joined: true, Addresses: addresses[nodeA]})
	agentLease(t, nodeB, now.Add(-time.Second), membership.View{Incarnation: 1, Joined: true, Addresses: map[string]string{"public": "192.0.2.2"}})
	r = fails(t, []string{"validate"}, "2 of 9 checks of cluster demo failed")
	for _, want := range []string{
		"FAIL    agents              the agent of node node-a last renewed its Lease 60s ago (lease duration 10s)",
		"FAIL    heartbeat networks  node node-b has no address on network private (10.10.0.0/24)",
		"fix: give the node an address in 10.10.0.0/24, or start its agent with --heartbeat-address private=IP",
	} {
		if !strings.Contains(squash(r.out), squash(want)) {
			t.Errorf("validate output lacks %q:\n%s", want, r.out)
		}
	}
	fails(t, []string{"validate", "--agent-service-account", "nobody"}, `a service account is namespace/name, not "nobody"`)
}

// squash makes every run of spaces one space, so that outputs compare regardless of column widths.
func squash(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// agentLease writes node's agent Lease as the agent does, renewed at renewed.
func agentLease(t *testing.T, node string, renewed time.Time, view membership.View) {
	t.Helper()
	ctx := context.Background()
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: envtest.LeaseNamespace, Name: node}}
	err := k8sClient.Get(ctx, client.ObjectKeyFromObject(l), l)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	l.Labels = map[string]string{wolfpackv1alpha1.ClusterLabel: cluster, wolfpackv1alpha1.NodeLabel: node}
	l.Annotations = map[string]string{wolfpackv1alpha1.ViewAnnotation: view.Encode()}
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = ptr.To(node), ptr.To[int32](10)
	l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(renewed))
	if err != nil {
		must(t, k8sClient.Create(ctx, l))
		return
	}
	must(t, k8sClient.Update(ctx, l))
}

// apply creates the objects of a YAML file of the repository.
func apply(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo.Root(), file))
	must(t, err)
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		must(t, err)
		obj := &unstructured.Unstructured{}
		must(t, yaml.Unmarshal(doc, &obj.Object))
		if len(obj.Object) > 0 {
			create(t, obj)
		}
	}
}
