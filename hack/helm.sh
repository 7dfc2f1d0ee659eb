#!/usr/bin/env bash
# Helm for the chart in charts/wolfpack, built from the Go module proxy only, at a pinned version.
#
#   hack/helm.sh              builds bin/helm (cached) and prints its path on stdout
#   hack/helm.sh sync-crds    writes charts/wolfpack/templates/crds/ from config/crd/bases
#
# bin/helm is rebuilt only when it is missing or does not report HELM_VERSION, so a second run
# costs one exec. Helm is not a dependency of the project's go.mod: `go install pkg@version`
# builds it in a module of its own. The version variables are stamped as helm's Makefile does,
# so that `helm version` says v3.22.0 and `helm template` and `helm lint` assume the Kubernetes
# minor version helm was built against (1.37), not helm's fallback 1.20.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# helm v3.22.0 requires k8s.io/client-go v0.37.0: Kubernetes 1.37.
HELM_K8S_MAJOR=1
HELM_K8S_MINOR=37

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${root}/bin"

log() { echo "helm.sh: $*" >&2; }

reported_version() {
  [[ -x "${bin}/helm" ]] || return 0
  "${bin}/helm" version --template '{{.Version}}' 2>/dev/null || true
}

build() {
  if [[ "$(reported_version)" == "${HELM_VERSION}" ]]; then
    echo "${bin}/helm"
    return 0
  fi
  log "building helm ${HELM_VERSION} from helm.sh/helm/v3 (first run only; a few minutes on 2 cores)"
  local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  local pkg
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X ${pkg}.k8sVersionMajor=${HELM_K8S_MAJOR} -X ${pkg}.k8sVersionMinor=${HELM_K8S_MINOR}"
  done
  mkdir -p "${bin}"
  # Outside the project's module, so that its go.mod is neither read nor changed.
  (
    cd "${TMPDIR:-/tmp}"
    GOBIN="${bin}" GOFLAGS=-mod=mod CGO_ENABLED=0 \
      go install -trimpath -ldflags "${ldflags}" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
  )
  if [[ "$(reported_version)" != "${HELM_VERSION}" ]]; then
    log "bin/helm reports '$(reported_version)', want '${HELM_VERSION}'"
    exit 1
  fi
  echo "${bin}/helm"
}

# Each CRD of config/crd/bases becomes a template that renders it unchanged but for the chart's
# labels and, with crds.keep, the annotation that keeps it on `helm uninstall`; nothing renders
# with crds.enabled=false. test/deploy fails when the result no longer matches config/crd/bases.
sync_crds() {
  local out="${root}/charts/wolfpack/templates/crds"
  rm -rf "${out}" && mkdir -p "${out}"
  local f name
  for f in "${root}"/config/crd/bases/*.yaml; do
    name="$(basename "${f}")"
    if grep -q '{{' "${f}"; then
      log "${f} contains '{{', which helm would read as a template; escape it in hack/helm.sh"
      exit 1
    fi
    {
      echo '{{- if .Values.crds.enabled }}'
      echo "# Generated from config/crd/bases/${name} by hack/helm.sh sync-crds; do not edit."
      awk '
        /^---$/ && !seen { seen = 1; next }
        { print }
        /^metadata:$/ && !meta {
          meta = 1
          print "  labels:"
          print "    {{- include \"wolfpack.labels\" . | nindent 4 }}"
        }
        /^  annotations:$/ && meta && !ann {
          ann = 1
          print "    {{- if .Values.crds.keep }}"
          print "    helm.sh/resource-policy: keep"
          print "    {{- end }}"
        }
        END { if (!meta || !ann) { print "no metadata.annotations in " FILENAME > "/dev/stderr"; exit 1 } }
      ' "${f}"
      echo '{{- end }}'
    } >"${out}/${name}"
  done
  log "wrote $(ls "${out}" | wc -l) CRD templates into ${out#"${root}"/}"
}

case "${1:-build}" in
  build) build ;;
  sync-crds) sync_crds ;;
  *) log "usage: hack/helm.sh [build|sync-crds]"; exit 2 ;;
esac
