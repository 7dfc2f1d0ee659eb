package quorum

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: the simulation kills every process
// it started, and every Acquire a test drives returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
