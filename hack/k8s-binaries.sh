#!/usr/bin/env bash
# Builds the Kubernetes binaries that the tests and the local cluster run, from the Go module
# proxy only, at pinned versions, and caches them under bin/k8s/<version>/.
#
#   hack/k8s-binaries.sh [COMPONENT...]    (default: etcd kube-apiserver)
#
# Components: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, kwokctl.
# Prints the directory that holds them (KUBEBUILDER_ASSETS for envtest) on stdout.
#
# A binary is rebuilt only when it is missing or does not report the pinned version, so a
# second run costs a few exec calls. Nothing is fetched from anywhere but GOPROXY.
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${root}/bin/k8s/${KUBERNETES_VERSION}"
work="${root}/bin/.build"
mkdir -p "${dest}" "${work}"

log() { echo "k8s-binaries: $*" >&2; }

# The version a binary reports, or nothing when it is missing or broken.
reported_version() {
  local bin="$1"
  [[ -x "${bin}" ]] || return 0
  "${bin}" --version 2>/dev/null | head -n1 || true
}

build_etcd() {
  local want="etcd Version: ${ETCD_VERSION#v}"
  if [[ "$(reported_version "${dest}/etcd")" == "${want}" ]]; then
    return 0
  fi
  log "building etcd ${ETCD_VERSION} from go.etcd.io/etcd/server/v3 (first run only)"
  local mod="${work}/etcd-${ETCD_VERSION}"
  mkdir -p "${mod}"
  (
    cd "${mod}"
    [[ -f go.mod ]] || go mod init wolfpack.local/build/etcd >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >/dev/null 2>&1
    CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w" -o "${dest}/etcd.tmp" go.etcd.io/etcd/server/v3
  )
  mv "${dest}/etcd.tmp" "${dest}/etcd"
  [[ "$(reported_version "${dest}/etcd")" == "${want}" ]] || { log "etcd reports '$(reported_version "${dest}/etcd")', want '${want}'"; exit 1; }
}

# kwok (fake nodes and pods) and kwokctl build with kwok's own dependencies, so the throwaway
# module only requires sigs.k8s.io/kwok and lets minimal version selection pick the rest.
build_kwok() {
  local name="$1"
  local want="${name} version ${KWOK_VERSION}"
  if [[ "$(reported_version "${dest}/${name}")" == "${want} "* ]]; then
    return 0
  fi
  log "building ${name} ${KWOK_VERSION} from sigs.k8s.io/kwok (first run only; about 5 minutes)"
  local mod="${work}/kwok-${KWOK_VERSION}"
  mkdir -p "${mod}"
  (
    cd "${mod}"
    [[ -f go.mod ]] || go mod init wolfpack.local/build/kwok >/dev/null 2>&1
    go get "sigs.k8s.io/kwok@${KWOK_VERSION}" >/dev/null 2>&1
    CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
      -o "${dest}/${name}.tmp" "sigs.k8s.io/kwok/cmd/${name}"
  )
  mv "${dest}/${name}.tmp" "${dest}/${name}"
  [[ "$(reported_version "${dest}/${name}")" == "${want} "* ]] || { log "${name} reports '$(reported_version "${dest}/${name}")', want '${want}'"; exit 1; }
}

# Kubernetes main binaries live in k8s.io/kubernetes, whose go.mod maps every staging module
# (k8s.io/api, k8s.io/apiserver, ...) to ./staging. A dependent module cannot use those
# replacements, so the throwaway build module maps each to its published v0.x.y twin.
prepare_kubernetes_module() {
  local mod="${work}/kubernetes-${KUBERNETES_VERSION}"
  if [[ -f "${mod}/.ready" ]]; then
    echo "${mod}"
    return 0
  fi
  log "preparing a build module for k8s.io/kubernetes ${KUBERNETES_VERSION} (first run only)"
  rm -rf "${mod}" && mkdir -p "${mod}"
  local staging="v0.${KUBERNETES_VERSION#v1.}"
  local gomod
  gomod="$(cd "${mod}" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
  {
    echo "module wolfpack.local/build/kubernetes"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
    echo
    echo "require k8s.io/kubernetes ${KUBERNETES_VERSION}"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"${staging}"'#p' "${gomod}"
    echo ")"
  } >"${mod}/go.mod"
  (cd "${mod}" && go mod tidy -e >/dev/null 2>&1 || true)
  touch "${mod}/.ready"
  echo "${mod}"
}

build_kubernetes() {
  local name="$1"
  local want="Kubernetes ${KUBERNETES_VERSION}"
  if [[ "$(reported_version "${dest}/${name}")" == "${want}" ]]; then
    return 0
  fi
  local mod
  mod="$(prepare_kubernetes_module)"
  log "building ${name} ${KUBERNETES_VERSION} (first run only; kube-apiserver takes about 5 minutes)"
  local v="${KUBERNETES_VERSION#v}" major minor
  major="${v%%.*}"
  minor="${v#*.}" && minor="${minor%%.*}"
  local ldflags="-s -w"
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=${KUBERNETES_VERSION} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
    ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
  done
  (
    cd "${mod}"
    # Module zips are read-only; kubernetes main packages build with the standard toolchain.
    CGO_ENABLED=0 go build -mod=mod -trimpath -tags providerless -ldflags "${ldflags}" \
      -o "${dest}/${name}.tmp" "k8s.io/kubernetes/cmd/${name}"
  )
  mv "${dest}/${name}.tmp" "${dest}/${name}"
  [[ "$(reported_version "${dest}/${name}")" == "${want}" ]] || { log "${name} reports '$(reported_version "${dest}/${name}")', want '${want}'"; exit 1; }
}

components=("$@")
[[ ${#components[@]} -gt 0 ]] || components=(etcd kube-apiserver)
for c in "${components[@]}"; do
  case "${c}" in
    etcd) build_etcd ;;
    kube-apiserver | kube-controller-manager | kube-scheduler) build_kubernetes "${c}" ;;
    kwok | kwokctl) build_kwok "${c}" ;;
    *) log "unknown component '${c}'"; exit 2 ;;
  esac
done
echo "${dest}"
