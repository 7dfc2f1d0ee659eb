package quorumholder

import (
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
)

// Publication is what the holder's Lease says: Node holds the quorum disk of Cluster at Epoch.
type Publication struct {
	// Namespace holds the Lease.
	Namespace string
	// Cluster is the QuorumDisk's name; the Lease is membership.QuorumLeaseName(Cluster).
	Cluster string
	// Node holds the disk lease.
	Node string
	// Epoch is the disk lease's epoch.
	Epoch uint64
	// LeaseDuration is L, published in whole seconds, rounded up.
	LeaseDuration time.Duration
}

// DesiredLease returns the Lease that publishes p, renewed at now, made from prev, the Lease as
// it is (nil when there is none). prev is not modified; its resourceVersion, and the labels and
// annotations of others, are kept.
//
//   - holderIdentity is p.Node, renewTime now, leaseDurationSeconds L rounded up to a second;
//   - acquireTime is now when the hold is new: no Lease yet, another (or no) holder, another
//     epoch, or no acquireTime; else it is kept;
//   - leaseTransitions goes up by one when holderIdentity changes (a Lease cleared on shutdown
//     has none, so the next holder counts as a change, as in client-go's leader election); a new
//     Lease starts at 0;
//   - the annotation wolfpack.dev/epoch is p.Epoch in decimal, the label wolfpack.dev/cluster is
//     p.Cluster.
//
// The Lease deliberately carries no wolfpack.dev/node label: the manager takes every Lease with
// the cluster label and a node label for that node's agent Lease (controllers'
// MembershipReconciler.observe), and would then read this one's missing view as the agent's.
func DesiredLease(prev *coordinationv1.Lease, p Publication, now time.Time) *coordinationv1.Lease {
	var l *coordinationv1.Lease
	if prev == nil {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
			Namespace: p.Namespace, Name: membership.QuorumLeaseName(p.Cluster)}}
	} else {
		l = prev.DeepCopy()
	}
	epoch := strconv.FormatUint(p.Epoch, 10)
	renewed := metav1.NewMicroTime(now)

	prevHolder := ""
	if prev != nil {
		prevHolder = ptr.Deref(prev.Spec.HolderIdentity, "")
	}
	switch {
	case prev == nil:
		l.Spec.LeaseTransitions = ptr.To[int32](0)
	case prevHolder != p.Node:
		l.Spec.LeaseTransitions = ptr.To(ptr.Deref(prev.Spec.LeaseTransitions, 0) + 1)
	}
	if prev == nil || prevHolder != p.Node || prev.Annotations[wolfpackv1alpha1.EpochAnnotation] != epoch ||
		prev.Spec.AcquireTime == nil {
		l.Spec.AcquireTime = ptr.To(renewed)
	}

	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[wolfpackv1alpha1.ClusterLabel] = p.Cluster
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[wolfpackv1alpha1.EpochAnnotation] = epoch
	l.Spec.HolderIdentity = ptr.To(p.Node)
	l.Spec.RenewTime = ptr.To(renewed)
	l.Spec.LeaseDurationSeconds = ptr.To(durationSeconds(p.LeaseDuration))
	return l
}

// ClearedLease returns prev with no holderIdentity, the Lease a holder leaves behind on
// shutdown, or nil when prev is nil or names another holder (nothing to clear). The epoch
// annotation and the times are kept, for people.
func ClearedLease(prev *coordinationv1.Lease, node string) *coordinationv1.Lease {
	if prev == nil || ptr.Deref(prev.Spec.HolderIdentity, "") != node {
		return nil
	}
	l := prev.DeepCopy()
	l.Spec.HolderIdentity = nil
	return l
}

// durationSeconds is d in whole seconds, rounded up, at least 1.
func durationSeconds(d time.Duration) int32 {
	s := (d + time.Second - 1) / time.Second
	return int32(min(max(s, 1), 1<<31-1))
}
