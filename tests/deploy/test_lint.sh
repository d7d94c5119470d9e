#!/usr/bin/env bash
# deploy.lint: every YAML file under deploy/ passes yamllint --strict
# (deploy/.yamllint); every shell script under deploy/ and tests/deploy/
# passes bash -n and shellcheck; every Python helper compiles.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SRC"

need yamllint "Debian package yamllint"
need shellcheck "Debian package shellcheck"

# YAML: the manifests, the kustomizations, the ConfigMap copy, .yamllint.
mapfile -t yamls < <(find deploy -type f \( -name '*.yaml' -o -name '*.yml' -o -name .yamllint \) | sort)
if ((${#yamls[@]} < 8)); then
    bad "expected the k8s manifests under deploy/, found only: ${yamls[*]}"
fi
for f in "${yamls[@]}"; do
    if out=$(yamllint --strict -c deploy/.yamllint "$f" 2>&1); then
        ok "yamllint $f"
    else
        bad "yamllint $f: $out"
    fi
done

# Shell: *.sh plus extension-less files with a bash/sh shebang.
scripts=()
while IFS= read -r f; do
    case "$f" in
        *.sh) scripts+=("$f") ;;
        *) head -n 1 "$f" | grep -qE '^#!.*\b(bash|sh)\b' && scripts+=("$f") ;;
    esac
done < <(find deploy tests/deploy -type f ! -name '*.json' ! -name '*.yaml' | sort)
if ((${#scripts[@]} < 5)); then
    bad "expected deploy.sh, parse-cids.sh and the test drivers, found: ${scripts[*]}"
fi
for f in "${scripts[@]}"; do
    if out=$(bash -n "$f" 2>&1); then ok "bash -n $f"; else bad "bash -n $f: $out"; fi
    if out=$(shellcheck -s bash -x -P SCRIPTDIR "$f" 2>&1); then
        ok "shellcheck $f"
    else
        bad "shellcheck $f: $out"
    fi
    # Project style: strict mode in every script that runs on its own.
    if [[ "$f" != */lib.sh ]]; then
        if grep -q '^set -euo pipefail' "$f" || grep -q '^source .*lib.sh' "$f"; then
            ok "$f: set -euo pipefail"
        else
            bad "$f: missing set -euo pipefail"
        fi
    fi
done

# Python helpers (the checkers and the nitro-cli mock).
for f in tests/deploy/check_k8s.py tests/deploy/check_nitro.py tests/deploy/mock-nitro-cli; do
    if out=$("$PYTHON3" -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$f" 2>&1); then
        ok "python syntax $f"
    else
        bad "python syntax $f: $out"
    fi
done

finish
