package resourcetype

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.k8s.io,resources=volumeattachments,verbs=get;list;watch

// workloadHandler runs a workload's pod template as one pod pinned to the owner node.
type workloadHandler struct{ Clients }

func (h *workloadHandler) pods(ctx context.Context, r client.Reader, res *wolfpackv1alpha1.Resource) ([]corev1.Pod, error) {
	var pods corev1.PodList
	err := r.List(ctx, &pods, client.InNamespace(res.Namespace),
		client.MatchingLabels{wolfpackv1alpha1.GroupLabel: res.Spec.Group, wolfpackv1alpha1.ResourceLabel: res.Name})
	return pods.Items, err
}

func (h *workloadHandler) Online(ctx context.Context, req Request) (Result, error) {
	if req.Resource.Spec.Workload.WorkloadRef != nil {
		return h.onlineRef(ctx, req)
	}
	want, err := Pod(req.Resource, req.Placement)
	if err != nil {
		return Result{}, err
	}
	pods, err := h.pods(ctx, h.Client, req.Resource)
	if err != nil {
		return Result{}, err
	}
	var current *corev1.Pod
	for i := range pods {
		if pods[i].Name == want.Name {
			current = &pods[i]
			continue
		}
		// A pod of another epoch: the group took it offline before, or its node is fenced;
		// remove what is left, at once where the node can no longer run it.
		var opts []client.DeleteOption
		if req.Fenced != nil && req.Fenced(pods[i].Spec.NodeName) {
			opts = append(opts, client.GracePeriodSeconds(0))
		} else if pods[i].DeletionTimestamp != nil {
			continue
		}
		if err := client.IgnoreNotFound(h.Client.Delete(ctx, &pods[i], opts...)); err != nil {
			return Result{}, err
		}
	}
	if current == nil {
		if err := h.Client.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			return Result{}, err
		}
		return Result{State: Pending, Message: fmt.Sprintf("pod %s created on %s", want.Name, req.Node)}, nil
	}
	if current.DeletionTimestamp != nil {
		return Result{State: Pending, Message: fmt.Sprintf("waiting for the previous pod %s to stop", current.Name)}, nil
	}
	return podResult(current, req.Node), nil
}

func podResult(pod *corev1.Pod, node string) Result {
	switch state, msg := PodHealth(pod, node); state {
	case PodOnline:
		return Result{State: Online, Message: msg}
	case PodFailed:
		return Result{State: Failed, Message: msg}
	default:
		return Result{State: Pending, Message: msg}
	}
}

func (h *workloadHandler) check(ctx context.Context, r client.Reader, req Request) (Result, error) {
	pod := &corev1.Pod{}
	err := r.Get(ctx, types.NamespacedName{Namespace: req.Resource.Namespace, Name: PodName(req.Resource, req.Epoch)}, pod)
	if apierrors.IsNotFound(err) {
		return Result{State: Failed, Message: fmt.Sprintf("pod %s is gone", PodName(req.Resource, req.Epoch))}, nil
	}
	if err != nil {
		return Result{}, err
	}
	return podResult(pod, req.Node), nil
}

func (h *workloadHandler) LooksAlive(ctx context.Context, req Request) (Result, error) {
	if req.Resource.Spec.Workload.WorkloadRef != nil {
		return h.aliveRef(ctx, h.Client, req)
	}
	return h.check(ctx, h.Client, req)
}

func (h *workloadHandler) IsAlive(ctx context.Context, req Request) (Result, error) {
	if req.Resource.Spec.Workload.WorkloadRef != nil {
		return h.aliveRef(ctx, h.Reader, req)
	}
	return h.check(ctx, h.Reader, req)
}

func (h *workloadHandler) Offline(ctx context.Context, req Request) (Result, error) {
	return h.stop(ctx, req)
}

func (h *workloadHandler) Terminate(ctx context.Context, req Request) (Result, error) {
	return h.stop(ctx, req, client.GracePeriodSeconds(0))
}

func (h *workloadHandler) stop(ctx context.Context, req Request, opts ...client.DeleteOption) (Result, error) {
	if req.Resource.Spec.Workload.WorkloadRef != nil {
		return h.stopRef(ctx, req, opts...)
	}
	pods, err := h.pods(ctx, h.Client, req.Resource)
	if err != nil {
		return Result{}, err
	}
	if len(pods) == 0 {
		// Offline lets the group start elsewhere: confirmed with the API server, since a pod
		// just created may not be in the cache yet.
		if pods, err = h.pods(ctx, h.Reader, req.Resource); err != nil {
			return Result{}, err
		}
	}
	if len(pods) == 0 {
		return Result{State: Offline, Message: "no pod left"}, nil
	}
	for i := range pods {
		if pods[i].DeletionTimestamp != nil && len(opts) == 0 {
			continue
		}
		if err := client.IgnoreNotFound(h.Client.Delete(ctx, &pods[i], opts...)); err != nil {
			return Result{}, err
		}
	}
	return Result{State: Pending, Message: fmt.Sprintf("stopping pod %s on %s", pods[0].Name, pods[0].Spec.NodeName)}, nil
}

// volumeHandler checks a ReadWriteOnce claim: online once it is bound and attached to no other
// node, offline once no pod of the group uses it.
type volumeHandler struct{ Clients }

func (h *volumeHandler) Online(ctx context.Context, req Request) (Result, error) {
	return h.check(ctx, h.Client, req)
}

func (h *volumeHandler) LooksAlive(ctx context.Context, req Request) (Result, error) {
	return h.check(ctx, h.Client, req)
}

func (h *volumeHandler) IsAlive(ctx context.Context, req Request) (Result, error) {
	return h.check(ctx, h.Reader, req)
}

func (h *volumeHandler) check(ctx context.Context, r client.Reader, req Request) (Result, error) {
	pvc := &corev1.PersistentVolumeClaim{}
	err := r.Get(ctx, types.NamespacedName{Namespace: req.Resource.Namespace, Name: req.Resource.Spec.Volume.ClaimName}, pvc)
	if apierrors.IsNotFound(err) {
		pvc = nil
	} else if err != nil {
		return Result{}, err
	}
	var attachments storagev1.VolumeAttachmentList
	if pvc != nil && pvc.Spec.VolumeName != "" {
		if err := r.List(ctx, &attachments); err != nil {
			return Result{}, err
		}
	}
	state, msg := VolumeHealth(pvc, attachments.Items, req.Node)
	switch state {
	case VolumeOnline:
		return Result{State: Online, Message: msg}, nil
	case VolumeFailed:
		return Result{State: Failed, Message: msg}, nil
	default:
		return Result{State: Pending, Message: msg}, nil
	}
}

func (h *volumeHandler) Offline(ctx context.Context, req Request) (Result, error) {
	var pods corev1.PodList
	if err := h.Client.List(ctx, &pods, client.InNamespace(req.Resource.Namespace),
		client.MatchingLabels{wolfpackv1alpha1.GroupLabel: req.Resource.Spec.Group}); err != nil {
		return Result{}, err
	}
	claim := req.Resource.Spec.Volume.ClaimName
	for _, p := range pods.Items {
		if slices.ContainsFunc(p.Spec.Volumes, func(v corev1.Volume) bool {
			return v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim
		}) {
			return Result{State: Pending, Message: fmt.Sprintf("pod %s still uses claim %s", p.Name, claim)}, nil
		}
	}
	return Result{State: Offline, Message: "no pod of the group uses claim " + claim}, nil
}

func (h *volumeHandler) Terminate(_ context.Context, req Request) (Result, error) {
	// The node is fenced: whatever it had mounted is no longer written to.
	return Result{State: Offline, Message: "the node holding claim " + req.Resource.Spec.Volume.ClaimName + " is fenced"}, nil
}

// serviceHandler keeps a Service that selects only the owner's pods of the group.
type serviceHandler struct{ Clients }

func (h *serviceHandler) Online(ctx context.Context, req Request) (Result, error) {
	want, err := Service(req.Resource, req.Placement)
	if err != nil {
		return Result{}, err
	}
	svc := &corev1.Service{}
	err = h.Client.Get(ctx, client.ObjectKeyFromObject(want), svc)
	switch {
	case apierrors.IsNotFound(err):
		if err := h.Client.Create(ctx, want); err != nil {
			return Result{}, err
		}
	case err != nil:
		return Result{}, err
	default:
		patch := client.MergeFrom(svc.DeepCopy())
		svc.Labels, svc.Spec.Selector, svc.Spec.Ports, svc.Spec.Type = want.Labels, want.Spec.Selector, want.Spec.Ports, want.Spec.Type
		if err := h.Client.Patch(ctx, svc, patch); err != nil {
			return Result{}, err
		}
	}
	return Result{State: Online, Message: fmt.Sprintf("service %s selects the group's pods on %s", want.Name, req.Node)}, nil
}

func (h *serviceHandler) check(ctx context.Context, r client.Reader, req Request) (Result, error) {
	svc := &corev1.Service{}
	err := r.Get(ctx, types.NamespacedName{Namespace: req.Resource.Namespace, Name: ServiceName(req.Resource)}, svc)
	if apierrors.IsNotFound(err) {
		return Result{State: Failed, Message: "service " + ServiceName(req.Resource) + " is gone"}, nil
	}
	if err != nil {
		return Result{}, err
	}
	if svc.Spec.Selector[wolfpackv1alpha1.NodeLabel] != req.Node {
		return Result{State: Failed, Message: fmt.Sprintf("service %s selects node %q, not %s", svc.Name, svc.Spec.Selector[wolfpackv1alpha1.NodeLabel], req.Node)}, nil
	}
	return Result{State: Online, Message: "service " + svc.Name + " selects the owner's pods"}, nil
}

func (h *serviceHandler) LooksAlive(ctx context.Context, req Request) (Result, error) {
	return h.check(ctx, h.Client, req)
}

func (h *serviceHandler) IsAlive(ctx context.Context, req Request) (Result, error) {
	return h.check(ctx, h.Reader, req)
}

func (h *serviceHandler) Offline(ctx context.Context, req Request) (Result, error) {
	svc := &corev1.Service{}
	svc.Namespace, svc.Name = req.Resource.Namespace, ServiceName(req.Resource)
	if err := client.IgnoreNotFound(h.Client.Delete(ctx, svc)); err != nil {
		return Result{}, err
	}
	return Result{State: Offline, Message: "service " + svc.Name + " deleted"}, nil
}

func (h *serviceHandler) Terminate(ctx context.Context, req Request) (Result, error) {
	return h.Offline(ctx, req)
}

// ipAddressHandler is the manager's side of a floating address: the resource's status names the
// node that must hold it; the node agent on that node adds and announces it, and says so in the
// AddressAssigned condition.
type ipAddressHandler struct{}

func (ipAddressHandler) Online(_ context.Context, req Request) (Result, error) {
	addr := req.Resource.Spec.IPAddress.Address
	c := meta.FindStatusCondition(req.Resource.Status.Conditions, wolfpackv1alpha1.AddressAssignedCondition)
	switch {
	case c != nil && c.Status == metav1.ConditionTrue:
		return Result{State: Online, Message: c.Message}, nil
	case c != nil && c.Reason == wolfpackv1alpha1.AddressFailedReason:
		return Result{State: Failed, Message: c.Message}, nil
	}
	return Result{State: Pending, Message: fmt.Sprintf("waiting for the node agent on %s to add %s", req.Node, addr)}, nil
}

func (h ipAddressHandler) LooksAlive(ctx context.Context, req Request) (Result, error) {
	return h.Online(ctx, req)
}

func (h ipAddressHandler) IsAlive(ctx context.Context, req Request) (Result, error) {
	return h.Online(ctx, req)
}

func (ipAddressHandler) Offline(_ context.Context, req Request) (Result, error) {
	addr := req.Resource.Spec.IPAddress.Address
	if c := meta.FindStatusCondition(req.Resource.Status.Conditions, wolfpackv1alpha1.AddressAssignedCondition); c != nil && c.Status == metav1.ConditionTrue {
		return Result{State: Pending, Message: fmt.Sprintf("waiting for the node agent on %s to remove %s", req.Node, addr)}, nil
	}
	return Result{State: Offline, Message: "no node holds " + addr}, nil
}

// Terminate counts the address as gone at once: it is called for a fenced node, whose agent
// removes its addresses when the node fails itself.
func (ipAddressHandler) Terminate(_ context.Context, req Request) (Result, error) {
	return Result{State: Offline, Message: fmt.Sprintf("node %s is fenced; its agent removes %s", req.Node, req.Resource.Spec.IPAddress.Address)}, nil
}
