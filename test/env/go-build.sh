#!/usr/bin/env bash
# Sourced by build-servers.sh and build-velero.sh: builds a Go program from the module proxy into
# the cache outside the repo, keyed by version, with progress on stderr. Set GO_NEEDED_FOR (what
# the programs are for, for the message when Go is missing) before a build.

CACHE=${CRD_BACKUP_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crd-backup/servers}
PROGRESS_EVERY=${PROGRESS_EVERY:-20}

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
log() { echo "test/env: $*" >&2; }

# Go is needed only for a build: a machine with every binary cached runs without it
need_go() {
  command -v go >/dev/null 2>&1 && return 0
  [ -x /usr/local/go/bin/go ] && PATH=/usr/local/go/bin:$PATH && return 0
  log "Go is not installed; install Go >= 1.26 (https://go.dev/dl) to build ${GO_NEEDED_FOR:-the test programs}"
  return 1
}

# Prints one line about the build in $1 (go's own output, collected in $1/go.log) every
# PROGRESS_EVERY seconds until killed: how many modules were downloaded and packages compiled.
progress() {
  local work=$1 label=$2 start=$SECONDS
  while sleep "$PROGRESS_EVERY"; do
    local dl built
    dl=$(grep -c '^go: downloading' "$work/go.log" 2>/dev/null || true)
    built=$(grep -vc '^go: ' "$work/go.log" 2>/dev/null || true)
    log "  $label: $((SECONDS - start))s, ${dl:-0} modules downloaded, ${built:-0} packages compiled"
  done
}

# build NAME KEY PACKAGE PREPARE_FN [LDFLAGS]: KEY names the cache folder (the version, plus a
# recipe suffix when the way of building changes).
build() {
  local name=$1 key=$2 package=$3 prepare=$4 ldflags=${5:-}
  local out="$CACHE/$name-$key/$name"
  [ -x "$out" ] && return 0
  need_go
  log "building $name $key (first run only, a few minutes each; cached in $CACHE)"
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

# go get with go's "downloading" lines kept for the progress summary
goget() { go get "$@" 2>&1; }
