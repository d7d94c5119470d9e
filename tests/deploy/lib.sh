# lib.sh - shared by the tests/deploy/test_*.sh drivers (sourced, not run).
# shellcheck shell=bash
#
# The counting helpers, SRC, BUILD and TMP come from tests/support/checks.sh;
# this adds PYTHON3 (Debian's python3, which has python3-yaml and
# python3-kubernetes from scripts/install-deps).
# shellcheck source=../support/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/checks.sh"

if [[ -x /usr/bin/python3 ]]; then
    PYTHON3=${PYTHON3:-/usr/bin/python3}
else
    PYTHON3=${PYTHON3:-python3}
fi
