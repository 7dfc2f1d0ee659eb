package deploy

import (
	"encoding/base64"
	"fmt"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// keepPolicy is the annotation that keeps an object on `helm uninstall`.
const keepPolicy = "helm.sh/resource-policy"

func TestLint(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"--set", "crds.enabled=false,agent.enabled=false,metrics.enabled=false,heartbeatKey.existingSecret=mine"},
	} {
		out := helm(t, append([]string{"lint", "--strict", chartDir}, args...)...)
		t.Logf("helm lint --strict %s:\n%s", strings.Join(args, " "), out)
	}
}

// TestDefaultRendering checks the objects of a default install and the settings that matter in
// them: who runs as what, with which capabilities, where, and with which arguments.
func TestDefaultRendering(t *testing.T) {
	objs := render(t)
	want := []string{
		"ClusterRole wolfpack-manager", "ClusterRole wolfpack-manager-custom", "ClusterRole wolfpack-node-agent",
		"ClusterRole wolfpack-quorum-holder",
		"ClusterRoleBinding wolfpack-manager", "ClusterRoleBinding wolfpack-manager-custom", "ClusterRoleBinding wolfpack-node-agent",
		"ClusterRoleBinding wolfpack-quorum-holder",
		"CustomResourceDefinition quorumdisks.wolfpack.dev", "CustomResourceDefinition resourcegroups.wolfpack.dev",
		"CustomResourceDefinition resources.wolfpack.dev",
		"DaemonSet wolfpack-system/wolfpack-node-agent", "Deployment wolfpack-system/wolfpack-manager",
		"PodDisruptionBudget wolfpack-system/wolfpack-manager",
		"Role wolfpack-system/wolfpack-leader-election", "Role wolfpack-system/wolfpack-manager", "Role wolfpack-system/wolfpack-node-agent",
		"Role wolfpack-system/wolfpack-quorum-holder",
		"RoleBinding wolfpack-system/wolfpack-leader-election", "RoleBinding wolfpack-system/wolfpack-manager",
		"RoleBinding wolfpack-system/wolfpack-node-agent", "RoleBinding wolfpack-system/wolfpack-quorum-holder",
		"Secret wolfpack-system/wolfpack-heartbeat-key", "Service wolfpack-system/wolfpack-manager-metrics",
		"ServiceAccount wolfpack-system/wolfpack-manager", "ServiceAccount wolfpack-system/wolfpack-node-agent",
		"ServiceAccount wolfpack-system/wolfpack-quorum-holder",
		"ValidatingAdmissionPolicy wolfpack-node-agent-own-node", "ValidatingAdmissionPolicyBinding wolfpack-node-agent-own-node",
	}
	if got := ids(objs); !slices.Equal(got, want) {
		t.Fatalf("objects:\n got %q\nwant %q", got, want)
	}
	checkBindings(t, objs)

	t.Run("manager", func(t *testing.T) {
		var d appsv1.Deployment
		typed(t, mustFind(t, objs, "Deployment", "wolfpack-manager"), &d)
		if *d.Spec.Replicas != 2 {
			t.Errorf("replicas %d, want 2", *d.Spec.Replicas)
		}
		checkSelects(t, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		pod := d.Spec.Template.Spec
		if pod.ServiceAccountName != "wolfpack-manager" {
			t.Errorf("serviceAccountName %q", pod.ServiceAccountName)
		}
		if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
			psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("pod securityContext %+v, want runAsNonRoot and the RuntimeDefault seccomp profile", psc)
		}
		c := onlyContainer(t, pod)
		wantArgs := []string{
			"--leader-elect=true", "--node-lease-namespace=wolfpack-system", "--fence-grace=0s", "--concurrency=4",
			"--quorum-holder-image=ghcr.io/wolfpack-ha/wolfpack:0.1.0", "--quorum-holder-pull-policy=IfNotPresent",
			"--quorum-holder-service-account=wolfpack-quorum-holder",
			"--kube-api-qps=50", "--kube-api-burst=100", "--zap-log-level=info", "--health-probe-bind-address=:8081",
			"--metrics-bind-address=:8443", "--metrics-secure=true",
		}
		if !slices.Equal(c.Args, wantArgs) {
			t.Errorf("args\n got %q\nwant %q", c.Args, wantArgs)
		}
		if !slices.Equal(c.Command, []string{"/manager"}) || c.Image != "ghcr.io/wolfpack-ha/wolfpack:0.1.0" {
			t.Errorf("command %q image %q", c.Command, c.Image)
		}
		checkRestricted(t, c.SecurityContext)
		ports := containerPorts(c)
		if ports["metrics"] != 8443 || ports["probes"] != 8081 {
			t.Errorf("ports %v, want metrics 8443 and probes 8081", ports)
		}
		for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "probes" {
				t.Errorf("%s probe %+v, want an HTTP GET on port probes (8081)", name, p)
			}
		}
		if c.Resources.Requests.Cpu().String() != "50m" || c.Resources.Limits.Memory().String() != "256Mi" {
			t.Errorf("resources %+v", c.Resources)
		}

		var s corev1.Service
		typed(t, mustFind(t, objs, "Service", "wolfpack-manager-metrics"), &s)
		checkSelects(t, s.Spec.Selector, d.Spec.Template.Labels)
		if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 8443 || s.Spec.Ports[0].TargetPort.String() != "metrics" {
			t.Errorf("metrics Service ports %+v", s.Spec.Ports)
		}
	})

	t.Run("node agent", func(t *testing.T) {
		var ds appsv1.DaemonSet
		typed(t, mustFind(t, objs, "DaemonSet", "wolfpack-node-agent"), &ds)
		checkSelects(t, ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels)
		pod := ds.Spec.Template.Spec
		if !pod.HostNetwork || pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
			t.Errorf("hostNetwork %v dnsPolicy %q, want the host network with ClusterFirstWithHostNet", pod.HostNetwork, pod.DNSPolicy)
		}
		terms := pod.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		wantTerms := []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: "wolfpack.dev/cluster", Operator: corev1.NodeSelectorOpExists},
		}}}
		if !reflect.DeepEqual(terms, wantTerms) {
			t.Errorf("node affinity %+v, want wolfpack.dev/cluster Exists", terms)
		}
		c := onlyContainer(t, pod)
		sc := c.SecurityContext
		if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.Capabilities == nil ||
			!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
			!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) {
			t.Errorf("securityContext %+v, want root with only NET_ADMIN and NET_RAW", sc)
		} else if sc.Privileged != nil && *sc.Privileged ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("securityContext %+v, want no privilege escalation and a read-only root filesystem", sc)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
				env[e.Name] = e.ValueFrom.FieldRef.FieldPath
			}
		}
		if env["NODE_NAME"] != "spec.nodeName" || env["POD_NAMESPACE"] != "metadata.namespace" {
			t.Errorf("env %v, want NODE_NAME and POD_NAMESPACE from the downward API", env)
		}
		ports := containerPorts(c)
		if ports["probes"] != 8082 || ports["heartbeat"] != 3343 || ports["metrics"] != 8445 {
			t.Errorf("ports %v", ports)
		}
		if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "probes" || p.HTTPGet.Path != "/healthz" {
			t.Errorf("liveness probe %+v, want /healthz on port probes (8082)", p)
		}
		checkCRISocket(t, pod, c, "/run/containerd/containerd.sock")
		if !slices.Contains(c.Args, "--cri-endpoint=unix:///run/containerd/containerd.sock") {
			t.Errorf("args %q", c.Args)
		}
		if len(pod.Tolerations) != 1 || pod.Tolerations[0].Operator != corev1.TolerationOpExists {
			t.Errorf("tolerations %+v, want every taint tolerated", pod.Tolerations)
		}
	})

	t.Run("heartbeat key", func(t *testing.T) {
		s := mustFind(t, objs, "Secret", "wolfpack-heartbeat-key")
		checkHeartbeatKey(t, s)
		if s.GetAnnotations()[keepPolicy] != "keep" {
			t.Errorf("the key Secret has annotations %v, want %s: keep", s.GetAnnotations(), keepPolicy)
		}
		checkKeyRole(t, objs, "wolfpack-node-agent", "wolfpack-heartbeat-key")
	})
}

// TestValues checks the renderings that values change.
func TestValues(t *testing.T) {
	t.Run("crds.enabled=false renders no CRD", func(t *testing.T) {
		objs := render(t, "--set", "crds.enabled=false")
		if crds := ofKind(objs, "CustomResourceDefinition"); len(crds) > 0 {
			t.Errorf("rendered %v", ids(crds))
		}
		if len(objs) != 26 {
			t.Errorf("%d objects, want the other 26: %v", len(objs), ids(objs))
		}
	})
	t.Run("crds.keep", func(t *testing.T) {
		for _, keep := range []bool{true, false} {
			crds := ofKind(render(t, "--set", fmt.Sprintf("crds.keep=%v", keep)), "CustomResourceDefinition")
			if len(crds) != 3 {
				t.Fatalf("%d CRDs", len(crds))
			}
			for _, crd := range crds {
				if got := crd.GetAnnotations()[keepPolicy] == "keep"; got != keep {
					t.Errorf("crds.keep=%v: %s has annotations %v", keep, crd.GetName(), crd.GetAnnotations())
				}
			}
		}
	})
	t.Run("heartbeatKey.existingSecret renders no Secret and the agents may read that one", func(t *testing.T) {
		objs := render(t, "--set", "heartbeatKey.existingSecret=my-key")
		if s := ofKind(objs, "Secret"); len(s) > 0 {
			t.Errorf("rendered %v", ids(s))
		}
		checkKeyRole(t, objs, "wolfpack-node-agent", "my-key")
	})
	t.Run("heartbeatKey.create=false renders no Secret and the agents may read the default one", func(t *testing.T) {
		objs := render(t, "--set", "heartbeatKey.create=false")
		if s := ofKind(objs, "Secret"); len(s) > 0 {
			t.Errorf("rendered %v", ids(s))
		}
		checkKeyRole(t, objs, "wolfpack-node-agent", "wolfpack-heartbeat-key")
	})
	t.Run("agent.enabled=false renders no agent object", func(t *testing.T) {
		objs := render(t, "--set", "agent.enabled=false")
		for _, o := range objs {
			if o.GetLabels()["app.kubernetes.io/component"] == "node-agent" || strings.Contains(o.GetName(), "node-agent") {
				t.Errorf("rendered %s", id(o))
			}
		}
		if find(objs, "Deployment", "wolfpack-manager") == nil || find(objs, "Secret", "wolfpack-heartbeat-key") == nil {
			t.Errorf("the manager and the key must stay: %v", ids(objs))
		}
	})
	t.Run("agent.daemonSet=false keeps the agent's ServiceAccount and RBAC, not its DaemonSet", func(t *testing.T) {
		objs := render(t, "--set", "agent.daemonSet=false")
		if ds := ofKind(objs, "DaemonSet"); len(ds) > 0 {
			t.Errorf("rendered %v", ids(ds))
		}
		for _, kind := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding"} {
			if find(objs, kind, "wolfpack-node-agent") == nil {
				t.Errorf("no %s wolfpack-node-agent among %v", kind, ids(objs))
			}
		}
		checkKeyRole(t, objs, "wolfpack-node-agent", "wolfpack-heartbeat-key")
	})
	t.Run("agent.nodeRestriction=false renders no admission policy", func(t *testing.T) {
		objs := render(t, "--set", "agent.nodeRestriction=false")
		for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
			if o := ofKind(objs, kind); len(o) > 0 {
				t.Errorf("rendered %v", ids(o))
			}
		}
		if find(objs, "ServiceAccount", "wolfpack-node-agent") == nil {
			t.Errorf("the agent's ServiceAccount must stay: %v", ids(objs))
		}
	})
	t.Run("metrics.enabled=false turns the endpoint and the Service off", func(t *testing.T) {
		objs := render(t, "--set", "metrics.enabled=false")
		if s := ofKind(objs, "Service"); len(s) > 0 {
			t.Errorf("rendered %v", ids(s))
		}
		var d appsv1.Deployment
		typed(t, mustFind(t, objs, "Deployment", "wolfpack-manager"), &d)
		c := onlyContainer(t, d.Spec.Template.Spec)
		if !slices.Contains(c.Args, "--metrics-bind-address=0") || containerPorts(c)["metrics"] != 0 {
			t.Errorf("args %q ports %v", c.Args, containerPorts(c))
		}
	})
	t.Run("one manager without leader election", func(t *testing.T) {
		objs := render(t, "--set", "manager.replicas=1,manager.leaderElect=false,manager.fenceGrace=5s,manager.concurrency=8")
		if find(objs, "Role", "wolfpack-leader-election") != nil || find(objs, "PodDisruptionBudget", "wolfpack-manager") != nil {
			t.Errorf("a single manager without leader election needs no leader election Role and no PodDisruptionBudget: %v", ids(objs))
		}
		var d appsv1.Deployment
		typed(t, mustFind(t, objs, "Deployment", "wolfpack-manager"), &d)
		args := onlyContainer(t, d.Spec.Template.Spec).Args
		for _, a := range []string{"--leader-elect=false", "--fence-grace=5s", "--concurrency=8"} {
			if !slices.Contains(args, a) {
				t.Errorf("args %q lack %s", args, a)
			}
		}
	})
	t.Run("another release and namespace", func(t *testing.T) {
		out := helm(t, "template", "prod", chartDir, "--namespace", "ha")
		objs, err := decode([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.GetKind() != "CustomResourceDefinition" && !strings.HasPrefix(o.GetName(), "prod-wolfpack-") {
				t.Errorf("%s is not named after the release", id(o))
			}
			if ns := o.GetNamespace(); ns != "" && ns != "ha" {
				t.Errorf("%s is outside the release namespace", id(o))
			}
		}
		checkBindings(t, objs)
		checkKeyRole(t, objs, "prod-wolfpack-node-agent", "prod-wolfpack-heartbeat-key")
		var d appsv1.Deployment
		typed(t, mustFind(t, objs, "Deployment", "prod-wolfpack-manager"), &d)
		if args := onlyContainer(t, d.Spec.Template.Spec).Args; !slices.Contains(args, "--node-lease-namespace=ha") {
			t.Errorf("the manager must read the agents' Leases in the release namespace: %q", args)
		}
	})
	t.Run("agent.criEndpoint", func(t *testing.T) {
		var ds appsv1.DaemonSet
		typed(t, mustFind(t, render(t, "--set", "agent.criEndpoint=unix:///var/run/crio/crio.sock"), "DaemonSet", "wolfpack-node-agent"), &ds)
		c := onlyContainer(t, ds.Spec.Template.Spec)
		checkCRISocket(t, ds.Spec.Template.Spec, c, "/var/run/crio/crio.sock")
		if !slices.Contains(c.Args, "--cri-endpoint=unix:///var/run/crio/crio.sock") {
			t.Errorf("args %q", c.Args)
		}
	})
}

// TestSchemaRejectsBadValues: values.schema.json refuses bad values with a message naming them.
func TestSchemaRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		set  string
		want []string
	}{
		{"manager.replicas=-1", []string{"/manager/replicas", "minimum"}},
		{"image.pullPolicy=Sometimes", []string{"/image/pullPolicy", "IfNotPresent"}},
		{"manager.concurrency=0", []string{"/manager/concurrency", "minimum"}},
		{"manager.fenceGrace=soon", []string{"/manager/fenceGrace", "soon"}},
		{"manager.logLevel=loud", []string{"/manager/logLevel"}},
		{"agent.criEndpoint=/run/containerd/containerd.sock", []string{"/agent/criEndpoint", "unix:///"}},
		{"agent.heartbeatPort=70000", []string{"/agent/heartbeatPort", "maximum"}},
		{"metrics.service.type=Headless", []string{"/metrics/service/type"}},
		{"heartbeatKey.existingSecret=Not_A_Name", []string{"/heartbeatKey/existingSecret", "Not_A_Name"}},
		{"manager.replica=3", []string{"/manager", "replica"}},
		{"crds.enabled=yes", []string{"/crds/enabled", "boolean"}},
		// Not the schema but the chart: two managers without leader election would both act.
		{"manager.leaderElect=false", []string{"manager.leaderElect=false needs manager.replicas of 0 or 1"}},
	} {
		t.Run(tc.set, func(t *testing.T) {
			_, errOut, err := runHelm(t.Context(), "template", release, chartDir, "--namespace", namespace, "--set", tc.set)
			if err == nil {
				t.Fatalf("--set %s was accepted", tc.set)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("the error does not say %q:\n%s", w, errOut)
				}
			}
			t.Logf("--set %s: %s", tc.set, strings.Join(strings.Fields(errOut), " "))
		})
	}
}

// TestInStepWithConfig: the chart installs what config/ does. Its CRDs are those of
// config/crd/bases, its Roles and ClusterRoles have the rules of config/rbac and config/agent
// (generated from the code by `make manifests`), and every object of config/default but the
// Namespace has a counterpart of the same kind and name in the chart.
func TestInStepWithConfig(t *testing.T) {
	objs := render(t)
	t.Run("CRDs", func(t *testing.T) {
		bases := kustomize(t, "config/crd")
		if got, want := ids(ofKind(objs, "CustomResourceDefinition")), ids(bases); !slices.Equal(got, want) {
			t.Fatalf("the chart's CRDs %q, config/crd's %q: run hack/helm.sh sync-crds", got, want)
		}
		for _, base := range bases {
			chart := mustFind(t, objs, "CustomResourceDefinition", base.GetName()).DeepCopy()
			chart.SetLabels(nil)
			ann := chart.GetAnnotations()
			delete(ann, keepPolicy)
			chart.SetAnnotations(ann)
			if !reflect.DeepEqual(chart.Object, base.Object) {
				t.Errorf("the chart's CRD %s differs from config/crd/bases: run hack/helm.sh sync-crds\n%s",
					base.GetName(), firstDifference(t, base, chart))
			}
		}
	})
	config := kustomize(t, "config/default")
	t.Run("RBAC rules", func(t *testing.T) {
		n := 0
		for _, c := range config {
			if c.GetKind() != "ClusterRole" && c.GetKind() != "Role" {
				continue
			}
			n++
			chart := find(objs, c.GetKind(), c.GetName())
			if chart == nil {
				t.Errorf("config/ has %s, the chart has not", id(c))
				continue
			}
			if got, want := grants(t, chart), grants(t, c); !slices.Equal(got, want) {
				t.Errorf("%s: the chart grants\n  %s\nconfig/ grants\n  %s", id(c),
					strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			if !reflect.DeepEqual(chart.Object["aggregationRule"], c.Object["aggregationRule"]) {
				t.Errorf("%s: aggregationRule %v, config/ has %v", id(c), chart.Object["aggregationRule"], c.Object["aggregationRule"])
			}
		}
		if n < 6 {
			t.Errorf("only %d Roles and ClusterRoles in config/default", n)
		}
	})
	t.Run("objects", func(t *testing.T) {
		chartIDs := ids(objs)
		for _, c := range config {
			if c.GetKind() != "Namespace" && !slices.Contains(chartIDs, id(c)) {
				t.Errorf("config/default has %s, the chart has not", id(c))
			}
		}
	})
	t.Run("admission policies", func(t *testing.T) {
		for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
			c := mustFind(t, config, kind, "wolfpack-node-agent-own-node")
			chart := mustFind(t, objs, kind, c.GetName())
			if !reflect.DeepEqual(chart.Object["spec"], c.Object["spec"]) {
				t.Errorf("%s: the chart's spec differs from config/agent/admission_policy.yaml\n%s", id(c), firstDifference(t, c, chart))
			}
		}
	})
	t.Run("pods", func(t *testing.T) {
		for _, kind := range []string{"Deployment", "DaemonSet"} {
			for _, c := range ofKind(config, kind) {
				want := podTemplate(t, c)
				got := podTemplate(t, mustFind(t, objs, kind, c.GetName()))
				w, g := onlyContainer(t, want.Spec), onlyContainer(t, got.Spec)
				if !reflect.DeepEqual(w.SecurityContext, g.SecurityContext) {
					t.Errorf("%s: container securityContext %+v, config/ has %+v", id(c), g.SecurityContext, w.SecurityContext)
				}
				if !slices.Equal(w.Command, g.Command) || !reflect.DeepEqual(w.Env, g.Env) || !reflect.DeepEqual(w.VolumeMounts, g.VolumeMounts) {
					t.Errorf("%s: command, env or volume mounts differ from config/", id(c))
				}
				if want.Spec.HostNetwork != got.Spec.HostNetwork || want.Spec.DNSPolicy != got.Spec.DNSPolicy ||
					!reflect.DeepEqual(nodeAffinity(want.Spec), nodeAffinity(got.Spec)) {
					t.Errorf("%s: hostNetwork, dnsPolicy or node affinity differ from config/", id(c))
				}
			}
		}
	})
}

func nodeAffinity(pod corev1.PodSpec) *corev1.NodeAffinity {
	if pod.Affinity == nil {
		return nil
	}
	return pod.Affinity.NodeAffinity
}

// podTemplate is the pod template of a Deployment or DaemonSet.
func podTemplate(t *testing.T, u *unstructured.Unstructured) corev1.PodTemplateSpec {
	t.Helper()
	tmpl, ok, err := unstructured.NestedMap(u.Object, "spec", "template")
	if !ok || err != nil {
		t.Fatalf("%s has no pod template: %v", id(u), err)
	}
	var p corev1.PodTemplateSpec
	typed(t, &unstructured.Unstructured{Object: tmpl}, &p)
	return p
}

// TestREADME: the values table of charts/wolfpack/README.md is that of values.yaml.
func TestREADME(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), "go", "run", "./hack/chartdoc", "-check")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./hack/chartdoc -check: %v\n%s", err, out)
	}
}

// grants lists what a Role or ClusterRole allows, one "apiGroup resource[/name] verb" a line,
// so that rules that allow the same compare equal however they are grouped.
func grants(t *testing.T, u *unstructured.Unstructured) []string {
	t.Helper()
	var r rbacv1.ClusterRole // a Role has the same rules
	typed(t, &unstructured.Unstructured{Object: map[string]any{"rules": u.Object["rules"]}}, &r)
	var out []string
	for _, rule := range r.Rules {
		names := rule.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, n := range names {
					for _, v := range rule.Verbs {
						s := fmt.Sprintf("%q %s %s", g, res, v)
						if n != "" {
							s = fmt.Sprintf("%q %s/%s %s", g, res, n, v)
						}
						if !slices.Contains(out, s) {
							out = append(out, s)
						}
					}
				}
			}
		}
		for _, u := range rule.NonResourceURLs {
			for _, v := range rule.Verbs {
				out = append(out, u+" "+v)
			}
		}
	}
	slices.Sort(out)
	return out
}

// checkBindings: every binding binds a rendered ServiceAccount to a rendered role.
func checkBindings(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, kind := range []string{"RoleBinding", "ClusterRoleBinding"} {
		for _, o := range ofKind(objs, kind) {
			var b rbacv1.RoleBinding // a ClusterRoleBinding has the same fields
			typed(t, &unstructured.Unstructured{Object: map[string]any{"roleRef": o.Object["roleRef"], "subjects": o.Object["subjects"]}}, &b)
			if find(objs, b.RoleRef.Kind, b.RoleRef.Name) == nil {
				t.Errorf("%s refers to the missing %s %s", id(o), b.RoleRef.Kind, b.RoleRef.Name)
			}
			for _, s := range b.Subjects {
				sa := find(objs, "ServiceAccount", s.Name)
				if s.Kind != "ServiceAccount" || sa == nil || sa.GetNamespace() != s.Namespace {
					t.Errorf("%s binds %+v, which the chart does not create", id(o), s)
				}
			}
		}
	}
}

// checkKeyRole: the agent's Role lets it read the Secret name, and no other Secret.
func checkKeyRole(t *testing.T, objs []*unstructured.Unstructured, role, secret string) {
	t.Helper()
	var got []string
	for _, g := range grants(t, mustFind(t, objs, "Role", role)) {
		if strings.Contains(g, "secrets") {
			got = append(got, g)
		}
	}
	if want := []string{fmt.Sprintf("%q secrets/%s get", "", secret)}; !slices.Equal(got, want) {
		t.Errorf("Role %s grants %q on Secrets, want %q", role, got, want)
	}
}

// checkHeartbeatKey: the Secret holds a random key of 48 letters and digits under "key".
func checkHeartbeatKey(t *testing.T, s *unstructured.Unstructured) string {
	t.Helper()
	var secret corev1.Secret
	typed(t, s, &secret)
	key := string(secret.Data["key"])
	if !regexp.MustCompile(`^[A-Za-z0-9]{48}$`).MatchString(key) {
		t.Errorf("Secret %s has key %q, want 48 random letters and digits", secret.Name, key)
	}
	return base64.StdEncoding.EncodeToString(secret.Data["key"])
}

// checkRestricted: a container that the "restricted" Pod Security Standard admits.
func checkRestricted(t *testing.T, sc *corev1.SecurityContext) {
	t.Helper()
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("securityContext %+v, want no privilege escalation, a read-only root filesystem and no capabilities", sc)
	}
}

// checkCRISocket: the host's CRI socket is mounted where the agent looks for it, and the
// node-local channel to the quorum holder (/run/wolfpack, package nodelocal) too; nothing else.
func checkCRISocket(t *testing.T, pod corev1.PodSpec, c corev1.Container, path string) {
	t.Helper()
	if len(pod.Volumes) != 2 || pod.Volumes[0].HostPath == nil || pod.Volumes[0].HostPath.Path != path ||
		pod.Volumes[0].HostPath.Type == nil || *pod.Volumes[0].HostPath.Type != corev1.HostPathSocket {
		t.Errorf("volumes %+v, want the socket %s from the host", pod.Volumes, path)
	}
	if len(c.VolumeMounts) != 2 || c.VolumeMounts[0].MountPath != path {
		t.Errorf("volumeMounts %+v, want %s", c.VolumeMounts, path)
	}
	if len(pod.Volumes) == 2 && (pod.Volumes[1].HostPath == nil || pod.Volumes[1].HostPath.Path != "/run/wolfpack" ||
		pod.Volumes[1].HostPath.Type == nil || *pod.Volumes[1].HostPath.Type != corev1.HostPathDirectoryOrCreate) {
		t.Errorf("volumes %+v, want the directory /run/wolfpack from the host", pod.Volumes)
	}
	if len(c.VolumeMounts) == 2 && (c.VolumeMounts[1].MountPath != "/run/wolfpack" || c.VolumeMounts[1].ReadOnly) {
		t.Errorf("volumeMounts %+v, want /run/wolfpack writable", c.VolumeMounts)
	}
	var local string
	for _, e := range c.Env {
		if e.Name == "WOLFPACK_LOCAL_DIR" {
			local = e.Value
		}
	}
	if local != "/run/wolfpack" {
		t.Errorf("env %+v, want WOLFPACK_LOCAL_DIR=/run/wolfpack", c.Env)
	}
}

// checkSelects: the selector matches the labels (of a pod template).
func checkSelects(t *testing.T, selector, podLabels map[string]string) {
	t.Helper()
	if len(selector) == 0 || !labels.SelectorFromSet(selector).Matches(labels.Set(podLabels)) {
		t.Errorf("selector %v does not select the pods %v", selector, podLabels)
	}
}

func onlyContainer(t *testing.T, pod corev1.PodSpec) corev1.Container {
	t.Helper()
	if len(pod.Containers) != 1 || len(pod.InitContainers) > 0 {
		t.Fatalf("containers %d init containers %d, want one container", len(pod.Containers), len(pod.InitContainers))
	}
	return pod.Containers[0]
}

func containerPorts(c corev1.Container) map[string]int32 {
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	return ports
}

// firstDifference shows where two objects' YAML first differ.
func firstDifference(t *testing.T, want, got *unstructured.Unstructured) string {
	t.Helper()
	w, err := yaml.Marshal(want.Object)
	if err != nil {
		t.Fatal(err)
	}
	g, err := yaml.Marshal(got.Object)
	if err != nil {
		t.Fatal(err)
	}
	wl, gl := strings.Split(string(w), "\n"), strings.Split(string(g), "\n")
	for i := 0; i < len(wl) && i < len(gl); i++ {
		if wl[i] != gl[i] {
			return fmt.Sprintf("line %d: config/ has %q, the chart %q", i+1, wl[i], gl[i])
		}
	}
	return fmt.Sprintf("config/ has %d lines, the chart %d", len(wl), len(gl))
}
