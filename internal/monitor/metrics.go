package monitor

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Why the Supervisor restarted the monitor process: the values of the reason label of
// wolfpack_agent_monitor_restarts_total.
const (
	// RestartCrashed means the monitor process exited, or closed its output, by itself.
	RestartCrashed = "Crashed"
	// RestartHung means the monitor process stopped answering pings and was killed.
	RestartHung = "Hung"
	// RestartStartFailed means the monitor process could not be started.
	RestartStartFailed = "StartFailed"
)

// Metrics are the Supervisor's counters. The caller registers them where it wants them.
type Metrics struct {
	// Restarts counts restarts of the monitor process, by reason.
	Restarts *prometheus.CounterVec
	// Checks counts the results of checks, by reason.
	Checks *prometheus.CounterVec
}

// NewMetrics returns unregistered Metrics, every label value already at zero.
func NewMetrics() *Metrics {
	m := &Metrics{
		Restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wolfpack_agent_monitor_restarts_total",
			Help: "Restarts of the node agent's resource monitor process, by reason.",
		}, []string{"reason"}),
		Checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wolfpack_agent_monitor_checks_total",
			Help: "Health checks run through the node agent's resource monitor, by result.",
		}, []string{"result"}),
	}
	for _, r := range []string{RestartCrashed, RestartHung, RestartStartFailed} {
		m.Restarts.WithLabelValues(r)
	}
	for _, r := range Reasons {
		m.Checks.WithLabelValues(string(r))
	}
	return m
}

// Collectors returns the collectors to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Restarts, m.Checks}
}

// Register registers the collectors with r.
func (m *Metrics) Register(r prometheus.Registerer) error {
	return errors.Join(r.Register(m.Restarts), r.Register(m.Checks))
}
