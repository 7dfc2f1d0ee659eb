package agent

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/ipaddr"
	"github.com/wolfpack-ha/wolfpack/internal/monitor"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
)

func ipResource(node string, state wp.ResourceState, conds ...metav1.Condition) *wp.Resource {
	return builder.Resource("ns", "ip").IPAddress("192.0.2.50").PrefixLength(24).Node(node).State(state).Conditions(conds...).Obj()
}

func assigned(status metav1.ConditionStatus, reason string) metav1.Condition {
	return metav1.Condition{Type: wp.AddressAssignedCondition, Status: status, Reason: reason}
}

func TestAddressWantedAndReported(t *testing.T) {
	cases := []struct {
		name     string
		res      *wp.Resource
		wanted   bool
		reported bool // whether the condition already tells the truth about "held == wanted"
	}{
		{"coming online here", ipResource("a", wp.ResourceOnlinePending), true, false},
		{"online here and reported", ipResource("a", wp.ResourceOnline, assigned(metav1.ConditionTrue, wp.AddressAddedReason)), true, true},
		{"online here after a failure to add", ipResource("a", wp.ResourceOnlinePending, assigned(metav1.ConditionFalse, wp.AddressFailedReason)), true, false},
		{"going offline here", ipResource("a", wp.ResourceOfflinePending, assigned(metav1.ConditionTrue, wp.AddressAddedReason)), false, false},
		{"offline, removal reported", ipResource("a", wp.ResourceOfflinePending, assigned(metav1.ConditionFalse, wp.AddressRemovedReason)), false, true},
		{"placed on another node", ipResource("b", wp.ResourceOnline), false, true},
		{"failed here", ipResource("a", wp.ResourceFailed), false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := AddressWanted(tc.res, "a"); got != tc.wanted {
				t.Errorf("AddressWanted = %v, want %v", got, tc.wanted)
			}
			if got := AddressReported(tc.res, tc.wanted); got != tc.reported {
				t.Errorf("AddressReported(%v) = %v, want %v", tc.wanted, got, tc.reported)
			}
		})
	}
}

func TestAddressOf(t *testing.T) {
	res := ipResource("a", wp.ResourceOnline)
	a, err := AddressOf(res, "eth0")
	if err != nil || a != (ipaddr.Address{Interface: "eth0", Prefix: netip.MustParsePrefix("192.0.2.50/24")}) {
		t.Errorf("AddressOf = %v, %v; want 192.0.2.50/24 on eth0", a, err)
	}
	res.Spec.IPAddress.Interface = "bond0"
	res.Spec.IPAddress.PrefixLength = nil
	if a, err := AddressOf(res, "eth0"); err != nil || a.Interface != "bond0" || a.Prefix.Bits() != 32 {
		t.Errorf("AddressOf with an interface = %v, %v; want 192.0.2.50/32 on bond0", a, err)
	}
	res.Spec.IPAddress.Address = "fd00::50"
	if a, err := AddressOf(res, "eth0"); err != nil || a.Prefix != netip.MustParsePrefix("fd00::50/128") {
		t.Errorf("AddressOf an IPv6 address = %v, %v; want fd00::50/128, a host address", a, err)
	}
	res.Spec.IPAddress.Interface = ""
	if _, err := AddressOf(res, ""); err == nil || !strings.Contains(err.Error(), "spec.ipAddress.interface") {
		t.Errorf("AddressOf without any interface = %v, want an error naming spec.ipAddress.interface", err)
	}
}

func TestAddressCondition(t *testing.T) {
	a := ipaddr.Address{Interface: "eth0", Prefix: netip.MustParsePrefix("192.0.2.50/24")}
	for _, tc := range []struct {
		held   bool
		err    error
		status metav1.ConditionStatus
		reason string
		msg    string
	}{
		{true, nil, metav1.ConditionTrue, wp.AddressAddedReason, "node a holds 192.0.2.50/24"},
		{false, nil, metav1.ConditionFalse, wp.AddressRemovedReason, "node a removed"},
		{false, errors.New(`interface "eth0" not found`), metav1.ConditionFalse, wp.AddressFailedReason, `could not add 192.0.2.50/24 on eth0: interface "eth0" not found`},
	} {
		c := AddressCondition(a, "a", tc.held, tc.err)
		if c.Type != wp.AddressAssignedCondition || c.Status != tc.status || c.Reason != tc.reason || !strings.Contains(c.Message, tc.msg) {
			t.Errorf("AddressCondition(%v, %v) = %+v", tc.held, tc.err, c)
		}
	}
}

func TestChecksFor(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "db-0"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db"}, {Name: "sidecar"}}},
		Status: corev1.PodStatus{PodIP: "10.244.0.7", ContainerStatuses: []corev1.ContainerStatus{
			{Name: "db", ContainerID: "containerd://abc123"}, {Name: "sidecar", ContainerID: "containerd://def456"}}},
	}
	workload := &wp.WorkloadResource{}
	cases := []struct {
		name  string
		res   wp.ResourceSpec
		pod   *corev1.Pod
		want  []string // per check: kind, interval and target
		error string
	}{
		{name: "none", res: wp.ResourceSpec{Workload: workload}},
		{
			name: "tcp on the pod's IP and exec in the first container",
			res: wp.ResourceSpec{Workload: workload, HealthChecks: &wp.HealthChecks{
				LooksAlive: &wp.HealthCheck{TCPSocket: &wp.TCPSocketCheck{Port: 5432}},
				IsAlive:    &wp.HealthCheck{Exec: &wp.ExecCheck{Command: []string{"pg_isready"}}, Timeout: &metav1.Duration{Duration: 2 * time.Second}},
			}},
			pod:  pod,
			want: []string{"looksAlive 5s tcp 10.244.0.7:5432 5s", "isAlive 1m0s exec abc123 [pg_isready] 2s"},
		},
		{
			name: "exec in a named container, http with its own host",
			res: wp.ResourceSpec{Workload: workload, LooksAlivePollInterval: &metav1.Duration{Duration: time.Second}, HealthChecks: &wp.HealthChecks{
				LooksAlive: &wp.HealthCheck{HTTPGet: &wp.HTTPGetCheck{Host: "127.0.0.1", Port: 8080, Path: "/healthz", Scheme: "HTTPS"}},
				IsAlive:    &wp.HealthCheck{Exec: &wp.ExecCheck{Container: "sidecar", Command: []string{"true"}}},
			}},
			pod:  pod,
			want: []string{"looksAlive 1s http https://127.0.0.1:8080/healthz 5s", "isAlive 1m0s exec def456 [true] 5s"},
		},
		{
			name: "an ipAddress resource is checked at its address",
			res: wp.ResourceSpec{IPAddress: &wp.IPAddressResource{Address: "192.0.2.50"}, HealthChecks: &wp.HealthChecks{
				LooksAlive: &wp.HealthCheck{TCPSocket: &wp.TCPSocketCheck{Port: 22}}}},
			want: []string{"looksAlive 5s tcp 192.0.2.50:22 5s"},
		},
		{
			name: "a volume resource must name its host",
			res: wp.ResourceSpec{Volume: &wp.VolumeResource{}, HealthChecks: &wp.HealthChecks{
				IsAlive: &wp.HealthCheck{TCPSocket: &wp.TCPSocketCheck{Port: 22}}}},
			error: "spec.healthChecks.isAlive.tcpSocket.host of Resource ns/r: must be set",
		},
		{
			name: "no pod yet",
			res: wp.ResourceSpec{Workload: workload, HealthChecks: &wp.HealthChecks{
				LooksAlive: &wp.HealthCheck{Exec: &wp.ExecCheck{Command: []string{"true"}}}}},
			error: "spec.healthChecks.looksAlive.exec of Resource ns/r: no running pod on this node",
		},
		{
			name: "a container that is not running",
			res: wp.ResourceSpec{Workload: workload, HealthChecks: &wp.HealthChecks{
				LooksAlive: &wp.HealthCheck{Exec: &wp.ExecCheck{Container: "nope", Command: []string{"true"}}}}},
			pod:   pod,
			error: `container "nope" of pod db-0 is not running`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := builder.Resource("ns", "r").Obj()
			res.Spec = tc.res
			got, err := ChecksFor(res, tc.pod)
			if tc.error != "" {
				if err == nil || !strings.Contains(err.Error(), tc.error) {
					t.Fatalf("ChecksFor error = %v, want %q", err, tc.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("ChecksFor = %+v, want %v", got, tc.want)
			}
			for i, s := range got {
				if d := describe(s); d != tc.want[i] {
					t.Errorf("check %d = %q, want %q", i, d, tc.want[i])
				}
				if err := s.Check.Validate(); err != nil {
					t.Errorf("check %d does not validate: %v", i, err)
				}
				if !strings.HasPrefix(s.Check.Key, "ns/r/") {
					t.Errorf("check key %q", s.Check.Key)
				}
			}
		})
	}
}

func describe(s Scheduled) string {
	c := s.Check
	var target string
	switch {
	case c.TCP != nil:
		target = "tcp " + c.TCP.Host + ":" + strconv.Itoa(c.TCP.Port)
	case c.HTTP != nil:
		target = "http " + c.HTTP.Scheme + "://" + c.HTTP.Host + ":" + strconv.Itoa(c.HTTP.Port) + c.HTTP.Path
	case c.Exec != nil:
		target = "exec " + c.Exec.ContainerID + " [" + strings.Join(c.Exec.Command, " ") + "]"
	}
	return string(s.Kind) + " " + s.Interval.String() + " " + target + " " + c.Timeout.String()
}

func TestMonitorCondition(t *testing.T) {
	for _, tc := range []struct {
		kind   Kind
		reason monitor.Reason
		status metav1.ConditionStatus
		want   string
		write  bool
	}{
		{LooksAlive, monitor.Passed, metav1.ConditionTrue, wp.ChecksPassedReason, true},
		{LooksAlive, monitor.Failed, metav1.ConditionFalse, wp.LooksAliveFailedReason, true},
		{IsAlive, monitor.Failed, metav1.ConditionFalse, wp.IsAliveFailedReason, true},
		{IsAlive, monitor.TimedOut, metav1.ConditionFalse, wp.CheckTimedOutReason, true},
		{LooksAlive, monitor.MonitorCrashed, metav1.ConditionFalse, wp.MonitorFailedReason, true},
		{LooksAlive, monitor.MonitorHung, metav1.ConditionFalse, wp.MonitorFailedReason, true},
		{LooksAlive, monitor.Canceled, "", "", false},
		{LooksAlive, monitor.Invalid, "", "", false},
	} {
		c, ok := MonitorCondition(tc.kind, monitor.Result{Reason: tc.reason, Message: "connection refused"}, "a")
		if ok != tc.write {
			t.Errorf("%s %s: write = %v, want %v", tc.kind, tc.reason, ok, tc.write)
			continue
		}
		if ok && (c.Status != tc.status || c.Reason != tc.want || c.Message != string(tc.kind)+" check on node a: connection refused") {
			t.Errorf("%s %s: condition %+v", tc.kind, tc.reason, c)
		}
	}
	long, _ := MonitorCondition(LooksAlive, monitor.Result{Reason: monitor.Failed, Message: strings.Repeat("x", 2000)}, "a")
	if len(long.Message) > 1024 {
		t.Errorf("message of %d bytes, want at most 1024", len(long.Message))
	}
}

// TestMustFail is the matrix of RULES F1 (quorum, from mutual hearing) and F2 (API loss, with its
// one exception: full mutual connectivity), for node b.
func TestMustFail(t *testing.T) {
	lease := 9 * time.Second // renew deadline 6s
	late := 6*time.Second + time.Millisecond
	cluster := func(typ wp.QuorumType, owner string, members ...string) *wp.QuorumDisk {
		qd := builder.QuorumDisk("demo").QuorumType(typ).Owner(owner).Obj()
		for _, n := range members {
			qd.Status.Nodes = append(qd.Status.Nodes, wp.NodeStatus{Name: n})
		}
		return qd
	}
	hears := func(peers ...string) map[string][]string {
		m := map[string][]string{}
		for _, p := range peers {
			m[p] = []string{"public"}
		}
		return m
	}
	heardBy := func(peers ...string) map[string]bool {
		m := map[string]bool{}
		for _, p := range peers {
			m[p] = true
		}
		return m
	}
	two := cluster(wp.DiskOnly, "a", "a", "b")
	cases := []struct {
		name      string
		unrenewed time.Duration
		joined    bool
		reachable map[string][]string
		heardBy   map[string]bool
		qd        *wp.QuorumDisk
		want      string // the reason, "" for no
	}{
		{"renewed and hearing the owner both ways", time.Second, true, hears("a"), heardBy("a"), two, ""},

		// F2: API loss.
		{"renew deadline passed, cluster never read", late, true, hears("a"), heardBy("a"), nil, "past the renew deadline 6s"},
		{"renew deadline passed, not joined", late, false, hears("a"), heardBy("a"), two, "past the renew deadline"},
		{"renew deadline passed even as the owner, hearing nobody", 7 * time.Second, true, nil, nil, cluster(wp.DiskOnly, "b", "a", "b"), "past the renew deadline"},
		{"API loss with full mutual connectivity keeps running", late, true, hears("a"), heardBy("a"), two, ""},
		{"API loss with full mutual connectivity, long after", time.Hour, true, hears("a"), heardBy("a"), two, ""},
		{"API loss, one-way: b hears a, a does not hear b", late, true, hears("a"), nil, cluster(wp.DiskOnly, "b", "a", "b"), "past the renew deadline"},
		{"API loss, one-way: a hears b, b does not hear a", late, true, nil, heardBy("a"), cluster(wp.DiskOnly, "b", "a", "b"), "past the renew deadline"},
		{"API loss, mutual with a but not with c", late, true, hears("a", "c"), heardBy("a"), cluster(wp.NodeMajority, "", "a", "b", "c"), "past the renew deadline"},
		{"API loss, mutual with every other member of three", late, true, hears("a", "c"), heardBy("a", "c"), cluster(wp.NodeMajority, "", "a", "b", "c"), ""},
		{"API loss, alone in a one-node cluster: no peer vouches for it", late, true, nil, nil, cluster(wp.DiskOnly, "b", "b"), "past the renew deadline"},
		{"API loss, members unknown", late, true, hears("a"), heardBy("a"), cluster(wp.DiskOnly, "a"), "past the renew deadline"},

		// F1: quorum, once joined, from mutual hearing.
		{"DiskOnly, does not hear the owner", time.Second, true, nil, nil, two, "owned by a, which it does not hear"},
		{"DiskOnly, one-way loss: b hears the owner, the owner does not hear b", time.Second, true, hears("a"), nil, two, "owned by a, which it does not hear"},
		{"DiskOnly, one-way loss: the owner hears b, b does not hear it", time.Second, true, nil, heardBy("a"), two, "owned by a, which it does not hear"},
		{"DiskOnly, is the owner", time.Second, true, nil, nil, cluster(wp.DiskOnly, "b", "a", "b"), ""},
		{"DiskOnly, nobody owns the disk yet", time.Second, true, nil, nil, cluster(wp.DiskOnly, "", "a", "b"), ""},
		{"not joined: too early to tell", time.Second, false, nil, nil, two, ""},
		{"cluster never read, Lease renewed", time.Second, true, nil, nil, nil, ""},
		{"NodeMajority, alone of three", time.Second, true, nil, nil, cluster(wp.NodeMajority, "", "a", "b", "c"), "1 of 3 node votes"},
		{"NodeMajority, two of three", time.Second, true, hears("c"), heardBy("c"), cluster(wp.NodeMajority, "", "a", "b", "c"), ""},
		{"NodeMajority, hears c one way only", time.Second, true, hears("c"), nil, cluster(wp.NodeMajority, "", "a", "b", "c"), "1 of 3 node votes"},
		{"heard-by without hearing is no side", time.Second, true, nil, heardBy("c"), cluster(wp.NodeMajority, "", "a", "b", "c"), "1 of 3 node votes"},
		{"full mutual connectivity but no quorum: F1 still applies", late, true, hears("a"), heardBy("a"), cluster(wp.DiskOnly, "x", "a", "b"), "owned by x"},

		// A restarted agent counts as unrenewed since its start.
		{"restarted, renews within the deadline of its start", 5 * time.Second, false, nil, nil, two, ""},
		{"restarted, cannot renew, full mutual connectivity", late, true, hears("a"), heardBy("a"), two, ""},
		{"restarted, cannot renew, still listening", late, false, hears("a"), heardBy("a"), two, "past the renew deadline"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The owner, where it is not heard, was lost long ago: the arbitration for the disk is over.
			got, why := MustFail(Evidence{Node: "b", Unrenewed: tc.unrenewed, LeaseDuration: lease, Joined: tc.joined,
				Reachable: tc.reachable, HeardBy: tc.heardBy, Cluster: tc.qd, OwnerUnheard: time.Hour, Arbitration: 15 * time.Second})
			if got != (tc.want != "") || !strings.Contains(why, tc.want) {
				t.Errorf("MustFail = %v (%q), want %q", got, why, tc.want)
			}
		})
	}
}

// TestMustFailWaitsForTheDisk: under DiskOnly, a node that stops hearing the quorum disk's owner
// does not fail itself at once: like MSCS's challenger, it first gives its quorum holder the time
// to take the disk over (the owner may have crashed, or its agent hung and its holder let the
// disk go); it fails itself only if the disk is not its own by then. A node whose holder holds
// the disk has quorum whatever the cluster's status says. F2 is not affected.
func TestMustFailWaitsForTheDisk(t *testing.T) {
	qd := builder.QuorumDisk("demo").QuorumType(wp.DiskOnly).Owner("a").Obj()
	qd.Status.Nodes = []wp.NodeStatus{{Name: "a"}, {Name: "b"}}
	arbitration := ArbitrationWait(wp.DefaultLeaseDuration)
	for _, tc := range []struct {
		name         string
		ownerUnheard time.Duration
		holds        bool
		unrenewed    time.Duration
		want         string
	}{
		{"the owner just went silent", 2 * time.Second, false, time.Second, ""},
		{"just before the arbitration ends", arbitration - time.Millisecond, false, time.Second, ""},
		{"the arbitration is over, the disk is not ours", arbitration + time.Millisecond, false, time.Second, "owned by a, which it does not hear"},
		{"the disk is ours: quorum", time.Hour, true, time.Second, ""},
		{"waiting, but the API is lost too: F2", 2 * time.Second, false, 7 * time.Second, "past the renew deadline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := MustFail(Evidence{Node: "b", Unrenewed: tc.unrenewed, LeaseDuration: wp.DefaultLeaseDuration, Joined: true,
				Cluster: qd, OwnerUnheard: tc.ownerUnheard, Arbitration: arbitration, HoldsDisk: tc.holds})
			if got != (tc.want != "") || !strings.Contains(why, tc.want) {
				t.Errorf("MustFail = %v (%q), want %q", got, why, tc.want)
			}
		})
	}
	if arbitration < 13*time.Second || arbitration > 20*time.Second {
		t.Errorf("ArbitrationWait(10s) = %s: want the disk lease's takeover time, about 15 s", arbitration)
	}
}

func TestMutual(t *testing.T) {
	got := Mutual(map[string][]string{"a": {"public"}, "c": {"public"}, "d": nil}, map[string]bool{"a": true, "b": true, "c": false, "d": true})
	if !slices.Equal(got, []string{"a"}) {
		t.Errorf("Mutual = %v, want [a]", got)
	}
}

func TestAddressIn(t *testing.T) {
	host := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.10.0.7"), netip.MustParseAddr("fd00::7")}
	for cidr, want := range map[string]string{"10.10.0.0/24": "10.10.0.7", "fd00::/64": "fd00::7", "192.0.2.0/24": "", "bad": ""} {
		got, ok := addressIn(host, cidr)
		if (want == "") == ok || (ok && got.String() != want) {
			t.Errorf("addressIn(%s) = %v, %v; want %q", cidr, got, ok, want)
		}
	}
}

func TestLeaseCovering(t *testing.T) {
	for timeout, want := range map[time.Duration]time.Duration{
		12 * time.Second: 18 * time.Second, 10 * time.Second: 15 * time.Second, 7 * time.Second: 11 * time.Second,
		40 * time.Second: time.Minute, time.Second: 2 * time.Second,
	} {
		got := LeaseCovering(timeout)
		if got != want || RenewDeadline(got) < timeout {
			t.Errorf("LeaseCovering(%s) = %s (R = %s), want %s", timeout, got, RenewDeadline(got), want)
		}
	}
	if got := FenceBudget(9 * time.Second); got != 3*time.Second {
		t.Errorf("FenceBudget(9s) = %s, want 3s", got)
	}
}
