#!/usr/bin/env bash
# Builds the real Velero server and its AWS object-store plugin from the Go module proxy into
# the test servers' cache, keyed by version, so only the first run pays (several minutes on two
# cores). Only test/integration/velero-import.test.ts and bench/import.ts need them (they call
# this through test/support/velero.ts ensureVelero), so the other tests never wait for it.
# Progress goes to stderr; the binaries' paths go to stdout as NAME=PATH lines.
set -euo pipefail

VELERO_VERSION=${VELERO_VERSION:-v1.18.1}
# The plugin release whose go.mod requires exactly VELERO_VERSION (v1.14.2 requires v1.18.0).
VELERO_AWS_VERSION=${VELERO_AWS_VERSION:-v1.14.3}
# velero v1.18.1 requires k8s.io/cli-runtime v0.33.11, which the proxy does not serve, and a
# kube-aggregator of the same line: pin both to the newest served 0.33 patches.
CLI_RUNTIME_VERSION=${CLI_RUNTIME_VERSION:-v0.33.10}
KUBE_AGGREGATOR_VERSION=${KUBE_AGGREGATOR_VERSION:-v0.33.7}

GO_NEEDED_FOR="Velero for the import tests"
# shellcheck source=go-build.sh
. "$(dirname "${BASH_SOURCE[0]}")/go-build.sh"

# A wrapper module: velero's own replace directives (kopia is its fork, github.com/project-velero/kopia)
# apply only in velero's module, so they are copied; and the two k8s.io modules velero's go.mod
# names are pinned at versions the proxy has.
pin_k8s() {
  local modfile
  modfile=$(go mod download -json "github.com/vmware-tanzu/velero@$VELERO_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  sed -n 's/^replace \([^ ]*\) => \([^ ]*\) \([^ ]*\)$/\1=\2@\3/p' "$modfile" | while read -r rule; do
    go mod edit -replace="$rule"
  done
  go mod edit -replace="k8s.io/cli-runtime=k8s.io/cli-runtime@$CLI_RUNTIME_VERSION" \
    -replace="k8s.io/kube-aggregator=k8s.io/kube-aggregator@$KUBE_AGGREGATOR_VERSION"
}
prepare_velero() {
  go mod init crd-backup-testenv/velero >/dev/null 2>&1
  pin_k8s
  goget "github.com/vmware-tanzu/velero/cmd/velero@$1"
}
prepare_velero_aws() {
  go mod init crd-backup-testenv/velero-plugin-for-aws >/dev/null 2>&1
  pin_k8s
  goget "github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws@$1" "github.com/vmware-tanzu/velero@$VELERO_VERSION"
}

# The version velero prints and records in each backup's status.version (pkg/buildinfo).
velero_ldflags() {
  echo "-X github.com/vmware-tanzu/velero/pkg/buildinfo.Version=$1 -X github.com/vmware-tanzu/velero/pkg/buildinfo.GitTreeState=clean"
}

build velero "$VELERO_VERSION" github.com/vmware-tanzu/velero/cmd/velero prepare_velero "$(velero_ldflags "$VELERO_VERSION")"
build velero-plugin-for-aws "$VELERO_AWS_VERSION+velero-$VELERO_VERSION" \
  github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws prepare_velero_aws

echo "VELERO=$CACHE/velero-$VELERO_VERSION/velero"
echo "VELERO_PLUGIN_AWS=$CACHE/velero-plugin-for-aws-$VELERO_AWS_VERSION+velero-$VELERO_VERSION/velero-plugin-for-aws"
