package deploy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// nodeNameClaim is the extra of a ServiceAccount token bound to a pod (or a Node) that names the
// node: ServiceAccountTokenPodNodeInfo, GA in Kubernetes 1.32.
const nodeNameClaim = "authentication.kubernetes.io/node-name"

// TestAgentAdmissionPolicy is the first half of schedule 9 of issue 13: every agent has the same
// ServiceAccount and RBAC that lets it write every Lease of the namespace, so one agent, or
// anyone with its token, could forge another node's Lease and have that node counted Down and
// fenced. The chart's ValidatingAdmissionPolicy restricts the agent to its own node's Lease, by
// the node its token is bound to. On a bare API server: the chart's agent ServiceAccount and
// RBAC, nodes a and b, an agent pod bound to a, and a token bound to that pod. Without the
// policy RBAC alone lets the token write b's Lease (the control); with it, the token renews a's
// Lease and is refused b's, a Lease labelled or held for b, and an unbound token is refused; it
// reports on a Resource placed on a, not on one placed on b, and cannot move one.
func TestAgentAdmissionPolicy(t *testing.T) {
	ctx := t.Context()
	env, err := startBare()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	admin, err := client.New(env.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs := render(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}))
	for _, kind := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
		_, err := applyObject(ctx, admin, mustFind(t, objs, kind, "wolfpack-node-agent"))
		must(err)
	}
	const a, b = "node-a", "node-b"
	for _, n := range []string{a, b} {
		must(admin.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}))
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "wolfpack-node-agent-a"},
		Spec: corev1.PodSpec{NodeName: a, ServiceAccountName: "wolfpack-node-agent",
			Containers: []corev1.Container{{Name: "agent", Image: "ghcr.io/wolfpack-ha/wolfpack:0.1.0"}}}}
	must(admin.Create(ctx, pod))

	cs, err := kubernetes.NewForConfig(env.Config)
	must(err)
	token := func(bound *authenticationv1.BoundObjectReference) client.Client {
		t.Helper()
		tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, "wolfpack-node-agent",
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: bound, ExpirationSeconds: ptr.To[int64](3600)}},
			metav1.CreateOptions{})
		must(err)
		cfg := rest.AnonymousClientConfig(env.Config)
		cfg.BearerToken = tr.Status.Token
		c, err := client.New(cfg, client.Options{})
		must(err)
		return c
	}
	agentA := token(&authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID})
	unbound := token(nil)

	// The API server puts the pod's node in the token; a token bound to a Node (for agents run
	// outside pods, as the end-to-end environment runs them) names that node.
	nodeB := &corev1.Node{}
	must(admin.Get(ctx, client.ObjectKey{Name: b}, nodeB))
	agentB := token(&authenticationv1.BoundObjectReference{Kind: "Node", APIVersion: "v1", Name: b, UID: nodeB.UID})
	for node, c := range map[string]client.Client{a: agentA, b: agentB} {
		review := &authenticationv1.SelfSubjectReview{}
		must(c.Create(ctx, review))
		if got := review.Status.UserInfo.Extra[nodeNameClaim]; len(got) != 1 || got[0] != node {
			t.Fatalf("the token bound to %s has %s %v, want [%s] (user %+v)", node, nodeNameClaim, got, node, review.Status.UserInfo)
		}
	}

	lease := func(name, node string) *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
				Labels: map[string]string{"wolfpack.dev/cluster": "demo", "wolfpack.dev/node": node}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(node), LeaseDurationSeconds: ptr.To[int32](10),
				RenewTime: ptr.To(metav1.NewMicroTime(time.Now().Add(-time.Hour)))},
		}
	}
	// b's own Lease, as b's agent keeps it.
	must(admin.Create(ctx, lease(b, b)))

	// The control: RBAC alone lets a's token write b's Lease, which is what the policy stops.
	if err := agentA.Create(ctx, lease("forged", b), client.DryRunAll); err != nil {
		t.Fatalf("without the policy the agent's RBAC refuses a forged Lease already (%v): this test would show nothing", err)
	}
	stale := &coordinationv1.Lease{}
	must(admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: b}, stale))
	if err := agentA.Update(ctx, stale.DeepCopy(), client.DryRunAll); err != nil {
		t.Fatalf("without the policy the agent's RBAC refuses updating b's Lease already: %v", err)
	}

	for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		_, err := applyObject(ctx, admin, mustFind(t, objs, kind, "wolfpack-node-agent-own-node"))
		must(err)
	}
	// The API server takes a moment to load a new policy: until then a dry run still passes.
	onlyOwn := fmt.Sprintf("the node agent of %s may write only its own Lease %s, not %s", a, a, b)
	refused := func(err error, want string) error {
		switch {
		case err == nil:
			return fmt.Errorf("accepted; want refused with %q", want)
		case !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err):
			return fmt.Errorf("refused with %w; want refused by the policy with %q", err, want)
		case !strings.Contains(err.Error(), want):
			return fmt.Errorf("refused with %w; want %q", err, want)
		}
		return nil
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		return refused(agentA.Create(ctx, lease(b+"-2", b), client.DryRunAll), "may write only its own Lease") == nil, nil
	})
	if err != nil {
		t.Fatalf("the policy never refused a forged Lease: %v", err)
	}

	// a's agent creates and renews its own Lease.
	own := lease(a, a)
	if err := agentA.Create(ctx, own); err != nil {
		t.Fatalf("a's agent creating its own Lease: %v", err)
	}
	own.Spec.RenewTime = ptr.To(metav1.NewMicroTime(time.Now()))
	if err := agentA.Update(ctx, own); err != nil {
		t.Fatalf("a's agent renewing its own Lease: %v", err)
	}

	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"creating b's Lease", agentA.Create(ctx, lease(b, b)), onlyOwn},
		{"updating b's Lease", agentA.Update(ctx, stale.DeepCopy()), onlyOwn},
		{"creating a Lease labelled for b", agentA.Create(ctx, lease("forged", b)), fmt.Sprintf("may write only its own Lease %s, not forged", a)},
		{"labelling its own Lease for b", func() error {
			l := own.DeepCopy()
			l.Labels["wolfpack.dev/node"] = b
			return agentA.Update(ctx, l)
		}(), fmt.Sprintf("the node agent of %s may not label or hold a Lease for another node", a)},
		{"holding its own Lease as b", func() error {
			l := own.DeepCopy()
			l.Spec.HolderIdentity = ptr.To(b)
			return agentA.Update(ctx, l)
		}(), fmt.Sprintf("the node agent of %s may not label or hold a Lease for another node", a)},
		{"an unbound token creating a Lease", unbound.Create(ctx, lease("unbound", a)), "carries no " + nodeNameClaim + " claim"},
	} {
		if err := refused(tc.err, tc.want); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		t.Logf("%s: refused: %v", tc.name, tc.err)
	}
	got := &coordinationv1.Lease{}
	must(admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: b}, got))
	if !got.Spec.RenewTime.Equal(stale.Spec.RenewTime) || *got.Spec.HolderIdentity != b {
		t.Errorf("b's Lease changed: %+v", got.Spec)
	}
	// b's own agent, with a Node-bound token, renews it.
	got.Spec.RenewTime = ptr.To(metav1.NewMicroTime(time.Now()))
	if err := agentB.Update(ctx, got); err != nil {
		t.Errorf("b's agent (a token bound to Node %s) renewing its own Lease: %v", b, err)
	}

	// Resource status: a's agent reports on the resources placed on a only, and never moves
	// them.
	crds := ofKind(objs, "CustomResourceDefinition")
	for _, crd := range crds {
		_, err := applyObject(ctx, admin, crd)
		must(err)
	}
	waitEstablished(t, admin, crds)
	res := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "wolfpack.dev/v1alpha1", "kind": "Resource",
		"metadata": map[string]any{"namespace": namespace, "name": "ip"},
		"spec":     map[string]any{"group": "sql", "ipAddress": map[string]any{"address": "192.0.2.50"}},
	}}
	_, err = applyObject(ctx, admin, res)
	must(err)
	place := func(node string) *unstructured.Unstructured {
		t.Helper()
		u := res.DeepCopy()
		must(admin.Get(ctx, client.ObjectKeyFromObject(u), u))
		must(unstructured.SetNestedMap(u.Object, map[string]any{"state": "OnlinePending", "node": node}, "status"))
		must(admin.Status().Update(ctx, u))
		return u
	}
	// As the agent does, by a patch (its RBAC grants no update of resources/status).
	report := func(orig *unstructured.Unstructured, change func(status map[string]any)) error {
		u := orig.DeepCopy()
		status, _, _ := unstructured.NestedMap(u.Object, "status")
		status["conditions"] = []any{map[string]any{"type": "AddressAssigned", "status": "True", "reason": "AddressAdded",
			"message": "added", "lastTransitionTime": "2026-01-01T00:00:00Z"}}
		if change != nil {
			change(status)
		}
		if err := unstructured.SetNestedMap(u.Object, status, "status"); err != nil {
			return err
		}
		return agentA.Status().Patch(ctx, u, client.MergeFrom(orig))
	}
	placedOnB := place(b)
	if err := refused(report(placedOnB, nil), fmt.Sprintf("the node agent of %s may write the status of only the resources placed on its node", a)); err != nil {
		t.Errorf("reporting on a resource placed on b: %v", err)
	}
	placedOnA := place(a)
	if err := report(placedOnA, nil); err != nil {
		t.Errorf("a's agent reporting on a resource placed on a: %v", err)
	}
	placedOnA = place(a)
	for name, change := range map[string]func(map[string]any){
		"moving it to b":     func(s map[string]any) { s["node"] = b },
		"marking it Offline": func(s map[string]any) { s["state"] = "Offline" },
	} {
		if err := refused(report(placedOnA, change), "and not their node or state"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
