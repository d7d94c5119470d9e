#!/usr/bin/env bash
# parse-cids.sh - find enclave CIDs in `nitro-cli describe-enclaves` output.
#
# AWS assigns each Nitro enclave its CID when it starts, so the gateway's
# KEYMELD_ENCLAVE_<N>_CID must be read back from nitro-cli (the seed: "never
# hardcode CIDs"). This script is the one place that reads nitro-cli's JSON;
# deploy.sh calls it, and tests/deploy runs it on recorded samples in
# deploy/nitro/testdata/.
#
#   parse-cids.sh [-f FILE] cid NAME_OR_ID
#       Print the CID of the RUNNING enclave whose EnclaveName or EnclaveID is
#       NAME_OR_ID.
#   parse-cids.sh [-f FILE] env PREFIX COUNT
#       Print KEYMELD_ENCLAVE_<i>_CID=<cid> for the enclaves named
#       PREFIX-0 .. PREFIX-<COUNT-1> (the names deploy.sh gives them).
#   parse-cids.sh [-f FILE] id
#       Print the EnclaveID from `nitro-cli run-enclave` output (one object).
#   parse-cids.sh [-f FILE] list
#       Print one line per enclave: name, id, CID, state, flags (tab-separated).
#
# Input: FILE, or standard input. Either a JSON array (describe-enclaves) or
# a single object (run-enclave). The CID is read from "EnclaveCID" (what
# nitro-cli prints) or "ContextId" (older documentation and the seed's
# script); the name from "EnclaveName" (nitro-cli 1.2 and later only; older
# versions print no names, so look those enclaves up by EnclaveID).
#
# JSON is read with jq when it is installed, else with python3 (Amazon Linux
# ships it); PARSE_CIDS_TOOL=jq|python3 forces one.
#
# Exit status: 0 found; 1 not found, not running, no or invalid CID, or more
# than one match (the message says which and what to do); 2 usage error or
# input that is not nitro-cli JSON.
set -euo pipefail

PROG=parse-cids.sh

die_usage() {
    echo "$PROG: $*" >&2
    echo "usage: $PROG [-f FILE] cid NAME_OR_ID | env PREFIX COUNT | id | list" >&2
    exit 2
}

# to_tsv: nitro-cli JSON on stdin -> one line per enclave: name, id, CID,
# state, flags, separated by US (0x1f: not whitespace, so `read` keeps empty
# fields, which a tab would not). Missing fields become empty strings; a CID
# that is not a JSON integer is passed through as text for the caller to
# reject.
to_tsv_jq() {
    jq -r '
        (if type == "array" then .[]
         elif type == "object" then .
         else error("expected a JSON array or object, got \(type)") end)
        | if type != "object" then error("array element is \(type), not an object") else . end
        | [ (.EnclaveName // "" | tostring),
            (.EnclaveID // .EnclaveId // "" | tostring),
            (.EnclaveCID // .ContextId // "" | tostring),
            (.State // "" | tostring),
            (.Flags // "" | tostring) ]
        | map(gsub("[\u001f\n\r]"; " "))
        | join("\u001f")'
}

to_tsv_python3() {
    python3 -c '
import json, sys
try:
    data = json.load(sys.stdin)
except ValueError as e:
    sys.exit("invalid JSON: %s" % e)
if isinstance(data, dict):
    data = [data]
if not isinstance(data, list):
    sys.exit("expected a JSON array or object, got %s" % type(data).__name__)
def text(v):
    if v is None or v is False:
        return ""
    if v is True:
        return "true"
    return str(v).replace("\x1f", " ").replace("\n", " ").replace("\r", " ")
for e in data:
    if not isinstance(e, dict):
        sys.exit("array element is %s, not an object" % type(e).__name__)
    def first(*keys):
        for k in keys:
            if e.get(k) is not None and e.get(k) is not False:
                return e[k]
        return None
    row = [first("EnclaveName"), first("EnclaveID", "EnclaveId"),
           first("EnclaveCID", "ContextId"), first("State"), first("Flags")]
    print("\x1f".join(text(v) for v in row))
'
}

to_tsv() {
    local tool=${PARSE_CIDS_TOOL:-}
    if [[ -z "$tool" ]]; then
        if command -v jq >/dev/null 2>&1; then tool=jq; else tool=python3; fi
    fi
    case "$tool" in
        jq) command -v jq >/dev/null 2>&1 || die_usage "jq is not installed" ;;
        python3) command -v python3 >/dev/null 2>&1 ||
            die_usage "neither jq nor python3 is installed: install jq (Amazon Linux: dnf install jq)" ;;
        *) die_usage "PARSE_CIDS_TOOL must be jq or python3, not '$tool'" ;;
    esac
    # Read the whole input first: empty output from nitro-cli means it
    # failed, which is not the same as "no enclaves" ([]).
    local json out errf
    json=$(cat "$INPUT")
    if [[ -z "${json//[[:space:]]/}" ]]; then
        echo "$PROG: $INPUT_NAME is empty, not nitro-cli JSON (did nitro-cli fail?)" >&2
        exit 2
    fi
    errf=$(mktemp)
    if ! out=$("to_tsv_$tool" <<< "$json" 2> "$errf"); then
        echo "$PROG: $INPUT_NAME is not nitro-cli JSON: $(tail -n 1 "$errf")" >&2
        rm -f "$errf"
        exit 2
    fi
    rm -f "$errf"
    printf '%s' "$out"
}

# A CID is a decimal integer >= 4: 0 and 1 are reserved, 2 is the host, and
# on Nitro the parent instance is 3, so an enclave never has one of those.
check_cid() {
    local who=$1 cid=$2
    if [[ -z "$cid" ]]; then
        echo "$PROG: enclave $who has no EnclaveCID (or ContextId) in $INPUT_NAME" >&2
        return 1
    fi
    if ! [[ "$cid" =~ ^[0-9]{1,10}$ ]] || ((10#$cid > 4294967294)); then
        echo "$PROG: enclave $who has an invalid CID '$cid' in $INPUT_NAME" >&2
        return 1
    fi
    if ((10#$cid < 4)); then
        echo "$PROG: enclave $who reports CID $cid, which is reserved (0-1), the host (2) or the parent instance (3): not an enclave CID" >&2
        return 1
    fi
}

# find_cid KEY: print the CID of the one running enclave named or id'd KEY.
find_cid() {
    local key=$1 name id cid state flags matches=0 found_cid="" found_state="" found_flags=""
    local seen=""
    while IFS=$'\x1f' read -r name id cid state flags; do
        [[ -z "$name$id$cid$state" ]] && continue
        seen+="${seen:+, }${name:-(no name)} [${id:-no id}] CID ${cid:-?} ${state:-(no state)}"
        if [[ "$name" == "$key" || "$id" == "$key" ]]; then
            matches=$((matches + 1))
            found_cid=$cid
            found_state=$state
            found_flags=$flags
        fi
    done <<< "$TSV"
    if ((matches == 0)); then
        if [[ -z "$seen" ]]; then
            echo "$PROG: enclave $key not found: no enclaves are running ($INPUT_NAME lists none); did nitro-cli run-enclave fail? see its output and /var/log/nitro_enclaves/" >&2
        else
            echo "$PROG: enclave $key not found in $INPUT_NAME; running: $seen" >&2
        fi
        return 1
    fi
    if ((matches > 1)); then
        echo "$PROG: $matches enclaves match $key in $INPUT_NAME ($seen): terminate the stale one (nitro-cli terminate-enclave --enclave-id ID)" >&2
        return 1
    fi
    # Older nitro-cli versions print no State; only reject a state we know.
    if [[ -n "$found_state" && "$found_state" != "RUNNING" ]]; then
        echo "$PROG: enclave $key is $found_state, not RUNNING (CID ${found_cid:-?}); check nitro-cli console or /var/log/nitro_enclaves/" >&2
        return 1
    fi
    # A debug-mode enclave has all-zero PCRs, so attestation means nothing;
    # deploy.sh never starts one (the original tried --debug-mode first).
    if [[ "$found_flags" == *DEBUG_MODE* && "${PARSE_CIDS_ALLOW_DEBUG:-0}" != 1 ]]; then
        echo "$PROG: enclave $key runs in debug mode (Flags $found_flags): its PCRs are zero and attestation is void; terminate it and start it without debug mode (PARSE_CIDS_ALLOW_DEBUG=1 accepts it for a test)" >&2
        return 1
    fi
    check_cid "$key" "$found_cid" || return 1
    echo "$((10#$found_cid))"
}

INPUT=/dev/stdin
INPUT_NAME="standard input"
if [[ "${1:-}" == "-f" ]]; then
    [[ $# -ge 2 ]] || die_usage "-f needs a FILE"
    INPUT=$2
    INPUT_NAME=$2
    [[ -r "$INPUT" ]] || die_usage "cannot read $INPUT"
    shift 2
fi
[[ $# -ge 1 ]] || die_usage "missing command"
cmd=$1
shift

case "$cmd" in
    cid)
        [[ $# -eq 1 && -n "$1" ]] || die_usage "cid takes one NAME_OR_ID"
        TSV=$(to_tsv)
        find_cid "$1"
        ;;
    env)
        [[ $# -eq 2 && -n "$1" ]] || die_usage "env takes PREFIX COUNT"
        [[ "$2" =~ ^[1-9][0-9]{0,1}$ ]] || die_usage "COUNT must be 1..99, not '$2'"
        TSV=$(to_tsv)
        status=0
        lines=()
        for ((i = 0; i < $2; i++)); do
            if cid=$(find_cid "$1-$i"); then
                lines+=("KEYMELD_ENCLAVE_${i}_CID=$cid")
            else
                status=1
            fi
        done
        # All or nothing: a partial list would start a gateway with a
        # template CID for the missing enclave.
        ((status == 0)) || exit 1
        printf '%s\n' "${lines[@]}"
        ;;
    id)
        [[ $# -eq 0 ]] || die_usage "id takes no argument"
        TSV=$(to_tsv)
        n=0
        id=""
        while IFS=$'\x1f' read -r _ eid _ _ _; do
            [[ -z "$eid" ]] && continue
            n=$((n + 1))
            id=$eid
        done <<< "$TSV"
        if ((n != 1)); then
            echo "$PROG: expected one EnclaveID in $INPUT_NAME (nitro-cli run-enclave output), found $n" >&2
            exit 1
        fi
        echo "$id"
        ;;
    list)
        [[ $# -eq 0 ]] || die_usage "list takes no argument"
        TSV=$(to_tsv)
        [[ -z "$TSV" ]] || printf '%s\n' "${TSV//$'\x1f'/$'\t'}"
        ;;
    *)
        die_usage "unknown command '$cmd'"
        ;;
esac
