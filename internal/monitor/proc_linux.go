package monitor

import "syscall"

// sysProcAttr puts the monitor process in a process group of its own, so that killing the group
// kills whatever it started too, and has the kernel kill it if the agent dies first.
func sysProcAttr() *syscall.SysProcAttr {
	// Pdeathsig fires when the thread that started the process exits; Go keeps its threads
	// unless a goroutine exits while locked to one, and then the monitor is restarted.
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
