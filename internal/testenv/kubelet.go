package testenv

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// Kubelet stands in for the kubelets of some nodes, where no real ones run (envtest): it runs
// the pods of a namespace bound to a live node (Running and Ready at once), finishes their
// graceful deletion, and does nothing for a dead node.
type Kubelet struct {
	c         client.Client
	namespace string
	mu        sync.Mutex
	alive     map[string]bool
	// held are "resource@node" whose pods neither start nor stop, as on a wedged runtime.
	held map[string]bool
	// started counts the pods that ran, by name: a pod that started twice is a bug.
	started map[string]int
	stop    func()
}

// StartKubelet starts kubelets for nodes, serving the pods of namespace, until Stop.
func StartKubelet(c client.Client, namespace string, nodes ...string) *Kubelet {
	k := &Kubelet{c: c, namespace: namespace, alive: map[string]bool{}, held: map[string]bool{}, started: map[string]int{}}
	for _, n := range nodes {
		k.alive[n] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			k.sync(ctx)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	k.stop = func() { cancel(); <-done }
	return k
}

// Stop stops the kubelets.
func (k *Kubelet) Stop() { k.stop() }

func (k *Kubelet) sync(ctx context.Context) {
	var pods corev1.PodList
	if err := k.c.List(ctx, &pods, client.InNamespace(k.namespace)); err != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := range pods.Items {
		p := &pods.Items[i]
		if !k.alive[p.Spec.NodeName] || k.held[p.Labels[wolfpackv1alpha1.ResourceLabel]+"@"+p.Spec.NodeName] {
			continue
		}
		switch {
		case p.DeletionTimestamp != nil:
			_ = k.c.Delete(ctx, p, client.GracePeriodSeconds(0))
		case p.Status.Phase == "" || p.Status.Phase == corev1.PodPending:
			p.Status.Phase = corev1.PodRunning
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
			if err := k.c.Status().Update(ctx, p); err == nil {
				k.started[p.Name]++
			}
		}
	}
}

// Started returns how often each pod was started, by name.
func (k *Kubelet) Started() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return maps.Clone(k.started)
}

// Fail makes the running pod of a resource fail, as a crashed container would.
func (k *Kubelet) Fail(ctx context.Context, resource string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var pods corev1.PodList
	if err := k.c.List(ctx, &pods, client.InNamespace(k.namespace), client.MatchingLabels{wolfpackv1alpha1.ResourceLabel: resource}); err != nil {
		return err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			p.Status.Phase = corev1.PodFailed
			p.Status.Reason = "Crashed"
			return k.c.Status().Update(ctx, p)
		}
	}
	return fmt.Errorf("no running pod of %s", resource)
}

// Hold wedges the pods of a resource on a node: they neither start nor stop.
func (k *Kubelet) Hold(resource, node string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.held[resource+"@"+node] = true
}

// Pause stops or resumes a node's kubelet without the node going NotReady: its pods neither
// start nor finish stopping meanwhile.
func (k *Kubelet) Pause(node string, paused bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.alive[node] = !paused
}

// Kill stops a node's kubelet and marks the node NotReady, as the node lifecycle controller
// would after the node stopped renewing its Lease.
func (k *Kubelet) Kill(ctx context.Context, node string) error {
	k.Pause(node, true)
	return SetNodeReady(ctx, k.c, node, corev1.ConditionUnknown)
}

// CreateNode creates a Ready Node with labels.
func CreateNode(ctx context.Context, c client.Client, name string, labels map[string]string) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := c.Create(ctx, n); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return SetNodeReady(ctx, c, name, corev1.ConditionTrue)
}

// SetNodeReady sets a Node's Ready condition, as of now.
func SetNodeReady(ctx context.Context, c client.Client, name string, status corev1.ConditionStatus) error {
	n := &corev1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
		return err
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status,
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "Simulated"}}
	return c.Status().Update(ctx, n)
}
