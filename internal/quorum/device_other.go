//go:build !linux

package quorum

import "os"

// Elsewhere than Linux there is no O_DIRECT: the device always runs in synchronous-write +
// fsync mode (see FileDevice.Direct).
const (
	oDirect = 0
	oDSync  = os.O_SYNC
)
