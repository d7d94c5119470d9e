# checks.sh - the counting helpers of the shell tests (tests/deploy,
# shellcheck shell=bash
# tests/install; sourced by their lib.sh, not run).
#
# Provides SRC (the repository) and BUILD (the build directory) from
# CTest's KEYMELD_* environment, TMP (a directory removed on exit), and
# ok/bad/expect_eq/expect_contains that count results; need TOOL HINT
# fails (never skips) when a tool from scripts/install-deps is missing;
# finish prints the closing "N passed, N failed" line and sets the exit
# status.
set -euo pipefail

SRC=${KEYMELD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck disable=SC2034 # used by the scripts that source this file
BUILD=${KEYMELD_TEST_BUILD_DIR:-$SRC/build}
TMP=$(mktemp -d /tmp/keymeld-check.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

PASSED=0
FAILED=0

ok() {
    PASSED=$((PASSED + 1))
    echo "ok: $*"
}
bad() {
    FAILED=$((FAILED + 1))
    echo "FAIL: $*"
}

# expect_eq WHAT WANT GOT
expect_eq() {
    if [[ "$2" == "$3" ]]; then ok "$1"; else bad "$1: want '$2', got '$3'"; fi
}

# expect_contains WHAT NEEDLE HAYSTACK
expect_contains() {
    if [[ "$3" == *"$2"* ]]; then ok "$1"; else bad "$1: '$2' not in: $3"; fi
}

# need TOOL HINT
need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "FAIL: $1 is not installed ($2): run scripts/install-deps"
        exit 1
    fi
}

finish() {
    echo "$PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
}
