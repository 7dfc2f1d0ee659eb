package quorum

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

// Sizes and limits of the on-disk format.
const (
	// BlockSize is the unit of every read and write: a whole number of 512- and 4096-byte
	// sectors, aligned for O_DIRECT.
	BlockSize = 4096
	// FormatVersion is the format this package writes. It reads versions 1 to FormatVersion.
	FormatVersion = 1
	// MaxNodeName bounds a node name (a DNS subdomain, as Kubernetes node names are).
	MaxNodeName = 253
	// MaxSlots bounds the number of node slots.
	MaxSlots = 255
	// MaxLogEntries bounds the length of the quorum log ring.
	MaxLogEntries = 1 << 16
	// UIDLen is the length of a cluster UID (the QuorumDisk object's UID).
	UIDLen = 16

	// commonLen is the length of the header that starts every block.
	commonLen = 32
	// crcOff is where the CRC32C of bytes [0, crcOff) is stored, little-endian.
	crcOff = BlockSize - 4
)

// magic starts every block of a quorum disk.
var magic = [4]byte{'W', 'P', 'Q', 'D'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zeros is a block of zeros to compare with.
var zeros [BlockSize]byte

// blockType is byte 4 of every block.
type blockType uint8

// Block types.
const (
	typeHeader  blockType = 1
	typeOwner   blockType = 2
	typeNode    blockType = 3
	typeMessage blockType = 4
	typeLog     blockType = 5
)

func (t blockType) String() string {
	switch t {
	case typeHeader:
		return "header"
	case typeOwner:
		return "owner record"
	case typeNode:
		return "node record"
	case typeMessage:
		return "message slot"
	case typeLog:
		return "log entry"
	default:
		return fmt.Sprintf("type %d", uint8(t))
	}
}

// Fixed block positions.
const (
	headerBlock    int64 = 0
	ownerBlock     int64 = 1
	firstSlotBlock int64 = 2
	// blocksPerSlot: record A, record B (the node's own, written alternately so that a torn
	// write never loses the last good one) and the message slot (written by peers).
	blocksPerSlot = 3
)

// Layout is the geometry of a quorum disk:
//
//	block 0                    header: magic, version, cluster UID, block size, slots, log length
//	block 1                    owner record: the lease (node, incarnation, epoch, counter, time)
//	blocks 2+3i, 3+3i          node slot i, records A and B: the node's name and the highest
//	                           epoch it has ever claimed (its epoch high-water mark)
//	block 4+3i                 node slot i, message: a poison pill for the node, from a peer
//	blocks 2+3*Slots ...       the quorum log: LogEntries blocks, a ring indexed by epoch
//
// Every block starts with the magic "WPQD", its type, the format version, its own index (to
// catch misdirected writes) and the cluster UID (to catch blocks of another cluster's disk), and
// ends with a CRC32C (Castagnoli) of everything before it. One record per block: a block is the
// unit a device writes atomically, or tears, and a torn write damages one record only.
type Layout struct {
	// ClusterUID is the QuorumDisk object's UID; Open refuses a disk of another cluster.
	ClusterUID [UIDLen]byte
	// Slots is the number of node slots, one per node that may ever use the disk.
	Slots int
	// LogEntries is the length of the quorum log ring: the last LogEntries ownership changes.
	LogEntries int
}

// Validate reports whether the layout can be formatted.
func (l Layout) Validate() error {
	if l.Slots < 1 || l.Slots > MaxSlots {
		return fmt.Errorf("%w: %d node slots, want 1 to %d", ErrBadLayout, l.Slots, MaxSlots)
	}
	if l.LogEntries < 1 || l.LogEntries > MaxLogEntries {
		return fmt.Errorf("%w: %d log entries, want 1 to %d", ErrBadLayout, l.LogEntries, MaxLogEntries)
	}
	if l.ClusterUID == ([UIDLen]byte{}) {
		return fmt.Errorf("%w: the cluster UID is all zeros", ErrBadLayout)
	}
	return nil
}

// Blocks is the number of blocks the layout occupies.
func (l Layout) Blocks() int64 {
	return firstSlotBlock + blocksPerSlot*int64(l.Slots) + int64(l.LogEntries)
}

// Size is the number of bytes the layout occupies at the start of the device.
func (l Layout) Size() int64 { return l.Blocks() * BlockSize }

func (l Layout) recordBlock(slot, which int) int64 {
	return firstSlotBlock + blocksPerSlot*int64(slot) + int64(which)
}

func (l Layout) messageBlock(slot int) int64 {
	return firstSlotBlock + blocksPerSlot*int64(slot) + 2
}

func (l Layout) logBlock(epoch uint64) int64 {
	return firstSlotBlock + blocksPerSlot*int64(l.Slots) + int64(epoch%uint64(l.LogEntries)) //nolint:gosec // LogEntries is 1..MaxLogEntries (Validate), so both conversions are exact.
}

// blockKind names block idx of the layout for error messages.
func (l Layout) blockKind(idx int64) string {
	switch {
	case idx == headerBlock:
		return "header"
	case idx == ownerBlock:
		return "owner record"
	case idx >= firstSlotBlock && idx < firstSlotBlock+blocksPerSlot*int64(l.Slots):
		slot, which := (idx-firstSlotBlock)/blocksPerSlot, (idx-firstSlotBlock)%blocksPerSlot
		switch which {
		case 0:
			return fmt.Sprintf("slot %d record A", slot)
		case 1:
			return fmt.Sprintf("slot %d record B", slot)
		default:
			return fmt.Sprintf("slot %d message", slot)
		}
	case idx >= firstSlotBlock+blocksPerSlot*int64(l.Slots) && idx < l.Blocks():
		return fmt.Sprintf("log entry %d", idx-firstSlotBlock-blocksPerSlot*int64(l.Slots))
	default:
		return "beyond the layout"
	}
}

// OwnerRecord is the lease: block 1. Every write of it has different bytes (a new counter
// value, or another node or incarnation), which is what lets a challenger tell "renewed" from
// "unchanged" by comparing bytes.
type OwnerRecord struct {
	// Held is true when Node holds (or claims) the lease, false when the disk is free:
	// freshly formatted (Node empty) or released by Node.
	Held bool
	// Node is the node that wrote the record.
	Node string
	// Incarnation identifies the writer's process: it changes on every start.
	Incarnation uint64
	// Epoch is the fencing token: it goes up by one on every change of holder.
	Epoch uint64
	// Counter is the writer's renewal counter: it goes up with every write of an incarnation.
	Counter uint64
	// Time is the writer's wall clock when it wrote: for people only, never compared.
	Time time.Time
}

// Owner is the holder's name, or "" when the record says the disk is free.
func (r OwnerRecord) Owner() string {
	if r.Held {
		return r.Node
	}
	return ""
}

// NodeRecord is one of a node slot's two records: written by that node only.
type NodeRecord struct {
	// Node owns the slot; "" means the slot is free.
	Node string
	// Incarnation is the writer's process.
	Incarnation uint64
	// Seq goes up with every write of the slot; the record with the higher Seq is current.
	Seq uint64
	// Epoch is the highest epoch the node has ever claimed (its high-water mark). A claim
	// takes an epoch above every slot's high-water mark, so that an old owner record brought
	// back by a late write can never make an epoch be handed out twice.
	Epoch uint64
	// Time is the writer's wall clock, for people only.
	Time time.Time
}

// MessageKind is what a message asks of its recipient.
type MessageKind uint8

// Message kinds.
const (
	// MessageNone: no message (the slot is empty, or the recipient has cleared it).
	MessageNone MessageKind = 0
	// MessagePoisonPill asks the recipient to fence itself: stop its group workloads at once
	// (and, where configured, reboot), as Pacemaker's SBD poison pill.
	MessagePoisonPill MessageKind = 1
)

func (k MessageKind) String() string {
	switch k {
	case MessageNone:
		return "None"
	case MessagePoisonPill:
		return "PoisonPill"
	default:
		return fmt.Sprintf("MessageKind(%d)", uint8(k))
	}
}

// Message is the content of a node slot's message block.
type Message struct {
	// To is the slot's node (the recipient).
	To string
	// Kind is what the sender asks.
	Kind MessageKind
	// From is the sender.
	From string
	// Epoch is the sender's lease epoch when it sent (0 if it held none), so that the
	// recipient can ignore an order from a holder older than one it knows.
	Epoch uint64
	// Seq goes up with every message written to the slot.
	Seq uint64
	// Time is the sender's wall clock, for people only.
	Time time.Time
}

// LogReason says why the owner changed.
type LogReason uint8

// Log reasons.
const (
	// ReasonFree: the disk was free (freshly formatted, or released by Previous).
	ReasonFree LogReason = 1
	// ReasonTakeover: Previous held it and stopped renewing for a whole lease period.
	ReasonTakeover LogReason = 2
	// ReasonRestart: the same node, a new incarnation (the previous one stopped renewing).
	ReasonRestart LogReason = 3
	// ReasonCorrupt: the owner block was corrupt and stayed byte-for-byte the same for a
	// whole lease period; claimed because LeaseConfig.ClaimCorruptOwner allowed it.
	ReasonCorrupt LogReason = 4
)

const maxReason = ReasonCorrupt

func (r LogReason) String() string {
	switch r {
	case ReasonFree:
		return "Free"
	case ReasonTakeover:
		return "Takeover"
	case ReasonRestart:
		return "Restart"
	case ReasonCorrupt:
		return "CorruptOwnerBlock"
	default:
		return fmt.Sprintf("LogReason(%d)", uint8(r))
	}
}

// LogEntry is one ownership change in the quorum log. The log is a ring indexed by epoch (the
// entry of epoch e is block e mod LogEntries of the ring), so the epoch is its sequence number.
type LogEntry struct {
	// Epoch is the new holder's epoch; 0 marks an empty entry.
	Epoch uint64
	// Owner is the new holder.
	Owner string
	// Incarnation is the new holder's process.
	Incarnation uint64
	// Previous is the node the owner record named before (the old holder, or the node that
	// released it); "" after a format.
	Previous string
	// Reason says why the owner changed.
	Reason LogReason
	// Time is the new holder's wall clock when it wrote the entry, for people only.
	Time time.Time
}

// encoder builds one block.
type encoder struct {
	b   []byte
	off int
}

func newBlock(t blockType, index int64, uid [UIDLen]byte) *encoder {
	b := make([]byte, BlockSize)
	copy(b[0:4], magic[:])
	b[4] = byte(t)
	b[5] = FormatVersion
	binary.LittleEndian.PutUint64(b[8:16], uint64(index)) //nolint:gosec // block indexes are never negative.
	copy(b[16:32], uid[:])
	return &encoder{b: b, off: commonLen}
}

func (e *encoder) u8(v uint8) {
	e.b[e.off] = v
	e.off++
}

func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.b[e.off:], v)
	e.off += 2
}

func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.b[e.off:], v)
	e.off += 4
}

func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.b[e.off:], v)
	e.off += 8
}

func (e *encoder) time(t time.Time) {
	var n int64
	if !t.IsZero() {
		n = t.UnixNano()
	}
	e.u64(uint64(n))
}

// str writes a length-prefixed name; callers have checked len(s) <= MaxNodeName.
func (e *encoder) str(s string) {
	if len(s) > MaxNodeName {
		s = s[:MaxNodeName]
	}
	e.u16(uint16(len(s))) //nolint:gosec // at most MaxNodeName, just above.
	e.off += copy(e.b[e.off:], s)
}

// finish stores the checksum and returns the block.
func (e *encoder) finish() []byte {
	binary.LittleEndian.PutUint32(e.b[crcOff:], crc32.Checksum(e.b[:crcOff], castagnoli))
	return e.b
}

// decoder reads one block's payload; the first problem sticks.
type decoder struct {
	b      []byte
	off    int
	reason string
}

func (d *decoder) take(n int) []byte {
	if d.reason != "" {
		return nil
	}
	if d.off+n > crcOff {
		d.reason = "record runs past the checksum"
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) time() time.Time {
	n := int64(d.u64()) //nolint:gosec // the two's complement round trip of encoder.time.
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func (d *decoder) str(what string) string {
	n := int(d.u16())
	if d.reason != "" {
		return ""
	}
	if n > MaxNodeName {
		d.reason = fmt.Sprintf("%s of %d bytes, longer than %d", what, n, MaxNodeName)
		return ""
	}
	return string(d.take(n))
}

func (d *decoder) failf(format string, args ...any) {
	if d.reason == "" {
		d.reason = fmt.Sprintf(format, args...)
	}
}

// end checks that nothing but zeros follows the record, so that every valid block is the
// one encoding of its record.
func (d *decoder) end() {
	if d.reason != "" {
		return
	}
	if rest := d.b[d.off:crcOff]; !bytes.Equal(rest, zeros[:len(rest)]) {
		i := bytes.IndexFunc(rest, func(r rune) bool { return r != 0 })
		d.reason = fmt.Sprintf("non-zero byte at offset %d after the record", d.off+i)
	}
}

// checkBlock validates the common part of block b, which should be block index of type t,
// and returns a decoder positioned on its payload. wantUID is nil for the header, whose UID is
// checked by Open against the caller's.
func checkBlock(b []byte, t blockType, index int64, kind string, wantUID *[UIDLen]byte) (*decoder, error) {
	bad := func(class error, format string, args ...any) error {
		return &BlockError{Block: index, Kind: kind, Reason: fmt.Sprintf(format, args...), Err: class}
	}
	if len(b) != BlockSize {
		return nil, bad(ErrCorrupt, "%d bytes, want %d", len(b), BlockSize)
	}
	if isZero(b) {
		if t == typeHeader {
			return nil, bad(ErrNotFormatted, "all zeros")
		}
		return nil, bad(ErrCorrupt, "all zeros (never written, or wiped)")
	}
	if !bytes.Equal(b[0:4], magic[:]) {
		if t == typeHeader {
			return nil, bad(ErrNotFormatted, "no quorum disk magic (found %q)", b[0:4])
		}
		return nil, bad(ErrCorrupt, "bad magic %q", b[0:4])
	}
	stored, computed := binary.LittleEndian.Uint32(b[crcOff:]), crc32.Checksum(b[:crcOff], castagnoli)
	if stored != computed {
		return nil, bad(ErrCorrupt, "checksum mismatch: stored %08x, computed %08x (a torn or damaged write)", stored, computed)
	}
	if v := b[5]; v == 0 || v > FormatVersion {
		class := ErrUnsupportedVersion
		if v == 0 {
			class = ErrCorrupt
		}
		return nil, bad(class, "format version %d, this build reads 1 to %d", v, FormatVersion)
	}
	if got := blockType(b[4]); got != t {
		return nil, bad(ErrCorrupt, "a %s block where a %s belongs", got, t)
	}
	if b[6] != 0 || b[7] != 0 {
		return nil, bad(ErrCorrupt, "non-zero reserved bytes")
	}
	if got := binary.LittleEndian.Uint64(b[8:16]); got != uint64(index) { //nolint:gosec // block indexes are never negative.
		return nil, bad(ErrCorrupt, "written for block %d (a misdirected write)", got)
	}
	if wantUID != nil && !bytes.Equal(b[16:32], wantUID[:]) {
		return nil, bad(ErrOtherCluster, "cluster UID %x, this disk's is %x", b[16:32], wantUID[:])
	}
	return &decoder{b: b, off: commonLen}, nil
}

func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), BlockSize)
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// finishDecode turns a decoder problem into a BlockError.
func finishDecode(d *decoder, index int64, kind string) error {
	d.end()
	if d.reason != "" {
		return &BlockError{Block: index, Kind: kind, Reason: d.reason, Err: ErrCorrupt}
	}
	return nil
}

// header is block 0.
type header struct {
	layout  Layout
	created time.Time
}

func encodeHeader(h header) []byte {
	e := newBlock(typeHeader, headerBlock, h.layout.ClusterUID)
	e.u32(BlockSize)
	e.u32(uint32(h.layout.Slots))      //nolint:gosec // 1..MaxSlots (Layout.Validate).
	e.u32(uint32(h.layout.LogEntries)) //nolint:gosec // 1..MaxLogEntries (Layout.Validate).
	e.time(h.created)
	return e.finish()
}

func decodeHeader(b []byte) (header, error) {
	const kind = "header"
	d, err := checkBlock(b, typeHeader, headerBlock, kind, nil)
	if err != nil {
		return header{}, err
	}
	var h header
	copy(h.layout.ClusterUID[:], b[16:32])
	bs, slots, logs := d.u32(), d.u32(), d.u32()
	h.created = d.time()
	switch {
	case bs != BlockSize:
		d.failf("block size %d, this build uses %d", bs, BlockSize)
	case slots < 1 || slots > MaxSlots:
		d.failf("%d node slots, want 1 to %d", slots, MaxSlots)
	case logs < 1 || logs > MaxLogEntries:
		d.failf("%d log entries, want 1 to %d", logs, MaxLogEntries)
	}
	h.layout.Slots, h.layout.LogEntries = int(slots), int(logs)
	if err := finishDecode(d, headerBlock, kind); err != nil {
		return header{}, err
	}
	if h.layout.ClusterUID == ([UIDLen]byte{}) {
		return header{}, &BlockError{Block: headerBlock, Kind: kind, Reason: "all-zero cluster UID", Err: ErrCorrupt}
	}
	return h, nil
}

func encodeOwner(r OwnerRecord, uid [UIDLen]byte) []byte {
	e := newBlock(typeOwner, ownerBlock, uid)
	held := uint8(0)
	if r.Held {
		held = 1
	}
	e.u8(held)
	e.str(r.Node)
	e.u64(r.Incarnation)
	e.u64(r.Epoch)
	e.u64(r.Counter)
	e.time(r.Time)
	return e.finish()
}

func decodeOwner(b []byte, uid [UIDLen]byte) (OwnerRecord, error) {
	const kind = "owner record"
	d, err := checkBlock(b, typeOwner, ownerBlock, kind, &uid)
	if err != nil {
		return OwnerRecord{}, err
	}
	var r OwnerRecord
	held := d.u8()
	r.Node = d.str("node name")
	r.Incarnation, r.Epoch, r.Counter = d.u64(), d.u64(), d.u64()
	r.Time = d.time()
	switch {
	case held > 1:
		d.failf("held flag %d", held)
	case held == 1 && r.Node == "":
		d.failf("held by a node without a name")
	}
	r.Held = held == 1
	if err := finishDecode(d, ownerBlock, kind); err != nil {
		return OwnerRecord{}, err
	}
	return r, nil
}

func encodeNode(r NodeRecord, index int64, uid [UIDLen]byte) []byte {
	e := newBlock(typeNode, index, uid)
	e.str(r.Node)
	e.u64(r.Incarnation)
	e.u64(r.Seq)
	e.u64(r.Epoch)
	e.time(r.Time)
	return e.finish()
}

func decodeNode(b []byte, index int64, kind string, uid [UIDLen]byte) (NodeRecord, error) {
	d, err := checkBlock(b, typeNode, index, kind, &uid)
	if err != nil {
		return NodeRecord{}, err
	}
	var r NodeRecord
	r.Node = d.str("node name")
	r.Incarnation, r.Seq, r.Epoch = d.u64(), d.u64(), d.u64()
	r.Time = d.time()
	if err := finishDecode(d, index, kind); err != nil {
		return NodeRecord{}, err
	}
	return r, nil
}

func encodeMessage(m Message, index int64, uid [UIDLen]byte) []byte {
	e := newBlock(typeMessage, index, uid)
	e.str(m.To)
	e.u8(uint8(m.Kind))
	e.str(m.From)
	e.u64(m.Epoch)
	e.u64(m.Seq)
	e.time(m.Time)
	return e.finish()
}

func decodeMessage(b []byte, index int64, kind string, uid [UIDLen]byte) (Message, error) {
	d, err := checkBlock(b, typeMessage, index, kind, &uid)
	if err != nil {
		return Message{}, err
	}
	var m Message
	m.To = d.str("recipient name")
	m.Kind = MessageKind(d.u8())
	m.From = d.str("sender name")
	m.Epoch, m.Seq = d.u64(), d.u64()
	m.Time = d.time()
	if m.Kind > MessagePoisonPill {
		d.failf("unknown message kind %d", uint8(m.Kind))
	}
	if err := finishDecode(d, index, kind); err != nil {
		return Message{}, err
	}
	return m, nil
}

func encodeLog(l LogEntry, index int64, uid [UIDLen]byte) []byte {
	e := newBlock(typeLog, index, uid)
	e.u64(l.Epoch)
	e.str(l.Owner)
	e.u64(l.Incarnation)
	e.str(l.Previous)
	e.u8(uint8(l.Reason))
	e.time(l.Time)
	return e.finish()
}

func decodeLog(b []byte, index int64, kind string, uid [UIDLen]byte) (LogEntry, error) {
	d, err := checkBlock(b, typeLog, index, kind, &uid)
	if err != nil {
		return LogEntry{}, err
	}
	var l LogEntry
	l.Epoch = d.u64()
	l.Owner = d.str("owner name")
	l.Incarnation = d.u64()
	l.Previous = d.str("previous owner name")
	l.Reason = LogReason(d.u8())
	l.Time = d.time()
	switch {
	case l.Reason > maxReason:
		d.failf("unknown reason %d", uint8(l.Reason))
	case l.Epoch == 0 && (l.Owner != "" || l.Reason != 0):
		d.failf("an empty entry (epoch 0) with content")
	case l.Epoch != 0 && (l.Owner == "" || l.Reason == 0):
		d.failf("entry of epoch %d without an owner or a reason", l.Epoch)
	}
	if err := finishDecode(d, index, kind); err != nil {
		return LogEntry{}, err
	}
	return l, nil
}

// validName reports whether s can be stored as a node name.
func validName(s string) error {
	if s == "" || len(s) > MaxNodeName {
		return fmt.Errorf("node name %q: want 1 to %d bytes", s, MaxNodeName)
	}
	return nil
}
