// Package quorumholder is the quorum holder: the process that holds the quorum disk's lease
// (package quorum's delta lease) for its node, and publishes the hold in a coordination Lease
// from which the manager learns the quorum owner and its epoch.
//
// # What it does
//
// [Holder.Run] opens the quorum disk of one QuorumDisk (formatting an empty device when
// [Config.Format] says so, never one with a damaged or foreign header), takes this node's slot
// (the one carrying its name, else the first free one), and then, until its context ends:
// acquires the disk lease, which waits on the disk as the delta lease requires (the owner
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
// # The rules
//
//  1. Publish only while the disk lease is valid. The Lease is written only after a successful
//     Acquire or Renew, and only while [quorum.Lease.Valid] still says so (checked before every
//     write, a retry after a conflict included); a write is abandoned once the validity would
//     run out. No holderIdentity is ever written for a lease this node does not hold. A hold
//     that ends (a renewal finds another node's record, or the validity runs out because
//     renewals kept failing) stops the publishing at once; the holder then goes back to
//     Acquire. Renewal errors that do not end the hold (an I/O error, a late write, a damaged
//     owner block) are retried every RenewInterval while the lease stays valid.
//  2. Release when the API is unreachable past the deadline. If the Lease cannot be written
//     for longer than the API renew deadline, 2/3 of L ([APIDeadline]) measured from the last
//     successful write (or from the acquisition, before the first), the holder releases the
//     disk lease and goes back to Acquire: a node that cannot reach the API server cannot be a
//     useful quorum owner, and its node agent fails the node at the same deadline. The holder
//     contends for the disk only while it can read its Lease, so that a node cut off from the
//     API server does not take the disk back as soon as it has let it go.
//  3. A damaged owner block stops it. The holder never claims a damaged owner block
//     (ClaimCorruptOwner is off): when Acquire meets one, or any other damaged block it needs
//     (a *quorum.BlockError, such as a node slot with no valid record), Run clears the Lease
//     if it names this node and returns an error that names the device, the QuorumDisk and
//     the block, so that the holder's pod crashes visibly until a person repairs or wipes the
//     disk. Damage met by a renewal is retried (rule 1), and stops the holder at the next
//     Acquire if it is still there.
//  4. On shutdown (its context ends: SIGTERM) it releases the disk lease (best effort, bounded
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
