package heartbeat

import (
	"slices"
	"testing"
	"time"
)

func TestDetector(t *testing.T) {
	timeout := 2 * time.Second // 500 ms x 4
	type heard struct {
		peer, network string
		at            time.Duration
	}
	cases := []struct {
		name      string
		heard     []heard
		at        time.Duration
		peer      string
		networks  []string
		reachable bool
	}{
		{name: "never heard", at: 0, peer: "b"},
		{name: "heard on both", heard: []heard{{"b", "private", 0}, {"b", "public", 0}}, at: time.Second, peer: "b",
			networks: []string{"private", "public"}, reachable: true},
		{name: "exactly at the timeout", heard: []heard{{"b", "private", 0}}, at: 2 * time.Second, peer: "b",
			networks: []string{"private"}, reachable: true},
		{name: "private lost: still reachable on public", at: 3 * time.Second, peer: "b",
			heard:    []heard{{"b", "private", 0}, {"b", "public", 0}, {"b", "public", 2500 * time.Millisecond}},
			networks: []string{"public"}, reachable: true},
		{name: "both lost", heard: []heard{{"b", "private", 0}, {"b", "public", 500 * time.Millisecond}}, at: 2600 * time.Millisecond,
			peer: "b"},
		{name: "another peer's heartbeats do not count", heard: []heard{{"c", "private", time.Second}}, at: time.Second, peer: "b"},
		{name: "a late, older heartbeat does not rewind", heard: []heard{{"b", "private", 1500 * time.Millisecond}, {"b", "private", 0}},
			at: 3 * time.Second, peer: "b", networks: []string{"private"}, reachable: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &Detector{Timeout: timeout}
			for _, h := range tc.heard {
				d.Heard(h.peer, h.network, t0.Add(h.at))
			}
			now := t0.Add(tc.at)
			if got := d.Networks(tc.peer, now); !slices.Equal(got, tc.networks) {
				t.Errorf("Networks() = %v, want %v", got, tc.networks)
			}
			if got := d.Reachable(tc.peer, now); got != tc.reachable {
				t.Errorf("Reachable() = %v, want %v", got, tc.reachable)
			}
		})
	}
}

func TestDetectorNextDeadline(t *testing.T) {
	d := &Detector{Timeout: 2 * time.Second}
	if got := d.NextDeadline(t0); !got.IsZero() {
		t.Fatalf("NextDeadline() with nothing heard = %v, want zero", got)
	}
	d.Heard("b", "private", t0)
	d.Heard("b", "public", t0.Add(time.Second))
	d.Heard("c", "private", t0.Add(500*time.Millisecond))
	cases := []struct {
		now, want time.Duration
	}{
		{0, 2 * time.Second},
		{2 * time.Second, 2500 * time.Millisecond},
		{2500 * time.Millisecond, 3 * time.Second},
	}
	for _, tc := range cases {
		if got := d.NextDeadline(t0.Add(tc.now)); !got.Equal(t0.Add(tc.want)) {
			t.Errorf("NextDeadline(T+%v) = T+%v, want T+%v", tc.now, got.Sub(t0), tc.want)
		}
	}
	if got := d.NextDeadline(t0.Add(3 * time.Second)); !got.IsZero() {
		t.Errorf("NextDeadline() after every deadline = %v, want zero", got)
	}
}
