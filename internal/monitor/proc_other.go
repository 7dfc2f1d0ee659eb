//go:build unix && !linux

package monitor

import "syscall"

// sysProcAttr puts the monitor process in a process group of its own, so that killing the group
// kills whatever it started too.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
