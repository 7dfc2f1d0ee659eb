package v1alpha1

// Condition types. Every Wolfpack object reports Ready; the others say why it is or is not.
const (
	// ReadyCondition is True when the object is in the state its spec asks for.
	ReadyCondition = "Ready"

	// QuorumCondition is True on a QuorumDisk while one member node holds the quorum lease.
	QuorumCondition = "Quorum"

	// HolderRunningCondition is True on a QuorumDisk while the quorum holder runs, or was just
	// started, on the member node that is to hold the quorum disk; False says why none does.
	HolderRunningCondition = "HolderRunning"

	// ValidCondition is True when what several objects say together is consistent: for a group,
	// its resources form a DAG of dependencies within the group and its preferred owners are
	// cluster nodes; for a resource, its dependencies exist in its own group.
	ValidCondition = "Valid"

	// PlacedCondition is True on a ResourceGroup that has an owner node allowed by its
	// resources and its preferred owners.
	PlacedCondition = "Placed"

	// FailoverAllowedCondition is False on a ResourceGroup that has used up its failovers for
	// the current period and stays Failed until an administrator acts.
	FailoverAllowedCondition = "FailoverAllowed"

	// MoveAcceptedCondition is the Failover Manager's answer to the last move request (the
	// wolfpack.dev/move-to annotation) on a ResourceGroup: True when it started the move, False
	// with the reason it refused it. It is written before the annotation is removed.
	MoveAcceptedCondition = "MoveAccepted"

	// HealthyCondition is True on a Resource whose last LooksAlive and IsAlive checks passed.
	HealthyCondition = "Healthy"

	// AddressAssignedCondition is written on an ipAddress Resource by the node agent of the
	// resource's node, under its own field manager: True once the agent has added and announced
	// the address there, False once it has removed it or could not add it. The manager removes it
	// when the resource goes offline.
	AddressAssignedCondition = "AddressAssigned"

	// MonitorHealthyCondition is written by the node agent on the resource's node, under its own
	// field manager: True while the Resource Monitor's healthChecks pass there. The manager
	// removes it when the resource comes online anew.
	MonitorHealthyCondition = "MonitorHealthy"
)

// Condition reasons.
const (
	// ReconcilingReason means the manager is working towards the desired state.
	ReconcilingReason = "Reconciling"
	// AsExpectedReason means the condition holds and nothing is wrong.
	AsExpectedReason = "AsExpected"

	// QuorumHeldReason means a member node holds the quorum lease.
	QuorumHeldReason = "QuorumHeld"
	// QuorumLostReason means no node holds a valid quorum lease; no group is started.
	QuorumLostReason = "QuorumLost"
	// QuorumReleasedReason means the quorum holder gave the quorum disk up on purpose, as when
	// its pod is stopped or moved.
	QuorumReleasedReason = "QuorumReleased"
	// HolderPlacedReason means the manager started a quorum holder pod on a member node, to take
	// or keep the quorum disk's lease.
	HolderPlacedReason = "HolderPlaced"
	// ClaimNotFoundReason means spec.volumeClaim names no PersistentVolumeClaim.
	ClaimNotFoundReason = "ClaimNotFound"
	// HolderFailedReason means the manager could not start the quorum holder's pod.
	HolderFailedReason = "HolderFailed"
	// HolderRemovedReason means the manager deleted the quorum holder pod of a node that is no
	// longer to hold the quorum disk (the node is Down or left the cluster).
	HolderRemovedReason = "HolderRemoved"
	// OutOfServiceReason means the manager put the node.kubernetes.io/out-of-service taint on a
	// member node that is gone (Down, fenced, kubelet not Ready), so that Kubernetes releases its
	// pods and volumes at once.
	OutOfServiceReason = "OutOfService"
	// BackInServiceReason means the manager took its out-of-service taint off a node that is back.
	BackInServiceReason = "BackInService"

	// DependencyCycleReason means the dependencies of a group's resources form a cycle.
	DependencyCycleReason = "DependencyCycle"
	// MissingDependencyReason means a resource depends on a resource that does not exist.
	MissingDependencyReason = "MissingDependency"
	// ForeignDependencyReason means a resource depends on a resource of another group.
	ForeignDependencyReason = "ForeignDependency"
	// UnknownNodeReason means preferredOwners or possibleOwners names a node outside the cluster,
	// or that a move to such a node was refused.
	UnknownNodeReason = "UnknownNode"
	// ClusterNotFoundReason means spec.cluster names no QuorumDisk; for a resource, spec.group names
	// no ResourceGroup.
	ClusterNotFoundReason = "ClusterNotFound"

	// NoEligibleNodeReason means no Up node is allowed by every resource's possibleOwners.
	NoEligibleNodeReason = "NoEligibleNode"
	// OwnerDownReason means the owner node is Down; the group is failing over.
	OwnerDownReason = "OwnerDown"

	// MoveRequestedReason means an administrator asked for a move.
	MoveRequestedReason = "MoveRequested"
	// MoveStartedReason means the manager started the move an administrator asked for.
	MoveStartedReason = "MoveStarted"
	// DesiredOfflineReason means a move was refused because the group's desired state is Offline.
	DesiredOfflineReason = "DesiredOffline"
	// AlreadyOwnerReason means a move was refused because the group already runs on that node.
	AlreadyOwnerReason = "AlreadyOwner"
	// NodeNotUpReason means a move was refused because the node is not Up.
	NodeNotUpReason = "NodeNotUp"
	// NotPossibleOwnerReason means a move was refused because a resource of the group may not
	// run on that node (possibleOwners).
	NotPossibleOwnerReason = "NotPossibleOwner"
	// MoveSucceededReason means a move ended with every resource Online on the target node.
	MoveSucceededReason = "MoveSucceeded"
	// MoveFailedReason means a move could not be carried out.
	MoveFailedReason = "MoveFailed"
	// FailoverThresholdExceededReason means the group failed over more than failoverThreshold times
	// within failoverPeriod.
	FailoverThresholdExceededReason = "FailoverThresholdExceeded"

	// RestartThresholdExceededReason means the resource failed more than restartPolicy.threshold
	// times within restartPolicy.period.
	RestartThresholdExceededReason = "RestartThresholdExceeded"
	// LooksAliveFailedReason means the quick health check failed.
	LooksAliveFailedReason = "LooksAliveFailed"
	// IsAliveFailedReason means the thorough health check failed.
	IsAliveFailedReason = "IsAliveFailed"
	// ChecksPassedReason means the Resource Monitor's last checks passed.
	ChecksPassedReason = "ChecksPassed"
	// CheckTimedOutReason means a Resource Monitor check did not answer within its timeout.
	CheckTimedOutReason = "CheckTimedOut"
	// MonitorFailedReason means the Resource Monitor process crashed or hung during a check; the
	// agent restarted it.
	MonitorFailedReason = "MonitorFailed"
	// AddressAddedReason means the node agent added and announced the floating address.
	AddressAddedReason = "AddressAdded"
	// AddressRemovedReason means the node agent removed the floating address.
	AddressRemovedReason = "AddressRemoved"
	// AddressFailedReason means the node agent could not add the floating address, such as when
	// the interface does not exist.
	AddressFailedReason = "AddressFailed"
	// DrainReason means a group is moved off a node that an administrator paused with drain.
	DrainReason = "Drain"
	// NodeJoiningReason, NodeUpReason, NodeDownReason and NodePausedReason are the Events of node
	// state changes.
	NodeJoiningReason = "NodeJoining"
	// NodeUpReason means a node became an active member.
	NodeUpReason = "NodeUp"
	// NodeDownReason means a node stopped renewing its lease or is heard by no peer.
	NodeDownReason = "NodeDown"
	// NodePausedReason means an administrator paused a node.
	NodePausedReason = "NodePaused"
	// PrivateNetworkLostReason means heartbeats to a peer fell back from the private networks to a
	// public one.
	PrivateNetworkLostReason = "PrivateNetworkLost"
	// HeartbeatLostReason means an agent stopped hearing a peer on every network.
	HeartbeatLostReason = "HeartbeatLost"
	// SelfFencedReason means a node's agent failed its node: it stopped the node's group
	// workloads because its side of a partition has no quorum or it cannot renew its Lease. A
	// move to such a node is refused with it.
	SelfFencedReason = "SelfFenced"
	// RejoinedReason means a node's agent that had failed its node has quorum and its Lease again.
	RejoinedReason = "Rejoined"
	// PrivateNetworkRestoredReason means heartbeats to a peer are back on a private network.
	PrivateNetworkRestoredReason = "PrivateNetworkRestored"

	// PendingTimeoutReason means the resource did not come online or go offline within
	// pendingTimeout.
	PendingTimeoutReason = "PendingTimeout"
	// AddressNotAllowedReason means a Resource's spec.ipAddress.address lies outside every CIDR
	// of its cluster's QuorumDisk spec.allowedAddressCIDRs.
	AddressNotAllowedReason = "AddressNotAllowed"
)
