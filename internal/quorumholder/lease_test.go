package quorumholder

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/utils/ptr"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

func TestDesiredLease(t *testing.T) {
	t.Parallel()
	now := t0.Add(time.Hour)
	earlier := metav1.NewMicroTime(t0)
	renewed := metav1.NewMicroTime(now)
	p := Publication{Namespace: "ha", Cluster: "prod", Node: "node-a", Epoch: 7, LeaseDuration: 1500 * time.Millisecond}

	// existing is a Lease as written before by holder at epoch, with others' metadata too.
	existing := func(holder *string, epoch string, transitions *int32) *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ha", Name: "wolfpack-quorum-prod", ResourceVersion: "42",
				Labels:      map[string]string{wolfpackv1alpha1.ClusterLabel: "prod", "team": "storage"},
				Annotations: map[string]string{wolfpackv1alpha1.EpochAnnotation: epoch, "note": "kept"}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: holder, AcquireTime: &earlier, RenewTime: &earlier,
				LeaseDurationSeconds: ptr.To[int32](10), LeaseTransitions: transitions},
		}
	}
	// want is the published Lease made from prev's metadata.
	want := func(prev *coordinationv1.Lease, acquired metav1.MicroTime, transitions int32) *coordinationv1.Lease {
		l := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ha", Name: "wolfpack-quorum-prod",
				Labels:      map[string]string{wolfpackv1alpha1.ClusterLabel: "prod"},
				Annotations: map[string]string{wolfpackv1alpha1.EpochAnnotation: "7"}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("node-a"), AcquireTime: &acquired, RenewTime: &renewed,
				LeaseDurationSeconds: ptr.To[int32](2), LeaseTransitions: ptr.To(transitions)},
		}
		if prev != nil {
			l.ResourceVersion = prev.ResourceVersion
			for k, v := range prev.Labels {
				if _, ok := l.Labels[k]; !ok {
					l.Labels[k] = v
				}
			}
			for k, v := range prev.Annotations {
				if _, ok := l.Annotations[k]; !ok {
					l.Annotations[k] = v
				}
			}
		}
		return l
	}

	for _, tc := range []struct {
		name string
		prev *coordinationv1.Lease
		want func(prev *coordinationv1.Lease) *coordinationv1.Lease
	}{{
		name: "no Lease yet: a new one, no transitions",
		want: func(*coordinationv1.Lease) *coordinationv1.Lease { return want(nil, renewed, 0) },
	}, {
		name: "a renewal: acquireTime and transitions kept",
		prev: existing(ptr.To("node-a"), "7", ptr.To[int32](3)),
		want: func(prev *coordinationv1.Lease) *coordinationv1.Lease { return want(prev, earlier, 3) },
	}, {
		name: "the same node at a new epoch (restarted): acquired now, no transition",
		prev: existing(ptr.To("node-a"), "6", ptr.To[int32](3)),
		want: func(prev *coordinationv1.Lease) *coordinationv1.Lease { return want(prev, renewed, 3) },
	}, {
		name: "another holder before: a transition",
		prev: existing(ptr.To("node-b"), "6", ptr.To[int32](3)),
		want: func(prev *coordinationv1.Lease) *coordinationv1.Lease { return want(prev, renewed, 4) },
	}, {
		name: "cleared on shutdown: a transition",
		prev: existing(nil, "6", ptr.To[int32](3)),
		want: func(prev *coordinationv1.Lease) *coordinationv1.Lease { return want(prev, renewed, 4) },
	}, {
		name: "made by someone else, bare",
		prev: &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ha", Name: "wolfpack-quorum-prod", ResourceVersion: "5"}},
		want: func(prev *coordinationv1.Lease) *coordinationv1.Lease { return want(prev, renewed, 1) },
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var before *coordinationv1.Lease
			if tc.prev != nil {
				before = tc.prev.DeepCopy()
			}
			got := DesiredLease(tc.prev, p, now)
			if w := tc.want(tc.prev); !equality.Semantic.DeepEqual(w, got) {
				t.Errorf("DesiredLease (-want +got):\n%s", diff.Diff(w, got))
			}
			if !equality.Semantic.DeepEqual(before, tc.prev) {
				t.Errorf("prev was modified (-before +after):\n%s", diff.Diff(before, tc.prev))
			}
		})
	}
}

func TestDurationSeconds(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]int32{
		0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 10 * time.Second: 10,
		5 * time.Minute: 300, 1 << 62: 1<<31 - 1,
	} {
		if got := durationSeconds(d); got != want {
			t.Errorf("durationSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestClearedLease(t *testing.T) {
	t.Parallel()
	ours := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{ResourceVersion: "9", Annotations: map[string]string{wolfpackv1alpha1.EpochAnnotation: "3"}},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("node-a"), LeaseTransitions: ptr.To[int32](2)},
	}
	got := ClearedLease(ours, "node-a")
	if got == nil || got.Spec.HolderIdentity != nil || got.ResourceVersion != "9" ||
		got.Annotations[wolfpackv1alpha1.EpochAnnotation] != "3" || *got.Spec.LeaseTransitions != 2 {
		t.Errorf("ClearedLease(ours) = %+v", got)
	}
	if ours.Spec.HolderIdentity == nil {
		t.Error("prev was modified")
	}
	if got := ClearedLease(ours, "node-b"); got != nil {
		t.Errorf("ClearedLease(another's) = %+v, want nil", got)
	}
	if got := ClearedLease(nil, "node-a"); got != nil {
		t.Errorf("ClearedLease(nil) = %+v, want nil", got)
	}
	none := ours.DeepCopy()
	none.Spec.HolderIdentity = nil
	if got := ClearedLease(none, "node-a"); got != nil {
		t.Errorf("ClearedLease(no holder) = %+v, want nil", got)
	}
}
