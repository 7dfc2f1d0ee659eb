//go:build linux

package nodelocal

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// SystemClock reads the node's CLOCK_MONOTONIC.
func SystemClock() (Mono, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("reading CLOCK_MONOTONIC: %w", err)
	}
	return Mono(ts.Nano()), nil
}

// bootIDPath holds the kernel's random ID of the current boot.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// SystemBootID is the node's boot ID: a new one at every boot, when CLOCK_MONOTONIC restarts.
func SystemBootID() (string, error) {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return "", fmt.Errorf("reading the boot ID: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("reading the boot ID: %s is empty", bootIDPath)
	}
	return id, nil
}
