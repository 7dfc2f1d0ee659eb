package env

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/cri"
)

// runtimeFinalizer keeps a group pod until its node's runtime has stopped its sandbox, as the
// kubelet deletes a pod only once its containers are stopped. kwok finishes a deletion at once,
// which would let the manager move on while the pod still runs here.
const runtimeFinalizer = "e2e.wolfpack.dev/runtime"

// restartBackoff is how long the kubelet waits before it restarts a pod whose containers were
// stopped under it: its first CrashLoopBackOff delay.
const restartBackoff = 10 * time.Second

// nodeRuntime is one member node's container runtime: a CRI runtime that runs nothing (package
// cri) served on a unix socket, which the node's agent fences through with the CRI fence action. kwok's pods
// have no containers, so the stand-in kubelet gives every group pod kwok runs on the node a
// sandbox and a container here; this runtime, not the pod's status, says what runs on the node.
// A sandbox the agent stopped is started again after restartBackoff while its pod still exists,
// as the kubelet would; a pod that is gone loses its sandbox.
type nodeRuntime struct {
	node     string
	endpoint string
	cri      *cri.Runtime

	// mu guards the runtime's sandboxes and stopped; it is never held during an API call, so
	// that what runs on the node can be read (Running) while the API server hangs.
	mu sync.Mutex
	// stopped is when each stopped sandbox, by pod UID, was first seen stopped.
	stopped map[string]time.Time
	// boots counts powerOff calls: a sync that began before one does not run anything after it.
	boots int
}

func (e *Env) startRuntimes() error {
	e.runtimes = map[string]*nodeRuntime{}
	for _, n := range Member {
		rt := &nodeRuntime{node: n, endpoint: "unix://" + filepath.Join(e.o.Dir, "cri-"+n+".sock"),
			cri: cri.New(), stopped: map[string]time.Time{}}
		if err := rt.cri.Serve(rt.endpoint); err != nil {
			return fmt.Errorf("container runtime of %s: %w", n, err)
		}
		e.runtimes[n] = rt
	}
	return nil
}

func (e *Env) stopRuntimes() {
	for _, rt := range e.runtimes {
		rt.cri.Stop()
	}
}

// powerOff empties the runtime: a crashed node runs nothing, and comes back with nothing.
func (rt *nodeRuntime) powerOff() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.cri.Reset()
	rt.stopped = map[string]time.Time{}
	rt.boots++
}

// syncRuntimes mirrors each live member node's group pods into its runtime.
func (e *Env) syncRuntimes(ctx context.Context) error {
	var pods corev1.PodList
	if err := e.Client.List(ctx, &pods, client.InNamespace(Namespace), client.HasLabels{wolfpackv1alpha1.GroupLabel}); err != nil {
		return err
	}
	for _, n := range Member {
		if e.isCrashed(n) {
			continue // its runtime is off: releaseDeleted lets its pods go
		}
		if err := e.runtimes[n].sync(ctx, e.Client, pods.Items); err != nil {
			return fmt.Errorf("container runtime of %s: %w", n, err)
		}
	}
	return e.releaseDeleted(ctx, pods.Items)
}

// releaseDeleted removes the finalizer of every pod being deleted that nothing runs for: its
// node's runtime has no ready sandbox for it (or the node has crashed).
func (e *Env) releaseDeleted(ctx context.Context, pods []corev1.Pod) error {
	running := map[string]bool{}
	for _, n := range Member {
		for _, name := range e.Running(ctx, n) {
			running[name] = true
		}
	}
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp == nil || running[p.Name] || !controllerutil.ContainsFinalizer(p, runtimeFinalizer) {
			continue
		}
		patch := client.MergeFromWithOptions(p.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.RemoveFinalizer(p, runtimeFinalizer)
		if err := e.Client.Patch(ctx, p, patch); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// runs tells whether the pod is one the node's runtime runs: on the node, Running and not being
// deleted.
func (rt *nodeRuntime) runs(p *corev1.Pod) bool {
	return p.Spec.NodeName == rt.node && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning
}

// holdNew puts the runtime's finalizer on every pod that is to get its first sandbox, without
// the lock: these are API calls. It returns the pods held, by UID, and the count of powerOff
// calls before.
func (rt *nodeRuntime) holdNew(ctx context.Context, c client.Client, pods []corev1.Pod) (map[string]bool, int, error) {
	rt.mu.Lock()
	boot := rt.boots
	list, err := rt.cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	rt.mu.Unlock()
	if err != nil {
		return nil, boot, err
	}
	has := map[string]bool{}
	for _, sb := range list.GetItems() {
		has[sb.GetMetadata().GetUid()] = true
	}
	held := map[string]bool{}
	for i := range pods {
		p := &pods[i]
		if !rt.runs(p) || has[string(p.UID)] {
			continue
		}
		err := hold(ctx, c, p)
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
			continue // changed or going meanwhile: look again next time
		}
		if err != nil {
			return nil, boot, err
		}
		held[string(p.UID)] = true
	}
	return held, boot, nil
}

func (rt *nodeRuntime) sync(ctx context.Context, c client.Client, pods []corev1.Pod) error {
	held, boot, err := rt.holdNew(ctx, c, pods)
	if err != nil {
		return err
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.boots != boot {
		return nil // the node lost power meanwhile
	}
	list, err := rt.cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return err
	}
	sandboxes := list.GetItems()
	latest := map[string]*runtimeapi.PodSandbox{} // by pod UID: its newest sandbox
	for _, s := range sandboxes {
		uid := s.GetMetadata().GetUid()
		if cur, ok := latest[uid]; !ok || s.GetMetadata().GetAttempt() > cur.GetMetadata().GetAttempt() {
			latest[uid] = s
		}
	}
	wanted := map[string]bool{}
	for i := range pods {
		p := &pods[i]
		if !rt.runs(p) {
			continue
		}
		wanted[string(p.UID)] = true
		last := latest[string(p.UID)]
		if last == nil && !held[string(p.UID)] {
			continue // not held by the runtime's finalizer yet
		}
		if err := rt.ensure(ctx, p, last); err != nil {
			return err
		}
	}
	return rt.removeUnwanted(ctx, sandboxes, wanted)
}

// ensure runs the pod's sandbox if it has none (the pod holds the runtime's finalizer by now),
// and starts it again after restartBackoff if it was stopped. last is its newest sandbox, nil if
// none. The caller holds rt.mu.
func (rt *nodeRuntime) ensure(ctx context.Context, p *corev1.Pod, last *runtimeapi.PodSandbox) error {
	uid := string(p.UID)
	switch {
	case last == nil:
		return rt.run(ctx, p, 0)
	case last.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY:
		since, seen := rt.stopped[uid]
		if !seen {
			rt.stopped[uid] = time.Now()
		} else if time.Since(since) >= restartBackoff {
			delete(rt.stopped, uid)
			return rt.run(ctx, p, last.GetMetadata().GetAttempt()+1)
		}
	}
	return nil
}

// removeUnwanted stops and removes the sandboxes of pods that are gone, being deleted or no longer
// running.
func (rt *nodeRuntime) removeUnwanted(ctx context.Context, sandboxes []*runtimeapi.PodSandbox, wanted map[string]bool) error {
	for _, s := range sandboxes {
		if wanted[s.GetMetadata().GetUid()] {
			continue
		}
		if _, err := rt.cri.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.GetId()}); err != nil {
			return err
		}
		if _, err := rt.cri.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.GetId()}); err != nil {
			return err
		}
		delete(rt.stopped, s.GetMetadata().GetUid())
	}
	return nil
}

// hold adds the runtime's finalizer to the pod before anything runs for it.
func hold(ctx context.Context, c client.Client, p *corev1.Pod) error {
	if controllerutil.ContainsFinalizer(p, runtimeFinalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(p.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.AddFinalizer(p, runtimeFinalizer)
	return c.Patch(ctx, p, patch)
}

// run starts a sandbox with one running container for the pod, labelled as the kubelet labels
// them (the pod's labels, and its name, namespace and UID).
func (rt *nodeRuntime) run(ctx context.Context, p *corev1.Pod, attempt uint32) error {
	labels := map[string]string{"io.kubernetes.pod.name": p.Name, "io.kubernetes.pod.namespace": p.Namespace,
		"io.kubernetes.pod.uid": string(p.UID)}
	for k, v := range p.Labels {
		labels[k] = v
	}
	cfg := &runtimeapi.PodSandboxConfig{Labels: labels,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: p.Name, Namespace: p.Namespace, Uid: string(p.UID), Attempt: attempt}}
	sandbox, err := rt.cri.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return err
	}
	ctr, err := rt.cri.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sandbox.GetPodSandboxId(),
		SandboxConfig: cfg, Config: &runtimeapi.ContainerConfig{Labels: labels,
			Metadata: &runtimeapi.ContainerMetadata{Name: "main-" + strconv.Itoa(int(attempt))},
			Image:    &runtimeapi.ImageSpec{Image: "kwok"}}})
	if err != nil {
		return err
	}
	_, err = rt.cri.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctr.GetContainerId()})
	return err
}

// Running lists the group pods whose sandbox is ready in node's runtime: what really runs there.
// A crashed node runs nothing.
func (e *Env) Running(ctx context.Context, node string) []string {
	pods := e.RunningPods(ctx, node)
	out := make([]string, 0, len(pods))
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

// RunningPod is a group pod whose sandbox is ready in a node's runtime.
type RunningPod struct {
	// Name is the pod's name; Group and Resource are its group's and its resource's, from its
	// labels.
	Name, Group, Resource string
}

// RunningPods lists the group pods whose sandbox is ready in node's runtime, with their group and
// resource. It asks only the runtime, never the API server. A crashed node runs nothing.
func (e *Env) RunningPods(ctx context.Context, node string) []RunningPod {
	rt := e.runtimes[node]
	if rt == nil || e.isCrashed(node) {
		return nil
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	list, err := rt.cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}}})
	if err != nil {
		return nil
	}
	var out []RunningPod
	for _, s := range list.GetItems() {
		if g := s.GetLabels()[wolfpackv1alpha1.GroupLabel]; g != "" {
			out = append(out, RunningPod{Name: s.GetMetadata().GetName(), Group: g, Resource: s.GetLabels()[wolfpackv1alpha1.ResourceLabel]})
		}
	}
	return out
}
