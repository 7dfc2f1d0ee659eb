package resourcetype

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets,verbs=get;list;watch;patch

// workload is what the handler needs of a Deployment or a StatefulSet.
type workload struct {
	obj      client.Object
	template *corev1.PodTemplateSpec
	replicas **int32
	selector *metav1.LabelSelector
	// ready reports whether exactly one up-to-date replica runs and is ready.
	ready func() bool
}

func workloadOf(kind wolfpackv1alpha1.WorkloadKind) (workload, error) {
	switch kind {
	case wolfpackv1alpha1.DeploymentKind:
		d := &appsv1.Deployment{}
		return workload{obj: d, template: &d.Spec.Template, replicas: &d.Spec.Replicas, selector: d.Spec.Selector,
			ready: func() bool {
				s := d.Status
				return s.ObservedGeneration >= d.Generation && s.Replicas == 1 && s.UpdatedReplicas == 1 && s.ReadyReplicas == 1
			}}, nil
	case wolfpackv1alpha1.StatefulSetKind:
		s := &appsv1.StatefulSet{}
		return workload{obj: s, template: &s.Spec.Template, replicas: &s.Spec.Replicas, selector: s.Spec.Selector,
			ready: func() bool {
				st := s.Status
				return st.ObservedGeneration >= s.Generation && st.Replicas == 1 && st.ReadyReplicas == 1 &&
					st.CurrentRevision == st.UpdateRevision
			}}, nil
	}
	return workload{}, fmt.Errorf("unknown workload kind %q", kind)
}

// get reads the referenced workload; found is false when it does not exist.
func (h *workloadHandler) get(ctx context.Context, r client.Reader, res *wolfpackv1alpha1.Resource) (workload, bool, error) {
	ref := res.Spec.Workload.WorkloadRef
	w, err := workloadOf(ref.Kind)
	if err != nil {
		return w, false, err
	}
	err = r.Get(ctx, types.NamespacedName{Namespace: res.Namespace, Name: ref.Name}, w.obj)
	if apierrors.IsNotFound(err) {
		return w, false, nil
	}
	// The selector pointer was taken before the read filled the object in.
	switch o := w.obj.(type) {
	case *appsv1.Deployment:
		w.selector = o.Spec.Selector
	case *appsv1.StatefulSet:
		w.selector = o.Spec.Selector
	}
	return w, err == nil, err
}

// onlineRef pins the referenced workload to the owner node and scales it to one replica.
func (h *workloadHandler) onlineRef(ctx context.Context, req Request) (Result, error) {
	ref := req.Resource.Spec.Workload.WorkloadRef
	w, found, err := h.get(ctx, h.Client, req.Resource)
	if err != nil || !found {
		return Result{State: Failed, Message: fmt.Sprintf("%s %s does not exist", ref.Kind, ref.Name)}, err
	}
	pinned := PinTemplate(req.Resource, w.template, req.Placement)
	if !equality.Semantic.DeepEqual(pinned, w.template) || *w.replicas == nil || **w.replicas != 1 {
		patch := client.MergeFrom(w.obj.DeepCopyObject().(client.Object))
		*w.template = *pinned
		one := int32(1)
		*w.replicas = &one
		if err := h.Client.Patch(ctx, w.obj, patch); err != nil {
			return Result{}, err
		}
		return Result{State: Pending, Message: fmt.Sprintf("%s %s pinned to %s and scaled to 1", ref.Kind, ref.Name, req.Node)}, nil
	}
	return h.checkRef(ctx, h.Client, req, w)
}

func (h *workloadHandler) checkRef(ctx context.Context, r client.Reader, req Request, w workload) (Result, error) {
	ref := req.Resource.Spec.Workload.WorkloadRef
	if !w.ready() {
		return Result{State: Pending, Message: fmt.Sprintf("%s %s has no ready up-to-date replica yet", ref.Kind, ref.Name)}, nil
	}
	pods, err := h.selected(ctx, r, req.Resource, w)
	if err != nil {
		return Result{}, err
	}
	for _, p := range pods {
		if p.Spec.NodeName != req.Node && p.DeletionTimestamp == nil {
			return Result{State: Failed, Message: fmt.Sprintf("pod %s of %s %s runs on %s, not %s", p.Name, ref.Kind, ref.Name, p.Spec.NodeName, req.Node)}, nil
		}
	}
	return Result{State: Online, Message: fmt.Sprintf("%s %s has one ready replica on %s", ref.Kind, ref.Name, req.Node)}, nil
}

func (h *workloadHandler) selected(ctx context.Context, r client.Reader, res *wolfpackv1alpha1.Resource, w workload) ([]corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(w.selector)
	if err != nil {
		return nil, fmt.Errorf("%s %s: selector: %w", res.Spec.Workload.WorkloadRef.Kind, res.Spec.Workload.WorkloadRef.Name, err)
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(res.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	return pods.Items, nil
}

func (h *workloadHandler) aliveRef(ctx context.Context, r client.Reader, req Request) (Result, error) {
	ref := req.Resource.Spec.Workload.WorkloadRef
	w, found, err := h.get(ctx, r, req.Resource)
	if err != nil || !found {
		return Result{State: Failed, Message: fmt.Sprintf("%s %s does not exist", ref.Kind, ref.Name)}, err
	}
	return h.checkRef(ctx, r, req, w)
}

// stopRef scales the referenced workload to zero; it is offline once none of its pods is left.
func (h *workloadHandler) stopRef(ctx context.Context, req Request, opts ...client.DeleteOption) (Result, error) {
	ref := req.Resource.Spec.Workload.WorkloadRef
	w, found, err := h.get(ctx, h.Client, req.Resource)
	if err != nil {
		return Result{}, err
	}
	if !found {
		return Result{State: Offline, Message: fmt.Sprintf("%s %s does not exist", ref.Kind, ref.Name)}, nil
	}
	if *w.replicas == nil || **w.replicas != 0 {
		patch := client.MergeFrom(w.obj.DeepCopyObject().(client.Object))
		zero := int32(0)
		*w.replicas = &zero
		if err := h.Client.Patch(ctx, w.obj, patch); err != nil {
			return Result{}, err
		}
	}
	pods, err := h.selected(ctx, h.Client, req.Resource, w)
	if err == nil && len(pods) == 0 {
		// Confirmed with the API server before the group may start elsewhere.
		pods, err = h.selected(ctx, h.Reader, req.Resource, w)
	}
	if err != nil {
		return Result{}, err
	}
	if len(pods) == 0 {
		return Result{State: Offline, Message: fmt.Sprintf("%s %s scaled to 0 and no pod is left", ref.Kind, ref.Name)}, nil
	}
	if len(opts) > 0 {
		for i := range pods {
			if err := client.IgnoreNotFound(h.Client.Delete(ctx, &pods[i], opts...)); err != nil {
				return Result{}, err
			}
		}
	}
	return Result{State: Pending, Message: fmt.Sprintf("%s %s scaled to 0; %d pods left", ref.Kind, ref.Name, len(pods))}, nil
}
