package v1alpha1

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCheckAddress(t *testing.T) {
	t.Parallel()
	qd := func(cidrs ...string) *QuorumDisk {
		return &QuorumDisk{ObjectMeta: metav1.ObjectMeta{Name: "demo"}, Spec: QuorumDiskSpec{AllowedAddressCIDRs: cidrs}}
	}
	for _, tc := range []struct {
		name    string
		qd      *QuorumDisk
		address string
		refused string // a part of the error; empty when allowed
	}{
		{"no restriction", qd(), "10.0.0.1", ""},
		{"no restriction, even a bad address", qd(), "nonsense", ""},
		{"inside the only CIDR", qd("192.0.2.48/28"), "192.0.2.50", ""},
		{"the CIDR's first address", qd("192.0.2.48/28"), "192.0.2.48", ""},
		{"the CIDR's last address", qd("192.0.2.48/28"), "192.0.2.63", ""},
		{"just past it", qd("192.0.2.48/28"), "192.0.2.64",
			"spec.ipAddress.address 192.0.2.64 lies outside spec.allowedAddressCIDRs [192.0.2.48/28] of QuorumDisk demo"},
		{"the gateway", qd("192.0.2.48/28", "fd00:50::/64"), "192.0.2.1",
			"outside spec.allowedAddressCIDRs [192.0.2.48/28, fd00:50::/64]"},
		{"in the second CIDR", qd("192.0.2.48/28", "fd00:50::/64"), "fd00:50::7", ""},
		{"an IPv6 address against an IPv4 CIDR", qd("10.0.0.0/8"), "fd00::1", "lies outside"},
		{"an IPv4-mapped IPv6 address is not IPv4", qd("10.0.0.0/8"), "::ffff:10.0.0.1", "lies outside"},
		{"a bad entry allows nothing", qd("10.0.0.0/33"), "10.0.0.1", "lies outside"},
		{"a bad address", qd("10.0.0.0/8"), "10.0.0", "is not an IP address"},
	} {
		err := tc.qd.CheckAddress(tc.address)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s: %v, want allowed", tc.name, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.refused)
		}
	}
}
