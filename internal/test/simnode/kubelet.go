// Package simnode simulates the nodes of a cluster where none run (envtest): their kubelets, their
// Wolfpack node agents (Leases, views, the agents' real Resource reconcilers on fake interfaces)
// and the quorum holders of their holder pods (real ones, on an in-memory disk).
package simnode

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/agent"
	"github.com/wolfpack-ha/wolfpack/internal/ipaddr"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/monitor"
	"github.com/wolfpack-ha/wolfpack/internal/quorum"
	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
)

// agentRenew is how often a simulated node agent renews its Lease: more often than any cluster
// of the tests asks for (interval x threshold of at least 1 s).
const agentRenew = 250 * time.Millisecond

// Kubelet stands in for the kubelets and the Wolfpack node agents of some nodes, where no real
// ones run (envtest). As a kubelet it runs the pods of a namespace bound to a live node (Running
// and Ready at once), finishes their graceful deletion, runs a real quorum holder for each quorum
// holder pod (on one in-memory disk per cluster), and does nothing for a dead node. As a node
// agent it renews the node's Lease in envtest.LeaseNamespace, with a view in which it hears every
// other live node of its cluster.
type Kubelet struct {
	c         client.Client
	namespace string
	mu        sync.Mutex
	alive     map[string]bool
	// agents are the nodes whose agent runs; renewed is when each last renewed its Lease.
	agents  map[string]bool
	renewed map[string]time.Time
	// resources are the agents' real Resource reconcilers, with fake host interfaces.
	resources map[string]*agent.Resources
	// addresses are the agents' fake interfaces, by node.
	addresses map[string]*ipaddr.Fake
	// checks are the results of the resources' health checks, by resource name: healthy unless
	// set.
	checks map[string]monitor.Result
	// cut are the pairs of nodes that do not hear each other, "a|b" with a < b.
	cut map[string]bool
	// held are "resource@node" whose pods neither start nor stop, as on a wedged runtime.
	held map[string]bool
	// started counts the pods that ran, by name: a pod that started twice is a bug.
	started map[string]int
	// disks are the clusters' quorum disks; running the quorum holders, by pod name.
	disks        map[string]*quorum.MemDevice
	running      map[string]*simHolder
	holderStarts []string
	holderErrs   []error
	stop         func()
}

// Start starts kubelets for nodes, serving the pods of namespace, until Stop.
func Start(c client.Client, namespace string, nodes ...string) *Kubelet {
	k := &Kubelet{c: c, namespace: namespace, alive: map[string]bool{}, held: map[string]bool{}, started: map[string]int{},
		agents: map[string]bool{}, renewed: map[string]time.Time{}, resources: map[string]*agent.Resources{},
		addresses: map[string]*ipaddr.Fake{}, checks: map[string]monitor.Result{}, cut: map[string]bool{},
		disks: map[string]*quorum.MemDevice{}, running: map[string]*simHolder{}}
	for _, n := range nodes {
		k.alive[n], k.agents[n] = true, true
		fake := &ipaddr.Fake{}
		fake.SetInterface("eth0")
		k.addresses[n] = fake
		k.resources[n] = &agent.Resources{Client: c, Recorder: discard{}, Clock: clock.RealClock{}, Node: n,
			Addresses: fake, DefaultInterface: func() string { return "eth0" }, Monitor: k}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			k.renew(ctx)
			k.sync(ctx)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	k.stop = func() { cancel(); <-done; k.stopHolders() }
	return k
}

// StartAgents starts only the simulated node agents of nodes, for tests that run no pods.
func StartAgents(c client.Client, nodes ...string) *Kubelet {
	return Start(c, "", nodes...)
}

// Stop stops the kubelets.
func (k *Kubelet) Stop() { k.stop() }

func (k *Kubelet) sync(ctx context.Context) {
	if k.namespace == "" {
		return
	}
	k.agentResources(ctx)
	var pods corev1.PodList
	if err := k.c.List(ctx, &pods, client.InNamespace(k.namespace)); err != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.holders(ctx, pods.Items)
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

// agentResources runs the live agents' Resource reconcilers over the namespace's resources.
func (k *Kubelet) agentResources(ctx context.Context) {
	var resources wolfpackv1alpha1.ResourceList
	if err := k.c.List(ctx, &resources, client.InNamespace(k.namespace)); err != nil {
		return
	}
	k.mu.Lock()
	var live []*agent.Resources
	for n, r := range k.resources {
		if k.agents[n] {
			live = append(live, r)
		}
	}
	k.mu.Unlock()
	for _, r := range live {
		for i := range resources.Items {
			_, _ = r.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&resources.Items[i])})
		}
	}
}

// Check is the simulated Resource Monitor: a resource's checks pass unless SetCheck says
// otherwise.
func (k *Kubelet) Check(_ context.Context, c monitor.Check) monitor.Result {
	k.mu.Lock()
	defer k.mu.Unlock()
	for resource, r := range k.checks {
		if strings.HasPrefix(c.Key, k.namespace+"/"+resource+"/") {
			r.Key = c.Key
			return r
		}
	}
	return monitor.Result{Key: c.Key, Healthy: true, Reason: monitor.Passed, Message: "simulated check passed"}
}

// SetCheck sets the result of a resource's health checks from now on; nil makes them pass.
func (k *Kubelet) SetCheck(resource string, r *monitor.Result) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if r == nil {
		delete(k.checks, resource)
		return
	}
	k.checks[resource] = *r
}

// Addresses are the floating addresses node holds.
func (k *Kubelet) Addresses(node string) []netip.Prefix {
	return k.addresses[node].Addresses("eth0")
}

// discard is an event recorder that records nothing.
type discard struct{}

func (discard) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...any) {}

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

// Release undoes Hold: the resource's pods on node start and stop again.
func (k *Kubelet) Release(resource, node string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.held, resource+"@"+node)
}

// Pause stops or resumes a node's kubelet without the node going NotReady: its pods neither
// start nor finish stopping meanwhile.
func (k *Kubelet) Pause(node string, paused bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.alive[node] = !paused
}

// Kill stops a node's kubelet and node agent, as a crash of the node would: its Lease is no longer
// renewed, its peers stop hearing it, and the Node goes NotReady.
func (k *Kubelet) Kill(ctx context.Context, node string) error {
	k.mu.Lock()
	k.alive[node], k.agents[node] = false, false
	k.crashHolders(node)
	k.mu.Unlock()
	return SetNodeReady(ctx, k.c, node, corev1.ConditionUnknown)
}

// Revive starts a killed node again.
func (k *Kubelet) Revive(ctx context.Context, node string) error {
	k.mu.Lock()
	k.alive[node], k.agents[node] = true, true
	k.mu.Unlock()
	return SetNodeReady(ctx, k.c, node, corev1.ConditionTrue)
}

// renew renews the Lease of every live agent that is due, hearing the other live agents.
func (k *Kubelet) renew(ctx context.Context) {
	k.mu.Lock()
	var due, live []string
	for n, ok := range k.agents {
		if ok {
			live = append(live, n)
			if time.Since(k.renewed[n]) >= agentRenew {
				due = append(due, n)
			}
		}
	}
	k.mu.Unlock()
	for _, n := range due {
		view := membership.View{Incarnation: 1, Joined: true, Peers: map[string][]string{}}
		k.mu.Lock()
		var mutual []string
		for _, peer := range live {
			if peer != n && !k.cut[pair(n, peer)] {
				view.Peers[peer] = []string{"public"}
				mutual = append(mutual, peer) // a cut is both ways
			}
		}
		k.mu.Unlock()
		view.Fenced = outvoted(ctx, k.c, n, mutual)
		if err := RenewNodeLease(ctx, k.c, n, view); err == nil {
			k.mu.Lock()
			k.renewed[n] = time.Now()
			k.mu.Unlock()
		}
	}
}

// outvoted is the simulated agent's partition rule, as the real agent applies it: its side, node
// and the peers it hears both ways, has no quorum, so it failed its node and reports so. A
// cluster that cannot be read fences nothing.
func outvoted(ctx context.Context, c client.Client, node string, mutual []string) bool {
	n := &corev1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: node}, n); err != nil {
		return false
	}
	qd := &wolfpackv1alpha1.QuorumDisk{}
	if err := c.Get(ctx, client.ObjectKey{Name: n.Labels[wolfpackv1alpha1.ClusterLabel]}, qd); err != nil {
		return false
	}
	q := membership.Quorum{Type: qd.Spec.QuorumTypeOrDefault(), Owner: qd.Status.Owner, Members: max(len(qd.Status.Nodes), len(mutual)+1)}
	fence, _ := membership.MustFence(node, mutual, q)
	return fence
}

// Partition cuts, or with heal restores, the heartbeats between nodes a and b: their agents stop
// hearing each other, and both go on renewing their Leases.
func (k *Kubelet) Partition(a, b string, heal bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cut[pair(a, b)] = !heal
}

func pair(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + "|" + b
}

// RenewQuorumLease writes the quorum holder's Lease as the holder does: node holds the quorum
// disk of cluster at epoch.
func RenewQuorumLease(ctx context.Context, c client.Client, cluster, node string, epoch int64) error {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: envtest.LeaseNamespace, Name: membership.QuorumLeaseName(cluster)}}
	_, err := controllerutil.CreateOrPatch(ctx, c, l, func() error {
		l.Labels = map[string]string{wolfpackv1alpha1.ClusterLabel: cluster}
		l.Annotations = map[string]string{wolfpackv1alpha1.EpochAnnotation: fmt.Sprint(epoch)}
		l.Spec.HolderIdentity = ptr.To(node)
		l.Spec.LeaseDurationSeconds = ptr.To[int32](10)
		l.Spec.RenewTime = ptr.To(metav1.NowMicro())
		return nil
	})
	return err
}

// RenewNodeLease writes a node agent's Lease as the agent does: named after the node, labelled
// with its cluster (from the Node's label) and node, and carrying view.
func RenewNodeLease(ctx context.Context, c client.Client, node string, view membership.View) error {
	n := &corev1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: node}, n); err != nil {
		return err
	}
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: envtest.LeaseNamespace, Name: node}}
	_, err := controllerutil.CreateOrPatch(ctx, c, l, func() error {
		l.Labels = map[string]string{wolfpackv1alpha1.ClusterLabel: n.Labels[wolfpackv1alpha1.ClusterLabel], wolfpackv1alpha1.NodeLabel: node}
		l.Annotations = map[string]string{wolfpackv1alpha1.ViewAnnotation: view.Encode()}
		l.Spec.HolderIdentity = ptr.To(node)
		l.Spec.LeaseDurationSeconds = ptr.To[int32](10)
		l.Spec.RenewTime = ptr.To(metav1.NowMicro())
		return nil
	})
	return err
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
