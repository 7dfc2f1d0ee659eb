// Package cri is the container runtime of a local cluster's node: it runs nothing, and keeps the
// pod sandboxes and containers it is asked to run in memory, serving them over the CRI on a unix
// socket, so that a node agent can fence through it as through containerd.
//
// k8s.io/cri-client's fake runtime would do, but it links the testing package, which a tool
// such as `make demo` must not.
package cri

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-client/pkg/util"
)

// version is the runtime's name and version, and the CRI version it speaks.
var version = &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "wolfpack-localcluster",
	RuntimeVersion: "0.1.0", RuntimeApiVersion: "v1"}

// Runtime is one node's container runtime. Its methods are the CRI's RuntimeService, also for
// direct use in-process (as the stand-in kubelet does). Sandbox IDs are name_namespace_uid_attempt
// and container IDs sandbox_name_attempt, as in k8s.io/cri-api's fake.
type Runtime struct {
	runtimeapi.UnimplementedRuntimeServiceServer

	server *grpc.Server

	mu         sync.Mutex
	sandboxes  map[string]*runtimeapi.PodSandbox
	containers map[string]*container
}

type container struct {
	*runtimeapi.Container
	startedAt, finishedAt int64
}

// New returns a runtime that runs nothing yet.
func New() *Runtime {
	r := &Runtime{server: grpc.NewServer()}
	r.Reset()
	runtimeapi.RegisterRuntimeServiceServer(r.server, r)
	return r
}

// Serve serves the runtime at endpoint (unix:///path) until Stop.
func (r *Runtime) Serve(endpoint string) error {
	l, err := util.CreateListener(endpoint)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", endpoint, err)
	}
	go func(l net.Listener) { _ = r.server.Serve(l) }(l)
	return nil
}

// Stop stops serving.
func (r *Runtime) Stop() { r.server.Stop() }

// Reset forgets every sandbox and container, as a node that lost power comes back with nothing.
func (r *Runtime) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sandboxes = map[string]*runtimeapi.PodSandbox{}
	r.containers = map[string]*container{}
}

// Version names the runtime.
func (r *Runtime) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return version, nil
}

// Status says the runtime and its network are ready.
func (r *Runtime) Status(context.Context, *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true}, {Type: runtimeapi.NetworkReady, Status: true}}}}, nil
}

// RunPodSandbox makes a ready sandbox.
func (r *Runtime) RunPodSandbox(_ context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	cfg := req.GetConfig()
	m := cfg.GetMetadata()
	if m == nil {
		return nil, status.Error(codes.InvalidArgument, "no sandbox metadata")
	}
	id := fmt.Sprintf("%s_%s_%s_%d", m.GetName(), m.GetNamespace(), m.GetUid(), m.GetAttempt())
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sandboxes[id] = &runtimeapi.PodSandbox{Id: id, Metadata: m, State: runtimeapi.PodSandboxState_SANDBOX_READY,
		CreatedAt: time.Now().UnixNano(), Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations(), RuntimeHandler: req.GetRuntimeHandler()}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// StopPodSandbox makes a sandbox not ready.
func (r *Runtime) StopPodSandbox(_ context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sandboxes[req.GetPodSandboxId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "pod sandbox %q not found", req.GetPodSandboxId())
	}
	s.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// RemovePodSandbox forgets a sandbox and its containers.
func (r *Runtime) RemovePodSandbox(_ context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sandboxes, req.GetPodSandboxId())
	for id, c := range r.containers {
		if c.PodSandboxId == req.GetPodSandboxId() {
			delete(r.containers, id)
		}
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// ListPodSandbox lists the sandboxes that pass the filter.
func (r *Runtime) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := req.GetFilter()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*runtimeapi.PodSandbox
	for id, s := range r.sandboxes {
		if (f.GetId() == "" || f.GetId() == id) && (f.GetState() == nil || f.GetState().GetState() == s.State) &&
			hasLabels(s.Labels, f.GetLabelSelector()) {
			out = append(out, clone(s))
		}
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

// CreateContainer makes a created container in a sandbox.
func (r *Runtime) CreateContainer(_ context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	cfg := req.GetConfig()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.sandboxes[req.GetPodSandboxId()]; !ok {
		return nil, status.Errorf(codes.NotFound, "pod sandbox %q not found", req.GetPodSandboxId())
	}
	id := fmt.Sprintf("%s_%s_%d", req.GetPodSandboxId(), cfg.GetMetadata().GetName(), cfg.GetMetadata().GetAttempt())
	r.containers[id] = &container{Container: &runtimeapi.Container{Id: id, PodSandboxId: req.GetPodSandboxId(),
		Metadata: cfg.GetMetadata(), Image: cfg.GetImage(), ImageRef: cfg.GetImage().GetImage(),
		State: runtimeapi.ContainerState_CONTAINER_CREATED, CreatedAt: time.Now().UnixNano(),
		Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations()}}
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// StartContainer makes a container running.
func (r *Runtime) StartContainer(_ context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	return &runtimeapi.StartContainerResponse{}, r.setState(req.GetContainerId(), runtimeapi.ContainerState_CONTAINER_RUNNING)
}

// StopContainer makes a container exited.
func (r *Runtime) StopContainer(_ context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	return &runtimeapi.StopContainerResponse{}, r.setState(req.GetContainerId(), runtimeapi.ContainerState_CONTAINER_EXITED)
}

func (r *Runtime) setState(id string, state runtimeapi.ContainerState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return status.Errorf(codes.NotFound, "container %q not found", id)
	}
	c.State = state
	if state == runtimeapi.ContainerState_CONTAINER_RUNNING {
		c.startedAt = time.Now().UnixNano()
	} else {
		c.finishedAt = time.Now().UnixNano()
	}
	return nil
}

// RemoveContainer forgets a container.
func (r *Runtime) RemoveContainer(_ context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.containers, req.GetContainerId())
	return &runtimeapi.RemoveContainerResponse{}, nil
}

// ListContainers lists the containers that pass the filter.
func (r *Runtime) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*runtimeapi.Container
	for id, c := range r.containers {
		if (f.GetId() == "" || f.GetId() == id) && (f.GetPodSandboxId() == "" || f.GetPodSandboxId() == c.PodSandboxId) &&
			(f.GetState() == nil || f.GetState().GetState() == c.State) && hasLabels(c.Labels, f.GetLabelSelector()) {
			out = append(out, clone(c.Container))
		}
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

// ContainerStatus reports a container.
func (r *Runtime) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[req.GetContainerId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "container %q not found", req.GetContainerId())
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: c.Id, Metadata: c.Metadata,
		State: c.State, CreatedAt: c.CreatedAt, StartedAt: c.startedAt, FinishedAt: c.finishedAt, Image: c.Image,
		ImageRef: c.ImageRef, Labels: c.Labels, Annotations: c.Annotations}}, nil
}

// hasLabels tells whether labels hold every key and value of want.
func hasLabels(labels, want map[string]string) bool {
	for k, v := range want {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// clone copies a message, so that a caller never shares the runtime's own.
func clone[M proto.Message](m M) M {
	return proto.Clone(m).(M)
}
