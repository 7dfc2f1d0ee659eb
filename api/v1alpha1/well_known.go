package v1alpha1

// Well-known labels and annotations.
const (
	// ClusterLabel is the node label that makes a node a member of a failover cluster; its value
	// is the QuorumDisk name. A QuorumDisk without spec.nodeSelector selects the nodes that carry
	// this label with its own name.
	ClusterLabel = "wolfpack.dev/cluster"

	// MoveToAnnotation on a ResourceGroup asks the manager to move the group to the named node.
	// The manager carries the move out, records the result in status and an Event, and removes
	// the annotation.
	MoveToAnnotation = "wolfpack.dev/move-to"

	// EpochAnnotation on a workload's pods carries the group epoch they were started under; on
	// the quorum holder's Lease, the quorum disk's epoch.
	EpochAnnotation = "wolfpack.dev/epoch"

	// EpochEnvVar is the environment variable through which a workload sees its group epoch.
	EpochEnvVar = "WOLFPACK_EPOCH"

	// ViewAnnotation on a node agent's Lease carries the agent's membership view as JSON: its
	// incarnation, whether it has joined, and which peers it hears on which networks. The Lease
	// is named after the node and labelled with ClusterLabel and NodeLabel.
	ViewAnnotation = "wolfpack.dev/view"
)

// Labels Wolfpack puts on the objects it makes for a resource (pods, Services, custom objects).
const (
	// GroupLabel carries the name of the ResourceGroup.
	GroupLabel = "wolfpack.dev/group"
	// ResourceLabel carries the name of the Resource.
	ResourceLabel = "wolfpack.dev/resource"
	// NodeLabel carries the owner node the object was made for.
	NodeLabel = "wolfpack.dev/node"
)
