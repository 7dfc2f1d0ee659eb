package integration

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

// TestFloatingAddressOutsideTheAllowedCIDRsIsRefused is the second half of schedule 9 of issue
// 13: a group's owner cannot take over an address the cluster's administrator did not give out.
// The sample ip resource (192.0.2.50) lies outside the cluster's allowedAddressCIDRs: it is
// marked invalid naming the field and the QuorumDisk, never placed, and no node adds it. Once the
// administrator allows it, the group comes online with it; refused again, it is taken offline
// and its node removes it.
func TestFloatingAddressOutsideTheAllowedCIDRsIsRefused(t *testing.T) {
	f := newFixture(t)
	f.setAllowedCIDRs(t, "198.51.100.0/24", "fd00:50::/64")
	startManager(t)

	refused := "spec.ipAddress.address 192.0.2.50 lies outside spec.allowedAddressCIDRs [198.51.100.0/24, fd00:50::/64] of QuorumDisk " + f.cluster
	f.expectIPRefused(t, refused)
	poll.Throughout(t, "the refused address never placed", 3*time.Second, 100*time.Millisecond, func() error {
		ip := f.resource(t, "ip")
		if ip.Status.State != wp.ResourceOffline || ip.Status.Node != "" {
			return fmt.Errorf("the refused ip resource is %s on %q", ip.Status.State, ip.Status.Node)
		}
		for _, n := range []string{f.a, f.b} {
			if held := f.kubelet.Addresses(n); len(held) > 0 {
				return fmt.Errorf("node %s holds %v", n, held)
			}
		}
		return nil
	})

	// Allowed: the group comes online with its address.
	f.setAllowedCIDRs(t, "198.51.100.0/24", "192.0.2.48/28")
	f.waitOnline(t, f.a)
	want := netip.MustParsePrefix("192.0.2.50/24")
	eventually(t, "node a holding "+want.String(), func() error {
		if held := f.kubelet.Addresses(f.a); len(held) != 1 || held[0] != want {
			return fmt.Errorf("node %s holds %v", f.a, held)
		}
		return nil
	})

	// Refused again: taken offline, and its node removes it.
	f.setAllowedCIDRs(t, "198.51.100.0/24")
	f.expectIPRefused(t, "lies outside spec.allowedAddressCIDRs [198.51.100.0/24] of QuorumDisk "+f.cluster)
	eventually(t, "the refused address removed", func() error {
		ip := f.resource(t, "ip")
		if ip.Status.State != wp.ResourceOffline {
			return fmt.Errorf("the ip resource is %s on %q", ip.Status.State, ip.Status.Node)
		}
		if held := f.kubelet.Addresses(f.a); len(held) > 0 {
			return fmt.Errorf("node %s still holds %v", f.a, held)
		}
		return nil
	})
}

func (f *fixture) setAllowedCIDRs(t *testing.T, cidrs ...string) {
	t.Helper()
	qd := &wp.QuorumDisk{}
	must(t, k8sClient.Get(context.Background(), client.ObjectKey{Name: f.cluster}, qd))
	patch := client.MergeFrom(qd.DeepCopy())
	qd.Spec.AllowedAddressCIDRs = cidrs
	must(t, k8sClient.Patch(context.Background(), qd, patch))
}

func (f *fixture) resource(t *testing.T, name string) *wp.Resource {
	t.Helper()
	r := &wp.Resource{}
	must(t, k8sClient.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, r))
	return r
}

// expectIPRefused waits for the ip resource's Valid condition to be False for its address, with
// a message containing msg.
func (f *fixture) expectIPRefused(t *testing.T, msg string) {
	t.Helper()
	eventually(t, "the ip resource refused", func() error {
		c := meta.FindStatusCondition(f.resource(t, "ip").Status.Conditions, wp.ValidCondition)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != wp.AddressNotAllowedReason || !strings.Contains(c.Message, msg) {
			return fmt.Errorf("Valid condition %+v, want False %s %q", c, wp.AddressNotAllowedReason, msg)
		}
		return nil
	})
}
