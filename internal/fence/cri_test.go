package fence

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	apitest "k8s.io/cri-api/pkg/apis/testing"
	crifake "k8s.io/cri-client/pkg/fake"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/test/critest"
)

// fakeRuntime is cri-client's fake CRI runtime, recording the StopContainer requests it serves.
// StopContainer fails for the containers in fail, and hangs until its caller gives up for those
// in hang.
type fakeRuntime struct {
	*crifake.RemoteRuntime
	mu    sync.Mutex
	stops []*runtimeapi.StopContainerRequest
	fail  map[string]bool
	hang  map[string]bool
}

func (r *fakeRuntime) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	r.mu.Lock()
	r.stops = append(r.stops, req)
	fail, hang := r.fail[req.ContainerId], r.hang[req.ContainerId]
	r.mu.Unlock()
	switch {
	case fail:
		return nil, status.Error(codes.Internal, "the runtime could not kill it")
	case hang:
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return r.RemoteRuntime.StopContainer(ctx, req)
}

// stopTimeouts returns the timeout of every StopContainer request so far.
func (r *fakeRuntime) stopTimeouts() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := make([]int64, 0, len(r.stops))
	for _, req := range r.stops {
		ts = append(ts, req.Timeout)
	}
	return ts
}

// serveFakeCRI serves a fake CRI runtime on the unix socket at path until the test ends.
func serveFakeCRI(t *testing.T, path string) *fakeRuntime {
	t.Helper()
	rt := &fakeRuntime{RemoteRuntime: crifake.NewFakeRemoteRuntime(), fail: map[string]bool{}, hang: map[string]bool{}}
	critest.Serve(t, path, rt)
	return rt
}

// pod is a pod sandbox and its containers, for seeding the fake runtime.
type pod struct {
	ns, name, id string
	group        string // the wolfpack.dev/group label; none when empty
	ready        bool
	containers   map[string]runtimeapi.ContainerState // by name
}

// seed replaces the fake runtime's sandboxes and containers with pods'. A container's id is
// its sandbox's id, "/", and its name.
func seed(rt *fakeRuntime, pods ...pod) {
	sandboxes := make([]*apitest.FakePodSandbox, 0, len(pods))
	var containers []*apitest.FakeContainer
	for _, p := range pods {
		labels := map[string]string{"io.kubernetes.pod.name": p.name, "app": p.name}
		if p.group != "" {
			labels[wolfpackv1alpha1.GroupLabel] = p.group
		}
		state := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		if p.ready {
			state = runtimeapi.PodSandboxState_SANDBOX_READY
		}
		sandboxes = append(sandboxes, &apitest.FakePodSandbox{PodSandboxStatus: runtimeapi.PodSandboxStatus{
			Id:       p.id,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: p.name, Namespace: p.ns, Uid: p.id + "-uid"},
			State:    state,
			Labels:   labels,
		}})
		for name, state := range p.containers {
			containers = append(containers, &apitest.FakeContainer{
				ContainerStatus: runtimeapi.ContainerStatus{
					Id:       p.id + "/" + name,
					Metadata: &runtimeapi.ContainerMetadata{Name: name},
					State:    state,
					// As the kubelet does: the pod's labels are not the container's.
					Labels: map[string]string{"io.kubernetes.container.name": name},
				},
				SandboxID: p.id,
			})
		}
	}
	rt.RuntimeService.SetFakeSandboxes(sandboxes)
	rt.RuntimeService.SetFakeContainers(containers)
}

// states returns the state of every sandbox and container in the fake runtime, by id.
func states(rt *fakeRuntime) map[string]string {
	rs := rt.RuntimeService
	rs.Lock()
	defer rs.Unlock()
	got := map[string]string{}
	for id, s := range rs.Sandboxes {
		got[id] = s.State.String()
	}
	for id, c := range rs.Containers {
		got[id] = c.State.String()
	}
	return got
}

const (
	running = runtimeapi.ContainerState_CONTAINER_RUNNING
	exited  = runtimeapi.ContainerState_CONTAINER_EXITED
	created = runtimeapi.ContainerState_CONTAINER_CREATED
)

// shop is a node with two group pods (one with a finished init container), a group pod left
// over from an earlier attempt, a pod of no group, and a not-ready group sandbox with a container
// still running.
var shop = []pod{
	{ns: "shop", name: "web-0", id: "sb-web", group: "shop", ready: true,
		containers: map[string]runtimeapi.ContainerState{"app": running, "proxy": running, "init": exited}},
	{ns: "shop", name: "db-0", id: "sb-db", group: "shop", ready: true,
		containers: map[string]runtimeapi.ContainerState{"db": running}},
	{ns: "shop", name: "web-0", id: "sb-web-old", group: "shop", ready: false,
		containers: map[string]runtimeapi.ContainerState{"app": exited}},
	{ns: "kube-system", name: "kube-proxy-x", id: "sb-proxy", ready: true,
		containers: map[string]runtimeapi.ContainerState{"kube-proxy": running}},
	{ns: "batch", name: "report-0", id: "sb-report", group: "batch", ready: false,
		containers: map[string]runtimeapi.ContainerState{"report": running, "starting": created}},
}

func newTestCRI(t *testing.T, opts Options) (Fencer, *fakeRuntime) {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "cri.sock")
	rt := serveFakeCRI(t, socket)
	opts.CRIEndpoint = "unix://" + socket
	f, err := New(wolfpackv1alpha1.FenceCRI, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f, rt
}

func TestCRIFence(t *testing.T) {
	f, rt := newTestCRI(t, Options{})
	seed(rt, shop...)
	if err := f.Heartbeat(); err != nil {
		t.Errorf("Heartbeat: %v", err)
	}

	start := time.Now()
	r, err := f.Fence(context.Background())
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Fence: %v", err)
	}
	t.Logf("%s (wall %s)", r, took)

	want := []StoppedPod{
		{Namespace: "batch", Name: "report-0", Group: "batch", SandboxID: "sb-report", Containers: []string{"report", "starting"}},
		{Namespace: "shop", Name: "db-0", Group: "shop", SandboxID: "sb-db", Containers: []string{"db"}},
		{Namespace: "shop", Name: "web-0", Group: "shop", SandboxID: "sb-web", Containers: []string{"app", "proxy"}},
	}
	if !reflect.DeepEqual(r.Pods, want) {
		t.Errorf("stopped pods:\n got %+v\nwant %+v", r.Pods, want)
	}
	if r.Action != wolfpackv1alpha1.FenceCRI || r.Containers() != 5 || r.Duration <= 0 || r.Duration > took {
		t.Errorf("report %+v: want CRI, 5 containers, a duration within %s", r, took)
	}
	wantStates := map[string]string{
		"sb-web": "SANDBOX_NOTREADY", "sb-web/app": "CONTAINER_EXITED", "sb-web/proxy": "CONTAINER_EXITED", "sb-web/init": "CONTAINER_EXITED",
		"sb-db": "SANDBOX_NOTREADY", "sb-db/db": "CONTAINER_EXITED",
		"sb-web-old": "SANDBOX_NOTREADY", "sb-web-old/app": "CONTAINER_EXITED",
		"sb-report": "SANDBOX_NOTREADY", "sb-report/report": "CONTAINER_EXITED", "sb-report/starting": "CONTAINER_EXITED",
		// No group label: left running.
		"sb-proxy": "SANDBOX_READY", "sb-proxy/kube-proxy": "CONTAINER_RUNNING",
	}
	if got := states(rt); !reflect.DeepEqual(got, wantStates) {
		t.Errorf("runtime after Fence:\n got %v\nwant %v", got, wantStates)
	}
	if got := rt.stopTimeouts(); len(got) != 5 || slices.ContainsFunc(got, func(s int64) bool { return s != 0 }) {
		t.Errorf("StopContainer timeouts %v, want 5 times 0 (kill at once)", got)
	}
	calls := rt.RuntimeService.GetCalls()
	if n := count(calls, "StopPodSandbox"); n != 3 {
		t.Errorf("%d StopPodSandbox calls, want 3 (%v)", n, calls)
	}

	t.Run("again: nothing left", func(t *testing.T) {
		r, err := f.Fence(context.Background())
		if err != nil || len(r.Pods) != 0 {
			t.Errorf("second Fence: %v, %v; want nothing stopped and no error", r, err)
		}
	})
	t.Run("again: the kubelet restarted a pod", func(t *testing.T) {
		seed(rt, pod{ns: "shop", name: "db-0", id: "sb-db-2", group: "shop", ready: true,
			containers: map[string]runtimeapi.ContainerState{"db": running}})
		r, err := f.Fence(context.Background())
		if err != nil || len(r.Pods) != 1 || r.Pods[0].SandboxID != "sb-db-2" {
			t.Errorf("Fence: %v, %v; want sb-db-2 stopped", r, err)
		}
	})
}

func count(calls []string, name string) int {
	n := 0
	for _, c := range calls {
		if c == name {
			n++
		}
	}
	return n
}

func TestCRIFenceGracePeriod(t *testing.T) {
	f, rt := newTestCRI(t, Options{StopGracePeriod: 1500 * time.Millisecond})
	seed(rt, shop[1])
	if _, err := f.Fence(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rt.stopTimeouts(); !slices.Equal(got, []int64{2}) {
		t.Errorf("StopContainer timeouts %v, want [2]: the grace period rounded up to seconds", got)
	}
}

func TestCRIFenceErrors(t *testing.T) {
	f, rt := newTestCRI(t, Options{})
	seed(rt, shop...)
	rt.fail["sb-web/proxy"] = true

	r, err := f.Fence(context.Background())
	if err == nil || !strings.Contains(err.Error(), "pod shop/web-0 (sandbox sb-web): stop container proxy (sb-web/proxy): ") ||
		!strings.Contains(err.Error(), "the runtime could not kill it") {
		t.Fatalf("Fence: %v; want an error naming the pod and the container", err)
	}
	// The rest is stopped all the same, the failed container's sandbox too.
	if len(r.Pods) != 3 || r.Containers() != 4 {
		t.Errorf("stopped %v, want 3 pods and 4 containers", r)
	}
	if got := states(rt)["sb-web"]; got != "SANDBOX_NOTREADY" {
		t.Errorf("sb-web is %s, want stopped", got)
	}

	t.Run("sandbox", func(t *testing.T) {
		seed(rt, shop[1])
		rt.RuntimeService.InjectError("StopPodSandbox", status.Error(codes.Unavailable, "shim gone"))
		r, err := f.Fence(context.Background())
		if err == nil || !strings.Contains(err.Error(), "pod shop/db-0 (sandbox sb-db): stop sandbox sb-db: ") || len(r.Pods) != 0 {
			t.Errorf("Fence: %v, %v; want an error naming the sandbox, and no pod reported stopped", r, err)
		}
	})
	t.Run("already gone", func(t *testing.T) {
		seed(rt, shop[1])
		rt.RuntimeService.InjectError("StopContainer", status.Error(codes.NotFound, "no such container"))
		rt.RuntimeService.InjectError("StopPodSandbox", status.Error(codes.NotFound, "no such sandbox"))
		r, err := f.Fence(context.Background())
		if err != nil || len(r.Pods) != 0 {
			t.Errorf("Fence: %v, %v; want no error and nothing reported stopped", r, err)
		}
	})
	t.Run("list", func(t *testing.T) {
		rt.RuntimeService.InjectError("ListPodSandbox", status.Error(codes.Internal, "boom"))
		if _, err := f.Fence(context.Background()); err == nil || !strings.Contains(err.Error(), "list pod sandboxes: ") {
			t.Errorf("Fence: %v, want the list error", err)
		}
	})
}

func TestCRIFenceBoundedByContext(t *testing.T) {
	f, rt := newTestCRI(t, Options{})
	seed(rt, shop...)
	rt.hang["sb-db/db"] = true

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	r, err := f.Fence(ctx)
	took := time.Since(start)
	if took > 2*time.Second {
		t.Errorf("Fence took %s, want about the context's 300ms", took)
	}
	if err == nil || !strings.Contains(err.Error(), "stop container db (sb-db/db)") {
		t.Errorf("Fence: %v; want an error naming the hung container", err)
	}
	// The other pods are not held up by the hung one.
	if got := states(rt); got["sb-web"] != "SANDBOX_NOTREADY" || got["sb-report"] != "SANDBOX_NOTREADY" {
		t.Errorf("the other pods: %v, want them stopped", got)
	}
	t.Logf("%s; took %s", r, took)
}

func TestCRIRuntimeUnavailable(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "cri.sock")
	f, err := New(wolfpackv1alpha1.FenceCRI, Options{CRIEndpoint: "unix://" + socket, CRITimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()

	start := time.Now()
	_, err = f.Fence(context.Background())
	if !errors.Is(err, ErrRuntimeUnavailable) || !strings.Contains(err.Error(), "container runtime unavailable at unix://"+socket) {
		t.Fatalf("Fence without a runtime: %v, want ErrRuntimeUnavailable naming the endpoint", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Fence without a runtime took %s, want it to fail at once", took)
	}

	// Once the runtime is up, the next Fence connects.
	rt := serveFakeCRI(t, socket)
	seed(rt, shop[1])
	r, err := f.Fence(context.Background())
	if err != nil || len(r.Pods) != 1 {
		t.Errorf("Fence once the runtime is up: %v, %v; want db-0 stopped", r, err)
	}

	t.Run("bad endpoint", func(t *testing.T) {
		f, err := New(wolfpackv1alpha1.FenceCRI, Options{CRIEndpoint: "tcp://localhost:1"})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		if _, err := f.Fence(context.Background()); err == nil || !strings.Contains(err.Error(), "CRI endpoint tcp://localhost:1") {
			t.Errorf("Fence: %v, want an error naming the endpoint", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Fence(context.Background()); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("Fence after Close: %v, want an error", err)
		}
	})
}

func TestFenceTargets(t *testing.T) {
	sandbox := func(id, ns, name string, ready bool, labels map[string]string) *runtimeapi.PodSandbox {
		state := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		if ready {
			state = runtimeapi.PodSandboxState_SANDBOX_READY
		}
		return &runtimeapi.PodSandbox{Id: id, Metadata: &runtimeapi.PodSandboxMetadata{Namespace: ns, Name: name}, State: state, Labels: labels}
	}
	container := func(id, sandbox, name string, state runtimeapi.ContainerState) *runtimeapi.Container {
		return &runtimeapi.Container{Id: id, PodSandboxId: sandbox, Metadata: &runtimeapi.ContainerMetadata{Name: name}, State: state}
	}
	group := map[string]string{wolfpackv1alpha1.GroupLabel: "g"}
	emptyGroup := map[string]string{wolfpackv1alpha1.GroupLabel: ""}
	for _, tc := range []struct {
		name       string
		sandboxes  []*runtimeapi.PodSandbox
		containers []*runtimeapi.Container
		want       []string // sandbox id: container ids
	}{
		{name: "nothing"},
		{name: "no group label",
			sandboxes:  []*runtimeapi.PodSandbox{sandbox("s1", "ns", "a", true, map[string]string{"app": "a"})},
			containers: []*runtimeapi.Container{container("c1", "s1", "a", running)}},
		{name: "group label with any value",
			sandboxes:  []*runtimeapi.PodSandbox{sandbox("s1", "ns", "a", true, emptyGroup)},
			containers: []*runtimeapi.Container{container("c1", "s1", "a", running)},
			want:       []string{"s1: c1"}},
		{name: "ready without containers",
			sandboxes: []*runtimeapi.PodSandbox{sandbox("s1", "ns", "a", true, group)},
			want:      []string{"s1: "}},
		{name: "not ready, all exited",
			sandboxes:  []*runtimeapi.PodSandbox{sandbox("s1", "ns", "a", false, group)},
			containers: []*runtimeapi.Container{container("c1", "s1", "a", exited)}},
		{name: "not ready, one running",
			sandboxes:  []*runtimeapi.PodSandbox{sandbox("s1", "ns", "a", false, group)},
			containers: []*runtimeapi.Container{container("c1", "s1", "a", exited), container("c2", "s1", "b", runtimeapi.ContainerState_CONTAINER_UNKNOWN)},
			want:       []string{"s1: c2"}},
		{name: "containers by name, pods by namespace and name, other sandboxes' containers left",
			sandboxes: []*runtimeapi.PodSandbox{
				sandbox("s3", "b", "a", true, group), sandbox("s2", "a", "b", true, group),
				sandbox("s1", "a", "a", true, group), sandbox("s4", "a", "a", true, nil),
			},
			containers: []*runtimeapi.Container{
				container("c3", "s1", "z", running), container("c1", "s1", "m", created), container("c2", "s2", "a", running),
				container("c4", "s4", "a", running), container("c5", "gone", "a", running),
			},
			want: []string{"s1: c1,c3", "s2: c2", "s3: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, target := range fenceTargets(tc.sandboxes, tc.containers) {
				var ids []string
				for _, c := range target.containers {
					ids = append(ids, c.Id)
				}
				got = append(got, target.sandboxID+": "+strings.Join(ids, ","))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
