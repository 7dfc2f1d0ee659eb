#!/usr/bin/env bash
# Lists the packages of one step of make test, one a line:
#
#   hack/test-packages.sh unit|integration|deploy|e2e
#
# deploy is test/deploy; e2e is test/e2e and the local cluster's packages (internal/localcluster),
# whose tests need its binaries; integration is every other package whose tests import
# internal/test/envtest, which starts etcd and kube-apiserver; unit is the rest. A new package so
# lands in its step by what its tests import, with no list to edit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

case "${1:-}" in
unit | integration | deploy | e2e) ;;
*)
  echo "usage: $0 unit|integration|deploy|e2e" >&2
  exit 2
  ;;
esac

module=$(go list -m)
go list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... |
  awk -v want="$1" -v module="$module" '
  function under(pkg, dir) { return pkg == module "/" dir || index(pkg, module "/" dir "/") == 1 }
  {
    step = "unit"
    if (under($1, "test/deploy")) {
      step = "deploy"
    } else if (under($1, "test/e2e") || under($1, "internal/localcluster")) {
      step = "e2e"
    } else {
      for (i = 2; i <= NF; i++) {
        if ($i == module "/internal/test/envtest") {
          step = "integration"
        }
      }
    }
    if (step == want) {
      print $1
    }
  }'
