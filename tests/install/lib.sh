# lib.sh - shared by tests/install/test_*.sh (sourced, not run).
#
# Provides SRC (the repository), BUILD (the build directory) and VERSION
# (the project version), from CTest's KEYMELD_* environment; TMP (removed
# on exit); ok/bad/expect_* helpers that count results; need TOOL; finish
# prints the closing "N passed, N failed" line and sets the exit status.
set -euo pipefail

SRC=${KEYMELD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck disable=SC2034 # used by the scripts that source this file
BUILD=${KEYMELD_TEST_BUILD_DIR:-$SRC/build}
# shellcheck disable=SC2034
VERSION=${KEYMELD_VERSION:?run through ctest (KEYMELD_VERSION)}
TMP=$(mktemp -d /tmp/keymeld-install.XXXXXX)
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

# need TOOL HINT: fail (not skip) when a tool is missing.
need() {
    if ! command -v "$1" > /dev/null 2>&1; then
        echo "FAIL: $1 is not installed ($2)"
        exit 1
    fi
}

finish() {
    echo "$PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
}
