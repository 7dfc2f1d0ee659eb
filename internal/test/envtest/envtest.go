// Package envtest starts a real kube-apiserver and etcd (controller-runtime's envtest) with
// Wolfpack's CRDs installed, for integration tests. The binaries come from hack/k8s-binaries.sh,
// which `make test-integration` runs and whose output directory it passes in KUBEBUILDER_ASSETS.
// A package whose tests import this one is an integration test package: make test-integration
// runs it, make test-unit does not.
package envtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/wolfpack-ha/wolfpack/internal/localcluster/repo"
)

// LeaseNamespace is where the node agents keep their Leases; Start creates it.
const LeaseNamespace = "wolfpack-system"

// Env is a running control plane.
type Env struct {
	*envtest.Environment
	// Config reaches the API server as a cluster administrator.
	Config *rest.Config
	// Version is what the API server reports, such as v1.37.2.
	Version string
}

// Start starts etcd and kube-apiserver and installs the CRDs of config/crd/bases. It fails when
// KUBEBUILDER_ASSETS does not point at the binaries: an integration test never passes without a
// real API server.
func Start() (*Env, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run the tests with `make test-integration`, which builds " +
			"etcd and kube-apiserver into bin/k8s with hack/k8s-binaries.sh and sets it")
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(assets, name)); err != nil {
			return nil, fmt.Errorf("KUBEBUILDER_ASSETS=%s has no %s: run hack/k8s-binaries.sh: %w", assets, name, err)
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(repo.Root(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	if err := createLeaseNamespace(cfg); err != nil {
		_ = env.Stop()
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("asking the API server for its version: %w", err)
	}
	fmt.Fprintf(os.Stderr, "envtest: kube-apiserver %s (%s) serving at %s, with the Wolfpack CRDs installed\n",
		v.GitVersion, filepath.Join(assets, "kube-apiserver"), cfg.Host)
	return &Env{Environment: env, Config: cfg, Version: v.GitVersion}, nil
}

func createLeaseNamespace(cfg *rest.Config) error {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: LeaseNamespace}}
	if err := c.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", LeaseNamespace, err)
	}
	return nil
}
