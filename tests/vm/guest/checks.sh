#!/bin/sh
# checks.sh - the VSock checks, run by /init inside the test guest, in
# /opt/keymeld/src (a copy of config/, scripts/ and the Makefile; the
# binaries are in /opt/keymeld/bin). docs/VSOCK.md lists what they prove.
#
# The seed's development topology over real AF_VSOCK: three enclaves on
# CID 2 ports 5000-5002, socat debug proxies TCP 9000-9002 ->
# VSOCK-CONNECT:2:500N, then the connections an operator makes. Each check
# prints one line:
#
#   KEYMELD-VM-CHECK: PASS <name>: <detail>
#   KEYMELD-VM-CHECK: FAIL <name>: <detail>      (followed by the logs)
#   KEYMELD-VM-CHECK: NOT-YET <name>: <reason>   (the product lacks the piece)
#
# Checks of pieces the product does not have yet (probed: `keymeld enclave
# ping --help`, `keymeld demo --help`, scripts/keymeld-dev) report NOT-YET
# and do not fail the run. Exit 0 when nothing failed; /tmp/summary holds
# the counts for the verdict line.

# Run by busybox ash: POSIX sh plus `local`, as dash.
# shellcheck shell=dash
# Functions passed to wait_for look unreachable to shellcheck.
# shellcheck disable=SC2317
set -u

npass=0
nfail=0
nnot=0
failed=""
t0=$(cut -d' ' -f1 /proc/uptime)

elapsed() { awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }'; }
pass() {
    npass=$((npass + 1))
    echo "KEYMELD-VM-CHECK: PASS $1: $2 [$(elapsed) s]"
}
fail() {
    nfail=$((nfail + 1))
    failed="$failed${failed:+, }$1"
    echo "KEYMELD-VM-CHECK: FAIL $1: $2 [$(elapsed) s]"
    # Crashes and kills show up only in the kernel log (print-fatal-signals).
    dmesg | grep -iE 'segfault|fatal signal|killed process|oom|trap|potentially unexpected' |
        tail -n 20 | sed 's/^/  dmesg: /'
}
notyet() {
    nnot=$((nnot + 1))
    echo "KEYMELD-VM-CHECK: NOT-YET $1: $2"
}
# Shows a file on the console, indented, for a failure's diagnosis.
show() {
    for f in "$@"; do
        echo "  ---- $f"
        sed 's/^/  | /' "$f" 2>/dev/null | tail -n 40
    done
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_for() {
    n=$(($1 * 10))
    shift
    while [ "$n" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}
# pk N: enclave N's public key, as its start-up log gave it.
pk() { cat "/tmp/pk.$1"; }
# exited PID: the child is gone or a zombie waiting to be reaped.
exited() { [ ! -e "/proc/$1/stat" ] || [ "$(cut -d' ' -f3 "/proc/$1/stat")" = Z ]; }
has_line() { grep -qF -- "$2" "$1"; }
tcp_listening() { netstat -ltn 2>/dev/null | grep -q "127.0.0.1:$1 "; }

# frame JSON: the wire form, a 4-byte big-endian length then the JSON
# (docs/TRANSPORT.md). ASCII only, so characters are bytes.
frame() {
    n=${#1}
    # shellcheck disable=SC2059 # the format is the four octal escapes
    printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((n >> 24 & 255)) $((n >> 16 & 255)) \
        $((n >> 8 & 255)) $((n & 255)))"
    printf '%s' "$1"
}

# public_info SOCAT-ADDRESS: sends get_public_info through socat and prints
# the enclave's public key from the reply; fails on anything else.
public_info() {
    req='{"v":1,"id":7,"command_id":"0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b","cmd":"get_public_info","args":{}}'
    frame "$req" | timeout 30 socat -t 10 -T 20 - "$1" >/tmp/reply 2>/tmp/reply.err || return 1
    tail -c +5 /tmp/reply | grep -q '"ok":true' || return 1
    tail -c +5 /tmp/reply | sed -n 's/.*"public_key":"\([0-9a-f]\{66\}\)".*/\1/p'
}

logs=/opt/keymeld/src/logs
proxy_logs=/tmp/keymeld-vsock-proxies
mkdir -p "$logs" "$proxy_logs"

# --- the kernel --------------------------------------------------------------

check_kernel() {
    if [ -c /dev/vsock ] && [ -d /sys/module/vsock_loopback ] &&
        [ ! -e /sys/module/vmw_vsock_virtio_transport ]; then
        pass kernel "$(uname -r): vsock + vsock_loopback loaded, /dev/vsock present, no guest-to-host transport"
    else
        fail kernel "vsock modules not as expected: $(lsmod | grep vsock | tr '\n' ' ')"
    fi
}

# --- enclaves on VSock CID 2, ports 5000-5002 (the seed's justfile) ----------

enclave_pids=""
# enclaves_listening: every enclave logged its listening line; also true as
# soon as one has exited (no point waiting), which the caller re-checks.
enclaves_listening() {
    for p in $enclave_pids; do
        exited "$p" && return 0
    done
    for i in 0 1 2; do
        has_line "$logs/enclave-$i.log" "VSock server listening on CID ANY, port $((5000 + i))" ||
            return 1
    done
}

start_enclaves() {
    for i in 0 1 2; do
        # TRANSPORT_MODE left unset: VSock is the enclave's default.
        ENCLAVE_CID=2 VSOCK_PORT=$((5000 + i)) ENCLAVE_ID=$i \
            keymeld-enclave >"$logs/enclave-$i.log" 2>&1 &
        enclave_pids="$enclave_pids $!"
    done
    ok=0
    wait_for 30 enclaves_listening
    for p in $enclave_pids; do
        exited "$p" && ok=2
    done
    [ $ok = 0 ] && enclaves_listening && ok=1
    for i in 0 1 2; do
        # Every later check compares against these keys.
        sed -n 's/.*enclave public key \([0-9a-f]\{66\}\) .*/\1/p' "$logs/enclave-$i.log" >"/tmp/pk.$i"
        [ -s "/tmp/pk.$i" ] || ok=3
    done
    if [ "$ok" = 1 ]; then
        pass enclaves "3 enclaves log 'VSock server listening on CID ANY, port 500N' (N=0..2)"
    else
        fail enclaves "an enclave did not log 'VSock server listening on CID ANY, port 500N'"
        show "$logs"/enclave-*.log
        return 1
    fi
    # What the enclave makes of its CID here (vsock_loopback only).
    grep -m1 -E 'local CID|ENCLAVE_CID' "$logs/enclave-0.log" | sed 's/^[^ ]* */  enclave-0.log: /'

}

# Raw protocol over AF_VSOCK, through socat as the seed's debugging section
# does (socat - VSOCK-CONNECT:2:5000), but with a real request.
check_vsock_connect() {
    for i in 0 1 2; do
        got=$(public_info "VSOCK-CONNECT:2:$((5000 + i))")
        want=$(pk "$i")
        if [ -z "$got" ] || [ "$got" != "$want" ]; then
            fail vsock-connect "get_public_info over VSOCK-CONNECT:2:$((5000 + i)): '$got', log says '$want'"
            show /tmp/reply.err "$logs/enclave-$i.log"
            return
        fi
    done
    pass vsock-connect "get_public_info over VSOCK-CONNECT:2:5000-5002 returns each enclave's logged public key"
}

# --- socat debug proxies TCP 900N -> VSOCK 2:500N ----------------------------

proxy_pids=""
start_proxies() {
    for i in 0 1 2; do
        # As scripts/keymeld-dev vsock-proxy start runs them (DESIGN.md §9).
        socat -d TCP-LISTEN:$((9000 + i)),bind=127.0.0.1,fork,reuseaddr \
            VSOCK-CONNECT:2:$((5000 + i)) >"$proxy_logs/proxy-$i.log" 2>&1 &
        proxy_pids="$proxy_pids $!"
    done
    for i in 0 1 2; do
        if ! wait_for 20 tcp_listening $((9000 + i)); then
            fail proxies "socat proxy on 127.0.0.1:$((9000 + i)) not listening"
            show "$proxy_logs/proxy-$i.log"
            return
        fi
    done
    for i in 0 1 2; do
        got=$(public_info "TCP:127.0.0.1:$((9000 + i))")
        want=$(pk "$i")
        if [ -z "$got" ] || [ "$got" != "$want" ]; then
            fail proxies "get_public_info through tcp://127.0.0.1:$((9000 + i)): '$got', expected '$want'"
            show /tmp/reply.err "$proxy_logs/proxy-$i.log"
            return
        fi
    done
    pass proxies "TCP 9000-9002 -> VSOCK-CONNECT:2:500N: same public keys as direct VSock"
}

# --- the failures the seed documents -----------------------------------------

check_enodev() {
    out=$(timeout 20 socat -T 5 - VSOCK-CONNECT:3:5000 </dev/null 2>&1)
    rc=$?
    if [ $rc -ne 0 ] && echo "$out" | grep -q "No such device"; then
        pass enodev-cid3 "VSOCK-CONNECT:3:5000 fails: $(echo "$out" | grep -o 'No such device.*' | head -n1)"
    else
        fail enodev-cid3 "VSOCK-CONNECT:3:5000: exit $rc, '$out'"
    fi
}

check_refused() {
    out=$(timeout 20 socat -T 5 - VSOCK-CONNECT:2:5009 </dev/null 2>&1)
    rc=$?
    if [ $rc -ne 0 ] && echo "$out" | grep -qE "Connection (reset by peer|refused)"; then
        pass refused-port "VSOCK-CONNECT:2:5009 (nothing listening) fails: $(echo "$out" |
            grep -oE 'Connection (reset by peer|refused)' | head -n1)"
    else
        fail refused-port "VSOCK-CONNECT:2:5009: exit $rc, '$out'"
    fi
}

# --- keymeld enclave ping -----------------------------------------------------

# ping_expect NAME ADDRESS WANT_RC PATTERN...: runs `keymeld enclave ping
# ADDRESS` and requires the exit status (0 or nonzero) and every pattern
# (fixed strings) in its output.
ping_expect() {
    local name="$1" addr="$2" want_rc="$3" out rc p
    shift 3
    out=$(timeout 60 keymeld enclave ping "$addr" 2>&1)
    rc=$?
    last_out=$out
    if { [ "$want_rc" = 0 ] && [ $rc -ne 0 ]; } || { [ "$want_rc" != 0 ] && [ $rc -eq 0 ]; }; then
        fail "$name" "keymeld enclave ping $addr: exit $rc"
        echo "$out" | sed 's/^/  | /'
        return 1
    fi
    for p in "$@"; do
        if ! echo "$out" | grep -qF -- "$p"; then
            fail "$name" "keymeld enclave ping $addr: no '$p' in the output"
            echo "$out" | sed 's/^/  | /'
            return 1
        fi
    done
    return 0
}

check_cli_ping() {
    if ! keymeld enclave ping --help >/dev/null 2>&1; then
        notyet cli-ping "keymeld enclave ping does not exist yet"
        return
    fi
    ok=1
    for i in 0 1 2; do
        want=$(pk "$i")
        ping_expect ping-vsock "vsock://2:$((5000 + i))" 0 "$want" || ok=0
        [ $i = 0 ] && echo "$last_out" | grep -m1 '^pong' | sed 's/^/  /'
        ping_expect ping-tcp-proxy "tcp://127.0.0.1:$((9000 + i))" 0 "$want" || ok=0
        [ $i = 0 ] && echo "$last_out" | grep -m1 '^pong' | sed 's/^/  /'
    done
    [ $ok = 1 ] && pass ping "vsock://2:500N and tcp://127.0.0.1:900N answer with the same public key"

    if ping_expect ping-enodev vsock://3:5000 1 "Command failed to CID 3:5000" \
        "No such device (os error 19)" "hint:" "use CID 2"; then
        pass ping-enodev "vsock://3:5000: $(echo "$last_out" | grep -m1 'os error 19')"
        echo "$last_out" | grep -m1 'hint:' | sed 's/^/  /'
    fi
    if ping_expect ping-refused vsock://2:5009 1 "Command failed to CID 2:5009" "hint:"; then
        if echo "$last_out" | grep -qE "Connection (reset by peer|refused) \(os error (104|111)\)"; then
            pass ping-refused "vsock://2:5009: $(echo "$last_out" | grep -m1 -oE 'Connection.*os error [0-9]+\)')"
        else
            fail ping-refused "vsock://2:5009: no connection reset/refused message"
            echo "$last_out" | sed 's/^/  | /'
        fi
    fi
}

# --- the gateway over VSock, and the demo ---------------------------------------

gateway_pid=""
# gateway_ready: /health/ready answers 200; gives up (true) once the
# gateway has exited, and then /tmp/ready is missing.
gateway_ready() {
    rm -f /tmp/ready
    wget -q -O /tmp/ready http://127.0.0.1:8090/health/ready && return 0
    exited "$gateway_pid"
}

check_gateway() {
    rm -rf data
    keymeld-gateway --config config/development.yaml >"$logs/gateway.log" 2>&1 &
    gateway_pid=$!
    if wait_for 60 gateway_ready && [ -f /tmp/ready ]; then
        pass gateway "config/development.yaml (VSock, CID 2): /health/ready says $(cat /tmp/ready)"
        grep -E ' enclave [0-9]+: ' "$logs/gateway.log" | sed 's/^[^ ]* */  gateway.log: /'
    else
        fail gateway "not ready within 60 s, or exited"
        wget -q -O - http://127.0.0.1:8090/health/ready 2>&1 | sed 's/^/  | /'
        show "$logs/gateway.log"
        return 1
    fi
}

check_demo() {
    if ! keymeld demo --help >/dev/null 2>&1; then
        notyet demo "keymeld demo does not exist yet"
        return
    fi
    # This guest tests VSock, not attestation: its enclaves run without it.
    out=$(timeout 120 keymeld demo --gateway http://127.0.0.1:8090 --insecure-skip-attestation 2>&1)
    rc=$?
    if [ $rc -eq 0 ] && echo "$out" | grep -qi "verified"; then
        pass demo "keymeld demo: $(echo "$out" | grep -i -m1 'verified')"
    else
        fail demo "keymeld demo: exit $rc"
        echo "$out" | sed 's/^/  | /' | tail -n 40
        show "$logs/gateway.log"
    fi
}

# stop_all: SIGTERM to everything started above; enclaves and gateway must
# exit 0 (graceful shutdown) within 20 s.
stop_all() {
    for p in $proxy_pids; do kill "$p" 2>/dev/null; done
    ok=1
    for p in $gateway_pid $enclave_pids; do
        kill "$p" 2>/dev/null
    done
    for p in $gateway_pid $enclave_pids; do
        if ! wait_for 20 exited "$p"; then
            kill -9 "$p" 2>/dev/null
            echo "  pid $p still running 20 s after SIGTERM: killed"
        fi
        wait "$p"
        rc=$?
        [ $rc -eq 0 ] || { ok=0; echo "  pid $p exited $rc"; }
    done
    for p in $proxy_pids; do wait "$p" 2>/dev/null; done
    if [ $ok = 1 ]; then
        pass shutdown "gateway and enclaves exit 0 on SIGTERM"
    else
        fail shutdown "a process did not exit cleanly on SIGTERM"
        show "$logs"/enclave-*.log "$logs/gateway.log"
    fi
    proxy_pids="" gateway_pid="" enclave_pids=""
}

# --- the dev script's transport detection --------------------------------------

# dev_start NAME: `make start` (the binaries are prebuilt: -o build keeps
# make from running cmake, which the guest does not have), or
# scripts/keymeld-dev start when make or the target is missing. Output in
# /tmp/dev-start.out.
dev_start() {
    if command -v make >/dev/null 2>&1 && grep -q '^start:' Makefile 2>/dev/null; then
        dev_cmd="make -o build start"
    else
        dev_cmd="scripts/keymeld-dev start"
    fi
    # shellcheck disable=SC2086 # a command and its arguments
    timeout 90 $dev_cmd >/tmp/dev-start.out 2>&1
}

dev_stop() {
    timeout 60 scripts/keymeld-dev stop >/tmp/dev-stop.out 2>&1 ||
        { fail "$1" "scripts/keymeld-dev stop failed"; show /tmp/dev-stop.out; return 1; }
    for f in run/*.pid /tmp/keymeld-vsock-proxies/*.pid; do
        [ -e "$f" ] && { fail "$1" "$f left behind by stop"; return 1; }
    done
    return 0
}

# The dev stack must choose VSock by itself here (vsock_loopback, no
# guest-to-host transport), and TCP once vsock_loopback is gone.
check_dev_script() {
    if [ ! -x scripts/keymeld-dev ]; then
        notyet dev-vsock "scripts/keymeld-dev does not exist yet"
        return
    fi
    rm -rf logs data run
    unset KEYMELD_DEV_TRANSPORT
    if ! dev_start; then
        fail dev-vsock "$dev_cmd failed"
        show /tmp/dev-start.out logs/*.log
        dev_stop dev-vsock
        return
    fi
    ok=1
    grep -q "Transport: VSock" /tmp/dev-start.out || ok=0
    for i in 0 1 2; do
        has_line "logs/enclave-$i.log" "VSock server listening on CID ANY, port $((5000 + i))" || ok=0
        has_line "$proxy_logs/proxy-$i.log" "listening on" || ok=0
    done
    wget -q -O /dev/null http://127.0.0.1:8090/health/ready || ok=0
    if [ $ok = 1 ] && keymeld enclave ping --help >/dev/null 2>&1; then
        ping_expect dev-vsock tcp://127.0.0.1:9001 0 "$(sed -n 's/.*enclave public key \([0-9a-f]*\) .*/\1/p' logs/enclave-1.log)" || ok=0
    fi
    if [ $ok = 1 ] && ! timeout 30 scripts/keymeld-dev status >/tmp/dev-status.out 2>&1; then
        ok=0
        echo "  scripts/keymeld-dev status failed"
        show /tmp/dev-status.out
    fi
    if [ $ok = 1 ]; then
        pass dev-vsock "$dev_cmd chose VSock: $(grep -m1 'Transport:' /tmp/dev-start.out)"
    else
        fail dev-vsock "$dev_cmd did not bring up the VSock stack"
        show /tmp/dev-start.out logs/*.log
    fi
    dev_stop dev-vsock || return

    # Without vsock_loopback the same command must fall back to TCP. The
    # module stays busy while the stopped stack's sockets finish closing
    # (a closing VSock socket may linger up to the kernel's 8 s close
    # timeout), so retry for a while.
    local tries=0
    until rmmod vsock_loopback 2>/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -ge 60 ]; then
            fail dev-tcp "cannot unload vsock_loopback: $(rmmod vsock_loopback 2>&1)"
            return
        fi
        sleep 0.25
    done
    rm -rf logs data run
    if dev_start && grep -q "Transport: TCP" /tmp/dev-start.out &&
        has_line logs/enclave-0.log "TCP server listening on 127.0.0.1:5000" &&
        wget -q -O /dev/null http://127.0.0.1:8090/health/ready; then
        pass dev-tcp "without vsock_loopback: $(grep -m1 'Transport:' /tmp/dev-start.out)"
    else
        fail dev-tcp "$dev_cmd without vsock_loopback did not fall back to TCP"
        show /tmp/dev-start.out logs/*.log
    fi
    dev_stop dev-tcp
    insmod /lib/modules/vsock/vsock_loopback.ko
}

finish() {
    echo "$npass passed, $nfail failed${failed:+ ($failed)}, $nnot not yet supported" >/tmp/summary
    echo "KEYMELD-VM-SUMMARY: $(cat /tmp/summary) in $(elapsed) s"
    [ $nfail -eq 0 ]
    exit
}

check_kernel
start_enclaves || finish # nothing else can work without them
check_vsock_connect
start_proxies
check_enodev
check_refused
check_cli_ping
check_gateway && check_demo
stop_all
check_dev_script
finish
