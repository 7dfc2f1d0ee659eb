package env

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// quorumDiskSize is the size of the quorum disk's file: far more than the holder's default layout
// needs, as a real LUN is. The file is sparse.
const quorumDiskSize = 64 << 20

// makeQuorumDisk makes the quorum disk that stands in for the shared SCSI LUN: a loop device over
// a file in the directory, with direct I/O, where the machine allows (losetup, and root); else the
// file itself, which the holder creates and formats when it first opens it.
func (e *Env) makeQuorumDisk(ctx context.Context) error {
	file := filepath.Join(e.o.Dir, quorumFile)
	e.quorumDevice, e.loopDevice = file, false
	if _, err := exec.LookPath("losetup"); err != nil {
		e.logf("the quorum disk is the file %s: %v", file, err)
		return e.saveState()
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(quorumDiskSize)
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "losetup", "--find", "--show", "--direct-io=on", file).Output()
	if err != nil {
		// The holder formats the empty file as it would the empty device.
		e.logf("the quorum disk is the file %s: no loop device: %v", file, stderrOf(err))
		return e.saveState()
	}
	e.quorumDevice, e.loopDevice = strings.TrimSpace(string(out)), true
	e.logf("the quorum disk is the loop device %s over %s", e.quorumDevice, file)
	return e.saveState()
}

// detachLoop detaches the quorum disk's loop device, if it still has the directory's file behind
// it (a device detached meanwhile may serve another file now).
func detachLoop(device, dir string) error {
	backing, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(device), "loop", "backing_file"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // detached already
	}
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(backing)) != filepath.Join(dir, quorumFile) {
		return nil
	}
	if out, err := exec.CommandContext(context.Background(), "losetup", "--detach", device).CombinedOutput(); err != nil {
		return fmt.Errorf("detaching the quorum disk's loop device %s: %w: %s", device, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// stderrOf is err with the standard error of the command that failed, if it has one.
func stderrOf(err error) error {
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}
