// Package agent is the node agent: MSCS's Node Manager, Cluster Network Driver and Resource
// Monitor on one node. It renews the node's Lease with what it hears, exchanges heartbeats with
// its peers, holds the floating addresses of the groups its node owns and runs their resources'
// node-local health checks. This file holds its decisions as pure functions.
package agent

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/ipaddr"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/monitor"
	"github.com/wolfpack-ha/wolfpack/internal/quorum"
)

// RenewDeadline is how long an agent may go without renewing its Lease before it fails its node:
// two thirds of the lease duration. The last third covers stopping the workloads and the clocks
// of agent and manager running at different rates (the manager times the Lease from when it saw
// the renewal, which is later than when the agent began it).
func RenewDeadline(leaseDuration time.Duration) time.Duration {
	return leaseDuration * 2 / 3
}

// FenceBudget is B(d), the time the fence path may take after the renew deadline: the last third
// of the lease duration.
func FenceBudget(leaseDuration time.Duration) time.Duration {
	return leaseDuration - RenewDeadline(leaseDuration)
}

// LeaseCovering is the shortest lease duration, in whole seconds (as a Lease publishes it), whose
// renew deadline is at least timeout: the duration an agent publishes when its watchdog resets
// the node only timeout after the last feed.
func LeaseCovering(timeout time.Duration) time.Duration {
	d := (3*timeout + 1) / 2
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return d
}

// Evidence is what an agent knows when it decides whether to fail its node.
type Evidence struct {
	// Node is the agent's node.
	Node string
	// Unrenewed is how long it is, on the agent's monotonic clock, since the start of its last
	// successful Lease write; for an agent that has not written its Lease yet, since the agent
	// started (its predecessor may have renewed just before it stopped).
	Unrenewed time.Duration
	// LeaseDuration is d, the lease duration the agent acts on (and publishes in its Lease).
	LeaseDuration time.Duration
	// Joined is true once the agent's heartbeats have listened for a whole detection period.
	Joined bool
	// Reachable are the peers the agent hears now, with the networks it hears each on
	// (heartbeat Transport.Reachable).
	Reachable map[string][]string
	// HeardBy are the peers whose latest heartbeats say that they hear this node (heartbeat
	// Transport.HeardBy).
	HeardBy map[string]bool
	// Cluster is the QuorumDisk as last read, nil when it has never been read: its member nodes
	// and the quorum disk's owner.
	Cluster *wolfpackv1alpha1.QuorumDisk
	// OwnerUnheard is how long (agent monotonic clock) the quorum disk's owner has not been heard
	// both ways; zero while it is, or when there is none. Arbitration is how long a node that does
	// not hear the owner gives its quorum holder to take the disk over (ArbitrationWait).
	OwnerUnheard, Arbitration time.Duration
	// HoldsDisk is true while this node's own quorum holder holds the disk lease, as its
	// node-local record says: evidence that needs no API server.
	HoldsDisk bool
}

// ArbitrationWait is how long a DiskOnly node that stops hearing the quorum disk's owner waits
// before it fails itself: the time its quorum holder needs to take over a disk lease of duration
// l that nobody renews any more (the owner record unchanged for L + m, a claim, the confirm delay
// W), plus two polls. MSCS's challenger likewise arbitrates for the disk before it gives up.
func ArbitrationWait(l time.Duration) time.Duration {
	t, err := quorum.LeaseConfig{LeaseDuration: l, IOTimeout: l / 10}.Timing()
	if err != nil {
		return l + l/2
	}
	return t.LeaseDuration + t.Margin + t.ConfirmDelay + 2*t.PollInterval
}

// MustFail says whether the agent of e.Node must fail its node, and why (RULES section 4), on the
// agent's monotonic clock:
//
//   - F1, quorum: once joined, when its side of the cluster, itself and the peers it hears both
//     ways (Mutual), has no quorum under the cluster's rules (membership.MustFence, the function
//     the manager applies to the same evidence).
//   - F2, API loss: when it has not renewed its Lease for longer than the renew deadline R(d),
//     unless it is joined and hears, both ways, every other member of the cluster (full mutual
//     connectivity): then every peer's view hears it, so the manager does not count it as down
//     while those views are fresh. An agent that does not know the members (never read the
//     cluster, or read no member list) or is the only member has no such exception: nobody
//     vouches for it.
func MustFail(e Evidence) (bool, string) {
	qd := e.Cluster
	mutual := Mutual(e.Reachable, e.HeardBy)
	if e.Joined && qd != nil {
		q := membership.Quorum{Type: qd.Spec.QuorumTypeOrDefault(), Owner: qd.Status.Owner,
			Members: max(len(qd.Status.Nodes), len(mutual)+1)}
		if e.HoldsDisk {
			q.Owner = e.Node
		}
		// Under DiskOnly a node that lost the owner arbitrates first: its holder may take the disk.
		arbitrating := q.Type == wolfpackv1alpha1.DiskOnly && e.OwnerUnheard < e.Arbitration
		if no, reason := membership.MustFence(e.Node, mutual, q); no && !arbitrating {
			return true, "its side of the cluster has no quorum: " + reason
		}
	}
	if e.Unrenewed <= RenewDeadline(e.LeaseDuration) {
		return false, ""
	}
	if e.Joined && fullyConnected(e.Node, mutual, qd) {
		return false, ""
	}
	return true, fmt.Sprintf("its Lease has not been renewed for %s, past the renew deadline %s, and it does not hear every other member both ways (it does: %v)",
		e.Unrenewed.Round(time.Millisecond), RenewDeadline(e.LeaseDuration), mutual)
}

// fullyConnected reports whether mutual holds every member of the cluster qd other than node, and
// there is at least one: full mutual connectivity.
func fullyConnected(node string, mutual []string, qd *wolfpackv1alpha1.QuorumDisk) bool {
	if qd == nil {
		return false
	}
	others := 0
	for _, n := range qd.Status.Nodes {
		if n.Name == node {
			continue
		}
		if !slices.Contains(mutual, n.Name) {
			return false
		}
		others++
	}
	return others > 0
}

// Mutual are the peers this node hears (reachable: heard on at least one network) that also hear
// it (heardBy), sorted: mutual(X) of RULES section 2.
func Mutual(reachable map[string][]string, heardBy map[string]bool) []string {
	out := make([]string, 0, len(reachable))
	for peer, networks := range reachable {
		if len(networks) > 0 && heardBy[peer] {
			out = append(out, peer)
		}
	}
	slices.Sort(out)
	return out
}

// addressIn is the first of addrs in cidr: this node's address on a heartbeat network.
func addressIn(addrs []netip.Addr, cidr string) (netip.Addr, bool) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		if p.Contains(a) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// placedHere reports whether the resource is coming online or online on node.
func placedHere(res *wolfpackv1alpha1.Resource, node string) bool {
	s := res.Status
	return s.Node == node && (s.State == wolfpackv1alpha1.ResourceOnlinePending || s.State == wolfpackv1alpha1.ResourceOnline)
}

// AddressWanted reports whether node must hold the resource's floating address: the resource is
// placed on node and coming online or online. In every other state, OfflinePending included, the
// address goes.
func AddressWanted(res *wolfpackv1alpha1.Resource, node string) bool {
	return res.Spec.IPAddress != nil && placedHere(res, node)
}

// AddressReported reports whether the resource's AddressAssigned condition already says what
// held means, so that nothing needs writing.
func AddressReported(res *wolfpackv1alpha1.Resource, held bool) bool {
	c := meta.FindStatusCondition(res.Status.Conditions, wolfpackv1alpha1.AddressAssignedCondition)
	if c == nil {
		return !held
	}
	return (c.Status == metav1.ConditionTrue) == held && c.Reason != wolfpackv1alpha1.AddressFailedReason
}

// AddressOf is the resource's floating address on its interface, or on defaultInterface when
// the resource names none.
func AddressOf(res *wolfpackv1alpha1.Resource, defaultInterface string) (ipaddr.Address, error) {
	ip := res.Spec.IPAddress
	addr, err := netip.ParseAddr(ip.Address)
	if err != nil {
		return ipaddr.Address{}, fmt.Errorf("spec.ipAddress.address of Resource %s/%s: %w", res.Namespace, res.Name, err)
	}
	prefix, err := addr.Prefix(int(ip.PrefixBits()))
	if err != nil {
		return ipaddr.Address{}, fmt.Errorf("spec.ipAddress.prefixLength of Resource %s/%s: %w", res.Namespace, res.Name, err)
	}
	a := ipaddr.Address{Interface: ip.Interface, Prefix: netip.PrefixFrom(addr, prefix.Bits())}
	if a.Interface == "" {
		a.Interface = defaultInterface
	}
	if a.Interface == "" {
		return ipaddr.Address{}, fmt.Errorf("resource %s/%s names no spec.ipAddress.interface and the cluster has no Public heartbeat network to take it from", res.Namespace, res.Name)
	}
	return a, nil
}

// AddressCondition is the AddressAssigned condition for the outcome of adding (held) or removing
// the address on node.
func AddressCondition(a ipaddr.Address, node string, held bool, err error) metav1.Condition {
	switch {
	case err != nil:
		return metav1.Condition{Type: wolfpackv1alpha1.AddressAssignedCondition, Status: metav1.ConditionFalse,
			Reason: wolfpackv1alpha1.AddressFailedReason, Message: fmt.Sprintf("node %s could not add %s: %v", node, a, err)}
	case held:
		return metav1.Condition{Type: wolfpackv1alpha1.AddressAssignedCondition, Status: metav1.ConditionTrue,
			Reason: wolfpackv1alpha1.AddressAddedReason, Message: fmt.Sprintf("node %s holds %s and announced it", node, a)}
	}
	return metav1.Condition{Type: wolfpackv1alpha1.AddressAssignedCondition, Status: metav1.ConditionFalse,
		Reason: wolfpackv1alpha1.AddressRemovedReason, Message: fmt.Sprintf("node %s removed %s", node, a)}
}

// Kind says which of a resource's two checks a scheduled check is.
type Kind string

const (
	// LooksAlive is the quick check.
	LooksAlive Kind = "looksAlive"
	// IsAlive is the thorough check.
	IsAlive Kind = "isAlive"
)

// Scheduled is one health check of a resource and how often it runs.
type Scheduled struct {
	Kind     Kind
	Interval time.Duration
	Check    monitor.Check
}

// ChecksFor turns the resource's healthChecks into the Resource Monitor's checks, filling in the
// host (the pod's IP for a workload, the address for an ipAddress resource) and the container.
// pod is the resource's running pod on this node, nil when it has none. An error names the
// field that cannot be resolved; such a check is not run and fails nothing.
func ChecksFor(res *wolfpackv1alpha1.Resource, pod *corev1.Pod) ([]Scheduled, error) {
	hc := res.Spec.HealthChecks
	if hc == nil {
		return nil, nil
	}
	var out []Scheduled
	for _, c := range []struct {
		kind     Kind
		check    *wolfpackv1alpha1.HealthCheck
		interval time.Duration
	}{
		{LooksAlive, hc.LooksAlive, res.Spec.LooksAlivePollIntervalOrDefault()},
		{IsAlive, hc.IsAlive, res.Spec.IsAlivePollIntervalOrDefault()},
	} {
		if c.check == nil {
			continue
		}
		check, err := toCheck(res, pod, c.kind, c.check)
		if err != nil {
			return nil, err
		}
		out = append(out, Scheduled{Kind: c.kind, Interval: c.interval, Check: check})
	}
	return out, nil
}

func toCheck(res *wolfpackv1alpha1.Resource, pod *corev1.Pod, kind Kind, hc *wolfpackv1alpha1.HealthCheck) (monitor.Check, error) {
	field := "spec.healthChecks." + string(kind)
	c := monitor.Check{Key: fmt.Sprintf("%s/%s/%s", res.Namespace, res.Name, kind),
		Timeout: hc.TimeoutOrDefault()}
	switch {
	case hc.Exec != nil:
		id, err := containerID(pod, hc.Exec.Container)
		if err != nil {
			return c, fmt.Errorf("%s.exec of Resource %s/%s: %w", field, res.Namespace, res.Name, err)
		}
		c.Exec = &monitor.ExecCheck{ContainerID: id, Command: hc.Exec.Command}
	case hc.TCPSocket != nil:
		host, err := hostOf(res, pod, hc.TCPSocket.Host)
		if err != nil {
			return c, fmt.Errorf("%s.tcpSocket.host of Resource %s/%s: %w", field, res.Namespace, res.Name, err)
		}
		c.TCP = &monitor.TCPCheck{Host: host, Port: int(hc.TCPSocket.Port)}
	case hc.HTTPGet != nil:
		host, err := hostOf(res, pod, hc.HTTPGet.Host)
		if err != nil {
			return c, fmt.Errorf("%s.httpGet.host of Resource %s/%s: %w", field, res.Namespace, res.Name, err)
		}
		c.HTTP = &monitor.HTTPCheck{Scheme: strings.ToLower(hc.HTTPGet.SchemeOrDefault()), Host: host, Port: int(hc.HTTPGet.Port), Path: hc.HTTPGet.PathOrDefault()}
	}
	return c, nil
}

func hostOf(res *wolfpackv1alpha1.Resource, pod *corev1.Pod, host string) (string, error) {
	switch {
	case host != "":
		return host, nil
	case res.Spec.IPAddress != nil:
		return res.Spec.IPAddress.Address, nil
	case res.Spec.Workload == nil:
		return "", fmt.Errorf("must be set for a resource that is neither a workload nor an ipAddress")
	case pod == nil || pod.Status.PodIP == "":
		return "", fmt.Errorf("the pod has no IP yet")
	}
	return pod.Status.PodIP, nil
}

// containerID is the runtime's ID of the named container, or of the pod's first one.
func containerID(pod *corev1.Pod, name string) (string, error) {
	if pod == nil {
		return "", fmt.Errorf("no running pod on this node")
	}
	if name == "" && len(pod.Spec.Containers) > 0 {
		name = pod.Spec.Containers[0].Name
	}
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == name && s.ContainerID != "" {
			// "containerd://<id>": the CRI takes the bare ID.
			_, id, found := strings.Cut(s.ContainerID, "://")
			if !found {
				id = s.ContainerID
			}
			return id, nil
		}
	}
	return "", fmt.Errorf("container %q of pod %s is not running", name, pod.Name)
}

// MonitorCondition is the MonitorHealthy condition for a check's result on node. It is false
// when the result says nothing about the resource: the check was cancelled because the agent is
// stopping, or it was invalid (ChecksFor reports those).
func MonitorCondition(kind Kind, r monitor.Result, node string) (metav1.Condition, bool) {
	c := metav1.Condition{Type: wolfpackv1alpha1.MonitorHealthyCondition, Status: metav1.ConditionFalse,
		Message: fmt.Sprintf("%s check on node %s: %s", kind, node, r.Message)}
	switch r.Reason {
	case monitor.Passed:
		c.Status, c.Reason = metav1.ConditionTrue, wolfpackv1alpha1.ChecksPassedReason
	case monitor.TimedOut:
		c.Reason = wolfpackv1alpha1.CheckTimedOutReason
	case monitor.MonitorCrashed, monitor.MonitorHung, monitor.MonitorUnavailable:
		c.Reason = wolfpackv1alpha1.MonitorFailedReason
	case monitor.Invalid, monitor.Canceled:
		return c, false
	case monitor.Failed:
		c.Reason = wolfpackv1alpha1.LooksAliveFailedReason
		if kind == IsAlive {
			c.Reason = wolfpackv1alpha1.IsAliveFailedReason
		}
	}
	if len(c.Message) > 1024 {
		c.Message = c.Message[:1021] + "..."
	}
	return c, true
}

// MonitorReported reports whether the resource's MonitorHealthy condition already says what c
// says.
func MonitorReported(res *wolfpackv1alpha1.Resource, c metav1.Condition) bool {
	old := meta.FindStatusCondition(res.Status.Conditions, wolfpackv1alpha1.MonitorHealthyCondition)
	return old != nil && old.Status == c.Status && old.Reason == c.Reason
}
