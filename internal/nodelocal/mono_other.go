//go:build !linux

package nodelocal

import "errors"

var errNotLinux = errors.New("the node-local channel needs Linux (CLOCK_MONOTONIC shared by the node's processes, and a boot ID)")

// SystemClock reads the node's CLOCK_MONOTONIC: Linux only.
func SystemClock() (Mono, error) { return 0, errNotLinux }

// SystemBootID is the node's boot ID: Linux only.
func SystemBootID() (string, error) { return "", errNotLinux }
