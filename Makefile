# Wolfpack: MSCS failover clustering for Kubernetes.
#
#   make verify lint test   what CI runs (.ci/run)
#   make test      unit, envtest integration, deploy and end-to-end tests, in that order (builds
#                  the Kubernetes binaries and helm from the Go module proxy into bin/ on the
#                  first run)
#   make verify    fails when generated files are stale or go.mod is untidy
#   make help      every target

SHELL := /usr/bin/env bash -o errexit -o pipefail -o nounset
.DEFAULT_GOAL := help

GO ?= go
BIN := $(CURDIR)/bin
TOOLS_MOD := hack/tools/go.mod
CONTROLLER_GEN := $(BIN)/controller-gen
GOLANGCI_LINT := $(BIN)/golangci-lint

# Pinned in hack/k8s-binaries.sh; exported so that scripts and tests agree.
export KUBERNETES_VERSION ?= v1.37.2
export ETCD_VERSION ?= v3.6.16

# Tests run with a deadline that holds on a loaded 2-core machine.
TEST_TIMEOUT ?= 20m
TEST_FLAGS ?=

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_0-9-]+:.*##/ { printf "  %-18s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object paths="./api/..."

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs into config/crd/bases, the manager's RBAC into config/rbac, the node agent's into config/agent and the quorum holder's into config/quorum-holder.
	$(CONTROLLER_GEN) crd rbac:roleName=wolfpack-manager paths="./api/...;./controllers/...;./cmd/manager/...;./internal/resourcetype/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) rbac:roleName=wolfpack-node-agent paths="./cmd/node-agent/..." output:rbac:artifacts:config=config/agent
	$(CONTROLLER_GEN) rbac:roleName=wolfpack-quorum-holder paths="./internal/quorumholder/..." output:rbac:artifacts:config=config/quorum-holder
	$(GO) run ./hack/crdtrim config/crd/bases/wolfpack.dev_resources.yaml spec.workload.template spec.service.ports
	hack/helm.sh sync-crds

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -s -w $$(git ls-files '*.go')

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

.PHONY: verify
verify: ## Fail when generated files are stale, code is not gofmt'ed or go.mod is untidy.
	hack/verify.sh

##@ Build

.PHONY: build
build: generate manifests ## Build the binaries into bin/.
	$(GO) build -trimpath -o $(BIN)/ ./cmd/...

##@ Test

# Each step of make test runs its own packages, which hack/test-packages.sh lists: integration
# is every package whose tests import internal/test/envtest (they start etcd and kube-apiserver),
# deploy is test/deploy, e2e is test/e2e and internal/localcluster, and unit is the rest; a new
# package lands in its step by what its tests import.
PACKAGES = hack/test-packages.sh
ENVTEST_ASSETS = KUBEBUILDER_ASSETS="$$(hack/k8s-binaries.sh etcd kube-apiserver)"

.PHONY: test
test: ## Run the unit, integration, deploy and end-to-end tests, one step after the other.
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-integration
	$(MAKE) --no-print-directory test-deploy
	$(MAKE) --no-print-directory test-e2e

.PHONY: test-unit
test-unit: ## Unit tests: every package whose tests start no API server, with -race.
	pkgs="$$($(PACKAGES) unit)" && $(GO) test -race -timeout $(TEST_TIMEOUT) -count=1 $(TEST_FLAGS) $$pkgs

.PHONY: test-integration
test-integration: envtest-binaries ## Integration tests: the packages whose tests start envtest, with -race, verbosely (they print the bad-input table).
	pkgs="$$($(PACKAGES) integration)" && \
		$(ENVTEST_ASSETS) $(GO) test -race -timeout $(TEST_TIMEOUT) -count=1 -v $(TEST_FLAGS) $$pkgs

.PHONY: test-deploy
test-deploy: envtest-binaries ## Helm chart and kustomize checks against a real kube-apiserver.
	hack/helm.sh >/dev/null
	pkgs="$$($(PACKAGES) deploy)" && $(ENVTEST_ASSETS) $(GO) test -timeout $(TEST_TIMEOUT) -count=1 -v $(TEST_FLAGS) $$pkgs

# The local cluster's binaries (internal/localcluster/cluster), built from the Go module proxy by
# hack/k8s-binaries.sh.
E2E_BINARIES = etcd kube-apiserver kube-controller-manager kube-scheduler kwok
CLUSTER_DIR ?= $(CURDIR)/bin/localcluster
DEMO_NETWORK ?=

.PHONY: test-e2e
test-e2e: ## End-to-end tests on a local cluster of real processes with kwok nodes; the first run builds the binaries (about 12 minutes).
	bindir="$$(hack/k8s-binaries.sh $(E2E_BINARIES))" && hack/helm.sh >/dev/null && pkgs="$$($(PACKAGES) e2e)" && \
		WOLFPACK_E2E_BINDIR="$$bindir" $(GO) test -timeout $(TEST_TIMEOUT) -count=1 -v $(TEST_FLAGS) $$pkgs

.PHONY: envtest-binaries
envtest-binaries: ## Build etcd and kube-apiserver from the Go module proxy into bin/k8s (cached).
	hack/k8s-binaries.sh etcd kube-apiserver >/dev/null

##@ Demo

.PHONY: demo
demo: ## The main job: a local cluster, the manager, two member nodes with their agents, the sample group moved and its node crashed; left running (make demo-down). DEMO_NETWORK=netns|loopback (default: netns where the machine allows).
	@kubebin="$$(hack/k8s-binaries.sh $(E2E_BINARIES))" && hack/helm.sh >/dev/null && \
		$(GO) build -o $(BIN)/ ./cmd/... && $(GO) build -o $(BIN)/wolfpack-demo ./hack/demo && \
		$(BIN)/wolfpack-demo --dir $(BIN)/demo --kube-bin "$$kubebin" --wolfpack-bin $(BIN) --helm $(BIN)/helm --network "$(DEMO_NETWORK)"

.PHONY: demo-down
demo-down: ## Stop what make demo left running.
	$(GO) run ./hack/demo down --dir $(BIN)/demo

.PHONY: cluster-up
cluster-up: ## Start a local cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok nodes) that keeps running; prints its KUBECONFIG.
	bindir="$$(hack/k8s-binaries.sh $(E2E_BINARIES))" && \
		$(GO) run ./hack/localcluster up --dir $(CLUSTER_DIR) --bin-dir "$$bindir"

.PHONY: cluster-down
cluster-down: ## Stop the cluster started by make cluster-up.
	$(GO) run ./hack/localcluster down --dir $(CLUSTER_DIR)

##@ Tools (built from hack/tools/go.mod, pinned there)

$(CONTROLLER_GEN): $(TOOLS_MOD)
	$(GO) build -modfile=$(TOOLS_MOD) -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(GOLANGCI_LINT): $(TOOLS_MOD)
	$(GO) build -modfile=$(TOOLS_MOD) -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

##@ Benchmarks

.PHONY: bench
bench: envtest-binaries ## Bring 100 groups of 5 resources online with envtest, then move them all.
	$(ENVTEST_ASSETS) $(GO) test -run '^$$' -bench BenchmarkHundredGroups -benchtime 1x -timeout 30m ./test/integration/

.PHONY: bench-agent
bench-agent: envtest-binaries ## Measure the node-agent process's CPU and resident memory with 2 and 16 peers at the default heartbeat rate (envtest).
	$(ENVTEST_ASSETS) $(GO) test ./test/agentbench/ -run '^$$' -bench . -benchtime 1x -timeout 30m -v

# Wolfpack crash trials of make bench-failover (test/e2e/failoverbench). Its test binary has a
# name of its own, so that whatever stops stray e2e.test processes leaves a 30-minute run alone.
TRIALS ?= 20
# VANILLA=0 leaves the vanilla Kubernetes run (about 16 minutes) out of make bench-failover.
VANILLA ?= 1

.PHONY: bench-failover
bench-failover: ## Crash the sample group's node TRIALS times (default 20) on the local cluster, then vanilla Kubernetes once on the same cluster; writes bin/bench-failover.md (about 30 minutes; needs root).
	bindir="$$(hack/k8s-binaries.sh $(E2E_BINARIES))" && hack/helm.sh >/dev/null && \
		$(GO) test -c -o $(BIN)/bench-failover.test ./test/e2e/failoverbench/ && cd test/e2e/failoverbench && \
		WOLFPACK_E2E_BINDIR="$$bindir" WOLFPACK_BENCH_TRIALS="$(TRIALS)" WOLFPACK_BENCH_VANILLA="$(VANILLA)" $(BIN)/bench-failover.test \
			-test.run '^$$' -test.bench BenchmarkFailover -test.benchtime 1x -test.timeout 90m -test.v
