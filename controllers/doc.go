// Package controllers holds Wolfpack's reconcilers, one concern each, one file each:
//
//   - membership_controller.go, the Membership Manager: the member nodes' states and the quorum
//     disk's owner and epoch, from the node agents' and the quorum holder's Leases;
//   - quorumholder_controller.go: the quorum holder's pod, on the node that is to hold the disk;
//   - outofservice_controller.go: Kubernetes' out-of-service taint on the member nodes that are
//     gone altogether;
//   - resourcegroup_controller.go, the Failover Manager: placement, moves, failover and
//     failback, each step written to the group's status;
//   - resource_controller.go, the Resource Manager: each resource kept where its group's status
//     says, through its type's handler, with its health checks and restart policy.
//
// Each reads top-down in Cluster API's shape: get the object; take a patch helper
// (internal/patch) whose deferred Patch writes the status once at the end, whatever the return
// path, so that an action that fails never loses what was learned; reconcileDelete or
// reconcileNormal; observe; decide through a pure function of internal/ (membership, arbitration,
// failover, graph); act. Events are told once the status that they describe is written.
// shared.go holds the read-only helpers they share; metrics.go the Prometheus metrics.
package controllers
