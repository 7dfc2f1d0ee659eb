package arbitration

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
)

func TestTaints(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	state := func(name string, s wolfpackv1alpha1.NodeState, since time.Duration) wolfpackv1alpha1.NodeStatus {
		return wolfpackv1alpha1.NodeStatus{Name: name, State: s, Since: metav1.NewTime(now.Add(-since)), Fenced: s == wolfpackv1alpha1.NodeDown}
	}
	node := func(name string, ready corev1.ConditionStatus, ours bool) corev1.Node {
		n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}}}
		if ours {
			n.Spec.Taints = []corev1.Taint{OutOfServiceTaint}
			n.Annotations = map[string]string{OutOfServiceAnnotation: "true"}
		}
		return n
	}
	for _, tc := range []struct {
		name   string
		states []wolfpackv1alpha1.NodeStatus
		nodes  []corev1.Node
		want   []string // node=change
	}{
		{name: "all Up: nothing", states: []wolfpackv1alpha1.NodeStatus{state("a", wolfpackv1alpha1.NodeUp, time.Hour)},
			nodes: []corev1.Node{node("a", corev1.ConditionTrue, false)}},
		{name: "a Down and fenced is tainted, b back is untainted",
			states: []wolfpackv1alpha1.NodeStatus{state("a", wolfpackv1alpha1.NodeDown, time.Minute), state("b", wolfpackv1alpha1.NodeUp, time.Minute)},
			nodes:  []corev1.Node{node("a", corev1.ConditionUnknown, false), node("b", corev1.ConditionTrue, true)},
			want:   []string{"a=add", "b=remove"}},
		{name: "Down for an hour but not fenced: no taint, however long",
			states: []wolfpackv1alpha1.NodeStatus{{Name: "a", State: wolfpackv1alpha1.NodeDown, Since: metav1.NewTime(now.Add(-time.Hour))}},
			nodes:  []corev1.Node{node("a", corev1.ConditionUnknown, false)}},
		{name: "a Node the membership does not know yet is left alone",
			nodes: []corev1.Node{node("a", corev1.ConditionUnknown, true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Taints(tc.states, tc.nodes)
			names := make([]string, 0, len(got))
			for _, g := range got {
				change := map[TaintChange]string{TaintAdd: "add", TaintRemove: "remove", TaintKeep: "keep"}[g.Change]
				names = append(names, g.Node+"="+change)
				if g.Why == "" {
					t.Errorf("%s: no reason given", g.Node)
				}
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("Taints = %v; want %v", names, tc.want)
			}
		})
	}
}

func TestTaintChangeApply(t *testing.T) {
	admin := corev1.Taint{Key: "example.com/maintenance", Effect: corev1.TaintEffectNoSchedule}
	n := &corev1.Node{Spec: corev1.NodeSpec{Taints: []corev1.Taint{admin}}}
	TaintAdd.Apply(n)
	if !slices.Contains(n.Spec.Taints, OutOfServiceTaint) || n.Annotations[OutOfServiceAnnotation] == "" || !slices.Contains(n.Spec.Taints, admin) {
		t.Fatalf("after TaintAdd: taints %v, annotations %v", n.Spec.Taints, n.Annotations)
	}
	TaintKeep.Apply(n)
	if len(n.Spec.Taints) != 2 {
		t.Fatalf("TaintKeep changed the taints: %v", n.Spec.Taints)
	}
	TaintRemove.Apply(n)
	if !slices.Equal(n.Spec.Taints, []corev1.Taint{admin}) || n.Annotations[OutOfServiceAnnotation] != "" {
		t.Fatalf("after TaintRemove: taints %v, annotations %v", n.Spec.Taints, n.Annotations)
	}
}

func TestSetHolderRunning(t *testing.T) {
	qd := builder.QuorumDisk("prod").Claim("wolfpack-system", "quorum").Obj()
	for _, tc := range []struct {
		name   string
		placed Placed
		status metav1.ConditionStatus
		reason string
		says   string
	}{
		{"no claim", Placed{ClaimMissing: true}, metav1.ConditionFalse, wolfpackv1alpha1.ClaimNotFoundReason,
			"spec.volumeClaim wolfpack-system/quorum: no such PersistentVolumeClaim"},
		{"no node", Placed{Why: "no member node is Up"}, metav1.ConditionFalse, wolfpackv1alpha1.NoEligibleNodeReason,
			"no quorum holder runs: no member node is Up"},
		{"create refused", Placed{Target: "a", Why: "first Up", Err: errors.New(`pods "x" is forbidden: exceeded quota`)},
			metav1.ConditionFalse, wolfpackv1alpha1.HolderFailedReason, "on node a: pods \"x\" is forbidden: exceeded quota"},
		{"the old pod is still stopping", Placed{Target: "a", Why: "first Up", Waiting: true}, metav1.ConditionFalse,
			wolfpackv1alpha1.ReconcilingReason, "waiting for the old quorum holder pod wolfpack-system/" + PodName("prod", "a")},
		{"running", Placed{Target: "b", Why: "it holds the quorum disk", Running: true}, metav1.ConditionTrue,
			wolfpackv1alpha1.AsExpectedReason, "the quorum holder runs on node b: it holds the quorum disk"},
		{"just started", Placed{Target: "b", Why: "first Up"}, metav1.ConditionTrue, wolfpackv1alpha1.HolderPlacedReason,
			"started the quorum holder on node b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s wolfpackv1alpha1.QuorumDiskStatus
			SetHolderRunning(&s, qd, tc.placed)
			c := meta.FindStatusCondition(s.Conditions, wolfpackv1alpha1.HolderRunningCondition)
			if c == nil || c.Status != tc.status || c.Reason != tc.reason || !strings.Contains(c.Message, tc.says) {
				t.Errorf("HolderRunning %+v; want %s %s saying %q", c, tc.status, tc.reason, tc.says)
			}
		})
	}
}
