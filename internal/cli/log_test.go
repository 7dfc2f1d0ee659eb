package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
)

// ref is an Event's reference to a Wolfpack object of kind.
func ref(kind string, obj client.Object) corev1.ObjectReference {
	return corev1.ObjectReference{APIVersion: wolfpackv1alpha1.GroupVersion.String(), Kind: kind,
		Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID()}
}

// event makes an Event as the manager's or an agent's recorder does.
func event(ns, name string, at time.Time, controller, instance, typ, reason, note string, regarding corev1.ObjectReference) *eventsv1.Event {
	return &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		EventTime:  metav1.NewMicroTime(at), ReportingController: controller, ReportingInstance: instance,
		Action: "Reconcile", Type: typ, Reason: reason, Note: note, Regarding: regarding,
	}
}

func TestLog(t *testing.T) {
	fixture(t)
	qd := getCluster(t)
	sql, reports := getGroup(t, prod, "sql"), getGroup(t, staging, "reports")
	server := builder.Resource(prod, "server").Obj()
	agentA, agentB, manager := "wolfpack-node-agent", "wolfpack-node-agent", "wolfpack-manager"
	at := func(d time.Duration) time.Time { return now.Add(-d) }
	// Created out of time order, in three namespaces: the log puts them in order.
	for _, e := range []*eventsv1.Event{
		event(prod, "sql.2", at(58*time.Second), manager, "manager-7d9f-x2", "Normal", "MoveSucceeded",
			"Move done: every resource is online on node-b (epoch 2) after 1.9s", ref("ResourceGroup", sql)),
		event("default", "demo.1", at(3*time.Minute), agentB, "node-b", "Warning", "HeartbeatLost",
			"stopped hearing node-a on every network", ref("QuorumDisk", qd)),
		event(prod, "server.1", at(59*time.Second), manager, "manager-7d9f-x2", "Normal", "Online", "pod sql-server-2 is Running and Ready on node-b",
			ref("Resource", server)),
		event(staging, "reports.1", at(2*time.Minute), manager, "manager-7d9f-x2", "Normal", "GroupOffline", "every resource is offline",
			ref("ResourceGroup", reports)),
		event("default", "demo.2", at(4*time.Minute), agentA, "node-a", "Warning", "PrivateNetworkLost",
			"heartbeats to node-b fell back to network public", ref("QuorumDisk", qd)),
		event(prod, "sql.1", at(time.Minute), manager, "manager-7d9f-x2", "Normal", "MoveRequested", "moving from node-a to node-b as requested",
			ref("ResourceGroup", sql)),
		// Not about this cluster: left out.
		event(prod, "pod.1", at(30*time.Second), "kubelet", "node-a", "Normal", "Started", "Started container", corev1.ObjectReference{
			APIVersion: "v1", Kind: "Pod", Namespace: prod, Name: "sql-server-2"}),
		event("default", "other.1", at(30*time.Second), agentA, "node-z", "Normal", "NodeUp", "node node-z is Up",
			corev1.ObjectReference{APIVersion: wolfpackv1alpha1.GroupVersion.String(), Kind: "QuorumDisk", Name: "other"}),
	} {
		create(t, e)
	}

	golden(t, "log.golden", ok(t, "log"))

	out := ok(t, "log", "--since", "90s")
	if strings.Contains(out, "HeartbeatLost") || !strings.Contains(out, "MoveSucceeded") {
		t.Errorf("log --since 90s:\n%s", out)
	}
	out = ok(t, "log", "--group", "sql", "-n", prod)
	if strings.Contains(out, "QuorumDisk") || strings.Contains(out, "reports") || !strings.Contains(out, "Resource/prod/server") {
		t.Errorf("log --group sql:\n%s", out)
	}
	var l LogOutput
	if err := json.Unmarshal([]byte(ok(t, "log", "-o", "json")), &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Events) != 6 || l.Events[0].Reason != "PrivateNetworkLost" || l.Events[5].Reason != "MoveSucceeded" ||
		l.Events[0].Source != "wolfpack-node-agent/node-a" {
		t.Errorf("log -o json = %+v, want 6 Events from PrivateNetworkLost to MoveSucceeded", l.Events)
	}
	fails(t, []string{"log", "--since", "-1m"}, "--since must not be negative")
}
