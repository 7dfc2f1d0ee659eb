package quorum

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Device is the storage under a quorum disk: a block device shared by the cluster's nodes (the
// ReadWriteOnce volume), or a plain file in tests. Every request covers whole 4096-byte blocks
// at a block-aligned offset, and every call is synchronous: when WriteAt returns nil the data is
// on stable storage and any later ReadAt, by any node, returns it.
type Device interface {
	// ReadAt reads len(p) bytes at off; both are multiples of BlockSize.
	ReadAt(p []byte, off int64) (int, error)
	// WriteAt writes len(p) bytes at off, durably; both are multiples of BlockSize.
	WriteAt(p []byte, off int64) (int, error)
	// Sync flushes anything the device may still cache.
	Sync() error
	// Close releases the device.
	Close() error
}

// checkRequest rejects a request that is not whole, aligned blocks.
func checkRequest(p []byte, off int64) error {
	if len(p) == 0 || len(p)%BlockSize != 0 || off < 0 || off%BlockSize != 0 {
		return fmt.Errorf("%w: I/O of %d bytes at offset %d is not whole %d-byte blocks", ErrBadLayout, len(p), off, BlockSize)
	}
	return nil
}

// FileDevice is a Device on a path: a block device or a regular file.
//
// It opens the path with O_DIRECT|O_DSYNC, so that reads bypass the page cache (a read sees what
// another host wrote) and writes are durable when they return, and does its I/O through a
// page-aligned buffer as O_DIRECT requires. Where the filesystem refuses O_DIRECT (some FUSE
// and network filesystems, tmpfs before Linux 6.6) it falls back to O_DSYNC with an fsync
// after every write, which is as durable but reads through the page cache: good for one host
// (tests, or several agents on one machine), not for a disk shared between hosts. Direct says
// which mode is in use.
type FileDevice struct {
	path string

	mu     sync.Mutex // serialises I/O on buf and f
	f      *os.File
	direct bool
	buf    []byte // page-aligned scratch, a multiple of BlockSize
}

// OpenFile opens an existing block device or file as a quorum disk device.
func OpenFile(path string) (*FileDevice, error) { return openFile(path, true) }

// openFile is OpenFile; tryDirect=false forces the fallback mode (for tests: tmpfs accepts
// O_DIRECT since Linux 6.6, so the fallback cannot be provoked by the filesystem here).
func openFile(path string, tryDirect bool) (*FileDevice, error) {
	d := &FileDevice{path: path}
	if tryDirect && oDirect != 0 {
		f, err := os.OpenFile(path, os.O_RDWR|oDSync|oDirect, 0)
		if err == nil {
			d.f, d.direct = f, true
			return d, nil
		}
		if !errors.Is(err, syscall.EINVAL) {
			return nil, fmt.Errorf("opening quorum device: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|oDSync, 0)
	if err != nil {
		return nil, fmt.Errorf("opening quorum device: %w", err)
	}
	d.f = f
	return d, nil
}

// Direct reports whether the device runs with O_DIRECT|O_DSYNC (true) or has fallen back to
// O_DSYNC + fsync through the page cache (false).
func (d *FileDevice) Direct() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.direct
}

// Mode describes the I/O mode for logs: "O_DIRECT|O_DSYNC" or "O_DSYNC+fsync (no O_DIRECT)".
func (d *FileDevice) Mode() string {
	if d.Direct() {
		return "O_DIRECT|O_DSYNC"
	}
	return "O_DSYNC+fsync (no O_DIRECT)"
}

// Path is the device's path.
func (d *FileDevice) Path() string { return d.path }

// scratch returns the page-aligned buffer, at least n bytes long.
func (d *FileDevice) scratch(n int) []byte {
	if len(d.buf) < n {
		const align = 4096
		raw := make([]byte, n+align)
		addr := uintptr(unsafe.Pointer(&raw[0]))
		skip := int((align - addr%align) % align)
		d.buf = raw[skip : skip+n : skip+n]
	}
	return d.buf[:n]
}

// ReadAt implements Device. Bytes past the end of a regular file read as zeros.
func (d *FileDevice) ReadAt(p []byte, off int64) (int, error) {
	if err := checkRequest(p, off); err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return 0, os.ErrClosed
	}
	buf := d.scratch(len(p))
	n, err := d.f.ReadAt(buf, off)
	if err != nil && d.direct && errors.Is(err, syscall.EINVAL) {
		// Opened with O_DIRECT but refused at the first I/O: fall back, once.
		if ferr := d.fallBack(); ferr != nil {
			return 0, ferr
		}
		n, err = d.f.ReadAt(buf, off)
	}
	if errors.Is(err, io.EOF) {
		clear(buf[n:])
		n, err = len(p), nil
	}
	copy(p, buf[:n])
	if err != nil {
		return n, fmt.Errorf("reading %s at %d: %w", d.path, off, err)
	}
	return n, nil
}

// WriteAt implements Device.
func (d *FileDevice) WriteAt(p []byte, off int64) (int, error) {
	if err := checkRequest(p, off); err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return 0, os.ErrClosed
	}
	buf := d.scratch(len(p))
	copy(buf, p)
	n, err := d.f.WriteAt(buf, off)
	if err != nil && d.direct && errors.Is(err, syscall.EINVAL) {
		if ferr := d.fallBack(); ferr != nil {
			return 0, ferr
		}
		n, err = d.f.WriteAt(buf, off)
	}
	if err == nil && !d.direct {
		err = d.f.Sync()
	}
	if err != nil {
		return n, fmt.Errorf("writing %s at %d: %w", d.path, off, err)
	}
	return n, nil
}

// fallBack reopens the path without O_DIRECT; d.mu is held.
func (d *FileDevice) fallBack() error {
	f, err := os.OpenFile(d.path, os.O_RDWR|oDSync, 0)
	if err != nil {
		return fmt.Errorf("reopening quorum device without O_DIRECT: %w", err)
	}
	_ = d.f.Close() // the O_DIRECT descriptor has done no I/O: nothing to lose.
	d.f, d.direct = f, false
	return nil
}

// Sync implements Device.
func (d *FileDevice) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return os.ErrClosed
	}
	return d.f.Sync()
}

// Close implements Device.
func (d *FileDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}
