package resourcetype

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
)

func workloadResource() *wp.Resource {
	return builder.Resource("db", "server").UID("uid-1").Group("sql").Workload(corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "pg"}, Annotations: map[string]string{"note": "x"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
			Containers: []corev1.Container{{Name: "pg", Image: "postgres:17", Env: []corev1.EnvVar{
				{Name: "PGDATA", Value: "/data"}, {Name: wp.EpochEnvVar, Value: "stale"},
			}}},
		},
	}).Obj()
}

func envOf(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return "<unset>"
}

func TestPod(t *testing.T) {
	r := workloadResource()
	pod, err := Pod(r, Placement{Node: "node-b", Epoch: 7})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"name", pod.Name, "sql-server-7"},
		{"namespace", pod.Namespace, "db"},
		{"node", pod.Spec.NodeName, "node-b"},
		{"restart policy", pod.Spec.RestartPolicy, corev1.RestartPolicyNever},
		{"template label", pod.Labels["app"], "pg"},
		{"group label", pod.Labels[wp.GroupLabel], "sql"},
		{"resource label", pod.Labels[wp.ResourceLabel], "server"},
		{"node label", pod.Labels[wp.NodeLabel], "node-b"},
		{"template annotation", pod.Annotations["note"], "x"},
		{"epoch annotation", pod.Annotations[wp.EpochAnnotation], "7"},
		{"epoch env (replaces a stale one)", envOf(pod.Spec.Containers[0], wp.EpochEnvVar), "7"},
		{"user env kept", envOf(pod.Spec.Containers[0], "PGDATA"), "/data"},
		{"epoch env in init containers", envOf(pod.Spec.InitContainers[0], wp.EpochEnvVar), "7"},
		{"env count", len(pod.Spec.Containers[0].Env), 2},
		{"owner", pod.OwnerReferences[0].Name, "server"},
		{"owner is controller", *pod.OwnerReferences[0].Controller, true},
		{"template untouched", r.Spec.Workload.Template.Labels[wp.GroupLabel], ""},
		{"template env untouched", envOf(r.Spec.Workload.Template.Spec.Containers[0], wp.EpochEnvVar), "stale"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}

	if _, err := Pod(builder.Resource("db", "disk").Volume("sql-data").Obj(), Placement{}); err == nil ||
		!strings.Contains(err.Error(), "db/disk has no workload.template") {
		t.Errorf("Pod of a non-workload resource: %v", err)
	}
}

func TestPodName(t *testing.T) {
	long := builder.Resource("", strings.Repeat("r", 250)).Group("g").Obj()
	cases := []struct {
		r     *wp.Resource
		epoch int64
		want  string
	}{
		{workloadResource(), 1, "sql-server-1"},
		{workloadResource(), 12, "sql-server-12"},
		{long, 3, "g-" + strings.Repeat("r", 249) + "-3"},
	}
	for _, tc := range cases {
		got := PodName(tc.r, tc.epoch)
		if got != tc.want {
			t.Errorf("PodName(epoch %d) = %q, want %q", tc.epoch, got, tc.want)
		}
		if len(got) > 253 {
			t.Errorf("PodName is %d characters long", len(got))
		}
	}
}

func TestPinTemplate(t *testing.T) {
	r := workloadResource()
	tmpl := &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		NodeSelector: map[string]string{"disktype": "ssd", corev1.LabelHostname: "node-a"},
		Containers:   []corev1.Container{{Name: "app"}},
	}}
	out := PinTemplate(r, tmpl, Placement{Node: "node-b", Epoch: 4})
	if out.Spec.NodeSelector[corev1.LabelHostname] != "node-b" || out.Spec.NodeSelector["disktype"] != "ssd" {
		t.Errorf("node selector %v, want hostname node-b and disktype kept", out.Spec.NodeSelector)
	}
	if out.Annotations[wp.EpochAnnotation] != "4" || envOf(out.Spec.Containers[0], wp.EpochEnvVar) != "4" {
		t.Errorf("epoch not handed to the workload: %v, %v", out.Annotations, out.Spec.Containers[0].Env)
	}
	if tmpl.Spec.NodeSelector[corev1.LabelHostname] != "node-a" {
		t.Error("PinTemplate changed its input")
	}
}

func TestPodHealth(t *testing.T) {
	ready := []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	pod := func(node string, phase corev1.PodPhase, conds []corev1.PodCondition) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{NodeName: node},
			Status: corev1.PodStatus{Phase: phase, Conditions: conds}}
	}
	deleting := pod("a", corev1.PodRunning, ready)
	deleting.DeletionTimestamp = &metav1.Time{}
	failed := pod("a", corev1.PodFailed, nil)
	failed.Status.Reason = "Evicted"
	cases := []struct {
		name string
		pod  *corev1.Pod
		want PodState
		msg  string
	}{
		{"pending", pod("a", corev1.PodPending, nil), PodStarting, "pod p is Pending"},
		{"running, not ready", pod("a", corev1.PodRunning, nil), PodStarting, "Running but not Ready"},
		{"running and ready", pod("a", corev1.PodRunning, ready), PodOnline, "Running and Ready on a"},
		{"failed", failed, PodFailed, "pod p Failed: Evicted"},
		{"succeeded", pod("a", corev1.PodSucceeded, nil), PodFailed, "pod p Succeeded"},
		{"on another node", pod("b", corev1.PodRunning, ready), PodFailed, "on node b, not a"},
		{"being deleted", deleting, PodFailed, "being deleted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := PodHealth(tc.pod, "a")
			if got != tc.want || !strings.Contains(msg, tc.msg) {
				t.Fatalf("PodHealth() = %s, %q; want %s, %q", got, msg, tc.want, tc.msg)
			}
		})
	}
}

func TestService(t *testing.T) {
	cases := []struct {
		name     string
		spec     wp.ServiceResource
		wantName string
		wantType corev1.ServiceType
	}{
		{"named", wp.ServiceResource{ServiceName: "sql", Ports: []corev1.ServicePort{{Port: 5432}}}, "sql", corev1.ServiceTypeClusterIP},
		{"defaults to the resource name", wp.ServiceResource{Ports: []corev1.ServicePort{{Port: 5432}}}, "name", corev1.ServiceTypeClusterIP},
		{"load balancer", wp.ServiceResource{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 5432}}}, "name", corev1.ServiceTypeLoadBalancer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Ports[0].TargetPort = intstr.FromInt32(5432)
			r := builder.Resource("db", "name").Group("sql").Service(spec).Obj()
			svc, err := Service(r, Placement{Node: "node-b", Epoch: 2})
			if err != nil {
				t.Fatal(err)
			}
			if svc.Name != tc.wantName || svc.Namespace != "db" || svc.Spec.Type != tc.wantType {
				t.Errorf("service %s/%s of type %s, want db/%s of type %s", svc.Namespace, svc.Name, svc.Spec.Type, tc.wantName, tc.wantType)
			}
			want := map[string]string{wp.GroupLabel: "sql", wp.NodeLabel: "node-b"}
			if len(svc.Spec.Selector) != 2 || svc.Spec.Selector[wp.GroupLabel] != want[wp.GroupLabel] ||
				svc.Spec.Selector[wp.NodeLabel] != want[wp.NodeLabel] {
				t.Errorf("selector %v, want %v", svc.Spec.Selector, want)
			}
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 5432 {
				t.Errorf("ports %v", svc.Spec.Ports)
			}
		})
	}
}

func TestVolumeHealth(t *testing.T) {
	pvc := func(mode corev1.PersistentVolumeAccessMode, phase corev1.PersistentVolumeClaimPhase) *corev1.PersistentVolumeClaim {
		c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{mode}}}
		c.Status.Phase = phase
		if phase == corev1.ClaimBound {
			c.Spec.VolumeName = "pv-1"
		}
		return c
	}
	va := func(pv, node string, attached, deleting bool) storagev1.VolumeAttachment {
		a := storagev1.VolumeAttachment{
			Spec:   storagev1.VolumeAttachmentSpec{NodeName: node, Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: ptr.To(pv)}},
			Status: storagev1.VolumeAttachmentStatus{Attached: attached},
		}
		if deleting {
			a.DeletionTimestamp = &metav1.Time{}
		}
		return a
	}
	bound := pvc(corev1.ReadWriteOnce, corev1.ClaimBound)
	cases := []struct {
		name        string
		pvc         *corev1.PersistentVolumeClaim
		attachments []storagev1.VolumeAttachment
		want        VolumeState
		msg         string
	}{
		{"no claim", nil, nil, VolumeWaiting, "does not exist"},
		{"shared claim", pvc(corev1.ReadWriteMany, corev1.ClaimBound), nil, VolumeFailed, "must be ReadWriteOnce"},
		{"pending claim", pvc(corev1.ReadWriteOnce, corev1.ClaimPending), nil, VolumeWaiting, "is Pending, not Bound"},
		{"bound, attached nowhere", bound, nil, VolumeOnline, "attached to no other node"},
		{"ReadWriteOncePod", pvc(corev1.ReadWriteOncePod, corev1.ClaimBound), nil, VolumeOnline, "bound to pv-1"},
		{"attached to the owner", bound, []storagev1.VolumeAttachment{va("pv-1", "a", true, false)}, VolumeOnline, ""},
		{"attached to another node", bound, []storagev1.VolumeAttachment{va("pv-1", "b", true, false)}, VolumeWaiting, "still attached to node b"},
		{"attaching on another node", bound, []storagev1.VolumeAttachment{va("pv-1", "b", false, false)}, VolumeWaiting, "node b"},
		{"detaching from another node", bound, []storagev1.VolumeAttachment{va("pv-1", "b", true, true)}, VolumeWaiting, "node b"},
		{"detached from another node", bound, []storagev1.VolumeAttachment{va("pv-1", "b", false, true)}, VolumeOnline, ""},
		{"another volume attached elsewhere", bound, []storagev1.VolumeAttachment{va("pv-2", "b", true, false)}, VolumeOnline, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := VolumeHealth(tc.pvc, tc.attachments, "a")
			if got != tc.want || !strings.Contains(msg, tc.msg) {
				t.Fatalf("VolumeHealth() = %s, %q; want %s, %q", got, msg, tc.want, tc.msg)
			}
		})
	}
}

func TestCustomObject(t *testing.T) {
	r := builder.Resource("db", "cfg").UID("u").Group("sql").
		Custom(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"namespace":"elsewhere","labels":{"a":"b"}},"data":{"k":"v"}}`, "true").Obj()
	obj, err := CustomObject(r, Placement{Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if obj.GetName() != "cfg" || obj.GetNamespace() != "db" || obj.GetKind() != "ConfigMap" {
		t.Errorf("object %s %s/%s, want ConfigMap db/cfg", obj.GetKind(), obj.GetNamespace(), obj.GetName())
	}
	if l := obj.GetLabels(); l["a"] != "b" || l[wp.ResourceLabel] != "cfg" {
		t.Errorf("labels %v", l)
	}
	if len(obj.GetOwnerReferences()) != 1 || obj.GetOwnerReferences()[0].UID != "u" {
		t.Errorf("owner references %v", obj.GetOwnerReferences())
	}
	r.Spec.Custom.Template.Raw = []byte(`{not json`)
	if _, err := CustomObject(r, Placement{}); err == nil || !strings.Contains(err.Error(), "spec.custom.template") {
		t.Errorf("bad template: %v", err)
	}
}

func TestHealthExpression(t *testing.T) {
	ready := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"phase": "Ready", "replicas": int64(2)}}}
	fresh := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{}}}
	cases := []struct {
		name       string
		expr       string
		obj        *unstructured.Unstructured
		compileErr string
		healthy    bool
		evalErr    string
	}{
		{name: "healthy", expr: `object.status.phase == "Ready"`, obj: ready, healthy: true},
		{name: "not healthy", expr: `object.status.replicas > 2`, obj: ready, healthy: false},
		{name: "has() guards a missing status", expr: `has(object.status) && object.status.phase == "Ready"`, obj: fresh, healthy: false},
		{name: "missing field is an error", expr: `object.status.phase == "Ready"`, obj: fresh, evalErr: "no such key: status"},
		{name: "does not compile", expr: `object.status.phase ==`, compileErr: "spec.custom.healthy"},
		{name: "not boolean", expr: `"yes"`, compileErr: "want bool"},
		{name: "dynamic result that is not boolean", expr: `object.status.phase`, obj: ready, evalErr: "did not return a bool"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := CompileHealth(tc.expr)
			if tc.compileErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.compileErr) {
					t.Fatalf("CompileHealth(%q) = %v, want an error with %q", tc.expr, err, tc.compileErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			healthy, err := h.Healthy(tc.obj)
			if tc.evalErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.evalErr) {
					t.Fatalf("Healthy() = %v, %v; want an error with %q", healthy, err, tc.evalErr)
				}
				return
			}
			if err != nil || healthy != tc.healthy {
				t.Fatalf("Healthy() = %v, %v; want %v", healthy, err, tc.healthy)
			}
		})
	}
}

func TestIPAddressHandler(t *testing.T) {
	ctx := context.Background()
	cond := func(status metav1.ConditionStatus, reason, msg string) []metav1.Condition {
		return []metav1.Condition{{Type: wp.AddressAssignedCondition, Status: status, Reason: reason, Message: msg}}
	}
	cases := []struct {
		name          string
		conds         []metav1.Condition
		online, offln State
		msg           string
	}{
		{"the agent has said nothing yet", nil, Pending, Offline, "waiting for the node agent on a to add 192.0.2.50"},
		{"added", cond(metav1.ConditionTrue, wp.AddressAddedReason, "node a holds 192.0.2.50/24"), Online, Pending, "node a holds"},
		{"removed", cond(metav1.ConditionFalse, wp.AddressRemovedReason, "node a removed it"), Pending, Offline, "waiting"},
		{"could not add", cond(metav1.ConditionFalse, wp.AddressFailedReason, `interface "eth9" not found`), Failed, Offline, `interface "eth9" not found`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := builder.Resource("db", "ip").IPAddress("192.0.2.50").Conditions(tc.conds...).Obj()
			req := Request{Resource: res, Placement: Placement{Node: "a"}}
			h := ipAddressHandler{}
			on, err := h.Online(ctx, req)
			if err != nil || on.State != tc.online || !strings.Contains(on.Message, tc.msg) {
				t.Errorf("Online = %+v, %v; want %s with %q", on, err, tc.online, tc.msg)
			}
			if off, err := h.Offline(ctx, req); err != nil || off.State != tc.offln {
				t.Errorf("Offline = %+v, %v; want %s", off, err, tc.offln)
			}
			// A fenced node's address counts as gone whatever was last said.
			if term, err := h.Terminate(ctx, req); err != nil || term.State != Offline {
				t.Errorf("Terminate = %+v, %v; want Offline", term, err)
			}
		})
	}
}
