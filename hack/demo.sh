#!/usr/bin/env bash
# `make demo`. Today: a real kube-apiserver and etcd (built from the Go module proxy on the first
# run) with the CRDs, two simulated nodes, the manager's controllers and the samples; the group is
# moved and its node crashed (see hack/demo/main.go). The full demo on a local cluster with the
# manager and node agents as real processes (issue 7) replaces it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
assets="$(hack/k8s-binaries.sh etcd kube-apiserver)"
KUBEBUILDER_ASSETS="${assets}" go run ./hack/demo
