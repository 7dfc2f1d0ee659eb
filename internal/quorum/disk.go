package quorum

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Disk is an opened quorum disk: the layout read from its header, and typed access to its
// blocks. It keeps no other state, so it is safe for concurrent use when its Device is.
type Disk struct {
	dev     Device
	layout  Layout
	created time.Time
}

// Format initialises dev as an empty quorum disk of layout l: no owner (epoch 0), free node
// slots, an empty log. It refuses a device whose block 0 already holds a quorum disk header,
// valid or damaged, or anything but zeros (ErrAlreadyFormatted: a damaged magic cannot be told
// from other data): resetting a live disk would reset its epochs. To reformat deliberately,
// wipe block 0 first. The header is written last, so that a format cut
// short leaves a disk that Open still calls not formatted.
func Format(dev Device, l Layout) error {
	if err := l.Validate(); err != nil {
		return err
	}
	probe := &Disk{dev: dev, layout: l}
	raw, err := probe.readBlock(headerBlock)
	if err != nil {
		return err
	}
	if h, herr := decodeHeader(raw); herr == nil {
		return fmt.Errorf("%w: cluster %x, %d slots, %d log entries", ErrAlreadyFormatted, h.layout.ClusterUID, h.layout.Slots, h.layout.LogEntries)
	} else if !errors.Is(herr, ErrNotFormatted) {
		return fmt.Errorf("%w: block 0 is a damaged quorum disk header (%w); wipe it to reformat", ErrAlreadyFormatted, herr)
	} else if !isZero(raw) {
		// No magic, but not empty either: a header whose magic was damaged looks just so, and
		// formatting over it would reset a live disk's epochs. Only a zeroed block 0 is empty.
		return fmt.Errorf("%w: block 0 is not zeroed and may be a quorum disk header with a damaged magic (%w); wipe it to format",
			ErrAlreadyFormatted, herr)
	}

	uid := l.ClusterUID
	body := make([]byte, 0, (l.Blocks()-1)*BlockSize)
	body = append(body, encodeOwner(OwnerRecord{}, uid)...)
	for s := range l.Slots {
		body = append(body, encodeNode(NodeRecord{}, l.recordBlock(s, 0), uid)...)
		body = append(body, encodeNode(NodeRecord{}, l.recordBlock(s, 1), uid)...)
		body = append(body, encodeMessage(Message{}, l.messageBlock(s), uid)...)
	}
	for i := range l.LogEntries {
		idx := l.logBlock(uint64(i))
		body = append(body, encodeLog(LogEntry{}, idx, uid)...)
	}
	const chunk = 256 * BlockSize
	for off := 0; off < len(body); off += chunk {
		end := min(off+chunk, len(body))
		if _, err := dev.WriteAt(body[off:end], BlockSize+int64(off)); err != nil {
			return fmt.Errorf("formatting quorum disk blocks %d to %d: %w", 1+off/BlockSize, end/BlockSize, err)
		}
	}
	if err := dev.Sync(); err != nil {
		return fmt.Errorf("formatting quorum disk: sync: %w", err)
	}
	if err := probe.writeBlock(headerBlock, encodeHeader(header{layout: l, created: time.Now()})); err != nil {
		return err
	}
	if err := dev.Sync(); err != nil {
		return fmt.Errorf("formatting quorum disk: sync: %w", err)
	}
	return nil
}

// Open reads and validates the header of dev. It refuses a device without a quorum disk header
// (ErrNotFormatted), a damaged header (ErrCorrupt), a newer format (ErrUnsupportedVersion) and
// another cluster's disk (ErrOtherCluster), each as a *BlockError naming block 0 and the reason.
// Other blocks are checked when they are used, or all at once by Check.
func Open(dev Device, clusterUID [UIDLen]byte) (*Disk, error) {
	d := &Disk{dev: dev, layout: Layout{ClusterUID: clusterUID, Slots: 1, LogEntries: 1}}
	raw, err := d.readBlock(headerBlock)
	if err != nil {
		return nil, err
	}
	h, err := decodeHeader(raw)
	if err != nil {
		return nil, err
	}
	if h.layout.ClusterUID != clusterUID {
		return nil, &BlockError{Block: headerBlock, Kind: "header", Err: ErrOtherCluster,
			Reason: fmt.Sprintf("cluster UID %x, expected %x", h.layout.ClusterUID, clusterUID)}
	}
	d.layout, d.created = h.layout, h.created
	return d, nil
}

// Layout is the disk's geometry, from its header.
func (d *Disk) Layout() Layout { return d.layout }

// Created is when the disk was formatted (the formatting host's wall clock).
func (d *Disk) Created() time.Time { return d.created }

// Device is the device under the disk.
func (d *Disk) Device() Device { return d.dev }

func (d *Disk) readBlock(idx int64) ([]byte, error) {
	b := make([]byte, BlockSize)
	n, err := d.dev.ReadAt(b, idx*BlockSize)
	if err == nil && n != BlockSize {
		err = fmt.Errorf("short read of %d bytes", n)
	}
	if err != nil {
		return nil, fmt.Errorf("reading quorum disk block %d (%s): %w", idx, d.layout.blockKind(idx), err)
	}
	return b, nil
}

func (d *Disk) writeBlock(idx int64, b []byte) error {
	n, err := d.dev.WriteAt(b, idx*BlockSize)
	if err == nil && n != BlockSize {
		err = fmt.Errorf("short write of %d bytes", n)
	}
	if err != nil {
		return fmt.Errorf("writing quorum disk block %d (%s): %w", idx, d.layout.blockKind(idx), err)
	}
	return nil
}

// ReadOwner reads the owner record (block 1).
func (d *Disk) ReadOwner() (OwnerRecord, error) {
	raw, err := d.readBlock(ownerBlock)
	if err != nil {
		return OwnerRecord{}, err
	}
	return decodeOwner(raw, d.layout.ClusterUID)
}

// slotState is a node slot's two records as read.
type slotState struct {
	slot int
	recs [2]NodeRecord
	errs [2]error // decode errors
}

func (d *Disk) readSlot(slot int) (slotState, error) {
	s := slotState{slot: slot}
	for which := range 2 {
		idx := d.layout.recordBlock(slot, which)
		raw, err := d.readBlock(idx)
		if err != nil {
			return s, err
		}
		s.recs[which], s.errs[which] = decodeNode(raw, idx, d.layout.blockKind(idx), d.layout.ClusterUID)
	}
	return s, nil
}

// current is the valid record with the higher Seq, and which block holds it (-1: neither is
// valid).
func (s slotState) current() (NodeRecord, int) {
	switch {
	case s.errs[0] != nil && s.errs[1] != nil:
		return NodeRecord{}, -1
	case s.errs[1] != nil || (s.errs[0] == nil && s.recs[0].Seq >= s.recs[1].Seq):
		return s.recs[0], 0
	default:
		return s.recs[1], 1
	}
}

// highWater is the highest epoch either valid record carries. With both records damaged the
// slot's high-water mark is unknown, which is an error: a claim cannot then be sure its epoch
// is new.
func (s slotState) highWater() (uint64, error) {
	if s.errs[0] != nil && s.errs[1] != nil {
		return 0, fmt.Errorf("slot %d has no valid record: %w", s.slot, errors.Join(s.errs[0], s.errs[1]))
	}
	var hw uint64
	for which := range 2 {
		if s.errs[which] == nil {
			hw = max(hw, s.recs[which].Epoch)
		}
	}
	return hw, nil
}

// names are the non-empty node names in the slot's valid records.
func (s slotState) names() []string {
	var out []string
	for which := range 2 {
		if s.errs[which] == nil && s.recs[which].Node != "" && !slices.Contains(out, s.recs[which].Node) {
			out = append(out, s.recs[which].Node)
		}
	}
	return out
}

// Slots returns every node slot's current record (Node "" for a free slot). A slot whose two
// records are both damaged is returned empty, and its errors are joined into the error.
func (d *Disk) Slots() ([]NodeRecord, error) {
	out := make([]NodeRecord, d.layout.Slots)
	var errs []error
	for slot := range d.layout.Slots {
		s, err := d.readSlot(slot)
		if err != nil {
			return nil, err
		}
		rec, which := s.current()
		if which < 0 {
			errs = append(errs, s.errs[0], s.errs[1])
			continue
		}
		out[slot] = rec
	}
	return out, errors.Join(errs...)
}

// FindSlot returns the slot whose current record names node.
func (d *Disk) FindSlot(node string) (int, error) {
	slots, err := d.Slots()
	for i, r := range slots {
		if r.Node == node && node != "" {
			return i, nil
		}
	}
	if err != nil {
		return -1, fmt.Errorf("%w: %q (some slots are unreadable: %w)", ErrNoSuchNode, node, err)
	}
	return -1, fmt.Errorf("%w: %q", ErrNoSuchNode, node)
}

// SendMessage writes m into the message block of node to's slot, with the next sequence
// number. Only Kind, From, Epoch and Time of m are used. Like SBD's, the message slot is a
// plain block several nodes may write: a sender that needs an effect repeats its message until
// it sees the effect.
func (d *Disk) SendMessage(to string, m Message) error {
	if err := validName(m.From); err != nil {
		return fmt.Errorf("sending a message: sender: %w", err)
	}
	if m.Kind > MessagePoisonPill {
		return fmt.Errorf("sending a message: unknown kind %d", uint8(m.Kind))
	}
	slot, err := d.FindSlot(to)
	if err != nil {
		return fmt.Errorf("sending a message to %q: %w", to, err)
	}
	idx := d.layout.messageBlock(slot)
	raw, err := d.readBlock(idx)
	if err != nil {
		return err
	}
	old, derr := decodeMessage(raw, idx, d.layout.blockKind(idx), d.layout.ClusterUID)
	if derr != nil {
		old = Message{} // a damaged slot is overwritten: the message matters more.
	}
	m.To, m.Seq = to, old.Seq+1
	return d.writeBlock(idx, encodeMessage(m, idx, d.layout.ClusterUID))
}

// ReadMessage returns the message in node's slot; Kind is MessageNone when there is none (or
// when the block still carries a message for the slot's previous node).
func (d *Disk) ReadMessage(node string) (Message, error) {
	slot, err := d.FindSlot(node)
	if err != nil {
		return Message{}, err
	}
	m, err := d.readMessage(slot)
	if err != nil {
		return Message{}, err
	}
	if m.To != node {
		return Message{}, nil
	}
	return m, nil
}

func (d *Disk) readMessage(slot int) (Message, error) {
	idx := d.layout.messageBlock(slot)
	raw, err := d.readBlock(idx)
	if err != nil {
		return Message{}, err
	}
	return decodeMessage(raw, idx, d.layout.blockKind(idx), d.layout.ClusterUID)
}

// ClearMessage marks the message with sequence number seq in node's slot as handled, unless a
// newer message has replaced it meanwhile (then it leaves that one for the next ReadMessage).
func (d *Disk) ClearMessage(node string, seq uint64) error {
	slot, err := d.FindSlot(node)
	if err != nil {
		return err
	}
	m, err := d.readMessage(slot)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return err
	}
	if err == nil && (m.Seq != seq || m.Kind == MessageNone) {
		return nil
	}
	idx := d.layout.messageBlock(slot)
	return d.writeBlock(idx, encodeMessage(Message{To: node, Kind: MessageNone, From: node, Seq: m.Seq + 1}, idx, d.layout.ClusterUID))
}

// ReadLog returns the quorum log, oldest first: the last LogEntries ownership changes that were
// logged. Damaged entries are left out and reported, joined, in the error, next to the entries
// that could be read. The log is written by each new holder after its claim has succeeded:
// an epoch whose holder stopped before writing its entry has none, and a holder stalled for
// LogEntries ownership changes could overwrite a newer entry of its ring position.
func (d *Disk) ReadLog() ([]LogEntry, error) {
	var out []LogEntry
	var errs []error
	n := uint64(d.layout.LogEntries) //nolint:gosec // 1..MaxLogEntries.
	for i := range n {
		idx := d.layout.logBlock(i)
		raw, err := d.readBlock(idx)
		if err != nil {
			return out, err
		}
		e, err := decodeLog(raw, idx, d.layout.blockKind(idx), d.layout.ClusterUID)
		switch {
		case err != nil:
			errs = append(errs, err)
		case e.Epoch == 0:
		case e.Epoch%n != i:
			errs = append(errs, &BlockError{Block: idx, Kind: d.layout.blockKind(idx), Err: ErrCorrupt,
				Reason: fmt.Sprintf("the entry of epoch %d belongs in ring position %d", e.Epoch, e.Epoch%n)})
		default:
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b LogEntry) int {
		switch {
		case a.Epoch < b.Epoch:
			return -1
		case a.Epoch > b.Epoch:
			return 1
		default:
			return 0
		}
	})
	return out, errors.Join(errs...)
}

func (d *Disk) writeLog(e LogEntry) error {
	idx := d.layout.logBlock(e.Epoch)
	return d.writeBlock(idx, encodeLog(e, idx, d.layout.ClusterUID))
}

// Check reads every block of the layout and returns what is wrong with each (nil when the disk
// is sound): an fsck for administrators and tests.
func (d *Disk) Check() []error {
	var errs []error
	uid := d.layout.ClusterUID
	for idx := range d.layout.Blocks() {
		raw, err := d.readBlock(idx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		kind := d.layout.blockKind(idx)
		switch {
		case idx == headerBlock:
			_, err = decodeHeader(raw)
		case idx == ownerBlock:
			_, err = decodeOwner(raw, uid)
		case idx < firstSlotBlock+blocksPerSlot*int64(d.layout.Slots):
			if (idx-firstSlotBlock)%blocksPerSlot == 2 {
				_, err = decodeMessage(raw, idx, kind, uid)
			} else {
				_, err = decodeNode(raw, idx, kind, uid)
			}
		default:
			_, err = decodeLog(raw, idx, kind, uid)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
