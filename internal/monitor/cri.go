package monitor

import (
	"context"
	"errors"
	"fmt"
	"time"

	criapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"
	criutil "k8s.io/cri-client/pkg/util"
	utilexec "k8s.io/utils/exec"
)

const (
	// DefaultCRIEndpoint is containerd's CRI socket.
	DefaultCRIEndpoint = "unix:///run/containerd/containerd.sock"
	// DefaultCRIConnectTimeout bounds connecting to the container runtime.
	DefaultCRIConnectTimeout = 10 * time.Second
)

// CRIExecer is the Execer of exec checks: CRI ExecSync against the node's container runtime, as
// kubelet's exec probes. It connects on first use, and again on the next use after a failed
// connection, so a monitor started before the runtime is up still works once it is. It is safe
// for concurrent use.
type CRIExecer struct {
	endpoint       string
	connectTimeout time.Duration
	lock           chan struct{} // a mutex that a context can give up on
	runtime        criapi.RuntimeService
}

// NewCRIExecer returns a CRIExecer for the CRI endpoint (DefaultCRIEndpoint when empty) that gives
// up connecting after connectTimeout (DefaultCRIConnectTimeout when not positive).
func NewCRIExecer(endpoint string, connectTimeout time.Duration) *CRIExecer {
	if endpoint == "" {
		endpoint = DefaultCRIEndpoint
	}
	if connectTimeout <= 0 {
		connectTimeout = DefaultCRIConnectTimeout
	}
	return &CRIExecer{endpoint: endpoint, connectTimeout: connectTimeout, lock: make(chan struct{}, 1)}
}

// ExecSync runs cmd in the container and returns its output and exit code. The runtime is given
// the timeout rounded up to whole seconds, the CRI's unit.
func (e *CRIExecer) ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, exitCode int, err error) {
	rs, err := e.connect(ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	stdout, stderr, err = rs.ExecSync(ctx, containerID, cmd, roundUpToSecond(timeout))
	var exit utilexec.ExitError
	switch {
	case err == nil:
		return stdout, stderr, 0, nil
	case errors.As(err, &exit):
		return stdout, stderr, exit.ExitStatus(), nil
	case errors.Is(err, remote.ErrCommandTimedOut):
		return nil, nil, 0, fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	default:
		return nil, nil, 0, fmt.Errorf("CRI ExecSync: %w", err)
	}
}

// Close closes the connection to the runtime, if there is one.
func (e *CRIExecer) Close() error {
	e.lock <- struct{}{}
	defer func() { <-e.lock }()
	if e.runtime == nil {
		return nil
	}
	err := e.runtime.Close(context.Background())
	e.runtime = nil
	return err
}

// connect returns the runtime service, connecting to it first if need be.
func (e *CRIExecer) connect(ctx context.Context) (criapi.RuntimeService, error) {
	select {
	case e.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("connect to the container runtime: %w", ctx.Err())
	}
	defer func() { <-e.lock }()
	if e.runtime != nil {
		return e.runtime, nil
	}
	if err := e.probe(ctx); err != nil {
		return nil, err
	}
	rs, err := remote.NewRemoteRuntimeServiceBuilder().
		WithEndpoint(e.endpoint).
		WithConnectionTimeout(e.connectTimeout).
		WithTracerProvider(nil).
		Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to the container runtime at %s: %w", e.endpoint, err)
	}
	e.runtime = rs
	return rs, nil
}

// probe dials the runtime's socket and hangs up. A failed Build leaks its gRPC connection, which
// goes on redialling, so Build is only tried once the socket answers: while the runtime is down,
// every exec check fails here without leaking anything.
func (e *CRIExecer) probe(ctx context.Context) error {
	addr, dial, err := criutil.GetAddressAndDialer(e.endpoint)
	if err != nil {
		return fmt.Errorf("CRI endpoint %s: %w", e.endpoint, err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.connectTimeout)
	defer cancel()
	conn, err := dial(ctx, addr)
	if err != nil {
		return fmt.Errorf("connect to the container runtime at %s: %w", e.endpoint, err)
	}
	return conn.Close()
}

// roundUpToSecond rounds d up to whole seconds.
func roundUpToSecond(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}
