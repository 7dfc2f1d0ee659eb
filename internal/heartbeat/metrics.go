package heartbeat

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Transport's counters and gauges. The caller registers them where it wants
// them; a Transport fills in the label values of its networks at zero when it is made.
type Metrics struct {
	// Sent counts heartbeats sent, by network: one per peer per interval.
	Sent *prometheus.CounterVec
	// SendErrors counts heartbeats that could not be sent, by network: an unreachable peer
	// address, a network that is down.
	SendErrors *prometheus.CounterVec
	// Received counts heartbeats received and believed, by network. Those not believed are
	// counted by Dropped instead.
	Received *prometheus.CounterVec
	// Dropped counts datagrams received and not believed, by network and reason: the values of
	// Drop (size covers oversized datagrams).
	Dropped *prometheus.CounterVec
	// PeerReachable is 1 while a peer is heard on a network, 0 when it is not, for every network
	// on which the peer has an address.
	PeerReachable *prometheus.GaugeVec
	// PeerLost counts the times a peer went from heard on some network to heard on none:
	// heartbeat loss, the peer unreachable for this agent.
	PeerLost *prometheus.CounterVec
}

// NewMetrics returns unregistered Metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		Sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wolfpack_agent_heartbeats_sent_total",
			Help: "Heartbeats the node agent sent to its peers, by network.",
		}, []string{"network"}),
		SendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wolfpack_agent_heartbeat_send_errors_total",
			Help: "Heartbeats the node agent failed to send to a peer, by network.",
		}, []string{"network"}),
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wolfpack_agent_heartbeats_received_total",
			Help: "Heartbeats the node agent received from its peers and believed, by network.",
		}, []string{"network"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wolfpack_agent_heartbeats_dropped_total",
			Help: "Datagrams the node agent received on its heartbeat port and did not believe, by network and reason.",
		}, []string{"network", "reason"}),
		PeerReachable: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wolfpack_agent_peer_reachable",
			Help: "Whether the node agent hears a peer's heartbeats on a network (1) or not (0).",
		}, []string{"peer", "network"}),
		PeerLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wolfpack_agent_peer_lost_total",
			Help: "Times a peer's heartbeats stopped on every network: the peer became unreachable for this node agent.",
		}, []string{"peer"}),
	}
}

// Collectors returns the collectors to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Sent, m.SendErrors, m.Received, m.Dropped, m.PeerReachable, m.PeerLost}
}

// drops are the reasons counted by Dropped.
var drops = []Drop{DropSize, DropVersion, DropMalformed, DropMAC, DropCluster, DropReplay, DropStale, DropSender}

// init sets the per-network series to zero, so that they exist before anything happens.
func (m *Metrics) init(networks []Network) {
	for _, n := range networks {
		m.Sent.WithLabelValues(n.Name)
		m.SendErrors.WithLabelValues(n.Name)
		m.Received.WithLabelValues(n.Name)
		for _, d := range drops {
			m.Dropped.WithLabelValues(n.Name, string(d))
		}
	}
}
