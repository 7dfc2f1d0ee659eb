package monitor

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crifake "k8s.io/cri-client/pkg/fake"
	utilexec "k8s.io/utils/exec"

	"github.com/wolfpack-ha/wolfpack/internal/test/critest"
)

// recordingRuntime is cri-client's fake CRI runtime, recording the ExecSync requests it serves.
type recordingRuntime struct {
	*crifake.RemoteRuntime
	mu       sync.Mutex
	requests []*runtimeapi.ExecSyncRequest
}

func (r *recordingRuntime) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	r.mu.Lock()
	r.requests = append(r.requests, req)
	r.mu.Unlock()
	return r.RemoteRuntime.ExecSync(ctx, req)
}

func (r *recordingRuntime) last() *runtimeapi.ExecSyncRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.requests) == 0 {
		return nil
	}
	return r.requests[len(r.requests)-1]
}

// serveFakeCRI serves a fake CRI runtime on the unix socket at path until the test ends.
func serveFakeCRI(t *testing.T, path string) *recordingRuntime {
	t.Helper()
	rt := &recordingRuntime{RemoteRuntime: crifake.NewFakeRemoteRuntime()}
	critest.Serve(t, path, rt)
	return rt
}

func TestCRIExecer(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "cri.sock")
	e := NewCRIExecer("unix://"+socket, 5*time.Second)
	defer func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	checker := NewChecker(e)
	check := Check{Key: "k", Exec: &ExecCheck{ContainerID: "abc123", Command: []string{"cat", "/tmp/healthy"}}, Timeout: 1500 * time.Millisecond}

	// No runtime yet: the check fails, and the next one connects.
	r := checker.Run(context.Background(), check)
	if r.Reason != Failed || !strings.Contains(r.Message, "connect to the container runtime") {
		t.Fatalf("without a runtime: got %+v, want Failed to connect", r)
	}
	rt := serveFakeCRI(t, socket)

	t.Run("exit 0", func(t *testing.T) {
		if r := checker.Run(context.Background(), check); r.Reason != Passed || !r.Healthy {
			t.Errorf("got %+v, want Passed", r)
		}
		req := rt.last()
		if req == nil || req.ContainerId != "abc123" || !slices.Equal(req.Cmd, []string{"cat", "/tmp/healthy"}) || req.Timeout != 2 {
			t.Errorf("the runtime got %v, want container abc123, the command, and the timeout rounded up to 2s", req)
		}
	})
	t.Run("exit 1", func(t *testing.T) {
		rt.RuntimeService.InjectError("ExecSync", utilexec.CodeExitError{Err: errors.New("not healthy"), Code: 1})
		if r := checker.Run(context.Background(), check); r.Reason != Failed || !strings.HasPrefix(r.Message, "exit code 1") {
			t.Errorf("got %+v, want Failed with exit code 1", r)
		}
	})
	t.Run("runtime error", func(t *testing.T) {
		rt.RuntimeService.InjectError("ExecSync", status.Error(codes.NotFound, "container abc123 not found"))
		if r := checker.Run(context.Background(), check); r.Reason != Failed || !strings.Contains(r.Message, "container abc123 not found") {
			t.Errorf("got %+v, want Failed with the runtime's error", r)
		}
	})
	t.Run("exit codes", func(t *testing.T) {
		rt.RuntimeService.InjectError("ExecSync", utilexec.CodeExitError{Err: errors.New("x"), Code: 3})
		_, _, code, err := e.ExecSync(context.Background(), "abc123", []string{"x"}, time.Second)
		if code != 3 || err != nil {
			t.Errorf("got exit code %d and %v, want 3 and no error", code, err)
		}
	})
}

func TestRoundUpToSecond(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		0:                       0,
		time.Millisecond:        time.Second,
		time.Second:             time.Second,
		1001 * time.Millisecond: 2 * time.Second,
	} {
		if got := roundUpToSecond(in); got != want {
			t.Errorf("roundUpToSecond(%s) = %s, want %s", in, got, want)
		}
	}
}
