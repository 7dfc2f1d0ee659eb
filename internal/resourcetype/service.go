package resourcetype

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// ServiceName is the name of the Service of a service resource.
func ServiceName(r *wolfpackv1alpha1.Resource) string {
	if r.Spec.Service != nil && r.Spec.Service.ServiceName != "" {
		return r.Spec.Service.ServiceName
	}
	return r.Name
}

// Service builds the Service of a service resource (a network name): it selects only the pods of
// the resource's group on the owner node, so that clients never reach a pod left on an old
// owner.
func Service(r *wolfpackv1alpha1.Resource, p Placement) (*corev1.Service, error) {
	if r.Spec.Service == nil {
		return nil, fmt.Errorf("resource %s/%s has no service", r.Namespace, r.Name)
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: r.Namespace,
			Name:      ServiceName(r),
			Labels:    Labels(r, p.Node),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(r,
				wolfpackv1alpha1.GroupVersion.WithKind("Resource"))},
		},
		Spec: corev1.ServiceSpec{
			Type:  r.Spec.Service.TypeOrDefault(),
			Ports: append([]corev1.ServicePort(nil), r.Spec.Service.Ports...),
			Selector: map[string]string{
				wolfpackv1alpha1.GroupLabel: r.Spec.Group,
				wolfpackv1alpha1.NodeLabel:  p.Node,
			},
		},
	}, nil
}
