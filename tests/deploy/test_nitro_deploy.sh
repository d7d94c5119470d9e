#!/usr/bin/env bash
# deploy.nitro_deploy: deploy/nitro/deploy.sh end to end against a recording
# nitro-cli mock (tests/deploy/mock-nitro-cli) and stand-ins for systemctl,
# docker and the gateway: the flags it passes (never --debug-mode), CID
# capture with retries, the env file (checked with the real `keymeld config
# check` against config/production.yaml), refusal to double-start,
# --replace, clean-up after a failed start, stop/status, parameters.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SRC"

need jq "Debian package jq"
KEYMELD=$BUILD/src/cmd/keymeld
if [[ ! -x "$KEYMELD" ]]; then
    bad "$KEYMELD not built"
    finish
fi

# Stand-ins on PATH: nitro-cli (the mock), systemctl, docker; each records
# its arguments.
BIN=$TMP/bin
mkdir -p "$BIN"
cat > "$BIN/nitro-cli" <<EOS
#!/usr/bin/env bash
exec "$PYTHON3" "$SRC/tests/deploy/mock-nitro-cli" "\$@"
EOS
cat > "$BIN/systemctl" <<'EOS'
#!/usr/bin/env bash
echo "systemctl $*" >> "$MOCK_NITRO_DIR/calls.log"
[[ "$1" == is-active ]] && echo active
exit 0
EOS
cat > "$BIN/docker" <<'EOS'
#!/usr/bin/env bash
echo "docker $*" >> "$MOCK_NITRO_DIR/calls.log"
EOS
cat > "$BIN/fake-gateway" <<'EOS'
#!/usr/bin/env bash
echo "gateway args: $*"
env | grep -E '^KEYMELD_' | sort
EOS
chmod +x "$BIN"/*
export PATH="$BIN:$PATH"

EIF=$TMP/keymeld-enclave.eif
echo eif > "$EIF"
ENVF=$TMP/etc/keymeld/enclaves.env
PCRS=$TMP/etc/keymeld/pcrs.json

# deploy ARGS...: run deploy.sh with test defaults; sets OUT (stdout+stderr), RC.
deploy() {
    set +e
    OUT=$(EIF_PATH=$EIF ENV_FILE=$ENVF CONFIG=$SRC/config/production.yaml PCR_POLICY=$PCRS \
        KEYMELD_BIN=$KEYMELD START_GATEWAY=${START_GATEWAY:-systemd} \
        CID_RETRY_DELAY=0 deploy/nitro/deploy.sh "$@" 2>&1)
    RC=$?
    set -e
}
fresh() {
    export MOCK_NITRO_DIR=$TMP/mock-$1
    rm -rf "$MOCK_NITRO_DIR" "${TMP:?}/etc"
    mkdir -p "$MOCK_NITRO_DIR"
}
calls() { cat "$MOCK_NITRO_DIR/calls.log"; }
running() { nitro-cli describe-enclaves | jq -r '[.[].EnclaveName] | sort | join(" ")'; }

# ---- 1. a normal start: enclaves listed late (retries), systemd restart ---
fresh start
MOCK_DESCRIBE_LAG=2 deploy
expect_eq "start: exit 0" 0 "$RC"
[[ $RC -eq 0 ]] || echo "$OUT"
expect_eq "start: env file" "KEYMELD_ENVIRONMENT=production
KEYMELD_ENCLAVE_0_CID=16
KEYMELD_ENCLAVE_0_PORT=8000
KEYMELD_ENCLAVE_1_CID=17
KEYMELD_ENCLAVE_1_PORT=8000
KEYMELD_ENCLAVE_2_CID=18
KEYMELD_ENCLAVE_2_PORT=8000" "$(grep -v '^#' "$ENVF")"
runs=$(grep -c '"run-enclave"' "$MOCK_NITRO_DIR/calls.log")
expect_eq "start: three run-enclave calls" 3 "$runs"
for i in 0 1 2; do
    expect_contains "start: enclave $i flags" "[\"run-enclave\", \"--eif-path\", \"$EIF\", \"--memory\", \"512\", \"--cpu-count\", \"2\", \"--enclave-name\", \"keymeld-enclave-$i\"]" "$(calls)"
done
if calls | grep -q -- '--debug-mode'; then bad "start: --debug-mode was passed"; else ok "start: never --debug-mode"; fi
expect_contains "start: retried describe-enclaves until listed" "CID of keymeld-enclave-0 not available yet (attempt 1/10)" "$OUT"
expect_contains "start: logs the CIDs" "Enclave CIDs: 16 17 18" "$OUT"
expect_contains "start: logs each mapping" "enclave 1: keymeld-enclave-1 i-0a3f9c2e71b5d4e86-enc" "$OUT"
expect_contains "start: effective addresses from keymeld config check" "enclave 2: vsock://18:8000" "$OUT"
expect_contains "start: restarts the unit" "systemctl restart keymeld-gateway.service" "$(calls)"
expect_eq "start: three enclaves run" "keymeld-enclave-0 keymeld-enclave-1 keymeld-enclave-2" "$(running)"

# The env file makes config/production.yaml valid with no template CID left.
check=$(bash -c 'set -a; . "$1"; set +a; exec "$2" config check --config config/production.yaml' \
    _ "$ENVF" "$KEYMELD" 2>&1) && rc=0 || rc=$?
expect_eq "env file + production.yaml: config check passes" 0 "$rc"
expect_contains "env file + production.yaml: no warnings" "Configuration OK" "$check"
if [[ "$check" == *Warnings:* ]]; then bad "config check warns: $check"; else ok "config check: no warnings"; fi

# ---- 2. status, then a second start without --replace -------------------
deploy status
expect_eq "status: exit 0" 0 "$RC"
expect_contains "status: lists the enclaves" "keymeld-enclave-2	i-0a3f9c2e71b5d4e86-enc" "$OUT"
if [[ "$OUT" == *MISMATCH* ]]; then bad "status: unexpected mismatch: $OUT"; else ok "status: CIDs match"; fi
deploy
expect_eq "second start: refused" 1 "$RC"
expect_contains "second start: says why and what to do" "enclaves already running: keymeld-enclave-0, keymeld-enclave-1, keymeld-enclave-2" "$OUT"
expect_contains "second start: suggests --missing" "Rerun with --missing to start only" "$OUT"
expect_contains "second start: warns what --replace does" "with --replace to restart them all (every enclave gets a new
  key, so every existing keygen fails)" "$OUT"
expect_eq "second start: started nothing" 3 "$(grep -c '"run-enclave"' "$MOCK_NITRO_DIR/calls.log")"

# ---- 3. --replace: terminate, start, new CIDs, previous env kept ---------
deploy start --replace
expect_eq "--replace: exit 0" 0 "$RC"
expect_eq "--replace: three terminations" 3 "$(grep -c '"terminate-enclave"' "$MOCK_NITRO_DIR/calls.log")"
expect_eq "--replace: new CIDs" "19 20 21" "$(sed -n 's/^KEYMELD_ENCLAVE_[0-9]_CID=//p' "$ENVF" | tr '\n' ' ' | sed 's/ $//')"
expect_contains "--replace: previous env file kept" "KEYMELD_ENCLAVE_0_CID=16" "$(cat "$ENVF.previous")"

# An enclave restarted behind deploy.sh's back: status reports the mismatch.
id0=$(nitro-cli describe-enclaves | jq -r '.[] | select(.EnclaveName == "keymeld-enclave-0") | .EnclaveID')
nitro-cli terminate-enclave --enclave-id "$id0" > /dev/null
nitro-cli run-enclave --eif-path "$EIF" --memory 512 --cpu-count 2 --enclave-name keymeld-enclave-0 > /dev/null 2>&1
deploy status
expect_contains "status: reports a changed CID" "MISMATCH: enclave 0 runs with CID 22 but $ENVF says 19" "$OUT"

# --missing with everything running: nothing started, the CIDs re-read.
runs_before=$(grep -c '"run-enclave"' "$MOCK_NITRO_DIR/calls.log")
deploy start --missing
expect_eq "--missing, all running: exit 0" 0 "$RC"
expect_eq "--missing, all running: nothing started" "$runs_before" "$(grep -c '"run-enclave"' "$MOCK_NITRO_DIR/calls.log")"
expect_contains "--missing: says it keeps them" "keeping keymeld-enclave-2 (i-0a3f9c2e71b5d4e86-enc" "$OUT"
expect_eq "--missing: CIDs re-read" "22 20 21" "$(sed -n 's/^KEYMELD_ENCLAVE_[0-9]_CID=//p' "$ENVF" | tr '\n' ' ' | sed 's/ $//')"

# --missing after enclave 1 died: only enclave 1 is started again.
id1=$(nitro-cli describe-enclaves | jq -r '.[] | select(.EnclaveName == "keymeld-enclave-1") | .EnclaveID')
nitro-cli terminate-enclave --enclave-id "$id1" > /dev/null
deploy start --missing
expect_eq "--missing, one dead: exit 0" 0 "$RC"
expect_eq "--missing, one dead: one run-enclave" "$((runs_before + 1))" "$(grep -c '"run-enclave"' "$MOCK_NITRO_DIR/calls.log")"
expect_contains "--missing, one dead: it is enclave 1" "starting keymeld-enclave-1:" "$OUT"
expect_eq "--missing, one dead: CIDs" "22 23 21" "$(sed -n 's/^KEYMELD_ENCLAVE_[0-9]_CID=//p' "$ENVF" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "--missing, one dead: three enclaves run" "keymeld-enclave-0 keymeld-enclave-1 keymeld-enclave-2" "$(running)"

# ---- 4. stop: gateway first, then every keymeld enclave ------------------
deploy stop
expect_eq "stop: exit 0" 0 "$RC"
expect_eq "stop: nothing runs" "" "$(running)"
last_stop=$(grep -n 'systemctl stop' "$MOCK_NITRO_DIR/calls.log" | tail -n 1 | cut -d: -f1)
first_term=$(grep -n '"terminate-enclave"' "$MOCK_NITRO_DIR/calls.log" | tail -n 3 | head -n 1 | cut -d: -f1)
if [[ -n "$last_stop" && -n "$first_term" && $last_stop -lt $first_term ]]; then
    ok "stop: the gateway stops before the enclaves"
else
    bad "stop: order of systemctl stop ($last_stop) and terminate-enclave ($first_term)"
fi

# ---- 5. run-enclave fails for enclave 1: clear error, clean-up, env kept -
fresh failrun
mkdir -p "$(dirname "$ENVF")"
echo "KEYMELD_ENCLAVE_0_CID=42" > "$ENVF"
MOCK_FAIL_RUN=keymeld-enclave-1 deploy
expect_eq "failed run: exit 1" 1 "$RC"
expect_contains "failed run: nitro-cli's error" "[ E26 ] Insufficient memory requested" "$OUT"
expect_contains "failed run: the likely causes" "/etc/nitro_enclaves/allocator.yaml" "$OUT"
expect_eq "failed run: enclave 0 terminated again" "" "$(running)"
expect_eq "failed run: env file untouched" "KEYMELD_ENCLAVE_0_CID=42" "$(cat "$ENVF")"
if calls | grep -q 'systemctl'; then bad "failed run: the gateway was restarted"; else ok "failed run: gateway untouched"; fi

# KEEP_ON_FAILURE=1 leaves them for debugging.
fresh keep
KEEP_ON_FAILURE=1 MOCK_FAIL_RUN=keymeld-enclave-2 deploy
expect_eq "KEEP_ON_FAILURE: exit 1" 1 "$RC"
expect_eq "KEEP_ON_FAILURE: started enclaves kept" "keymeld-enclave-0 keymeld-enclave-1" "$(running)"

# ---- 6. an enclave never listed: bounded retries, then clean-up ---------
fresh hidden
MOCK_HIDE=keymeld-enclave-2 CID_RETRIES=3 deploy
expect_eq "never listed: exit 1" 1 "$RC"
expect_contains "never listed: names it" "no CID for keymeld-enclave-2 after 3 attempts" "$OUT"
expect_contains "never listed: each attempt logged" "(attempt 3/3)" "$OUT"
expect_eq "never listed: all terminated" "" "$(running)"
if [[ -e "$ENVF" ]]; then bad "never listed: env file written"; else ok "never listed: no env file"; fi

# ---- 7. fewer enclaves than production.yaml lists -----------------------
fresh toofew
NUM_ENCLAVES=2 deploy
expect_eq "NUM_ENCLAVES=2 vs 3 in config: refused" 1 "$RC"
expect_contains "NUM_ENCLAVES=2: the template CID is named" "enclave 2: CID 5 is a template value" "$OUT"
if [[ -e "$ENVF" ]]; then bad "NUM_ENCLAVES=2: env file written"; else ok "NUM_ENCLAVES=2: no env file"; fi

# ---- 8. requested CIDs, exec mode ---------------------------------------
fresh exec
ENCLAVE_CID_BASE=100 START_GATEWAY=exec GATEWAY_BIN=$BIN/fake-gateway deploy
expect_eq "exec: exit 0" 0 "$RC"
expect_contains "exec: --enclave-cid requested" '"--enclave-name", "keymeld-enclave-1", "--enclave-cid", "101"]' "$(calls)"
expect_contains "exec: gateway gets --config" "gateway args: --config $SRC/config/production.yaml" "$OUT"
expect_contains "exec: gateway gets the CIDs" "KEYMELD_ENCLAVE_2_CID=102" "$OUT"
expect_contains "exec: gateway gets the environment" "KEYMELD_ENVIRONMENT=production" "$OUT"

# ---- 9. BUILD_EIF=1: docker build with the port, then build-enclave -----
fresh build
rm -f "$EIF"
BUILD_EIF=1 START_GATEWAY=none deploy
expect_eq "BUILD_EIF without KMS_KEY_ID: refused" 1 "$RC"
expect_contains "BUILD_EIF without KMS_KEY_ID: says why" "BUILD_EIF=1 needs KMS_KEY_ID" "$OUT"
KMS_KEY_ID=alias/keymeld BUILD_EIF=1 START_GATEWAY=none deploy
expect_eq "BUILD_EIF: exit 0" 0 "$RC"
expect_contains "BUILD_EIF: docker build of deploy/nitro/Dockerfile with VSOCK_PORT and the KMS key" \
    "docker build -f $SRC/deploy/nitro/Dockerfile --build-arg VSOCK_PORT=8000 --build-arg KMS_KEY_ID=alias/keymeld --build-arg KMS_REGION=us-east-1 -t keymeld-enclave:latest $SRC" "$(calls)"
expect_contains "BUILD_EIF: nitro-cli build-enclave" \
    "[\"build-enclave\", \"--docker-uri\", \"keymeld-enclave:latest\", \"--output-file\", \"$EIF\"]" "$(calls)"
expect_contains "START_GATEWAY=none: says how to start it" "systemctl restart keymeld-gateway.service" "$OUT"
expect_eq "BUILD_EIF: the PCR policy pins build-enclave's PCR0" "$(printf '1%.0s' $(seq 96))" \
    "$(jq -r '.pcr_sets[0].PCR0' "$PCRS")"
expect_eq "BUILD_EIF: and PCR2" "$(printf '3%.0s' $(seq 96))" "$(jq -r '.pcr_sets[0].PCR2' "$PCRS")"

# ---- 9b. the PCR policy of a given EIF (describe-eif), rolling ------------
fresh pcrs
START_GATEWAY=none deploy
expect_eq "describe-eif: exit 0" 0 "$RC"
expect_contains "describe-eif: asked" '["describe-eif", "--eif-path"' "$(calls)"
expect_eq "describe-eif: one set" 1 "$(jq '.pcr_sets | length' "$PCRS")"
mkdir -p "$(dirname "$PCRS")"
echo '{"pcr_sets": [{"PCR0": "'"$(printf 'a%.0s' $(seq 96))"'"}]}' > "$PCRS"
MOCK_EIF_PCR0=$(printf 'b%.0s' $(seq 96)) START_GATEWAY=none deploy stop > /dev/null 2>&1 || true
MOCK_EIF_PCR0=$(printf 'b%.0s' $(seq 96)) START_GATEWAY=none deploy
expect_eq "rolling: the new image first" "$(printf 'b%.0s' $(seq 96))" "$(jq -r '.pcr_sets[0].PCR0' "$PCRS")"
expect_eq "rolling: the running image kept" "$(printf 'a%.0s' $(seq 96))" "$(jq -r '.pcr_sets[1].PCR0' "$PCRS")"
expect_contains "rolling: the previous file kept" "pcr_sets" "$(cat "$PCRS.previous")"

# ---- 10. parameters -------------------------------------------------------
fresh params
for bad_param in NUM_ENCLAVES=1 NUM_ENCLAVES=5 ENCLAVE_CPUS=abc ENCLAVE_MEMORY=32 PORT=0 \
    ENCLAVE_CID_BASE=2 START_GATEWAY=maybe CID_RETRIES=0; do
    set +e
    OUT=$(env "$bad_param" EIF_PATH="$EIF" ENV_FILE="$ENVF" deploy/nitro/deploy.sh 2>&1)
    RC=$?
    set -e
    expect_eq "$bad_param refused" 1 "$RC"
    expect_contains "$bad_param: names the parameter" "${bad_param%%=*}" "$OUT"
done
deploy start --bogus
expect_eq "unknown option: usage error" 2 "$RC"
deploy stop --replace
expect_eq "stop takes no option" 2 "$RC"
set +e
OUT=$(EIF_PATH=$TMP/none.eif ENV_FILE=$ENVF deploy/nitro/deploy.sh 2>&1)
RC=$?
set -e
expect_eq "missing EIF: exit 1" 1 "$RC"
expect_contains "missing EIF: says how to get one" "EIF $TMP/none.eif not found: build it (BUILD_EIF=1" "$OUT"
expect_eq "nothing started by refused runs" "" "$(running)"
OUT=$(deploy/nitro/deploy.sh --help)
expect_contains "--help shows the parameters" "ENCLAVE_MEMORY [512]" "$OUT"

finish
