package heartbeat

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// Defaults of Config. Port, Interval and Threshold default to the QuorumDisk's.
const (
	// DefaultPort is MSCS's cluster service port.
	DefaultPort = wolfpackv1alpha1.DefaultHeartbeatPort
	// DefaultInterval is how often a heartbeat goes to every peer on every network.
	DefaultInterval = wolfpackv1alpha1.DefaultHeartbeatInterval
	// DefaultThreshold is how many intervals a peer may stay silent on a network: with
	// DefaultInterval, a silent peer is noticed in 2 s.
	DefaultThreshold = wolfpackv1alpha1.DefaultHeartbeatThreshold
	// DefaultClockDrift is the drift between the nodes' clocks that the default MaxSkew allows
	// on top of the detection time.
	DefaultClockDrift = time.Second
)

// DropSender means a believed heartbeat that did not come from its sender's address on the
// network it arrived on, or from no peer's: a node that is not (yet) a peer, or a datagram
// moved from one network to another.
const DropSender Drop = "sender"

// changesBuffer is how many Changes wait for a slow consumer before the oldest is dropped.
const changesBuffer = 64

// Network is one network the agent sends heartbeats on.
type Network struct {
	// Name names the network in Peer.Addrs, Change and the metrics.
	Name string
	// Private networks are sent on first: the cluster's own, the public ones are the fallback.
	Private bool
	// Local is this agent's address on the network; its heartbeat socket is bound to it.
	Local netip.Addr
}

// Peer is another node of the cluster.
type Peer struct {
	// Name is the peer's node name, the sender of its heartbeats.
	Name string
	// Addrs are the peer's addresses by network name; heartbeats go to the Port of each.
	Addrs map[string]netip.Addr
}

// Config configures a Transport. Zero values take the defaults.
type Config struct {
	// Self is this node's name, the sender of its heartbeats.
	Self string
	// ClusterUID is the QuorumDisk's UID.
	ClusterUID [uidLen]byte
	// Key is the cluster's shared key, at least MinKeyLen bytes.
	Key []byte
	// Port is the UDP port of every agent on every network: DefaultPort when zero.
	Port int
	// Interval is the time between heartbeats: DefaultInterval when zero.
	Interval time.Duration
	// Threshold is how many intervals a peer may be silent on a network before it counts as
	// not heard there: DefaultThreshold when zero.
	Threshold int
	// MaxSkew is how far a heartbeat's send time may be from this agent's clock. When zero, it
	// is Interval x Threshold (the detection time) plus DefaultClockDrift (1 s) of drift
	// between the nodes' clocks.
	MaxSkew time.Duration
	// Networks are the networks to send on, at least one.
	Networks []Network
	// Clock is the real clock when nil.
	Clock clock.WithTicker
	// Metrics, if any, count what the Transport does.
	Metrics *Metrics
}

// Change is a change of the networks on which a peer is heard, or of whether it hears this
// node. After is empty when the peer is lost (heard on no network any more), Before is empty
// when it is found.
type Change struct {
	Peer          string
	Before, After []string
	// HeardBy is, after the change, whether the peer's latest heartbeat says that it hears this
	// node (see Transport.HeardBy).
	HeardBy bool
	At      time.Time
}

// Transport sends heartbeats to the peers on every network and listens for theirs: the
// Cluster Network Driver of one agent. A peer is reachable while heard on any network within
// Interval x Threshold.
//
// Every datagram is believed or dropped on its own network: the same heartbeat is sent on all
// networks, so each network has its own replay window. Someone who can spoof a peer's address
// on one network could therefore copy a fresh heartbeat that the peer sent on another onto it
// and make the peer look heard there too; the peer is alive either way, so membership is not
// affected.
type Transport struct {
	cfg         Config
	incarnation uint64
	metrics     *Metrics
	changes     chan Change
	peersSet    chan struct{} // wakes the loop after SetPeers
	running     atomic.Bool

	mu      sync.Mutex
	peers   []Peer
	view    [digestLen]byte
	reach   map[string][]string
	heardBy map[string]bool
	sockets map[string]*net.UDPConn // by network, while Run runs; the tests close one to cut its network
}

// New checks cfg, fills in the defaults and returns a Transport with a fresh incarnation.
func New(cfg Config) (*Transport, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	incarnation, err := newIncarnation(cfg.Clock.Now())
	if err != nil {
		return nil, err
	}
	cfg.Key = bytes.Clone(cfg.Key)
	cfg.Networks = slices.Clone(cfg.Networks)
	// Private networks first, otherwise in the order given.
	slices.SortStableFunc(cfg.Networks, func(a, b Network) int { return cmp.Compare(rank(a), rank(b)) })
	m := cfg.Metrics
	if m == nil {
		m = NewMetrics()
	}
	m.init(cfg.Networks)
	return &Transport{
		cfg:         cfg,
		incarnation: incarnation,
		metrics:     m,
		changes:     make(chan Change, changesBuffer),
		peersSet:    make(chan struct{}, 1),
		reach:       map[string][]string{},
		heardBy:     map[string]bool{},
	}, nil
}

// rank orders private networks before the others.
func rank(n Network) int {
	if n.Private {
		return 0
	}
	return 1
}

// complete fills in the defaults of c and checks it.
func (c *Config) complete() error {
	if c.Self == "" || len(c.Self) > MaxSenderLen {
		return fmt.Errorf("heartbeat: Config.Self %q: want a node name of 1 to %d bytes", c.Self, MaxSenderLen)
	}
	if c.ClusterUID == [uidLen]byte{} {
		return errors.New("heartbeat: Config.ClusterUID is zero")
	}
	if len(c.Key) < MinKeyLen {
		return fmt.Errorf("heartbeat: Config.Key of %d bytes, want at least %d", len(c.Key), MinKeyLen)
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("heartbeat: Config.Port %d out of range", c.Port)
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Interval < 0 {
		return fmt.Errorf("heartbeat: Config.Interval %v is negative", c.Interval)
	}
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold
	}
	if c.Threshold < 0 {
		return fmt.Errorf("heartbeat: Config.Threshold %d is negative", c.Threshold)
	}
	if c.MaxSkew == 0 {
		c.MaxSkew = c.timeout() + DefaultClockDrift
	}
	if c.MaxSkew < 0 {
		return fmt.Errorf("heartbeat: Config.MaxSkew %v is negative", c.MaxSkew)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	return checkNetworks(c.Networks)
}

// checkNetworks checks that there are networks, with names and addresses of their own.
func checkNetworks(networks []Network) error {
	if len(networks) == 0 {
		return errors.New("heartbeat: Config.Networks is empty")
	}
	names, locals := map[string]bool{}, map[netip.Addr]bool{}
	for i, n := range networks {
		switch {
		case n.Name == "":
			return fmt.Errorf("heartbeat: Config.Networks[%d].Name is empty", i)
		case names[n.Name]:
			return fmt.Errorf("heartbeat: Config.Networks[%d].Name %q is not unique", i, n.Name)
		case !n.Local.IsValid() || n.Local.IsUnspecified():
			return fmt.Errorf("heartbeat: Config.Networks[%d].Local of %q: want this node's address on it, not %q", i, n.Name, n.Local)
		case locals[n.Local.Unmap()]:
			return fmt.Errorf("heartbeat: Config.Networks[%d].Local %s of %q is another network's too", i, n.Local, n.Name)
		}
		names[n.Name], locals[n.Local.Unmap()] = true, true
	}
	return nil
}

// timeout is how long a peer may be silent on a network.
func (c *Config) timeout() time.Duration {
	return c.Interval * time.Duration(c.Threshold)
}

// newIncarnation returns the clock in nanoseconds with its low 16 bits random: it goes up with
// every start of the agent as long as the clock does, and two agents started in the same
// instant under the same name (a mistake) still differ.
func newIncarnation(now time.Time) (uint64, error) {
	var r [2]byte
	if _, err := rand.Read(r[:]); err != nil {
		return 0, fmt.Errorf("heartbeat: choosing an incarnation: %w", err)
	}
	nanos := uint64(max(now.UnixNano(), 0))
	return nanos&^0xFFFF | uint64(binary.BigEndian.Uint16(r[:])), nil
}

// SetPeers replaces the peers. A peer named Self, addresses on networks that are not
// configured and invalid addresses are ignored. A peer that is no longer listed is forgotten
// without a Change and without counting it lost. It is safe for concurrent use.
func (t *Transport) SetPeers(peers []Peer) {
	copied := make([]Peer, 0, len(peers))
	for _, p := range peers {
		if p.Name != "" && p.Name != t.cfg.Self {
			copied = append(copied, Peer{Name: p.Name, Addrs: maps.Clone(p.Addrs)})
		}
	}
	t.mu.Lock()
	t.peers = copied
	t.mu.Unlock()
	select {
	case t.peersSet <- struct{}{}:
	default: // the loop has yet to look at the previous peers
	}
}

// SetViewDigest sets the membership view digest carried by the next heartbeats.
func (t *Transport) SetViewDigest(d [digestLen]byte) {
	t.mu.Lock()
	t.view = d
	t.mu.Unlock()
}

// Reachable returns the networks each peer is heard on now, sorted, for the peers heard on at
// least one. After Run returns, it is empty.
func (t *Transport) Reachable() map[string][]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string][]string, len(t.reach))
	for peer, networks := range t.reach {
		out[peer] = slices.Clone(networks)
	}
	return out
}

// HeardBy returns the peers that hear this node: those heard now whose latest heartbeat lists
// this node among the peers they hear. A peer of an older release, whose heartbeats do not say
// (wire format version 1), is never in it. Together with Reachable it tells which peers are
// on this node's side of a partition: the ones heard both ways. After Run returns, it is empty.
func (t *Transport) HeardBy() map[string]bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.heardBy)
}

// Changes delivers every change of the networks a peer is heard on, including to none (lost)
// and from none (found). The transport never waits for the consumer: when a consumer falls
// behind by more than 64 Changes, the oldest one waiting is dropped to make room; Reachable
// always has the current state. The channel is closed when Run returns.
func (t *Transport) Changes() <-chan Change {
	return t.changes
}

// Run binds one UDP socket per network to its Local address and Port, sends a heartbeat to
// every peer on every network each Interval (private networks first), and receives, filters
// and detects until ctx ends. It returns nil then, with the sockets closed and its goroutines
// ended, or an error if a socket cannot be bound. The sockets are made in the network
// namespace of the calling thread. Run may be called once.
func (t *Transport) Run(ctx context.Context) error {
	if !t.running.CompareAndSwap(false, true) {
		return errors.New("heartbeat: Run called twice")
	}
	defer close(t.changes)
	sockets, err := t.listen(ctx)
	if err != nil {
		return err
	}
	in := make(chan datagram, 64)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range sockets {
		wg.Go(func() { t.receive(s, in, done) })
	}
	defer func() {
		close(done)
		closeAll(sockets)
		wg.Wait()
		t.mu.Lock()
		t.sockets, t.reach, t.heardBy = nil, map[string][]string{}, map[string]bool{}
		t.mu.Unlock()
	}()
	newLoop(t, sockets).run(ctx, in)
	return nil
}

// socket is a network's heartbeat socket.
type socket struct {
	network Network
	conn    *net.UDPConn
}

// listen binds the sockets, in the order of the networks.
func (t *Transport) listen(ctx context.Context) ([]socket, error) {
	var lc net.ListenConfig
	sockets := make([]socket, 0, len(t.cfg.Networks))
	byName := map[string]*net.UDPConn{}
	for _, n := range t.cfg.Networks {
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(n.Local.String(), strconv.Itoa(t.cfg.Port)))
		if err != nil {
			closeAll(sockets)
			return nil, fmt.Errorf("heartbeat: network %q: %w", n.Name, err)
		}
		conn, ok := pc.(*net.UDPConn)
		if !ok { // "udp" makes a *net.UDPConn
			_ = pc.Close()
			closeAll(sockets)
			return nil, fmt.Errorf("heartbeat: network %q: a %T, not a UDP socket", n.Name, pc)
		}
		sockets = append(sockets, socket{network: n, conn: conn})
		byName[n.Name] = conn
	}
	t.mu.Lock()
	t.sockets = byName
	t.mu.Unlock()
	return sockets, nil
}

func closeAll(sockets []socket) {
	for _, s := range sockets {
		_ = s.conn.Close()
	}
}

// datagram is what a socket received.
type datagram struct {
	network string
	from    netip.Addr
	data    []byte
	at      time.Time
}

// receive reads s until it is closed and hands what it reads to the loop. The buffer is one
// byte longer than the longest heartbeat, so that a longer datagram is seen to be too long.
func (t *Transport) receive(s socket, in chan<- datagram, done <-chan struct{}) {
	buf := make([]byte, MaxSize+1)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // transient: an unconnected UDP socket does not even report ICMP errors
		}
		d := datagram{network: s.network.Name, from: from.Addr().Unmap(), data: bytes.Clone(buf[:n]), at: t.cfg.Clock.Now()}
		select {
		case in <- d:
		case <-done:
			return
		}
	}
}

// publish records a change for Reachable and Changes, dropping the oldest Change waiting when
// the channel is full.
func (t *Transport) publish(c Change) {
	t.mu.Lock()
	if len(c.After) == 0 {
		delete(t.reach, c.Peer)
	} else {
		t.reach[c.Peer] = c.After
	}
	if c.HeardBy {
		t.heardBy[c.Peer] = true
	} else {
		delete(t.heardBy, c.Peer)
	}
	t.mu.Unlock()
	for {
		select {
		case t.changes <- c:
			return
		default:
		}
		select {
		case <-t.changes:
		default:
		}
	}
}

// loop is the state of Run's one goroutine, which alone sends and owns the filters and the
// detector.
type loop struct {
	t        *Transport
	sockets  []socket // private networks first
	seq      uint64
	peers    map[string]Peer
	names    []string                         // of the peers, sorted: the order of sending
	byAddr   map[string]map[netip.Addr]string // network -> address -> peer
	filters  map[string]*Filter               // by network
	detector Detector
	reach    map[string][]string // what was last published
	// hearsUs is, per peer, whether its latest heartbeat lists this node; heardBy is what was
	// last published of it.
	hearsUs, heardBy map[string]bool
	self             NameDigest
	timer            clock.Timer
	checked          time.Time // when checkAll last ran
}

func newLoop(t *Transport, sockets []socket) *loop {
	l := &loop{
		t:        t,
		sockets:  sockets,
		peers:    map[string]Peer{},
		filters:  map[string]*Filter{},
		detector: Detector{Timeout: t.cfg.timeout()},
		reach:    map[string][]string{},
		hearsUs:  map[string]bool{},
		heardBy:  map[string]bool{},
		self:     NameDigestOf(t.cfg.Self),
	}
	for _, s := range sockets {
		l.filters[s.network.Name] = &Filter{ClusterUID: t.cfg.ClusterUID, Key: t.cfg.Key, MaxSkew: t.cfg.MaxSkew}
	}
	return l
}

func (l *loop) run(ctx context.Context, in <-chan datagram) {
	c := l.t.cfg.Clock
	ticker := c.NewTicker(l.t.cfg.Interval)
	defer ticker.Stop()
	l.timer = c.NewTimer(time.Hour)
	l.timer.Stop()
	defer l.timer.Stop()
	var expired <-chan time.Time // the timer's channel while it is set

	l.setPeers()
	l.send(c.Now())
	for {
		select {
		case <-ctx.Done():
			l.stop()
			return
		case <-ticker.C():
			l.send(c.Now())
		case d := <-in:
			l.receive(d)
		case <-expired: // below
		case <-l.t.peersSet:
			l.setPeers()
		}
		expired = l.detect(c.Now())
	}
}

// detect looks at every peer heard when a deadline has passed since it last did, whether or
// not the timer's tick was received (another event may have come first). It sets the timer for
// the instant after the next deadline, when that network no longer counts, and returns the
// timer's channel, or nil when nothing is heard.
func (l *loop) detect(now time.Time) <-chan time.Time {
	// The first deadline not yet looked at: at its deadline a network still counts.
	next := l.detector.NextDeadline(l.checked.Add(-time.Nanosecond))
	if !next.IsZero() && now.After(next) {
		l.checkAll(now)
		l.checked = now
		next = l.detector.NextDeadline(now.Add(-time.Nanosecond))
	}
	l.timer.Stop()
	select {
	case <-l.timer.C(): // a tick that came too late to be received: some clocks keep it
	default:
	}
	if next.IsZero() {
		return nil
	}
	l.timer.Reset(next.Sub(now) + time.Nanosecond)
	return l.timer.C()
}

// setPeers takes the Transport's peers, and forgets the ones that are gone.
func (l *loop) setPeers() {
	l.t.mu.Lock()
	peers := l.t.peers
	l.t.mu.Unlock()

	old := l.peers
	l.peers, l.names, l.byAddr = map[string]Peer{}, nil, map[string]map[netip.Addr]string{}
	for _, s := range l.sockets {
		l.byAddr[s.network.Name] = map[netip.Addr]string{}
	}
	for _, p := range peers {
		l.peers[p.Name] = p
		for network, addr := range p.Addrs {
			if byAddr, ok := l.byAddr[network]; ok && addr.IsValid() {
				byAddr[addr.Unmap()] = p.Name
			}
		}
	}
	l.names = slices.Sorted(maps.Keys(l.peers))
	for name := range old {
		// The gauges go, and come back below for the networks the peer still has an address on.
		l.t.metrics.PeerReachable.DeletePartialMatch(map[string]string{"peer": name})
		if _, ok := l.peers[name]; !ok {
			l.detector.Forget(name)
			delete(l.reach, name)
			delete(l.hearsUs, name)
			delete(l.heardBy, name)
			l.t.mu.Lock()
			delete(l.t.reach, name)
			delete(l.t.heardBy, name)
			l.t.mu.Unlock()
		}
	}
	for _, name := range l.names {
		l.gauge(name, l.reach[name])
	}
}

// stop sets the gauges of the peers heard to 0: when Run returns, nothing is heard.
func (l *loop) stop() {
	for peer := range l.reach {
		l.gauge(peer, nil)
	}
}

// send sends the next heartbeat to every peer on every network, private networks first. An
// address that cannot be sent to is counted and skipped.
func (l *loop) send(now time.Time) {
	t := l.t
	l.seq++
	t.mu.Lock()
	view := t.view
	t.mu.Unlock()
	hears := make([]NameDigest, 0, len(l.reach))
	for _, peer := range slices.Sorted(maps.Keys(l.reach)) {
		if len(hears) < MaxHears {
			hears = append(hears, NameDigestOf(peer))
		}
	}
	b, err := Encode(&Message{ClusterUID: t.cfg.ClusterUID, Sender: t.cfg.Self, Incarnation: t.incarnation,
		Sequence: l.seq, SentAt: now, ViewDigest: view, HearsKnown: true, Hears: hears}, t.cfg.Key)
	if err != nil {
		return // cannot happen: New checked the name and the key
	}
	for _, s := range l.sockets {
		network := s.network.Name
		// A write that cannot go out within an interval is not worth waiting for.
		_ = s.conn.SetWriteDeadline(time.Now().Add(t.cfg.Interval))
		for _, name := range l.names {
			addr, ok := l.peers[name].Addrs[network]
			if !ok || !addr.IsValid() {
				continue
			}
			//nolint:gosec // Port was checked to be in range
			if _, err := s.conn.WriteToUDPAddrPort(b, netip.AddrPortFrom(addr, uint16(t.cfg.Port))); err != nil {
				t.metrics.SendErrors.WithLabelValues(network).Inc()
				continue
			}
			t.metrics.Sent.WithLabelValues(network).Inc()
		}
	}
}

// receive filters a datagram and, if believed, records its sender as heard on its network.
func (l *loop) receive(d datagram) {
	m := l.t.metrics
	msg, drop := l.filters[d.network].Accept(d.data, d.at)
	if drop == Accepted && msg.Sender != l.byAddr[d.network][d.from] {
		drop = DropSender
	}
	if drop != Accepted {
		m.Dropped.WithLabelValues(d.network, string(drop)).Inc()
		return
	}
	m.Received.WithLabelValues(d.network).Inc()
	l.detector.Heard(msg.Sender, d.network, d.at)
	l.hearsUs[msg.Sender] = msg.HearsKnown && slices.Contains(msg.Hears, l.self)
	// Now, not when it was received: a datagram that waited must not bring back a network
	// already found silent.
	l.check(msg.Sender, l.t.cfg.Clock.Now())
}

// checkAll looks again at every peer heard: some may have gone silent on a network.
func (l *loop) checkAll(now time.Time) {
	for _, peer := range slices.Sorted(maps.Keys(l.reach)) {
		l.check(peer, now)
	}
}

// check publishes a change of the networks peer is heard on, or of whether it hears this node.
// A peer that is not heard does not count as hearing this node.
func (l *loop) check(peer string, now time.Time) {
	before, after := l.reach[peer], l.detector.Networks(peer, now)
	heardBy := len(after) > 0 && l.hearsUs[peer]
	if slices.Equal(before, after) && heardBy == l.heardBy[peer] {
		return
	}
	if len(after) == 0 {
		delete(l.reach, peer)
		delete(l.hearsUs, peer)
		if len(before) > 0 {
			l.t.metrics.PeerLost.WithLabelValues(peer).Inc()
		}
	} else {
		l.reach[peer] = after
	}
	if heardBy {
		l.heardBy[peer] = true
	} else {
		delete(l.heardBy, peer)
	}
	l.gauge(peer, after)
	l.t.publish(Change{Peer: peer, Before: before, After: after, HeardBy: heardBy, At: now})
}

// gauge sets the reachable gauge of peer on each network where it has an address.
func (l *loop) gauge(peer string, heard []string) {
	for _, s := range l.sockets {
		if _, ok := l.peers[peer].Addrs[s.network.Name]; !ok {
			continue
		}
		v := 0.0
		if slices.Contains(heard, s.network.Name) {
			v = 1
		}
		l.t.metrics.PeerReachable.WithLabelValues(peer, s.network.Name).Set(v)
	}
}
