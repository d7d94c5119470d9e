#!/usr/bin/env bash
# js_client.sh unit|stack - CTest driver of the JavaScript client (clients/js).
#
#   unit   node --test test/unit.test.js (no stack): the docs/CRYPTO.md
#          "Client formulas" vectors, attestation verification on the real
#          Nitro documents and on synthetic chains, the DER / X.509 parser,
#          signPsbt offline, and the browser build (an esbuild bundle, run in
#          a node:vm realm with only a page's globals).
#   stack  starts scripts/keymeld-dev in a throwaway directory on free TCP
#          ports (tests/e2e/dev_stack_common.sh), then runs
#          node --test test/integration.test.js, the PSBT round trip
#          (test/psbt_roundtrip.test.js: the JS client, and the C CLI with a
#          BIP-86 group `keymeld keygen` makes here) and the README example
#          (examples/readme.mjs) against its gateway, and stops the stack.
#
# The pinned dependencies (clients/js/package-lock.json, esbuild among the
# devDependencies) are installed with `npm ci` into clients/js/node_modules
# when missing or stale (one install at a time). Without node, npm or the npm registry the test is skipped (77),
# except under CI=true, where that is a failure.
#
# SAFETY: KEYMELD_DEV_TRANSPORT=tcp, everything on 127.0.0.1; no VSock
# socket is ever connected.
set -uo pipefail

mode=${1:?usage: js_client.sh unit|stack}
SRC=${KEYMELD_SOURCE_DIR:?run through ctest}
PKG=$SRC/clients/js

unavailable() {
    if [[ "${CI:-}" == "true" ]]; then
        echo "FAIL: $* (CI=true requires the JavaScript client tests)" >&2
        exit 1
    fi
    echo "SKIP: $*; JavaScript client not tested" >&2
    exit 77
}

command -v node > /dev/null 2>&1 || unavailable "node not found (scripts/install-deps installs nodejs)"
command -v npm > /dev/null 2>&1 || unavailable "npm not found (scripts/install-deps installs npm)"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
    unavailable "node $(node --version) is older than 20.19 (@noble/curves 2 needs it)"

# npm ci when node_modules does not match the lock file (npm's own record
# of the installed tree, node_modules/.package-lock.json, is compared).
# Optional packages built for another OS, CPU or C library (esbuild's
# binaries: one per platform in the lock, only this machine's installed)
# are left out of the comparison.
lock_matches() {
    node - "$PKG" << 'EOF'
const pkg = process.argv[2];
const libc = process.platform !== 'linux' ? undefined
    : process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
const fits = (list, v) => !list || v === undefined || list.includes(v) ||
    (list.every((x) => x.startsWith('!')) && !list.includes(`!${v}`));
const forHere = (p) => !p.optional || (fits(p.os, process.platform) && fits(p.cpu, process.arch) && fits(p.libc, libc));
const list = (packages, keep) => JSON.stringify(Object.keys(packages).filter((k) => k !== '' && keep(packages[k]))
    .sort().map((k) => [k, packages[k].version]));
let installed;
try { installed = require(`${pkg}/node_modules/.package-lock.json`).packages; } catch { process.exit(1); }
const want = list(require(`${pkg}/package-lock.json`).packages, forHere);
process.exit(want === list(installed, () => true) ? 0 : 1);
EOF
}
(
    exec 9> "${TMPDIR:-/tmp}/keymeld-npm-ci-js.lock"
    flock 9
    if ! lock_matches; then
        echo "installing clients/js dependencies with npm ci"
        timeout 300 npm ci --prefix "$PKG" --no-audit --no-fund --loglevel=error \
            --fetch-retries=1 --fetch-timeout=60000 || exit 3
    fi
) || unavailable "npm ci failed (is the npm registry reachable?)"

cd "$PKG" || exit 1
case $mode in
    unit) exec node --test test/unit.test.js ;;
    stack) ;;
    *) echo "usage: js_client.sh unit|stack" >&2; exit 2 ;;
esac

# shellcheck source=tests/e2e/dev_stack_common.sh
. "$SRC/tests/e2e/dev_stack_common.sh"
dev_stack_env sqlite
dev_stack_traps

step "start the stack (TCP, $WORK)"
"$DEV" start > "$WORK/start.out" || { cat "$WORK/start.out"; fail "keymeld-dev start failed"; }
grep -q "Transport: TCP" "$WORK/start.out" || fail "the stack is not on TCP"

export KEYMELD_GATEWAY=$GW
step "node --test test/integration.test.js against $GW"
node --test test/integration.test.js || fail "integration tests failed"

# The CLI half of the round trip signs with a group of the C CLI: its
# session file and the binary are handed to the node test.
step "keymeld keygen --tweak bip86 (the CLI's group for the PSBT round trip)"
"$KM" keygen --out "$WORK/cli-group.json" --participants 3 --tweak bip86 --gateway "$GW" \
    --trust-root "$WORK/dev-ca/root.pem" --pcrs "$WORK/pcrs.json" > "$WORK/keygen.out" ||
    { cat "$WORK/keygen.out"; fail "keymeld keygen failed"; }
step "node --test test/psbt_roundtrip.test.js (JS client and keymeld psbt sign)"
KEYMELD_CLI=$KM KEYMELD_CLI_SESSION=$WORK/cli-group.json node --test test/psbt_roundtrip.test.js ||
    fail "PSBT round trip failed"

step "README example (examples/readme.mjs)"
node examples/readme.mjs | tee "$WORK/readme.out" || fail "the README example failed"
grep -q "^signature 0 verifies" "$WORK/readme.out" || fail "the README example printed no verified signature"
step "done"
