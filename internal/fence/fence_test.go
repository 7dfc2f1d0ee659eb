package fence

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	clocktesting "k8s.io/utils/clock/testing"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		action  wolfpackv1alpha1.FenceAction
		want    string // the Fencer's type, or a substring of the error
		wantErr bool
	}{
		{action: wolfpackv1alpha1.FenceNone, want: "*fence.None"},
		{action: wolfpackv1alpha1.FenceCRI, want: "*fence.criFencer"},
		{action: "", want: `unknown fence action ""`, wantErr: true},
		{action: "STONITH", want: `unknown fence action "STONITH": want None, CRI or Watchdog`, wantErr: true},
	} {
		t.Run(string(tc.action), func(t *testing.T) {
			f, err := New(tc.action, Options{})
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("New(%q) = %v, want an error with %q", tc.action, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tc.action, err)
			}
			defer func() { _ = f.Close() }()
			if got := typeName(f); got != tc.want {
				t.Errorf("New(%q) is a %s, want a %s", tc.action, got, tc.want)
			}
		})
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *None:
		return "*fence.None"
	case *criFencer:
		return "*fence.criFencer"
	default:
		return "?"
	}
}

func TestOptionsDefaults(t *testing.T) {
	got := Options{StopGracePeriod: -time.Second}.withDefaults()
	if got.CRIEndpoint != DefaultCRIEndpoint || got.CRITimeout != DefaultCRITimeout || got.StopGracePeriod != 0 ||
		got.WatchdogPath != DefaultWatchdogPath || got.WatchdogTimeout != 0 || got.Clock == nil {
		t.Errorf("defaults: %+v", got)
	}
	set := Options{CRIEndpoint: "unix:///x.sock", CRITimeout: time.Second, StopGracePeriod: 2 * time.Second,
		WatchdogPath: "/dev/watchdog1", WatchdogTimeout: 5 * time.Second}
	if got := set.withDefaults(); got.CRIEndpoint != set.CRIEndpoint || got.CRITimeout != set.CRITimeout ||
		got.StopGracePeriod != set.StopGracePeriod || got.WatchdogPath != set.WatchdogPath || got.WatchdogTimeout != set.WatchdogTimeout {
		t.Errorf("set options changed: %+v", got)
	}
}

func TestActionFor(t *testing.T) {
	spec := wolfpackv1alpha1.FencingSpec{
		Action: wolfpackv1alpha1.FenceWatchdog,
		Nodes: []wolfpackv1alpha1.NodeFencing{
			{Node: "node-a", Action: wolfpackv1alpha1.FenceCRI},
			{Node: "node-b", Action: wolfpackv1alpha1.FenceNone},
		},
	}
	for _, tc := range []struct {
		name string
		spec wolfpackv1alpha1.FencingSpec
		node string
		want wolfpackv1alpha1.FenceAction
	}{
		{name: "node entry", spec: spec, node: "node-a", want: wolfpackv1alpha1.FenceCRI},
		{name: "another node entry", spec: spec, node: "node-b", want: wolfpackv1alpha1.FenceNone},
		{name: "no entry: the cluster's action", spec: spec, node: "node-c", want: wolfpackv1alpha1.FenceWatchdog},
		{name: "nothing set: CRI", spec: wolfpackv1alpha1.FencingSpec{}, node: "node-a", want: wolfpackv1alpha1.FenceCRI},
		{name: "empty node entry: the cluster's action",
			spec: wolfpackv1alpha1.FencingSpec{Action: wolfpackv1alpha1.FenceNone, Nodes: []wolfpackv1alpha1.NodeFencing{{Node: "node-a"}}},
			node: "node-a", want: wolfpackv1alpha1.FenceNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ActionFor(tc.spec, tc.node); got != tc.want {
				t.Errorf("ActionFor(%s) = %s, want %s", tc.node, got, tc.want)
			}
		})
	}
}

func TestWatchdogSeconds(t *testing.T) {
	for in, want := range map[time.Duration]int64{
		-time.Second:            0,
		0:                       0,
		time.Millisecond:        1,
		time.Second:             1,
		1500 * time.Millisecond: 1,
		6667 * time.Millisecond: 6,
		7 * time.Second:         7,
	} {
		if got := watchdogSeconds(in); got != want {
			t.Errorf("watchdogSeconds(%s) = %d, want %d", in, got, want)
		}
	}
}

func TestSeconds(t *testing.T) {
	for in, want := range map[time.Duration]int64{
		-time.Second:            0,
		0:                       0,
		time.Millisecond:        1,
		time.Second:             1,
		1500 * time.Millisecond: 2,
		2 * time.Second:         2,
	} {
		if got := seconds(in); got != want {
			t.Errorf("seconds(%s) = %d, want %d", in, got, want)
		}
	}
}

func TestReportString(t *testing.T) {
	for _, tc := range []struct {
		name   string
		report Report
		want   string
	}{
		{name: "none", report: Report{Action: wolfpackv1alpha1.FenceNone}, want: "None: stopped nothing in 0s"},
		{name: "cri, nothing to stop", report: Report{Action: wolfpackv1alpha1.FenceCRI, Duration: 3 * time.Millisecond},
			want: "CRI: stopped 0 pods (0 containers) in 3ms"},
		{name: "cri", report: Report{Action: wolfpackv1alpha1.FenceCRI, Duration: 12 * time.Millisecond, Pods: []StoppedPod{
			{Namespace: "shop", Name: "db-0", Containers: []string{"db"}},
			{Namespace: "shop", Name: "web-0", Containers: []string{"app", "proxy"}},
		}}, want: "CRI: stopped 2 pods (3 containers) [shop/db-0, shop/web-0] in 12ms"},
		{name: "watchdog", report: Report{Action: wolfpackv1alpha1.FenceWatchdog, ResetIn: 2 * time.Second, Duration: time.Millisecond},
			want: "Watchdog: stopped feeding the watchdog; the node resets within 2s in 1ms"},
		{name: "watchdog, unknown", report: Report{Action: wolfpackv1alpha1.FenceWatchdog},
			want: "Watchdog: stopped feeding the watchdog; the device does not say when it resets the node in 0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.report.String(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestNone(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	f, err := New(wolfpackv1alpha1.FenceNone, Options{Clock: clocktesting.NewFakePassiveClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	n := f.(*None)
	for range 3 {
		if err := f.Heartbeat(); err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
	}
	r, err := f.Fence(context.Background())
	if err != nil {
		t.Fatalf("Fence: %v", err)
	}
	if r.Action != wolfpackv1alpha1.FenceNone || !r.Started.Equal(now) || len(r.Pods) != 0 || r.ResetIn != 0 {
		t.Errorf("Fence reported %+v, want None at %s, nothing stopped", r, now)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n.Heartbeats() != 3 || n.Fences() != 1 || !n.Closed() {
		t.Errorf("recorded %d heartbeats, %d fences, closed %t; want 3, 1, true", n.Heartbeats(), n.Fences(), n.Closed())
	}
}

// TestNoWatchdog: None and CRI have no watchdog: Handover is a no-op returning 0, Timeout is 0,
// Disarm does nothing and there is nothing to escalate to.
func TestNoWatchdog(t *testing.T) {
	for _, action := range []wolfpackv1alpha1.FenceAction{wolfpackv1alpha1.FenceNone, wolfpackv1alpha1.FenceCRI} {
		t.Run(string(action), func(t *testing.T) {
			f, err := New(action, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = f.Close() }()
			h, ok := f.(interface {
				Handover(time.Duration) (time.Duration, error)
			})
			if !ok {
				t.Fatalf("%T has no Handover", f)
			}
			if got, err := h.Handover(time.Minute); got != 0 || err != nil {
				t.Errorf("Handover = %s, %v; want 0, nil", got, err)
			}
			if got := Timeout(f); got != 0 {
				t.Errorf("Timeout = %s, want 0", got)
			}
			if err := Disarm(f); err != nil {
				t.Errorf("Disarm: %v", err)
			}
			if err := Escalate(f); !errors.Is(err, ErrNoEscalation) {
				t.Errorf("Escalate: %v, want ErrNoEscalation", err)
			}
		})
	}
}
