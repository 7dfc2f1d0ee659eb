package ipaddr

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
)

func TestAddressValidate(t *testing.T) {
	cases := []struct {
		name    string
		a       Address
		wantErr string // a part of the error; empty for none
	}{
		{name: "IPv4", a: Address{Interface: "eth0", Prefix: netip.MustParsePrefix("192.0.2.10/24")}},
		{name: "IPv4 host route", a: Address{Interface: "eth0", Prefix: netip.MustParsePrefix("192.0.2.10/32")}},
		{name: "IPv6", a: Address{Interface: "eth0", Prefix: netip.MustParsePrefix("2001:db8::10/64")}},
		{name: "no interface", a: Address{Prefix: netip.MustParsePrefix("192.0.2.10/24")}, wantErr: "192.0.2.10/24: no interface"},
		{name: "no prefix", a: Address{Interface: "eth0"}, wantErr: `invalid prefix invalid Prefix on "eth0"`},
		{name: "IPv4-mapped", a: Address{Interface: "eth0", Prefix: netip.MustParsePrefix("::ffff:192.0.2.10/120")}, wantErr: "IPv4-mapped"},
		{name: "unspecified", a: Address{Interface: "eth0", Prefix: netip.MustParsePrefix("0.0.0.0/0")}, wantErr: "not a unicast address"},
		{name: "multicast", a: Address{Interface: "eth0", Prefix: netip.MustParsePrefix("ff02::1/128")}, wantErr: "not a unicast address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.a.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestAddressString(t *testing.T) {
	a := Address{Interface: "eth0", Prefix: netip.MustParsePrefix("192.0.2.10/24")}
	if got, want := a.String(), "192.0.2.10/24 on eth0"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

func TestErrors(t *testing.T) {
	err := interfaceNotFound("eth9", "adding 192.0.2.10/24")
	if got, want := err.Error(), `ipaddr: interface "eth9" not found (adding 192.0.2.10/24)`; got != want {
		t.Errorf("interfaceNotFound = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrInterfaceNotFound) {
		t.Errorf("interfaceNotFound does not match ErrInterfaceNotFound")
	}
	err = noInterface(netip.MustParsePrefix("192.0.2.7/24"))
	if got, want := err.Error(), "ipaddr: 192.0.2.0/24: no interface holds an address in the network"; got != want {
		t.Errorf("noInterface = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrNoInterface) {
		t.Errorf("noInterface does not match ErrNoInterface")
	}
}

func TestInterfaceFor(t *testing.T) {
	links := []link{
		{name: "lo", addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")}},
		{name: "eth0", addrs: []netip.Prefix{netip.MustParsePrefix("10.1.0.5/16"), netip.MustParsePrefix("fe80::1/64")}},
		{name: "eth1", addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.5/24"), netip.MustParsePrefix("2001:db8::5/64")}},
		{name: "eth2"},
		{name: "eth3", addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.6/24")}},
	}
	cases := []struct {
		name    string
		network string
		want    string // empty when none is found
	}{
		{name: "IPv4 network", network: "192.0.2.0/24", want: "eth1"},
		{name: "not masked", network: "192.0.2.77/24", want: "eth1"},
		{name: "wider than the interface's", network: "10.0.0.0/8", want: "eth0"},
		{name: "narrower than the interface's", network: "10.1.0.0/24", want: "eth0"},
		{name: "IPv6 network", network: "2001:db8::/64", want: "eth1"},
		{name: "a single host", network: "192.0.2.6/32", want: "eth3"},
		{name: "no such network", network: "198.51.100.0/24"},
		{name: "the other family", network: "::ffff:0:0/96"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := interfaceFor(links, netip.MustParsePrefix(tc.network))
			if tc.want == "" {
				if !errors.Is(err, ErrNoInterface) {
					t.Fatalf("interfaceFor(%s) = %q, %v; want ErrNoInterface", tc.network, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("interfaceFor(%s) = %q, %v; want %q", tc.network, got, err, tc.want)
			}
		})
	}
	if _, err := interfaceFor(links, netip.Prefix{}); err == nil || errors.Is(err, ErrNoInterface) {
		t.Errorf("interfaceFor(invalid) = %v, want an error about the network", err)
	}
}

func TestHostLinks(t *testing.T) {
	links := []netlink.Link{
		&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: 3, Name: "eth1"}},
		&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1, Name: "lo"}},
		&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 2, Name: "eth0"}},
	}
	addrs := []netlink.Addr{
		{LinkIndex: 3, IPNet: ToNetlink(netip.MustParsePrefix("192.0.2.5/24")).IPNet},
		{LinkIndex: 1, IPNet: ToNetlink(netip.MustParsePrefix("127.0.0.1/8")).IPNet},
		{LinkIndex: 3, IPNet: ToNetlink(netip.MustParsePrefix("2001:db8::5/64")).IPNet},
		{LinkIndex: 9, IPNet: ToNetlink(netip.MustParsePrefix("198.51.100.1/24")).IPNet}, // a link that went away
		{LinkIndex: 2},
	}
	got := hostLinks(links, addrs)
	want := []link{
		{name: "lo", addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
		{name: "eth0"},
		{name: "eth1", addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.5/24"), netip.MustParsePrefix("2001:db8::5/64")}},
	}
	if !slices.EqualFunc(got, want, func(x, y link) bool { return x.name == y.name && slices.Equal(x.addrs, y.addrs) }) {
		t.Fatalf("hostLinks() = %v, want %v", got, want)
	}
}

func TestOptionsWithDefaults(t *testing.T) {
	cases := []struct {
		name string
		in   Options
		want Options
	}{
		{name: "zero", in: Options{}, want: Options{ARPCount: DefaultARPCount, ARPInterval: DefaultARPInterval}},
		{name: "set", in: Options{ARPCount: 2, ARPInterval: time.Second}, want: Options{ARPCount: 2, ARPInterval: time.Second}},
		{name: "none", in: Options{ARPCount: -1}, want: Options{ARPCount: 0, ARPInterval: DefaultARPInterval}},
		{name: "negative interval", in: Options{ARPCount: 1, ARPInterval: -time.Second}, want: Options{ARPCount: 1, ARPInterval: DefaultARPInterval}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.withDefaults(); got != tc.want {
				t.Fatalf("%+v.withDefaults() = %+v, want %+v", tc.in, got, tc.want)
			}
			if got := NewNetlink(tc.in).opts; got != tc.want {
				t.Fatalf("NewNetlink(%+v).opts = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestNetlinkConversions(t *testing.T) {
	cases := []struct {
		name string
		in   *net.IPNet
		want string // empty when the conversion fails
	}{
		{name: "IPv4", in: &net.IPNet{IP: net.IPv4(192, 0, 2, 10).To4(), Mask: net.CIDRMask(24, 32)}, want: "192.0.2.10/24"},
		{name: "IPv4 in 16 bytes", in: &net.IPNet{IP: net.IPv4(192, 0, 2, 10), Mask: net.CIDRMask(24, 32)}, want: "192.0.2.10/24"},
		{name: "IPv4 with a 128-bit mask", in: &net.IPNet{IP: net.IPv4(192, 0, 2, 10), Mask: net.CIDRMask(120, 128)}, want: "192.0.2.10/24"},
		{name: "IPv6", in: &net.IPNet{IP: net.ParseIP("2001:db8::10"), Mask: net.CIDRMask(64, 128)}, want: "2001:db8::10/64"},
		{name: "IPv6 with a 32-bit mask", in: &net.IPNet{IP: net.ParseIP("2001:db8::10"), Mask: net.CIDRMask(24, 32)}},
		{name: "not a prefix", in: &net.IPNet{IP: net.IPv4(192, 0, 2, 10).To4(), Mask: net.IPv4Mask(255, 0, 255, 0)}},
		{name: "no address", in: &net.IPNet{Mask: net.CIDRMask(24, 32)}},
		{name: "nil", in: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := FromNetlink(tc.in)
			if tc.want == "" {
				if ok {
					t.Fatalf("FromNetlink(%v) = %v, want a failure", tc.in, got)
				}
				return
			}
			if !ok || got.String() != tc.want {
				t.Fatalf("FromNetlink(%v) = %v, %v; want %s", tc.in, got, ok, tc.want)
			}
			if back, ok := FromNetlink(ToNetlink(got).IPNet); !ok || back != got {
				t.Fatalf("FromNetlink(ToNetlink(%v)) = %v, %v", got, back, ok)
			}
		})
	}
}

func TestUsesARP(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	cases := []struct {
		name  string
		attrs netlink.LinkAttrs
		want  bool
	}{
		{name: "Ethernet", attrs: netlink.LinkAttrs{HardwareAddr: mac, Flags: net.FlagUp | net.FlagBroadcast}, want: true},
		{name: "loopback", attrs: netlink.LinkAttrs{HardwareAddr: make(net.HardwareAddr, 6), Flags: net.FlagUp | net.FlagLoopback}},
		{name: "NOARP", attrs: netlink.LinkAttrs{HardwareAddr: mac, RawFlags: syscall.IFF_NOARP}},
		{name: "no hardware address", attrs: netlink.LinkAttrs{Flags: net.FlagUp | net.FlagPointToPoint}},
		{name: "InfiniBand", attrs: netlink.LinkAttrs{HardwareAddr: make(net.HardwareAddr, 20)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := usesARP(&tc.attrs); got != tc.want {
				t.Fatalf("usesARP() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGratuitousARP(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	ip := netip.MustParseAddr("192.0.2.10")
	p, err := gratuitousARP(mac, ip)
	if err != nil {
		t.Fatal(err)
	}
	want := arp.Packet{
		HardwareType: 1, ProtocolType: 0x0800, HardwareAddrLength: 6, IPLength: 4,
		Operation:          arp.OperationRequest,
		SenderHardwareAddr: mac, SenderIP: ip,
		TargetHardwareAddr: make(net.HardwareAddr, 6), TargetIP: ip,
	}
	if !reflect.DeepEqual(*p, want) {
		t.Fatalf("gratuitousARP() = %+v, want %+v", *p, want)
	}
	if _, err := gratuitousARP(mac, netip.MustParseAddr("2001:db8::10")); err == nil {
		t.Fatal("gratuitousARP(IPv6) succeeded, want an error")
	}
}
