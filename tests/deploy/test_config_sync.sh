#!/usr/bin/env bash
# deploy.config_sync: the gateway ConfigMap of deploy/k8s is generated from
# deploy/k8s/base/development-k8s.yaml, which must stay a byte-for-byte copy
# of config/development-k8s.yaml (kustomize cannot read files outside its
# directory, so the copy is how `kubectl apply -k` gets the shipped config).
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SRC"

orig=config/development-k8s.yaml
copy=deploy/k8s/base/development-k8s.yaml
if cmp -s "$orig" "$copy"; then
    ok "$copy is identical to $orig"
else
    bad "$copy differs from $orig; after editing $orig run: cp $orig deploy/k8s/base/"
    diff -u "$orig" "$copy" || true
fi

# The generator really uses that file (and nothing else feeds the ConfigMap).
gen=$(sed -n '/^configMapGenerator:/,$p' deploy/k8s/base/kustomization.yaml)
expect_contains "base/kustomization.yaml generates keymeld-gateway-config" \
    "name: keymeld-gateway-config" "$gen"
expect_contains "the generator reads development-k8s.yaml" "- development-k8s.yaml" "$gen"

finish
