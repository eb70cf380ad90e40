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

CACHE=${CRD_BACKUP_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crd-backup/servers}
PROGRESS_EVERY=${PROGRESS_EVERY:-20}

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
log() { echo "test/env: $*" >&2; }

# Go is needed only for a build: a machine with both binaries cached runs without it
need_go() {
  command -v go >/dev/null 2>&1 && return 0
  [ -x /usr/local/go/bin/go ] && PATH=/usr/local/go/bin:$PATH && return 0
  log "Go is not installed; install Go >= 1.26 (https://go.dev/dl) to build Velero for the import tests"
  return 1
}

progress() {
  local work=$1 label=$2 start=$SECONDS
  while sleep "$PROGRESS_EVERY"; do
    local dl built
    dl=$(grep -c '^go: downloading' "$work/go.log" 2>/dev/null || true)
    built=$(grep -vc '^go: ' "$work/go.log" 2>/dev/null || true)
    log "  $label: $((SECONDS - start))s, ${dl:-0} modules downloaded, ${built:-0} packages compiled"
  done
}

# build NAME KEY PACKAGE PREPARE_FN [LDFLAGS], as in build-servers.sh
build() {
  local name=$1 key=$2 package=$3 prepare=$4 ldflags=${5:-}
  local out="$CACHE/$name-$key/$name"
  [ -x "$out" ] && return 0
  need_go
  log "building $name $key (first run only, several minutes; cached in $CACHE)"
  local work start=$SECONDS ticker
  work=$(mktemp -d)
  progress "$work" "$name" &
  ticker=$!
  # shellcheck disable=SC2064
  trap "kill $ticker 2>/dev/null; rm -rf '$work'" RETURN
  if ! ( cd "$work" && $prepare "${key%%+*}" && go build -v -trimpath -ldflags="-s $ldflags" -o "$work/$name" "$package" ) \
    >>"$work/go.log" 2>&1; then
    log "building $name failed; go's last lines:"
    tail -n 20 "$work/go.log" >&2
    return 1
  fi
  mkdir -p "$(dirname "$out")"
  mv "$work/$name" "$out.tmp" && mv "$out.tmp" "$out"   # atomic: a killed build leaves no half binary
  log "built $name $key in $((SECONDS - start))s"
}

goget() { go get "$@" 2>&1; }

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
