package arbitration

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
)

func nodes(states ...string) []wolfpackv1alpha1.NodeStatus {
	out := make([]wolfpackv1alpha1.NodeStatus, 0, len(states))
	for _, s := range states {
		name, state, _ := strings.Cut(s, "=")
		out = append(out, wolfpackv1alpha1.NodeStatus{Name: name, State: wolfpackv1alpha1.NodeState(state)})
	}
	return out
}

func TestHolderNode(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Input
		want string
	}{
		{"the owner stays while its holder renews, even when another node comes first",
			Input{Nodes: nodes("a=Up", "b=Up"), Owner: "b", Pods: []Pod{{Node: "b", Live: true}}}, "b"},
		{"the owner stays even when the cluster has it Down: its holder still renews",
			Input{Nodes: nodes("a=Up", "b=Down"), Owner: "b"}, "b"},
		{"no owner: a live holder waiting on the disk is left to finish",
			Input{Nodes: nodes("a=Up", "b=Up"), Pods: []Pod{{Node: "b", Live: true}}}, "b"},
		{"no owner: a holder on a Down node moves to the first Up node",
			Input{Nodes: nodes("a=Down", "b=Up", "c=Up"), Pods: []Pod{{Node: "a", Live: true}}}, "b"},
		{"no owner: a holder that terminated is replaced on the first Up node",
			Input{Nodes: nodes("a=Up", "b=Up"), Pods: []Pod{{Node: "b", Live: false}}}, "a"},
		{"no owner: a holder on a node that left the cluster moves",
			Input{Nodes: nodes("a=Up"), Pods: []Pod{{Node: "x", Live: true}}}, "a"},
		{"no owner and no holder: Up before Paused before Joining",
			Input{Nodes: nodes("a=Joining", "b=Paused", "c=Up")}, "c"},
		{"no Up node: a Paused one",
			Input{Nodes: nodes("a=Joining", "b=Paused", "c=Down")}, "b"},
		{"only Joining nodes", Input{Nodes: nodes("b=Joining", "a=Joining")}, "a"},
		{"every node Down: nowhere", Input{Nodes: nodes("a=Down", "b=Down")}, ""},
		{"no members", Input{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := HolderNode(tc.in)
			if got != tc.want {
				t.Fatalf("HolderNode = %q (%s), want %q", got, why, tc.want)
			}
			if why == "" {
				t.Fatal("no reason given")
			}
		})
	}
}

func TestHolderPod(t *testing.T) {
	qd := builder.QuorumDisk("demo").UID("u-1").Claim("wolfpack-system", "quorum").Obj()
	for _, tc := range []struct {
		name       string
		block      bool
		wantDevice string
	}{
		{"filesystem claim: a file on the mounted volume", false, "--device=" + MountPath + "/" + FileName},
		{"block claim: the raw device", true, "--device=" + DevicePath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := HolderPod(qd, "node-a", PodOptions{Image: "wolfpack:1", LeaseNamespace: "wolfpack-system", Block: tc.block})
			if p.Name != PodName("demo", "node-a") || p.Namespace != "wolfpack-system" {
				t.Errorf("pod %s/%s: want %s in the claim's namespace", p.Namespace, p.Name, PodName("demo", "node-a"))
			}
			if p.Spec.NodeName != "node-a" {
				t.Errorf("pinned to %q, want node-a", p.Spec.NodeName)
			}
			if p.Labels[wolfpackv1alpha1.ClusterLabel] != "demo" || p.Labels[wolfpackv1alpha1.NodeLabel] != "node-a" {
				t.Errorf("labels %v", p.Labels)
			}
			if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].UID != "u-1" || !*p.OwnerReferences[0].Controller {
				t.Errorf("owner references %v: want the QuorumDisk as controller", p.OwnerReferences)
			}
			c := p.Spec.Containers[0]
			if got := strings.Join(c.Command, " "); !strings.Contains(got, tc.wantDevice) ||
				!strings.Contains(got, "quorum --cluster=demo") || !strings.Contains(got, "--lease-namespace=wolfpack-system") {
				t.Errorf("command %q", got)
			}
			claimMounts := 0
			for _, m := range c.VolumeMounts {
				if m.Name == volumeName {
					claimMounts++
				}
			}
			if tc.block != (len(c.VolumeDevices) == 1) || tc.block == (claimMounts == 1) {
				t.Errorf("block %v: devices %v, mounts %v", tc.block, c.VolumeDevices, c.VolumeMounts)
			}
			if p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "quorum" {
				t.Errorf("volume %v", p.Spec.Volumes[0])
			}
			// The node-local channel to the agent: /run/wolfpack/<cluster> on the host, at the
			// same path in the container, and the holder told where.
			if len(p.Spec.Volumes) != 2 || p.Spec.Volumes[1].HostPath == nil || p.Spec.Volumes[1].HostPath.Path != "/run/wolfpack/demo" {
				t.Errorf("volumes %v, want the claim and the hostPath /run/wolfpack/demo", p.Spec.Volumes)
			}
			if m := c.VolumeMounts[len(c.VolumeMounts)-1]; m.Name != localVolumeName || m.MountPath != "/run/wolfpack/demo" || m.ReadOnly ||
				!strings.Contains(strings.Join(c.Command, " "), "--local-dir=/run/wolfpack") {
				t.Errorf("mounts %v, command %q: want /run/wolfpack/demo writable, --local-dir=/run/wolfpack", c.VolumeMounts, c.Command)
			}
			for _, tol := range p.Spec.Tolerations {
				if tol.Key == corev1.TaintNodeOutOfService {
					t.Error("the holder tolerates the out-of-service taint: a gone node would keep its volume")
				}
			}
			if !*p.Spec.SecurityContext.RunAsNonRoot || *c.SecurityContext.AllowPrivilegeEscalation {
				t.Error("the holder must run as non-root without privilege escalation")
			}
		})
	}
}

func TestPodName(t *testing.T) {
	if PodName("c", "a") == PodName("c", "b") {
		t.Fatal("two nodes share a holder pod name")
	}
	long := PodName(strings.Repeat("x", 253), "a")
	if len(long) > 253 {
		t.Fatalf("pod name of %d characters", len(long))
	}
}

func TestPodLive(t *testing.T) {
	now := metav1.Now()
	for _, tc := range []struct {
		name string
		pod  corev1.Pod
		want bool
	}{
		{"pending", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending}}, true},
		{"running", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning}}, true},
		{"failed", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed}}, false},
		{"succeeded", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}, false},
		{"being deleted", corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}, false},
	} {
		if got := PodLive(&tc.pod); got != tc.want {
			t.Errorf("%s: PodLive = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOutOfService(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	down := func(since time.Duration, fenced bool) wolfpackv1alpha1.NodeStatus {
		return wolfpackv1alpha1.NodeStatus{Name: "a", State: wolfpackv1alpha1.NodeDown, Fenced: fenced, Since: metav1.NewTime(now.Add(-since))}
	}
	up := wolfpackv1alpha1.NodeStatus{Name: "a", State: wolfpackv1alpha1.NodeUp}
	node := func(ready corev1.ConditionStatus, tainted bool, ours bool) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a"},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}}}
		if tainted {
			n.Spec.Taints = []corev1.Taint{OutOfServiceTaint}
		}
		if ours {
			n.Annotations = map[string]string{OutOfServiceAnnotation: "true"}
		}
		return n
	}
	for _, tc := range []struct {
		name   string
		status wolfpackv1alpha1.NodeStatus
		node   *corev1.Node
		want   TaintChange
	}{
		{"Down, reported fenced, kubelet gone: taint", down(0, true), node(corev1.ConditionUnknown, false, false), TaintAdd},
		{"Down and fenced by silence, kubelet gone: taint", down(6*time.Second, true), node(corev1.ConditionFalse, false, false), TaintAdd},
		{"Down for an hour, not fenced: no taint", down(time.Hour, false), node(corev1.ConditionUnknown, false, false), TaintKeep},
		{"Down and fenced but the kubelet is Ready: the node is alive, no taint", down(time.Minute, true), node(corev1.ConditionTrue, false, false), TaintKeep},
		{"no Ready condition at all counts as not ready", down(0, true), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, TaintAdd},
		{"Up and not ready: not gone", up, node(corev1.ConditionUnknown, false, false), TaintKeep},
		{"already tainted: nothing to do", down(0, true), node(corev1.ConditionUnknown, true, true), TaintKeep},
		{"back Up and Ready: our taint comes off", up, node(corev1.ConditionTrue, true, true), TaintRemove},
		{"back Up but the kubelet is not Ready yet: keep", up, node(corev1.ConditionUnknown, true, true), TaintKeep},
		{"Ready but still Down in the cluster: keep", down(time.Minute, true), node(corev1.ConditionTrue, true, true), TaintKeep},
		{"someone else's taint is never removed", up, node(corev1.ConditionTrue, true, false), TaintKeep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := OutOfService(tc.status, tc.node)
			if got != tc.want {
				t.Fatalf("OutOfService = %v (%s), want %v", got, why, tc.want)
			}
			if got != TaintKeep && why == "" {
				t.Fatal("no reason given")
			}
		})
	}
}
