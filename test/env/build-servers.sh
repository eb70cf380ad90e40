#!/usr/bin/env bash
# Builds the real programs the integration tests run against (kube-apiserver, etcd, MinIO, and
# the age, helm and promtool tools) from the Go module proxy into a cache outside the repo, keyed
# by version, so that only the first run pays for the build. Progress goes to stderr as it goes
# (a line per program, and a summary of go's download/compile work at least every 20 s); the
# binaries' paths go to stdout as NAME=PATH lines.
#
#   build-servers.sh            everything (npm test builds it all up front)
#   build-servers.sh servers    kube-apiserver, etcd and MinIO only (what the demo starts)
#   build-servers.sh tools      age, helm and promtool only (what some tests run)
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.36.4}  # newest 1.36 patch the checksum database knows (v1.36.5 is not in it)
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
# MinIO publishes no semver tags (RELEASE.* dates), so the proxy only serves pseudo-versions;
# this is the final commit of the (now archived) community repository.
MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
AGE_VERSION=${AGE_VERSION:-v1.3.2}
HELM_VERSION=${HELM_VERSION:-v4.3.2}
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0}  # promtool; the module's v0.x tags track Prometheus 3.x

GO_NEEDED_FOR="kube-apiserver, etcd and MinIO for the integration tests"
# shellcheck source=go-build.sh
. "$(dirname "${BASH_SOURCE[0]}")/go-build.sh"

# k8s.io/kubernetes replaces every k8s.io staging module with a path inside its own repo, which
# a dependent module cannot use: a wrapper module points each one at the published v0.x.y.
prepare_kube() {
  local version=$1 staging="v0.${1#v1.}"
  go mod init crd-backup-testenv/kube-apiserver >/dev/null 2>&1
  local modfile; modfile=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  sed -n '/^replace (/,/^)/p' "$modfile" | awk '$2 == "=>" {print $1}' | while read -r mod; do
    go mod edit -replace="$mod=$mod@$staging"
  done
  goget "k8s.io/kubernetes/cmd/kube-apiserver@$version"
}

# The version a release binary reports on /version (hack/lib/version.sh sets the same variables).
kube_ldflags() {
  local v=$1 minor; minor=${1#v1.}; minor=${minor%%.*}
  local flags="" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

# etcd's main package lives in a module the proxy does not serve; its server module does, but
# its replace directives point at sibling folders. A wrapper main calls etcdmain and pins the
# sibling modules to the same release.
prepare_etcd() {
  local version=$1
  go mod init crd-backup-testenv/etcd >/dev/null 2>&1
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > main.go
  goget "go.etcd.io/etcd/server/v3@$version" go.etcd.io/etcd/api/v3@"$version" \
    go.etcd.io/etcd/client/pkg/v3@"$version" go.etcd.io/etcd/client/v3@"$version" go.etcd.io/etcd/pkg/v3@"$version"
}

prepare_minio() { go mod init crd-backup-testenv/minio >/dev/null 2>&1; goget "github.com/minio/minio@$1"; }
prepare_age() { go mod init crd-backup-testenv/age >/dev/null 2>&1; goget "filippo.io/age/cmd/age@$1"; }
prepare_helm() { go mod init crd-backup-testenv/helm >/dev/null 2>&1; goget "helm.sh/helm/v4/cmd/helm@$1"; }
prepare_promtool() {
  go mod init crd-backup-testenv/promtool >/dev/null 2>&1
  goget "github.com/prometheus/prometheus/cmd/promtool@$1"
}

WHAT=${1:-all}
case $WHAT in all | servers | tools) ;; *) echo "usage: build-servers.sh [all|servers|tools]" >&2; exit 2 ;; esac

if [ "$WHAT" != tools ]; then
  build etcd "$ETCD_VERSION" . prepare_etcd
  build minio "$MINIO_VERSION" github.com/minio/minio prepare_minio
  build kube-apiserver "$KUBE_VERSION+stamped" k8s.io/kubernetes/cmd/kube-apiserver prepare_kube "$(kube_ldflags "$KUBE_VERSION")"
fi
if [ "$WHAT" != servers ]; then
  build age "$AGE_VERSION" filippo.io/age/cmd/age prepare_age
  build helm "$HELM_VERSION" helm.sh/helm/v4/cmd/helm prepare_helm "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
  build promtool "$PROMETHEUS_VERSION" github.com/prometheus/prometheus/cmd/promtool prepare_promtool
fi

if [ "$WHAT" != tools ]; then
  echo "KUBE_APISERVER=$CACHE/kube-apiserver-$KUBE_VERSION+stamped/kube-apiserver"
  echo "ETCD=$CACHE/etcd-$ETCD_VERSION/etcd"
  echo "MINIO=$CACHE/minio-$MINIO_VERSION/minio"
fi
if [ "$WHAT" != servers ]; then
  echo "AGE=$CACHE/age-$AGE_VERSION/age"
  echo "HELM=$CACHE/helm-$HELM_VERSION/helm"
  echo "PROMTOOL=$CACHE/promtool-$PROMETHEUS_VERSION/promtool"
fi
