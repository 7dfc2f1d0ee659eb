package deploy

import (
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestInstall installs the chart on a bare kube-apiserver (no CRDs but the chart's), checks that
// every object of the release is there and that the samples are accepted by the chart's CRDs,
// upgrades it (same heartbeat key), uninstalls it (the CRDs and the key stay, the rest goes) and
// installs it again over what was kept (same key). Nothing runs the pods: no kubelet, scheduler
// or controllers run, so objects are accepted, not started.
func TestInstall(t *testing.T) {
	ctx := t.Context()
	c, err := client.New(helmEnv.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kube := []string{"--namespace", namespace, "--kubeconfig", helmKubeconfig}
	rendered := ids(render(t))

	start := time.Now()
	helm(t, append([]string{"install", release, chartDir, "--create-namespace"}, kube...)...)
	manifest := releaseObjects(t, kube)
	if got := ids(manifest); !slices.Equal(got, rendered) {
		t.Errorf("the release has\n  %q\nhelm template renders\n  %q", got, rendered)
	}
	for _, o := range manifest {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
			t.Errorf("%s is not on the API server: %v", id(o), err)
		}
	}
	t.Logf("installed and found %d objects in %s", len(manifest), time.Since(start).Round(time.Millisecond))

	// The pods of the manager and the agents are admitted in the namespace that
	// --create-namespace made (no Pod Security label: the cluster's default, privileged here).
	for _, w := range []*unstructured.Unstructured{
		mustFind(t, manifest, "Deployment", "wolfpack-manager"), mustFind(t, manifest, "DaemonSet", "wolfpack-node-agent"),
	} {
		if err := admitPod(t, c, w); err != nil {
			t.Error(err)
		}
	}

	crds := ofKind(manifest, "CustomResourceDefinition")
	waitEstablished(t, c, crds)
	for _, o := range kustomize(t, "config/samples") {
		if _, err := applyObject(ctx, c, o); err != nil {
			t.Errorf("the chart's CRDs refuse the sample %s: %v", id(o), err)
		}
	}
	key := heartbeatKey(t, c)

	helm(t, append([]string{"upgrade", release, chartDir, "--set", "manager.concurrency=8"}, kube...)...)
	var d appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "wolfpack-manager"}, &d); err != nil {
		t.Fatal(err)
	}
	if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--concurrency=8") {
		t.Errorf("the upgrade did not reach the Deployment: %q", args)
	}
	if got := heartbeatKey(t, c); got != key {
		t.Errorf("the upgrade changed the heartbeat key")
	}

	helm(t, append([]string{"uninstall", release}, kube...)...)
	for _, o := range manifest {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		err := c.Get(ctx, client.ObjectKeyFromObject(o), got)
		kept := o.GetKind() == "CustomResourceDefinition" || o.GetKind() == "Secret"
		switch {
		case kept && err != nil:
			t.Errorf("uninstall removed %s: %v", id(o), err)
		case !kept && !apierrors.IsNotFound(err):
			t.Errorf("uninstall left %s (%v)", id(o), err)
		}
	}
	if got := heartbeatKey(t, c); got != key {
		t.Errorf("the heartbeat key changed on uninstall")
	}
	var qds unstructured.UnstructuredList
	qds.SetAPIVersion("wolfpack.dev/v1alpha1")
	qds.SetKind("QuorumDiskList")
	if err := c.List(ctx, &qds); err != nil || len(qds.Items) != 1 {
		t.Errorf("the sample QuorumDisk did not outlive the uninstall: %d, %v", len(qds.Items), err)
	}

	helm(t, append([]string{"install", release, chartDir}, kube...)...)
	if got := heartbeatKey(t, c); got != key {
		t.Errorf("installing again over the kept Secret changed the heartbeat key")
	}
}

// releaseObjects are the objects of the release, from `helm get manifest`.
func releaseObjects(t *testing.T, kube []string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := decode([]byte(helm(t, append([]string{"get", "manifest", release}, kube...)...)))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// heartbeatKey is the key in the chart's Secret.
func heartbeatKey(t *testing.T, c client.Client) string {
	t.Helper()
	var s corev1.Secret
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "wolfpack-heartbeat-key"}, &s); err != nil {
		t.Fatalf("the heartbeat key Secret: %v", err)
	}
	key := string(s.Data["key"])
	if len(key) != 48 || strings.Trim(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
		t.Fatalf("the heartbeat key %q is not 48 random letters and digits", key)
	}
	return key
}
