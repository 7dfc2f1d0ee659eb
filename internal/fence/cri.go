package fence

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	criapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
	criutil "k8s.io/cri-client/pkg/util"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// ErrRuntimeUnavailable is returned by a CRI Fence that cannot reach the container runtime.
var ErrRuntimeUnavailable = errors.New("container runtime unavailable")

// criParallelism is how many pods a CRI Fence stops at once.
const criParallelism = 4

// criFencer is the CRI fence action. It connects to the runtime on the first Fence, and again on
// the next Fence after a failed connection, so that a runtime that was down when the agent
// started can still be used.
type criFencer struct {
	opts    Options
	lock    chan struct{} // a mutex that a context can give up on
	runtime criapi.RuntimeService
	closed  bool
}

func newCRI(opts Options) *criFencer {
	return &criFencer{opts: opts, lock: make(chan struct{}, 1)}
}

// Fence stops the containers, then the sandbox, of every live pod sandbox labelled
// wolfpack.dev/group: the kubelet copies a pod's labels onto its sandbox (not onto its
// containers, which are found by their sandbox). cri-client logs failed calls to the logger of
// ctx (klog.FromContext).
func (c *criFencer) Fence(ctx context.Context) (Report, error) {
	report := Report{Action: wolfpackv1alpha1.FenceCRI, Started: c.opts.Clock.Now()}
	err := c.fence(ctx, &report)
	report.Duration = c.opts.Clock.Since(report.Started)
	return report, err
}

func (c *criFencer) fence(ctx context.Context, report *Report) error {
	rs, err := c.connect(ctx)
	if err != nil {
		return err
	}
	sandboxes, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		return fmt.Errorf("list pod sandboxes: %w", err)
	}
	containers, err := rs.ListContainers(ctx, nil)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	targets := fenceTargets(sandboxes, containers)

	stopped := make([]*StoppedPod, len(targets))
	errs := make([][]error, len(targets))
	sem := make(chan struct{}, criParallelism)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			stopped[i], errs[i] = c.stopPod(ctx, rs, t)
		})
	}
	wg.Wait()
	for _, p := range stopped {
		if p != nil {
			report.Pods = append(report.Pods, *p)
		}
	}
	return errors.Join(slices.Concat(errs...)...)
}

// stopPod stops t's containers and then its sandbox. It returns the pod when its sandbox is
// stopped, and the errors of what could not be stopped. A container or sandbox that is already
// gone is not an error.
func (c *criFencer) stopPod(ctx context.Context, rs criapi.RuntimeService, t fenceTarget) (*StoppedPod, []error) {
	pod := StoppedPod{Namespace: t.namespace, Name: t.name, Group: t.group, SandboxID: t.sandboxID}
	var errs []error
	grace := seconds(c.opts.StopGracePeriod)
	for _, ctr := range t.containers {
		err := rs.StopContainer(ctx, ctr.Id, grace)
		switch {
		case err == nil:
			pod.Containers = append(pod.Containers, ctr.GetMetadata().GetName())
		case status.Code(err) == codes.NotFound:
		default:
			errs = append(errs, fmt.Errorf("pod %s: stop container %s (%s): %w", t, ctr.GetMetadata().GetName(), ctr.Id, err))
		}
	}
	err := rs.StopPodSandbox(ctx, t.sandboxID)
	switch {
	case err == nil:
		return &pod, errs
	case status.Code(err) == codes.NotFound:
		return nil, errs
	default:
		return nil, append(errs, fmt.Errorf("pod %s: stop sandbox %s: %w", t, t.sandboxID, err))
	}
}

// Heartbeat does nothing: the CRI action needs no feeding.
func (c *criFencer) Heartbeat() error { return nil }

var _ HandoverCloser = (*criFencer)(nil)

// Handover does nothing: the CRI action has no watchdog to hand over.
func (c *criFencer) Handover(time.Duration) (time.Duration, error) { return 0, nil }

// Close closes the connection to the runtime, if there is one.
func (c *criFencer) Close() error {
	c.lock <- struct{}{}
	defer func() { <-c.lock }()
	c.closed = true
	if c.runtime == nil {
		return nil
	}
	err := c.runtime.Close(context.Background())
	c.runtime = nil
	return err
}

// connect returns the runtime service, connecting to it first if need be.
func (c *criFencer) connect(ctx context.Context) (criapi.RuntimeService, error) {
	select {
	case c.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w at %s: %w", ErrRuntimeUnavailable, c.opts.CRIEndpoint, ctx.Err())
	}
	defer func() { <-c.lock }()
	if c.closed {
		return nil, errors.New("CRI fencer is closed")
	}
	if c.runtime != nil {
		return c.runtime, nil
	}
	if err := c.probe(ctx); err != nil {
		return nil, err
	}
	rs, err := remote.NewRemoteRuntimeServiceBuilder().
		WithEndpoint(c.opts.CRIEndpoint).
		WithConnectionTimeout(c.opts.CRITimeout).
		WithTracerProvider(nil).
		Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %w", ErrRuntimeUnavailable, c.opts.CRIEndpoint, err)
	}
	c.runtime = rs
	return rs, nil
}

// probe dials the runtime's socket and hangs up. A failed Build leaks its gRPC connection, which
// goes on redialling, so Build is only tried once the socket answers.
func (c *criFencer) probe(ctx context.Context) error {
	addr, dial, err := criutil.GetAddressAndDialer(c.opts.CRIEndpoint)
	if err != nil {
		return fmt.Errorf("CRI endpoint %s: %w", c.opts.CRIEndpoint, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.CRITimeout)
	defer cancel()
	conn, err := dial(ctx, addr)
	if err != nil {
		return fmt.Errorf("%w at %s: %w", ErrRuntimeUnavailable, c.opts.CRIEndpoint, err)
	}
	return conn.Close()
}

// fenceTarget is a group pod sandbox to stop, with the containers to stop first.
type fenceTarget struct {
	namespace, name, group string
	sandboxID              string
	containers             []*runtimeapi.Container
}

// String names the pod for errors.
func (t fenceTarget) String() string {
	return fmt.Sprintf("%s/%s (sandbox %s)", t.namespace, t.name, t.sandboxID)
}

// fenceTargets returns the live group pod sandboxes, in namespace/name order: those labelled
// wolfpack.dev/group that are ready or still have a container that has not exited, each with
// those containers.
func fenceTargets(sandboxes []*runtimeapi.PodSandbox, containers []*runtimeapi.Container) []fenceTarget {
	live := map[string][]*runtimeapi.Container{}
	for _, ctr := range containers {
		if ctr.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
			live[ctr.GetPodSandboxId()] = append(live[ctr.GetPodSandboxId()], ctr)
		}
	}
	var targets []fenceTarget
	for _, s := range sandboxes {
		group, ok := s.GetLabels()[wolfpackv1alpha1.GroupLabel]
		if !ok {
			continue
		}
		ctrs := live[s.GetId()]
		if s.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY && len(ctrs) == 0 {
			continue
		}
		slices.SortFunc(ctrs, func(a, b *runtimeapi.Container) int {
			return cmp.Compare(a.GetMetadata().GetName(), b.GetMetadata().GetName())
		})
		targets = append(targets, fenceTarget{
			namespace:  s.GetMetadata().GetNamespace(),
			name:       s.GetMetadata().GetName(),
			group:      group,
			sandboxID:  s.GetId(),
			containers: ctrs,
		})
	}
	slices.SortFunc(targets, func(a, b fenceTarget) int {
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.name, b.name), cmp.Compare(a.sandboxID, b.sandboxID))
	})
	return targets
}
