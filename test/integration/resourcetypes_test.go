package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
	"github.com/wolfpack-ha/wolfpack/internal/test/simnode"
)

// fakeDeploymentController reports a Deployment's replicas as ready as soon as they are asked
// for, as the deployment controller and kubelet together would.
func fakeDeploymentController(t *testing.T, ns string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var list appsv1.DeploymentList
			if err := k8sClient.List(ctx, &list, client.InNamespace(ns)); err == nil {
				for i := range list.Items {
					d := &list.Items[i]
					n := ptr.Deref(d.Spec.Replicas, 1)
					if d.Status.ObservedGeneration != d.Generation || d.Status.Replicas != n {
						d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
						_ = k8sClient.Status().Update(ctx, d)
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// TestWorkloadRefAndCustomResources moves a group made of a custom object (a ConfigMap judged by
// a CEL expression) and an existing Deployment that Wolfpack pins and scales.
func TestWorkloadRefAndCustomResources(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	a, b := ns+"-a", ns+"-b"
	labels := map[string]string{wp.ClusterLabel: ns}
	for _, n := range []string{a, b} {
		must(t, createNode(ctx, n, labels))
	}
	must(t, k8sClient.Create(ctx, builder.QuorumDisk(ns).NodeSelector(labels).Obj()))
	agents := simnode.StartAgents(k8sClient, a, b)
	t.Cleanup(agents.Stop)
	fakeDeploymentController(t, ns)

	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}
	must(t, k8sClient.Create(ctx, dep))
	group := builder.Group(ns, "web").Cluster(ns).PreferredOwners(a, b).Obj()
	cfg := builder.Resource(ns, "cfg").Group("web").Custom(
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web-config"},"data":{"ready":"yes"}}`,
		`has(object.data) && object.data.ready == "yes"`).Obj()
	web := builder.Resource(ns, "web").Group("web").DependsOn("cfg").WorkloadRef(wp.DeploymentKind, "web").Obj()
	for _, o := range []client.Object{group, cfg, web} {
		must(t, k8sClient.Create(ctx, o))
	}
	startManager(t)

	online := func(node string, epoch int64) {
		t.Helper()
		eventually(t, "group web Online on "+node, func() error {
			g := &wp.ResourceGroup{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(group), g); err != nil {
				return err
			}
			if g.Status.State != wp.GroupOnline || g.Status.OwnerNode != node || g.Status.Epoch != epoch {
				return fmt.Errorf("group is %s on %q at epoch %d (resources %+v)", g.Status.State, g.Status.OwnerNode, g.Status.Epoch, g.Status.Resources)
			}
			return nil
		})
		d := &appsv1.Deployment{}
		must(t, k8sClient.Get(ctx, client.ObjectKeyFromObject(dep), d))
		tmpl := d.Spec.Template
		if ptr.Deref(d.Spec.Replicas, -1) != 1 || tmpl.Spec.NodeSelector[corev1.LabelHostname] != node ||
			tmpl.Annotations[wp.EpochAnnotation] != fmt.Sprint(epoch) || tmpl.Spec.Containers[0].Env[0].Value != fmt.Sprint(epoch) {
			t.Errorf("deployment: replicas %d, node selector %v, annotations %v, env %v; want 1 replica pinned to %s at epoch %d",
				ptr.Deref(d.Spec.Replicas, -1), tmpl.Spec.NodeSelector, tmpl.Annotations, tmpl.Spec.Containers[0].Env, node, epoch)
		}
		cm := &corev1.ConfigMap{}
		must(t, k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-config"}, cm))
		if cm.Labels[wp.NodeLabel] != node || len(cm.OwnerReferences) != 1 {
			t.Errorf("config map labels %v, owners %v; want made for %s and owned by its Resource", cm.Labels, cm.OwnerReferences, node)
		}
	}
	online(a, 1)

	g := &wp.ResourceGroup{}
	must(t, k8sClient.Get(ctx, client.ObjectKeyFromObject(group), g))
	patch := client.MergeFrom(g.DeepCopy())
	g.Annotations = map[string]string{wp.MoveToAnnotation: b}
	must(t, k8sClient.Patch(ctx, g, patch))
	online(b, 2)
}
