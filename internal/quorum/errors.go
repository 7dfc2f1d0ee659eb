package quorum

import (
	"errors"
	"fmt"
)

// Errors of this package. Block-level problems come as a [*BlockError] that wraps one of
// ErrCorrupt, ErrNotFormatted, ErrUnsupportedVersion or ErrOtherCluster, so that callers can
// test with errors.Is and still tell an administrator which block is wrong and why.
var (
	// ErrCorrupt: a block failed its checksum or its structural checks (a torn write, a
	// misdirected write, a wiped or damaged block). Nothing is ever taken over on the
	// strength of a corrupt block unless [LeaseConfig.ClaimCorruptOwner] says so.
	ErrCorrupt = errors.New("corrupt block")
	// ErrNotFormatted: block 0 carries no quorum disk header (all zeros or another magic).
	ErrNotFormatted = errors.New("not a formatted quorum disk")
	// ErrAlreadyFormatted: Format refuses a disk that already has a quorum disk header, or
	// whose block 0 is a damaged one, so that a live disk is never reset (which would reset
	// its epochs).
	ErrAlreadyFormatted = errors.New("already carries a quorum disk header")
	// ErrUnsupportedVersion: the disk was written by a newer format version.
	ErrUnsupportedVersion = errors.New("unsupported format version")
	// ErrOtherCluster: the disk (or a block of it) belongs to another cluster.
	ErrOtherCluster = errors.New("belongs to another cluster")
	// ErrBadLayout: a Layout or an I/O request that this package cannot use.
	ErrBadLayout = errors.New("bad quorum disk layout")
	// ErrNotHeld: Renew or Release by a node that does not hold a valid lease.
	ErrNotHeld = errors.New("quorum lease not held")
	// ErrLost: the owner record no longer carries this holder's last write: another node has
	// written it. The holder stops believing it holds the lease at once.
	ErrLost = errors.New("quorum lease lost to another writer")
	// ErrLate: a write meant to extend or claim the lease completed too long after the read it
	// was based on (longer than twice the I/O timeout). It landed, but it grants nothing.
	ErrLate = errors.New("lease write completed too late to count")
	// ErrSlotTaken: the node slot given to a lease carries another node's name.
	ErrSlotTaken = errors.New("node slot belongs to another node")
	// ErrNoSuchNode: no node slot carries the node's name.
	ErrNoSuchNode = errors.New("no node slot for this node")
)

// BlockError says which block of the quorum disk is wrong and why. It wraps one of
// ErrCorrupt, ErrNotFormatted, ErrUnsupportedVersion or ErrOtherCluster.
type BlockError struct {
	// Block is the index of the 4096-byte block on the device.
	Block int64
	// Kind names the block's role: "header", "owner record", "slot 3 record A", ...
	Kind string
	// Reason says what is wrong with it.
	Reason string
	// Err is the class of the problem.
	Err error
}

// Error implements error.
func (e *BlockError) Error() string {
	return fmt.Sprintf("quorum disk block %d (%s): %s: %v", e.Block, e.Kind, e.Reason, e.Err)
}

// Unwrap returns the class of the problem, for errors.Is.
func (e *BlockError) Unwrap() error { return e.Err }
