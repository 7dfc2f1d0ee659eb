package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wolfpack-ha/wolfpack/internal/quorum"
)

// The quorum holder's flags. Not parallel: controller-runtime's --kubeconfig is a package
// variable.
func TestParseQuorumFlags(t *testing.T) {
	// with is the required flags and extra.
	with := func(extra ...string) []string {
		return append([]string{"--cluster=prod", "--device=/dev/quorum"}, extra...)
	}
	required := with()
	cases := []struct {
		name    string
		args    []string
		env     string // $NODE_NAME
		wantErr string
		check   func(*testing.T, *quorumOptions)
	}{
		{name: "defaults", args: required, env: "node-a", check: func(t *testing.T, o *quorumOptions) {
			t.Helper()
			if o.node != "node-a" || o.cluster != "prod" || o.device != "/dev/quorum" || !o.format || o.slots != 16 ||
				o.logEntries != 64 || o.leaseNamespace != "wolfpack-system" || o.metricsAddr != "0" || !o.secureMetrics ||
				o.localDir != "/run/wolfpack" {
				t.Errorf("defaults %+v", *o)
			}
		}},
		{name: "every flag", env: "node-a", args: []string{"--node-name=node-b", "--cluster", "dev", "--device", "/var/lib/q.img",
			"--format=false", "--slots=4", "--log-entries=8", "--lease-namespace=ha", "--kubeconfig=/tmp/kc",
			"--metrics-bind-address=:8447", "--metrics-secure=false", "--zap-log-level=debug", "--local-dir=/run/wp"},
			check: func(t *testing.T, o *quorumOptions) {
				t.Helper()
				if o.node != "node-b" || o.cluster != "dev" || o.device != "/var/lib/q.img" || o.format || o.slots != 4 ||
					o.logEntries != 8 || o.leaseNamespace != "ha" || o.metricsAddr != ":8447" || o.secureMetrics ||
					o.localDir != "/run/wp" {
					t.Errorf("options %+v", *o)
				}
			}},
		{name: "empty local dir", args: with("--local-dir="), env: "node-a", wantErr: "--local-dir must not be empty"},
		{name: "no node name", args: required, wantErr: "--node-name (or $NODE_NAME) is required"},
		{name: "no cluster", args: []string{"--device=/dev/quorum"}, env: "node-a", wantErr: "--cluster is required"},
		{name: "empty cluster", args: []string{"--cluster=", "--device=/dev/quorum"}, env: "node-a", wantErr: "--cluster is required"},
		{name: "no device", args: []string{"--cluster=prod"}, env: "node-a", wantErr: "--device is required"},
		{name: "bad cluster name", args: []string{"--cluster=Prod_1", "--device=/dev/quorum"}, env: "node-a",
			wantErr: `--cluster "Prod_1": a lowercase RFC 1123 subdomain`},
		{name: "bad node name", args: required, env: "node a", wantErr: `--node-name "node a"`},
		{name: "bad namespace", args: with("--lease-namespace=wolfpack.system"), env: "node-a",
			wantErr: `--lease-namespace "wolfpack.system"`},
		{name: "bad format value", args: with("--format=maybe"), env: "node-a",
			wantErr: `invalid boolean value "maybe" for -format`},
		{name: "no slots", args: with("--slots=0"), env: "node-a", wantErr: "--slots must be 1 to 255, not 0"},
		{name: "too many slots", args: with("--slots=256"), env: "node-a", wantErr: "--slots must be 1 to 255, not 256"},
		{name: "not a number", args: with("--slots=two"), env: "node-a", wantErr: `invalid value "two" for flag -slots`},
		{name: "no log", args: with("--log-entries=0"), env: "node-a", wantErr: "--log-entries must be 1 to 65536, not 0"},
		{name: "stray argument", args: with("now"), env: "node-a", wantErr: "unexpected arguments: [now]"},
		{name: "unknown flag", args: with("--heartbeat-address=a=10.0.0.1"), env: "node-a",
			wantErr: "flag provided but not defined: -heartbeat-address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("NODE_NAME", tc.env)
			t.Setenv("WOLFPACK_LOCAL_DIR", "")
			o, err := parseQuorumFlags(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseQuorumFlags(%q) = %v, want an error with %q", tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseQuorumFlags(%q): %v", tc.args, err)
			}
			tc.check(t, o)
		})
	}
	if _, err := parseQuorumFlags([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v, want flag.ErrHelp", err)
	}
}

// TestRunQuorumExitCodes: bad flags exit 2, --help 0, without printing the holder's errors.
func TestRunQuorumExitCodes(t *testing.T) {
	t.Setenv("NODE_NAME", "node-a")
	if code := runQuorum(t.Context(), []string{"--device=/dev/quorum"}); code != 2 {
		t.Errorf("missing --cluster: exit code %d, want 2", code)
	}
	if code := runQuorum(t.Context(), []string{"-h"}); code != 0 {
		t.Errorf("-h: exit code %d, want 0", code)
	}
}

func TestOpenQuorumDevice(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	size := quorum.Layout{Slots: 16, LogEntries: 64}.Size()

	missing := filepath.Join(dir, "missing.img")
	if _, err := openQuorumDevice(missing, false, size); err == nil ||
		!strings.Contains(err.Error(), "--device "+missing+" does not exist (and --format=false") {
		t.Errorf("missing file without --format: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file was created without --format: %v", err)
	}

	created := filepath.Join(dir, "quorum.img")
	dev, err := openQuorumDevice(created, true, size)
	if err != nil {
		t.Fatalf("creating: %v", err)
	}
	if st, err := os.Stat(created); err != nil || st.Size() != size {
		t.Errorf("created file: %v, %v; want %d bytes", st, err, size)
	}
	if err := quorum.Format(dev, quorum.Layout{ClusterUID: [quorum.UIDLen]byte{1}, Slots: 16, LogEntries: 64}); err != nil {
		t.Errorf("formatting the created file: %v", err)
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	// An existing file is opened as it is.
	dev, err = openQuorumDevice(created, true, size)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	if _, err := quorum.Open(dev, [quorum.UIDLen]byte{1}); err != nil {
		t.Errorf("the existing disk: %v", err)
	}
	_ = dev.Close()

	if _, err := openQuorumDevice(dir, true, size); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("a directory: %v", err)
	}
	if _, err := openQuorumDevice(filepath.Join(dir, "no", "such", "dir.img"), true, size); err == nil ||
		!strings.Contains(err.Error(), "creating --device") {
		t.Errorf("a file in a missing directory: %v", err)
	}
}
