//go:build linux

package quorum

import "syscall"

// oDirect bypasses the page cache, so that a read sees what another host wrote to the shared
// disk, and oDSync makes every write durable (data and the metadata needed to read it back)
// before it returns. The standard library's syscall package has both flags on Linux;
// golang.org/x/sys/unix would add nothing here and would turn a module that this repository
// only requires indirectly into a direct requirement.
const (
	oDirect = syscall.O_DIRECT
	oDSync  = syscall.O_DSYNC
)
