package ipaddr

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
)

func TestFake(t *testing.T) {
	ctx := context.Background()
	host := netip.MustParsePrefix("192.0.2.5/24")
	v4 := Address{Interface: "eth0", Prefix: netip.MustParsePrefix("192.0.2.10/24")}
	v6 := Address{Interface: "eth0", Prefix: netip.MustParsePrefix("2001:db8::10/64")}
	missing := Address{Interface: "eth9", Prefix: netip.MustParsePrefix("192.0.2.10/24")}
	errBoom := errors.New("boom")

	// Each step runs against the Fake left by the steps before it.
	steps := []struct {
		name    string
		do      func(f *Fake) error
		wantErr error // matched with errors.Is
		present map[Address]bool
		calls   []Call // the calls recorded by this step
	}{
		{name: "add IPv4", do: func(f *Fake) error { return f.Add(ctx, v4) },
			present: map[Address]bool{v4: true, v6: false}, calls: []Call{{OpAdd, v4}, {OpAnnounce, v4}}},
		{name: "add IPv4 again", do: func(f *Fake) error { return f.Add(ctx, v4) },
			present: map[Address]bool{v4: true}, calls: []Call{{OpAdd, v4}, {OpAnnounce, v4}}},
		{name: "add IPv6, not announced", do: func(f *Fake) error { return f.Add(ctx, v6) },
			present: map[Address]bool{v4: true, v6: true}, calls: []Call{{OpAdd, v6}}},
		{name: "add on a missing interface", do: func(f *Fake) error { return f.Add(ctx, missing) },
			wantErr: ErrInterfaceNotFound, calls: []Call{{OpAdd, missing}}},
		{name: "remove IPv4", do: func(f *Fake) error { return f.Remove(ctx, v4) },
			present: map[Address]bool{v4: false, v6: true}, calls: []Call{{OpRemove, v4}}},
		{name: "remove IPv4 again", do: func(f *Fake) error { return f.Remove(ctx, v4) },
			present: map[Address]bool{v4: false}, calls: []Call{{OpRemove, v4}}},
		{name: "remove from a missing interface", do: func(f *Fake) error { return f.Remove(ctx, missing) },
			calls: []Call{{OpRemove, missing}}},
		{name: "add fails", do: func(f *Fake) error { f.SetError(OpAdd, errBoom); return f.Add(ctx, v4) },
			wantErr: errBoom, present: map[Address]bool{v4: false}, calls: []Call{{OpAdd, v4}}},
		{name: "remove fails", do: func(f *Fake) error { f.SetError(OpRemove, errBoom); return f.Remove(ctx, v6) },
			wantErr: errBoom, present: map[Address]bool{v6: true}, calls: []Call{{OpRemove, v6}}},
		{name: "errors cleared", do: func(f *Fake) error {
			f.SetError(OpAdd, nil)
			f.SetError(OpRemove, nil)
			return f.Add(ctx, v4)
		}, present: map[Address]bool{v4: true}, calls: []Call{{OpAdd, v4}, {OpAnnounce, v4}}},
		{name: "canceled", do: func(f *Fake) error {
			canceled, cancel := context.WithCancel(ctx)
			cancel()
			return f.Remove(canceled, v4)
		}, wantErr: context.Canceled, present: map[Address]bool{v4: true}, calls: []Call{{OpRemove, v4}}},
		{name: "invalid address, not recorded", do: func(f *Fake) error {
			if f.Add(ctx, Address{Interface: "eth0"}) == nil {
				return errors.New("an invalid address was added")
			}
			return nil
		}},
		{name: "the interface goes away", do: func(f *Fake) error { f.DeleteInterface("eth0"); return nil }},
	}
	f := &Fake{}
	f.SetInterface("eth0", host)
	for _, s := range steps {
		before := len(f.Calls())
		err := s.do(f)
		if s.wantErr == nil && err != nil || s.wantErr != nil && !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: error %v, want %v", s.name, err, s.wantErr)
		}
		if got := f.Calls()[before:]; !slices.Equal(got, s.calls) {
			t.Fatalf("%s: recorded %v, want %v", s.name, got, s.calls)
		}
		for a, want := range s.present {
			if got, err := f.Present(a); err != nil || got != want {
				t.Fatalf("%s: Present(%s) = %v, %v; want %v", s.name, a, got, err, want)
			}
		}
	}
	if _, err := f.Present(v4); !errors.Is(err, ErrInterfaceNotFound) {
		t.Fatalf("Present on a deleted interface: %v, want ErrInterfaceNotFound", err)
	}
}

func TestFakeInterfaces(t *testing.T) {
	var f Fake
	if _, err := f.InterfaceFor(netip.MustParsePrefix("192.0.2.0/24")); !errors.Is(err, ErrNoInterface) {
		t.Fatalf("InterfaceFor on the zero Fake: %v, want ErrNoInterface", err)
	}
	f.SetInterface("eth1", netip.MustParsePrefix("198.51.100.5/24"))
	f.SetInterface("eth0", netip.MustParsePrefix("192.0.2.5/24"))
	f.SetInterface("eth2", netip.MustParsePrefix("192.0.2.6/24"))
	if got, err := f.InterfaceFor(netip.MustParsePrefix("192.0.2.0/24")); err != nil || got != "eth0" {
		t.Fatalf("InterfaceFor = %q, %v; want eth0", got, err)
	}
	f.SetInterface("eth0") // no addresses any more
	if got, err := f.InterfaceFor(netip.MustParsePrefix("192.0.2.0/24")); err != nil || got != "eth2" {
		t.Fatalf("InterfaceFor after eth0 lost its address = %q, %v; want eth2", got, err)
	}
	if got := f.Addresses("eth1"); !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("198.51.100.5/24")}) {
		t.Fatalf("Addresses(eth1) = %v", got)
	}
	if got := f.Addresses("eth9"); got != nil {
		t.Fatalf("Addresses(eth9) = %v, want nil", got)
	}
}

// TestFakeConcurrent is meant for the race detector.
func TestFakeConcurrent(t *testing.T) {
	f := &Fake{}
	f.SetInterface("eth0")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			a := Address{Interface: "eth0", Prefix: netip.MustParsePrefix(fmt.Sprintf("192.0.2.%d/24", 10+i))}
			for range 50 {
				if err := f.Add(context.Background(), a); err != nil {
					t.Error(err)
				}
				if _, err := f.Present(a); err != nil {
					t.Error(err)
				}
				if err := f.Remove(context.Background(), a); err != nil {
					t.Error(err)
				}
				_ = f.Calls()
			}
		})
	}
	wg.Wait()
	if got, want := len(f.Calls()), 8*50*3; got != want {
		t.Fatalf("%d calls recorded, want %d", got, want)
	}
	if got := f.Addresses("eth0"); len(got) != 0 {
		t.Fatalf("addresses left: %v", got)
	}
}
