#!/usr/bin/env bash
# deploy.nitro_cids: deploy/nitro/parse-cids.sh on the recorded
# `nitro-cli describe-enclaves` / `run-enclave` outputs of
# deploy/nitro/testdata/, once with jq and once with the python3 fallback:
# right CID per enclave whatever the array order, EnclaveCID and ContextId,
# names and ids, and a clear error (exit 1) for a missing, terminating or
# debug-mode enclave, none running, duplicates; exit 2 for input that is not
# nitro-cli JSON.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SRC"

need jq "Debian package jq"
P=deploy/nitro/parse-cids.sh
D=deploy/nitro/testdata

# run TOOL ARGS...: sets OUT (stdout), ERR (stderr), RC.
run() {
    local tool=$1
    shift
    set +e
    OUT=$(PARSE_CIDS_TOOL=$tool "$P" "$@" 2> "$TMP/err")
    RC=$?
    set -e
    ERR=$(cat "$TMP/err")
}

# The python3 fallback must see no jq: run it with a PATH without jq.
mkdir -p "$TMP/nojq"
ln -s "$(command -v "$PYTHON3")" "$TMP/nojq/python3"
for t in bash cat tail mktemp rm dirname; do ln -s "$(command -v $t)" "$TMP/nojq/$t"; done

for tool in jq python3; do
    if [[ $tool == python3 ]]; then
        ORIG_PATH=$PATH
        # shellcheck disable=SC2123 # deliberately: a PATH without jq
        PATH=$TMP/nojq
        run "" -f $D/describe-enclaves.json cid keymeld-enclave-0
        expect_eq "[auto] without jq, python3 is used" "0:16" "$RC:$OUT"
    fi

    # Three running enclaves, listed out of start order.
    run $tool -f $D/describe-enclaves.json env keymeld-enclave 3
    expect_eq "[$tool] env for 3 enclaves" "0:KEYMELD_ENCLAVE_0_CID=16
KEYMELD_ENCLAVE_1_CID=17
KEYMELD_ENCLAVE_2_CID=18" "$RC:$OUT"
    run $tool -f $D/describe-enclaves.json cid keymeld-enclave-2
    expect_eq "[$tool] cid by name" "0:18" "$RC:$OUT"
    run $tool -f $D/describe-enclaves.json cid i-0a3f9c2e71b5d4e86-enc18f2a6c19a0c7d22
    expect_eq "[$tool] cid by EnclaveID" "0:17" "$RC:$OUT"
    run $tool cid keymeld-enclave-1 < $D/describe-enclaves.json
    expect_eq "[$tool] cid from standard input" "0:17" "$RC:$OUT"
    run $tool -f $D/describe-enclaves.json list
    expect_eq "[$tool] list" "0:keymeld-enclave-1	i-0a3f9c2e71b5d4e86-enc18f2a6c19a0c7d22	17	RUNNING	NONE" \
        "$RC:${OUT%%$'\n'*}"

    # Older output: "ContextId", no EnclaveName (look up by id).
    run $tool -f $D/describe-enclaves-legacy.json cid i-0a3f9c2e71b5d4e86-enc18f2a6c2be51f093
    expect_eq "[$tool] ContextId by EnclaveID" "0:18" "$RC:$OUT"
    run $tool -f $D/describe-enclaves-legacy.json cid keymeld-enclave-0
    expect_eq "[$tool] no names in legacy output: not found" 1 "$RC"
    expect_contains "[$tool] ... and says what is running" "(no name) [i-0a3f9c2e71b5d4e86-enc18f2a6c0d3e4b571] CID 16 RUNNING" "$ERR"

    # run-enclave output: the EnclaveID.
    run $tool -f $D/run-enclave.json id
    expect_eq "[$tool] EnclaveID of run-enclave" "0:i-0a3f9c2e71b5d4e86-enc18f2a6c0d3e4b571" "$RC:$OUT"
    run $tool -f $D/describe-enclaves.json id
    expect_eq "[$tool] id refuses several enclaves" 1 "$RC"

    # A failed start: one TERMINATING, one missing. All or nothing.
    run $tool -f $D/describe-enclaves-failed.json env keymeld-enclave 3
    expect_eq "[$tool] failed start: exit 1, no partial output" "1:" "$RC:$OUT"
    expect_contains "[$tool] names the terminating enclave" \
        "enclave keymeld-enclave-1 is TERMINATING, not RUNNING (CID 17)" "$ERR"
    expect_contains "[$tool] names the missing enclave and what runs" \
        "enclave keymeld-enclave-2 not found in $D/describe-enclaves-failed.json; running: keymeld-enclave-0" "$ERR"
    run $tool -f $D/describe-enclaves-failed.json cid keymeld-enclave-0
    expect_eq "[$tool] the running one is still found" "0:16" "$RC:$OUT"

    # Nothing running.
    run $tool -f $D/describe-enclaves-empty.json cid keymeld-enclave-0
    expect_eq "[$tool] none running: exit 1" 1 "$RC"
    expect_contains "[$tool] none running: says so" "no enclaves are running" "$ERR"

    # Debug mode (zero PCRs) is refused unless explicitly allowed.
    run $tool -f $D/describe-enclaves-debug.json cid keymeld-enclave-0
    expect_eq "[$tool] debug-mode enclave refused" 1 "$RC"
    expect_contains "[$tool] ... with the reason" "runs in debug mode (Flags DEBUG_MODE)" "$ERR"
    OUT=$(PARSE_CIDS_ALLOW_DEBUG=1 PARSE_CIDS_TOOL=$tool "$P" -f $D/describe-enclaves-debug.json cid keymeld-enclave-0)
    expect_eq "[$tool] PARSE_CIDS_ALLOW_DEBUG=1 accepts it" 16 "$OUT"

    # Synthetic edge cases.
    printf '[{"EnclaveName":"a","EnclaveID":"i-1","EnclaveCID":16,"State":"RUNNING"},{"EnclaveName":"a","EnclaveID":"i-2","EnclaveCID":17,"State":"RUNNING"}]' > "$TMP/dup.json"
    run $tool -f "$TMP/dup.json" cid a
    expect_eq "[$tool] two enclaves with one name: exit 1" 1 "$RC"
    expect_contains "[$tool] ... says to terminate the stale one" "terminate the stale one" "$ERR"
    printf '[{"EnclaveName":"a","EnclaveID":"i-1","State":"RUNNING"}]' > "$TMP/nocid.json"
    run $tool -f "$TMP/nocid.json" cid a
    expect_eq "[$tool] no CID field: exit 1" "1" "$RC"
    expect_contains "[$tool] ... named" "has no EnclaveCID (or ContextId)" "$ERR"
    for cid in 2 3 '"16"x' -1 4294967295; do
        printf '[{"EnclaveName":"a","EnclaveCID":%s}]' "$cid" > "$TMP/cid.json"
        run $tool -f "$TMP/cid.json" cid a
        if [[ $cid == '"16"x' ]]; then
            expect_eq "[$tool] broken JSON: exit 2" 2 "$RC"
        else
            expect_eq "[$tool] CID $cid refused" 1 "$RC"
        fi
    done
    printf '[{"EnclaveName":"a","EnclaveCID":4}]' > "$TMP/cid.json"
    run $tool -f "$TMP/cid.json" cid a
    expect_eq "[$tool] CID 4, no State (old nitro-cli): accepted" "0:4" "$RC:$OUT"
    for bad_input in '' '   ' 'Error: failed to connect' '{"EnclaveName":' '"text"' '[1,2]'; do
        printf '%s' "$bad_input" > "$TMP/bad.json"
        run $tool -f "$TMP/bad.json" cid a
        expect_eq "[$tool] not nitro-cli JSON ('$bad_input'): exit 2" 2 "$RC"
        expect_contains "[$tool] ... says so" "not nitro-cli JSON" "$ERR"
    done

    # Usage errors.
    run $tool -f $D/describe-enclaves.json env keymeld-enclave 0
    expect_eq "[$tool] env COUNT 0 is a usage error" 2 "$RC"
    run $tool -f /nonexistent cid a
    expect_eq "[$tool] unreadable file is a usage error" 2 "$RC"

    if [[ $tool == python3 ]]; then PATH=$ORIG_PATH; fi
done

# Both readers agree on every recorded sample.
for f in "$D"/describe-*.json; do
    a=$(PARSE_CIDS_TOOL=jq "$P" -f "$f" list)
    b=$(PARSE_CIDS_TOOL=python3 "$P" -f "$f" list)
    expect_eq "jq and python3 agree on $f" "$a" "$b"
done

finish
