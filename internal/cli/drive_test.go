package cli

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

func TestOnlineOffline(t *testing.T) {
	fixture(t)
	if out := ok(t, "offline", "sql", "-n", prod); out != "Group prod/sql desired Offline.\n" {
		t.Errorf("offline printed %q", out)
	}
	if s := getGroup(t, prod, "sql").Spec.State; s != wolfpackv1alpha1.DesiredOffline {
		t.Errorf("after offline, spec.state is %s", s)
	}
	if out := ok(t, "offline", "sql", "-n", prod); !strings.Contains(out, "Group prod/sql is already desired Offline") {
		t.Errorf("offline twice printed %q", out)
	}
	ok(t, "online", "sql", "-n", prod)
	if s := getGroup(t, prod, "sql").Spec.State; s != wolfpackv1alpha1.DesiredOnline {
		t.Errorf("after online, spec.state is %s", s)
	}

	// --wait: the group is already Online as desired, once the manager has seen its spec.
	reset(t)
	if out := ok(t, "online", "sql", "-n", prod, "--wait", "--timeout", "10s"); !strings.Contains(out, "Group prod/sql is Online on node-a.") {
		t.Errorf("online --wait printed %q", out)
	}
	// A Failed group desired Online does not become Online by waiting.
	fails(t, []string{"online", "web", "-n", prod, "--wait", "--timeout", "10s"}, "group prod/web is Failed")

	fails(t, []string{"offline", "disk", "-n", prod}, `offline accepts only groups: "disk" is a resource of group "sql"`,
		`"kubectl cluster offline sql"`, `"kubectl cluster restart disk"`)
	fails(t, []string{"online", "nosuch", "-n", prod}, `group "nosuch" not found in namespace "prod" (groups there: sql, web)`)
}

func TestRestart(t *testing.T) {
	fixture(t)
	ctx := context.Background()
	fails(t, []string{"restart", "server", "-n", prod}, "resource prod/server has no running pod to restart (it is Online on node-a)")
	fails(t, []string{"restart", "disk", "-n", prod}, "resource prod/disk is a volume resource: only workload resources have pods to restart")
	fails(t, []string{"restart", "nosuch", "-n", prod}, `resource "nosuch" not found in namespace "prod" (resources there: agent, disk, frontend, ip, name, server)`)

	labels := map[string]string{wolfpackv1alpha1.GroupLabel: "sql", wolfpackv1alpha1.ResourceLabel: "server", wolfpackv1alpha1.NodeLabel: nodeA}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: prod, Name: "sql-server-1", Labels: labels},
		Spec: corev1.PodSpec{NodeName: nodeA, Containers: []corev1.Container{{Name: "postgres", Image: "postgres:17"}}}}
	must(t, k8sClient.Create(ctx, pod))
	// A pod of another group's resource of the same name is left alone.
	other := pod.DeepCopy()
	other.ResourceVersion, other.Name = "", "other-server-1"
	other.Labels = map[string]string{wolfpackv1alpha1.GroupLabel: "other", wolfpackv1alpha1.ResourceLabel: "server"}
	must(t, k8sClient.Create(ctx, other))
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), other) })

	out := ok(t, "restart", "server", "-n", prod)
	if !strings.Contains(out, "Deleted pod sql-server-1 of resource prod/server.") ||
		!strings.Contains(out, "restart policy (RestartOrFailover, threshold 3 per 15m0s; 0 used)") {
		t.Errorf("restart printed %q", out)
	}
	// envtest runs no kubelet, so the pod stays Terminating... or is gone at once without finalizers.
	p := &corev1.Pod{}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), p); err == nil && p.DeletionTimestamp == nil {
		t.Errorf("pod %s was not deleted", pod.Name)
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(other), p); err != nil || p.DeletionTimestamp != nil {
		t.Errorf("the other group's pod was deleted: %v", err)
	}
}

func TestPauseResume(t *testing.T) {
	fixture(t)
	if out := ok(t, "pause", nodeB, "--drain"); !strings.Contains(out, "Node node-b of cluster demo paused with drain") {
		t.Errorf("pause --drain printed %q", out)
	}
	if p := getCluster(t).Spec.PausedNodes; len(p) != 1 || p[0].Name != nodeB || !p[0].Drain {
		t.Errorf("after pause --drain, pausedNodes = %+v", p)
	}
	ok(t, "pause", nodeA)
	if p := getCluster(t).Spec.PausedNodes; len(p) != 2 || p[1].Name != nodeA || p[1].Drain {
		t.Errorf("after pausing node-a too, pausedNodes = %+v", p)
	}
	if out := ok(t, "pause", nodeA); !strings.Contains(out, "already paused") {
		t.Errorf("pausing twice printed %q", out)
	}
	if out := ok(t, "nodes", "-o", "wide"); !strings.Contains(out, "drain") {
		t.Errorf("nodes -o wide does not show the drain:\n%s", out)
	}

	if out := ok(t, "resume", nodeB); !strings.Contains(out, "Node node-b of cluster demo resumed") {
		t.Errorf("resume printed %q", out)
	}
	ok(t, "resume", nodeA)
	if p := getCluster(t).Spec.PausedNodes; len(p) != 0 {
		t.Errorf("after resume, pausedNodes = %+v", p)
	}
	if out := ok(t, "resume", nodeA); !strings.Contains(out, "Node node-a of cluster demo is not paused.") {
		t.Errorf("resuming twice printed %q", out)
	}

	fails(t, []string{"pause", "node-x"}, `node "node-x" is not a node of cluster "demo" (nodes: node-a, node-b)`)
	fails(t, []string{"resume", "node-x"}, `node "node-x" is not a node of cluster "demo"`)
	fails(t, []string{"pause"}, "expected one NODE, got 0 arguments")
}
