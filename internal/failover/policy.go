package failover

import (
	"time"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// RestartPolicy is a resource's restart policy with its defaults filled in.
type RestartPolicy struct {
	Action    wolfpackv1alpha1.RestartAction
	Threshold int32
	Period    time.Duration
	Delay     time.Duration
}

// RestartCount is how often a resource was restarted on its node in the current period.
type RestartCount struct {
	Restarts    int32
	PeriodStart time.Time
}

// Action is what the Resource Manager does about a failed resource.
type Action string

const (
	// RestartResource restarts the resource on the same node at Decision.At.
	RestartResource Action = "Restart"
	// LeaveFailed leaves the resource Failed; its group stays where it is.
	LeaveFailed Action = "LeaveFailed"
	// FailoverGroup fails the whole group over to another node.
	FailoverGroup Action = "FailoverGroup"
)

// Decision is what to do about a failure, and the restart count to record.
type Decision struct {
	Action Action
	// At is when to restart, for RestartResource.
	At    time.Time
	Count RestartCount
}

// OnResourceFailure applies MSCS's restart policy to a resource failure at now: restart on the
// same node up to Threshold times per Period, after Delay; then, by Action, leave the resource
// Failed (Restart) or fail the group over (RestartOrFailover). DoNotRestart never restarts and
// never fails over. The count starts over when Period has passed since it began.
func OnResourceFailure(p RestartPolicy, c RestartCount, now time.Time) Decision {
	if c.PeriodStart.IsZero() || !now.Before(c.PeriodStart.Add(p.Period)) {
		c = RestartCount{PeriodStart: now}
	}
	switch {
	case p.Action == wolfpackv1alpha1.DoNotRestart:
		return Decision{Action: LeaveFailed, Count: c}
	case c.Restarts < p.Threshold:
		c.Restarts++
		return Decision{Action: RestartResource, At: now.Add(p.Delay), Count: c}
	case p.Action == wolfpackv1alpha1.RestartOrFailover:
		return Decision{Action: FailoverGroup, Count: c}
	default:
		return Decision{Action: LeaveFailed, Count: c}
	}
}

// Threshold is spec.failoverThreshold, or, when unset, the number of nodes minus one
// (WSFC's default), but at least one.
func Threshold(spec *int32, nodes int) int32 {
	if spec != nil {
		return *spec
	}
	return int32(max(nodes-1, 1)) //nolint:gosec // a cluster has far fewer than 2^31 nodes
}

// AllowFailover decides whether a group may fail over at now, given the times of its recent
// failovers: at most threshold failovers within period. It returns the failover times to keep
// in status: those within period, plus now when the failover is allowed.
func AllowFailover(recent []time.Time, threshold int32, period time.Duration, now time.Time) (bool, []time.Time) {
	kept := make([]time.Time, 0, len(recent)+1)
	for _, t := range recent {
		if now.Sub(t) < period {
			kept = append(kept, t)
		}
	}
	if int32(len(kept)) >= threshold { //nolint:gosec // bounded by the API's maxItems
		return false, kept
	}
	return true, append(kept, now)
}

// Failback is a group's failback policy.
type Failback struct {
	Policy wolfpackv1alpha1.FailbackPolicy
	// WindowStart and WindowEnd are hours of the day; nil means no window (any hour).
	WindowStart, WindowEnd *int32
}

// InWindow reports whether now falls in the failback window [start, end), in now's location;
// a window with start after end wraps around midnight. No window means any time.
func (f Failback) InWindow(now time.Time) bool {
	if f.WindowStart == nil || f.WindowEnd == nil {
		return true
	}
	h, start, end := int32(now.Hour()), *f.WindowStart, *f.WindowEnd //nolint:gosec // an hour is 0-23
	if start <= end {
		return start <= h && h < end
	}
	return h >= start || h < end
}

// FailbackTarget returns the node a group should fail back to at now, if any: with policy Allow
// and inside the window, the node that Place chooses when the group is new, when that node is
// preferred over the current owner.
func FailbackTarget(f Failback, p Placement, now time.Time) (string, bool) {
	if f.Policy != wolfpackv1alpha1.FailbackAllow || !f.InWindow(now) || p.Owner == "" {
		return "", false
	}
	fresh := p
	fresh.Owner = ""
	best, ok := Place(fresh)
	if !ok || best == p.Owner {
		return "", false
	}
	rank := func(n string) int {
		for i, o := range p.PreferredOwners {
			if o == n {
				return i
			}
		}
		return len(p.PreferredOwners)
	}
	if rank(best) >= rank(p.Owner) {
		return "", false
	}
	return best, true
}
