#!/usr/bin/env bash
# Runs vigia on this machine: NATS and MariaDB (installed from Debian's
# packages and started if absent), the sink, and a publisher for this host.
# Then shows what reached MySQL.
#
#   scripts/run-local.sh          start (again) and show the data
#   scripts/run-local.sh status   show the data
#   scripts/run-local.sh stop     stop the sink and the publisher
#   scripts/run-local.sh start --secure
#       the secure setup instead: a nats-server >= 2.10 of its own (port
#       VIGIA_SECURE_NATS_PORT, default 4223) with TLS (scripts/tls-certs.sh)
#       and vigia-auth; the sink and this host enrolled with their own keys
#       (all under .run/secure). The same as compose and GCP run.
#
# VIGIA_BIN_DIR=target/debug uses binaries already built instead of
# building release ones.
# Settings: VIGIA_NATS_URL, VIGIA_DATABASE_URL (default
# mysql://root@127.0.0.1:3306/vigia), and any other VIGIA_* variable the
# binaries read (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=.run
BIN=${VIGIA_BIN_DIR:-target/release}
SECURE=$RUN/secure
export VIGIA_NATS_URL=${VIGIA_NATS_URL:-nats://127.0.0.1:4222}
export VIGIA_DATABASE_URL=${VIGIA_DATABASE_URL:-mysql://root@127.0.0.1:3306/vigia}
db=${VIGIA_DATABASE_URL##*/}
db=${db%%\?*}

stop_one() {
  local name=$1 pidfile="$RUN/$1.pid"
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 70); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

start_one() {
  local name=$1; shift
  "$@" >"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  sleep 0.5
  if ! kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
    echo "$name failed to start; its log ($RUN/$name.log) says:" >&2
    cat "$RUN/$name.log" >&2
    exit 1
  fi
  echo "started $name (pid $(cat "$RUN/$name.pid")), log in $RUN/$name.log"
}

# The secure setup: TLS, auth callout, enrolled identities.
start_secure() {
  local port=${VIGIA_SECURE_NATS_PORT:-4223}
  mkdir -p "$SECURE/store"
  local version prefix
  version=$(tr -d '[:space:]' <nats/nats-server-auth.version)
  prefix=${VIGIA_AUTH_NATS_PREFIX:-/opt/vigia/nats-server-$version}
  [ -f "$SECURE/tls/ca.pem" ] || bash scripts/tls-certs.sh --dir "$SECURE/tls" --name localhost --ip 127.0.0.1
  "$BIN/vigia-auth" init --dir "$SECURE/keys" >"$SECURE/auth.conf"
  cat >"$SECURE/nats-server.conf" <<EOT
include auth.conf
tls {
  cert_file: "$PWD/$SECURE/tls/server.pem"
  key_file: "$PWD/$SECURE/tls/server-key.pem"
}
EOT
  start_one nats-secure "$prefix/bin/nats-server" -c "$SECURE/nats-server.conf" \
    -a 127.0.0.1 -p "$port" -js -sd "$PWD/$SECURE/store"
  export VIGIA_NATS_URL=nats://127.0.0.1:$port VIGIA_NATS_CA=$SECURE/tls/ca.pem
  export VIGIA_IDENTITIES=$SECURE/identities
  start_one auth "$BIN/vigia-auth" serve --nkey "$SECURE/keys/service.nk" --issuer "$SECURE/keys/issuer.nk"
  local host
  host=$(hostname -s | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9_\n-' '-')
  "$BIN/vigiactl" enroll --sink sink-local --out "$SECURE/sink.nk" >/dev/null
  "$BIN/vigiactl" enroll --host "$host" --out "$SECURE/host.nk" >/dev/null
  local me
  me=$(printf %s "${USER:-me}" | tr -c "a-z0-9_-" -)
  "$BIN/vigiactl" enroll --watcher "$me" --out "$SECURE/$me.nk" >/dev/null
  start_one sink "$BIN/vigia-sink" --nats-nkey "$SECURE/sink.nk"
  start_one publisher "$BIN/vigia-publisher" --host "$host" --nats-nkey "$SECURE/host.nk"
  echo "secure: NATS with TLS on $VIGIA_NATS_URL (CA $VIGIA_NATS_CA), vigia-auth, identities in $VIGIA_IDENTITIES"
  echo "  enrol an operator: $BIN/vigiactl enroll --operator you --registry $VIGIA_IDENTITIES"
}

show() {
  local sql="mariadb -h127.0.0.1 -uroot $db"
  echo
  echo "== hosts"
  $sql -t -e "SELECT host, status, source, cpus, ROUND(ram_total/1048576) AS ram_mib, last_seen FROM hosts"
  echo "== newest CPU and RAM samples"
  $sql -t -e "SELECT c.host, c.ts, ROUND(c.busy_pct,1) AS cpu_pct, ROUND(r.used*100/r.total,1) AS ram_pct
              FROM cpu_samples c JOIN ram_samples r USING (host, boot, seq) ORDER BY c.ts DESC LIMIT 5"
  echo "== busiest processes now"
  $sql -t -e "SELECT host, pid, name, user, state, ROUND(cpu_pct,1) AS cpu_pct, ROUND(rss/1048576,1) AS rss_mib
              FROM processes ORDER BY cpu_pct DESC, rss DESC LIMIT 8"
  cat <<EOT
Look further:
  mariadb -h127.0.0.1 -uroot $db                  # tables: hosts cpu_samples ram_samples processes process_samples
  $BIN/vigia-publisher --once           # one sample of each kind as JSON, no NATS
  scripts/run-local.sh stop                       # stop the sink and the publisher
EOT
}

case "${1:-start}" in
  stop)
    stop_one publisher
    stop_one sink
    stop_one auth
    stop_one nats-secure
    ;;
  status)
    show
    ;;
  start)
    mkdir -p "$RUN"
    bash scripts/services.sh
    if [ -z "${VIGIA_BIN_DIR:-}" ]; then
      echo "building (release)..."
      cargo build --release --locked -q -p vigia-publisher -p vigia-sink -p vigia-auth -p vigiactl
    fi
    stop_one publisher
    stop_one sink
    stop_one auth
    stop_one nats-secure
    if [ "${2:-}" = --secure ]; then
      start_secure
    else
      start_one sink "$BIN/vigia-sink"
      start_one publisher "$BIN/vigia-publisher"
    fi
    echo "waiting 7 s for the first samples (cpu and ram every second, processes every 5 s)..."
    sleep 7
    show
    ;;
  *)
    echo "usage: $0 [start|status|stop]" >&2
    exit 2
    ;;
esac
