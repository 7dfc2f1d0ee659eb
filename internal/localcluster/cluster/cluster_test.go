package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wolfpack-ha/wolfpack/internal/localcluster/cluster"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

const (
	nodeA, nodeB, nodeC = "wolfpack-a", "wolfpack-b", "wolfpack-c"
	// notReadyTimeout covers kube-controller-manager's node-monitor-grace-period (50 s) after
	// the last renewal, its node-monitor-period (5 s), and a loaded machine.
	notReadyTimeout = 150 * time.Second
)

// TestCluster starts a three-node cluster and checks what the e2e tests rely on: Nodes Ready,
// a pod bound to a node Running, a stopped node's Lease frozen until the node goes NotReady
// while the others carry on, the node back after StartNode, the API server restarted on the
// same address, and Stop (through the state file, as `hack/localcluster down`) leaving no
// process behind.
func TestCluster(t *testing.T) {
	binDir := os.Getenv("WOLFPACK_E2E_BINDIR")
	if binDir == "" {
		t.Skip("WOLFPACK_E2E_BINDIR is not set: run make test-e2e")
	}
	ctx := t.Context()
	c := startCluster(t, binDir)
	client, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("nodes are Ready", func(t *testing.T) {
		for _, name := range []string{nodeA, nodeB, nodeC} {
			if got := nodeReady(ctx, t, client, name); got != corev1.ConditionTrue {
				t.Errorf("node %s: Ready %s, want True", name, got)
			}
		}
	})
	t.Run("a pod pinned to a node runs", func(t *testing.T) {
		createPinnedDeployment(ctx, t, client, "pinned", nodeB)
		poll.Wait(t, "the pod of Deployment pinned Running on "+nodeB, 90*time.Second, func() error {
			return podRunningOn(ctx, client, "app=pinned", nodeB)
		})
	})
	t.Run("StopNode freezes the node's Lease until the node is NotReady", func(t *testing.T) {
		stopNodeUntilNotReady(ctx, t, c, nodeB)
	})
	t.Run("StartNode brings the node back", func(t *testing.T) {
		oldHolder := *lease(ctx, t, client, nodeB).Spec.HolderIdentity
		if err := c.StartNode(nodeB); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitNodeReady(ctx, nodeB); err != nil {
			t.Fatal(err)
		}
		if holder := *lease(ctx, t, client, nodeB).Spec.HolderIdentity; holder == oldHolder {
			t.Errorf("the Lease of %s is still held by the stopped kwok %s", nodeB, holder)
		}
	})
	t.Run("RestartAPIServer", func(t *testing.T) {
		restartAPIServer(ctx, t, c)
	})
	t.Run("a paused kube-apiserver is a black hole until resumed", func(t *testing.T) {
		pauseAPIServer(ctx, t, c)
	})
	t.Run("Stop through the state file leaves no process", func(t *testing.T) {
		stopThroughStateFile(t, c)
	})
}

func startCluster(t *testing.T, binDir string) *cluster.Cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "wolfpack-e2e-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	c, err := cluster.Start(t.Context(), cluster.Options{
		Dir:    dir,
		BinDir: binDir,
		Nodes: []cluster.Node{
			{Name: nodeA, Labels: map[string]string{"wolfpack.dev/cluster": "e2e"}},
			{Name: nodeB, Labels: map[string]string{"wolfpack.dev/cluster": "e2e"}},
			{Name: nodeC},
		},
		Log: testLog{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster started in %s", time.Since(begin).Round(100*time.Millisecond))
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("cluster files and logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return c
}

// stopNodeUntilNotReady stops the node's kwok and checks, until kube-controller-manager marks
// the node not Ready, that its Lease is not renewed while another node's is.
func stopNodeUntilNotReady(ctx context.Context, t *testing.T, c *cluster.Cluster, name string) {
	t.Helper()
	client := c.Client()
	if err := c.StopNode(name); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	frozen := lease(ctx, t, client, name).Spec.RenewTime.Time
	other := lease(ctx, t, client, nodeA).Spec.RenewTime.Time
	for nodeReady(ctx, t, client, name) == corev1.ConditionTrue {
		if time.Since(stopped) > notReadyTimeout {
			t.Fatalf("node %s still Ready %s after its kwok was stopped", name, notReadyTimeout)
		}
		if renewed := lease(ctx, t, client, name).Spec.RenewTime.Time; !renewed.Equal(frozen) {
			t.Fatalf("the Lease of %s was renewed at %s after its kwok was stopped", name, renewed)
		}
		time.Sleep(time.Second)
	}
	t.Logf("node %s not Ready %s after its kwok was stopped (last renewal %s before)",
		name, time.Since(stopped).Round(time.Second), stopped.Sub(frozen).Round(time.Second))
	if renewed := lease(ctx, t, client, nodeA).Spec.RenewTime.Time; !renewed.After(other) {
		t.Errorf("the Lease of %s was not renewed meanwhile either", nodeA)
	}
	if got := nodeReady(ctx, t, client, nodeA); got != corev1.ConditionTrue {
		t.Errorf("node %s: Ready %s, want True", nodeA, got)
	}
}

// restartAPIServer restarts kube-apiserver and checks that the client, the components and the
// kwok processes all work with the new one.
func restartAPIServer(ctx context.Context, t *testing.T, c *cluster.Cluster) {
	t.Helper()
	client := c.Client()
	before := c.PIDs()
	if err := c.RestartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	after := c.PIDs()
	if after["kube-apiserver"] == before["kube-apiserver"] {
		t.Errorf("kube-apiserver pid %d, want a new process", after["kube-apiserver"])
	}
	for _, name := range []string{"etcd", "kube-controller-manager", "kube-scheduler", "kwok-" + nodeA} {
		if after[name] != before[name] {
			t.Errorf("%s: pid %d, want %d still running", name, after[name], before[name])
		}
	}
	renewed := lease(ctx, t, client, nodeA).Spec.RenewTime.Time
	poll.Wait(t, "a renewal of the Lease of "+nodeA+" through the new API server", 60*time.Second, func() error {
		l, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, nodeA, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !l.Spec.RenewTime.After(renewed) {
			return fmt.Errorf("renewed last at %s", l.Spec.RenewTime)
		}
		return nil
	})
	// The scheduler and kwok work with the new API server.
	createPinnedDeployment(ctx, t, client, "after-restart", nodeC)
	poll.Wait(t, "the pod of Deployment after-restart Running on "+nodeC, 90*time.Second, func() error {
		return podRunningOn(ctx, client, "app=after-restart", nodeC)
	})
}

// pauseAPIServer pauses kube-apiserver: a request hangs until its own deadline (the connection is
// not refused), and the same request answers once it is resumed.
func pauseAPIServer(ctx context.Context, t *testing.T, c *cluster.Cluster) {
	t.Helper()
	client := c.Client()
	if err := c.Pause(cluster.APIServer); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Resume(cluster.APIServer) })
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", c.PIDs()[cluster.APIServer])); err != nil {
		t.Fatalf("the paused kube-apiserver is gone: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	began := time.Now()
	_, err := client.CoreV1().Nodes().Get(short, nodeA, metav1.GetOptions{})
	cancel()
	if took := time.Since(began); err == nil || took < 1900*time.Millisecond {
		t.Errorf("a request to the paused kube-apiserver: %v after %s, want it to hang until its deadline (2 s)", err, took)
	}
	if err := c.Resume(cluster.APIServer); err != nil {
		t.Fatal(err)
	}
	poll.Wait(t, "an answer from the resumed kube-apiserver", 60*time.Second, func() error {
		_, err := client.CoreV1().Nodes().Get(ctx, nodeA, metav1.GetOptions{})
		return err
	})
}

// stopThroughStateFile stops the cluster as another process would, and checks that every
// process is gone.
func stopThroughStateFile(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	pids := c.PIDs()
	if len(pids) != 7 {
		t.Errorf("running processes %v, want 7", pids)
	}
	attached, err := cluster.Attach(c.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if got := attached.PIDs(); fmt.Sprint(got) != fmt.Sprint(pids) {
		t.Errorf("attached: pids %v, want %v", got, pids)
	}
	if err := attached.Stop(); err != nil {
		t.Fatal(err)
	}
	// They are this test's children: gone once reaped, which Start's goroutines do.
	poll.Wait(t, "every process gone", 10*time.Second, func() error {
		var alive []string
		for name, pid := range pids {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				alive = append(alive, fmt.Sprintf("%s (pid %d)", name, pid))
			}
		}
		if len(alive) > 0 {
			return fmt.Errorf("still running: %s", strings.Join(alive, ", "))
		}
		return nil
	})
	if _, err := cluster.Attach(c.Dir()); err == nil {
		t.Error("the state file is still there after Stop")
	}
}

func createPinnedDeployment(ctx context.Context, t *testing.T, client kubernetes.Interface, name, node string) {
	t.Helper()
	labels := map[string]string{"app": name}
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"kubernetes.io/hostname": node},
					Containers:   []corev1.Container{{Name: "app", Image: "registry.invalid/app"}},
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(metav1.NamespaceDefault).Create(ctx, deployment, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func podRunningOn(ctx context.Context, client kubernetes.Interface, selector, node string) error {
	pods, err := client.CoreV1().Pods(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return err
	}
	if len(pods.Items) != 1 {
		return fmt.Errorf("%d pods", len(pods.Items))
	}
	pod := pods.Items[0]
	if pod.Spec.NodeName != node || pod.Status.Phase != corev1.PodRunning {
		return fmt.Errorf("pod %s on node %q is %s", pod.Name, pod.Spec.NodeName, pod.Status.Phase)
	}
	return nil
}

func nodeReady(ctx context.Context, t *testing.T, client kubernetes.Interface, name string) corev1.ConditionStatus {
	t.Helper()
	node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status
		}
	}
	return corev1.ConditionUnknown
}

func lease(ctx context.Context, t *testing.T, client kubernetes.Interface, node string) *coordinationv1.Lease {
	t.Helper()
	l, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.RenewTime == nil || l.Spec.HolderIdentity == nil {
		t.Fatalf("Lease of %s without holder or renewal: %+v", node, l.Spec)
	}
	return l
}

// testLog writes the cluster's progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
