#!/bin/bash
# The sink container's healthcheck.
#
# With VIGIA_METRICS_ADDR set (docker-compose.yml sets it), GET /healthz on
# its port: 200 while the sink is connected to NATS and MySQL takes its
# writes, 503 with the reason otherwise. Plain bash (/dev/tcp), since the
# image has no HTTP client.
#
# Without it, healthy while the sink holds an established TCP connection to
# NATS and one to MySQL (read from /proc/net/tcp).
set -eu

if [ -n "${VIGIA_METRICS_ADDR:-}" ]; then
  port=${VIGIA_METRICS_ADDR##*:}
  exec 3<>"/dev/tcp/127.0.0.1/$port" || { echo "nothing listens on port $port"; exit 1; }
  printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 3 status <&3 || { echo "no answer on port $port"; exit 1; }
  body=$(tail -n 1 <&3 || true)
  exec 3<&-
  case $status in
    "HTTP/1."?" 200"*) exit 0 ;;
    *) echo "unhealthy: ${body:-$status}"; exit 1 ;;
  esac
fi

# The port of a URL such as nats://nats:4222 or mysql://u:p@mysql:3306/db.
port_of() {
  rest=${1#*://}
  rest=${rest##*@}
  rest=${rest%%/*}
  rest=${rest%%\?*}
  case $rest in
    *:*) printf '%s' "${rest##*:}" ;;
    *) printf '%s' "$2" ;;
  esac
}

# Is there an ESTABLISHED (state 01) connection to this remote port?
connected_to() {
  hex=$(printf '%04X' "$1")
  awk -v port="$hex" '
    FNR > 1 && $4 == "01" { n = split($3, a, ":"); if (a[n] == port) found = 1 }
    END { exit found ? 0 : 1 }
  ' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# VIGIA_NATS_URL may list a cluster's nodes, comma-separated: a connection
# to any one of them will do.
nats_ports=
nats_ok=
for url in $(printf '%s' "${VIGIA_NATS_URL:-nats://127.0.0.1:4222}" | tr ',' ' '); do
  port=$(port_of "$url" 4222)
  nats_ports="${nats_ports:+$nats_ports, }$port"
  if connected_to "$port"; then nats_ok=1; fi
done
mysql_port=$(port_of "${VIGIA_DATABASE_URL:-mysql://127.0.0.1:3306/vigia}" 3306)
[ -n "$nats_ok" ] || { echo "no connection to NATS (port $nats_ports)"; exit 1; }
connected_to "$mysql_port" || { echo "no connection to MySQL (port $mysql_port)"; exit 1; }
