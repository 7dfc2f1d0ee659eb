package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// QuorumType selects the rule by which a partitioned cluster decides which side keeps running.
// +kubebuilder:validation:Enum=DiskOnly;NodeAndDiskMajority;NodeMajority
type QuorumType string

const (
	// DiskOnly is the two-node MSCS rule: the node that holds the quorum disk stays active and
	// every other node fails itself.
	DiskOnly QuorumType = "DiskOnly"
	// NodeAndDiskMajority counts one vote per Up node plus one for the quorum disk owner; the side
	// with more than half of the votes stays.
	NodeAndDiskMajority QuorumType = "NodeAndDiskMajority"
	// NodeMajority counts one vote per Up node; the side with more than half of them stays.
	NodeMajority QuorumType = "NodeMajority"
)

// NetworkRole says what a heartbeat network is for.
// +kubebuilder:validation:Enum=Private;Public
type NetworkRole string

const (
	// PrivateNetwork carries cluster traffic only; heartbeats use it first.
	PrivateNetwork NetworkRole = "Private"
	// PublicNetwork also carries client traffic; heartbeats fall back to it.
	PublicNetwork NetworkRole = "Public"
)

// FenceAction is what a node's agent does to stop its group workloads when the node must fail
// itself.
// +kubebuilder:validation:Enum=None;CRI;Watchdog
type FenceAction string

const (
	// FenceNone does nothing beyond deleting pods through the API. Only for tests: it cannot stop
	// a workload on a node that lost the API.
	FenceNone FenceAction = "None"
	// FenceCRI stops the group's containers through the node's CRI socket.
	FenceCRI FenceAction = "CRI"
	// FenceWatchdog stops feeding /dev/watchdog, so that the hardware resets the node.
	FenceWatchdog FenceAction = "Watchdog"
)

// NodeState is a member node's state in the failover cluster.
// +kubebuilder:validation:Enum=Up;Down;Paused;Joining
type NodeState string

const (
	// NodeUp is an active member: it is heard and may own groups.
	NodeUp NodeState = "Up"
	// NodeDown is a member that is not heard; its groups fail over once it is fenced.
	NodeDown NodeState = "Down"
	// NodePaused is an active member that keeps its groups but is given no new ones.
	NodePaused NodeState = "Paused"
	// NodeJoining is a node that has started to take part and is not yet Up.
	NodeJoining NodeState = "Joining"
)

// VolumeClaimReference names a PersistentVolumeClaim.
type VolumeClaimReference struct {
	// namespace of the PersistentVolumeClaim.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`

	// name of the PersistentVolumeClaim.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// SecretKeyReference names one key of a Secret.
type SecretKeyReference struct {
	// namespace of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`

	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key within the Secret whose value is the key material.
	// +optional
	// +kubebuilder:default=key
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// HeartbeatNetwork is one network on which the node agents exchange heartbeats.
type HeartbeatNetwork struct {
	// name of the network, used in node status and Events.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// cidr of the network. Each agent sends from, and listens on, its address in this range.
	// +required
	// +kubebuilder:validation:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="cidr must be a CIDR such as 10.0.0.0/24"
	CIDR string `json:"cidr"`

	// role of the network: Private networks carry heartbeats first; Public ones are the
	// fallback when every private network is lost.
	// +required
	Role NetworkRole `json:"role"`
}

// HeartbeatSpec configures the UDP heartbeats between node agents.
// +kubebuilder:validation:XValidation:rule="!has(self.networks) || self.networks.all(n, self.networks.exists_one(m, m.cidr == n.cidr))",message="each heartbeat network must have its own cidr",fieldPath=".networks"
type HeartbeatSpec struct {
	// port is the UDP port the agents listen on.
	// +optional
	// +kubebuilder:default=3343
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`

	// interval between two heartbeats to one peer on one network.
	// +optional
	// +kubebuilder:default="500ms"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('10s')",message="interval must be between 100ms and 10s"
	Interval *metav1.Duration `json:"interval,omitempty"`

	// threshold is how many intervals a peer may stay silent on every network before this agent
	// considers it Down. A silent node is noticed after interval x threshold.
	// +optional
	// +kubebuilder:default=4
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=100
	Threshold *int32 `json:"threshold,omitempty"`

	// networks on which heartbeats are sent, private ones first. When empty, the agents use the
	// nodes' InternalIP addresses as a single public network.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=8
	Networks []HeartbeatNetwork `json:"networks,omitempty"`
}

// NodeFencing overrides the fence action for one node.
type NodeFencing struct {
	// node is the name of the Node.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node"`

	// action for this node.
	// +required
	Action FenceAction `json:"action"`
}

// FencingSpec says how a node stops its group workloads when it must fail itself.
type FencingSpec struct {
	// action for every node that has no entry in nodes.
	// +optional
	// +kubebuilder:default=CRI
	Action FenceAction `json:"action,omitempty"`

	// nodes overrides action for individual nodes.
	// +optional
	// +listType=map
	// +listMapKey=node
	// +kubebuilder:validation:MaxItems=64
	Nodes []NodeFencing `json:"nodes,omitempty"`
}

// PausedNode is a member node that an administrator has paused, as MSCS's "pause node" does.
type PausedNode struct {
	// name of the Node.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// drain moves the node's groups to other Up nodes first, as WSFC's "pause and drain roles"
	// does. Without it the node keeps the groups it owns.
	// +optional
	Drain bool `json:"drain,omitempty"`
}

// QuorumDiskSpec defines one failover cluster: its member nodes, the quorum disk that arbitrates
// between them, and how they watch each other.
// +kubebuilder:validation:XValidation:rule="duration(self.leaseDuration).getMilliseconds() > duration(self.heartbeat.interval).getMilliseconds() * self.heartbeat.threshold",message="leaseDuration must be longer than heartbeat interval x threshold, or a node would lose the quorum before its peers notice it is silent",fieldPath=".leaseDuration"
type QuorumDiskSpec struct {
	// nodeSelector selects the member nodes by their labels. When empty, the members are the
	// nodes labelled wolfpack.dev/cluster=<the QuorumDisk's name>.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// volumeClaim is the ReadWriteOnce PersistentVolumeClaim (block mode preferred) that holds
	// the quorum lease and the quorum log, standing in for MSCS's shared SCSI disk.
	// +required
	VolumeClaim VolumeClaimReference `json:"volumeClaim"`

	// quorumType is the rule that decides which side of a partition stays active.
	// DiskOnly is the two-node MSCS rule.
	// +optional
	// +kubebuilder:default=DiskOnly
	QuorumType QuorumType `json:"quorumType,omitempty"`

	// heartbeat configures the heartbeats between the node agents.
	// +optional
	// +kubebuilder:default={}
	Heartbeat HeartbeatSpec `json:"heartbeat,omitzero"`

	// leaseDuration is how long a quorum lease or a node lease stays valid without renewal.
	// +optional
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('5m')",message="leaseDuration must be between 1s and 5m"
	LeaseDuration *metav1.Duration `json:"leaseDuration,omitempty"`

	// keySecretRef names the Secret key that holds the shared key with which heartbeats are
	// authenticated (HMAC-SHA256). The key must be at least 32 bytes long.
	// +required
	KeySecretRef SecretKeyReference `json:"keySecretRef"`

	// fencing says how a node stops its group workloads when it must fail itself.
	// +optional
	// +kubebuilder:default={}
	Fencing FencingSpec `json:"fencing,omitzero"`

	// pausedNodes are the member nodes an administrator has paused: a paused node keeps the
	// groups it owns (unless drained) and is given no new ones. Removing the entry resumes it.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	PausedNodes []PausedNode `json:"pausedNodes,omitempty"`

	// allowedAddressCIDRs are the networks a floating address of this cluster (a Resource's
	// spec.ipAddress.address, in any namespace whose groups run here) must lie in, so that the
	// owner of a group cannot take over an address the cluster's administrator did not give out,
	// such as a gateway or the API server's VIP. A Resource whose address lies outside every one
	// of them is refused: it is marked invalid, never placed, and no node agent adds it. When
	// empty, any address is allowed, as before this field existed, and `kubectl cluster validate`
	// warns. The CIDRs restrict the address only, not its prefixLength.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self) && cidr(self) == cidr(self).masked()",message="each of allowedAddressCIDRs must be a CIDR with no host bits set, such as 192.0.2.48/28 or fd00:50::/64"
	AllowedAddressCIDRs []string `json:"allowedAddressCIDRs,omitempty"`
}

// NodeStatus is one member node as the manager sees it.
type NodeStatus struct {
	// name of the Node.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// state of the node in the cluster.
	// +required
	State NodeState `json:"state"`

	// since is when the node entered its state.
	// +optional
	Since metav1.Time `json:"since,omitzero"`

	// reachableNetworks are the heartbeat networks on which its peers hear the node.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	ReachableNetworks []string `json:"reachableNetworks,omitempty"`

	// fenced is true when the node can no longer run group workloads: its agent reports that it
	// failed its node (it stopped the node's group workloads because its side of a partition has
	// no quorum), or its Lease has run out (an agent fails its node before its Lease runs out). A
	// Down node that is fenced gives up its groups at once.
	// +optional
	Fenced bool `json:"fenced,omitempty"`

	// message says why the node is in its state, such as which peers stopped hearing it.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// QuorumDiskStatus is the observed state of a failover cluster.
type QuorumDiskStatus struct {
	// owner is the node that holds the quorum lease.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Owner string `json:"owner,omitempty"`

	// epoch is the fencing token of the quorum: it goes up by one on every change of owner.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Epoch int64 `json:"epoch,omitempty"`

	// nodes are the member nodes and their states.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Nodes []NodeStatus `json:"nodes,omitempty"`

	// conditions: Ready and Quorum.
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

// QuorumDisk is one failover cluster: a set of labelled nodes and the ReadWriteOnce disk that
// arbitrates between them, as MSCS's quorum resource does.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=qd,categories=wolfpack
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.quorumType`
// +kubebuilder:printcolumn:name="Owner",type=string,JSONPath=`.status.owner`
// +kubebuilder:printcolumn:name="Epoch",type=integer,JSONPath=`.status.epoch`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Volume",type=string,JSONPath=`.spec.volumeClaim.name`,priority=1
// +kubebuilder:printcolumn:name="Port",type=integer,JSONPath=`.spec.heartbeat.port`,priority=1
// +kubebuilder:printcolumn:name="Lease",type=string,JSONPath=`.spec.leaseDuration`,priority=1
type QuorumDisk struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec defines the cluster.
	// +required
	Spec QuorumDiskSpec `json:"spec"`

	// status is the observed state of the cluster.
	// +optional
	Status QuorumDiskStatus `json:"status,omitzero"`
}

// QuorumDiskList is a list of QuorumDisks.
//
// +kubebuilder:object:root=true
type QuorumDiskList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []QuorumDisk `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &QuorumDisk{}, &QuorumDiskList{})
}
