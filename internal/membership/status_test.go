package membership

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

func TestSetQuorum(t *testing.T) {
	t.Parallel()
	held := HolderLease{Name: "wolfpack-system/quorum-prod", Holder: "a", Seen: t0.Add(-3 * time.Second), Duration: 10 * time.Second, Epoch: "4"}
	with := func(change func(*HolderLease)) HolderLease {
		l := held
		change(&l)
		return l
	}
	cases := []struct {
		name       string
		lease      HolderLease
		epoch      int64
		wantOwner  string
		wantEpoch  int64
		wantStatus metav1.ConditionStatus
		wantReason string
		wantInMsg  string
		wantExpiry time.Time
	}{
		{name: "held and fresh", lease: held, epoch: 3, wantOwner: "a", wantEpoch: 4, wantStatus: metav1.ConditionTrue,
			wantReason: wolfpackv1alpha1.QuorumHeldReason, wantInMsg: "node a holds the quorum disk at epoch 4", wantExpiry: t0.Add(7 * time.Second)},
		{name: "the epoch never goes down", lease: held, epoch: 9, wantOwner: "a", wantEpoch: 9, wantStatus: metav1.ConditionTrue,
			wantReason: wolfpackv1alpha1.QuorumHeldReason, wantExpiry: t0.Add(7 * time.Second)},
		{name: "renewed a whole duration ago: still held", lease: with(func(l *HolderLease) { l.Seen = t0.Add(-10 * time.Second) }),
			wantOwner: "a", wantEpoch: 4, wantStatus: metav1.ConditionTrue, wantReason: wolfpackv1alpha1.QuorumHeldReason, wantExpiry: t0},
		{name: "not renewed for longer than its duration", lease: with(func(l *HolderLease) { l.Seen = t0.Add(-11 * time.Second) }),
			epoch: 4, wantEpoch: 4, wantStatus: metav1.ConditionFalse, wantReason: wolfpackv1alpha1.QuorumLostReason, wantInMsg: "no node holds"},
		{name: "judged by its own duration: 20 s, renewed 15 s ago", lease: with(func(l *HolderLease) {
			l.Seen, l.Duration = t0.Add(-15*time.Second), 20*time.Second
		}), wantOwner: "a", wantEpoch: 4, wantStatus: metav1.ConditionTrue, wantReason: wolfpackv1alpha1.QuorumHeldReason, wantExpiry: t0.Add(5 * time.Second)},
		{name: "judged by its own duration: 5 s, renewed 6 s ago", lease: with(func(l *HolderLease) {
			l.Seen, l.Duration = t0.Add(-6*time.Second), 5*time.Second
		}), epoch: 4, wantEpoch: 4, wantStatus: metav1.ConditionFalse, wantReason: wolfpackv1alpha1.QuorumLostReason, wantInMsg: "no node holds"},
		{name: "no Lease, or released", lease: HolderLease{}, wantStatus: metav1.ConditionFalse, wantReason: wolfpackv1alpha1.QuorumLostReason,
			wantInMsg: "no node holds the quorum disk"},
		{name: "no epoch", lease: with(func(l *HolderLease) { l.Epoch = "" }), epoch: 2, wantEpoch: 2, wantStatus: metav1.ConditionFalse,
			wantReason: wolfpackv1alpha1.QuorumLostReason, wantInMsg: "Lease wolfpack-system/quorum-prod has no epoch"},
		{name: "a negative epoch", lease: with(func(l *HolderLease) { l.Epoch = "-1" }), wantStatus: metav1.ConditionFalse,
			wantReason: wolfpackv1alpha1.QuorumLostReason, wantInMsg: `"-1"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := wolfpackv1alpha1.QuorumDiskStatus{Owner: "stale", Epoch: tc.epoch}
			expiry := SetQuorum(&s, tc.lease, t0, t0.Add(-time.Hour))
			c := meta.FindStatusCondition(s.Conditions, wolfpackv1alpha1.QuorumCondition)
			if s.Owner != tc.wantOwner || s.Epoch != tc.wantEpoch || !expiry.Equal(tc.wantExpiry) {
				t.Errorf("owner %q epoch %d expiry %v; want %q, %d, %v", s.Owner, s.Epoch, expiry, tc.wantOwner, tc.wantEpoch, tc.wantExpiry)
			}
			if c == nil || c.Status != tc.wantStatus || c.Reason != tc.wantReason || !strings.Contains(c.Message, tc.wantInMsg) {
				t.Errorf("Quorum condition %+v; want %s %s containing %q", c, tc.wantStatus, tc.wantReason, tc.wantInMsg)
			}
		})
	}
}

func TestSetReady(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		nodes      []wolfpackv1alpha1.NodeState
		wantStatus metav1.ConditionStatus
		wantMsg    string
	}{
		{name: "no members", wantStatus: metav1.ConditionFalse, wantMsg: "0 of 0 member nodes Up"},
		{name: "one of two Up", nodes: []wolfpackv1alpha1.NodeState{up, down}, wantStatus: metav1.ConditionTrue, wantMsg: "1 of 2 member nodes Up"},
		{name: "paused and joining are not Up", nodes: []wolfpackv1alpha1.NodeState{paused, joining, down}, wantStatus: metav1.ConditionFalse,
			wantMsg: "0 of 3 member nodes Up"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s wolfpackv1alpha1.QuorumDiskStatus
			for i, st := range tc.nodes {
				s.Nodes = append(s.Nodes, wolfpackv1alpha1.NodeStatus{Name: string(rune('a' + i)), State: st})
			}
			SetReady(&s)
			c := meta.FindStatusCondition(s.Conditions, wolfpackv1alpha1.ReadyCondition)
			if c == nil || c.Status != tc.wantStatus || c.Message != tc.wantMsg {
				t.Errorf("Ready %+v; want %s %q", c, tc.wantStatus, tc.wantMsg)
			}
		})
	}
}

func TestChangeReason(t *testing.T) {
	t.Parallel()
	for to, want := range map[wolfpackv1alpha1.NodeState]string{
		up: wolfpackv1alpha1.NodeUpReason, down: wolfpackv1alpha1.NodeDownReason,
		paused: wolfpackv1alpha1.NodePausedReason, joining: wolfpackv1alpha1.NodeJoiningReason,
	} {
		if got := (Change{To: to}).Reason(); got != want {
			t.Errorf("Change{To: %s}.Reason() = %s, want %s", to, got, want)
		}
	}
}

func TestDetection(t *testing.T) {
	t.Parallel()
	if got := Detection(wolfpackv1alpha1.HeartbeatSpec{}); got != 2*time.Second {
		t.Errorf("Detection of the defaults = %v, want 2s (500ms x 4)", got)
	}
	hb := wolfpackv1alpha1.HeartbeatSpec{Interval: &metav1.Duration{Duration: 250 * time.Millisecond}, Threshold: ptr.To[int32](6)}
	if got := Detection(hb); got != 1500*time.Millisecond {
		t.Errorf("Detection = %v, want 1.5s", got)
	}
}
