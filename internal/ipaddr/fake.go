package ipaddr

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
)

// Op is what a Fake was asked to do, or did.
type Op string

// The operations that a Fake records.
const (
	OpAdd      Op = "add"
	OpRemove   Op = "remove"
	OpAnnounce Op = "announce"
)

// Call is one operation recorded by a Fake.
type Call struct {
	Op      Op
	Address Address
}

// Fake is a Manager for unit tests: a host made of the interfaces given to SetInterface. It
// records every Add and Remove, and an announcement after each Add of an IPv4 address, as Netlink
// would send gratuitous ARP. Its errors for a missing interface and a missing network are those of
// Netlink. The zero value is a host without interfaces; a Fake is safe for concurrent use.
type Fake struct {
	mu    sync.Mutex
	links []link // in the order they were first set
	calls []Call
	errs  map[Op]error
}

var _ Manager = (*Fake)(nil)

// SetInterface creates the interface called name, or replaces its addresses, with addrs. The
// addresses of the interfaces are what InterfaceFor looks at.
func (f *Fake) SetInterface(name string, addrs ...netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := f.index(name); i >= 0 {
		f.links[i].addrs = slices.Clone(addrs)
		return
	}
	f.links = append(f.links, link{name: name, addrs: slices.Clone(addrs)})
}

// DeleteInterface removes the interface called name and its addresses, as when a NIC goes away.
func (f *Fake) DeleteInterface(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := f.index(name); i >= 0 {
		f.links = slices.Delete(f.links, i, i+1)
	}
}

// SetError makes every later call of op (OpAdd or OpRemove) fail with err, without changing the
// addresses, until it is set again to nil. The failed calls are recorded.
func (f *Fake) SetError(op Op, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errs == nil {
		f.errs = map[Op]error{}
	}
	f.errs[op] = err
}

// Calls returns what was done so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Addresses returns the addresses on the interface called name, or nil when there is none.
func (f *Fake) Addresses(name string) []netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := f.index(name); i >= 0 {
		return slices.Clone(f.links[i].addrs)
	}
	return nil
}

// Add adds a to its interface, when it is not there yet, and records an announcement of an IPv4
// address.
func (f *Fake) Add(ctx context.Context, a Address) error {
	if err := a.Validate(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Op: OpAdd, Address: a})
	if err := f.fail(ctx, OpAdd, a); err != nil {
		return err
	}
	i := f.index(a.Interface)
	if i < 0 {
		return interfaceNotFound(a.Interface, "adding "+a.Prefix.String())
	}
	if !slices.Contains(f.links[i].addrs, a.Prefix) {
		f.links[i].addrs = append(f.links[i].addrs, a.Prefix)
	}
	if a.Prefix.Addr().Is4() {
		f.calls = append(f.calls, Call{Op: OpAnnounce, Address: a})
	}
	return nil
}

// Remove removes a from its interface, if it is there.
func (f *Fake) Remove(ctx context.Context, a Address) error {
	if err := a.Validate(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Op: OpRemove, Address: a})
	if err := f.fail(ctx, OpRemove, a); err != nil {
		return err
	}
	if i := f.index(a.Interface); i >= 0 {
		f.links[i].addrs = slices.DeleteFunc(f.links[i].addrs, func(p netip.Prefix) bool { return p == a.Prefix })
	}
	return nil
}

// Present reports whether a is on its interface.
func (f *Fake) Present(a Address) (bool, error) {
	if err := a.Validate(); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.index(a.Interface)
	if i < 0 {
		return false, interfaceNotFound(a.Interface, "looking for "+a.Prefix.String())
	}
	return slices.Contains(f.links[i].addrs, a.Prefix), nil
}

// InterfaceFor returns the first interface, in the order they were set, that holds an address in
// network.
func (f *Fake) InterfaceFor(network netip.Prefix) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return interfaceFor(f.links, network)
}

// index returns the position of the interface called name in f.links, or -1.
func (f *Fake) index(name string) int {
	return slices.IndexFunc(f.links, func(l link) bool { return l.name == name })
}

// fail returns the error that op on a must fail with: ctx's or the one set with SetError.
func (f *Fake) fail(ctx context.Context, op Op, a Address) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ipaddr: %s %s: %w", op, a, err)
	}
	if err := f.errs[op]; err != nil {
		return fmt.Errorf("ipaddr: %s %s: %w", op, a, err)
	}
	return nil
}
