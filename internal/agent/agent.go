package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/google/uuid"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/fence"
	"github.com/wolfpack-ha/wolfpack/internal/heartbeat"
	"github.com/wolfpack-ha/wolfpack/internal/ipaddr"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
)

// DefaultNetwork names the single Public heartbeat network of a cluster that configures none: the
// nodes' InternalIP addresses.
const DefaultNetwork = "internal"

// NodeManager is the agent's Node Manager and Cluster Network Driver, as MSCS names them: it
// exchanges heartbeats with the peers whose Leases it sees, renews its own node's Lease with what
// it hears (the view that internal/membership computes node states from), and fails its node when
// it must.
type NodeManager struct {
	// Client reads through the agent's cache; APIReader reads the key Secret, which is not cached.
	Client    client.Client
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.WithTicker
	// Node is this agent's node; Cluster its QuorumDisk.
	Node, Cluster string
	// LeaseNamespace holds the agents' Leases.
	LeaseNamespace string
	// Addresses are this node's addresses on the heartbeat networks, by network name; a network
	// without one here is looked up among the host's addresses.
	Addresses map[string]netip.Addr
	// HostAddrs lists the host's addresses, for networks without an entry in Addresses.
	HostAddrs func() ([]netip.Addr, error)
	// Metrics are the heartbeat metrics; nil for none.
	Metrics *heartbeat.Metrics
	// FenceOptions configure the fence action the QuorumDisk gives this node.
	FenceOptions fence.Options
	// Fencer, when set, is used instead of the QuorumDisk's fence action (tests).
	Fencer fence.Fencer

	incarnation uint64
	started     time.Time
	lease       *coordinationv1.Lease
	// privateLost are the peers last reported as heard on public networks only.
	privateLost map[string]bool
	// keyChecked is when the heartbeat key was last read.
	keyChecked time.Time
	fencer     fence.Fencer
	// lastRenewed is when the last successful renewal of the Lease began (zero before the
	// first); fenced is true while the agent has failed its node.
	lastRenewed time.Time
	fenced      bool
}

// NeedLeaderElection is false: every agent runs.
func (m *NodeManager) NeedLeaderElection() bool { return false }

// Start runs the heartbeats and the Lease renewals until ctx ends. A change of the cluster's
// heartbeat settings or key restarts the heartbeats with the new ones.
func (m *NodeManager) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("node-manager")
	m.started = m.Clock.Now()
	// No renewal yet: an agent that restarts and cannot renew at once fails its node, since its
	// previous run may have renewed last just before it stopped, and the manager times the Lease
	// from that renewal.
	m.lastRenewed = time.Time{}
	m.incarnation = uint64(m.started.UnixNano())
	defer func() {
		if m.fencer != nil {
			_ = m.fencer.Close()
		}
	}()
	for ctx.Err() == nil {
		cfg, qd, err := m.config(ctx)
		if err != nil {
			log.Error(err, "cannot start heartbeats; retrying")
			if !sleep(ctx, m.Clock, 2*time.Second) {
				break
			}
			continue
		}
		if err := m.run(ctx, cfg, qd); err != nil && ctx.Err() == nil {
			log.Error(err, "heartbeats stopped; restarting")
			sleep(ctx, m.Clock, time.Second)
		}
	}
	return nil
}

// config reads the cluster and its key and makes the transport's configuration.
func (m *NodeManager) config(ctx context.Context) (heartbeat.Config, *wolfpackv1alpha1.QuorumDisk, error) {
	qd := &wolfpackv1alpha1.QuorumDisk{}
	if err := m.Client.Get(ctx, client.ObjectKey{Name: m.Cluster}, qd); err != nil {
		return heartbeat.Config{}, nil, fmt.Errorf("reading QuorumDisk %s: %w", m.Cluster, err)
	}
	key, err := m.key(ctx, qd)
	if err != nil {
		return heartbeat.Config{}, nil, err
	}
	uid, err := uuid.Parse(string(qd.UID))
	if err != nil {
		return heartbeat.Config{}, nil, fmt.Errorf("QuorumDisk %s has UID %q: %w", qd.Name, qd.UID, err)
	}
	networks, err := m.networks(ctx, qd)
	if err != nil {
		return heartbeat.Config{}, nil, err
	}
	if m.fencer == nil && m.Fencer != nil {
		m.fencer = m.Fencer
	}
	if m.fencer == nil {
		// Made once: a watchdog is armed when opened. It resets the node if the agent stops
		// feeding it for the renew deadline, before the manager's view of the Lease runs out.
		action := fence.ActionFor(qd.Spec.Fencing, m.Node)
		opts := m.FenceOptions
		if opts.WatchdogTimeout == 0 {
			opts.WatchdogTimeout = RenewDeadline(qd.Spec.LeaseDurationOrDefault())
		}
		if m.fencer, err = fence.New(action, opts); err != nil {
			return heartbeat.Config{}, nil, fmt.Errorf("fence action %s of node %s (spec.fencing of QuorumDisk %s): %w", action, m.Node, qd.Name, err)
		}
	}
	hb := qd.Spec.Heartbeat
	return heartbeat.Config{
		Self: m.Node, ClusterUID: uid, Key: key,
		Port:      int(hb.PortOrDefault()),
		Interval:  hb.IntervalOrDefault(),
		Threshold: int(hb.ThresholdOrDefault()),
		Networks:  networks, Clock: m.Clock, Metrics: m.Metrics,
	}, qd, nil
}

// key reads the heartbeat key from the Secret the cluster names. The key is never logged.
func (m *NodeManager) key(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk) ([]byte, error) {
	ref := qd.Spec.KeySecretRef
	s := &corev1.Secret{}
	if err := m.APIReader.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, s); err != nil {
		return nil, fmt.Errorf("reading the heartbeat key Secret %s/%s (spec.keySecretRef of QuorumDisk %s): %w", ref.Namespace, ref.Name, qd.Name, err)
	}
	name := ref.KeyOrDefault()
	key := s.Data[name]
	if len(key) < heartbeat.MinKeyLen {
		return nil, fmt.Errorf("key %q of Secret %s/%s (spec.keySecretRef of QuorumDisk %s) has %d bytes, want at least %d",
			name, ref.Namespace, ref.Name, qd.Name, len(key), heartbeat.MinKeyLen)
	}
	return key, nil
}

// networks are the cluster's heartbeat networks with this node's address on each, private ones
// first.
func (m *NodeManager) networks(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk) ([]heartbeat.Network, error) {
	specs := qd.Spec.Heartbeat.Networks
	if len(specs) == 0 {
		addr, err := m.internalIP(ctx)
		if err != nil {
			return nil, err
		}
		return []heartbeat.Network{{Name: DefaultNetwork, Local: addr}}, nil
	}
	var host []netip.Addr
	out := make([]heartbeat.Network, 0, len(specs))
	for _, n := range specs {
		addr, ok := m.Addresses[n.Name]
		if !ok {
			if host == nil {
				var err error
				if host, err = m.HostAddrs(); err != nil {
					return nil, fmt.Errorf("listing the host's addresses: %w", err)
				}
			}
			if addr, ok = addressIn(host, n.CIDR); !ok {
				return nil, fmt.Errorf("node %s has no address in %s, the cidr of heartbeat network %q of QuorumDisk %s",
					m.Node, n.CIDR, n.Name, qd.Name)
			}
		}
		out = append(out, heartbeat.Network{Name: n.Name, Private: n.Role == wolfpackv1alpha1.PrivateNetwork, Local: addr})
	}
	slices.SortStableFunc(out, func(a, b heartbeat.Network) int {
		switch {
		case a.Private == b.Private:
			return 0
		case a.Private:
			return -1
		}
		return 1
	})
	return out, nil
}

// DefaultInterface is the interface of a floating address whose resource names none: the one
// that holds this node's address on the cluster's first Public heartbeat network (or its
// InternalIP when the cluster configures no networks). It is empty when there is none.
func (m *NodeManager) DefaultInterface(ctx context.Context, addrs ipaddr.Manager) string {
	qd := &wolfpackv1alpha1.QuorumDisk{}
	if err := m.Client.Get(ctx, client.ObjectKey{Name: m.Cluster}, qd); err != nil {
		return ""
	}
	networks, err := m.networks(ctx, qd)
	if err != nil {
		return ""
	}
	for _, n := range networks {
		if !n.Private {
			iface, err := addrs.InterfaceFor(netip.PrefixFrom(n.Local, n.Local.BitLen()))
			if err != nil {
				return ""
			}
			return iface
		}
	}
	return ""
}

// internalIP is the node's InternalIP, the address of the default network.
func (m *NodeManager) internalIP(ctx context.Context) (netip.Addr, error) {
	if a, ok := m.Addresses[DefaultNetwork]; ok {
		return a, nil
	}
	n := &corev1.Node{}
	if err := m.Client.Get(ctx, client.ObjectKey{Name: m.Node}, n); err != nil {
		return netip.Addr{}, fmt.Errorf("reading Node %s: %w", m.Node, err)
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return netip.ParseAddr(a.Address)
		}
	}
	return netip.Addr{}, fmt.Errorf("node %s has no InternalIP, and QuorumDisk %s configures no heartbeat networks", m.Node, m.Cluster)
}

// run exchanges heartbeats under cfg until ctx ends or the cluster's settings change.
func (m *NodeManager) run(ctx context.Context, cfg heartbeat.Config, qd *wolfpackv1alpha1.QuorumDisk) error {
	t, err := heartbeat.New(cfg)
	if err != nil {
		return err
	}
	m.keyChecked = m.Clock.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- t.Run(ctx) }()

	leaseDuration := qd.Spec.LeaseDurationOrDefault()
	detection := cfg.Interval * time.Duration(cfg.Threshold)
	renew := m.Clock.NewTicker(membership.RenewInterval(leaseDuration, detection))
	defer renew.Stop()
	private := map[string]bool{}
	for _, n := range cfg.Networks {
		private[n.Name] = n.Private
	}
	renewEvery := membership.RenewInterval(leaseDuration, detection)
	// These heartbeats have heard nothing yet: the view means something once they have listened
	// for a whole detection period.
	listening := m.Clock.Now()
	for {
		joined := m.Clock.Since(listening) >= detection
		reachable := t.Reachable()
		view := membership.View{Incarnation: m.incarnation, Joined: joined, Peers: reachable,
			Addresses: addresses(cfg.Networks), Fenced: m.fenced}
		t.SetViewDigest(view.Digest())
		began := m.Clock.Now()
		// A renewal that hangs must not keep the agent from noticing its renew deadline.
		rctx, rcancel := context.WithTimeout(ctx, renewEvery)
		err := m.renew(rctx, view, leaseDuration)
		rcancel()
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "renewing the node Lease")
		} else {
			m.lastRenewed = began
			if !m.fenced {
				if err := m.fencer.Heartbeat(); err != nil {
					ctrl.LoggerFrom(ctx).Error(err, "feeding the fence action")
				}
			}
		}
		// After the renewal: its outcome counts, and the next one reports the decision.
		m.decide(ctx, joined, reachable, leaseDuration)
		if peers, err := m.peers(ctx); err == nil {
			t.SetPeers(peers)
		}
		select {
		case <-ctx.Done():
			return <-done
		case err := <-done:
			return err
		case c := <-t.Changes():
			m.record(qd, c, private)
		case <-renew.C():
			if m.changed(ctx, qd, cfg) {
				ctrl.LoggerFrom(ctx).Info("the cluster's heartbeat settings or key changed; restarting the heartbeats")
				cancel()
				return <-done
			}
		}
	}
}

// decide fails the node when it must (see MustFail), and takes it back when it no longer must.
// While failed, it fences again at every renewal: the kubelet restarts what it still knows.
func (m *NodeManager) decide(ctx context.Context, joined bool, reachable map[string][]string, leaseDuration time.Duration) {
	qd := &wolfpackv1alpha1.QuorumDisk{}
	if err := m.Client.Get(ctx, client.ObjectKey{Name: m.Cluster}, qd); err != nil {
		qd = nil
	}
	must, why := MustFail(Evidence{Node: m.Node, Unrenewed: m.Clock.Since(m.lastRenewed), LeaseDuration: leaseDuration, Joined: joined, Reachable: reachable, Cluster: qd})
	switch {
	case must:
		fctx, cancel := context.WithTimeout(ctx, RenewDeadline(leaseDuration)/2)
		report, err := m.fencer.Fence(fctx)
		cancel()
		if !m.fenced {
			m.fenced = true
			ctrl.LoggerFrom(ctx).Info("failing the node", "why", why, "report", report.String(), "error", err)
			m.Recorder.Eventf(clusterRef(m.Cluster), nil, corev1.EventTypeWarning, wolfpackv1alpha1.SelfFencedReason, "Fence",
				"node %s failed itself: %s; %s", m.Node, why, report.String())
		}
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "fencing")
		}
	case m.fenced:
		m.fenced = false
		m.Recorder.Eventf(clusterRef(m.Cluster), nil, corev1.EventTypeNormal, wolfpackv1alpha1.RejoinedReason, "Fence",
			"node %s has its Lease and quorum again", m.Node)
	}
}

// clusterRef is the QuorumDisk Events are about, when it cannot be read.
func clusterRef(name string) *wolfpackv1alpha1.QuorumDisk {
	qd := &wolfpackv1alpha1.QuorumDisk{}
	qd.Name = name
	qd.SetGroupVersionKind(wolfpackv1alpha1.GroupVersion.WithKind("QuorumDisk"))
	return qd
}

func addresses(networks []heartbeat.Network) map[string]string {
	out := make(map[string]string, len(networks))
	for _, n := range networks {
		out[n.Name] = n.Local.String()
	}
	return out
}

// keyRecheck is how often the agent reads the heartbeat key Secret again, for a rotated key.
const keyRecheck = time.Minute

// changed reports whether the cluster's heartbeat settings (a new generation of the QuorumDisk) or
// its key (read again every keyRecheck) changed since cfg was made. It runs at every renewal, so
// it reads the cluster from the cache and the Secret, which is not cached, only now and then. A
// change that cannot be read or used keeps the running heartbeats as they are.
func (m *NodeManager) changed(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk, cfg heartbeat.Config) bool {
	now := &wolfpackv1alpha1.QuorumDisk{}
	if err := m.Client.Get(ctx, client.ObjectKey{Name: m.Cluster}, now); err != nil {
		return false
	}
	if now.Generation == qd.Generation {
		if m.Clock.Since(m.keyChecked) < keyRecheck {
			return false
		}
		m.keyChecked = m.Clock.Now()
		key, err := m.key(ctx, now)
		return err == nil && string(key) != string(cfg.Key)
	}
	next, _, err := m.config(ctx)
	if err != nil {
		return false
	}
	return next.Port != cfg.Port || next.Interval != cfg.Interval || next.Threshold != cfg.Threshold ||
		!slices.Equal(next.Networks, cfg.Networks) || string(next.Key) != string(cfg.Key)
}

// peers are the other agents of the cluster, with their addresses from their Leases.
func (m *NodeManager) peers(ctx context.Context) ([]heartbeat.Peer, error) {
	var leases coordinationv1.LeaseList
	if err := m.Client.List(ctx, &leases, client.InNamespace(m.LeaseNamespace),
		client.MatchingLabels{wolfpackv1alpha1.ClusterLabel: m.Cluster}); err != nil {
		return nil, err
	}
	var out []heartbeat.Peer
	for _, l := range leases.Items {
		node := l.Labels[wolfpackv1alpha1.NodeLabel]
		if node == "" || node == m.Node {
			continue
		}
		v, err := membership.ParseView(l.Annotations[wolfpackv1alpha1.ViewAnnotation])
		if err != nil {
			continue
		}
		p := heartbeat.Peer{Name: node, Addrs: map[string]netip.Addr{}}
		for network, a := range v.Addresses {
			if addr, err := netip.ParseAddr(a); err == nil {
				p.Addrs[network] = addr
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// renew writes the node's Lease with view.
func (m *NodeManager) renew(ctx context.Context, view membership.View, duration time.Duration) error {
	if m.lease == nil {
		l := &coordinationv1.Lease{}
		err := m.APIReader.Get(ctx, client.ObjectKey{Namespace: m.LeaseNamespace, Name: m.Node}, l)
		switch {
		case apierrors.IsNotFound(err):
			l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: m.LeaseNamespace, Name: m.Node}}
		case err != nil:
			return err
		}
		m.lease = l
	}
	l := m.lease.DeepCopy()
	l.Labels = map[string]string{wolfpackv1alpha1.ClusterLabel: m.Cluster, wolfpackv1alpha1.NodeLabel: m.Node}
	l.Annotations = map[string]string{wolfpackv1alpha1.ViewAnnotation: view.Encode()}
	l.Spec.HolderIdentity = ptr.To(m.Node)
	l.Spec.LeaseDurationSeconds = ptr.To(int32((duration + time.Second - 1) / time.Second)) //nolint:gosec // at most 5m, by the CRD's validation
	l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(m.Clock.Now()))
	var err error
	if l.ResourceVersion == "" {
		err = m.Client.Create(ctx, l)
	} else {
		err = m.Client.Update(ctx, l)
	}
	if err != nil {
		m.lease = nil // read it again next time
		return fmt.Errorf("writing Lease %s/%s: %w", m.LeaseNamespace, m.Node, err)
	}
	m.lease = l
	return nil
}

// record turns a change of what the agent hears into an Event about the cluster.
func (m *NodeManager) record(qd *wolfpackv1alpha1.QuorumDisk, c heartbeat.Change, private map[string]bool) {
	anyPrivate := func(networks []string) bool {
		return slices.ContainsFunc(networks, func(n string) bool { return private[n] })
	}
	if m.privateLost == nil {
		m.privateLost = map[string]bool{}
	}
	switch {
	case len(c.After) == 0 && len(c.Before) > 0:
		delete(m.privateLost, c.Peer)
		m.Recorder.Eventf(qd, nil, corev1.EventTypeWarning, wolfpackv1alpha1.HeartbeatLostReason, "Heartbeat",
			"node %s no longer hears %s on any network (was on %v)", m.Node, c.Peer, c.Before)
	case anyPrivate(c.Before) && !anyPrivate(c.After) && len(c.After) > 0:
		m.privateLost[c.Peer] = true
		m.Recorder.Eventf(qd, nil, corev1.EventTypeWarning, wolfpackv1alpha1.PrivateNetworkLostReason, "Heartbeat",
			"node %s no longer hears %s on a private network; heartbeats continue on %v", m.Node, c.Peer, c.After)
	case anyPrivate(c.After) && m.privateLost[c.Peer]:
		// Only after a loss: a peer first found on a public network and then on a private one,
		// as happens when heartbeats start, lost nothing.
		delete(m.privateLost, c.Peer)
		m.Recorder.Eventf(qd, nil, corev1.EventTypeNormal, wolfpackv1alpha1.PrivateNetworkRestoredReason, "Heartbeat",
			"node %s hears %s on a private network again (%v)", m.Node, c.Peer, c.After)
	}
}

func sleep(ctx context.Context, clk clock.Clock, d time.Duration) bool {
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}
