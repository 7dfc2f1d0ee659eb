package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ResourceState is the observed state of a resource.
// +kubebuilder:validation:Enum=Offline;OnlinePending;Online;OfflinePending;Failed
type ResourceState string

const (
	// ResourceOffline means the resource is not running anywhere.
	ResourceOffline ResourceState = "Offline"
	// ResourceOnlinePending means the resource is being brought online.
	ResourceOnlinePending ResourceState = "OnlinePending"
	// ResourceOnline means the resource runs on the group's owner node and is healthy.
	ResourceOnline ResourceState = "Online"
	// ResourceOfflinePending means the resource is being taken offline.
	ResourceOfflinePending ResourceState = "OfflinePending"
	// ResourceFailed means the resource failed and is not being restarted on this node.
	ResourceFailed ResourceState = "Failed"
)

// RestartAction is what the Resource Manager does when a resource fails.
// +kubebuilder:validation:Enum=DoNotRestart;Restart;RestartOrFailover
type RestartAction string

const (
	// DoNotRestart leaves a failed resource Failed; the group stays where it is.
	DoNotRestart RestartAction = "DoNotRestart"
	// Restart restarts the resource on the same node up to the threshold, then leaves it Failed
	// without failing the group over.
	Restart RestartAction = "Restart"
	// RestartOrFailover restarts the resource on the same node up to the threshold, then fails
	// the whole group over to another node.
	RestartOrFailover RestartAction = "RestartOrFailover"
)

// WorkloadKind is the kind of an existing workload that Wolfpack pins and scales.
// +kubebuilder:validation:Enum=Deployment;StatefulSet
type WorkloadKind string

const (
	// DeploymentKind is an apps/v1 Deployment.
	DeploymentKind WorkloadKind = "Deployment"
	// StatefulSetKind is an apps/v1 StatefulSet.
	StatefulSetKind WorkloadKind = "StatefulSet"
)

// Dependency is one entry of dependsOn. Today it names one resource; alternatives
// ("[a] or [b]") are a planned extension of this struct.
type Dependency struct {
	// name of a Resource in the same group that must be Online first.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// WorkloadReference names an existing Deployment or StatefulSet in the resource's namespace.
type WorkloadReference struct {
	// kind of the workload.
	// +required
	Kind WorkloadKind `json:"kind"`

	// name of the workload.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// WorkloadResource is an application: one pod pinned to the owner node.
// +kubebuilder:validation:XValidation:rule="has(self.template) != has(self.workloadRef)",message="exactly one of template or workloadRef must be set"
type WorkloadResource struct {
	// template of the single pod that Wolfpack runs on the owner node.
	// +optional
	Template *corev1.PodTemplateSpec `json:"template,omitempty"`

	// workloadRef names an existing Deployment or StatefulSet that Wolfpack pins to the owner
	// node and scales between 0 and 1 replica.
	// +optional
	WorkloadRef *WorkloadReference `json:"workloadRef,omitempty"`
}

// VolumeResource is a ReadWriteOnce disk that must be detached from the old node before the new
// one uses it.
type VolumeResource struct {
	// claimName is the ReadWriteOnce PersistentVolumeClaim in the resource's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ClaimName string `json:"claimName"`
}

// ServiceResource is a network name: a Service that always selects the owner node's pods of the
// group.
type ServiceResource struct {
	// serviceName is the name of the Service Wolfpack creates and keeps; defaults to the
	// resource's name.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	ServiceName string `json:"serviceName,omitempty"`

	// type of the Service.
	// +optional
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	Type corev1.ServiceType `json:"type,omitempty"`

	// ports the Service exposes.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Ports []corev1.ServicePort `json:"ports"`
}

// IPAddressResource is a floating IP address that the node agent on the owner node adds to an
// interface and announces.
// +kubebuilder:validation:XValidation:rule="!has(self.prefixLength) || ip(self.address).family() == 6 || self.prefixLength <= 32",message="prefixLength of an IPv4 address must be at most 32",fieldPath=".prefixLength"
type IPAddressResource struct {
	// address is the floating IPv4 or IPv6 address.
	// +required
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip.isCanonical(self)",message="address must be an IP address in canonical form, such as 10.0.0.50 or fd00::50"
	Address string `json:"address"`

	// prefixLength of the address on the interface. When unset, the address's own length: 32 for
	// an IPv4 address, 128 for an IPv6 one (a host address).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=128
	PrefixLength *int32 `json:"prefixLength,omitempty"`

	// interface the address is added to. When empty, the agent uses the interface that holds its
	// address on the cluster's first Public heartbeat network.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_.:-]+$`
	Interface string `json:"interface,omitempty"`
}

// CustomResource is any object made from a template, healthy when a CEL expression says so. It is
// how users add a resource type, as MSCS applications add Resource DLLs.
type CustomResource struct {
	// template of the object, with apiVersion and kind. Its namespace is the resource's.
	// +required
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:EmbeddedResource
	Template runtime.RawExtension `json:"template"`

	// healthy is a CEL expression over the object (as `object`) that is true when it is
	// healthy, such as `object.status.phase == "Ready"`.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Healthy string `json:"healthy"`
}

// RestartPolicy says what happens when a resource fails.
type RestartPolicy struct {
	// action on failure.
	// +optional
	// +kubebuilder:default=RestartOrFailover
	Action RestartAction `json:"action,omitempty"`

	// threshold is how many restarts on the same node are made within period before the
	// resource is left Failed (and, with RestartOrFailover, the group fails over).
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Threshold *int32 `json:"threshold,omitempty"`

	// period over which restarts are counted.
	// +optional
	// +kubebuilder:default="15m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="period must be between 1s and 24h"
	Period *metav1.Duration `json:"period,omitempty"`

	// delay before a restart.
	// +optional
	// +kubebuilder:default="500ms"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('1h')",message="delay must be at most 1h"
	Delay *metav1.Duration `json:"delay,omitempty"`
}

// ResourceSpec is the desired state of one resource of a group.
// +kubebuilder:validation:XValidation:rule="[has(self.workload), has(self.volume), has(self.service), has(self.ipAddress), has(self.custom)].filter(x, x).size() == 1",message="exactly one of workload, volume, service, ipAddress or custom must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.healthChecks) || has(self.workload) || ((!has(self.healthChecks.looksAlive) || !has(self.healthChecks.looksAlive.exec)) && (!has(self.healthChecks.isAlive) || !has(self.healthChecks.isAlive.exec)))",message="exec health checks need a workload resource, whose container they run in",fieldPath=".healthChecks"
// +kubebuilder:validation:XValidation:rule="duration(self.isAlivePollInterval) >= duration(self.looksAlivePollInterval)",message="isAlivePollInterval (the thorough check) must not be shorter than looksAlivePollInterval (the quick one)",fieldPath=".isAlivePollInterval"
type ResourceSpec struct {
	// group is the name of the ResourceGroup, in the same namespace, that this resource belongs
	// to. It cannot change.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="group is immutable; create a new resource in the other group"
	Group string `json:"group"`

	// dependsOn are resources of the same group that must be Online before this one comes
	// online, and that go offline only after it.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(d, self.exists_one(e, e.name == d.name))",message="dependsOn must not name a resource twice"
	DependsOn []Dependency `json:"dependsOn,omitempty"`

	// possibleOwners are the nodes this resource may run on. Empty means every node of the
	// cluster.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.all(n, self.exists_one(m, m == n))",message="possibleOwners must not name a node twice"
	PossibleOwners []string `json:"possibleOwners,omitempty"`

	// workload is an application run as one pod on the owner node.
	// +optional
	Workload *WorkloadResource `json:"workload,omitempty"`

	// volume is a ReadWriteOnce disk.
	// +optional
	Volume *VolumeResource `json:"volume,omitempty"`

	// service is a network name that follows the owner node.
	// +optional
	Service *ServiceResource `json:"service,omitempty"`

	// ipAddress is a floating IP address held by the owner node.
	// +optional
	IPAddress *IPAddressResource `json:"ipAddress,omitempty"`

	// custom is any object from a template, with a CEL health expression.
	// +optional
	Custom *CustomResource `json:"custom,omitempty"`

	// restartPolicy says what happens when the resource fails.
	// +optional
	// +kubebuilder:default={}
	RestartPolicy RestartPolicy `json:"restartPolicy,omitzero"`

	// pendingTimeout is how long the resource may stay OnlinePending or OfflinePending before
	// it is considered Failed.
	// +optional
	// +kubebuilder:default="3m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="pendingTimeout must be between 1s and 1h"
	PendingTimeout *metav1.Duration `json:"pendingTimeout,omitempty"`

	// looksAlivePollInterval is the interval of the quick health check.
	// +optional
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="looksAlivePollInterval must be between 1s and 1h"
	LooksAlivePollInterval *metav1.Duration `json:"looksAlivePollInterval,omitempty"`

	// isAlivePollInterval is the interval of the thorough health check.
	// +optional
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="isAlivePollInterval must be between 1s and 24h"
	IsAlivePollInterval *metav1.Duration `json:"isAlivePollInterval,omitempty"`

	// healthChecks are node-local checks that the node agent on the owner node runs in its
	// Resource Monitor process, in addition to the manager's own checks of the resource type.
	// A failed check is a resource failure: the restart policy applies.
	// +optional
	HealthChecks *HealthChecks `json:"healthChecks,omitempty"`
}

// HealthChecks are a resource's node-local checks, as an MSCS Resource DLL's LooksAlive and
// IsAlive entry points.
// +kubebuilder:validation:XValidation:rule="has(self.looksAlive) || has(self.isAlive)",message="healthChecks must set looksAlive, isAlive or both"
type HealthChecks struct {
	// looksAlive is the quick check, run every looksAlivePollInterval.
	// +optional
	LooksAlive *HealthCheck `json:"looksAlive,omitempty"`

	// isAlive is the thorough check, run every isAlivePollInterval.
	// +optional
	IsAlive *HealthCheck `json:"isAlive,omitempty"`
}

// HealthCheck is one node-local check: exactly one of exec, tcpSocket or httpGet.
// +kubebuilder:validation:XValidation:rule="[has(self.exec), has(self.tcpSocket), has(self.httpGet)].filter(x, x).size() == 1",message="exactly one of exec, tcpSocket or httpGet must be set"
type HealthCheck struct {
	// exec runs a command in the resource's container through the node's container runtime;
	// exit status 0 is healthy. Only for workload resources.
	// +optional
	Exec *ExecCheck `json:"exec,omitempty"`

	// tcpSocket is healthy when a TCP connection can be opened.
	// +optional
	TCPSocket *TCPSocketCheck `json:"tcpSocket,omitempty"`

	// httpGet is healthy when a GET answers with a status from 200 to 399.
	// +optional
	HTTPGet *HTTPGetCheck `json:"httpGet,omitempty"`

	// timeout of one check. A check that has not answered by then, even one that hangs, is a
	// failure.
	// +optional
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('5m')",message="timeout must be between 100ms and 5m"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// ExecCheck runs a command in a container of the resource's pod.
type ExecCheck struct {
	// command to run, not in a shell.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	Command []string `json:"command"`

	// container to run it in. When empty, the pod's first container.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Container string `json:"container,omitempty"`
}

// TCPSocketCheck opens a TCP connection.
type TCPSocketCheck struct {
	// host to connect to. When empty: the pod's IP for a workload resource, the address for an
	// ipAddress resource; other resource types must set it.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Host string `json:"host,omitempty"`

	// port to connect to.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// HTTPGetCheck sends an HTTP GET.
type HTTPGetCheck struct {
	// host to connect to, as for tcpSocket.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Host string `json:"host,omitempty"`

	// port to connect to.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// path of the request.
	// +optional
	// +kubebuilder:default="/"
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^/`
	Path string `json:"path,omitempty"`

	// scheme is HTTP or HTTPS (the server's certificate is not verified, as kubelet's probes do).
	// +optional
	// +kubebuilder:default=HTTP
	// +kubebuilder:validation:Enum=HTTP;HTTPS
	Scheme string `json:"scheme,omitempty"`
}

// ResourceFailure records a resource's last failure.
type ResourceFailure struct {
	// time of the failure.
	// +required
	Time metav1.Time `json:"time"`

	// node the resource failed on.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node,omitempty"`

	// reason is a CamelCase word for the failure.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Reason string `json:"reason"`

	// message says what failed, for a human.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// ResourceStatus is the observed state of a resource.
type ResourceStatus struct {
	// state of the resource.
	// +optional
	State ResourceState `json:"state,omitempty"`

	// node the resource is on, when it is not Offline.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node,omitempty"`

	// restarts made on the current node within the current restart period.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Restarts int32 `json:"restarts,omitempty"`

	// restartPeriodStart is when the current restart period began.
	// +optional
	RestartPeriodStart *metav1.Time `json:"restartPeriodStart,omitempty"`

	// lastFailure is the resource's most recent failure.
	// +optional
	LastFailure *ResourceFailure `json:"lastFailure,omitempty"`

	// conditions: Ready, Valid and Healthy.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation that this status describes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// Resource is one part of a ResourceGroup (a disk, an address, a network name, an application,
// or an object of the user's own kind), brought online after the resources it depends on and
// restarted or failed over by its policy, as an MSCS resource is.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=res,categories=wolfpack
// +kubebuilder:validation:XValidation:rule="!has(self.spec.dependsOn) || self.spec.dependsOn.all(d, d.name != self.metadata.name)",message="a resource cannot depend on itself",fieldPath=".spec.dependsOn"
// +kubebuilder:printcolumn:name="Group",type=string,JSONPath=`.spec.group`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Restarts",type=integer,JSONPath=`.status.restarts`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Depends-On",type=string,JSONPath=`.spec.dependsOn[*].name`,priority=1
// +kubebuilder:printcolumn:name="Restart-Action",type=string,JSONPath=`.spec.restartPolicy.action`,priority=1
// +kubebuilder:printcolumn:name="Last-Failure",type=string,JSONPath=`.status.lastFailure.reason`,priority=1
type Resource struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec is the desired state of the resource.
	// +required
	Spec ResourceSpec `json:"spec"`

	// status is the observed state of the resource.
	// +optional
	Status ResourceStatus `json:"status,omitzero"`
}

// ResourceList is a list of Resources.
//
// +kubebuilder:object:root=true
type ResourceList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []Resource `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &Resource{}, &ResourceList{})
}
