package agent

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"slices"
	"sync"
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
	// FloatingAddresses are the floating addresses this node holds for its groups; the fence
	// path removes them all before it reports the node fenced. Nil when the agent holds none.
	FloatingAddresses *FloatingAddresses
	// HandoverTimeout is how long the fence action (a Watchdog) is asked to wait for the next
	// agent when this one stops without having fenced its node; zero for no handover.
	HandoverTimeout time.Duration
	// NewTransport makes the heartbeat transport; nil for the real one (tests set it).
	NewTransport func(heartbeat.Config) (Transport, error)
	// NewLocal makes the writer of the agent's node-local record (see LocalRecord), for an
	// incarnation of the agent that decides at least every interval; nil writes none.
	NewLocal func(incarnation uint64, interval time.Duration) (LocalRecord, error)
	// HoldsDisk reports whether this node's quorum holder holds the disk lease now, from its
	// node-local record; nil when there is none to ask.
	HoldsDisk func() bool

	incarnation uint64
	// local is the node-local record's writer and the interval it was made for.
	local         LocalRecord
	localInterval time.Duration
	// lease is the Lease as last written or read (the renewal loop's, and the stop's after it).
	lease *coordinationv1.Lease
	// privateLost are the peers last reported as heard on public networks only (the Changes
	// reader's).
	privateLost map[string]bool
	// keyChecked is when the heartbeat key was last read (the renewal loop's).
	keyChecked time.Time
	// fencer is set once, before the guard starts.
	fencer fence.Fencer
	// kick wakes the guard: a renewal, a change of what the node hears or of the cluster.
	kick chan struct{}
	// nudge wakes the renewal loop: a change to report.
	nudge chan struct{}

	mu sync.Mutex
	s  shared // guarded by mu
}

// shared is what the renewal loop, the Changes reader and the guard share.
type shared struct {
	// started is when the agent started, and lastRenewed when the last successful write of its
	// Lease began, zero before the first (agent monotonic clock).
	started, lastRenewed time.Time
	// desired is the lease duration the agent means to act on: the cluster's, lengthened to cover
	// the timeout its watchdog granted. published is the one its Lease holds, as last written or
	// read (zero when unknown). The agent acts on the shorter of the two (see acting).
	desired, published time.Duration
	// detection is the heartbeats' interval x threshold.
	detection time.Duration
	// cluster is the QuorumDisk as last read.
	cluster *wolfpackv1alpha1.QuorumDisk
	// hearing is the running transport, nil while the heartbeats do not run; listening is when it
	// started.
	hearing   Transport
	listening time.Time
	// view is the last view the renewal loop made (nil before the first).
	view *membership.View
	// fenced is true once the fence action returned success (and the floating addresses were
	// removed), until the node no longer must fail; lastFence is when that fence began. failing
	// is true while the last attempt failed.
	fenced, failing bool
	lastFence       time.Time
	// fed is false while feeding the fence action (a watchdog) fails.
	fed bool
	// ownerLost is when the quorum disk's owner stopped being heard both ways (zero while it is,
	// or while there is none).
	ownerLost time.Time
}

// acting is the lease duration d the agent acts on: the desired one, or, while its Lease still
// publishes a shorter one (the desired one grew and no write with it succeeded yet), that one:
// the manager judges the node by the published duration, so the agent's deadline never counts
// from a longer one than the manager's.
func (s *shared) acting() time.Duration {
	if s.published > 0 && s.published < s.desired {
		return s.published
	}
	return s.desired
}

// renewInterval is how often the agent renews its Lease, and the longest any of its API calls
// may take.
func (s *shared) renewInterval() time.Duration {
	if s.desired == 0 || s.detection == 0 {
		return defaultCallTimeout
	}
	return membership.RenewInterval(s.acting(), s.detection)
}

// joined reports whether the heartbeats have listened for a whole detection period at now.
func (s *shared) joined(now time.Time) bool {
	return s.hearing != nil && now.Sub(s.listening) >= s.detection
}

// defaultCallTimeout bounds an API call before the agent knows its cluster's renew interval: the
// renew interval of the default settings.
const defaultCallTimeout = time.Second

// call bounds one API call by the renew interval: no call can hold up the agent longer.
func (m *NodeManager) call(ctx context.Context) (context.Context, context.CancelFunc) {
	m.mu.Lock()
	d := m.s.renewInterval()
	m.mu.Unlock()
	return context.WithTimeout(ctx, d)
}

// wake sends on a channel of one without waiting.
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Transport is the heartbeat transport as the agent uses it: heartbeat.Transport.
type Transport interface {
	Run(ctx context.Context) error
	SetPeers(peers []heartbeat.Peer)
	SetViewDigest(d [sha256.Size]byte)
	// Reachable are the peers heard now, with the networks each is heard on.
	Reachable() map[string][]string
	// HeardBy are the peers whose latest heartbeats say that they hear this node.
	HeardBy() map[string]bool
	Changes() <-chan heartbeat.Change
}

// newTransport makes the transport of cfg.
func (m *NodeManager) newTransport(cfg heartbeat.Config) (Transport, error) {
	if m.NewTransport != nil {
		return m.NewTransport(cfg)
	}
	t, err := heartbeat.New(cfg)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// The real transport is one: Reachable and HeardBy give mutual(X) (RULES section 2).
var _ Transport = (*heartbeat.Transport)(nil)

// NeedLeaderElection is false: every agent runs.
func (m *NodeManager) NeedLeaderElection() bool { return false }

// Start runs the heartbeats, the Lease renewals and the guard of the node's deadlines until ctx
// ends. A change of the cluster's heartbeat settings or key restarts the heartbeats with the new
// ones; a change of its lease duration is taken up without a restart.
//
// The guard (see guard) runs in its own goroutine from the first time the agent has read its
// cluster and made its fence action: no API call can hold it up. When ctx ends, the agent writes
// its Lease once more and hands its fence action over to its successor (see stop).
func (m *NodeManager) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("node-manager")
	ctx = ctrl.LoggerInto(ctx, log)
	now := m.Clock.Now()
	// No renewal yet: an agent that restarts counts as unrenewed since its start, since its
	// previous run may have renewed just before it stopped, and the manager times the Lease from
	// that renewal.
	m.mu.Lock()
	m.s = shared{started: now, fed: true}
	m.mu.Unlock()
	m.incarnation = uint64(now.UnixNano())
	m.kick, m.nudge = make(chan struct{}, 1), make(chan struct{}, 1)
	var guard sync.WaitGroup
	defer func() {
		guard.Wait()
		if m.fencer != nil {
			m.stop(ctx)
			if err := m.fencer.Close(); err != nil {
				log.Error(err, "closing the fence action")
			}
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
		m.mu.Lock()
		first := m.s.desired == 0
		m.s.cluster, m.s.desired = qd, m.desired(qd)
		m.s.detection = cfg.Interval * time.Duration(cfg.Threshold)
		m.mu.Unlock()
		if first {
			guard.Go(func() { m.guard(ctx) })
		}
		if err := m.run(ctx, cfg, qd); err != nil && ctx.Err() == nil {
			log.Error(err, "heartbeats stopped; restarting")
			sleep(ctx, m.Clock, time.Second)
		}
	}
	return nil
}

// desired is the lease duration the agent means to act on under the cluster qd: its
// spec.leaseDuration, lengthened when the fence action's watchdog granted a longer timeout than
// the renew deadline, so that the deadline covers it (RULES section 1).
func (m *NodeManager) desired(qd *wolfpackv1alpha1.QuorumDisk) time.Duration {
	d := qd.Spec.LeaseDurationOrDefault()
	if t, ok := m.fencer.(timeoutReporter); ok {
		d = max(d, LeaseCovering(t.Timeout()))
	}
	return d
}

// config reads the cluster and its key and makes the transport's configuration.
func (m *NodeManager) config(ctx context.Context) (heartbeat.Config, *wolfpackv1alpha1.QuorumDisk, error) {
	qd, err := m.cluster(ctx)
	if err != nil {
		return heartbeat.Config{}, nil, err
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

// cluster reads the QuorumDisk (from the cache), bounded by the renew interval.
func (m *NodeManager) cluster(ctx context.Context) (*wolfpackv1alpha1.QuorumDisk, error) {
	ctx, cancel := m.call(ctx)
	defer cancel()
	qd := &wolfpackv1alpha1.QuorumDisk{}
	if err := m.Client.Get(ctx, client.ObjectKey{Name: m.Cluster}, qd); err != nil {
		return nil, fmt.Errorf("reading QuorumDisk %s: %w", m.Cluster, err)
	}
	return qd, nil
}

// key reads the heartbeat key from the Secret the cluster names. The key is never logged.
func (m *NodeManager) key(ctx context.Context, qd *wolfpackv1alpha1.QuorumDisk) ([]byte, error) {
	ref := qd.Spec.KeySecretRef
	s := &corev1.Secret{}
	ctx, cancel := m.call(ctx)
	defer cancel()
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
	qd, err := m.cluster(ctx)
	if err != nil {
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
	ctx, cancel := m.call(ctx)
	defer cancel()
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

// run exchanges heartbeats under cfg and renews the node's Lease until ctx ends or the cluster's
// heartbeat settings change. Every API call it makes is bounded by the renew interval, so a
// black-holed API server slows the renewals down but does not stop them; the node's deadlines are
// the guard's, which no call holds up.
func (m *NodeManager) run(ctx context.Context, cfg heartbeat.Config, qd *wolfpackv1alpha1.QuorumDisk) error {
	t, err := m.newTransport(cfg)
	if err != nil {
		return err
	}
	m.keyChecked = m.Clock.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- t.Run(ctx) }()

	// These heartbeats have heard nothing yet: the view means something once they have listened
	// for a whole detection period.
	m.mu.Lock()
	m.s.hearing, m.s.listening = t, m.Clock.Now()
	every := m.s.renewInterval()
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.s.hearing = nil
		m.mu.Unlock()
		wake(m.kick)
	}()

	private := map[string]bool{}
	for _, n := range cfg.Networks {
		private[n.Name] = n.Private
	}
	// The Changes reader: Events, and a new decision and view at every change of what the node
	// hears.
	var reader sync.WaitGroup
	defer reader.Wait()
	defer cancel()
	reader.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case c, ok := <-t.Changes():
				if !ok {
					return
				}
				wake(m.kick)
				m.record(qd, c, private)
				wake(m.nudge)
			}
		}
	})

	renew := m.Clock.NewTicker(every)
	defer func() { renew.Stop() }()
	for {
		m.renewOnce(ctx, t, cfg)
		if peers, err := m.peers(ctx); err == nil {
			t.SetPeers(peers)
		}
		m.mu.Lock()
		now := m.s.renewInterval()
		m.mu.Unlock()
		if now != every {
			// A new lease duration: renew at its interval.
			renew.Stop()
			every, renew = now, m.Clock.NewTicker(now)
		}
		select {
		case <-ctx.Done():
			return <-done
		case err := <-done:
			return err
		case <-m.nudge:
		case <-renew.C():
			if m.changed(ctx, qd, cfg) {
				ctrl.LoggerFrom(ctx).Info("the cluster's heartbeat settings or key changed; restarting the heartbeats")
				cancel()
				return <-done
			}
		}
	}
}

// renewOnce writes the node's Lease with what it hears now, and reads the cluster again (from the
// cache) for its members, its quorum disk's owner and its lease duration.
func (m *NodeManager) renewOnce(ctx context.Context, t Transport, cfg heartbeat.Config) {
	now := m.Clock.Now()
	m.mu.Lock()
	view := membership.View{Incarnation: m.incarnation, Joined: m.s.joined(now), Peers: t.Reachable(),
		Addresses: addresses(cfg.Networks), Fenced: m.s.fenced}
	m.s.view = &view
	d := m.s.desired
	m.mu.Unlock()
	t.SetViewDigest(view.Digest())
	if err := m.renew(ctx, view, d); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "renewing the node Lease")
	} else {
		m.mu.Lock()
		m.s.lastRenewed, m.s.published = now, d
		m.mu.Unlock()
	}
	if qd, err := m.cluster(ctx); err == nil {
		m.mu.Lock()
		m.s.cluster, m.s.desired = qd, m.desired(qd)
		m.mu.Unlock()
	}
	wake(m.kick)
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
	now, err := m.cluster(ctx)
	if err != nil {
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
	ctx, cancel := m.call(ctx)
	defer cancel()
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

// renew writes the node's Lease with view and the lease duration the agent acts on, each call
// bounded by the renew interval. A Lease read anew (the first time, or after a failed write) tells
// which duration the manager judges the node by until the write succeeds.
func (m *NodeManager) renew(ctx context.Context, view membership.View, duration time.Duration) error {
	if m.lease == nil {
		l := &coordinationv1.Lease{}
		gctx, cancel := m.call(ctx)
		err := m.APIReader.Get(gctx, client.ObjectKey{Namespace: m.LeaseNamespace, Name: m.Node}, l)
		cancel()
		switch {
		case apierrors.IsNotFound(err):
			l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: m.LeaseNamespace, Name: m.Node}}
		case err != nil:
			return fmt.Errorf("reading Lease %s/%s: %w", m.LeaseNamespace, m.Node, err)
		case ptr.Deref(l.Spec.HolderIdentity, "") == m.Node && l.Spec.LeaseDurationSeconds != nil:
			m.mu.Lock()
			m.s.published = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
			m.mu.Unlock()
		}
		m.lease = l
	}
	l := m.lease.DeepCopy()
	l.Labels = map[string]string{wolfpackv1alpha1.ClusterLabel: m.Cluster, wolfpackv1alpha1.NodeLabel: m.Node}
	l.Annotations = map[string]string{wolfpackv1alpha1.ViewAnnotation: view.Encode()}
	l.Spec.HolderIdentity = ptr.To(m.Node)
	l.Spec.LeaseDurationSeconds = ptr.To(int32((duration + time.Second - 1) / time.Second)) //nolint:gosec // at most 5m, by the CRD's validation
	l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(m.Clock.Now()))
	wctx, cancel := m.call(ctx)
	defer cancel()
	var err error
	if l.ResourceVersion == "" {
		err = m.Client.Create(wctx, l)
	} else {
		err = m.Client.Update(wctx, l)
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
