package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/controllers"
	"github.com/wolfpack-ha/wolfpack/internal/arbitration"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

// The tests of this file make one of the manager's side effects fail for good, as an admission
// policy, a quota or missing RBAC would in a real cluster, and check that what the manager
// learned meanwhile still reaches the status: a side effect that fails never keeps a status
// change from being written.

// deny makes the API server refuse the requests that rule and match describe, with message, until
// the test ends: a ValidatingAdmissionPolicy that denies when the CEL expression match is true.
// in, when set, limits it to one namespace. It returns once a request that proof makes is refused,
// with a function that lifts the policy sooner.
func deny(t *testing.T, rule admissionregistrationv1.RuleWithOperations, in, match, message string, proof func() error) (lift func()) {
	t.Helper()
	ctx := context.Background()
	name := "deny-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: rule}},
			},
			Validations: []admissionregistrationv1.Validation{{Expression: "!(" + match + ")", Message: message}},
		},
	}
	if in != "" {
		policy.Spec.MatchConstraints.NamespaceSelector = &metav1.LabelSelector{
			MatchLabels: map[string]string{corev1.LabelMetadataName: in}}
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: name, ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	must(t, k8sClient.Create(ctx, policy))
	must(t, k8sClient.Create(ctx, binding))
	lift = func() {
		_ = client.IgnoreNotFound(k8sClient.Delete(context.Background(), binding))
		_ = client.IgnoreNotFound(k8sClient.Delete(context.Background(), policy))
	}
	t.Cleanup(lift)
	eventually(t, "policy "+name+" in force", func() error {
		if err := proof(); err == nil || !strings.Contains(err.Error(), message) {
			return fmt.Errorf("a request it must deny was answered %w", err)
		}
		return nil
	})
	return lift
}

// labelIs is a CEL expression: the object o has label key with value.
func labelIs(o, key, value string) string {
	return fmt.Sprintf("has(%[1]s.metadata.labels) && %[2]q in %[1]s.metadata.labels && %[1]s.metadata.labels[%[2]q] == %[3]q", o, key, value)
}

// TestTaintFailureLosesNoMembership: the API server refuses the out-of-service taint. The
// owner of the group and of the quorum disk crashes: its Down state, the new quorum owner and
// epoch, and the quorum holder's move are written all the same, and the group fails over.
func TestTaintFailureLosesNoMembership(t *testing.T) {
	ctx := context.Background()
	f := newFixtureWithQuorumClaim(t, 2*time.Second)

	const message = "out-of-service taints are not allowed here"
	deny(t, admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"nodes"}},
	}, "", fmt.Sprintf("object.metadata.name.startsWith(%q) && has(object.spec.taints) && object.spec.taints.exists(t, t.key == %q)",
		f.ns+"-", corev1.TaintNodeOutOfService), message, func() error {
		n := f.kubeNode(t, f.b)
		n.Spec.Taints = append(n.Spec.Taints, arbitration.OutOfServiceTaint)
		return k8sClient.Update(ctx, n, client.DryRunAll)
	})
	startManagerWith(t, func(o *controllers.Options) { o.Holder.Image = "wolfpack:test" })
	f.waitQuorum(t, f.a, 1)
	f.waitOnline(t, f.a)

	w := f.watch(t)
	must(t, f.kubelet.Kill(ctx, f.a))
	f.waitQuorum(t, f.b, 2)
	f.waitOnline(t, f.b)
	w.check(t)
	if n := f.node(t, f.a); n.State != wp.NodeDown || !n.Fenced {
		t.Errorf("node %s is %s, fenced %v; want Down and fenced", f.a, n.State, n.Fenced)
	}
	if hasOutOfService(f.kubeNode(t, f.a)) {
		t.Errorf("node %s is tainted although the API server refuses the taint", f.a)
	}
}

// TestHolderFailureLosesNoMembership: the API server refuses the quorum holder's pod. The member
// nodes' states are written all the same, and the QuorumDisk says why no holder runs.
func TestHolderFailureLosesNoMembership(t *testing.T) {
	ctx := context.Background()
	const message = "quorum holders may not run here"
	f := newFixtureWithQuorumClaim(t, 10*time.Second)
	const component = "app.kubernetes.io/component"
	deny(t, admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}, f.ns, labelIs("object", component, arbitration.HolderComponent), message, func() error {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "proof", Labels: map[string]string{component: arbitration.HolderComponent}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
		return k8sClient.Create(ctx, pod, client.DryRunAll)
	})
	startManagerWith(t, func(o *controllers.Options) { o.Holder.Image = "wolfpack:test" })

	f.waitNodes(t, map[string]wp.NodeState{f.a: wp.NodeUp, f.b: wp.NodeUp})
	eventually(t, "the QuorumDisk says why no holder runs", func() error {
		qd := &wp.QuorumDisk{}
		must(t, k8sClient.Get(ctx, client.ObjectKey{Name: f.cluster}, qd))
		c := meta.FindStatusCondition(qd.Status.Conditions, wp.HolderRunningCondition)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != wp.HolderFailedReason || !strings.Contains(c.Message, message) {
			return fmt.Errorf("HolderRunning is %+v, want False %s saying %q", c, wp.HolderFailedReason, message)
		}
		return nil
	})
}

// TestRestartFailureLosesNoFailure: the API server refuses to delete the server's pod. The pod
// fails: the failure, its reason and the restart are written all the same, and counted once
// however often taking the pod offline is tried again; once deletes are allowed, the restart
// goes on.
func TestRestartFailureLosesNoFailure(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	startManager(t)
	f.waitOnline(t, f.a)

	const message = "the server's pods may not be deleted"
	lift := deny(t, admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}, f.ns, labelIs("oldObject", wp.ResourceLabel, "server"), message, func() error {
		var pods corev1.PodList
		must(t, k8sClient.List(ctx, &pods, client.InNamespace(f.ns), client.MatchingLabels{wp.ResourceLabel: "server"}))
		if len(pods.Items) == 0 {
			return fmt.Errorf("no pod of server")
		}
		return k8sClient.Delete(ctx, &pods.Items[0], client.DryRunAll)
	})

	must(t, f.kubelet.Fail(ctx, "server"))
	eventually(t, "the server's failure written", func() error {
		r := f.server(t)
		if r.Status.LastFailure == nil || r.Status.Restarts != 1 {
			return fmt.Errorf("server is %s with %d restarts, last failure %+v", r.Status.State, r.Status.Restarts, r.Status.LastFailure)
		}
		if r.Status.LastFailure.Reason != wp.LooksAliveFailedReason && r.Status.LastFailure.Reason != wp.IsAliveFailedReason {
			return fmt.Errorf("last failure %+v does not say a health check failed", r.Status.LastFailure)
		}
		return nil
	})
	// The restart is tried again and again meanwhile; the failure is still one failure.
	poll.Throughout(t, "one failure, one restart", 2*time.Second, 100*time.Millisecond, func() error {
		if r := f.server(t); r.Status.Restarts != 1 {
			return fmt.Errorf("server has %d restarts for one failure", r.Status.Restarts)
		}
		return nil
	})
	r := f.server(t)
	if c := meta.FindStatusCondition(r.Status.Conditions, wp.ReadyCondition); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("server is Ready while its restart cannot go on: %+v", c)
	}

	lift()
	f.waitOnline(t, f.a)
	if r := f.server(t); r.Status.Restarts != 1 {
		t.Errorf("server has %d restarts after one failure", r.Status.Restarts)
	}
}
