// Package membership is MSCS's Node Manager and Membership Manager as pure functions: it turns
// the node agents' Leases, and the views they carry (which peers each agent hears, on which
// networks), into the member nodes' states Up, Down, Paused and Joining.
package membership

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// MaxViewSize bounds a view annotation; a longer one is not parsed.
const MaxViewSize = 16 << 10

// View is what one node agent reports about itself in its Lease.
type View struct {
	// Incarnation changes every time the agent starts.
	Incarnation uint64 `json:"incarnation"`
	// Joined is true once the agent has listened for a whole detection period (interval x
	// threshold), so that its view of its peers means something.
	Joined bool `json:"joined"`
	// Peers maps each peer the agent hears to the networks it hears it on, sorted.
	Peers map[string][]string `json:"peers,omitempty"`
	// Addresses are the agent's own addresses on the heartbeat networks, by network name: where
	// its peers send it heartbeats.
	Addresses map[string]string `json:"addresses,omitempty"`
	// Fenced is true while the agent has failed its node: it stopped the node's group workloads
	// because its side of a partition has no quorum.
	Fenced bool `json:"fenced,omitempty"`
}

// Hears reports the networks on which the view's agent hears peer.
func (v View) Hears(peer string) []string {
	return v.Peers[peer]
}

// Encode returns the view as the annotation's JSON, with its networks sorted, so that equal
// views encode equally.
func (v View) Encode() string {
	c := View{Incarnation: v.Incarnation, Joined: v.Joined, Addresses: v.Addresses, Fenced: v.Fenced}
	for peer, networks := range v.Peers {
		if len(networks) == 0 {
			continue
		}
		if c.Peers == nil {
			c.Peers = map[string][]string{}
		}
		n := slices.Clone(networks)
		slices.Sort(n)
		c.Peers[peer] = slices.Compact(n)
	}
	b, _ := json.Marshal(c) //nolint:errchkjson // a struct of strings, numbers and bools always encodes
	return string(b)
}

// Digest summarises the view for heartbeats, so that peers notice views that disagree.
func (v View) Digest() [sha256.Size]byte {
	return sha256.Sum256([]byte(v.Encode()))
}

// ErrView is wrapped by every error of ParseView.
var ErrView = errors.New("membership: bad view")

// ParseView reads a view annotation. It is written by an agent and read by the manager, so it is
// checked as untrusted input: bounded size, no empty names, no more peers than a cluster has.
func ParseView(s string) (View, error) {
	if len(s) > MaxViewSize {
		return View{}, fmt.Errorf("%w: %d bytes, at most %d", ErrView, len(s), MaxViewSize)
	}
	var v View
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return View{}, fmt.Errorf("%w: %w", ErrView, err)
	}
	if dec.More() {
		return View{}, fmt.Errorf("%w: trailing data", ErrView)
	}
	for peer, networks := range v.Peers {
		if peer == "" || slices.Contains(networks, "") {
			return View{}, fmt.Errorf("%w: empty peer or network name", ErrView)
		}
	}
	for network, a := range v.Addresses {
		if _, err := netip.ParseAddr(a); network == "" || err != nil {
			return View{}, fmt.Errorf("%w: address %q of network %q", ErrView, a, network)
		}
	}
	return v, nil
}
