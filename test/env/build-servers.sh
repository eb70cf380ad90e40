#!/usr/bin/env bash
# Builds the real servers the integration tests run against (kube-apiserver, etcd, MinIO)
# from the Go module proxy into a cache outside the repo, keyed by version, so that only
# the first run pays for the build. Prints the cache directory on stdout.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.36.4}  # newest 1.36 patch the checksum database knows (v1.36.5 is not in it)
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
# MinIO publishes no semver tags (RELEASE.* dates), so the proxy only serves pseudo-versions;
# this is the final commit of the (now archived) community repository.
MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}

CACHE=${CRD_BACKUP_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crd-backup/servers}

if ! command -v go >/dev/null 2>&1; then
  echo "test/env: Go is not installed; install Go >= 1.26 (https://go.dev/dl) to build kube-apiserver, etcd and MinIO for the integration tests" >&2
  exit 1
fi

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
log() { echo "test/env: $*" >&2; }

# build NAME VERSION BINARY PREPARE_FN PACKAGE
build() {
  local name=$1 version=$2 package=$3 prepare=$4
  local out="$CACHE/$name-$version/$name"
  [ -x "$out" ] && return 0
  log "building $name $version (first run only; cached in $CACHE)"
  local work; work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  ( cd "$work" && $prepare "$version" && go build -trimpath -ldflags=-s -o "$work/$name" "$package" ) >&2
  mkdir -p "$(dirname "$out")"
  mv "$work/$name" "$out.tmp" && mv "$out.tmp" "$out"   # atomic: a killed build leaves no half binary
  log "built $name $version"
}

# k8s.io/kubernetes replaces every k8s.io staging module with a path inside its own repo, which
# a dependent module cannot use: a wrapper module points each one at the published v0.x.y.
prepare_kube() {
  local version=$1 staging="v0.${1#v1.}"
  go mod init crd-backup-testenv/kube-apiserver >/dev/null 2>&1
  local modfile; modfile=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  sed -n '/^replace (/,/^)/p' "$modfile" | awk '$2 == "=>" {print $1}' | while read -r mod; do
    go mod edit -replace="$mod=$mod@$staging"
  done
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$version" >/dev/null
}

# etcd's main package lives in a module the proxy does not serve; its server module does, but
# its replace directives point at sibling folders. A wrapper main calls etcdmain and pins the
# sibling modules to the same release.
prepare_etcd() {
  local version=$1
  go mod init crd-backup-testenv/etcd >/dev/null 2>&1
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > main.go
  go get "go.etcd.io/etcd/server/v3@$version" go.etcd.io/etcd/api/v3@"$version" \
    go.etcd.io/etcd/client/pkg/v3@"$version" go.etcd.io/etcd/client/v3@"$version" go.etcd.io/etcd/pkg/v3@"$version" >/dev/null
}

prepare_minio() {
  go mod init crd-backup-testenv/minio >/dev/null 2>&1
  go get "github.com/minio/minio@$1" >/dev/null
}

build etcd "$ETCD_VERSION" . prepare_etcd
build minio "$MINIO_VERSION" github.com/minio/minio prepare_minio
build kube-apiserver "$KUBE_VERSION" k8s.io/kubernetes/cmd/kube-apiserver prepare_kube

echo "KUBE_APISERVER=$CACHE/kube-apiserver-$KUBE_VERSION/kube-apiserver"
echo "ETCD=$CACHE/etcd-$ETCD_VERSION/etcd"
echo "MINIO=$CACHE/minio-$MINIO_VERSION/minio"
