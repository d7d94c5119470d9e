# Sourced by the dev-stack tests (test_dev_stack.sh, test_dev_stack_pg.sh):
# what both need to run scripts/keymeld-dev in a throwaway directory on free
# TCP ports of 127.0.0.1. Sets SRC, BIN, DEV, KM, WORK and the
# KEYMELD_DEV_* environment (dev_stack_env; KEYMELD_DEV_PG_BINDIR is
# left to the caller: where the PostgreSQL binaries are); the caller sets its
# trap.
#
# SAFETY: KEYMELD_DEV_TRANSPORT=tcp, everything on 127.0.0.1; no VSock
# socket is ever connected.
# shellcheck shell=bash

SRC=${KEYMELD_SOURCE_DIR:?run through ctest}
BIN=${KEYMELD_BIN_DIR:?run through ctest}
DEV=$SRC/scripts/keymeld-dev
# shellcheck disable=SC2034 # KM, GW and GW2 are for the sourcing scripts
KM=$BIN/keymeld
WORK=$(mktemp -d /tmp/keymeld-e2e.XXXXXX)

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== [${SECONDS}s] $*"; }

# A run of `count` consecutive TCP ports nobody listens on, from base up.
free_ports() {
    local base=$1 count=$2 p listening
    listening=$(ss -Htln | awk '{print $4}' | sed 's/.*://')
    for ((; base < 60000; base += count + 1)); do
        for ((p = base; p < base + count; p++)); do
            grep -qx "$p" <<< "$listening" && continue 2
        done
        echo "$base"; return
    done
    fail "no free ports"
}

# Gone or a zombie (init reaps the stack's processes, sometimes late).
running() { local st; st=$(cat "/proc/$1/stat" 2> /dev/null) && [[ ${st##*) } != Z* ]]; }

# dev_stack_env sqlite|postgres: exports the stack's settings (the caller's
# KEYMELD_DEV_* do not leak in). PostgreSQL runs a second gateway on
# GATEWAY_PORT + 1 (GW2), so two consecutive gateway ports are reserved.
dev_stack_env() {
    local gateways=1
    [[ $1 == postgres ]] && gateways=2
    unset KEYMELD_DEV_PG_PORT KEYMELD_DEV_ENCLAVES
    unset KEYMELD_DEV_ATTESTATION KEYMELD_DEV_SEALER
    export KEYMELD_DEV_DB=$1
    export KEYMELD_DEV_TRANSPORT=tcp KEYMELD_DEV_DIR=$WORK KEYMELD_DEV_PROXY_DIR=$WORK/proxies
    export KEYMELD_BIN_DIR=$BIN KEYMELD_DEV_TIMEOUT=60
    # Random-ish bases so parallel runs on one machine rarely collide.
    KEYMELD_DEV_ENCLAVE_PORT=$(free_ports $((21000 + RANDOM % 4000)) 3)
    KEYMELD_DEV_PROXY_PORT=$(free_ports $((KEYMELD_DEV_ENCLAVE_PORT + 4)) 3)
    KEYMELD_DEV_GATEWAY_PORT=$(free_ports $((KEYMELD_DEV_PROXY_PORT + 4)) "$gateways")
    export KEYMELD_DEV_ENCLAVE_PORT KEYMELD_DEV_PROXY_PORT KEYMELD_DEV_GATEWAY_PORT
    # shellcheck disable=SC2034
    GW=http://127.0.0.1:$KEYMELD_DEV_GATEWAY_PORT
    # shellcheck disable=SC2034
    GW2=http://127.0.0.1:$((KEYMELD_DEV_GATEWAY_PORT + 1))
}

# check_party_demo FILE: the output of scripts/keymeld-dev demo shows every
# party on its own machine: A, B and C made their keys, the wrong invitation
# was refused, both joined, all three agreed on the aggregate key, both
# approved, the signature came back, and the parties' directory is gone.
check_party_demo() {
    local out=$1 dir
    grep -q "^Every party on its own machine: A (the coordinator), B and C" "$out" ||
        fail "the demo did not run every party on its own machine"
    grep -Eq "^      A: a.key \(mode 600\), public key 0[23][0-9a-f]{64}$" "$out" || fail "A made no key"
    grep -Eq "^      B: b.key \(mode 600\), public key 0[23][0-9a-f]{64}$" "$out" || fail "B made no key"
    grep -Eq "^      C: c.key \(mode 600\), public key 0[23][0-9a-f]{64}$" "$out" || fail "C made no key"
    [[ $(grep -c "^      A: invitation for participant [12] written to invites/invite-[12].json" "$out") == 2 ]] ||
        fail "A did not write two invitations"
    grep -q "^      C: keymeld keygen join: this invitation is not for this key" "$out" ||
        fail "the wrong invitation was not refused clearly"
    grep -q "^      refused, and no session saved" "$out" || fail "no refusal line"
    for p in B C; do
        grep -q "^      $p: joined keygen" "$out" || fail "$p did not join"
        grep -Eq "^      $p: aggregate key [0-9a-f]{66} \(checked against the 3 participants' public keys\)" "$out" ||
            fail "$p did not check the aggregate key"
    done
    grep -q "^      A: keygen .* completed" "$out" || fail "A's keygen did not complete"
    grep -Eq "^      A, B and C agree: [0-9a-f]{66}$" "$out" || fail "the parties do not agree on the aggregate key"
    grep -q "each holds its owner's private key only" "$out" || fail "no session file check"
    grep -q "^      B: signing .*: awaiting_approvals" "$out" || fail "the signing did not wait for approvals"
    for p in B C; do
        grep -q "^      $p: approved signing .* (1 items) as " "$out" || fail "$p did not approve"
    done
    grep -Eq "^      A: signature [0-9a-f]{128}$" "$out" || fail "A got no signature"
    grep -q "^      C: signing .*: completed" "$out" || fail "C does not see the signing completed"
    for p in B C; do
        grep -Eq "^      $p: the signature verifies under [0-9a-f]{64} \(BIP-340\)$" "$out" ||
            fail "$p did not verify the signature with its own session file"
    done
    grep -q "^Every party on its own machine: complete.$" "$out" || fail "the party demo did not complete"
    dir=$(sed -n 's/^      each in its own directory of \(.*\) (removed at the end);$/\1/p' "$out")
    [[ -n $dir && ! -e $dir ]] || fail "the parties' directory '$dir' was left behind"
}

# Stops the stack and, after a failure, prints the tail of every log.
# Install with dev_stack_traps.
dev_stack_cleanup() {
    local rc=$? f
    "$DEV" stop > /dev/null 2>&1 || true
    if [[ $rc -ne 0 ]]; then
        for f in "$WORK"/logs/*.log; do
            [[ -f $f ]] && { echo "--- $f (last 20 lines)"; tail -n 20 "$f"; }
        done
    fi
    rm -rf "$WORK"
    exit $rc
}

# The EXIT trap, also reached on Ctrl-C, SIGTERM and SIGHUP (bash does not
# run it when a signal ends the script): the stack's processes are nohup'd
# and would outlive the test.
dev_stack_traps() {
    trap dev_stack_cleanup EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
