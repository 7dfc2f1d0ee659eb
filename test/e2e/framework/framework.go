// Package framework is what the end-to-end tests and the failover benchmark share: bringing the
// local cluster's environment (internal/localcluster/env) up for a test, the invariant checker
// that watches it, and the waits for its steady state.
package framework

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wolfpack-ha/wolfpack/internal/localcluster/env"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/repo"
)

// Settle bounds every wait; it holds on a loaded 2-core machine.
const Settle = 3 * time.Minute

// Start builds Wolfpack's binaries and starts the environment on network in a new directory
// named with prefix, or skips with the reason (run names the make target that sets it all up).
// It returns the environment and its directory; the caller stops it.
func Start(tb testing.TB, prefix, run, network string) (*env.Env, string) {
	tb.Helper()
	kubeBin := os.Getenv("WOLFPACK_E2E_BINDIR")
	if kubeBin == "" {
		tb.Skip("WOLFPACK_E2E_BINDIR is not set: run " + run)
	}
	root := repo.Root()
	wolfpackBin := tb.TempDir()
	build := exec.CommandContext(context.Background(), "go", "build", "-o", wolfpackBin+"/", "./cmd/...")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build ./cmd/...: %v\n%s", err, out)
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e, err := env.Start(ctx, env.Options{Dir: dir, KubeBin: kubeBin, WolfpackBin: wolfpackBin,
		Helm: filepath.Join(root, "bin", "helm"), Network: network, Log: testWriter{tb}})
	if err != nil {
		tb.Fatalf("starting the environment (logs in %s): %v", dir, err)
	}
	return e, dir
}

// testWriter writes the environment's progress to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
