# lib.sh - shared by tests/install/test_*.sh (sourced, not run).
# shellcheck shell=bash
#
# The counting helpers, SRC, BUILD and TMP come from tests/support/checks.sh;
# this adds VERSION (the project version, from CTest's environment).
# shellcheck source=../support/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/checks.sh"

# shellcheck disable=SC2034 # used by the scripts that source this file
VERSION=${KEYMELD_VERSION:?run through ctest (KEYMELD_VERSION)}
