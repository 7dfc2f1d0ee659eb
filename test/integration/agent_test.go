package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/agent"
	"github.com/wolfpack-ha/wolfpack/internal/fence"
	"github.com/wolfpack-ha/wolfpack/internal/monitor"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
	"github.com/wolfpack-ha/wolfpack/internal/test/freeport"
	"github.com/wolfpack-ha/wolfpack/internal/test/scheme"
)

// TestAgentsHeartbeatIntoMembership runs three real node agents' membership (UDP heartbeats on two
// loopback networks, Lease renewals) with the manager: the nodes come Up, heard on both networks;
// when one agent stops, its peers report the heartbeat lost and the manager marks it Down, well
// before its Lease runs out.
func TestAgentsHeartbeatIntoMembership(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	port := freeport.UDP(t, netip.MustParseAddr("127.0.0.41"))
	nodes := []string{ns + "-a", ns + "-b", ns + "-c"}
	labels := map[string]string{wp.ClusterLabel: ns}
	for _, n := range nodes {
		must(t, createNode(ctx, n, labels))
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: envtest.LeaseNamespace, Name: "key-" + ns},
		Data: map[string][]byte{"key": []byte(strings.Repeat("k", 32))}}
	must(t, k8sClient.Create(ctx, secret))
	qd := builder.QuorumDisk(ns).NodeSelector(labels).KeySecret(envtest.LeaseNamespace, secret.Name).LeaseDuration(10*time.Second).
		HeartbeatPort(int32(port)).HeartbeatInterval(200*time.Millisecond).HeartbeatThreshold(4).
		Network("private", "127.0.0.0/24", wp.PrivateNetwork).Network("public", "127.0.1.0/24", wp.PublicNetwork).Obj()
	must(t, k8sClient.Create(ctx, qd))
	startManager(t)

	stops := map[string]func(){}
	for i, n := range nodes {
		stops[n] = startAgent(t, n, ns, map[string]netip.Addr{
			"private": netip.AddrFrom4([4]byte{127, 0, 0, byte(41 + i)}),
			"public":  netip.AddrFrom4([4]byte{127, 0, 1, byte(41 + i)}),
		})
	}
	f := &fixture{cluster: ns}
	f.waitNodes(t, map[string]wp.NodeState{nodes[0]: wp.NodeUp, nodes[1]: wp.NodeUp, nodes[2]: wp.NodeUp})
	eventually(t, "every node heard on both networks", func() error {
		for _, n := range nodes {
			if got := f.node(t, n).ReachableNetworks; !slices.Equal(got, []string{"private", "public"}) {
				return fmt.Errorf("%s reachable on %v", n, got)
			}
		}
		return nil
	})

	stopped := time.Now()
	stops[nodes[2]]()
	f.waitNodes(t, map[string]wp.NodeState{nodes[2]: wp.NodeDown})
	down := time.Since(stopped)
	t.Logf("agent of %s stopped; Down after %s (detection 800ms, Lease renewed every 400ms, lease duration 10s)", nodes[2], down.Round(time.Millisecond))
	if n := f.node(t, nodes[2]); !strings.Contains(n.Message, "heard by none of its peers") {
		t.Errorf("Down for %q, want because its peers stopped hearing it", n.Message)
	}
	if down >= 10*time.Second {
		t.Errorf("Down after %s: only when the Lease ran out, not from the heartbeats", down)
	}
	f.expectClusterEvent(t, wp.HeartbeatLostReason, "no longer hears "+nodes[2]+" on any network")
	f.waitNodes(t, map[string]wp.NodeState{nodes[0]: wp.NodeUp, nodes[1]: wp.NodeUp})
}

// startAgent runs one node agent's membership in-process until the test ends or stop is called.
func startAgent(t *testing.T, node, cluster string, addrs map[string]netip.Addr) (stop func()) {
	t.Helper()
	return startAgentWith(t, node, cluster, addrs, k8sClient, nil)
}

// startAgentWith is startAgent with the agent's client and fencer given.
func startAgentWith(t *testing.T, node, cluster string, addrs map[string]netip.Addr, c client.Client, fencer fence.Fencer) (stop func()) {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(env.Config)
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	ctx, cancel := context.WithCancel(context.Background())
	b.StartRecordingToSink(ctx.Done())
	m := &agent.NodeManager{
		Client: c, APIReader: c, Recorder: b.NewRecorder(scheme.Scheme, "wolfpack-node-agent"), Clock: clock.RealClock{},
		Node: node, Cluster: cluster, LeaseNamespace: envtest.LeaseNamespace, Addresses: addrs,
		HostAddrs: func() ([]netip.Addr, error) { return nil, nil }, Fencer: fencer,
	}
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx) }()
	var stopped bool
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent of %s: %v", node, err)
			}
			b.Shutdown()
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestAgentCutOffFromTheAPIKeepsItsNode cuts one real agent off the API server while its peer
// still hears it: its Lease runs out, but its node is in the cluster, so the manager does not
// mark it Down (issue 13: an API outage stops no group), and says why. Should the manager ever
// mark it Down, its agent must have failed the node before. When the API is back it is Up.
func TestAgentCutOffFromTheAPIKeepsItsNode(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	port := freeport.UDP(t, netip.MustParseAddr("127.0.0.51"))
	a, b := ns+"-a", ns+"-b"
	labels := map[string]string{wp.ClusterLabel: ns}
	for _, n := range []string{a, b} {
		must(t, createNode(ctx, n, labels))
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: envtest.LeaseNamespace, Name: "key-" + ns},
		Data: map[string][]byte{"key": []byte(strings.Repeat("k", 32))}}
	must(t, k8sClient.Create(ctx, secret))
	const leaseDuration = 3 * time.Second // renew deadline 2 s
	qd := builder.QuorumDisk(ns).NodeSelector(labels).KeySecret(envtest.LeaseNamespace, secret.Name).LeaseDuration(leaseDuration).
		HeartbeatPort(int32(port)).HeartbeatInterval(200*time.Millisecond).HeartbeatThreshold(4).
		Network("public", "127.0.0.0/24", wp.PublicNetwork).Obj()
	must(t, k8sClient.Create(ctx, qd))
	startManager(t)

	fenceA, fenceB := fence.NewNone(nil), fence.NewNone(nil)
	outage := &cuttable{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { outage.rt = rt; return outage }
	clientB, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	must(t, err)
	startAgentWith(t, a, ns, map[string]netip.Addr{"public": netip.MustParseAddr("127.0.0.51")}, k8sClient, fenceA)
	startAgentWith(t, b, ns, map[string]netip.Addr{"public": netip.MustParseAddr("127.0.0.52")}, clientB, fenceB)
	f := &fixture{cluster: ns}
	f.waitNodes(t, map[string]wp.NodeState{a: wp.NodeUp, b: wp.NodeUp})

	cut := time.Now()
	outage.cut.Store(true)
	eventually(t, "node b's Lease run out, b kept as heard by a", func() error {
		n := f.node(t, b)
		if n.State == wp.NodeDown && fenceB.Fences() == 0 {
			t.Fatalf("the manager has node b Down (%s) %s after the outage began, and its agent has not failed it", n.Message, time.Since(cut))
		}
		if n.State == wp.NodeDown || n.Fenced || !strings.Contains(n.Message, "cannot reach the API server") ||
			!strings.Contains(n.Message, "heard by "+a) {
			return fmt.Errorf("node b %s, fenced %v: %s", n.State, n.Fenced, n.Message)
		}
		return nil
	})
	// It stays so for a few lease durations more.
	for deadline := time.Now().Add(2 * leaseDuration); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if n := f.node(t, b); n.State == wp.NodeDown || n.Fenced {
			t.Fatalf("node b %s, fenced %v, %s into the outage: %s", n.State, n.Fenced, time.Since(cut), n.Message)
		}
	}
	if fenceA.Fences() != 0 {
		t.Errorf("node a, which kept the API, fenced itself %d times", fenceA.Fences())
	}

	outage.cut.Store(false)
	f.waitNodes(t, map[string]wp.NodeState{b: wp.NodeUp})
	eventually(t, "node b renewing its Lease again", func() error {
		if n := f.node(t, b); strings.Contains(n.Message, "cannot reach the API server") {
			return fmt.Errorf("node b: %s", n.Message)
		}
		return nil
	})
	if fenceB.Fences() > 0 {
		f.expectClusterEvent(t, wp.RejoinedReason, "node "+b+" has its Lease and quorum again")
	}
}

// cuttable is an HTTP transport that fails every request while cut, as an unreachable API
// server would.
type cuttable struct {
	rt  http.RoundTripper
	cut atomic.Bool
}

func (c *cuttable) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.cut.Load() {
		return nil, fmt.Errorf("simulated API outage: %s %s", r.Method, r.URL.Path)
	}
	return c.rt.RoundTrip(r)
}

// TestFloatingAddressFollowsTheGroup moves the sample group and checks that the node agents
// (their real Resource reconcilers, on fake interfaces) moved the floating address with it, and
// reported each step in the AddressAssigned condition.
func TestFloatingAddressFollowsTheGroup(t *testing.T) {
	f := newFixture(t)
	startManager(t)
	f.waitOnline(t, f.a)
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.50/24")}
	if got := f.kubelet.Addresses(f.a); !slices.Equal(got, want) {
		t.Errorf("node a holds %v, want %v", got, want)
	}
	f.expectAddressAssigned(t, metav1.ConditionTrue, "node "+f.a+" holds 192.0.2.50/24 on eth0")

	g := f.group(t)
	patch := client.MergeFrom(g.DeepCopy())
	g.Annotations = map[string]string{wp.MoveToAnnotation: f.b}
	must(t, k8sClient.Patch(context.Background(), g, patch))
	f.waitOnline(t, f.b)
	if got := f.kubelet.Addresses(f.a); len(got) != 0 {
		t.Errorf("node a still holds %v after the move", got)
	}
	if got := f.kubelet.Addresses(f.b); !slices.Equal(got, want) {
		t.Errorf("node b holds %v, want %v", got, want)
	}
	f.expectAddressAssigned(t, metav1.ConditionTrue, "node "+f.b+" holds")

	// Node b crashes holding the address; the group fails over to a. When b comes back, its
	// agent removes the stale copy and says nothing about the resource, which a now holds.
	must(t, f.kubelet.Kill(context.Background(), f.b))
	f.waitOnline(t, f.a)
	f.expectAddressAssigned(t, metav1.ConditionTrue, "node "+f.a+" holds")
	if got := f.kubelet.Addresses(f.b); !slices.Equal(got, want) {
		t.Fatalf("the crashed node b holds %v, want the stale %v", got, want)
	}
	before := f.addressAssigned(t)
	must(t, f.kubelet.Revive(context.Background(), f.b))
	eventually(t, "the stale address removed from b", func() error {
		if got := f.kubelet.Addresses(f.b); len(got) != 0 {
			return fmt.Errorf("b holds %v", got)
		}
		return nil
	})
	time.Sleep(time.Second)
	if after := f.addressAssigned(t); after.Status != metav1.ConditionTrue || !after.LastTransitionTime.Equal(&before.LastTransitionTime) {
		t.Errorf("AddressAssigned was rewritten when b came back: %+v, before %+v", after, before)
	}
	if g := f.waitOnline(t, f.a); g.Status.Epoch != 3 {
		t.Errorf("epoch %d, want 3: nothing moved after b came back", g.Status.Epoch)
	}
}

// addressAssigned reads the ip resource's AddressAssigned condition.
func (f *fixture) addressAssigned(t *testing.T) metav1.Condition {
	t.Helper()
	r := &wp.Resource{}
	must(t, k8sClient.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "ip"}, r))
	c := meta.FindStatusCondition(r.Status.Conditions, wp.AddressAssignedCondition)
	if c == nil {
		t.Fatal("the ip resource has no AddressAssigned condition")
	}
	return *c
}

func (f *fixture) expectAddressAssigned(t *testing.T, status metav1.ConditionStatus, msg string) {
	t.Helper()
	eventually(t, "AddressAssigned "+string(status), func() error {
		r := &wp.Resource{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "ip"}, r); err != nil {
			return err
		}
		c := meta.FindStatusCondition(r.Status.Conditions, wp.AddressAssignedCondition)
		if c == nil || c.Status != status || !strings.Contains(c.Message, msg) {
			return fmt.Errorf("condition %+v", c)
		}
		if !slices.ContainsFunc(r.ManagedFields, func(m metav1.ManagedFieldsEntry) bool {
			return strings.HasPrefix(m.Manager, "wolfpack-node-agent/") && m.Subresource == "status"
		}) {
			return fmt.Errorf("no status fields managed by a node agent in %+v", r.ManagedFields)
		}
		return nil
	})
}

// TestMonitorFailureRestartsTheResource has the Resource Monitor of the owner node report a
// failed check: the manager restarts the resource under its restart policy, and once the checks
// pass again the resource is Online and MonitorHealthy.
func TestMonitorFailureRestartsTheResource(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	server := f.server(t)
	patch := client.MergeFrom(server.DeepCopy())
	server.Spec.HealthChecks = &wp.HealthChecks{LooksAlive: &wp.HealthCheck{TCPSocket: &wp.TCPSocketCheck{Host: "127.0.0.1", Port: 5432}}}
	server.Spec.LooksAlivePollInterval = &metav1.Duration{Duration: time.Second}
	must(t, k8sClient.Patch(ctx, server, patch))
	startManager(t)
	f.waitOnline(t, f.a)
	eventually(t, "MonitorHealthy True", func() error {
		if c := meta.FindStatusCondition(f.server(t).Status.Conditions, wp.MonitorHealthyCondition); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})

	f.kubelet.SetCheck("server", &monitor.Result{Reason: monitor.Failed, Message: "dial tcp 127.0.0.1:5432: connection refused"})
	eventually(t, "a restart for the failed check", func() error {
		r := f.server(t)
		if r.Status.Restarts < 1 || r.Status.LastFailure == nil {
			return fmt.Errorf("restarts %d, last failure %+v", r.Status.Restarts, r.Status.LastFailure)
		}
		if lf := r.Status.LastFailure; lf.Reason != wp.LooksAliveFailedReason ||
			!strings.Contains(lf.Message, "node agent on "+f.a+": looksAlive check on node "+f.a+": dial tcp 127.0.0.1:5432: connection refused") {
			return fmt.Errorf("last failure %+v", lf)
		}
		return nil
	})
	f.kubelet.SetCheck("server", nil)
	g := f.waitOnline(t, f.a)
	if g.Status.Epoch != 1 {
		t.Errorf("epoch %d: a restart on the same node is not a failover", g.Status.Epoch)
	}
	eventually(t, "Online and MonitorHealthy again", func() error {
		r := f.server(t)
		c := meta.FindStatusCondition(r.Status.Conditions, wp.MonitorHealthyCondition)
		if r.Status.State != wp.ResourceOnline || c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("%s, condition %+v", r.Status.State, c)
		}
		return nil
	})
	var list eventsv1.EventList
	must(t, k8sClient.List(ctx, &list, client.InNamespace(f.ns)))
	if !slices.ContainsFunc(list.Items, func(e eventsv1.Event) bool {
		return e.Regarding.Name == "server" && e.Reason == wp.LooksAliveFailedReason && strings.Contains(e.Note, "restart 1 of 3")
	}) {
		t.Error("no LooksAliveFailed Event for the restart")
	}
}
