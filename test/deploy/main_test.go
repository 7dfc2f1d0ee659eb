// Package deploy checks the ways Wolfpack is installed: the Helm chart in charts/wolfpack (lint,
// renderings, schema, in step with config/, and an install, upgrade and uninstall on a real
// kube-apiserver) and the kustomize bases in config/ (built with kustomize's own library and
// applied to a real kube-apiserver).
//
// Two bare API servers run (no CRDs installed), from the same binaries (KUBEBUILDER_ASSETS, see
// hack/k8s-binaries.sh): the chart is installed on one, the kustomize bases applied to the other,
// so that each creates its own CRDs and namespace, under the same cluster-wide names.
// Nothing runs pods there (no kubelet, scheduler or controllers): the tests show that every
// object is accepted, not that it runs.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/wolfpack-ha/wolfpack/internal/localcluster/repo"
)

const (
	// release and namespace are those of the README: the names of objects are then those of
	// config/.
	release   = "wolfpack"
	namespace = "wolfpack-system"
)

var (
	repoRoot = repo.Root()
	chartDir = filepath.Join(repoRoot, "charts", "wolfpack")
	// helmBin is bin/helm, built by hack/helm.sh.
	helmBin string
	// helmHome keeps Helm's cache, configuration and data out of the user's home.
	helmHome string

	// kustomizeEnv is a bare API server, for the kustomize bases.
	kustomizeEnv *envtest.Environment
	// warnings are the API server's warnings to kustomizeEnv's clients.
	warnings = &warningRecorder{}

	// helmEnv is a bare API server (no CRDs), for the chart; helmKubeconfig reaches it.
	helmEnv        *envtest.Environment
	helmKubeconfig string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	ctx := context.Background()
	var err error
	if helmBin, err = buildHelm(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "wolfpack-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	helmHome = filepath.Join(tmp, "helm")

	// The two API servers start side by side.
	var wg sync.WaitGroup
	var kustomizeErr, helmErr error
	wg.Go(func() { kustomizeEnv, kustomizeErr = startBare() })
	wg.Go(func() {
		if helmEnv, helmErr = startBare(); helmErr == nil {
			helmKubeconfig = filepath.Join(tmp, "kubeconfig")
			helmErr = os.WriteFile(helmKubeconfig, helmEnv.KubeConfig, 0o600)
		}
	})
	wg.Wait()
	defer func() {
		if kustomizeEnv != nil {
			_ = kustomizeEnv.Stop()
		}
		if helmEnv != nil {
			_ = helmEnv.Stop()
		}
	}()
	if err := errors.Join(kustomizeErr, helmErr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kustomizeEnv.Config.WarningHandlerWithContext = warnings
	return m.Run()
}

// buildHelm runs hack/helm.sh, which builds bin/helm unless it is there at the pinned version.
func buildHelm(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot, "hack", "helm.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/helm.sh: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// startBare starts an API server without CRDs.
func startBare() (*envtest.Environment, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run `make test-deploy`, which builds etcd and kube-apiserver")
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("starting an API server: %w", err)
	}
	return env, nil
}

// warningRecorder keeps the API server's warnings.
type warningRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (w *warningRecorder) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !slices.Contains(w.seen, text) {
		w.seen = append(w.seen, text)
	}
}

func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.seen
	w.seen = nil
	return s
}

var _ rest.WarningHandlerWithContext = &warningRecorder{}

// runHelm runs bin/helm with args and returns what it wrote to stdout and stderr.
func runHelm(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, helmBin, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(helmHome, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(helmHome, "config"),
		"HELM_DATA_HOME="+filepath.Join(helmHome, "data"),
		"KUBECONFIG=/dev/null", // only --kubeconfig reaches a cluster
	)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// helm runs bin/helm and fails the test when it fails; it returns stdout.
func helm(t *testing.T, args ...string) string {
	t.Helper()
	start := time.Now()
	out, errOut, err := runHelm(t.Context(), args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, errOut, out)
	}
	t.Logf("helm %s (%s)", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	if strings.TrimSpace(errOut) != "" {
		t.Logf("helm's stderr:\n%s", errOut)
	}
	return out
}

// render is `helm template` of the chart as release "wolfpack" in wolfpack-system, with more
// arguments such as --set.
func render(t *testing.T, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out := helm(t, append([]string{"template", release, chartDir, "--namespace", namespace}, args...)...)
	objs, err := decode([]byte(out))
	if err != nil {
		t.Fatalf("decoding helm template's output: %v", err)
	}
	return objs
}

// decode reads every object of a multi-document YAML stream.
func decode(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("%w in:\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// id names an object as "Kind namespace/name" (or "Kind name" when cluster-scoped).
func id(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetKind() + " " + u.GetName()
	}
	return u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
}

// ids are the sorted ids of objs.
func ids(objs []*unstructured.Unstructured) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, id(o))
	}
	slices.Sort(out)
	return out
}

// find is the object of objs with this kind and name, or nil.
func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// ofKind are the objects of objs of this kind.
func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// mustFind is find that fails the test when the object is missing.
func mustFind(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o := find(objs, kind, name)
	if o == nil {
		t.Fatalf("no %s %s among %v", kind, name, ids(objs))
	}
	return o
}

// typed converts u into out, such as an *appsv1.Deployment.
func typed(t *testing.T, u *unstructured.Unstructured, out any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s: %v", id(u), err)
	}
}
