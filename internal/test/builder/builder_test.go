package builder

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/diff"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// crdValidator checks an object as the API server does on create: the CRD's defaults are filled
// in, then its OpenAPI schema and its CEL rules are checked.
type crdValidator struct {
	structural *structuralschema.Structural
	schema     apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

func loadCRD(t *testing.T, file string) *crdValidator {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "config", "crd", "bases", file))
	if err != nil {
		t.Fatal(err)
	}
	var v1 apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(raw, &v1); err != nil {
		t.Fatal(err)
	}
	if len(v1.Spec.Versions) != 1 || v1.Spec.Versions[0].Schema == nil {
		t.Fatalf("%s: want one version with a schema", file)
	}
	props := &apiextensions.JSONSchemaProps{}
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v1.Spec.Versions[0].Schema.OpenAPIV3Schema, props, nil); err != nil {
		t.Fatal(err)
	}
	structural, err := structuralschema.NewStructural(props)
	if err != nil {
		t.Fatal(err)
	}
	schema, _, err := apiservervalidation.NewSchemaValidator(props)
	if err != nil {
		t.Fatal(err)
	}
	return &crdValidator{structural: structural, schema: schema, cel: cel.NewValidator(structural, true, celconfig.PerCallLimit)}
}

// errors returns what the API server would reject in obj.
func (v *crdValidator) errors(t *testing.T, obj runtime.Object) []string {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var u map[string]any
	if err := utiljson.Unmarshal(raw, &u); err != nil {
		t.Fatal(err)
	}
	structuraldefaulting.Default(u, v.structural)
	errs := apiservervalidation.ValidateCustomResource(nil, u, v.schema)
	celErrs, _ := v.cel.Validate(context.Background(), nil, v.structural, u, nil, celconfig.RuntimeCELCostBudget)
	errs = append(errs, celErrs...)
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

// validators are the CRDs' checks, loaded once per test.
type validators struct{ quorumDisk, group, resource *crdValidator }

func loadCRDs(t *testing.T) validators {
	t.Helper()
	return validators{
		quorumDisk: loadCRD(t, "wolfpack.dev_quorumdisks.yaml"),
		group:      loadCRD(t, "wolfpack.dev_resourcegroups.yaml"),
		resource:   loadCRD(t, "wolfpack.dev_resources.yaml"),
	}
}

func (vs validators) errors(t *testing.T, obj runtime.Object) []string {
	t.Helper()
	switch obj.(type) {
	case *wp.QuorumDisk:
		return vs.quorumDisk.errors(t, obj)
	case *wp.ResourceGroup:
		return vs.group.errors(t, obj)
	case *wp.Resource:
		return vs.resource.errors(t, obj)
	}
	t.Fatalf("no CRD for %T", obj)
	return nil
}

var template = corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}

// TestObjectsAreValid checks that the defaults, and objects built with every method, are accepted
// by the CRDs; and that the check rejects what the API server rejects, so that it cannot pass
// vacuously.
func TestObjectsAreValid(t *testing.T) {
	vs := loadCRDs(t)
	threshold := int32(0)
	valid := map[string]runtime.Object{
		"default QuorumDisk": QuorumDisk("demo").Obj(),
		"default group":      Group("prod", "sql").Obj(),
		"default resource":   Resource("prod", "disk").Obj(),
		"QuorumDisk with every method": QuorumDisk("demo").UID("u-1").Claim("default", "demo-quorum").KeySecret("wolfpack-system", "hb").
			NodeSelector(map[string]string{wp.ClusterLabel: "demo"}).QuorumType(wp.NodeMajority).LeaseDuration(2*time.Second).
			HeartbeatPort(3344).HeartbeatInterval(250*time.Millisecond).HeartbeatThreshold(4).
			Network("private", "10.0.0.0/24", wp.PrivateNetwork).Network("public", "192.0.2.0/24", wp.PublicNetwork).
			Owner("a").Nodes(wp.NodeStatus{Name: "a", State: wp.NodeUp}, wp.NodeStatus{Name: "b", State: wp.NodeDown}).Obj(),
		"group with every method": Group("prod", "sql").Generation(2).Annotation(wp.MoveToAnnotation, "b").Cluster("prod").
			DesiredState(wp.DesiredOffline).PreferredOwners("a", "b").State(wp.GroupOnline).OwnerNode("a").Epoch(3).Obj(),
		"ip resource": Resource("prod", "ip").UID("u-2").Group("web").DependsOn("disk", "cfg").IPAddress("192.0.2.50").PrefixLength(24).
			State(wp.ResourceOnline).Node("a").Conditions(metav1.Condition{Type: wp.AddressAssignedCondition, Status: metav1.ConditionTrue,
			Reason: wp.AddressAddedReason, LastTransitionTime: metav1.Now()}).Obj(),
		"volume resource": Resource("prod", "disk").Volume("sql-data").
			RestartPolicy(wp.RestartPolicy{Action: wp.DoNotRestart, Threshold: &threshold, Period: &metav1.Duration{Duration: time.Minute}}).
			State(wp.ResourceFailed).LastFailure(wp.ResourceFailure{Time: metav1.Now(), Node: "a", Reason: wp.RestartThresholdExceededReason}).Obj(),
		"service resource":     Resource("prod", "name").Service(wp.ServiceResource{Ports: []corev1.ServicePort{{Port: 80}}}).Obj(),
		"workload resource":    Resource("prod", "app").Workload(template).Obj(),
		"workloadRef resource": Resource("prod", "web").WorkloadRef(wp.DeploymentKind, "web").Obj(),
		"custom resource": Resource("prod", "cfg").Custom(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`,
			"has(object.data)").Obj(),
		"a type replaces the default volume": Resource("prod", "ip").IPAddress("fd00::50").Obj(),
	}
	for name, obj := range valid {
		if errs := vs.errors(t, obj); len(errs) > 0 {
			t.Errorf("%s is rejected: %v", name, errs)
		}
	}

	twoTypes := Resource("prod", "ip").IPAddress("192.0.2.50").Obj()
	twoTypes.Spec.Volume = &wp.VolumeResource{ClaimName: "data"}
	invalid := map[string]runtime.Object{
		"QuorumDisk without a claim":              QuorumDisk("demo").Claim("", "").Obj(),
		"lease shorter than interval x threshold": QuorumDisk("demo").LeaseDuration(time.Second).HeartbeatInterval(time.Second).Obj(),
		"group without a cluster":                 Group("prod", "sql").Cluster("").Obj(),
		"resource of two types":                   twoTypes,
		"address that is not an IP":               Resource("prod", "ip").IPAddress("300.1.2.3").Obj(),
	}
	for name, obj := range invalid {
		errs := vs.errors(t, obj)
		if len(errs) == 0 {
			t.Errorf("%s is accepted, want it rejected", name)
		}
		t.Logf("%s: %v", name, errs)
	}
}

// TestMethods checks what each method sets, against the literal object.
func TestMethods(t *testing.T) {
	port, threshold, prefix := int32(3344), int32(4), int32(24)
	cond := metav1.Condition{Type: wp.AddressAssignedCondition, Status: metav1.ConditionTrue, Reason: wp.AddressAddedReason}
	meta := func(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }
	cases := []struct {
		name      string
		got, want runtime.Object
	}{
		{
			name: "QuorumDisk",
			got:  QuorumDisk("demo").Obj(),
			want: &wp.QuorumDisk{ObjectMeta: meta("", "demo"), Spec: wp.QuorumDiskSpec{
				VolumeClaim:  wp.VolumeClaimReference{Namespace: "wolfpack-system", Name: "quorum"},
				KeySecretRef: wp.SecretKeyReference{Namespace: "wolfpack-system", Name: "key"},
			}},
		},
		{
			name: "QuorumDisk with every method",
			got: QuorumDisk("demo").UID("u-1").Claim("default", "demo-quorum").KeySecret("ha", "hb").
				NodeSelector(map[string]string{"l": "v"}).QuorumType(wp.NodeMajority).LeaseDuration(2*time.Second).
				HeartbeatPort(port).HeartbeatInterval(250*time.Millisecond).HeartbeatThreshold(threshold).
				Network("private", "10.0.0.0/24", wp.PrivateNetwork).Network("public", "192.0.2.0/24", wp.PublicNetwork).
				Owner("a").Nodes(wp.NodeStatus{Name: "a", State: wp.NodeUp}).Obj(),
			want: &wp.QuorumDisk{ObjectMeta: metav1.ObjectMeta{Name: "demo", UID: "u-1"},
				Spec: wp.QuorumDiskSpec{
					NodeSelector: map[string]string{"l": "v"},
					VolumeClaim:  wp.VolumeClaimReference{Namespace: "default", Name: "demo-quorum"},
					QuorumType:   wp.NodeMajority,
					Heartbeat: wp.HeartbeatSpec{Port: &port, Interval: &metav1.Duration{Duration: 250 * time.Millisecond}, Threshold: &threshold,
						Networks: []wp.HeartbeatNetwork{
							{Name: "private", CIDR: "10.0.0.0/24", Role: wp.PrivateNetwork},
							{Name: "public", CIDR: "192.0.2.0/24", Role: wp.PublicNetwork},
						}},
					LeaseDuration: &metav1.Duration{Duration: 2 * time.Second},
					KeySecretRef:  wp.SecretKeyReference{Namespace: "ha", Name: "hb"},
				},
				Status: wp.QuorumDiskStatus{Owner: "a", Nodes: []wp.NodeStatus{{Name: "a", State: wp.NodeUp}}},
			},
		},
		{
			name: "group",
			got:  Group("prod", "sql").Obj(),
			want: &wp.ResourceGroup{ObjectMeta: meta("prod", "sql"), Spec: wp.ResourceGroupSpec{Cluster: "demo"}},
		},
		{
			name: "group with every method",
			got: Group("prod", "sql").Generation(2).Annotation("k", "v").Annotation("l", "w").Cluster("c").DesiredState(wp.DesiredOffline).
				PreferredOwners("a", "b").State(wp.GroupPending).OwnerNode("a").Epoch(3).Obj(),
			want: &wp.ResourceGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "sql", Generation: 2,
				Annotations: map[string]string{"k": "v", "l": "w"}},
				Spec:   wp.ResourceGroupSpec{Cluster: "c", State: wp.DesiredOffline, PreferredOwners: []string{"a", "b"}},
				Status: wp.ResourceGroupStatus{State: wp.GroupPending, OwnerNode: "a", Epoch: 3},
			},
		},
		{
			name: "resource",
			got:  Resource("prod", "disk").Obj(),
			want: &wp.Resource{ObjectMeta: meta("prod", "disk"), Spec: wp.ResourceSpec{Group: "sql", Volume: &wp.VolumeResource{ClaimName: "data"}}},
		},
		{
			name: "ip resource with status",
			got: Resource("prod", "ip").UID("u-2").Group("web").DependsOn("disk").DependsOn("cfg").IPAddress("192.0.2.50").PrefixLength(prefix).
				State(wp.ResourceOnline).Node("a").Conditions(cond).Obj(),
			want: &wp.Resource{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "ip", UID: "u-2"},
				Spec: wp.ResourceSpec{Group: "web", DependsOn: []wp.Dependency{{Name: "disk"}, {Name: "cfg"}},
					IPAddress: &wp.IPAddressResource{Address: "192.0.2.50", PrefixLength: &prefix}},
				Status: wp.ResourceStatus{State: wp.ResourceOnline, Node: "a", Conditions: []metav1.Condition{cond}},
			},
		},
		{
			name: "volume resource",
			got:  Resource("prod", "disk").Workload(template).Volume("sql-data").Obj(),
			want: &wp.Resource{ObjectMeta: meta("prod", "disk"), Spec: wp.ResourceSpec{Group: "sql", Volume: &wp.VolumeResource{ClaimName: "sql-data"}}},
		},
		{
			name: "restart policy and last failure",
			got: Resource("prod", "disk").RestartPolicy(wp.RestartPolicy{Action: wp.Restart}).
				LastFailure(wp.ResourceFailure{Node: "a", Reason: "Crashed"}).Obj(),
			want: &wp.Resource{ObjectMeta: meta("prod", "disk"),
				Spec:   wp.ResourceSpec{Group: "sql", Volume: &wp.VolumeResource{ClaimName: "data"}, RestartPolicy: wp.RestartPolicy{Action: wp.Restart}},
				Status: wp.ResourceStatus{LastFailure: &wp.ResourceFailure{Node: "a", Reason: "Crashed"}},
			},
		},
		{
			name: "service resource",
			got:  Resource("prod", "name").Service(wp.ServiceResource{ServiceName: "sql", Ports: []corev1.ServicePort{{Port: 80}}}).Obj(),
			want: &wp.Resource{ObjectMeta: meta("prod", "name"), Spec: wp.ResourceSpec{Group: "sql",
				Service: &wp.ServiceResource{ServiceName: "sql", Ports: []corev1.ServicePort{{Port: 80}}}}},
		},
		{
			name: "workload resource",
			got:  Resource("prod", "app").Workload(template).Obj(),
			want: &wp.Resource{ObjectMeta: meta("prod", "app"), Spec: wp.ResourceSpec{Group: "sql", Workload: &wp.WorkloadResource{Template: &template}}},
		},
		{
			name: "workloadRef resource",
			got:  Resource("prod", "web").WorkloadRef(wp.StatefulSetKind, "db").Obj(),
			want: &wp.Resource{ObjectMeta: meta("prod", "web"), Spec: wp.ResourceSpec{Group: "sql",
				Workload: &wp.WorkloadResource{WorkloadRef: &wp.WorkloadReference{Kind: wp.StatefulSetKind, Name: "db"}}}},
		},
		{
			name: "custom resource",
			got:  Resource("prod", "cfg").Custom(`{"kind":"ConfigMap"}`, "true").Obj(),
			want: &wp.Resource{ObjectMeta: meta("prod", "cfg"), Spec: wp.ResourceSpec{Group: "sql",
				Custom: &wp.CustomResource{Template: runtime.RawExtension{Raw: []byte(`{"kind":"ConfigMap"}`)}, Healthy: "true"}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !equality.Semantic.DeepEqual(tc.got, tc.want) {
				t.Errorf("built object differs from the literal (- got, + want):\n%s", diff.Diff(tc.got, tc.want))
			}
		})
	}
}
