package agent

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/wolfpack-ha/wolfpack/internal/ipaddr"
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
