package resourcetype

import (
	"fmt"
	"maps"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// Placement is where, and under which epoch, a resource is brought online.
type Placement struct {
	// Node is the group's owner node.
	Node string
	// Epoch is the group's epoch: it goes up on every change of owner.
	Epoch int64
}

// Labels are the labels of every object made for resource r.
func Labels(r *wolfpackv1alpha1.Resource, node string) map[string]string {
	return map[string]string{
		wolfpackv1alpha1.GroupLabel:    r.Spec.Group,
		wolfpackv1alpha1.ResourceLabel: r.Name,
		wolfpackv1alpha1.NodeLabel:     node,
	}
}

// PodName is the name of the workload pod of resource r in epoch: <group>-<resource>-<epoch>. A
// new epoch gives a new name, so a pod of an old owner is never mistaken for, or replaced by, the
// new owner's.
func PodName(r *wolfpackv1alpha1.Resource, epoch int64) string {
	suffix := "-" + strconv.FormatInt(epoch, 10)
	name := r.Spec.Group + "-" + r.Name
	if limit := validation.DNS1123SubdomainMaxLength - len(suffix); len(name) > limit {
		name = name[:limit]
	}
	return name + suffix
}

// Pod builds the pod of a workload resource with a pod template: pinned to the owner node
// (spec.nodeName, so that no scheduler delay stands between a failover and the start), labelled
// for the group's Service, carrying the epoch as an annotation and an environment variable, and
// owned by the Resource.
func Pod(r *wolfpackv1alpha1.Resource, p Placement) (*corev1.Pod, error) {
	if r.Spec.Workload == nil || r.Spec.Workload.Template == nil {
		return nil, fmt.Errorf("resource %s/%s has no workload.template", r.Namespace, r.Name)
	}
	tmpl := stamp(r, r.Spec.Workload.Template, p)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   r.Namespace,
			Name:        PodName(r, p.Epoch),
			Labels:      tmpl.Labels,
			Annotations: tmpl.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(r,
				wolfpackv1alpha1.GroupVersion.WithKind("Resource"))},
		},
		Spec: tmpl.Spec,
	}
	pod.Spec.NodeName = p.Node
	// A failed workload is restarted by the Resource Manager's policy, not by the kubelet.
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	return pod, nil
}

// PinTemplate returns the pod template of an existing Deployment or StatefulSet pinned to node
// and carrying epoch, for a workloadRef resource; the workload is then scaled to one replica.
// Other node selector entries of the template are kept.
func PinTemplate(r *wolfpackv1alpha1.Resource, tmpl *corev1.PodTemplateSpec, p Placement) *corev1.PodTemplateSpec {
	out := stamp(r, tmpl, p)
	if out.Spec.NodeSelector == nil {
		out.Spec.NodeSelector = map[string]string{}
	}
	out.Spec.NodeSelector[corev1.LabelHostname] = p.Node
	return out
}

// stamp returns a copy of a pod template with Wolfpack's labels, and the epoch as an annotation
// and an environment variable of every container.
func stamp(r *wolfpackv1alpha1.Resource, tmpl *corev1.PodTemplateSpec, p Placement) *corev1.PodTemplateSpec {
	out := tmpl.DeepCopy()
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	maps.Copy(out.Labels, Labels(r, p.Node))
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	epoch := strconv.FormatInt(p.Epoch, 10)
	out.Annotations[wolfpackv1alpha1.EpochAnnotation] = epoch
	for i := range out.Spec.InitContainers {
		setEnv(&out.Spec.InitContainers[i], wolfpackv1alpha1.EpochEnvVar, epoch)
	}
	for i := range out.Spec.Containers {
		setEnv(&out.Spec.Containers[i], wolfpackv1alpha1.EpochEnvVar, epoch)
	}
	return out
}

func setEnv(c *corev1.Container, name, value string) {
	for i := range c.Env {
		if c.Env[i].Name == name {
			c.Env[i] = corev1.EnvVar{Name: name, Value: value}
			return
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
}

// PodState is what a workload pod's status says about the resource.
type PodState string

const (
	// PodStarting means the pod is not yet Running and Ready.
	PodStarting PodState = "Starting"
	// PodOnline means the pod runs on the asked node and is Ready.
	PodOnline PodState = "Online"
	// PodFailed means the pod ended, or runs somewhere it should not.
	PodFailed PodState = "Failed"
)

// PodHealth reads a workload pod's status: Online once it runs on node and is Ready; Failed when
// it has ended, is being deleted, or was bound to another node.
func PodHealth(pod *corev1.Pod, node string) (PodState, string) {
	switch {
	case pod.DeletionTimestamp != nil:
		return PodFailed, fmt.Sprintf("pod %s is being deleted", pod.Name)
	case pod.Spec.NodeName != "" && pod.Spec.NodeName != node:
		return PodFailed, fmt.Sprintf("pod %s is on node %s, not %s", pod.Name, pod.Spec.NodeName, node)
	case pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded:
		msg := fmt.Sprintf("pod %s %s", pod.Name, pod.Status.Phase)
		if pod.Status.Reason != "" {
			msg += ": " + pod.Status.Reason
		}
		return PodFailed, msg
	case pod.Status.Phase != corev1.PodRunning:
		return PodStarting, fmt.Sprintf("pod %s is %s", pod.Name, pod.Status.Phase)
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return PodOnline, fmt.Sprintf("pod %s is Running and Ready on %s", pod.Name, node)
		}
	}
	return PodStarting, fmt.Sprintf("pod %s is Running but not Ready", pod.Name)
}
