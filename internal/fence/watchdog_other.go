//go:build !linux

package fence

import "errors"

// openWatchdog fails: the watchdog device is Linux's.
func openWatchdog(Options) (Fencer, error) {
	return nil, errors.New("the Watchdog fence action needs Linux")
}
