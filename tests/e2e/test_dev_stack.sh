#!/usr/bin/env bash
# e2e.dev_stack: scripts/keymeld-dev start/status/stop and the keymeld CLI
# (make demo's path with every party on its own machine, demo with 2, 3 and
# 5 participants, keygen/sign/status, enclave ping)
# against a real stack; then one enclave stopped mid-demo, and one stopped
# before a demo: status and the demo must name it, and start must bring it
# back. Nothing may be left running.
#
# SAFETY: KEYMELD_DEV_TRANSPORT=tcp, everything on 127.0.0.1; no VSock
# socket is ever connected.
set -euo pipefail

# shellcheck source=tests/e2e/dev_stack_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/dev_stack_common.sh"
dev_stack_env sqlite
dev_stack_traps

pids() { cat "$WORK"/run/*.pid "$WORK"/proxies/*.pid 2> /dev/null || true; }

step "start"
"$DEV" start | tee "$WORK/start.out"
grep -q "Transport: TCP" "$WORK/start.out" || fail "start did not report the TCP transport"
"$DEV" start > "$WORK/start2.out"
grep -q "already running" "$WORK/start2.out" || fail "a second start is not idempotent"

grep -q "Attestation: development CA" "$WORK/start.out" || fail "start did not set up attestation"
# The client trusts this stack's development root and PCR policy.
set -a
# shellcheck disable=SC1091
. "$WORK/run/client.env"
set +a

step "status"
"$DEV" status | tee "$WORK/status.out"
for i in 0 1 2; do
    grep -q "enclave $i .*healthy.*attestation verified (development" "$WORK/status.out" ||
        fail "status: enclave $i not healthy and attested"
done

step "attest"
"$KM" attest 1 --gateway "$GW" | tee "$WORK/attest.out" || fail "keymeld attest 1 failed"
grep -q "development-enclave-1" "$WORK/attest.out" || fail "attest: no module id"

step "demo without trust settings is refused"
if env -u KEYMELD_TRUST_ROOT -u KEYMELD_PCR_POLICY "$KM" demo --gateway "$GW" \
    > "$WORK/untrusted.out" 2> "$WORK/untrusted.err"; then
    fail "the demo ran without a PCR policy"
fi
grep -q "PCR policy" "$WORK/untrusted.err" || fail "the refusal does not say what is missing"

step "make demo's path: keymeld-dev demo"
"$DEV" demo --participants 2 --messages 1 | tee "$WORK/devdemo.out"
grep -q "attested (development)" "$WORK/devdemo.out" || fail "the demo did not print the attestation"
check_party_demo "$WORK/devdemo.out"
# With --json: the demo's one JSON document, without the narrated parties.
"$DEV" demo --participants 2 --messages 1 --json > "$WORK/devdemo.json"
jq -e '.ok == true' "$WORK/devdemo.json" > /dev/null || fail "keymeld-dev demo --json is not one JSON document"

step "enclave ping"
"$KM" enclave ping "tcp://127.0.0.1:$KEYMELD_DEV_ENCLAVE_PORT" --count 2 | tee "$WORK/ping.out"
grep -q "public key 0[23]" "$WORK/ping.out" || fail "ping did not show the enclave key"
"$KM" enclave ping "tcp://127.0.0.1:$KEYMELD_DEV_PROXY_PORT" > /dev/null ||
    fail "ping through the debug proxy failed"

for n in 2 3 5; do
    step "demo with $n participants"
    "$KM" demo --gateway "$GW" --participants "$n" --messages 2 --json > "$WORK/demo.json"
    [[ $(jq -r '.ok' "$WORK/demo.json") == true ]] || fail "demo $n not ok"
    [[ $(jq -r '.participants' "$WORK/demo.json") == "$n" ]] || fail "demo $n participants"
    [[ $(jq -r '.signatures_verified' "$WORK/demo.json") == 2 ]] || fail "demo $n signatures"
done

step "keygen, sign, status"
"$KM" keygen --gateway "$GW" --participants 3 --out "$WORK/session.json"
[[ $(stat -c %a "$WORK/session.json") == 600 ]] || fail "session file is not 0600"
msg=$(printf 'ab%.0s' {1..32})
"$KM" sign --gateway "$GW" --session "$WORK/session.json" --message "$msg" --json > "$WORK/sign.json"
[[ $(jq -r '.signatures | length' "$WORK/sign.json") == 1 ]] || fail "sign: no signature"
sid=$(jq -r '.signing_session_id' "$WORK/sign.json")
"$KM" status --gateway "$GW" --session "$WORK/session.json" --signing "$sid" | grep -q completed ||
    fail "status does not show the signing session completed"
if "$KM" sign --gateway "$GW" --session "$WORK/session.json" --message 00 2> "$WORK/err"; then
    fail "a short message was accepted"
fi
grep -q "not 64 hex characters" "$WORK/err" || fail "no clear error for a short message"

step "enclave 1 stopped mid-demo"
# Freeze the demo once its keygen has begun, stop enclave 1, let it go on:
# the keygen (or, if it was quicker, the signing) cannot finish, and the
# error must say which enclave.
"$KM" demo --gateway "$GW" --participants 3 --messages 2 > "$WORK/mid.out" 2> "$WORK/mid.err" &
demo=$!
for _ in $(seq 500); do grep -q '^\[2/5\]' "$WORK/mid.out" 2> /dev/null && break; sleep 0.01; done
kill -STOP "$demo"
kill "$(cat "$WORK/run/enclave-1.pid")"
for _ in $(seq 50); do running "$(cat "$WORK/run/enclave-1.pid")" || break; sleep 0.1; done
kill -CONT "$demo"
if wait "$demo"; then
    cat "$WORK/mid.out"
    fail "the demo succeeded although enclave 1 stopped half-way"
fi
cat "$WORK/mid.err"
grep -q "enclave 1" "$WORK/mid.err" || fail "the mid-demo error does not name enclave 1"
"$DEV" start > /dev/null || fail "start did not bring enclave 1 back"
# The gateway configures the restarted enclave at its next health check;
# until then the enclave answers busy. Wait until a fresh attestation (which
# reaches the enclave itself) succeeds, so the next step sees only the
# enclave it stops.
nonce=$(printf '%064d' 1)
for _ in $(seq 150); do
    curl -fsS -o /dev/null "$GW/api/v1/enclaves/1/attestation?nonce=$nonce" 2> /dev/null && break
    sleep 0.1
done

step "enclave 2 stopped"
kill "$(cat "$WORK/run/enclave-2.pid")"
for _ in $(seq 50); do running "$(cat "$WORK/run/enclave-2.pid")" || break; sleep 0.1; done
if "$DEV" status > "$WORK/status.out"; then fail "status succeeded with an enclave down"; fi
grep -q "enclave 2: stopped" "$WORK/status.out" || fail "status does not name the stopped enclave"
if "$KM" demo --gateway "$GW" --participants 3 > "$WORK/demo.out" 2> "$WORK/demo.err"; then
    fail "the demo succeeded with an enclave down"
fi
cat "$WORK/demo.err"
grep -q "127.0.0.1:$((KEYMELD_DEV_ENCLAVE_PORT + 2))" "$WORK/demo.err" ||
    fail "the demo error does not name the stopped enclave's address"
grep -q "Connection refused" "$WORK/demo.err" || fail "the demo error does not say why"
# The gateway now knows: the demo waits for the key (10 tries, 1 s apart)
# and then says so in the seed's words, with what the gateway reports.
if "$KM" demo --gateway "$GW" --participants 3 > "$WORK/demo.out" 2> "$WORK/demo.err"; then
    fail "the second demo succeeded with an enclave down"
fi
cat "$WORK/demo.err"
grep -q "Enclave public key still unavailable after 10 retries" "$WORK/demo.err" ||
    fail "no 'still unavailable after 10 retries' message"
grep -q "enclave 2" "$WORK/demo.err" || fail "the unavailable list does not name enclave 2"

step "start brings it back"
"$DEV" start > /dev/null
# The stopped enclave's log is kept, not emptied, by the restart.
grep -q "TCP server listening" "$WORK/logs/enclave-2.log.1" ||
    fail "start emptied the previous log of enclave 2 instead of keeping it as enclave-2.log.1"
"$KM" demo --gateway "$GW" --participants 3 --messages 1 > /dev/null || fail "demo after restart"

step "stop"
started=$(pids)
"$DEV" stop
for pid in $started; do
    running "$pid" && fail "process $pid still running after stop"
done
[[ -z $(pids) ]] || fail "pid files left behind"
if "$DEV" status > /dev/null; then fail "status succeeded with the stack stopped"; fi
echo "PASS"
