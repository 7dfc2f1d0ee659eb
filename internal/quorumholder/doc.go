// Package quorumholder is the quorum holder: the process that holds the quorum disk's lease
// (package quorum's delta lease) for its node, and publishes the hold in a coordination Lease
// from which the manager learns the quorum owner and its epoch.
//
// # What it does
//
// [Holder.Run] opens the quorum disk of one QuorumDisk (formatting an empty device when
// [Config.Format] says so, never one with a damaged or foreign header), takes this node's slot
// (the one carrying its name, else the first free one), and then, until its context ends:
// waits until its node's agent is alive (rule 3); acquires the disk lease, which waits on the disk as the delta lease requires (the owner
// record unchanged for L+m); renews it every RenewInterval; and after every successful
// acquisition or renewal writes the holder's Lease, named [membership.QuorumLeaseName] in
// [Config.LeaseNamespace] and labelled wolfpack.dev/cluster: holderIdentity the node, renewTime
// now, acquireTime the moment of the acquisition, leaseDurationSeconds L, leaseTransitions
// counting the changes of holder, and the disk lease's epoch in the annotation
// wolfpack.dev/epoch ([DesiredLease]). Writes use optimistic concurrency: a conflict is read
// again and retried.
//
// L is the QuorumDisk's spec.leaseDuration; the disk lease's I/O timeout D is L/10.
//
// # Clocks
//
// The disk lease's validity and the holder's renew and check timers are measured on the
// holder's monotonic clock ("holder monotonic"; the disk lease's own rules, package quorum, are
// sanlock-style and need no other clock). The node agent's record is judged on the node's
// CLOCK_MONOTONIC ("node CLOCK_MONOTONIC", package nodelocal), which the agent that wrote it
// and the holder that reads it share. No time written by another machine is compared with
// either: the Lease's renewTime is informational.
//
// # The rules
//
//  1. Publish only while the disk lease is valid. The Lease is written only after a successful
//     Acquire or Renew, and only while [quorum.Lease.Valid] still says so (checked before every
//     write, a retry after a conflict included); a write is abandoned once the validity would
//     run out. No holderIdentity is ever written for a lease this node does not hold. A hold
//     that ends (a renewal finds another node's record, or the validity runs out because
//     renewals kept failing or were not made, rule 3) stops the publishing at once; the holder
//     then goes back to Acquire. Renewal errors that do not end the hold (an I/O error, a late
//     write, a damaged owner block) are retried every RenewInterval while the lease stays valid.
//  2. The API server is not needed to hold the disk. The holder keeps renewing the disk lease
//     while disk I/O works, whether or not the API server answers (RULES.md section 6; MSCS
//     keeps its quorum reservation while its management plane is away). Every API call has a
//     timeout (a Lease write at most RenewInterval/2, so that a hung API server delays no
//     renewal by more); a failed write is retried after every renewal, and once the API server
//     answers again the Lease is written with the SAME epoch (and acquireTime), because the
//     hold never ended. Nor is the API server needed to contend: the holder reads its Lease
//     when it can, and acquires the disk whether or not it could. The node's own evidence
//     gates the hold instead (rule 3): an agent that cannot reach the API server fails its node
//     when it has also lost quorum by the cluster's own evidence (RULES.md section 4), and then
//     says so (fenced), and the holder lets the disk go.
//  3. Only while the node agent is alive. The holder acquires and renews only while its node's
//     agent's node-local record ([nodelocal.Node.AgentAlive]) is of this node and boot, was
//     written within twice the agent's interval before now (node CLOCK_MONOTONIC), and does
//     not say the node is fenced. A holder that starts waits for such a record before it
//     contends. When the record goes stale or says fenced, the holder stops renewing (it does
//     not release: the record may come back) and the disk lease runs out L-m after the last
//     renewal at the latest, so that a hung agent on the quorum owner loses the disk and the
//     survivor takes it over after its own wait of L+m on the disk (issue 13, schedule 10); if
//     the agent's record is fresh again before the validity ends, the hold goes on at the same
//     epoch. After every acquisition and renewal, and when a hold ends, the holder writes its
//     own node-local record (held, epoch, validity end in node CLOCK_MONOTONIC), which the
//     agent may read as evidence that its node holds the disk ([nodelocal.Node.HolderHolds]).
//  4. Damage is reported; only a damaged owner block stops the holder. The holder never claims
//     a damaged owner block (ClaimCorruptOwner is off): when Acquire meets one, Run clears the
//     Lease if it names this node and returns an error that names the device, the QuorumDisk
//     and the block, so that the holder's pod crashes visibly until a person repairs or wipes
//     the disk. Other damage does not stop it: while holding, the holder reads every block of
//     the disk once a lease duration ([quorum.Disk.Check]) and reports the damaged ones by
//     number and role in a Warning Event (reason QuorumDiskDamaged, when the set changes) and
//     the metric wolfpack_quorum_damaged_blocks, and goes on renewing (a renewal reads and
//     writes the owner block only). When Acquire meets damage elsewhere (another node's slot
//     whose two records are both damaged: its high-water mark, and so a safe new epoch, is
//     unknown), the holder reports it the same way and tries again every L, without exiting.
//     The holder formats only a device whose block 0 is zeroed ([quorum.Format]): never one
//     with a damaged header, a damaged magic included, or another cluster's.
//  5. On shutdown (its context ends: SIGTERM) it releases the disk lease (best effort, bounded
//     by a few seconds), then clears the Lease's holderIdentity if it still names this node,
//     so that the manager sees the quorum free without waiting for the Lease to run out, and
//     Run returns nil. A release does not shorten the next holder's wait on the disk (see
//     package quorum); it tells the manager and the quorum log.
//
// Events (reasons QuorumHeld and QuorumLost, regarding the QuorumDisk) are recorded on
// transitions only: when a hold begins, and when it ends. The metrics wolfpack_quorum_held,
// wolfpack_quorum_epoch and wolfpack_quorum_renew_errors_total (by reason: late, lost, io,
// corrupt) are registered in controller-runtime's metrics registry.
package quorumholder
