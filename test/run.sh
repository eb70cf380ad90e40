#!/usr/bin/env bash
# The one test command (npm test): static checks, then every unit and integration test against
# a real kube-apiserver + etcd + MinIO, ending with one plain totals line.
set -uo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

step "typecheck"; tsc --noEmit || exit 1
step "lint"; eslint . || exit 1
step "format"; prettier --check . >/dev/null || { prettier --check . ; exit 1; }
# build the servers up front so a cold build shows its progress and is not charged to a test hook
step "test servers"; bash test/env/build-servers.sh >/dev/null || exit 1

step "tests"
mkdir -p .testenv
results=.testenv/vitest-results.json
rm -f "$results"
vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@"
status=$?
if [ -f "$results" ]; then
  node -e '
    const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
    // a file that fails to load or a failed global setup fails no single test: count it anyway
    const failed = r.numFailedTests || (r.success ? 0 : Math.max(1, r.numFailedTestSuites));
    console.log(`${r.numPassedTests} passed, ${failed} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
  ' "$results"
else
  echo "0 passed, 1 failed"
fi
exit $status
