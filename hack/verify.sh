#!/usr/bin/env bash
# Fails when a generated file is stale, Go code is not gofmt'ed, or a go.mod is untidy.
# Nothing in the work tree is changed: generation runs in a temporary copy of the repository.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
failed=0

# 1. go.mod files are tidy (generation cannot load packages otherwise).
for mod in go.mod hack/tools/go.mod; do
  if ! (cd "$(dirname "${mod}")" && go mod tidy -diff >/dev/null); then
    echo "verify: $(dirname "${mod}")/go.mod is untidy; run 'go mod tidy' there:" >&2
    (cd "$(dirname "${mod}")" && go mod tidy -diff >&2) || true
    failed=1
  fi
done

# 2. gofmt.
unformatted="$(gofmt -s -l $(git ls-files --cached --others --exclude-standard '*.go'))"
if [[ -n "${unformatted}" ]]; then
  echo "verify: not gofmt'ed (run 'make fmt'):" >&2
  echo "${unformatted}" >&2
  failed=1
fi

# 3. Generated files: regenerate in a scratch copy of the tracked and untracked sources and compare.
scratch="$(mktemp -d)"
trap 'rm -rf "${scratch}"' EXIT
git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents {} "${scratch}/"
mkdir -p "${scratch}/bin" && [[ ! -x bin/controller-gen ]] || cp bin/controller-gen "${scratch}/bin/"
# Generated outputs are removed first, so that one no longer generated counts as stale too.
rm -f "${scratch}"/api/*/zz_generated.deepcopy.go "${scratch}"/config/crd/bases/*.yaml "${scratch}"/config/rbac/role.yaml "${scratch}"/config/agent/role.yaml "${scratch}"/config/quorum-holder/role.yaml "${scratch}"/charts/wolfpack/templates/crds/*.yaml
make -C "${scratch}" --no-print-directory generate manifests >/dev/null
for path in api config/crd/bases config/rbac/role.yaml config/agent/role.yaml config/quorum-holder/role.yaml charts/wolfpack/templates/crds; do
  if ! diff -ruN "${path}" "${scratch}/${path}" >/dev/null; then
    echo "verify: ${path} is stale; run 'make generate manifests' and commit the result:" >&2
    diff -ruN "${path}" "${scratch}/${path}" | head -40 >&2 || true
    failed=1
  fi
done

if [[ "${failed}" -ne 0 ]]; then
  exit 1
fi
echo "verify: generated files, formatting and go.mod files are up to date"
