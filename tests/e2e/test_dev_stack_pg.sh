#!/usr/bin/env bash
# e2e.dev_stack.pg: the development stack on PostgreSQL as a user runs it
# (KEYMELD_DEV_DB=postgres scripts/keymeld-dev start): a throwaway cluster
# in DEV_DIR/data/pg and two gateways on it. status shows the database and
# both gateways, each seeing every enclave attested; make demo's path (every
# party on its own machine included) and a demo against each gateway; a
# keygen made through one gateway signs through the other (one database);
# stop leaves no process behind (the cluster's included), and a new start
# finds the keygen again (the cluster's data is kept).
#
# SAFETY: KEYMELD_DEV_TRANSPORT=tcp, everything on 127.0.0.1; no VSock
# socket is ever connected. The cluster is the script's own (no system
# service), on a free port.
set -euo pipefail

# shellcheck source=tests/e2e/dev_stack_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/dev_stack_common.sh"
dev_stack_env postgres
dev_stack_traps
# As root the cluster runs as the postgres user, which must reach
# WORK/data/pg: mktemp made WORK 0700.
if ((EUID == 0)); then chmod 711 "$WORK"; fi

PG_DATA=$WORK/data/pg/data

# The postmaster's pid while the cluster runs (postmaster.pid, line 1).
postmaster() { head -n 1 "$PG_DATA/postmaster.pid" 2> /dev/null || true; }

# Processes whose parent is pid (the cluster's backends and workers). Bash
# builtins only: a fork per process of the machine would be slow.
children_of() {
    local p st ppid
    for p in /proc/[0-9]*; do
        read -r st 2> /dev/null < "$p/stat" || continue
        st=${st##*) } # the state and the parent follow "(comm) "
        read -r _ ppid _ <<< "$st"
        [[ $ppid == "$1" ]] && echo "${p#/proc/}"
    done
    return 0
}

# Processes whose command line names dir (a leftover of the stack).
processes_in() {
    local p args
    for p in /proc/[0-9]*; do
        mapfile -d '' args 2> /dev/null < "$p/cmdline" || continue
        [[ "${args[*]}" == *"$1"* ]] && running "${p#/proc/}" && echo "${p#/proc/}"
    done
    return 0
}

# Every process of the stack: pid files, the postmaster and its children.
stack_pids() {
    local pm
    cat "$WORK"/run/*.pid "$WORK"/proxies/*.pid 2> /dev/null || true
    pm=$(postmaster)
    if [[ -n $pm ]]; then
        echo "$pm"
        children_of "$pm"
    fi
}

# stop, then: nothing of the stack runs, no pid file is left, status fails.
stop_and_check() {
    local started pid
    started=$(stack_pids)
    [[ -n $(postmaster) ]] || fail "no postmaster.pid while the stack runs"
    "$DEV" stop | tee "$WORK/stop.out"
    grep -q "postgres (pid .*): stopped" "$WORK/stop.out" || fail "stop did not stop the cluster"
    for pid in $started; do
        running "$pid" && fail "process $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null)) still running after stop"
    done
    pid=$(processes_in "$WORK")
    [[ -z $pid ]] || fail "processes still run from $WORK after stop: $pid"
    [[ -z $(cat "$WORK"/run/*.pid "$WORK"/proxies/*.pid 2> /dev/null) ]] || fail "pid files left behind"
    [[ ! -e $PG_DATA/postmaster.pid ]] || fail "postmaster.pid left behind"
    if "$DEV" status > /dev/null; then fail "status succeeded with the stack stopped"; fi
    return 0
}

step "start (PostgreSQL)"
"$DEV" start | tee "$WORK/start.out"
grep -q "Transport: TCP" "$WORK/start.out" || fail "start did not report the TCP transport"
grep -q "Database: PostgreSQL" "$WORK/start.out" || fail "start did not report the PostgreSQL database"
grep -q "gateway-2: $GW2" "$WORK/start.out" || fail "start did not start the second gateway"
[[ -n $(postmaster) ]] || fail "no cluster in $WORK/data/pg"
[[ ! -e $WORK/data/keymeld-dev.db ]] || fail "a SQLite database was made on the PostgreSQL stack"
"$DEV" start > "$WORK/start2.out"
grep -q "postgres: already running" "$WORK/start2.out" || fail "a second start is not idempotent (cluster)"
grep -q "gateway-2: already running" "$WORK/start2.out" || fail "a second start is not idempotent (gateway-2)"
if KEYMELD_DEV_DB=sqlite "$DEV" start > /dev/null 2> "$WORK/mode.err"; then
    fail "start on SQLite was accepted while the PostgreSQL stack runs"
fi
grep -q "uses postgres" "$WORK/mode.err" || fail "the refusal does not name the running database"
set -a
# shellcheck disable=SC1091
. "$WORK/run/client.env"
set +a

step "status"
"$DEV" status | tee "$WORK/status.out" || fail "status failed with the whole stack up"
grep -q "^Database: PostgreSQL postgresql://keymeld@127.0.0.1:[0-9]*/keymeld: running (pid $(postmaster)), accepting connections" \
    "$WORK/status.out" || fail "status does not show the running database"
grep -q "^  gateway: running (pid [0-9]*) $GW, ready" "$WORK/status.out" || fail "status: gateway not ready"
grep -q "^  gateway-2: running (pid [0-9]*) $GW2, ready" "$WORK/status.out" || fail "status: gateway-2 not ready"
for g in gateway gateway-2; do
    grep -q "^Enclave health as $g sees it" "$WORK/status.out" || fail "status: no enclave health from $g"
done
for i in 0 1 2; do
    [[ $(grep -c "enclave $i .*healthy.*attestation verified (development" "$WORK/status.out") == 2 ]] ||
        fail "status: enclave $i not healthy and attested as both gateways see it"
done

step "demo through each gateway"
"$DEV" demo --participants 3 --messages 1 | tee "$WORK/devdemo.out"
grep -q "attested (development)" "$WORK/devdemo.out" || fail "the demo did not print the attestation"
check_party_demo "$WORK/devdemo.out"
for gw in "$GW" "$GW2"; do
    "$KM" demo --gateway "$gw" --participants 3 --messages 2 --json > "$WORK/demo.json"
    [[ $(jq -r '.ok' "$WORK/demo.json") == true ]] || fail "demo via $gw not ok"
    [[ $(jq -r '.signatures_verified' "$WORK/demo.json") == 2 ]] || fail "demo via $gw signatures"
done

step "keygen through gateway, signings through both"
"$KM" keygen --gateway "$GW" --participants 3 --out "$WORK/session.json"
msg=$(printf 'ab%.0s' {1..32})
for gw in "$GW2" "$GW"; do
    "$KM" sign --gateway "$gw" --session "$WORK/session.json" --message "$msg" --json > "$WORK/sign.json"
    [[ $(jq -r '.signatures | length' "$WORK/sign.json") == 1 ]] || fail "sign via $gw: no signature"
done
# The signing made through gateway-2 as gateway sees it.
"$KM" sign --gateway "$GW2" --session "$WORK/session.json" --message "$msg" --json > "$WORK/sign.json"
sid=$(jq -r '.signing_session_id' "$WORK/sign.json")
"$KM" status --gateway "$GW" --session "$WORK/session.json" --signing "$sid" | grep -q completed ||
    fail "gateway does not show the signing made through gateway-2 completed"

step "stop"
stop_and_check

step "start again: the cluster's data is kept"
"$DEV" start > "$WORK/start3.out"
grep -q "postgres: new cluster" "$WORK/start3.out" && fail "start made a new cluster instead of keeping the data"
"$KM" sign --gateway "$GW2" --session "$WORK/session.json" --message "$msg" --json > "$WORK/sign.json"
[[ $(jq -r '.signatures | length' "$WORK/sign.json") == 1 ]] || fail "the keygen does not sign after a restart"

step "stop"
stop_and_check
echo "PASS"
