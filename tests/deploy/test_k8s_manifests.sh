#!/usr/bin/env bash
# deploy.k8s_manifests: tests/deploy/check_k8s.py passes on deploy/k8s (the
# vsock and simulation variants on SQLite, postgres and postgres-external on
# PostgreSQL; also as `kubectl kustomize` renders them when kubectl is
# installed, and with `keymeld config check` on the gateway's env), and
# fails, naming the problem, on copies with one deliberate mistake each.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SRC"

CHECK=(tests/deploy/check_k8s.py)
KEYMELD=$BUILD/src/cmd/keymeld
if [[ ! -x "$KEYMELD" ]]; then
    bad "$KEYMELD not built"
    finish
fi

# 1. The real manifests.
if out=$("$PYTHON3" "${CHECK[@]}" "$SRC" --keymeld "$KEYMELD" 2>&1); then
    ok "check_k8s.py on deploy/k8s: ${out##*$'\n'}"
else
    bad "check_k8s.py on deploy/k8s:"$'\n'"$out"
fi
echo "$out" | grep -E '^(config check|check_k8s):' || true

# 2. Mutants: copy config/ and deploy/, break one thing, expect that failure.
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
    if out=$("$PYTHON3" "${CHECK[@]}" "$dir" --kubectl "" 2>&1); then
        bad "mutant $name: check_k8s.py passed"
    else
        expect_contains "mutant $name is caught" "$want" "$out"
    fi
}

mutant readiness_path deploy/k8s/base/gateway.yaml \
    's#path: /health/ready#path: /health#' "readiness probe must GET /health/ready"
mutant liveness_on_api deploy/k8s/base/gateway.yaml \
    '/livenessProbe:/,/path:/ s#path: /health$#path: /api/v1/health/ready#' \
    "liveness probe must GET /health"
mutant probe_port deploy/k8s/base/gateway.yaml \
    '/readinessProbe:/,/port:/ s#port: 8090#port: 8080#' "readiness probe port 8080 is not 8090"
mutant service_links deploy/k8s/base/gateway.yaml \
    '/enableServiceLinks: false/d' "enableServiceLinks must be false"
mutant two_gateways deploy/k8s/base/gateway.yaml \
    '0,/replicas: 1/ s//replicas: 2/' "replicas must be 1"
mutant rolling_gateway deploy/k8s/base/gateway.yaml \
    '0,/type: Recreate/ s//type: RollingUpdate/' "strategy must be Recreate"
mutant tcp_host deploy/k8s/base/gateway.yaml \
    's#value: "keymeld-enclave-1"#value: "keymeld-enclave1"#' "KEYMELD_ENCLAVE_1_TCP_HOST must be"
mutant config_path deploy/k8s/base/gateway.yaml \
    's#value: /etc/keymeld/development-k8s.yaml#value: /etc/keymeld/config.yaml#' \
    "ConfigMap keymeld-gateway-config key config.yaml differs"
mutant db_on_image deploy/k8s/base/gateway.yaml \
    's#value: /var/lib/keymeld/keymeld.db#value: /data/keymeld.db#' "is not on a PersistentVolumeClaim"
mutant config_copy deploy/k8s/base/development-k8s.yaml \
    's#level: info#level: debug#' "differs from config/development-k8s.yaml"
mutant selector deploy/k8s/base/enclave-services.yaml \
    's#app: keymeld-enclave-2#app: keymeld-enclave-02#' "keymeld-enclave-2: the Service does not select"
mutant sidecar_cid deploy/k8s/vsock/enclaves.yaml \
    '0,/"VSOCK-CONNECT:3:5000"/ s//"VSOCK-CONNECT:4:5000"/' "sidecar args must be"
mutant sidecar_nofork deploy/k8s/vsock/enclaves.yaml \
    's#TCP-LISTEN:5000,fork,reuseaddr#TCP-LISTEN:5000,reuseaddr#' "sidecar args must be"
mutant seccomp deploy/k8s/vsock/enclaves.yaml \
    '0,/type: Unconfined/ s//type: RuntimeDefault/' "needs a seccomp profile that allows AF_VSOCK"
mutant enclave_id deploy/k8s/simulation/enclaves.yaml \
    '0,/value: "0"$/ s//value: "7"/' "ENCLAVE_ID must be 0"
mutant sim_localhost deploy/k8s/simulation/enclaves.yaml \
    's#value: "0.0.0.0"#value: "127.0.0.1"#' "TCP_HOST must be 0.0.0.0"
mutant typo deploy/k8s/simulation/enclaves.yaml \
    '0,/readinessProbe:/ s//readinesProbe:/' "unknown field 'readinesProbe'"
mutant wrong_type deploy/k8s/base/gateway.yaml \
    's#periodSeconds: 2#periodSeconds: "2"#' "expected int"
mutant missing_required deploy/k8s/base/gateway.yaml \
    '/^  selector:$/,+2d' "Invalid value for \`selector\`, must not be \`None\`"

# Several gateways on PostgreSQL (deploy/k8s/postgres, postgres-external and
# the component they share).
PGC=deploy/k8s/components/gateway-postgres
mutant pg_one_gateway $PGC/gateway-patch.yaml \
    '0,/value: 2$/ s//value: 1/' "Deployment keymeld-gateway: replicas must be 2"
mutant pg_rollout_drops $PGC/gateway-patch.yaml \
    's#maxUnavailable: 0#maxUnavailable: 1#' "strategy must be RollingUpdate with maxUnavailable 0"
mutant pg_url_inline $PGC/gateway-patch.yaml \
    '/name: KEYMELD_DATABASE_URL/,/key: url/ { s#valueFrom:#value: "postgresql://keymeld@db:5432/keymeld"#; /secretKeyRef:\|name: keymeld-database\|key: url/d }' \
    "KEYMELD_DATABASE_URL must come from a Secret"
mutant pg_no_pdb $PGC/kustomization.yaml \
    '/- pdb.yaml/d' "one PodDisruptionBudget must select the gateway pods, found 0"
mutant pg_pdb_all $PGC/pdb.yaml \
    's#minAvailable: 1#minAvailable: 2#' "must say minAvailable 1"
mutant pg_sqlite_mount $PGC/gateway-patch.yaml \
    '/^- op: remove$/,+1d' "no SQLite volume on PostgreSQL: the gateway pod mounts"
mutant pg_sqlite_pvc $PGC/kustomization.yaml \
    '/delete-sqlite-volume.yaml/d' "PersistentVolumeClaim(s) ['keymeld-gateway-data'] are still defined"
mutant pg_base_env_order deploy/k8s/base/gateway.yaml \
    's#name: KEYMELD_DATABASE_PATH#name: KEYMELD_DATABASE_FILE#' \
    "test /spec/template/spec/containers/0/env/1/name: want 'KEYMELD_DATABASE_PATH'"
mutant pg_connections deploy/k8s/postgres/postgres.yaml \
    's#max_connections=200#max_connections=100#' "max_connections 100 is below 156"
mutant pg_password deploy/k8s/postgres/postgres.yaml \
    '0,/password: "keymeld-dev-password-change-me"/ s//password: "another"/' \
    "the password in the gateway's URL differs from POSTGRES_PASSWORD"
mutant pg_url_host deploy/k8s/postgres/postgres.yaml \
    's#@keymeld-postgres:5432#@postgres:5432#' "must name keymeld-postgres:5432"
mutant pg_image deploy/k8s/postgres/postgres.yaml \
    's#image: postgres:15$#image: postgres:16#' "image must be postgres:15"
mutant pg_external_no_secret deploy/k8s/postgres-external/kustomization.yaml \
    's#  - ../vsock#  - ../vsock\n  - ../postgres/postgres.yaml#' \
    "an external database's Secret keymeld-database must not be in the repository"

finish
