#!/usr/bin/env bash
# `make demo`. Today: a real kube-apiserver and etcd (built from the Go module proxy on the first
# run) with the Wolfpack CRDs and samples; see hack/demo/main.go. The full demo (a local cluster,
# the manager, two node agents and a failover) replaces it once those exist.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
assets="$(hack/k8s-binaries.sh etcd kube-apiserver)"
KUBEBUILDER_ASSETS="${assets}" go run ./hack/demo
