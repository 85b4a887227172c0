#!/usr/bin/env python3
"""What scripts/checks/stack.sh asserts of a resolved compose model.

Reads `docker-compose config` output (YAML) on stdin and prints one line per
problem, nothing when the variant holds; exits 1 on a problem.

usage: compose_check.py VARIANT SECRETS_DIR NATS_VERSION
  VARIANT       default | cluster | insecure | insecure-cluster | gcp-cluster
  SECRETS_DIR   the secrets directory as the model shows it (absolute)
  NATS_VERSION  the nats-server version the tests run (nats-server-auth.version)

The secure variants (default, cluster, gcp-cluster) are what `docker compose
up` runs: no NATS token anywhere, every NATS node on the secure config (auth
callout and TLS) of the pinned server, each client with its own key and the
CA, each service mounting only its own secrets directory, the sink on its own
MySQL user. The insecure ones are the lab override: the token, and nothing of
the above.
"""
import sys

import yaml

variant, secrets, version = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3]
model = yaml.safe_load(sys.stdin)
services = model.get("services", {})
problems = []


def problem(text):
    problems.append(text)


def env(name):
    value = services.get(name, {}).get("environment", {}) or {}
    if isinstance(value, list):
        value = dict(v.split("=", 1) if "=" in v else (v, None) for v in value)
    return value


def command(name):
    cmd = services.get(name, {}).get("command", [])
    return cmd if isinstance(cmd, list) else cmd.split()


def mounts(name):
    """(source, target, read_only) of each volume."""
    out = []
    for v in services.get(name, {}).get("volumes", []) or []:
        if isinstance(v, dict):
            out.append((v.get("source", ""), v.get("target", ""), bool(v.get("read_only"))))
        else:
            parts = v.split(":")
            out.append((parts[0], parts[1] if len(parts) > 1 else "", parts[-1] == "ro"))
    return out


def secret_mounts(name):
    return [m for m in mounts(name) if m[0] == secrets or m[0].startswith(secrets + "/")]


nodes = [n for n in ("nats", "nats-2", "nats-3") if n in services]
cluster = variant in ("cluster", "insecure-cluster", "gcp-cluster")
secure = variant in ("default", "cluster", "gcp-cluster")
want_services = {"secrets", "nats", "auth", "mysql", "sink", "grafana", "publisher"}
if variant in ("cluster", "insecure-cluster"):
    want_services |= {"nats-2", "nats-3"}
if set(services) != want_services:
    problem(f"services {sorted(services)}, expected {sorted(want_services)}")

# The `secrets` service runs in every variant (NATS depends on it): no
# network, no capability beyond handing files to their owners.
s = services.get("secrets", {})
if s.get("network_mode") != "none":
    problem("the secrets service has a network")
if s.get("cap_drop") != ["ALL"] or set(s.get("cap_add", [])) - {"CHOWN", "DAC_OVERRIDE", "FOWNER"}:
    problem(f"the secrets service keeps capabilities: drop {s.get('cap_drop')}, add {s.get('cap_add')}")
if (s.get("build") or {}).get("target") != "secrets":
    problem("the secrets service is not built from auth/Dockerfile's secrets stage")
if [m[:2] for m in secret_mounts("secrets")] != [(secrets, "/secrets")]:
    problem(f"the secrets service mounts {secret_mounts('secrets')}, expected {secrets} on /secrets")
for name in nodes:
    dep = (services[name].get("depends_on") or {}).get("secrets", {})
    if not isinstance(dep, dict) or dep.get("condition") != "service_completed_successfully":
        problem(f"{name} does not wait for the secrets service to complete")

if secure:
    for name, svc in services.items():
        if "VIGIA_NATS_TOKEN" in env(name):
            problem(f"{name} is given a shared NATS token (VIGIA_NATS_TOKEN)")
        if name in nodes and "--auth" in command(name):
            problem(f"{name} takes a token (--auth)")
    for name in nodes:
        svc = services[name]
        if svc.get("image") != f"nats:{version}-alpine":
            problem(f"{name} runs {svc.get('image')}, not nats:{version}-alpine (nats/nats-server-auth.version)")
        conf = "/etc/nats/nats-cluster-secure.conf" if cluster else "/etc/nats/nats-server-secure.conf"
        if conf not in command(name):
            problem(f"{name} is not on {conf} (auth callout and TLS): {command(name)}")
        if [m for m in secret_mounts(name)] != [(secrets + "/nats", "/etc/nats/secrets", True)]:
            problem(f"{name} mounts {secret_mounts(name)}, expected {secrets}/nats read-only only")
    # Single server: healthy only once vigia-auth is connected to it.
    if not cluster:
        test = " ".join(services["nats"].get("healthcheck", {}).get("test", []))
        if "connz?acc=AUTH" not in test or "js-enabled-only=true" not in test:
            problem(f"nats's healthcheck does not wait for JetStream and vigia-auth: {test}")
    a = services.get("auth", {})
    e = env("auth")
    for key, value in (("VIGIA_AUTH_NKEY", "/etc/vigia/auth/service.nk"),
                       ("VIGIA_AUTH_ISSUER", "/etc/vigia/auth/issuer.nk"),
                       ("VIGIA_IDENTITIES", "/etc/vigia/auth/identities"),
                       ("VIGIA_NATS_CA", "/etc/vigia/auth/ca.pem")):
        if e.get(key) != value:
            problem(f"auth: {key}={e.get(key)}, expected {value}")
    if secret_mounts("auth") != [(secrets + "/auth", "/etc/vigia/auth", True)]:
        problem(f"auth mounts {secret_mounts('auth')}, expected {secrets}/auth read-only only")
    if not a.get("read_only") or a.get("cap_drop") != ["ALL"]:
        problem("auth is not read-only without capabilities")
    for name, sub, target in (("sink", "sink", "/etc/vigia/sink"), ("publisher", "demo", "/etc/vigia/host")):
        e = env(name)
        if not str(e.get("VIGIA_NATS_NKEY", "")).startswith(target + "/"):
            problem(f"{name} has no key of its own under {target} (VIGIA_NATS_NKEY={e.get('VIGIA_NATS_NKEY')})")
        if e.get("VIGIA_NATS_CA") != f"{target}/ca.pem":
            problem(f"{name} does not verify the server (VIGIA_NATS_CA={e.get('VIGIA_NATS_CA')})")
        if secret_mounts(name) != [(f"{secrets}/{sub}", target, True)]:
            problem(f"{name} mounts {secret_mounts(name)}, expected {secrets}/{sub} read-only only")
        if services.get(name, {}).get("entrypoint"):
            problem(f"{name} has its entrypoint replaced: {services[name]['entrypoint']}")
    if cluster:
        urls = {"nats://nats:4222", "nats://nats-2:4222", "nats://nats-3:4222"}
        for name in ("auth", "sink"):
            got = set(str(env(name).get("VIGIA_NATS_URL", "")).split(","))
            if variant == "cluster" and got != urls:
                problem(f"{name} does not take all three nodes: {sorted(got)}")
            if variant == "gcp-cluster" and len(got) != 3:
                problem(f"{name} does not take all three nodes: {sorted(got)}")
        if str(env("sink").get("VIGIA_STREAM_REPLICAS")) != "3":
            problem("the sink does not keep three replicas")
else:
    for name in nodes:
        cmd = command(name)
        if "--auth" not in cmd or not any(c.endswith(("nats-server.conf", "nats-cluster.conf")) for c in cmd):
            problem(f"{name} is not on the plain config with the token: {cmd}")
    if "profiles" not in services.get("auth", {}):
        problem("the lab still starts vigia-auth")
    for name in ("sink", "publisher"):
        if "VIGIA_NATS_TOKEN" not in env(name):
            problem(f"{name} has no token in the lab")
        entry = services.get(name, {}).get("entrypoint") or []
        if entry[:5] != ["/usr/bin/env", "-u", "VIGIA_NATS_NKEY", "-u", "VIGIA_NATS_CA"]:
            problem(f"{name} keeps its key and CA in the lab: entrypoint {entry}")

# MySQL least privilege, in every variant: the sink on its own user.
url = str(env("sink").get("VIGIA_DATABASE_URL", ""))
if url.startswith("mysql://root") or "://" not in url:
    problem(f"the sink connects to MySQL as {url.split('@')[0]}")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
