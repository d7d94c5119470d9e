#!/usr/bin/env bash
# deploy.nitro_consistency: the Nitro files agree with config/production.yaml
# and with each other (tests/deploy/check_nitro.py: one enclave port in the
# config, the Dockerfile and deploy.sh; unit vs deploy.sh paths; systemd
# hardening), and fail when one is changed alone; the unit passes
# `systemd-analyze verify`; every Dockerfile's runtime stage installs the
# Debian package of every shared library its binaries link.
# The sed expressions below are literal text on purpose.
# shellcheck disable=SC2016
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SRC"

# ---- 1. check_nitro.py, on the tree and on mutants ------------------------
if out=$("$PYTHON3" tests/deploy/check_nitro.py "$SRC" 2>&1); then
    ok "$out"
else
    bad "check_nitro.py:"$'\n'"$out"
fi

# mutant NAME FILE SED_EXPR EXPECTED_MESSAGE
mutant() {
    local name=$1 file=$2 expr=$3 want=$4 dir="$TMP/$1" out
    mkdir -p "$dir"
    cp -r config deploy "$dir/"
    sed -i -e "$expr" "$dir/$file"
    if cmp -s "$file" "$dir/$file"; then
        bad "mutant $name: the edit changed nothing in $file"
        return
    fi
    if out=$("$PYTHON3" tests/deploy/check_nitro.py "$dir" 2>&1); then
        bad "mutant $name: check_nitro.py passed"
    else
        expect_contains "mutant $name is caught" "$want" "$out"
    fi
}
mutant eif_port_5000 deploy/nitro/Dockerfile 's/^ARG VSOCK_PORT=8000/ARG VSOCK_PORT=5000/' \
    "ARG VSOCK_PORT must default to 8000"
mutant config_port config/production.yaml 's/port: 8000/port: 9000/' \
    "ARG VSOCK_PORT must default to 9000"
mutant script_port deploy/nitro/deploy.sh 's/^PORT=${PORT:-8000}/PORT=${PORT:-5000}/' \
    "PORT must default to 8000"
mutant debug_mode deploy/nitro/deploy.sh 's/--cpu-count "$ENCLAVE_CPUS"/--cpu-count "$ENCLAVE_CPUS" --debug-mode/' \
    "deploy.sh: --debug-mode outside comments"
mutant num_enclaves deploy/nitro/deploy.sh 's/^NUM_ENCLAVES=${NUM_ENCLAVES:-3}/NUM_ENCLAVES=${NUM_ENCLAVES:-2}/' \
    "NUM_ENCLAVES must default to 3"
mutant unit_config deploy/nitro/keymeld-gateway.service 's#--config /etc/keymeld/production.yaml#--config /etc/keymeld/config.yaml#' \
    "ExecStart must pass --config /etc/keymeld/production.yaml"
mutant unit_env deploy/nitro/keymeld-gateway.service 's#^EnvironmentFile=/etc/keymeld/enclaves.env#EnvironmentFile=/etc/keymeld/cids.env#' \
    "EnvironmentFile must include /etc/keymeld/enclaves.env"
mutant unit_stop deploy/nitro/keymeld-gateway.service 's/^TimeoutStopSec=90s/TimeoutStopSec=10s/' \
    "TimeoutStopSec (10s) must exceed"
mutant unit_restart deploy/nitro/keymeld-gateway.service 's/^Restart=on-failure/Restart=no/' \
    "Restart=on-failure"
mutant unit_rw deploy/nitro/keymeld-gateway.service 's#^ReadWritePaths=.*#ReadWritePaths=/var/lib/keymeld#' \
    "ReadWritePaths must include /var/log/keymeld"
mutant unit_db_moved config/production.yaml 's#path: /var/lib/keymeld/keymeld.db#path: /srv/keymeld/keymeld.db#' \
    "ReadWritePaths must include /srv/keymeld"
mutant unit_root deploy/nitro/keymeld-gateway.service 's/^User=keymeld/User=root/' "must not run as root"
mutant unit_nonnp deploy/nitro/keymeld-gateway.service '/^NoNewPrivileges=yes/d' "NoNewPrivileges=yes"

# ---- 2. systemd-analyze verify --------------------------------------------
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify wants ExecStart to exist: point it at the built gateway.
    mkdir -p "$TMP/unit"
    sed "s#/usr/local/bin/keymeld-gateway#$BUILD/src/cmd/keymeld-gateway#" \
        deploy/nitro/keymeld-gateway.service > "$TMP/unit/keymeld-gateway.service"
    if out=$(systemd-analyze verify "$TMP/unit/keymeld-gateway.service" 2>&1) && [[ -z "$out" ]]; then
        ok "systemd-analyze verify keymeld-gateway.service: clean"
    else
        bad "systemd-analyze verify keymeld-gateway.service: $out"
    fi
else
    echo "note: systemd-analyze not installed: unit syntax not verified by systemd"
fi

# ---- 3. the images install what the binaries link ------------------------
# stage_packages DOCKERFILE STAGE: packages of `apt-get install` in STAGE
# ("final" = the unnamed last stage).
stage_packages() {
    awk -v want="$2" '
        /^FROM / { stage = (toupper($0) ~ / AS /) ? $NF : "final" }
        stage == want { print }' "$1" |
        sed -e ':a' -e '/\\$/N; s/\\\n//; ta' |
        grep -o 'apt-get install [^&]*' | tr ' ' '\n' |
        grep -vE '^(apt-get|install|-y|--no-install-recommends|)$' | sort -u
}

# needed_packages BINARY: Debian packages of its direct shared libraries.
needed_packages() {
    local lib path
    # libc and the dynamic loader come with every image (libc6).
    for lib in $(objdump -p "$1" | awk '$1 == "NEEDED" && $2 !~ /^(ld-linux|libc\.so)/ { print $2 }'); do
        path=$(ldd "$1" | awk -v l="$lib" '$1 == l && $2 == "=>" { print $3 }')
        [[ -n "$path" ]] || { echo "?$lib"; continue; }
        dpkg -S "$(realpath "$path")" 2>/dev/null | head -n 1 | cut -d: -f1
    done | grep -vE '^libc6$' | sort -u
}

check_image() {
    local dockerfile=$1 stage=$2 bin pkg have
    shift 2
    have=$(stage_packages "$dockerfile" "$stage")
    if [[ -z "$have" ]]; then
        bad "$dockerfile stage $stage: no apt-get install found"
        return
    fi
    for bin in "$@"; do
        if [[ ! -x "$BUILD/src/cmd/$bin" ]]; then
            bad "$BUILD/src/cmd/$bin not built"
            continue
        fi
        for pkg in $(needed_packages "$BUILD/src/cmd/$bin"); do
            if grep -qx "$pkg" <<< "$have"; then
                ok "$dockerfile [$stage]: $bin needs $pkg: installed"
            else
                bad "$dockerfile [$stage]: $bin links a library of $pkg, which the stage does not install ($have)"
            fi
        done
        if grep -q "/build/src/cmd/$bin" "$dockerfile"; then
            ok "$dockerfile: copies $bin"
        else
            bad "$dockerfile: does not copy $bin"
        fi
    done
}
need objdump "binutils, from build-essential"
check_image deploy/nitro/Dockerfile final keymeld-enclave
check_image deploy/docker/Dockerfile gateway keymeld-gateway keymeld
check_image deploy/docker/Dockerfile enclave keymeld-enclave

# The build stages install the -dev packages scripts/install-deps lists.
for dockerfile in deploy/nitro/Dockerfile deploy/docker/Dockerfile; do
    have=$(stage_packages "$dockerfile" build)
    for pkg in libsecp256k1-dev libssl-dev libsqlite3-dev libmicrohttpd-dev libjansson-dev \
        libyaml-dev libcurl4-openssl-dev cmake pkg-config; do
        if ! grep -qw -- "$pkg" scripts/install-deps; then
            bad "$pkg is no longer in scripts/install-deps: update this list and the Dockerfiles"
        elif grep -qx "$pkg" <<< "$have"; then
            ok "$dockerfile [build]: $pkg"
        else
            bad "$dockerfile [build]: $pkg missing"
        fi
    done
done

finish
