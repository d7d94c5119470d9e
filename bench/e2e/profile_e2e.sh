#!/usr/bin/env bash
# profile_e2e.sh - where the CPU of an end-to-end signing goes, by process
# and by library (docs/PERFORMANCE.md, "Where the CPU goes").
#
#   bench/e2e/profile_e2e.sh [seconds] [clients] [bench_e2e options...]
#
# Runs bench_e2e (SQLite, one gateway, `clients` clients in flight; 8 by
# default) from build-bench and samples every CPU with `perf record -a`
# for `seconds` (6 by default) while the clients sign. Each sample is
# counted for the process it hit (gateway, enclaves, client) and for the
# library its instruction pointer was in (the leaf: time in libc's malloc
# called by jansson counts as libc). Prints each process's share of the
# busy samples split by library, and the idle share. Needs perf (Debian's
# linux-perf) and a Release tree: cmake -S . -B build-bench
# -DCMAKE_BUILD_TYPE=Release -DKM_BUILD_TESTS=OFF && cmake --build build-bench
#
# Extra arguments go to bench_e2e (--batch 100, say). KEEP=1 keeps the
# perf data and prints its directory; TOP=N also prints the N hottest
# symbols of each process.
set -euo pipefail

seconds=${1:-6}
clients=${2:-8}
shift $(($# < 2 ? $# : 2))
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$root/build-bench/bench/e2e/bench_e2e
command -v perf > /dev/null || { echo "profile_e2e: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
[ -x "$bench" ] || { echo "profile_e2e: $bench is missing: build build-bench first (see the header)" >&2; exit 1; }

out=$(mktemp -d /tmp/km-profile.XXXXXX)
cleanup() {
    if [ -n "${bench_pid:-}" ]; then kill "$bench_pid" 2> /dev/null || true; fi
    wait 2> /dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then echo "perf data kept in $out"; else rm -rf "$out"; fi
}
trap cleanup EXIT

# The case runs long enough to cover the stack's start (a few seconds),
# the warm-up and the sampled window.
(cd "$root" && KEYMELD_TEST_BUILD_DIR=build-bench stdbuf -oL "$bench" $((seconds + 12)) --backends sqlite \
    --clients "$clients" "$@" > "$out/bench.txt" 2>&1) &
bench_pid=$!
# Sample once the clients are signing: the bench prints its table header
# when the stack is up; the first two seconds after it are warm-up.
for _ in $(seq 1 300); do
    grep -q '^clients' "$out/bench.txt" 2> /dev/null && break
    kill -0 "$bench_pid" 2> /dev/null || { cat "$out/bench.txt" >&2; exit 1; }
    sleep 0.1
done
sleep 2
perf record -a -F 999 -o "$out/perf.data" -- sleep "$seconds" > "$out/perf.log" 2>&1
wait "$bench_pid" || { cat "$out/bench.txt" >&2; exit 1; }
bench_pid=

perf report -i "$out/perf.data" --sort comm,dso -g none --stdio --percent-limit 0 2> /dev/null |
    awk '
    /^#/ || NF < 3 { next }
    {
        pct = $1; sub("%", "", pct); comm = $2; dso = $3
        if (comm == "keymeld-gateway" || comm == "MHD-connection") proc = "gateway"
        else if (comm == "keymeld-enclave") proc = "enclaves"
        else if (comm == "bench_e2e") proc = "client"
        else if (comm == "swapper") proc = "idle"
        else proc = "other"
        if (dso ~ /secp256k1/) lib = "secp256k1"
        else if (dso ~ /jansson/) lib = "jansson"
        else if (dso ~ /sqlite/) lib = "sqlite"
        else if (dso ~ /kernel/) lib = "kernel"
        else if (dso ~ /^libc\.so/) lib = "libc"
        else if (dso ~ /libcrypto|libssl/) lib = "openssl"
        else if (dso ~ /microhttpd|curl/) lib = "http"
        else if (dso ~ /keymeld|bench_e2e/) lib = "own"
        else lib = "other"
        share[proc, lib] += pct; total[proc] += pct
        if (proc != "idle") busy += pct
    }
    END {
        n = split("secp256k1 jansson sqlite openssl http libc own kernel other", libs, " ")
        printf "%-9s %6s", "process", "busy%"
        for (i = 1; i <= n; i++) printf " %9s", libs[i]
        printf "\n"
        m = split("gateway enclaves client other", procs, " ")
        for (j = 1; j <= m; j++) {
            p = procs[j]
            if (total[p] == 0) continue
            printf "%-9s %6.1f", p, 100 * total[p] / busy
            for (i = 1; i <= n; i++) printf " %8.1f%%", 100 * share[p, libs[i]] / total[p]
            printf "\n"
        }
        printf "idle: %.1f%% of all samples (2 cores: 50%% is one core idle)\n", total["idle"]
        printf "(each row: its share of the busy samples, then how its own samples split by library)\n"
    }'
grep -E '^clients|^[0-9]' "$out/bench.txt" | sed 's/^/bench: /'

if [ -n "${TOP:-}" ]; then
    for c in keymeld-gateway,MHD-connection keymeld-enclave bench_e2e; do
        echo "== hottest symbols of $c"
        perf report -i "$out/perf.data" --comm "$c" --sort dso,sym -g none --stdio 2> /dev/null |
            grep -v '^#' | grep -v '^$' | head -n "$TOP"
    done
fi
