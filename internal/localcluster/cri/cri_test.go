package cri

import (
	"context"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/fence"
)

// run starts a sandbox for pod with one running container, labelled as the kubelet labels them.
func run(t *testing.T, r *Runtime, pod string, labels map[string]string) (sandbox, ctr string) {
	t.Helper()
	ctx := t.Context()
	cfg := &runtimeapi.PodSandboxConfig{Labels: labels,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: pod, Namespace: "demo", Uid: "uid-" + pod}}
	s, err := r.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: s.PodSandboxId, SandboxConfig: cfg,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "main"}, Labels: labels}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		t.Fatal(err)
	}
	return s.PodSandboxId, c.ContainerId
}

func ready(t *testing.T, r *Runtime) map[string]bool {
	t.Helper()
	list, err := r.ListPodSandbox(t.Context(), &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, s := range list.Items {
		out[s.Metadata.Name] = true
	}
	return out
}

// TestFenceThroughRuntime fences through the runtime as a node agent does, over the CRI: the
// group's pod is stopped, the other pod is left running.
func TestFenceThroughRuntime(t *testing.T) {
	r := New()
	endpoint := "unix://" + filepath.Join(t.TempDir(), "cri.sock")
	if err := r.Serve(endpoint); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	_, groupCtr := run(t, r, "server", map[string]string{wolfpackv1alpha1.GroupLabel: "sql"})
	run(t, r, "other", map[string]string{"app": "other"})

	f, err := fence.New(wolfpackv1alpha1.FenceCRI, fence.Options{CRIEndpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	report, err := f.Fence(context.Background())
	if err != nil {
		t.Fatalf("Fence: %v", err)
	}
	if len(report.Pods) != 1 || report.Pods[0].Name != "server" {
		t.Errorf("Fence stopped %+v, want the pod server only", report.Pods)
	}
	if got := ready(t, r); !got["other"] || got["server"] {
		t.Errorf("ready sandboxes after the fence: %v, want other only", got)
	}
	st, err := r.ContainerStatus(t.Context(), &runtimeapi.ContainerStatusRequest{ContainerId: groupCtr})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("the group's container is %s after the fence, want exited", st.Status.State)
	}
}

func TestNotFoundAndReset(t *testing.T) {
	r := New()
	sandbox, _ := run(t, r, "server", nil)
	_, err := r.StopPodSandbox(t.Context(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("stopping an unknown sandbox: %v, want NotFound", err)
	}
	if _, err := r.RemovePodSandbox(t.Context(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sandbox}); err != nil {
		t.Fatal(err)
	}
	list, err := r.ListContainers(t.Context(), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Containers) != 0 {
		t.Errorf("containers after their sandbox was removed: %v", list.Containers)
	}
	run(t, r, "again", nil)
	r.Reset()
	if got := ready(t, r); len(got) != 0 {
		t.Errorf("ready sandboxes after Reset: %v", got)
	}
}
