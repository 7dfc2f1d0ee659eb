package heartbeat

import (
	"slices"
	"time"
)

// Detector is the failure detector of one agent: it remembers when each peer was last heard on
// each network and says which peers are reachable, on which networks. A peer is reachable while
// it has been heard on at least one network within interval x threshold; losing the private
// networks alone only moves it to the public ones. It is not safe for concurrent use.
type Detector struct {
	// Timeout is interval x threshold: how long a peer may be silent on a network.
	Timeout time.Duration
	heard   map[string]map[string]time.Time // peer -> network -> last heard
}

// Heard records a believed heartbeat from peer on network at now.
func (d *Detector) Heard(peer, network string, now time.Time) {
	if d.heard == nil {
		d.heard = map[string]map[string]time.Time{}
	}
	if d.heard[peer] == nil {
		d.heard[peer] = map[string]time.Time{}
	}
	if now.After(d.heard[peer][network]) {
		d.heard[peer][network] = now
	}
}

// Networks returns the networks on which peer was heard within the timeout at now, sorted.
func (d *Detector) Networks(peer string, now time.Time) []string {
	var out []string
	for network, at := range d.heard[peer] {
		if now.Sub(at) <= d.Timeout {
			out = append(out, network)
		}
	}
	slices.Sort(out)
	return out
}

// Reachable reports whether peer was heard on any network within the timeout at now.
func (d *Detector) Reachable(peer string, now time.Time) bool {
	return len(d.Networks(peer, now)) > 0
}

// NextDeadline is when, without further heartbeats, the next network of any peer goes silent:
// when to look again. It is zero when nothing is heard.
func (d *Detector) NextDeadline(now time.Time) time.Time {
	var next time.Time
	for _, networks := range d.heard {
		for _, at := range networks {
			if deadline := at.Add(d.Timeout); deadline.After(now) && (next.IsZero() || deadline.Before(next)) {
				next = deadline
			}
		}
	}
	return next
}

// Forget drops what is known of peer: it is no longer a peer.
func (d *Detector) Forget(peer string) {
	delete(d.heard, peer)
}
