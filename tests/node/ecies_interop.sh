#!/usr/bin/env bash
# ecies_interop.sh - CTest driver of the eciesjs interop test.
#
#   ecies_interop.sh <path to ecies_helper>
#
# Installs the pinned eciesjs (tests/node/package-lock.json) into
# tests/node/node_modules with `npm ci` when it is missing or stale, then
# runs ecies_interop.js. Without node, npm or the npm registry the test is
# skipped (exit 77) with a message, except under CI=true, where that is a
# failure.
set -uo pipefail

helper=${1:?usage: ecies_interop.sh <ecies_helper>}
here=$(cd "$(dirname "$0")" && pwd -P)

unavailable() {
    if [[ "${CI:-}" == "true" ]]; then
        echo "FAIL: $* (CI=true requires the eciesjs interop test)" >&2
        exit 1
    fi
    echo "SKIP: $*; eciesjs interop not tested" >&2
    exit 77
}

command -v node >/dev/null 2>&1 || unavailable "node not found (scripts/install-deps installs nodejs)"
command -v npm >/dev/null 2>&1 || unavailable "npm not found (scripts/install-deps installs npm)"

want=$(node -p "require('$here/package-lock.json').packages['node_modules/eciesjs'].version")
have=$(node -p "try { require('$here/node_modules/eciesjs/package.json').version } catch (e) { '' }")
if [[ "$want" != "$have" ]]; then
    echo "installing eciesjs $want with npm ci --prefix $here"
    # One install at a time (release and sanitizer runs may overlap).
    exec 9>"${TMPDIR:-/tmp}/keymeld-npm-ci.lock"
    flock 9
    timeout 300 npm ci --prefix "$here" --no-audit --no-fund --loglevel=error \
        --fetch-retries=1 --fetch-timeout=60000 ||
        unavailable "npm ci failed (is the npm registry reachable?)"
fi

exec node "$here/ecies_interop.js" "$helper"
