package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DesiredState is the persistent state an administrator asks of a group.
// +kubebuilder:validation:Enum=Online;Offline
type DesiredState string

const (
	// DesiredOnline means the group runs on one node of the cluster, failing over when it must.
	DesiredOnline DesiredState = "Online"
	// DesiredOffline means every resource of the group is offline.
	DesiredOffline DesiredState = "Offline"
)

// GroupState is the observed state of a group.
// +kubebuilder:validation:Enum=Online;PartialOnline;Offline;Pending;Failed
type GroupState string

const (
	// GroupOnline means every resource is Online on the owner node.
	GroupOnline GroupState = "Online"
	// GroupPartialOnline means some resources are Online and others are not, and nothing is pending.
	GroupPartialOnline GroupState = "PartialOnline"
	// GroupOffline means every resource is Offline.
	GroupOffline GroupState = "Offline"
	// GroupPending means resources are coming online or going offline.
	GroupPending GroupState = "Pending"
	// GroupFailed means the group could not be brought online and is left alone until an
	// administrator acts.
	GroupFailed GroupState = "Failed"
)

// FailbackPolicy says whether a group returns to its most preferred owner when that node is back.
// +kubebuilder:validation:Enum=Prevent;Allow
type FailbackPolicy string

const (
	// FailbackPrevent means the group stays where it failed over to.
	FailbackPrevent FailbackPolicy = "Prevent"
	// FailbackAllow means the group moves back to its most preferred Up owner, inside the window.
	FailbackAllow FailbackPolicy = "Allow"
)

// OperationKind is what a group operation was started for.
// +kubebuilder:validation:Enum=Online;Offline;Move;Failover;Failback
type OperationKind string

const (
	// OperationOnline brings an offline group online.
	OperationOnline OperationKind = "Online"
	// OperationOffline takes an online group offline.
	OperationOffline OperationKind = "Offline"
	// OperationMove is a move an administrator asked for.
	OperationMove OperationKind = "Move"
	// OperationFailover moves a group off a failed node or after a failed resource.
	OperationFailover OperationKind = "Failover"
	// OperationFailback returns a group to its most preferred owner.
	OperationFailback OperationKind = "Failback"
)

// OperationPhase is how far an operation has come.
// +kubebuilder:validation:Enum=TakingOffline;BringingOnline;Succeeded;Failed
type OperationPhase string

const (
	// PhaseTakingOffline means resources are going offline on the old owner, wave by wave in reverse
	// dependency order.
	PhaseTakingOffline OperationPhase = "TakingOffline"
	// PhaseBringingOnline means resources are coming online on the new owner, wave by wave in
	// dependency order.
	PhaseBringingOnline OperationPhase = "BringingOnline"
	// PhaseSucceeded means the operation ended as asked.
	PhaseSucceeded OperationPhase = "Succeeded"
	// PhaseFailed means the operation ended without reaching its goal.
	PhaseFailed OperationPhase = "Failed"
)

// FailbackSpec says whether and when a group returns to its most preferred owner.
// +kubebuilder:validation:XValidation:rule="has(self.windowStart) == has(self.windowEnd)",message="windowStart and windowEnd must be set together"
// +kubebuilder:validation:XValidation:rule="!has(self.windowStart) || !has(self.windowEnd) || self.windowStart != self.windowEnd",message="windowStart and windowEnd must differ; omit both to allow failback at any hour"
// +kubebuilder:validation:XValidation:rule="!has(self.windowStart) || self.policy == 'Allow'",message="a failback window needs policy Allow"
type FailbackSpec struct {
	// policy: Prevent keeps the group where it is; Allow moves it back to its most preferred Up
	// owner.
	// +optional
	// +kubebuilder:default=Prevent
	Policy FailbackPolicy `json:"policy,omitempty"`

	// windowStart is the hour of the day (0-23, in the manager's time zone) from which failback
	// may happen. With windowEnd it forms the window [windowStart, windowEnd), which may wrap
	// around midnight. Omit both to fail back at any hour.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=23
	WindowStart *int32 `json:"windowStart,omitempty"`

	// windowEnd is the hour of the day (0-23) at which the failback window closes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=23
	WindowEnd *int32 `json:"windowEnd,omitempty"`
}

// ResourceGroupSpec is the desired state of a group: where it may run and what it does after a
// failure.
type ResourceGroupSpec struct {
	// cluster is the name of the QuorumDisk whose nodes run this group. It cannot change.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cluster is immutable; create a new group to run in another cluster"
	Cluster string `json:"cluster"`

	// state is the persistent desired state: Online keeps the group running somewhere in the
	// cluster; Offline takes every resource offline.
	// +optional
	// +kubebuilder:default=Online
	State DesiredState `json:"state,omitempty"`

	// preferredOwners are node names in order of preference. Placement takes the first Up one
	// allowed by every resource's possibleOwners, else any Up node of the cluster.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.all(n, self.exists_one(m, m == n))",message="preferredOwners must not name a node twice"
	PreferredOwners []string `json:"preferredOwners,omitempty"`

	// priority orders groups after a failure: higher first. 3000 is high, 2000 medium, 1000 low;
	// 0 means the group is never started automatically after a failure.
	// +optional
	// +kubebuilder:default=2000
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3000
	Priority *int32 `json:"priority,omitempty"`

	// failoverThreshold is how many failovers within failoverPeriod the group may make before it
	// is left Failed. Defaults to the number of cluster nodes minus one.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	FailoverThreshold *int32 `json:"failoverThreshold,omitempty"`

	// failoverPeriod is the period over which failovers are counted.
	// +optional
	// +kubebuilder:default="6h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('720h')",message="failoverPeriod must be between 1m and 720h"
	FailoverPeriod *metav1.Duration `json:"failoverPeriod,omitempty"`

	// failback says whether and when the group returns to its most preferred owner.
	// +optional
	// +kubebuilder:default={}
	Failback FailbackSpec `json:"failback,omitzero"`
}

// GroupOperation is the checkpoint of an operation in progress. It is written before each step
// is acted on, so that a restarted manager resumes the operation where it stopped.
type GroupOperation struct {
	// kind of operation.
	// +required
	Kind OperationKind `json:"kind"`

	// from is the node the group leaves; empty when it was offline.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	From string `json:"from,omitempty"`

	// to is the node the group goes to; empty when it goes offline.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	To string `json:"to,omitempty"`

	// phase of the operation.
	// +required
	Phase OperationPhase `json:"phase"`

	// wave is the index of the dependency wave being worked on in the current phase.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Wave int32 `json:"wave,omitempty"`

	// startedAt is when the operation started, to the microsecond.
	// +required
	StartedAt metav1.MicroTime `json:"startedAt"`

	// message says why the operation was started, or why it failed.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// ResourceSummary is one resource of a group as the group sees it.
type ResourceSummary struct {
	// name of the Resource.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// state of the Resource.
	// +required
	State ResourceState `json:"state"`

	// node the resource is on, when it is not Offline.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node,omitempty"`
}

// ResourceGroupStatus is the observed state of a group.
type ResourceGroupStatus struct {
	// state of the group as a whole.
	// +optional
	State GroupState `json:"state,omitempty"`

	// ownerNode is the node that owns the group.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	OwnerNode string `json:"ownerNode,omitempty"`

	// epoch goes up by one on every change of owner. Workloads see it as the
	// wolfpack.dev/epoch annotation and the WOLFPACK_EPOCH environment variable.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Epoch int64 `json:"epoch,omitempty"`

	// operation is the checkpoint of the operation in progress, or of the last one.
	// +optional
	Operation *GroupOperation `json:"operation,omitempty"`

	// recentFailovers are the times of the failovers within the current failoverPeriod.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1001
	RecentFailovers []metav1.Time `json:"recentFailovers,omitempty"`

	// resources summarises the group's resources.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	Resources []ResourceSummary `json:"resources,omitempty"`

	// conditions: Ready, Valid, Placed and FailoverAllowed.
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

// ResourceGroup is the unit of failover: a set of Resources that run together on one node of a
// cluster, come online in dependency order and move together.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rg,categories=wolfpack
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Owner",type=string,JSONPath=`.status.ownerNode`
// +kubebuilder:printcolumn:name="Desired",type=string,JSONPath=`.spec.state`
// +kubebuilder:printcolumn:name="Epoch",type=integer,JSONPath=`.status.epoch`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`,priority=1
// +kubebuilder:printcolumn:name="Priority",type=integer,JSONPath=`.spec.priority`,priority=1
// +kubebuilder:printcolumn:name="Operation",type=string,JSONPath=`.status.operation.kind`,priority=1
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.operation.phase`,priority=1
type ResourceGroup struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec is the desired state of the group.
	// +required
	Spec ResourceGroupSpec `json:"spec"`

	// status is the observed state of the group.
	// +optional
	Status ResourceGroupStatus `json:"status,omitzero"`
}

// ResourceGroupList is a list of ResourceGroups.
//
// +kubebuilder:object:root=true
type ResourceGroupList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []ResourceGroup `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &ResourceGroup{}, &ResourceGroupList{})
}
