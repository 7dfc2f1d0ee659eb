package v1alpha1

import (
	"fmt"
	"net/netip"
	"strings"
)

// AddressRestricted says whether the cluster restricts floating addresses to
// spec.allowedAddressCIDRs. When it does not, any address is allowed and `kubectl cluster
// validate` should warn.
func (q *QuorumDisk) AddressRestricted() bool {
	return len(q.Spec.AllowedAddressCIDRs) > 0
}

// CheckAddress says whether a floating address may be used in the cluster: nil when it lies in
// one of spec.allowedAddressCIDRs, or when the list is empty (no restriction); otherwise an error
// that names the address, the field and the QuorumDisk. The Resource Manager refuses to place a
// Resource whose address it refuses, and a node agent refuses to add it. An address of the other
// family than a CIDR, an IPv4-mapped IPv6 address included, is not in it.
func (q *QuorumDisk) CheckAddress(address string) error {
	if !q.AddressRestricted() {
		return nil
	}
	addr, err := netip.ParseAddr(address)
	if err != nil {
		return fmt.Errorf("spec.ipAddress.address %q is not an IP address: %w", address, err)
	}
	for _, c := range q.Spec.AllowedAddressCIDRs {
		// An entry that does not parse allows nothing (the CRD refuses it anyway).
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(addr) {
			return nil
		}
	}
	return fmt.Errorf("spec.ipAddress.address %s lies outside spec.allowedAddressCIDRs [%s] of QuorumDisk %s",
		address, strings.Join(q.Spec.AllowedAddressCIDRs, ", "), q.Name)
}
