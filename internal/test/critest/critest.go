// Package critest serves a fake CRI runtime, such as a wrapper around k8s.io/cri-client's
// fake.RemoteRuntime, on a unix socket, for tests of code that talks to a container runtime.
// Only tests import it.
package critest

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Serve serves srv as a CRI runtime service on the unix socket at path until the test ends.
func Serve(tb testing.TB, path string, srv runtimeapi.RuntimeServiceServer) {
	tb.Helper()
	lis, err := (&net.ListenConfig{}).Listen(context.Background(), "unix", path)
	if err != nil {
		tb.Fatal(err)
	}
	s := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(s, srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = s.Serve(lis)
	}()
	tb.Cleanup(func() {
		s.Stop()
		<-served
	})
}
