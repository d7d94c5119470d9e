#!/usr/bin/env python3
"""Checks that the Nitro deployment files agree with each other and with
config/production.yaml.

usage: check_nitro.py SOURCE_DIR

- the enclave port: production.yaml (every enclave), deploy/nitro/Dockerfile
  (VSOCK_PORT baked into the EIF) and deploy.sh (PORT default) are one value
  (the original's EIF listened on 5000 while its config said 8000);
- the enclave count and ids: production.yaml lists ids 0..N-1 and deploy.sh
  starts N by default;
- the Dockerfile runs keymeld-enclave over VSock, and nothing passes
  --debug-mode;
- keymeld-gateway.service and deploy.sh name the same config, env file and
  binary; the unit restarts on failure, stops with SIGTERM and time to drain,
  is hardened, and may write exactly where production.yaml puts the database
  and the log file; it can bind the configured port.
Prints one line per failed check and a summary; exits 1 on any failure.
"""
import os
import re
import shlex
import sys

import yaml

FAILURES = []
PASSED = [0]


def check(cond, msg):
    if cond:
        PASSED[0] += 1
    else:
        FAILURES.append(msg)
    return cond


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def code_lines(text):
    """Lines that are not comments (shell, Dockerfile, systemd)."""
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def shell_default(script, var):
    """The default of VAR=${VAR:-default} in a shell script."""
    m = re.search(r"^%s=\$\{%s:-([^}]*)\}" % (var, var), script, re.M)
    return m.group(1) if m else None


def parse_unit(text):
    """systemd unit -> {section: {key: [values]}} (keys may repeat)."""
    unit, section = {}, None
    for ln in code_lines(text):
        ln = ln.strip()
        if ln.startswith("[") and ln.endswith("]"):
            section = unit.setdefault(ln[1:-1], {})
        elif "=" in ln and section is not None:
            key, value = ln.split("=", 1)
            section.setdefault(key.strip(), []).append(value.strip())
    return unit


def seconds(value):
    m = re.fullmatch(r"(\d+)\s*(s|sec|min|m)?", value)
    if not m:
        return None
    return int(m.group(1)) * (60 if m.group(2) in ("min", "m") else 1)


def main():
    src = sys.argv[1]
    nitro = os.path.join(src, "deploy", "nitro")
    prod = yaml.safe_load(read(os.path.join(src, "config", "production.yaml")))
    dockerfile = read(os.path.join(nitro, "Dockerfile"))
    deploy = read(os.path.join(nitro, "deploy.sh"))
    unit = parse_unit(read(os.path.join(nitro, "keymeld-gateway.service")))

    # The enclave port, three ways.
    enclaves = prod["enclaves"]["enclaves"]
    ports = {e["port"] for e in enclaves}
    check(len(ports) == 1, f"production.yaml: enclaves use different ports {sorted(ports)}")
    port = min(ports)
    m = re.search(r"^ARG VSOCK_PORT=(\d+)$", dockerfile, re.M)
    check(m is not None and int(m.group(1)) == port,
          f"Dockerfile: ARG VSOCK_PORT must default to {port} (production.yaml), got "
          f"{m.group(1) if m else None}")
    check(re.search(r"VSOCK_PORT=\$\{VSOCK_PORT\}", dockerfile) is not None,
          "Dockerfile: ENV VSOCK_PORT must come from ARG VSOCK_PORT")
    check(shell_default(deploy, "PORT") == str(port),
          f"deploy.sh: PORT must default to {port}, got {shell_default(deploy, 'PORT')}")
    check('--build-arg "VSOCK_PORT=$PORT"' in deploy,
          "deploy.sh: BUILD_EIF must pass PORT to the Dockerfile as VSOCK_PORT")
    check("KEYMELD_ENCLAVE_${i}_PORT=$PORT" in deploy,
          "deploy.sh: the env file must carry KEYMELD_ENCLAVE_<id>_PORT=$PORT")

    # Enclave count and ids.
    ids = sorted(e["id"] for e in enclaves)
    check(ids == list(range(len(ids))), f"production.yaml: enclave ids must be 0..N-1, got {ids}")
    check(shell_default(deploy, "NUM_ENCLAVES") == str(len(ids)),
          f"deploy.sh: NUM_ENCLAVES must default to {len(ids)} (production.yaml)")

    # The image and the launch.
    check(re.search(r'^ENTRYPOINT \["/usr/local/bin/keymeld-enclave"\]$', dockerfile, re.M) is not None,
          "Dockerfile: ENTRYPOINT must be /usr/local/bin/keymeld-enclave")
    check(re.search(r"TRANSPORT_MODE=vsock", dockerfile) is not None,
          "Dockerfile: TRANSPORT_MODE must be vsock")
    for name, text in (("deploy.sh", deploy), ("Dockerfile", dockerfile)):
        check(not any("--debug-mode" in ln for ln in code_lines(text)),
              f"{name}: --debug-mode outside comments (zeroes the PCRs)")

    # The systemd unit against deploy.sh and production.yaml.
    svc = unit.get("Service", {})

    def one(key):
        v = svc.get(key, [])
        return v[-1] if v else None

    exec_start = shlex.split(one("ExecStart") or "")
    config = shell_default(deploy, "CONFIG")
    gateway = shell_default(deploy, "GATEWAY_BIN")
    env_file = shell_default(deploy, "ENV_FILE")
    check(exec_start[:1] == [gateway], f"unit: ExecStart must run {gateway} (deploy.sh GATEWAY_BIN)")
    check(exec_start[1:] == ["--config", config],
          f"unit: ExecStart must pass --config {config} (deploy.sh CONFIG), got {exec_start[1:]}")
    check(env_file in svc.get("EnvironmentFile", []),
          f"unit: EnvironmentFile must include {env_file} (deploy.sh ENV_FILE)")
    check(env_file in unit.get("Unit", {}).get("AssertPathExists", []),
          f"unit: AssertPathExists={env_file}: fail loudly before deploy.sh ran")
    check(one("Restart") == "on-failure", "unit: Restart=on-failure")
    check(one("KillSignal") == "SIGTERM", "unit: KillSignal=SIGTERM (graceful shutdown)")
    stop = seconds(one("TimeoutStopSec") or "")
    drain = max(prod["enclaves"].get("vsock_timeout_secs", 30),
                prod.get("coordinator", {}).get("individual_session_timeout_secs", 60))
    check(stop is not None and stop > drain,
          f"unit: TimeoutStopSec ({one('TimeoutStopSec')}) must exceed the longest step ({drain} s)")
    check(one("User") not in (None, "root"), "unit: must not run as root")
    for key, want in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                      ("ProtectHome", "yes"), ("PrivateDevices", "yes"), ("LimitCORE", "0")):
        check(one(key) == want, f"unit: {key}={want}")
    rw = " ".join(svc.get("ReadWritePaths", [])).split()
    for what, path in (("database.path", prod["database"]["path"]),
                       ("logging.file_path", prod["logging"]["file_path"])):
        d = os.path.dirname(path)
        check(d in rw, f"unit: ReadWritePaths must include {d} ({what} of production.yaml)")
    families = " ".join(svc.get("RestrictAddressFamilies", [])).split()
    check("AF_VSOCK" in families, "unit: RestrictAddressFamilies must allow AF_VSOCK (the enclaves)")
    check("AF_INET" in families, "unit: RestrictAddressFamilies must allow AF_INET (the REST API)")
    if prod["server"]["port"] < 1024:
        check("CAP_NET_BIND_SERVICE" in " ".join(svc.get("AmbientCapabilities", [])),
              f"unit: port {prod['server']['port']} needs AmbientCapabilities=CAP_NET_BIND_SERVICE")
    check(unit.get("Install", {}).get("WantedBy") == ["multi-user.target"],
          "unit: WantedBy=multi-user.target")

    for f in FAILURES:
        print("FAIL:", f)
    print(f"check_nitro: {PASSED[0]} checks passed, {len(FAILURES)} failed "
          f"(enclave port {port}, {len(ids)} enclaves)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
