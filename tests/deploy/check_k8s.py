#!/usr/bin/env python3
"""Checks the Kubernetes manifests of deploy/k8s against the product.

usage: check_k8s.py SOURCE_DIR [--keymeld BIN] [--kubectl BIN]

For each variant (deploy/k8s = vsock, deploy/k8s/simulation, and on
PostgreSQL deploy/k8s/postgres and deploy/k8s/postgres-external):
  1. load it the way kustomize does (resources, components, configMapGenerator,
     JSON 6902 patches and `$patch: delete`), and, when kubectl is available,
     also as `kubectl kustomize` renders it;
  2. validate every object strictly against the Kubernetes API models of
     python3-kubernetes (unknown or misspelt fields, wrong types, missing
     required fields);
  3. check what KeyMeld needs: Services select the right pods on 5000; the
     gateway reads the ConfigMap made from config/development-k8s.yaml, its
     probes hit /health (liveness) and /health/ready (readiness) on the
     configured port, its KEYMELD_ENCLAVE_N_* env matches the config and the
     Services; on SQLite one replica with Recreate and a volume for the
     database; on PostgreSQL two replicas rolled one at a time, a
     PodDisruptionBudget (minAvailable 1), KEYMELD_DATABASE_URL from a Secret
     and no SQLite volume, and for the in-cluster database a PostgreSQL 15
     StatefulSet whose Service, volume, password and max_connections fit the
     gateways' URL and pools;
     enclaves run one replica each with the right transport env; the socat
     sidecar uses the seed's addresses with the enclave's CID;
  4. with --keymeld, run `keymeld config check` on the ConfigMap's file with
     the gateway's env: it must be valid and warning-free.
Prints one line per failed check and a summary; exits 1 on any failure.
"""
import argparse
import base64
import copy
import os
import posixpath
import shutil
import subprocess
import sys
import urllib.parse

import yaml

try:
    from kubernetes import client as k8s
except ImportError:  # pragma: no cover - install-deps installs it
    k8s = None

FAILURES = []
PASSED = [0]


def check(cond, msg):
    if cond:
        PASSED[0] += 1
    else:
        FAILURES.append(msg)
    return cond


# ---- loading ---------------------------------------------------------------

def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


class PatchError(Exception):
    pass


def load_kustomization(directory, acc=None, kind="Kustomization"):
    """A minimal kustomize: resources (files and directories), components,
    configMapGenerator with files, and patches that are JSON 6902 (with a
    target) or a strategic merge `$patch: delete` of a whole object.
    Anything else is refused so the check stays honest about what it
    understands. A component works on the objects accumulated so far (acc);
    the order is kustomize's: resources, components, generators, patches."""
    kfile = os.path.join(directory, "kustomization.yaml")
    with open(kfile, encoding="utf-8") as f:
        kust = yaml.safe_load(f)
    known = {"apiVersion", "kind", "resources", "components", "configMapGenerator", "patches"}
    unknown = set(kust) - known
    if unknown:
        raise SystemExit(f"{kfile}: check_k8s.py does not understand {sorted(unknown)}")
    if kust.get("kind", "Kustomization") != kind:
        raise SystemExit(f"{kfile}: kind must be {kind} here, not {kust.get('kind')}")
    objects = list(acc or [])
    for res in kust.get("resources") or []:
        path = os.path.normpath(os.path.join(directory, res))
        if os.path.isdir(path):
            objects += load_kustomization(path)
        else:
            objects += load_yaml_docs(path)
    for comp in kust.get("components") or []:
        objects = load_kustomization(os.path.normpath(os.path.join(directory, comp)), objects,
                                     kind="Component")
    for gen in kust.get("configMapGenerator") or []:
        data = {}
        for spec in gen.get("files", []):
            key, _, rel = spec.rpartition("=") if "=" in spec else (spec, "", spec)
            key = key or os.path.basename(rel)
            src = os.path.join(directory, rel)
            if os.path.relpath(os.path.realpath(src), os.path.realpath(directory)).startswith(".."):
                FAILURES.append(f"{kfile}: {rel} is outside the kustomization directory "
                                "(kubectl apply -k refuses it)")
            with open(src, encoding="utf-8") as f:
                data[key] = f.read()
        objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": gen["name"]}, "data": data})
    for i, patch in enumerate(kust.get("patches") or []):
        where = f"{kfile}: patches[{i}]"
        try:
            objects = apply_patch(directory, patch, objects, where)
        except PatchError as e:
            FAILURES.append(f"{where}: {e}")
    return objects


def apply_patch(directory, patch, objects, where):
    unknown = set(patch) - {"path", "patch", "target"}
    if unknown:
        raise SystemExit(f"{where}: check_k8s.py does not understand {sorted(unknown)}")
    if "path" in patch:
        with open(os.path.join(directory, patch["path"]), encoding="utf-8") as f:
            text = f.read()
    else:
        text = patch["patch"]
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    if len(docs) == 1 and isinstance(docs[0], list):  # JSON 6902
        target = patch.get("target")
        if not target:
            raise PatchError("a JSON 6902 patch needs a target")
        unknown = set(target) - {"kind", "name", "group", "version"}
        if unknown:
            raise SystemExit(f"{where}: check_k8s.py does not understand target {sorted(unknown)}")
        hits = [o for o in objects if o.get("kind") == target.get("kind", o.get("kind"))
                and o.get("metadata", {}).get("name") == target.get("name", o["metadata"].get("name"))]
        if not hits:
            raise PatchError(f"target {target} matches no object")
        out = []
        for o in objects:
            out.append(json_patch(o, docs[0]) if any(o is h for h in hits) else o)
        return out
    # Strategic merge: only deleting a whole object.
    for d in docs:
        if not (isinstance(d, dict) and d.get("$patch") == "delete"):
            raise SystemExit(f"{where}: check_k8s.py understands only `$patch: delete` "
                             "strategic merge patches")
        key = (d.get("kind"), d.get("metadata", {}).get("name"))
        kept = [o for o in objects if (o.get("kind"), o.get("metadata", {}).get("name")) != key]
        if len(kept) == len(objects):
            raise PatchError(f"$patch: delete of {key[0]} {key[1]}: no such object")
        objects = kept
    return objects


def json_pointer(path):
    if not path.startswith("/"):
        raise PatchError(f"path {path!r} must start with /")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def json_patch(obj, ops):
    """RFC 6902 add, remove, replace and test on a copy of obj."""
    doc = copy.deepcopy(obj)
    for op in ops:
        kind, tokens = op.get("op"), json_pointer(op.get("path", ""))
        if kind not in ("add", "remove", "replace", "test"):
            raise SystemExit(f"check_k8s.py does not understand the JSON patch op {kind!r}")
        parent = doc
        for t in tokens[:-1]:
            try:
                parent = parent[int(t)] if isinstance(parent, list) else parent[t]
            except (KeyError, IndexError, ValueError, TypeError):
                raise PatchError(f"{kind} {op['path']}: no such path") from None
        last = tokens[-1]
        if isinstance(parent, list):
            if kind == "add" and last == "-":
                parent.append(copy.deepcopy(op["value"]))
                continue
            try:
                idx = int(last)
            except ValueError:
                raise PatchError(f"{kind} {op['path']}: {last!r} is not a list index") from None
            if not 0 <= idx < len(parent) + (kind == "add"):
                raise PatchError(f"{kind} {op['path']}: index out of range")
            if kind == "add":
                parent.insert(idx, copy.deepcopy(op["value"]))
            elif kind == "remove":
                del parent[idx]
            elif kind == "replace":
                parent[idx] = copy.deepcopy(op["value"])
            elif parent[idx] != op["value"]:
                raise PatchError(f"test {op['path']}: want {op['value']!r}, got {parent[idx]!r}")
        elif isinstance(parent, dict):
            if kind != "add" and last not in parent:
                raise PatchError(f"{kind} {op['path']}: no such path")
            if kind in ("add", "replace"):
                parent[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[last]
            elif parent[last] != op["value"]:
                raise PatchError(f"test {op['path']}: want {op['value']!r}, got {parent[last]!r}")
        else:
            raise PatchError(f"{kind} {op['path']}: the parent is not a mapping or list")
    return doc


def kubectl_render(kubectl, directory):
    out = subprocess.run([kubectl, "kustomize", directory], check=True, capture_output=True,
                         text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d is not None]


# ---- strict schema validation ---------------------------------------------

MODELS = {
    ("apps/v1", "Deployment"): "V1Deployment",
    ("v1", "Service"): "V1Service",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
}

PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float)}


def fail(msg):
    FAILURES.append(msg)
    return False


def validate(value, typ, where):
    """Checks value against the python3-kubernetes type name typ; records
    every mismatch and returns whether there was none."""
    if typ == "object":  # IntOrString, quantities, free-form
        return isinstance(value, (str, int, float, dict, list)) or fail(
            f"{where}: unexpected {type(value).__name__}")
    if typ in PRIMITIVES:
        ok = isinstance(value, PRIMITIVES[typ]) and not (typ == "int" and isinstance(value, bool))
        return ok or fail(f"{where}: expected {typ}, got {value!r}")
    if typ.startswith("list["):
        if not isinstance(value, list):
            return fail(f"{where}: expected a list")
        return all([validate(v, typ[5:-1], f"{where}[{i}]") for i, v in enumerate(value)])
    if typ.startswith("dict("):
        if not isinstance(value, dict):
            return fail(f"{where}: expected a mapping")
        inner = typ[5:-1].split(", ", 1)[1]
        return all([validate(v, inner, f"{where}.{k}") for k, v in value.items()])
    model = getattr(k8s, typ)
    if not isinstance(value, dict):
        return fail(f"{where}: expected a mapping ({typ})")
    by_json = {json_key: attr for attr, json_key in model.attribute_map.items()}
    ok = True
    for key, sub in value.items():
        if key not in by_json:
            ok = fail(f"{where}: unknown field '{key}' in {typ}")
            continue
        ok = validate(sub, model.openapi_types[by_json[key]], f"{where}.{key}") and ok
    return ok


def validate_object(obj, origin):
    """Strict schema check of one object; returns whether it passed."""
    if not isinstance(obj, dict):
        return fail(f"{origin}: a document is not a mapping")
    key = (obj.get("apiVersion"), obj.get("kind"))
    name = (obj.get("metadata") or {}).get("name", "?")
    where = f"{origin}: {key[1]} {name}"
    if key not in MODELS:
        return fail(f"{where}: unexpected apiVersion/kind {key}")
    if not validate(obj, MODELS[key], where):
        return False
    # Required fields: the models' setters refuse None for them.
    try:
        k8s.ApiClient()._ApiClient__deserialize(obj, MODELS[key])
    except ValueError as e:
        return fail(f"{where}: {e}")
    PASSED[0] += 1
    return True


def check_all(objects, variant, db, source, origin):
    """Schema first; the KeyMeld checks only on objects that have the shape
    they expect."""
    results = [validate_object(o, origin) for o in objects]
    if all(results):
        check_variant(objects, variant, db, source, origin)
    else:
        fail(f"{origin}: KeyMeld checks skipped: fix the schema errors above first")


# ---- KeyMeld checks --------------------------------------------------------

def find(objects, kind, name):
    hits = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return hits[0] if len(hits) == 1 else None


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def container(pod, name):
    hits = [c for c in pod["containers"] if c["name"] == name]
    return hits[0] if hits else None


def probe_port(probe):
    for kind in ("httpGet", "tcpSocket"):
        if kind in probe:
            return probe[kind]["port"]
    return None


def check_deployment_basics(dep, where, replicas=1):
    """replicas 1: Recreate (never two at once); more: RollingUpdate that
    never goes below the wanted number of ready pods."""
    spec = dep["spec"]
    pod_labels = spec["template"]["metadata"].get("labels", {})
    sel = spec.get("selector", {}).get("matchLabels", {})
    check(sel and all(pod_labels.get(k) == v for k, v in sel.items()),
          f"{where}: selector {sel} does not match the pod labels {pod_labels}")
    check(spec.get("replicas") == replicas,
          f"{where}: replicas must be {replicas}, got {spec.get('replicas')}")
    strategy = spec.get("strategy", {})
    if replicas == 1:
        check(strategy.get("type") == "Recreate",
              f"{where}: strategy must be Recreate (never two at once)")
    else:
        check(strategy.get("type") == "RollingUpdate" and
              strategy.get("rollingUpdate", {}).get("maxUnavailable") == 0,
              f"{where}: strategy must be RollingUpdate with maxUnavailable 0 (a rollout must not "
              f"take gateways away), got {strategy}")
    pod = spec["template"]["spec"]
    check(pod.get("enableServiceLinks") is False,
          f"{where}: enableServiceLinks must be false (service links inject KEYMELD_ENCLAVE_N_PORT=tcp://...)")
    for c in pod["containers"]:
        req = c.get("resources", {}).get("requests", {})
        check("cpu" in req and "memory" in req,
              f"{where}: container {c['name']} needs resources.requests cpu and memory")
        check(c.get("securityContext", {}).get("allowPrivilegeEscalation") is False,
              f"{where}: container {c['name']}: allowPrivilegeEscalation must be false")
    return pod


def service_selects(svc, dep):
    sel = svc["spec"].get("selector", {})
    labels = dep["spec"]["template"]["metadata"].get("labels", {})
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())


def check_variant(objects, variant, db, source, origin):
    where = f"{origin}"
    config_path = os.path.join(source, "config", "development-k8s.yaml")
    with open(config_path, encoding="utf-8") as f:
        config_text = f.read()
    config = yaml.safe_load(config_text)
    port = config["server"]["port"]
    enclaves = config["enclaves"]["enclaves"]

    # The gateway and its configuration.
    gw = find(objects, "Deployment", "keymeld-gateway")
    if not check(gw is not None, f"{where}: no Deployment keymeld-gateway"):
        return
    pod = check_deployment_basics(gw, f"{where}: Deployment keymeld-gateway",
                                  replicas=1 if db == "sqlite" else 2)
    g = container(pod, "gateway")
    if not check(g is not None, f"{where}: gateway container 'gateway' missing"):
        return
    env = env_of(g)
    check(port in [p["containerPort"] for p in g.get("ports", [])],
          f"{where}: gateway containerPort must be {port} (server.port of development-k8s.yaml)")
    live, ready = g.get("livenessProbe", {}), g.get("readinessProbe", {})
    check(live.get("httpGet", {}).get("path") == "/health",
          f"{where}: gateway liveness probe must GET /health (liveness: process and database)")
    check(ready.get("httpGet", {}).get("path") == "/health/ready",
          f"{where}: gateway readiness probe must GET /health/ready")
    for name, probe in (("liveness", live), ("readiness", ready),
                        ("startup", g.get("startupProbe"))):
        if probe is not None:
            check(probe_port(probe) in (port, "http"),
                  f"{where}: gateway {name} probe port {probe_port(probe)} is not {port}")

    # CONFIG_PATH -> a mounted ConfigMap whose file is config/development-k8s.yaml.
    cfg_path = env.get("CONFIG_PATH", "")
    mounts = {m["mountPath"]: m["name"] for m in g.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mdir, key = posixpath.split(cfg_path)
    vol = volumes.get(mounts.get(mdir, ""), {})
    cm_name = vol.get("configMap", {}).get("name")
    check(cm_name is not None,
          f"{where}: CONFIG_PATH={cfg_path} is not in a mounted ConfigMap")
    cm = None
    if cm_name:
        cm = find(objects, "ConfigMap", cm_name)
    if check(cm is not None, f"{where}: ConfigMap {cm_name} not found"):
        check(cm.get("data", {}).get(key) == config_text,
              f"{where}: ConfigMap {cm_name} key {key} differs from config/development-k8s.yaml")

    if db == "sqlite":
        # The database on a persistent volume.
        path = env.get("KEYMELD_DATABASE_PATH", config["database"]["path"])
        db_vol = volumes.get(mounts.get(posixpath.dirname(path), ""), {})
        claim = db_vol.get("persistentVolumeClaim", {}).get("claimName")
        check(claim is not None, f"{where}: database {path} is not on a PersistentVolumeClaim")
        if claim:
            check(find(objects, "PersistentVolumeClaim", claim) is not None,
                  f"{where}: PersistentVolumeClaim {claim} not defined")
    else:
        check_postgres(objects, db, gw, g, config, where)

    gsvc = find(objects, "Service", "keymeld-gateway")
    if check(gsvc is not None, f"{where}: no Service keymeld-gateway"):
        check(service_selects(gsvc, gw), f"{where}: Service keymeld-gateway does not select the gateway")
        check(any(p.get("targetPort") in (port, "http") for p in gsvc["spec"]["ports"]),
              f"{where}: Service keymeld-gateway does not target port {port}")

    # Each configured enclave: gateway env, Service, Deployment.
    deps = [o for o in objects if o["kind"] == "Deployment"
            and o["metadata"]["name"].startswith("keymeld-enclave-")]
    check(len(deps) == len(enclaves),
          f"{where}: {len(deps)} enclave Deployments for {len(enclaves)} configured enclaves")
    for e in enclaves:
        n = e["id"]
        name = f"keymeld-enclave-{n}"
        ew = f"{where}: {name}"
        check(e.get("transport") == "tcp" and e.get("tcp_host") == name and e.get("port") == 5000,
              f"{ew}: development-k8s.yaml must say transport tcp, tcp_host {name}, port 5000")
        for suffix, want in (("TRANSPORT", "tcp"), ("TCP_HOST", name), ("PORT", "5000")):
            var = f"KEYMELD_ENCLAVE_{n}_{suffix}"
            check(env.get(var) == want, f"{ew}: gateway env {var} must be {want!r}, got {env.get(var)!r}")
        svc = find(objects, "Service", name)
        dep = find(objects, "Deployment", name)
        if not (check(svc is not None, f"{ew}: no Service") and
                check(dep is not None, f"{ew}: no Deployment")):
            continue
        check(service_selects(svc, dep), f"{ew}: the Service does not select the Deployment's pods")
        sports = svc["spec"]["ports"]
        check(len(sports) == 1 and sports[0]["port"] == 5000 and sports[0].get("targetPort") == 5000,
              f"{ew}: the Service must map port 5000 to targetPort 5000")
        epod = check_deployment_basics(dep, f"{ew} Deployment")
        enc = container(epod, "enclave")
        if not check(enc is not None, f"{ew}: container 'enclave' missing"):
            continue
        eenv = env_of(enc)
        check(eenv.get("ENCLAVE_ID") == str(n), f"{ew}: ENCLAVE_ID must be {n}")
        check(eenv.get("VSOCK_PORT") == "5000", f"{ew}: VSOCK_PORT must be 5000")
        exposed = [p["containerPort"] for c in epod["containers"] for p in c.get("ports", [])]
        check(exposed == [5000], f"{ew}: exactly one container must expose 5000, got {exposed}")
        if variant == "vsock":
            check(eenv.get("TRANSPORT_MODE") == "vsock", f"{ew}: TRANSPORT_MODE must be vsock")
            cid = eenv.get("ENCLAVE_CID")
            check(cid is not None and cid.isdigit() and int(cid) >= 1, f"{ew}: ENCLAVE_CID must be set")
            side = container(epod, "vsock-proxy")
            if not check(side is not None, f"{ew}: socat sidecar 'vsock-proxy' missing"):
                continue
            check(side["image"].startswith("alpine/socat"), f"{ew}: sidecar image must be alpine/socat")
            check(side.get("command") == ["socat"], f"{ew}: sidecar command must be socat")
            want = ["TCP-LISTEN:5000,fork,reuseaddr", f"VSOCK-CONNECT:{cid}:5000"]
            check(side.get("args") == want, f"{ew}: sidecar args must be {want} (the seed's, "
                  f"with the enclave's ENCLAVE_CID), got {side.get('args')}")
            rcmd = side.get("readinessProbe", {}).get("exec", {}).get("command", [])
            check(f"VSOCK-CONNECT:{cid}:5000" in rcmd,
                  f"{ew}: sidecar readiness probe must connect to VSOCK {cid}:5000, got {rcmd}")
            check(probe_port(side.get("livenessProbe", {})) == 5000,
                  f"{ew}: sidecar liveness probe must check the TCP listener on 5000")
            for c in (enc, side):
                sp = c.get("securityContext", {}).get("seccompProfile", {}).get("type")
                check(sp in ("Unconfined", "Localhost"),
                      f"{ew}: {c['name']} needs a seccomp profile that allows AF_VSOCK "
                      "(RuntimeDefault refuses it)")
        else:
            check(len(epod["containers"]) == 1, f"{ew}: simulation runs no sidecar")
            check(eenv.get("TRANSPORT_MODE") == "tcp", f"{ew}: TRANSPORT_MODE must be tcp")
            check(eenv.get("TCP_HOST") == "0.0.0.0", f"{ew}: TCP_HOST must be 0.0.0.0 (reachable from the Service)")
            for pname in ("readinessProbe", "livenessProbe"):
                check(probe_port(enc.get(pname, {})) == 5000, f"{ew}: {pname} must check TCP 5000")


def secret_ref(container_, name):
    """The (secret, key) an env var of the container comes from, else None."""
    for e in container_.get("env", []):
        if e["name"] == name:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
            if "value" not in e and ref.get("name") and ref.get("key"):
                return ref["name"], ref["key"]
    return None


def secret_value(objects, name, key):
    sec = find(objects, "Secret", name)
    if sec is None:
        return None
    if key in (sec.get("stringData") or {}):
        return sec["stringData"][key]
    if key in (sec.get("data") or {}):
        return base64.b64decode(sec["data"][key]).decode()
    return None


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_postgres(objects, db, gw, g, config, where):
    """Several gateways on one PostgreSQL database."""
    pod = gw["spec"]["template"]["spec"]
    labels = gw["spec"]["template"]["metadata"].get("labels", {})
    env = {e["name"]: e for e in g.get("env", [])}
    check("KEYMELD_DATABASE_PATH" not in env,
          f"{where}: the gateway must not set KEYMELD_DATABASE_PATH (SQLite) on PostgreSQL")
    ref = secret_ref(g, "KEYMELD_DATABASE_URL")
    check(ref is not None, f"{where}: KEYMELD_DATABASE_URL must come from a Secret "
          f"(valueFrom.secretKeyRef), got {env.get('KEYMELD_DATABASE_URL')}")
    claims = [v["name"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v]
    check(not claims, f"{where}: no SQLite volume on PostgreSQL: the gateway pod mounts the "
          f"PersistentVolumeClaim volume(s) {claims}")
    pvcs = [o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"]
    check(not pvcs, f"{where}: no SQLite volume on PostgreSQL: PersistentVolumeClaim(s) {pvcs} "
          "are still defined")

    pdbs = [o for o in objects if o["kind"] == "PodDisruptionBudget"
            and selects(o["spec"].get("selector", {}).get("matchLabels", {}), labels)]
    if check(len(pdbs) == 1, f"{where}: one PodDisruptionBudget must select the gateway pods, "
             f"found {len(pdbs)}"):
        spec = pdbs[0]["spec"]
        check(spec.get("minAvailable") == 1 and "maxUnavailable" not in spec,
              f"{where}: PodDisruptionBudget {pdbs[0]['metadata']['name']} must say minAvailable 1, "
              f"got {spec}")

    if ref is None:
        return
    secret = find(objects, "Secret", ref[0])
    sts = [o for o in objects if o["kind"] == "StatefulSet"]
    if db == "postgres-external":
        check(secret is None, f"{where}: an external database's Secret {ref[0]} must not be in the "
              "repository: it is created in the cluster (kubectl create secret)")
        check(not sts, f"{where}: an external database needs no StatefulSet, found "
              f"{[o['metadata']['name'] for o in sts]}")
        return

    # The in-cluster database: the URL's host is its Service.
    if not check(secret is not None, f"{where}: Secret {ref[0]} not defined"):
        return
    url = secret_value(objects, *ref)
    if not check(url is not None, f"{where}: Secret {ref[0]} has no key {ref[1]}"):
        return
    u = urllib.parse.urlsplit(url)
    check(u.scheme in ("postgresql", "postgres") and u.hostname and u.path.strip("/"),
          f"{where}: Secret {ref[0]} key {ref[1]} must be postgresql://USER:PASSWORD@HOST:PORT/DB")
    if not check(len(sts) == 1, f"{where}: one PostgreSQL StatefulSet expected, found {len(sts)}"):
        return
    ss = sts[0]
    sw = f"{where}: StatefulSet {ss['metadata']['name']}"
    spec = ss["spec"]
    check(spec.get("replicas") == 1, f"{sw}: replicas must be 1 (one primary, no replication here)")
    spod = spec["template"]["spec"]
    slabels = spec["template"]["metadata"].get("labels", {})
    check(selects(spec.get("selector", {}).get("matchLabels", {}), slabels),
          f"{sw}: selector does not match the pod labels")
    pg = spod["containers"][0]
    check(pg["image"].startswith("postgres:15"), f"{sw}: image must be postgres:15, got {pg['image']}")
    check(pg.get("securityContext", {}).get("allowPrivilegeEscalation") is False,
          f"{sw}: allowPrivilegeEscalation must be false")
    req = pg.get("resources", {}).get("requests", {})
    check("cpu" in req and "memory" in req, f"{sw}: needs resources.requests cpu and memory")
    svc = find(objects, "Service", spec.get("serviceName", ""))
    if check(svc is not None, f"{sw}: serviceName {spec.get('serviceName')} is not a Service"):
        check(selects(svc["spec"].get("selector", {}), slabels),
              f"{sw}: Service {svc['metadata']['name']} does not select its pods")
        check(any(p["port"] == 5432 and p.get("targetPort") in (5432, "postgres")
                  for p in svc["spec"]["ports"]),
              f"{sw}: Service {svc['metadata']['name']} must map 5432")
        check(u.hostname == svc["metadata"]["name"] and (u.port or 5432) == 5432,
              f"{where}: the gateway's database URL must name {svc['metadata']['name']}:5432, "
              f"got {u.hostname}:{u.port}")
    penv = {e["name"]: e for e in pg.get("env", [])}
    pw_ref = secret_ref(pg, "POSTGRES_PASSWORD")
    if check(pw_ref is not None, f"{sw}: POSTGRES_PASSWORD must come from a Secret"):
        check(secret_value(objects, *pw_ref) == urllib.parse.unquote(u.password or ""),
              f"{where}: the password in the gateway's URL differs from POSTGRES_PASSWORD "
              f"(Secret {pw_ref[0]} key {pw_ref[1]})")
    user = penv.get("POSTGRES_USER", {}).get("value", "postgres")
    check(u.username == user, f"{where}: the URL's user {u.username} is not POSTGRES_USER {user}")
    dbname = penv.get("POSTGRES_DB", {}).get("value", user)
    check(u.path.strip("/") == dbname, f"{where}: the URL's database {u.path} is not POSTGRES_DB {dbname}")
    # The data on the StatefulSet's volume.
    pgdata = penv.get("PGDATA", {}).get("value", "/var/lib/postgresql/data")
    templates = [t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])]
    on_claim = [m for m in pg.get("volumeMounts", [])
                if m["name"] in templates and (pgdata + "/").startswith(m["mountPath"].rstrip("/") + "/")]
    check(on_claim, f"{sw}: PGDATA {pgdata} is not on a volumeClaimTemplate ({templates})")
    # Connections: each gateway holds database.max_connections + 1 (LISTEN);
    # a rolling update adds maxSurge gateways; 3 slots are the superuser's.
    pool = config.get("database", {}).get("max_connections", 50)
    surge = gw["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", 1)
    surge = surge if isinstance(surge, int) else 1
    need = (gw["spec"].get("replicas", 1) + surge) * (pool + 1) + 3
    args = pg.get("args", []) + pg.get("command", [])
    got = [int(a.split("=", 1)[1]) for a in args if a.startswith("max_connections=")]
    have = got[-1] if got else 100
    check(have >= need, f"{sw}: max_connections {have} is below {need}: "
          f"{gw['spec'].get('replicas')} gateways + {surge} during a rollout, each holding "
          f"database.max_connections {pool} + 1")


def run_config_check(keymeld, source, objects, verbose):
    """`keymeld config check` on the ConfigMap's file with the gateway's env."""
    gw = find(objects, "Deployment", "keymeld-gateway")
    g = container(gw["spec"]["template"]["spec"], "gateway")
    env = {k: v for k, v in env_of(g).items() if v is not None}
    # From a Secret: the repository's value, else a stand-in (external).
    for e in g.get("env", []):
        ref = secret_ref(g, e["name"])
        if ref:
            env[e["name"]] = secret_value(objects, *ref) or \
                "postgresql://keymeld:stand-in@db.example.invalid:5432/keymeld"
    env["CONFIG_PATH"] = os.path.join(source, "deploy", "k8s", "base", "development-k8s.yaml")
    env["KEYMELD_DATABASE_PATH"] = "/tmp/keymeld-k8s-check.db"
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYMELD_", "CONFIG_PATH"))}
    run_env.update(env)
    p = subprocess.run([keymeld, "config", "check"], env=run_env, capture_output=True, text=True)
    ok = p.returncode == 0 and "Warnings:" not in p.stdout
    if not check(ok, "keymeld config check with the gateway's env failed or warned:\n" + p.stdout + p.stderr):
        return
    for line in p.stdout.splitlines():
        if verbose and line.startswith("  enclave "):
            print("config check:" + line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("--keymeld")
    ap.add_argument("--kubectl", default=shutil.which("kubectl"))
    a = ap.parse_args()
    if k8s is None:
        sys.exit("check_k8s.py: python3-kubernetes is missing: run scripts/install-deps")
    k8sdir = os.path.join(a.source, "deploy", "k8s")
    # (enclaves, database, directory)
    variants = [("vsock", "sqlite", k8sdir), ("vsock", "sqlite", os.path.join(k8sdir, "vsock")),
                ("simulation", "sqlite", os.path.join(k8sdir, "simulation")),
                ("simulation", "postgres", os.path.join(k8sdir, "postgres")),
                ("vsock", "postgres-external", os.path.join(k8sdir, "postgres-external"))]
    for variant, db, d in variants:
        rel = os.path.relpath(d, a.source)
        objs = load_kustomization(d)
        check_all(objs, variant, db, a.source, rel)
        if a.kubectl:
            try:
                rendered = kubectl_render(a.kubectl, d)
            except (subprocess.CalledProcessError, OSError) as e:
                err = getattr(e, "stderr", "") or str(e)
                check(False, f"kubectl kustomize {rel} failed: {err.strip()}")
                continue
            origin = f"kubectl kustomize {rel}"
            check_all(rendered, variant, db, a.source, origin)
            # kustomize appends a content hash to generated ConfigMap names.
            names = sorted((o["kind"], o["metadata"]["name"].rsplit("-", 1)[0]
                            if o["kind"] == "ConfigMap" else o["metadata"]["name"]) for o in rendered)
            mine = sorted((o["kind"], o["metadata"]["name"]) for o in objs)
            check(names == mine, f"{origin}: objects differ from check_k8s.py's reading: {names} vs {mine}")
        if a.keymeld and not FAILURES:
            run_config_check(a.keymeld, a.source, objs, verbose=(d == k8sdir))
    if not a.kubectl:
        print("check_k8s: no kubectl: checked the manifests as read by this script only")
    for f in FAILURES:
        print("FAIL:", f)
    print(f"check_k8s: {PASSED[0]} checks passed, {len(FAILURES)} failed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
