#!/usr/bin/env bash
# Runs vigia on this machine: NATS and MariaDB (installed from Debian's
# packages and started if absent), the sink, and a publisher for this host.
# Then shows what reached MySQL.
#
#   scripts/run-local.sh          start (again) and show the data
#   scripts/run-local.sh status   show the data
#   scripts/run-local.sh stop     stop the sink and the publisher
#
# Settings: VIGIA_NATS_URL, VIGIA_DATABASE_URL (default
# mysql://root@127.0.0.1:3306/vigia), and any other VIGIA_* variable the
# binaries read (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=.run
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
  target/release/vigia-publisher --once           # one sample of each kind as JSON, no NATS
  scripts/run-local.sh stop                       # stop the sink and the publisher
EOT
}

case "${1:-start}" in
  stop)
    stop_one publisher
    stop_one sink
    ;;
  status)
    show
    ;;
  start)
    mkdir -p "$RUN"
    bash scripts/services.sh
    echo "building (release)..."
    cargo build --release --locked -q -p vigia-publisher -p vigia-sink
    stop_one publisher
    stop_one sink
    start_one sink target/release/vigia-sink
    start_one publisher target/release/vigia-publisher
    echo "waiting 7 s for the first samples (cpu and ram every second, processes every 5 s)..."
    sleep 7
    show
    ;;
  *)
    echo "usage: $0 [start|status|stop]" >&2
    exit 2
    ;;
esac
