package agent

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/ipaddr"
	"github.com/wolfpack-ha/wolfpack/internal/test/scheme"
)

// TestFloatingAddresses: the addresses added, or found present (as a previous run of the agent
// left them), are the ones the fence path removes; one it cannot remove stays held for the next
// attempt; none is added while the node is fenced.
func TestFloatingAddresses(t *testing.T) {
	ctx := context.Background()
	host := &ipaddr.Fake{}
	added := ipaddr.Address{Interface: "eth0", Prefix: netip.MustParsePrefix("192.0.2.50/24")}
	inherited := ipaddr.Address{Interface: "eth0", Prefix: netip.MustParsePrefix("192.0.2.51/24")}
	gone := ipaddr.Address{Interface: "eth0", Prefix: netip.MustParsePrefix("192.0.2.52/24")}
	host.SetInterface("eth0", netip.MustParsePrefix("192.0.2.2/24"), inherited.Prefix)
	f := NewFloatingAddresses(host)

	if err := f.Add(ctx, added); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.Present(inherited); !ok || err != nil {
		t.Fatalf("Present(%s) = %v, %v", inherited, ok, err)
	}
	if ok, _ := f.Present(gone); ok {
		t.Fatalf("Present(%s) = true", gone)
	}
	if got := f.Held(); !slices.Equal(got, []ipaddr.Address{added, inherited}) {
		t.Fatalf("Held = %v, want %v and %v", got, added, inherited)
	}

	host.SetError(ipaddr.OpRemove, errors.New("netlink is busy"))
	if err := f.Fence(ctx); err == nil {
		t.Fatal("Fence succeeded while no address could be removed")
	}
	if got := f.Held(); len(got) != 2 {
		t.Fatalf("Held after a failed Fence = %v, want both still held", got)
	}
	if err := f.Add(ctx, gone); !errors.Is(err, ErrFenced) {
		t.Fatalf("Add while fenced = %v, want ErrFenced", err)
	}
	host.SetError(ipaddr.OpRemove, nil)
	if err := f.Fence(ctx); err != nil {
		t.Fatal(err)
	}
	if got := host.Addresses("eth0"); !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}) {
		t.Fatalf("eth0 holds %v after Fence, want only the node's own address", got)
	}
	if got := f.Held(); len(got) != 0 {
		t.Fatalf("Held after Fence = %v", got)
	}
	f.Unfence()
	if err := f.Add(ctx, added); err != nil {
		t.Fatalf("Add after Unfence: %v", err)
	}
	if err := f.Remove(ctx, added); err != nil || len(f.Held()) != 0 {
		t.Fatalf("Remove: %v; held %v", err, f.Held())
	}
}

// TestRefusedAddressIsNotAdded: a floating address outside the cluster's allowedAddressCIDRs is
// not added by the node even when the resource is placed there (an address edited on an Online
// resource, before the manager has refused it), and one the node holds is removed; an allowed one
// is added.
func TestRefusedAddressIsNotAdded(t *testing.T) {
	qd := &wolfpackv1alpha1.QuorumDisk{ObjectMeta: metav1.ObjectMeta{Name: "demo"},
		Spec: wolfpackv1alpha1.QuorumDiskSpec{AllowedAddressCIDRs: []string{"10.0.0.0/24"}}}
	for _, tc := range []struct {
		address   string
		held, add bool
	}{
		{"10.0.0.50", false, true},
		{"192.0.2.50", false, false},
		{"192.0.2.50", true, false},
	} {
		res := &wolfpackv1alpha1.Resource{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ip"},
			Spec:   wolfpackv1alpha1.ResourceSpec{IPAddress: &wolfpackv1alpha1.IPAddressResource{Address: tc.address, Interface: "eth0"}},
			Status: wolfpackv1alpha1.ResourceStatus{Node: "b", State: wolfpackv1alpha1.ResourceOnline}}
		addrs := &ipaddr.Fake{}
		local := netip.MustParsePrefix("10.0.0.2/24")
		prefixes := []netip.Prefix{local}
		if tc.held {
			prefixes = append(prefixes, netip.PrefixFrom(netip.MustParseAddr(tc.address), 32))
		}
		addrs.SetInterface("eth0", prefixes...)
		r := &Resources{Client: fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(qd, res).Build(),
			Recorder: &events.FakeRecorder{}, Clock: clocktesting.NewFakeClock(time.Now()), Node: "b", Cluster: "demo",
			Addresses: addrs, DefaultInterface: func() string { return "eth0" }}
		_ = r.address(context.Background(), res) // the status write is not what is checked here
		var added, removed bool
		for _, c := range addrs.Calls() {
			added = added || c.Op == ipaddr.OpAdd
			removed = removed || c.Op == ipaddr.OpRemove
		}
		if added != tc.add {
			t.Errorf("%s (held %v): added %v, want %v (calls %v)", tc.address, tc.held, added, tc.add, addrs.Calls())
		}
		if tc.held && !removed {
			t.Errorf("%s held: not removed (calls %v)", tc.address, addrs.Calls())
		}
	}
}
