package quorum

import (
	"errors"
	"os"
	"strings"
	"testing"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestFormatOpen(t *testing.T) {
	t.Parallel()
	dev, d := newMemDisk(t)
	if d.Layout() != testLayout() || d.Created().IsZero() || d.Device() != dev {
		t.Errorf("opened %+v created %v", d.Layout(), d.Created())
	}
	if got, want := testLayout().Blocks(), int64(2+3*3+4); got != want {
		t.Errorf("Blocks %d, want %d", got, want)
	}
	rec, err := d.ReadOwner()
	if err != nil || rec != (OwnerRecord{}) {
		t.Errorf("fresh owner record %+v, %v", rec, err)
	}
	if log, err := d.ReadLog(); err != nil || len(log) != 0 {
		t.Errorf("fresh log %+v, %v", log, err)
	}
	if errs := d.Check(); len(errs) != 0 {
		t.Errorf("Check: %v", errs)
	}

	// A formatted disk is never formatted again, even for the same cluster.
	if err := Format(dev, testLayout()); !errors.Is(err, ErrAlreadyFormatted) {
		t.Errorf("second Format: %v", err)
	}
	// Nor is one whose header is damaged.
	dev.Flip(100, 1)
	if err := Format(dev, Layout{ClusterUID: otherUID, Slots: 2, LogEntries: 2}); !errors.Is(err, ErrAlreadyFormatted) || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("Format over a damaged header: %v", err)
	}
	_, err = Open(dev, testUID)
	if be := blockErr(t, err); !errors.Is(err, ErrCorrupt) || be.Block != 0 || be.Kind != "header" {
		t.Errorf("Open of a damaged header: %v", err)
	}
	dev.Flip(100, 1)
	// Nor one whose header's magic is damaged (Open takes it for no quorum disk at all), nor any
	// block 0 that is not zeroed.
	dev.Flip(0, 0x20)
	if _, err := Open(dev, testUID); !errors.Is(err, ErrNotFormatted) {
		t.Errorf("Open of a damaged magic: %v", err)
	}
	if err := Format(dev, testLayout()); !errors.Is(err, ErrAlreadyFormatted) || !strings.Contains(err.Error(), "damaged magic") {
		t.Errorf("Format over a damaged magic: %v", err)
	}
	dev.Flip(0, 0x20)
	if _, err := Open(dev, testUID); err != nil {
		t.Errorf("the disk after Format refused: %v", err)
	}

	_, err = Open(dev, otherUID)
	if be := blockErr(t, err); !errors.Is(err, ErrOtherCluster) || be.Block != 0 || !strings.Contains(err.Error(), "expected ffeedd") {
		t.Errorf("Open with another cluster's UID: %v", err)
	}

	blank := NewMemDevice(testLayout().Size())
	if _, err := Open(blank, testUID); !errors.Is(err, ErrNotFormatted) || !strings.Contains(err.Error(), "block 0 (header): all zeros") {
		t.Errorf("Open of a blank device: %v", err)
	}
	for _, l := range []Layout{
		{ClusterUID: testUID, Slots: 0, LogEntries: 1},
		{ClusterUID: testUID, Slots: 1, LogEntries: MaxLogEntries + 1},
		{Slots: 1, LogEntries: 1},
	} {
		if err := Format(blank, l); !errors.Is(err, ErrBadLayout) {
			t.Errorf("Format %+v: %v", l, err)
		}
	}
}

// TestFormatCutShort: the header is written last, so a format that fails half-way leaves a
// disk that Open calls not formatted, and Format can be run again.
func TestFormatCutShort(t *testing.T) {
	t.Parallel()
	dev := NewMemDevice(testLayout().Size())
	dev.Inject(Fault{Op: OpWrite, Block: headerBlock, Err: errors.New("power cut")})
	if err := Format(dev, testLayout()); err == nil || !strings.Contains(err.Error(), "block 0 (header): power cut") {
		t.Fatalf("Format: %v", err)
	}
	if _, err := Open(dev, testUID); !errors.Is(err, ErrNotFormatted) {
		t.Errorf("Open after a cut-short format: %v", err)
	}
	if err := Format(dev, testLayout()); err != nil {
		t.Errorf("second Format: %v", err)
	}
	dev.Inject(Fault{Op: OpSync, Block: -1})
	if err := Format(NewMemDevice(testLayout().Size()), testLayout()); err != nil {
		t.Errorf("Format on a healthy device: %v", err)
	}
}

func TestCheckAndLog(t *testing.T) {
	t.Parallel()
	dev, d := newMemDisk(t)
	uid := d.layout.ClusterUID
	for _, e := range []uint64{3, 4, 5, 6, 7} { // ring of 4: epoch 3 is overwritten by 7
		if err := d.writeLog(LogEntry{Epoch: e, Owner: "node-a", Reason: ReasonTakeover}); err != nil {
			t.Fatal(err)
		}
	}
	log, err := d.ReadLog()
	if err != nil || len(log) != 4 || log[0].Epoch != 4 || log[3].Epoch != 7 {
		t.Fatalf("log %+v, %v", log, err)
	}
	// An entry in the wrong ring position, and a damaged one.
	dev.SetBlock(d.layout.logBlock(4), encodeLog(LogEntry{Epoch: 9, Owner: "x", Reason: ReasonFree}, d.layout.logBlock(4), uid))
	dev.Flip(d.layout.logBlock(5)*BlockSize+64, 2)
	log, err = d.ReadLog()
	if len(log) != 2 || err == nil || !strings.Contains(err.Error(), "belongs in ring position 1") || !strings.Contains(err.Error(), "log entry 1") ||
		!strings.Contains(err.Error(), "(log entry 1): checksum mismatch") {
		t.Errorf("log %+v, %v", log, err)
	}
	errs := d.Check()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "block 12 (log entry 1)") {
		t.Errorf("Check: %v", errs)
	}
	dev.Flip(d.layout.messageBlock(2)*BlockSize+64, 2)
	dev.Flip(ownerBlock*BlockSize+64, 2)
	if errs := d.Check(); len(errs) != 3 || !strings.Contains(errs[0].Error(), "block 1 (owner record)") || !strings.Contains(errs[1].Error(), "block 10 (slot 2 message)") {
		t.Errorf("Check: %v", errs)
	}
}

// TestRealFile runs the lease through a FileDevice on a file in t.TempDir(), with O_DIRECT
// where the filesystem allows it and in the fallback mode.
func TestRealFile(t *testing.T) {
	t.Parallel()
	for _, direct := range []bool{true, false} {
		dev, d, path := newFileDisk(t, direct)
		t.Logf("%s: %s", path, dev.Mode())
		if !direct && dev.Direct() {
			t.Error("the fallback mode claims O_DIRECT")
		}
		fc := clocktesting.NewFakeClock(epoch0)
		a := newTestLease(t, d, "node-a", 0, fc)
		if err := acquire(t, fc, a); err != nil {
			t.Fatalf("Acquire: %v", err)
		}
		if err := a.Renew(t.Context()); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		if err := a.Release(t.Context()); err != nil {
			t.Fatalf("Release: %v", err)
		}
		b := newTestLease(t, d, "node-b", 1, fc)
		if err := acquire(t, fc, b); err != nil || b.Epoch() != 2 {
			t.Fatalf("b Acquire: %v, epoch %d", err, b.Epoch())
		}
		if err := dev.Sync(); err != nil {
			t.Fatal(err)
		}

		// What another process sees: the same disk, opened anew.
		other, err := openFile(path, direct)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := Open(other, testUID)
		if err != nil {
			t.Fatalf("Open from another handle: %v", err)
		}
		if rec, err := d2.ReadOwner(); err != nil || rec.Owner() != "node-b" || rec.Epoch != 2 {
			t.Errorf("owner from another handle: %+v, %v", rec, err)
		}
		if _, err := Open(other, otherUID); !errors.Is(err, ErrOtherCluster) {
			t.Errorf("Open with another cluster's UID: %v", err)
		}
		_ = other.Close()

		// Flip a byte of the owner block in the file: a challenger gets an error naming block 1
		// and writes nothing.
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		raw[BlockSize+77] ^= 0x80
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		c := newTestLease(t, d, "node-c", 2, fc)
		err = acquire(t, fc, c)
		if be := blockErr(t, err); !errors.Is(err, ErrCorrupt) || be.Block != 1 || !strings.Contains(be.Reason, "checksum mismatch") {
			t.Errorf("Acquire over a flipped byte: %v", err)
		}
		after, _ := os.ReadFile(path)
		if string(after[BlockSize:2*BlockSize]) != string(raw[BlockSize:2*BlockSize]) {
			t.Error("the challenger wrote the damaged owner block")
		}

		// A torn owner block: the first 512 bytes of a new record over the old one.
		torn := encodeOwner(OwnerRecord{Held: true, Node: "node-b", Incarnation: 1, Epoch: 2, Counter: 99}, testUID)
		copy(raw[BlockSize:], torn[:512])
		raw[BlockSize+77] ^= 0x80
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ReadOwner(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "torn") {
			t.Errorf("torn owner block: %v", err)
		}
		if err := acquire(t, fc, c); !errors.Is(err, ErrCorrupt) || c.Valid() {
			t.Errorf("Acquire over a torn owner block: %v", err)
		}

		// A wiped header.
		clear(raw[:BlockSize])
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dev, testUID); !errors.Is(err, ErrNotFormatted) {
			t.Errorf("Open of a wiped header: %v", err)
		}
	}
}

func TestFileDevice(t *testing.T) {
	t.Parallel()
	dev, _, path := newFileDisk(t, true)
	if _, err := dev.ReadAt(make([]byte, 100), 0); !errors.Is(err, ErrBadLayout) {
		t.Errorf("short read: %v", err)
	}
	if _, err := dev.WriteAt(make([]byte, BlockSize), 100); !errors.Is(err, ErrBadLayout) {
		t.Errorf("unaligned write: %v", err)
	}
	// Past the end of a regular file: zeros.
	b := make([]byte, 2*BlockSize)
	b[0] = 1
	if n, err := dev.ReadAt(b, 1000*BlockSize); err != nil || n != len(b) || !isZero(b) {
		t.Errorf("read past the end: %d, %v", n, err)
	}
	// An unaligned caller buffer is fine: the device copies through its own.
	big := make([]byte, 3*BlockSize+1)
	if _, err := dev.ReadAt(big[1:], 0); err != nil {
		t.Errorf("read into an unaligned buffer: %v", err)
	}
	if dev.Path() != path {
		t.Errorf("Path %q", dev.Path())
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	if err := dev.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := dev.ReadAt(b, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("read after Close: %v", err)
	}
	if _, err := OpenFile(path + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenFile of a missing path: %v", err)
	}
}

func TestMemDevice(t *testing.T) {
	t.Parallel()
	dev := NewMemDevice(2*BlockSize + 1)
	if _, err := dev.ReadAt(make([]byte, BlockSize), 3*BlockSize); err == nil {
		t.Error("read past the end")
	}
	dev.Inject(Fault{Op: OpWrite, Block: -1, Torn: 10, Silent: true})
	p := make([]byte, BlockSize)
	for i := range p {
		p[i] = 7
	}
	if n, err := dev.WriteAt(p, BlockSize); err != nil || n != 10 {
		t.Errorf("silent torn write: %d, %v", n, err)
	}
	if b := dev.Block(1); b[9] != 7 || b[10] != 0 {
		t.Error("the torn write did not tear")
	}
	dev.Inject(Fault{Op: OpRead, Block: 1, Count: 2})
	for i := range 3 {
		_, err := dev.ReadAt(p, BlockSize)
		if (i < 2) != errors.Is(err, ErrInjected) {
			t.Errorf("read %d: %v", i, err)
		}
	}
	dev.Inject(Fault{Op: OpSync, Block: 5})
	if err := dev.Sync(); !errors.Is(err, ErrInjected) {
		t.Errorf("sync: %v", err)
	}
	if dev.Ops(OpRead) != 4 || dev.Ops(OpWrite) != 1 || dev.Ops(OpSync) != 1 {
		t.Errorf("ops %d %d %d", dev.Ops(OpRead), dev.Ops(OpWrite), dev.Ops(OpSync))
	}
	_ = dev.Close()
	if _, err := dev.WriteAt(p, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write after Close: %v", err)
	}
}
