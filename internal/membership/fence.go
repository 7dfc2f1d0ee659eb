package membership

import (
	"time"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// FencedAfter says how long until a Down node counts as fenced (it can no longer run the
// group's workloads), and whether it already does: at once when its agent reports that it
// failed the node, else once it has been Down for grace. A node that is not Down is never
// fenced.
func FencedAfter(n wolfpackv1alpha1.NodeStatus, now time.Time, grace time.Duration) (time.Duration, bool) {
	if n.State != wolfpackv1alpha1.NodeDown {
		return 0, false
	}
	if n.Fenced {
		return 0, true
	}
	// since is stored to the whole second: the grace counts from the end of that second, so that a
	// node is never taken as fenced sooner than grace after it went Down.
	wait := n.Since.Add(time.Second + grace).Sub(now)
	return max(wait, 0), wait <= 0
}
