package deploy

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestWatchdogValues checks the agent DaemonSet with agent.watchdog: the node's watchdog device
// mounted at /dev/watchdog from a CharDevice hostPath in a privileged container (the runtime's
// device cgroup refuses the device to any other container), or, with deviceResource, requested
// from a device plugin by an unprivileged one; --watchdog-fallback with fallback. Each rendering
// is also sent to the API server (a dry run), which refuses, for example, a privileged container
// that forbids privilege escalation.
func TestWatchdogValues(t *testing.T) {
	for _, tc := range []struct {
		name, set string
		// privileged: the container is privileged and mounts hostDevice at /dev/watchdog.
		privileged bool
		hostDevice string
		resource   string // the extended resource the container requests
		fallback   bool
	}{
		{name: "off by default", set: "crds.enabled=true"},
		{name: "enabled: privileged, the host's /dev/watchdog", set: "agent.watchdog.enabled=true",
			privileged: true, hostDevice: "/dev/watchdog"},
		{name: "another device", set: "agent.watchdog.enabled=true,agent.watchdog.device=/dev/watchdog1",
			privileged: true, hostDevice: "/dev/watchdog1"},
		{name: "CRI's fallback", set: "agent.watchdog.enabled=true,agent.watchdog.fallback=true",
			privileged: true, hostDevice: "/dev/watchdog", fallback: true},
		{name: "from a device plugin: unprivileged", set: "agent.watchdog.enabled=true,agent.watchdog.deviceResource=squat.ai/watchdog",
			resource: "squat.ai/watchdog"},
		{name: "a device resource while disabled: nothing", set: "agent.watchdog.deviceResource=squat.ai/watchdog"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, "--set", tc.set)
			if got, want := ids(objs), ids(render(t)); !slices.Equal(got, want) {
				t.Errorf("objects %q, want those of a default install %q", got, want)
			}
			u := mustFind(t, objs, "DaemonSet", "wolfpack-node-agent")
			var ds appsv1.DaemonSet
			typed(t, u, &ds)
			pod := ds.Spec.Template.Spec
			c := onlyContainer(t, pod)

			sc := c.SecurityContext
			if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.Capabilities == nil ||
				!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
				!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) ||
				sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Fatalf("securityContext %+v, want root with only NET_ADMIN and NET_RAW and a read-only root", sc)
			}
			privileged := sc.Privileged != nil && *sc.Privileged
			switch {
			case privileged != tc.privileged:
				t.Errorf("privileged %v, want %v", privileged, tc.privileged)
			case !tc.privileged && (sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation):
				t.Errorf("allowPrivilegeEscalation %v, want false", sc.AllowPrivilegeEscalation)
			}

			var volume *corev1.Volume
			for i := range pod.Volumes {
				if pod.Volumes[i].Name == "watchdog" {
					volume = &pod.Volumes[i]
				}
			}
			mounted := slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
				return m.Name == "watchdog" && m.MountPath == "/dev/watchdog" && !m.ReadOnly
			})
			if tc.hostDevice == "" {
				if volume != nil || mounted {
					t.Errorf("volume %+v mounted %v, want no watchdog hostPath", volume, mounted)
				}
				checkCRISocket(t, pod, c, "/run/containerd/containerd.sock")
			} else if volume == nil || volume.HostPath == nil || volume.HostPath.Path != tc.hostDevice ||
				volume.HostPath.Type == nil || *volume.HostPath.Type != corev1.HostPathCharDev || !mounted {
				t.Errorf("volume %+v mounted at /dev/watchdog %v, want the character device %s", volume, mounted, tc.hostDevice)
			}

			limits := c.Resources.Limits
			if tc.resource != "" {
				if q, ok := limits[corev1.ResourceName(tc.resource)]; !ok || q.Value() != 1 {
					t.Errorf("limits %v, want one %s", limits, tc.resource)
				}
			} else if len(limits) != 1 || limits.Memory().String() != "128Mi" {
				t.Errorf("limits %v, want the default memory limit only", limits)
			}
			if c.Resources.Requests.Cpu().String() != "20m" || limits.Memory().String() != "128Mi" {
				t.Errorf("resources %+v, want the defaults kept", c.Resources)
			}

			if got := slices.Contains(c.Args, "--watchdog-fallback=/dev/watchdog"); got != tc.fallback {
				t.Errorf("args %q: --watchdog-fallback %v, want %v", c.Args, got, tc.fallback)
			}

			dryRun(t, u)
		})
	}
}

// TestWatchdogSchema: bad agent.watchdog values are refused with a message naming them.
func TestWatchdogSchema(t *testing.T) {
	for _, tc := range []struct {
		set  string
		want []string
	}{
		{"agent.watchdog.device=watchdog", []string{"/agent/watchdog/device", "/dev/"}},
		{"agent.watchdog.enabled=yes", []string{"/agent/watchdog/enabled", "boolean"}},
		{"agent.watchdog.deviceResource=not a resource", []string{"/agent/watchdog/deviceResource"}},
		{"agent.watchdog.privileged=true", []string{"/agent/watchdog", "privileged"}},
		// Not the schema but the chart: the fallback is the node's watchdog.
		{"agent.watchdog.fallback=true", []string{"agent.watchdog.fallback=true needs agent.watchdog.enabled=true"}},
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
		})
	}
}

// dryRunNamespace holds the dry runs of TestWatchdogValues, apart from the release's namespace.
const dryRunNamespace = "wolfpack-watchdog-dry-run"

// dryRun sends u to the chart's API server with dryRun=All: the API server validates it as it
// would at install.
func dryRun(t *testing.T, u *unstructured.Unstructured) {
	t.Helper()
	c, err := client.New(helmEnv.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: dryRunNamespace}}
	if err := c.Create(t.Context(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	o := u.DeepCopy()
	o.SetNamespace(dryRunNamespace)
	if err := c.Create(t.Context(), o, client.DryRunAll); err != nil {
		t.Errorf("the API server refuses %s: %v", id(u), err)
	}
}

// TestWatchdogKustomize: config/watchdog is config/default with the agent's DaemonSet as the
// chart renders it with agent.watchdog.enabled=true (security context, volume mounts, volumes),
// and the API server accepts it.
func TestWatchdogKustomize(t *testing.T) {
	objs := kustomize(t, "config/watchdog")
	if got, want := ids(objs), ids(kustomize(t, "config/default")); !slices.Equal(got, want) {
		t.Errorf("config/watchdog has\n  %q\nconfig/default has\n  %q", got, want)
	}
	u := mustFind(t, objs, "DaemonSet", "wolfpack-node-agent")
	got := podTemplate(t, u)
	want := podTemplate(t, mustFind(t, render(t, "--set", "agent.watchdog.enabled=true"), "DaemonSet", "wolfpack-node-agent"))
	g, w := onlyContainer(t, got.Spec), onlyContainer(t, want.Spec)
	// In any order: kustomize's patch puts its items first.
	for _, mounts := range [][]corev1.VolumeMount{g.VolumeMounts, w.VolumeMounts} {
		slices.SortFunc(mounts, func(a, b corev1.VolumeMount) int { return strings.Compare(a.Name, b.Name) })
	}
	for _, volumes := range [][]corev1.Volume{got.Spec.Volumes, want.Spec.Volumes} {
		slices.SortFunc(volumes, func(a, b corev1.Volume) int { return strings.Compare(a.Name, b.Name) })
	}
	if !reflect.DeepEqual(g.SecurityContext, w.SecurityContext) {
		t.Errorf("container securityContext %+v, the chart's %+v", g.SecurityContext, w.SecurityContext)
	}
	if !reflect.DeepEqual(g.VolumeMounts, w.VolumeMounts) || !reflect.DeepEqual(got.Spec.Volumes, want.Spec.Volumes) {
		t.Errorf("volume mounts %+v and volumes %+v, the chart's %+v and %+v", g.VolumeMounts, got.Spec.Volumes, w.VolumeMounts, want.Spec.Volumes)
	}
	if g.SecurityContext == nil || g.SecurityContext.Privileged == nil || !*g.SecurityContext.Privileged {
		t.Errorf("securityContext %+v, want privileged", g.SecurityContext)
	}
	dryRun(t, u)
}
