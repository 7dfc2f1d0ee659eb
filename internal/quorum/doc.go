// Package quorum is the quorum disk: its on-disk format, and the disk lease that decides which
// node owns the cluster when the nodes cannot hear each other. It keeps the promise that a
// group never runs on two nodes at once: at no instant do two nodes both believe, each by its
// own clock, that they hold a valid lease.
//
// # The disk
//
// A quorum disk is a ReadWriteOnce volume (a block device; a plain file in tests) read and
// written in 4096-byte blocks with direct, synchronous I/O ([FileDevice]; [MemDevice] in
// tests). [Format] lays it out (see [Layout]): a header naming the cluster, the owner record
// (the lease), one slot per node (two records written only by that node, holding its epoch
// high-water mark, and a message block where a peer can leave it a poison pill, as in
// Pacemaker's SBD) and a ring of log entries, one per ownership change. Every block carries its
// type, the format version, its own index and the cluster UID, and ends with a CRC32C. A torn
// or damaged block is a [*BlockError] that names the block and the reason; it is never taken
// for a free or expired lease ([LeaseConfig.ClaimCorruptOwner] is the explicit exception).
// [Open] refuses an unformatted disk, a damaged header, a newer format and another cluster's
// disk.
//
// # The lease
//
// [Lease] is a delta lease in the manner of sanlock's: there is no compare-and-swap on a disk,
// so a challenger watches the owner record and claims it only after it has stayed the same for
// longer than its holder could still believe in it; then it makes sure no other challenger
// claimed at the same time. The epoch, the fencing token, goes up on every change of holder and
// every change is appended to the quorum log.
//
// Terms: L is LeaseDuration, D IOTimeout, rho MaxClockDrift, m Margin, W ConfirmDelay =
// 2D(1+rho)/(1-rho). "Local" durations are measured on one node's monotonic clock. The anchor
// of a write is the local time read just before the read that the write was decided on.
//
// The rules:
//
//  1. Every write of the owner record has bytes never written before: the writer's node name,
//     its incarnation (new in every process) and a counter that goes up with every write.
//  2. A holder renews by reading the owner record, checking that it is still its own last
//     write, and writing it again with the next counter. The renewal counts only if it was
//     anchored while the lease was still valid and the write completed within 2D (local) of
//     the anchor; the lease is then valid until anchor + L - m (local). A write that completes
//     later has landed, but grants nothing (ErrLate).
//  3. A challenger reads the owner record, and notes s0, the local time when that first read
//     returned. It re-reads it every PollInterval; half-way, it records an epoch (rule 5). Once
//     s0 + L + m has passed, it makes a last read, anchored at c1 >= s0 + L + m. If any of
//     these reads returned other bytes than the first, it starts over.
//  4. It then writes its claim, which must complete within 2D (local) of c1 (or it starts over),
//     waits W, and re-reads: it holds the lease only if the record is still, byte for byte, its
//     claim, and only until c1 + L - m (local).
//  5. The claim's epoch is one more than the highest of: the owner record's epoch, every node
//     slot's high-water mark, and any epoch the node itself may hold. The node writes it as
//     its own slot's high-water mark (if the mark is lower) before writing the claim.
//  6. Release reads the owner record and, if it is still the holder's own, writes "no owner"
//     with the same epoch; the holder stops believing in the lease before it reads. A free
//     record is claimed by the same rules as any other: a release that lands late could not be
//     told from a timely one, so it cannot shorten the wait.
//
// The assumptions, and nothing else:
//
//   - Clock rate: each node's monotonic clock runs at a rate within [1-rho, 1+rho] of real
//     time. Clocks need not agree on the time of day; no time is ever compared across nodes.
//     (Suspended VMs and stopped processes are stalls, below, not drift, as long as the clock
//     keeps counting through them, as CLOCK_MONOTONIC and CLOCK_BOOTTIME do.)
//   - Storage: a write that returned success has landed in full and every later read, from
//     any node, returns it or something written after it. A read returns the block as it was
//     at some instant between its start and its end (or bytes that fail the checksum). A
//     device never reports a torn write as a success, and never replays an old write. A write
//     that failed, or was in flight when its process died, may still land, whole or torn, at
//     most once; for the epoch high-water mark alone, within D of the failure or the death
//     (the time a host takes to abort or complete it). The lease itself needs no such bound.
//   - One process per node at a time: a node's old agent is dead, not merely stopped, before
//     a new one starts (kubelet and systemd kill before they restart). Only the epoch
//     high-water mark depends on this.
//
// Not assumed: a bound on I/O time or on how long a process can stall (GC pauses, SIGSTOP, a
// frozen VM, a storage path failing over). D is enforced rather than assumed: a stall or a slow
// I/O makes a write late, and a late write grants nothing (rules 2 and 4).
//
// Why it is safe. Take a challenger C whose claim succeeded, its reads at s0 and c1 returning
// the same bytes X; let e0 <= s0 and e1 >= c1 be the real instants those reads took effect.
// (a) No write landed in (e0, e1], since all writes differ (rule 1). (b) Let H be any other
// node whose validity comes from writes that landed by e0: its last such write was anchored no
// later than e0, so H's lease runs out by real time e0 + (L-m)/(1-rho), while C holds only from
// e1 >= e0 + (L+m)/(1+rho) on; with m >= rho*L, H is done first. (c) H cannot renew across
// the window: a renewal must be anchored before H's validity runs out, at most e0 + (L-m)/(1-rho),
// and complete within 2D/(1-rho) of its anchor, so it lands by e0 + (L-m+2D)/(1-rho), which is
// before e1 when m >= D + rho*(L+D); by (a) it then landed by e0, and by induction all of H's
// renewals did. (d) A concurrent challenger P whose claim lands after e1: both last reads took
// effect before both claims landed, and the claim that landed first belongs to the one whose
// re-read, at least W/(1+rho) >= 2D/(1-rho) after its own claim landed, comes after the other
// claim landed too (rule 4): that one sees a foreign record and fails. So at most one of two
// overlapping claims succeeds, and a claim never succeeds while another node's lease is valid.
//
// Epochs: a claim that succeeds wrote its epoch as its node's high-water mark before writing
// the claim, so before it landed; and every later claim reads all slots after that (its window
// starts after the earlier claim landed, by (c)), so it takes a higher epoch. Writes of a slot
// come from its node alone, one at a time and with epochs that never go down, and alternate
// between the slot's two records, so a torn write never loses the last good mark; after a
// failed slot write, and when a process starts, the node waits D before its next slot write,
// so that a failed write cannot land over a newer one. The owner record's epoch alone would
// not do: a write that lands late can put an older epoch back into it (the simulation counts
// how often). Epochs therefore go up strictly from one holder to the next, by one except after
// a claim that wrote its mark and then lost (its epoch stays unused).
//
// What the margin covers, then: m >= D + rho*(L+D) (MinMargin). The margin is taken off the
// holder's validity and added to the challenger's wait, 2m in all, and that must cover the 2D
// a renewal anchored at the last moment of the holder's validity may take to land, plus what
// the two clocks may disagree on over the lease period, 2*rho*(L+D). (The window starts when
// its first read returns, and the holder's validity at its renewal's anchor, before its read:
// both ends err on the safe side.) Liveness needs L - m >= 4D, so that a holder renewing every
// RenewInterval = (L-m)/4 keeps its lease while its I/O takes up to D.
//
// Timing of a takeover, with L=10s, D=1s, rho=0.1%: m = 1.011s, W = 2.004s, a holder renews
// every 2.25s. A challenger holds the lease L + m + W plus its I/O times and up to one
// PollInterval after the old holder's last renewal landed: 13 to 17 seconds (13 with disks
// that answer in milliseconds). The old holder stopped believing by L - m = 8.99s after that
// renewal's anchor, and must have fenced itself by then.
//
// The simulation (sim_test.go) runs these rules with two and three contenders on one disk,
// a fake clock per node running at its own rate, I/O latency, stalls longer than the lease,
// crashes, restarts, I/O errors and torn writes, over thousands of random schedules; it checks
// at every event that at most one node believes it holds the lease and that epochs only go up.
// Its negative controls switch off the re-read, the late-write check, the high-water mark and
// part of the window one at a time, and the checker then catches double holders or reused
// epochs.
package quorum
