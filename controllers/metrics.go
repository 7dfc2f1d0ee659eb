package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

var (
	failoversTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wolfpack_group_failovers_total",
		Help: "Failovers started, by group and reason.",
	}, []string{"namespace", "group", "reason"})

	operationDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "wolfpack_group_operation_duration_seconds",
		Help:    "Time from the start of a group operation (online, offline, move, failover, failback) to its end.",
		Buckets: []float64{0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300},
	}, []string{"kind", "result"})

	groupState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "wolfpack_group_state",
		Help: "1 for the state a group is in, 0 for the others.",
	}, []string{"namespace", "group", "state"})

	resourceState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "wolfpack_resource_state",
		Help: "1 for the state a resource is in, 0 for the others.",
	}, []string{"namespace", "resource", "state"})

	nodeState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "wolfpack_node_state",
		Help: "1 for the state a member node is in (Up, Down, Paused, Joining), 0 for the others.",
	}, []string{"cluster", "node", "state"})

	resourceRestarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wolfpack_resource_restarts_total",
		Help: "Restarts of failed resources on the same node.",
	}, []string{"namespace", "resource"})
)

func init() {
	metrics.Registry.MustRegister(failoversTotal, operationDuration, groupState, resourceState, nodeState, resourceRestarts)
}

var (
	groupStates    = []wolfpackv1alpha1.GroupState{wolfpackv1alpha1.GroupOnline, wolfpackv1alpha1.GroupPartialOnline, wolfpackv1alpha1.GroupOffline, wolfpackv1alpha1.GroupPending, wolfpackv1alpha1.GroupFailed}
	nodeStates     = []wolfpackv1alpha1.NodeState{wolfpackv1alpha1.NodeUp, wolfpackv1alpha1.NodeDown, wolfpackv1alpha1.NodePaused, wolfpackv1alpha1.NodeJoining}
	resourceStates = []wolfpackv1alpha1.ResourceState{wolfpackv1alpha1.ResourceOffline, wolfpackv1alpha1.ResourceOnlinePending, wolfpackv1alpha1.ResourceOnline, wolfpackv1alpha1.ResourceOfflinePending, wolfpackv1alpha1.ResourceFailed}
)

func setGroupState(namespace, name string, state wolfpackv1alpha1.GroupState) {
	setOneHot(groupState, namespace, name, groupStates, state)
}

func setNodeState(cluster, node string, state wolfpackv1alpha1.NodeState) {
	setOneHot(nodeState, cluster, node, nodeStates, state)
}

func setResourceState(namespace, name string, state wolfpackv1alpha1.ResourceState) {
	setOneHot(resourceState, namespace, name, resourceStates, state)
}

// setOneHot sets the gauge to 1 for the object's current state and to 0 for the others.
func setOneHot[S ~string](gauge *prometheus.GaugeVec, namespace, name string, states []S, current S) {
	for _, s := range states {
		v := 0.0
		if s == current {
			v = 1
		}
		gauge.WithLabelValues(namespace, name, string(s)).Set(v)
	}
}

func forgetGroup(namespace, name string) {
	groupState.DeletePartialMatch(prometheus.Labels{"namespace": namespace, "group": name})
}

func forgetResource(namespace, name string) {
	resourceState.DeletePartialMatch(prometheus.Labels{"namespace": namespace, "resource": name})
}
