// Package builder makes Wolfpack's objects for tests, in the style of Kueue's wrappers:
//
//	builder.QuorumDisk("demo").NodeSelector(labels).LeaseDuration(2 * time.Second).Obj()
//	builder.Group("prod", "sql").Cluster("demo").PreferredOwners("a", "b").Obj()
//	builder.Resource("prod", "ip").Group("sql").IPAddress("192.0.2.50").DependsOn("disk").Obj()
//
// Each constructor starts from the smallest object that the CRD's validation accepts (the
// required fields set, one resource type for a Resource); the methods set what tests set. Obj
// returns the object itself, not a copy.
package builder

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// The defaults that make an object valid: the names of the samples in config/samples.
const (
	defaultNamespace = "wolfpack-system"
	defaultClaim     = "quorum"
	defaultKeySecret = "key"
	defaultCluster   = "demo"
	defaultGroup     = "sql"
	defaultVolume    = "data"
)

// QuorumDiskWrapper builds a QuorumDisk.
type QuorumDiskWrapper struct{ wp.QuorumDisk }

// QuorumDisk is a QuorumDisk whose quorum claim is wolfpack-system/quorum and whose heartbeat key
// is in the Secret wolfpack-system/key; everything else is left to the CRD's defaults.
func QuorumDisk(name string) *QuorumDiskWrapper {
	return &QuorumDiskWrapper{wp.QuorumDisk{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: wp.QuorumDiskSpec{
			VolumeClaim:  wp.VolumeClaimReference{Namespace: defaultNamespace, Name: defaultClaim},
			KeySecretRef: wp.SecretKeyReference{Namespace: defaultNamespace, Name: defaultKeySecret},
		},
	}}
}

// Obj returns the QuorumDisk.
func (w *QuorumDiskWrapper) Obj() *wp.QuorumDisk { return &w.QuorumDisk }

// UID sets metadata.uid, as the API server would.
func (w *QuorumDiskWrapper) UID(uid types.UID) *QuorumDiskWrapper {
	w.QuorumDisk.UID = uid
	return w
}

// Claim sets spec.volumeClaim, the PersistentVolumeClaim that holds the quorum.
func (w *QuorumDiskWrapper) Claim(namespace, name string) *QuorumDiskWrapper {
	w.Spec.VolumeClaim = wp.VolumeClaimReference{Namespace: namespace, Name: name}
	return w
}

// KeySecret sets spec.keySecretRef to the Secret namespace/name, its key left to the default.
func (w *QuorumDiskWrapper) KeySecret(namespace, name string) *QuorumDiskWrapper {
	w.Spec.KeySecretRef = wp.SecretKeyReference{Namespace: namespace, Name: name}
	return w
}

// NodeSelector sets spec.nodeSelector, the labels of the member nodes.
func (w *QuorumDiskWrapper) NodeSelector(labels map[string]string) *QuorumDiskWrapper {
	w.Spec.NodeSelector = labels
	return w
}

// QuorumType sets spec.quorumType.
func (w *QuorumDiskWrapper) QuorumType(t wp.QuorumType) *QuorumDiskWrapper {
	w.Spec.QuorumType = t
	return w
}

// LeaseDuration sets spec.leaseDuration.
func (w *QuorumDiskWrapper) LeaseDuration(d time.Duration) *QuorumDiskWrapper {
	w.Spec.LeaseDuration = &metav1.Duration{Duration: d}
	return w
}

// HeartbeatPort sets spec.heartbeat.port.
func (w *QuorumDiskWrapper) HeartbeatPort(port int32) *QuorumDiskWrapper {
	w.Spec.Heartbeat.Port = &port
	return w
}

// HeartbeatInterval sets spec.heartbeat.interval.
func (w *QuorumDiskWrapper) HeartbeatInterval(d time.Duration) *QuorumDiskWrapper {
	w.Spec.Heartbeat.Interval = &metav1.Duration{Duration: d}
	return w
}

// HeartbeatThreshold sets spec.heartbeat.threshold.
func (w *QuorumDiskWrapper) HeartbeatThreshold(intervals int32) *QuorumDiskWrapper {
	w.Spec.Heartbeat.Threshold = &intervals
	return w
}

// Network adds a heartbeat network after those already set.
func (w *QuorumDiskWrapper) Network(name, cidr string, role wp.NetworkRole) *QuorumDiskWrapper {
	w.Spec.Heartbeat.Networks = append(w.Spec.Heartbeat.Networks, wp.HeartbeatNetwork{Name: name, CIDR: cidr, Role: role})
	return w
}

// Owner sets status.owner, the node that holds the quorum.
func (w *QuorumDiskWrapper) Owner(node string) *QuorumDiskWrapper {
	w.Status.Owner = node
	return w
}

// Nodes sets status.nodes, the member nodes and their states.
func (w *QuorumDiskWrapper) Nodes(nodes ...wp.NodeStatus) *QuorumDiskWrapper {
	w.Status.Nodes = nodes
	return w
}

// GroupWrapper builds a ResourceGroup.
type GroupWrapper struct{ wp.ResourceGroup }

// Group is a ResourceGroup of the cluster demo; everything else is left to the CRD's defaults.
func Group(namespace, name string) *GroupWrapper {
	return &GroupWrapper{wp.ResourceGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       wp.ResourceGroupSpec{Cluster: defaultCluster},
	}}
}

// Obj returns the ResourceGroup.
func (w *GroupWrapper) Obj() *wp.ResourceGroup { return &w.ResourceGroup }

// Generation sets metadata.generation, as the API server would.
func (w *GroupWrapper) Generation(generation int64) *GroupWrapper {
	w.ResourceGroup.Generation = generation
	return w
}

// Annotation sets one annotation.
func (w *GroupWrapper) Annotation(key, value string) *GroupWrapper {
	if w.Annotations == nil {
		w.Annotations = map[string]string{}
	}
	w.Annotations[key] = value
	return w
}

// Cluster sets spec.cluster, the name of the group's QuorumDisk.
func (w *GroupWrapper) Cluster(name string) *GroupWrapper {
	w.Spec.Cluster = name
	return w
}

// DesiredState sets spec.state, the state an administrator asks for.
func (w *GroupWrapper) DesiredState(s wp.DesiredState) *GroupWrapper {
	w.Spec.State = s
	return w
}

// PreferredOwners sets spec.preferredOwners.
func (w *GroupWrapper) PreferredOwners(nodes ...string) *GroupWrapper {
	w.Spec.PreferredOwners = nodes
	return w
}

// State sets status.state, the observed state.
func (w *GroupWrapper) State(s wp.GroupState) *GroupWrapper {
	w.Status.State = s
	return w
}

// OwnerNode sets status.ownerNode.
func (w *GroupWrapper) OwnerNode(node string) *GroupWrapper {
	w.Status.OwnerNode = node
	return w
}

// Epoch sets status.epoch.
func (w *GroupWrapper) Epoch(epoch int64) *GroupWrapper {
	w.Status.Epoch = epoch
	return w
}

// ResourceWrapper builds a Resource.
type ResourceWrapper struct{ wp.Resource }

// Resource is a volume resource (the claim data) of the group sql; everything else is left to the
// CRD's defaults. Setting another type (Workload, IPAddress...) replaces the volume: a Resource
// has exactly one type.
func Resource(namespace, name string) *ResourceWrapper {
	return &ResourceWrapper{wp.Resource{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       wp.ResourceSpec{Group: defaultGroup, Volume: &wp.VolumeResource{ClaimName: defaultVolume}},
	}}
}

// Obj returns the Resource.
func (w *ResourceWrapper) Obj() *wp.Resource { return &w.Resource }

// UID sets metadata.uid, as the API server would.
func (w *ResourceWrapper) UID(uid types.UID) *ResourceWrapper {
	w.Resource.UID = uid
	return w
}

// Group sets spec.group, the name of the resource's ResourceGroup.
func (w *ResourceWrapper) Group(name string) *ResourceWrapper {
	w.Spec.Group = name
	return w
}

// DependsOn adds dependencies on the named resources after those already set.
func (w *ResourceWrapper) DependsOn(names ...string) *ResourceWrapper {
	for _, n := range names {
		w.Spec.DependsOn = append(w.Spec.DependsOn, wp.Dependency{Name: n})
	}
	return w
}

// noType clears the resource's type, before another is set.
func (w *ResourceWrapper) noType() {
	w.Spec.Workload, w.Spec.Volume, w.Spec.Service, w.Spec.IPAddress, w.Spec.Custom = nil, nil, nil, nil, nil
}

// Volume makes it a volume resource on the claim of the resource's namespace.
func (w *ResourceWrapper) Volume(claim string) *ResourceWrapper {
	w.noType()
	w.Spec.Volume = &wp.VolumeResource{ClaimName: claim}
	return w
}

// IPAddress makes it a floating address resource.
func (w *ResourceWrapper) IPAddress(address string) *ResourceWrapper {
	w.noType()
	w.Spec.IPAddress = &wp.IPAddressResource{Address: address}
	return w
}

// PrefixLength sets the prefix length of the floating address that IPAddress set.
func (w *ResourceWrapper) PrefixLength(bits int32) *ResourceWrapper {
	w.Spec.IPAddress.PrefixLength = &bits
	return w
}

// Service makes it a network name resource.
func (w *ResourceWrapper) Service(s wp.ServiceResource) *ResourceWrapper {
	w.noType()
	w.Spec.Service = &s
	return w
}

// Workload makes it a workload resource that runs one pod of the template.
func (w *ResourceWrapper) Workload(template corev1.PodTemplateSpec) *ResourceWrapper {
	w.noType()
	w.Spec.Workload = &wp.WorkloadResource{Template: &template}
	return w
}

// WorkloadRef makes it a workload resource that pins and scales an existing workload.
func (w *ResourceWrapper) WorkloadRef(kind wp.WorkloadKind, name string) *ResourceWrapper {
	w.noType()
	w.Spec.Workload = &wp.WorkloadResource{WorkloadRef: &wp.WorkloadReference{Kind: kind, Name: name}}
	return w
}

// Custom makes it a custom resource: the object of the JSON template, healthy when the CEL
// expression says so.
func (w *ResourceWrapper) Custom(template, healthy string) *ResourceWrapper {
	w.noType()
	w.Spec.Custom = &wp.CustomResource{Template: runtime.RawExtension{Raw: []byte(template)}, Healthy: healthy}
	return w
}

// RestartPolicy sets spec.restartPolicy.
func (w *ResourceWrapper) RestartPolicy(p wp.RestartPolicy) *ResourceWrapper {
	w.Spec.RestartPolicy = p
	return w
}

// State sets status.state.
func (w *ResourceWrapper) State(s wp.ResourceState) *ResourceWrapper {
	w.Status.State = s
	return w
}

// Node sets status.node, the node the resource is on.
func (w *ResourceWrapper) Node(node string) *ResourceWrapper {
	w.Status.Node = node
	return w
}

// Conditions sets status.conditions.
func (w *ResourceWrapper) Conditions(conds ...metav1.Condition) *ResourceWrapper {
	w.Status.Conditions = conds
	return w
}

// LastFailure sets status.lastFailure.
func (w *ResourceWrapper) LastFailure(f wp.ResourceFailure) *ResourceWrapper {
	w.Status.LastFailure = &f
	return w
}
