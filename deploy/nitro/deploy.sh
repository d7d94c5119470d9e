#!/usr/bin/env bash
# deploy.sh - run KeyMeld's enclaves on AWS Nitro and point the gateway at them.
#
# The seed's deployment script, made safe to run twice and to debug:
#   1. (optional) build the enclave image and the EIF;
#   2. start NUM_ENCLAVES enclaves with `nitro-cli run-enclave`, each named
#      ENCLAVE_NAME_PREFIX-<id>, never in debug mode;
#   3. read each enclave's CID back from `nitro-cli describe-enclaves` (AWS
#      assigns CIDs at start-up; retried, since a new enclave can take a
#      moment to be listed), by its EnclaveID or name, never by position;
#   4. check the gateway configuration with them (`keymeld config check`),
#      then write KEYMELD_ENCLAVE_<id>_CID / _PORT to ENV_FILE (the systemd
#      unit's EnvironmentFile); every CID is logged;
#   5. start the gateway (systemd by default).
#
# usage: deploy.sh [start]             start enclaves and gateway (refused if
#                                      keymeld enclaves already run)
#        deploy.sh start --replace   terminate and restart every enclave
#        deploy.sh start --missing   keep the running enclaves, start the others
#        deploy.sh stop              stop the gateway, terminate the enclaves
#        deploy.sh status            enclaves, CIDs in use, gateway state
#
# An enclave's keys live only in its memory: a restarted enclave has a new
# key (and a new CID), and the gateway fails every keygen that used the old
# one (docs/API.md). So --replace ends every keygen; after one enclave died,
# --missing restarts only that one.
#
# Run as root on the parent EC2 instance (nitro-cli needs the `ne` group and
# ENV_FILE lives in /etc/keymeld). The nitro-enclaves-allocator service must
# reserve at least NUM_ENCLAVES x ENCLAVE_MEMORY MiB and NUM_ENCLAVES x
# ENCLAVE_CPUS vCPUs (/etc/nitro_enclaves/allocator.yaml). See
# deploy/README.md.
#
# Parameters (environment variables, defaults in brackets):
#   NUM_ENCLAVES [3]       enclave ids 0..NUM_ENCLAVES-1; CONFIG must list them
#   EIF_PATH [/opt/keymeld/keymeld-enclave.eif]
#   ENCLAVE_MEMORY [512]   MiB per enclave
#   ENCLAVE_CPUS [2]       vCPUs per enclave; on hyper-threaded x86 instances
#                          nitro-cli only hands out whole cores, so 2, not 1
#   ENCLAVE_NAME_PREFIX [keymeld-enclave]
#   ENCLAVE_CID_BASE []    optional: ask for CIDs BASE, BASE+1, ... (--enclave-cid);
#                          the CIDs are still read back from describe-enclaves
#   PORT [8000]            the enclaves' VSock port: the EIF listens on the
#                          VSOCK_PORT baked in by deploy/nitro/Dockerfile (8000,
#                          as config/production.yaml); written as
#                          KEYMELD_ENCLAVE_<id>_PORT so the two cannot drift
#   CONFIG [/etc/keymeld/production.yaml]
#   GATEWAY_BIN [/usr/local/bin/keymeld-gateway]
#   KEYMELD_BIN [keymeld next to GATEWAY_BIN]  for `keymeld config check`;
#                          skipped (with a warning) when it is not installed
#   ENV_FILE [/etc/keymeld/enclaves.env]   the previous one is kept as .previous
#   START_GATEWAY [systemd]  systemd: restart SYSTEMD_UNIT; exec: run the gateway
#                          in the foreground (as the seed does); none: only write ENV_FILE
#   SYSTEMD_UNIT [keymeld-gateway.service]
#   READY_URL []           e.g. http://127.0.0.1:443/health/ready: after a systemd
#                          start, wait up to READY_TIMEOUT [60] s for it to answer 200
#   BUILD_EIF [0]          1: docker build -f deploy/nitro/Dockerfile (from
#                          SOURCE_DIR [the repository holding this script]) and
#                          nitro-cli build-enclave into EIF_PATH first
#   DOCKER_TAG [keymeld-enclave:latest]
#   KMS_KEY_ID []          with BUILD_EIF=1: the KMS key that seals the enclaves'
#                          identity keys, baked into the EIF (so PCR0 covers it;
#                          docs/OPERATIONS.md "Durable enclave keys"); required
#   KMS_REGION [us-east-1] with BUILD_EIF=1: its region
#   PCR_POLICY [/etc/keymeld/pcrs.json]  the PCR policy the gateway
#                          (security.attestation_pcrs) and clients (--pcrs) pin:
#                          the EIF's PCR0/1/2 (from build-enclave, else
#                          nitro-cli describe-eif) become its newest set; the
#                          previous sets are kept so clients of the running
#                          image keep working during a rolling upgrade
#   PCR_POLICY_KEEP [2]    how many sets (images) the policy keeps, newest first
#   CID_RETRIES [10], CID_RETRY_DELAY [1]   describe-enclaves attempts per enclave
#   KEEP_ON_FAILURE [0]    1: leave enclaves started by a failed run for debugging
#   NITRO_CLI [nitro-cli]  (the tests point it at a recording mock)
#
# Exit status: 0 done, 1 failure (the message says what to do), 2 usage.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PARSE_CIDS=${PARSE_CIDS:-$SCRIPT_DIR/parse-cids.sh}

NUM_ENCLAVES=${NUM_ENCLAVES:-3}
EIF_PATH=${EIF_PATH:-/opt/keymeld/keymeld-enclave.eif}
ENCLAVE_MEMORY=${ENCLAVE_MEMORY:-512}
ENCLAVE_CPUS=${ENCLAVE_CPUS:-2}
ENCLAVE_NAME_PREFIX=${ENCLAVE_NAME_PREFIX:-keymeld-enclave}
ENCLAVE_CID_BASE=${ENCLAVE_CID_BASE:-}
PORT=${PORT:-8000}
CONFIG=${CONFIG:-/etc/keymeld/production.yaml}
GATEWAY_BIN=${GATEWAY_BIN:-/usr/local/bin/keymeld-gateway}
KEYMELD_BIN=${KEYMELD_BIN:-$(dirname "$GATEWAY_BIN")/keymeld}
ENV_FILE=${ENV_FILE:-/etc/keymeld/enclaves.env}
START_GATEWAY=${START_GATEWAY:-systemd}
SYSTEMD_UNIT=${SYSTEMD_UNIT:-keymeld-gateway.service}
READY_URL=${READY_URL:-}
READY_TIMEOUT=${READY_TIMEOUT:-60}
BUILD_EIF=${BUILD_EIF:-0}
SOURCE_DIR=${SOURCE_DIR:-$(cd "$SCRIPT_DIR/../.." && pwd)}
DOCKER_TAG=${DOCKER_TAG:-keymeld-enclave:latest}
KMS_KEY_ID=${KMS_KEY_ID:-}
KMS_REGION=${KMS_REGION:-us-east-1}
PCR_POLICY=${PCR_POLICY:-/etc/keymeld/pcrs.json}
PCR_POLICY_KEEP=${PCR_POLICY_KEEP:-2}
CID_RETRIES=${CID_RETRIES:-10}
CID_RETRY_DELAY=${CID_RETRY_DELAY:-1}
KEEP_ON_FAILURE=${KEEP_ON_FAILURE:-0}
NITRO_CLI=${NITRO_CLI:-nitro-cli}

# Scratch files (nitro-cli outputs); removed on exit.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

log() { printf '%s deploy: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}
usage() {
    echo "usage: $0 [start [--replace | --missing] | stop | status]  (parameters: $0 --help)" >&2
    exit 2
}

# ---- checks ---------------------------------------------------------------

# in_range VALUE MIN MAX: VALUE is a decimal number within [MIN, MAX].
in_range() { [[ "$1" =~ ^[0-9]{1,10}$ ]] && ((10#$1 >= $2 && 10#$1 <= $3)); }

check_params() {
    in_range "$NUM_ENCLAVES" 2 4 ||
        die "NUM_ENCLAVES must be 2..4 (MuSig2 needs 2; a Nitro parent runs at most 4), not '$NUM_ENCLAVES'"
    in_range "$ENCLAVE_MEMORY" 64 1048576 ||
        die "ENCLAVE_MEMORY must be a number of MiB >= 64, not '$ENCLAVE_MEMORY'"
    in_range "$ENCLAVE_CPUS" 1 1024 || die "ENCLAVE_CPUS must be a positive number, not '$ENCLAVE_CPUS'"
    in_range "$PORT" 1 4294967294 || die "PORT must be a VSock port 1..4294967294, not '$PORT'"
    if [[ -n "$ENCLAVE_CID_BASE" ]] && ! in_range "$ENCLAVE_CID_BASE" 4 4294967200; then
        die "ENCLAVE_CID_BASE must be a CID >= 4 (0-3 are reserved, the host and the parent), not '$ENCLAVE_CID_BASE'"
    fi
    in_range "$CID_RETRIES" 1 1000 || die "CID_RETRIES must be 1..1000, not '$CID_RETRIES'"
    case "$START_GATEWAY" in
        systemd | exec | none) ;;
        *) die "START_GATEWAY must be systemd, exec or none, not '$START_GATEWAY'" ;;
    esac
    command -v "$NITRO_CLI" >/dev/null 2>&1 ||
        die "$NITRO_CLI not found: install the Nitro Enclaves CLI (Amazon Linux 2023: dnf install aws-nitro-enclaves-cli)"
    [[ -x "$PARSE_CIDS" ]] || die "$PARSE_CIDS is missing: keep parse-cids.sh next to deploy.sh"
}

# ---- nitro-cli wrappers ---------------------------------------------------

# describe FILE: current `nitro-cli describe-enclaves` JSON into FILE.
describe() {
    "$NITRO_CLI" describe-enclaves > "$1" 2> "$WORK/describe.err" ||
        die "nitro-cli describe-enclaves failed: $(cat "$WORK/describe.err")"
}

# our_enclaves: "name id state" of every enclave whose name has our prefix.
our_enclaves() {
    describe "$WORK/existing.json"
    "$PARSE_CIDS" -f "$WORK/existing.json" list |
        awk -F '\t' -v p="$ENCLAVE_NAME_PREFIX-" 'index($1, p) == 1 { print $1, $2, ($4 == "" ? "?" : $4) }'
}

terminate() {
    local name=$1 id=$2
    log "terminating $name ($id)"
    "$NITRO_CLI" terminate-enclave --enclave-id "$id" > /dev/null ||
        log "WARNING: could not terminate $name ($id): check nitro-cli describe-enclaves"
}

# ---- steps ----------------------------------------------------------------

build_eif() {
    command -v docker >/dev/null 2>&1 || die "BUILD_EIF=1 needs docker"
    [[ -n "$KMS_KEY_ID" ]] || die "BUILD_EIF=1 needs KMS_KEY_ID (the KMS key that seals the enclaves' identity keys; it is baked into the EIF): see docs/OPERATIONS.md \"Durable enclave keys\""
    log "building $DOCKER_TAG from $SOURCE_DIR (deploy/nitro/Dockerfile, VSOCK_PORT=$PORT)"
    docker build -f "$SOURCE_DIR/deploy/nitro/Dockerfile" --build-arg "VSOCK_PORT=$PORT" \
        --build-arg "KMS_KEY_ID=$KMS_KEY_ID" --build-arg "KMS_REGION=$KMS_REGION" \
        -t "$DOCKER_TAG" "$SOURCE_DIR"
    log "building $EIF_PATH"
    mkdir -p "$(dirname "$EIF_PATH")"
    # The measurements (PCR0-2) printed here are what attestation checks.
    "$NITRO_CLI" build-enclave --docker-uri "$DOCKER_TAG" --output-file "$EIF_PATH" \
        > "$WORK/measurements.json"
}

# write_pcr_policy: the EIF's measurements become the newest set of
# PCR_POLICY (docs/ATTESTATION.md "PCR policy"); older sets are kept up to
# PCR_POLICY_KEEP, the previous file as PCR_POLICY.previous.
write_pcr_policy() {
    if [[ ! -s "$WORK/measurements.json" ]]; then
        "$NITRO_CLI" describe-eif --eif-path "$EIF_PATH" > "$WORK/measurements.json" ||
            die "nitro-cli describe-eif --eif-path $EIF_PATH failed: cannot read the EIF's PCRs for $PCR_POLICY (nitro-cli 1.2 or later has describe-eif)"
    fi
    mkdir -p "$(dirname "$PCR_POLICY")"
    local tmp=$PCR_POLICY.tmp.$$ summary
    summary=$(python3 - "$WORK/measurements.json" "$PCR_POLICY" "$PCR_POLICY_KEEP" "$tmp" <<'PY'
import json, re, sys
meas_path, policy_path, keep, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
m = json.load(open(meas_path)).get("Measurements") or {}
new = {}
for pcr in ("PCR0", "PCR1", "PCR2"):
    v = str(m.get(pcr, "")).lower()
    if not re.fullmatch(r"[0-9a-f]{96}", v):
        sys.exit(f"the EIF's measurements lack a 48-byte {pcr}")
    new[pcr] = v
if all(set(new[p]) == {"0"} for p in new):
    sys.exit("the EIF's PCR0-2 are all zero (a debug build?): attestation would prove nothing")
sets = [new]
try:
    for s in json.load(open(policy_path)).get("pcr_sets", []):
        if s != new and len(sets) < keep:
            sets.append(s)
except (OSError, ValueError):
    pass
with open(out, "w") as f:
    json.dump({"pcr_sets": sets}, f, indent=2)
    f.write("\n")
print(f"PCR0 {new['PCR0'][:16]}..., {len(sets)} set(s)")
PY
    ) || die "cannot write the PCR policy $PCR_POLICY"
    [[ ! -f "$PCR_POLICY" ]] || cp -p "$PCR_POLICY" "$PCR_POLICY.previous"
    chmod 644 "$tmp"
    mv -f "$tmp" "$PCR_POLICY"
    log "wrote $PCR_POLICY ($summary): the gateway (security.attestation_pcrs) and every client (--pcrs) pin it"
}

# ENCLAVE_IDS[i]: the EnclaveID of enclave i (started or kept), for lookups.
declare -A ENCLAVE_IDS=()
# STARTED_NAMES/IDS: enclaves this run started (terminated again on failure).
STARTED_NAMES=()
STARTED_IDS=()

# handle_existing MODE: enclaves already running under our names. new:
# refuse; replace: terminate them all; missing: keep the RUNNING ones among
# ids 0..NUM_ENCLAVES-1 (recorded in ENCLAVE_IDS), terminate the rest.
handle_existing() {
    local mode=$1 existing name id state
    existing=$(our_enclaves)
    [[ -z "$existing" ]] && return 0
    if [[ "$mode" == new ]]; then
        die "enclaves already running: $(echo "$existing" | awk '{ printf "%s%s", sep, $1; sep=", " }').
  Rerun with --missing to start only the enclaves that are not running (keygens on the
  running ones survive), with --replace to restart them all (every enclave gets a new
  key, so every existing keygen fails), or run '$0 stop' first."
    fi
    while read -r name id state; do
        local i=${name#"$ENCLAVE_NAME_PREFIX-"}
        if [[ "$mode" == missing && "$state" == RUNNING && "$i" =~ ^[0-9]+$ ]] &&
            ((10#$i < NUM_ENCLAVES)) && [[ -z "${ENCLAVE_IDS[$((10#$i))]:-}" ]]; then
            ENCLAVE_IDS[$((10#$i))]=$id
            log "keeping $name ($id): running"
        else
            terminate "$name" "$id"
        fi
    done <<< "$existing"
}

cleanup_started() {
    ((${#STARTED_NAMES[@]} > 0)) || return 0
    if [[ "$KEEP_ON_FAILURE" == 1 ]]; then
        log "KEEP_ON_FAILURE=1: leaving ${STARTED_NAMES[*]} running for debugging"
        return 0
    fi
    local i
    for i in "${!STARTED_NAMES[@]}"; do
        terminate "${STARTED_NAMES[$i]}" "${STARTED_IDS[$i]:-${STARTED_NAMES[$i]}}"
    done
}

fail_start() {
    log "ERROR: $*"
    cleanup_started
    exit 1
}

# run_enclave ID: start one enclave; records its name and EnclaveID.
run_enclave() {
    local i=$1 name="$ENCLAVE_NAME_PREFIX-$1" out="$WORK/run-$1.json" id
    # Never --debug-mode: it zeroes the PCRs, so attestation would be void
    # (the original tried debug mode first).
    local args=(run-enclave --eif-path "$EIF_PATH" --memory "$ENCLAVE_MEMORY"
        --cpu-count "$ENCLAVE_CPUS" --enclave-name "$name")
    [[ -z "$ENCLAVE_CID_BASE" ]] || args+=(--enclave-cid "$((ENCLAVE_CID_BASE + i))")
    log "starting $name: $NITRO_CLI ${args[*]}"
    if ! "$NITRO_CLI" "${args[@]}" > "$out" 2> "$WORK/run-$i.err"; then
        fail_start "nitro-cli run-enclave failed for $name: $(tail -n 5 "$WORK/run-$i.err" "$out" 2>/dev/null | tr '\n' ' ')
  Common causes: the allocator reserved too little memory or too few CPUs
  (/etc/nitro_enclaves/allocator.yaml, then systemctl restart nitro-enclaves-allocator),
  a corrupt EIF, or nitro-cli older than 1.2 (no --enclave-name). Logs: /var/log/nitro_enclaves/"
    fi
    # The EnclaveID identifies this enclave exactly, even if a stale one with
    # the same name exists; without it, fall back to the name.
    id=$("$PARSE_CIDS" -f "$out" id 2>/dev/null) || id=""
    STARTED_NAMES+=("$name")
    STARTED_IDS+=("$id")
    ENCLAVE_IDS[$i]=$id
}

# capture_cid ID: print the CID of enclave ID from describe-enclaves, retrying.
capture_cid() {
    local i=$1 name="$ENCLAVE_NAME_PREFIX-$1" key attempt cid
    key=${ENCLAVE_IDS[$i]:-$name}
    for ((attempt = 1; attempt <= CID_RETRIES; attempt++)); do
        describe "$WORK/describe.json"
        if cid=$("$PARSE_CIDS" -f "$WORK/describe.json" cid "$key" 2> "$WORK/parse.err"); then
            echo "$cid"
            return 0
        fi
        log "CID of $name not available yet (attempt $attempt/$CID_RETRIES): $(cat "$WORK/parse.err")"
        ((attempt == CID_RETRIES)) || sleep "$CID_RETRY_DELAY"
    done
    return 1
}

# write_env_file FILE CID...: the gateway's overrides, one CID per enclave id.
write_env_file() {
    local file=$1 i=0 cid
    shift
    {
        echo "# KeyMeld enclave CIDs, written by deploy/nitro/deploy.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)."
        echo "# EIF: $EIF_PATH; memory ${ENCLAVE_MEMORY} MiB, ${ENCLAVE_CPUS} vCPUs each."
        echo "# Read by keymeld-gateway.service (EnvironmentFile=); do not edit: rerun deploy.sh."
        echo "KEYMELD_ENVIRONMENT=production"
        for cid in "$@"; do
            echo "# enclave $i: $ENCLAVE_NAME_PREFIX-$i ${ENCLAVE_IDS[$i]:-}"
            echo "KEYMELD_ENCLAVE_${i}_CID=$cid"
            echo "KEYMELD_ENCLAVE_${i}_PORT=$PORT"
            i=$((i + 1))
        done
    } > "$file"
}

# install_env_file FILE: replace ENV_FILE atomically, keeping the old one
# as ENV_FILE.previous (to roll back: move it back and restart the unit).
install_env_file() {
    local dir tmp
    dir=$(dirname "$ENV_FILE")
    mkdir -p "$dir"
    tmp=$(mktemp "$dir/.enclaves.env.XXXXXX")
    cat "$1" > "$tmp"
    chmod 0644 "$tmp"
    [[ ! -f "$ENV_FILE" ]] || cp -p "$ENV_FILE" "$ENV_FILE.previous"
    mv -f "$tmp" "$ENV_FILE"
    log "wrote $ENV_FILE"
}

# Loads an env file into the environment of this shell (exported).
load_env_file() {
    set -a
    # shellcheck source=/dev/null
    . "$1"
    set +a
}

# config_check ENV: `keymeld config check` of CONFIG with the overrides in ENV.
config_check() {
    if [[ ! -x "$KEYMELD_BIN" ]]; then
        log "WARNING: $KEYMELD_BIN not installed: skipping 'keymeld config check'"
        return 0
    fi
    log "checking $CONFIG with the new CIDs"
    if ! (load_env_file "$1" && "$KEYMELD_BIN" config check --config "$CONFIG") > "$WORK/check.out" 2>&1; then
        cat "$WORK/check.out" >&2
        die "the gateway configuration is invalid with these CIDs (above); $ENV_FILE is unchanged and the enclaves keep running: fix $CONFIG and rerun with --missing"
    fi
    # Print the effective enclave addresses ("log actual CIDs used").
    grep -E '^  enclave [0-9]+:' "$WORK/check.out" >&2 || true
    # A template CID left in use means CONFIG lists an enclave this script
    # did not start: the gateway would talk to a CID that is not ours.
    if grep -q 'is a template value' "$WORK/check.out"; then
        grep 'is a template value' "$WORK/check.out" >&2
        die "$CONFIG lists more enclaves than NUM_ENCLAVES=$NUM_ENCLAVES started (above); $ENV_FILE is unchanged: set NUM_ENCLAVES to the number of enclaves in $CONFIG and rerun with --missing"
    fi
}

start_gateway() {
    case "$START_GATEWAY" in
        none)
            log "START_GATEWAY=none: start the gateway with: systemctl restart $SYSTEMD_UNIT"
            ;;
        systemd)
            log "restarting $SYSTEMD_UNIT"
            systemctl restart "$SYSTEMD_UNIT" ||
                die "systemctl restart $SYSTEMD_UNIT failed: journalctl -u $SYSTEMD_UNIT -n 50"
            [[ -z "$READY_URL" ]] || wait_ready
            ;;
        exec)
            [[ -x "$GATEWAY_BIN" ]] || die "$GATEWAY_BIN not found (GATEWAY_BIN)"
            log "starting $GATEWAY_BIN --config $CONFIG in the foreground"
            load_env_file "$ENV_FILE"
            rm -rf "$WORK"
            trap - EXIT
            exec "$GATEWAY_BIN" --config "$CONFIG"
            ;;
    esac
}

wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT))
    log "waiting for $READY_URL (every enclave reachable)"
    until curl -fsS -o /dev/null "$READY_URL"; do
        ((SECONDS < deadline)) ||
            die "$READY_URL not ready after ${READY_TIMEOUT}s: curl -s ${READY_URL%/ready}/detail; journalctl -u $SYSTEMD_UNIT"
        sleep 2
    done
    log "gateway ready"
}

# ---- commands -------------------------------------------------------------

cmd_start() {
    local mode=new i cid
    while (($# > 0)); do
        case "$1" in
            --replace) mode=replace ;;
            --missing) mode=missing ;;
            *) usage ;;
        esac
        shift
    done
    check_params
    [[ "$BUILD_EIF" != 1 ]] || build_eif
    [[ -r "$EIF_PATH" ]] || die "EIF $EIF_PATH not found: build it (BUILD_EIF=1, see deploy/README.md) or set EIF_PATH"
    handle_existing "$mode"
    write_pcr_policy

    for ((i = 0; i < NUM_ENCLAVES; i++)); do
        [[ -n "${ENCLAVE_IDS[$i]:-}" ]] || run_enclave "$i"
    done

    local cids=()
    for ((i = 0; i < NUM_ENCLAVES; i++)); do
        cid=$(capture_cid "$i") ||
            fail_start "no CID for $ENCLAVE_NAME_PREFIX-$i after $CID_RETRIES attempts (see above); nitro-cli describe-enclaves; nitro-cli console needs debug mode, so check /var/log/nitro_enclaves/"
        cids+=("$cid")
        log "enclave $i: $ENCLAVE_NAME_PREFIX-$i ${ENCLAVE_IDS[$i]:-} CID $cid port $PORT -> KEYMELD_ENCLAVE_${i}_CID=$cid"
    done
    # Distinct enclaves have distinct CIDs; a repeat means we read the wrong entry.
    [[ $(printf '%s\n' "${cids[@]}" | sort -u | wc -l) -eq $NUM_ENCLAVES ]] ||
        fail_start "duplicate CIDs read back (${cids[*]}): check nitro-cli describe-enclaves"
    log "Enclave CIDs: ${cids[*]}"

    # Check the gateway configuration with the new CIDs before replacing
    # the ones in use.
    write_env_file "$WORK/enclaves.env" "${cids[@]}"
    config_check "$WORK/enclaves.env"
    install_env_file "$WORK/enclaves.env"
    start_gateway
}

cmd_stop() {
    check_params
    if [[ "$START_GATEWAY" == systemd ]] && command -v systemctl >/dev/null 2>&1; then
        # The gateway first, so it drains while its enclaves still answer.
        log "stopping $SYSTEMD_UNIT"
        systemctl stop "$SYSTEMD_UNIT" || log "WARNING: systemctl stop $SYSTEMD_UNIT failed"
    fi
    local existing name id
    existing=$(our_enclaves)
    if [[ -z "$existing" ]]; then
        log "no $ENCLAVE_NAME_PREFIX-* enclaves running"
        return 0
    fi
    while read -r name id _; do
        terminate "$name" "$id"
    done <<< "$existing"
}

cmd_status() {
    check_params
    describe "$WORK/status.json"
    echo "enclaves (name, id, CID, state, flags):"
    "$PARSE_CIDS" -f "$WORK/status.json" list | sed 's/^/  /'
    if [[ -r "$ENV_FILE" ]]; then
        echo "$ENV_FILE:"
        grep -E '^KEYMELD_' "$ENV_FILE" | sed 's/^/  /'
        # Do the CIDs the gateway uses still belong to running enclaves?
        local i cid want
        for ((i = 0; i < NUM_ENCLAVES; i++)); do
            want=$(sed -n "s/^KEYMELD_ENCLAVE_${i}_CID=//p" "$ENV_FILE")
            cid=$("$PARSE_CIDS" -f "$WORK/status.json" cid "$ENCLAVE_NAME_PREFIX-$i" 2>&1) || cid="none ($cid)"
            [[ "$cid" == "$want" ]] ||
                echo "  MISMATCH: enclave $i runs with CID $cid but $ENV_FILE says ${want:-nothing}: rerun deploy.sh start --missing"
        done
    else
        echo "$ENV_FILE: missing (deploy.sh start writes it)"
    fi
    if command -v systemctl >/dev/null 2>&1; then
        echo "$SYSTEMD_UNIT: $(systemctl is-active "$SYSTEMD_UNIT" 2>/dev/null || true)"
    fi
}

cmd=${1:-start}
[[ $# -eq 0 ]] || shift
case "$cmd" in
    start) cmd_start "$@" ;;
    stop) [[ $# -eq 0 ]] || usage; cmd_stop ;;
    status) [[ $# -eq 0 ]] || usage; cmd_status ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ; exit 0 ;;
    *) usage ;;
esac
