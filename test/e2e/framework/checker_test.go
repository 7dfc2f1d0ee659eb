package framework

import (
	"slices"
	"testing"
	"time"
)

// TestDowntime computes the downtime of a window from snapshots of the runtimes: a gap runs from
// the first snapshot that misses a resource to the first one after that misses none, or to the
// end of the window; a window without snapshots for a while is blind.
func TestDowntime(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	up := func(ms int) runtimeSnapshot { return runtimeSnapshot{at: at(ms), expected: 2} }
	down := func(ms int, missing ...string) runtimeSnapshot {
		return runtimeSnapshot{at: at(ms), expected: 2, missing: missing}
	}
	for _, tc := range []struct {
		name                string
		snapshots           []runtimeSnapshot
		from, to            int
		total, longest      time.Duration
		gaps, down, unknown int
		blind               time.Duration
		missing             []string
	}{
		{name: "always up", snapshots: []runtimeSnapshot{up(0), up(100), up(200), up(300)}, from: 0, to: 300},
		{name: "one gap", snapshots: []runtimeSnapshot{up(0), down(100, "server"), down(200, "server", "agent"), up(300), up(400)},
			from: 0, to: 400, total: 200 * time.Millisecond, longest: 200 * time.Millisecond, gaps: 1, down: 2,
			missing: []string{"server", "agent"}},
		{name: "two gaps, the second open at the end", snapshots: []runtimeSnapshot{down(0, "agent"), up(100), down(200, "server"), down(300, "server")},
			from: 0, to: 450, total: 350 * time.Millisecond, longest: 250 * time.Millisecond, gaps: 2, down: 3,
			missing: []string{"agent"}, blind: 150 * time.Millisecond},
		{name: "a gap outside the window", snapshots: []runtimeSnapshot{down(0, "agent"), up(100), up(200)},
			from: 50, to: 200},
		{name: "blind", snapshots: []runtimeSnapshot{up(0), up(3000)}, from: 0, to: 3100, blind: 3000 * time.Millisecond},
		{name: "not seen running yet", snapshots: []runtimeSnapshot{{at: at(0)}, up(100)}, from: 0, to: 100, unknown: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Checker{runtime: tc.snapshots}
			d := c.downtimeLocked(at(tc.from), at(tc.to))
			if d.Total != tc.total || d.Longest != tc.longest || len(d.Gaps) != tc.gaps || d.Down != tc.down || d.Unknown != tc.unknown {
				t.Errorf("got total %s, longest %s, %d gaps, %d down, %d unknown; want %s, %s, %d, %d, %d (%s)",
					d.Total, d.Longest, len(d.Gaps), d.Down, d.Unknown, tc.total, tc.longest, tc.gaps, tc.down, tc.unknown, d)
			}
			if tc.blind != 0 && d.Blind != tc.blind {
				t.Errorf("blind for %s, want %s", d.Blind, tc.blind)
			}
			if tc.blind == 0 && d.Blind > 100*time.Millisecond {
				t.Errorf("blind for %s, want at most 100ms", d.Blind)
			}
			if tc.missing != nil && !slices.Equal(d.Gaps[0].Missing, tc.missing) {
				t.Errorf("the first gap misses %v, want %v", d.Gaps[0].Missing, tc.missing)
			}
		})
	}
}
