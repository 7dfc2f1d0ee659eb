//go:build unix

package monitor

import (
	"errors"
	"syscall"
)

// killGroup kills the process group pgid. A group that is already gone is not an error.
func killGroup(pgid int) error {
	if pgid <= 0 {
		return nil
	}
	err := syscall.Kill(-pgid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
