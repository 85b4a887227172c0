#!/usr/bin/env bash
# Least privilege on MySQL, on the real MariaDB (127.0.0.1:3306, root):
# creates the sink's and Grafana's users exactly as compose's first start does
# (sources mysql/init/*.sh with the entrypoint's docker_process_sql), runs the
# real sink as its user — every migration, then a publisher's samples written
# — and shows what each user is refused: the sink cannot DROP its database,
# drop its tables, touch another schema or grant; Grafana cannot write or drop.
# A private nats-server (JetStream, temporary store, free port) carries the
# samples. Binaries from $VIGIA_BIN (default target/debug; built if absent).
# Ends with "mysql-privileges: N passed, N failed"; non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit
# shellcheck source=scripts/lib/common.sh
. scripts/lib/common.sh

bin=${VIGIA_BIN:-target/debug}
if [ ! -x "$bin/vigia-sink" ] || [ ! -x "$bin/vigia-publisher" ]; then
  cargo build -q --locked -p vigia-sink -p vigia-publisher || die "cannot build the sink and the publisher"
  bin=target/debug
fi
root=(mariadb -h127.0.0.1 -P3306 -uroot)
"${root[@]}" -e 'SELECT 1' >/dev/null || die "no MariaDB as root on 127.0.0.1:3306"

id=$$_$RANDOM
db=vigia_priv_$id
other=vigia_priv_other_$id
sink_user=vigia_priv_sink_$id
grafana_user=vigia_priv_grafana_$id
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  "${root[@]}" -e "DROP DATABASE IF EXISTS \`$db\`; DROP DATABASE IF EXISTS \`$other\`;
    DROP USER IF EXISTS '$sink_user'@'%'; DROP USER IF EXISTS '$grafana_user'@'%'" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# --- the users, as the image's entrypoint makes them -----------------------
"${root[@]}" -e "CREATE DATABASE \`$db\` CHARACTER SET utf8mb4; CREATE DATABASE \`$other\`;
  CREATE TABLE \`$other\`.precious (x INT)"
docker_process_sql() { "${root[@]}" "$@"; }
if (
  export MARIADB_DATABASE=$db VIGIA_SINK_DB_USER=$sink_user VIGIA_SINK_DB_PASSWORD=sinkpw$id
  export VIGIA_GRAFANA_DB_USER=$grafana_user VIGIA_GRAFANA_DB_PASSWORD=grafanapw$id
  for f in mysql/init/*.sh; do
    # shellcheck disable=SC1090
    . "$f" || exit 1
  done
); then
  pass "mysql/init/*.sh create the sink's and Grafana's users"
else
  fail "mysql/init/*.sh failed"
fi
# shellcheck disable=SC2034 # used through refused's nameref
as_sink=(mariadb -h127.0.0.1 -P3306 "-u$sink_user" "-psinkpw$id" "$db")
# shellcheck disable=SC2034 # used through refused's nameref
as_grafana=(mariadb -h127.0.0.1 -P3306 "-u$grafana_user" "-pgrafanapw$id" "$db")

# --- the sink, as its user: migrations, then writes -------------------------
nats=$(command -v nats-server || echo /usr/sbin/nats-server)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$nats" -a 127.0.0.1 -p "$port" -js -sd "$work/js" >"$work/nats.log" 2>&1 &
pids+=($!)
"$bin/vigia-sink" --nats-url "nats://127.0.0.1:$port" --database-url "mysql://$sink_user:sinkpw$id@127.0.0.1:3306/$db" \
  --batch-wait 50ms --minute-retention 7d --ten-minute-retention 7d >"$work/sink.log" 2>&1 &
pids+=($!)
migrations=$(find "mysql/migrations" -name '*.sql' | wc -l)
applied=0
for _ in $(seq 1 600); do
  applied=$("${root[@]}" -N -e "SELECT COUNT(*) FROM \`$db\`._sqlx_migrations WHERE success" 2>/dev/null || echo 0)
  [ "$applied" = "$migrations" ] && break
  kill -0 "${pids[1]}" 2>/dev/null || break
  sleep 0.2
done
if [ "$applied" = "$migrations" ]; then
  pass "the sink, as its own user, applies all $migrations migrations (0004's DROP TABLE included)"
else
  fail "the sink applied $applied of $migrations migrations as its user" "$(tail -5 "$work/sink.log")"
fi
"$bin/vigia-publisher" --nats-url "nats://127.0.0.1:$port" --host priv-check --interval 200ms --no-control \
  >"$work/pub.log" 2>&1 &
pids+=($!)
rows=0
for _ in $(seq 1 300); do
  rows=$("${root[@]}" -N -e "SELECT COUNT(*) FROM \`$db\`.cpu_samples WHERE host='priv-check'" 2>/dev/null || echo 0)
  [ "$rows" -gt 0 ] && break
  sleep 0.2
done
if [ "$rows" -gt 0 ]; then
  pass "the sink, as its own user, writes a publisher's samples ($rows cpu row)"
else
  fail "no sample written by the sink as its user" "$(tail -5 "$work/sink.log"; tail -3 "$work/pub.log" | cut -c1-300)"
fi

# --- retention drops expired days as the sink's user ------------------------
# A new database has a day for each of the last eight (0010); with every
# tier kept at most 7d (the flags above) the sink's first pass drops the
# oldest of every partitioned table, which needs DROP on each
# (05-sink-user.sh).
oldest=d$(date -u -d '8 days ago' +%Y%m%d)
left=""
for _ in $(seq 1 150); do
  left=$("${root[@]}" -N -e "SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME) FROM information_schema.PARTITIONS
    WHERE TABLE_SCHEMA='$db' AND PARTITION_NAME='$oldest'")
  [ "$left" = "NULL" ] && break
  sleep 0.2
done
partitioned=$("${root[@]}" -N -e "SELECT COUNT(DISTINCT TABLE_NAME) FROM information_schema.PARTITIONS
  WHERE TABLE_SCHEMA='$db' AND PARTITION_NAME='future'")
if [ "$left" = "NULL" ] && [ "$partitioned" -ge 10 ]; then
  pass "the sink, as its own user, drops the expired day $oldest of all $partitioned partitioned tables"
else
  fail "the day $oldest is still in: $left" "$(grep -i 'retention' "$work/sink.log" | tail -3 | cut -c1-300)"
fi

# --- what each user is refused ----------------------------------------------
refused() { # refused WHO-ARRAY-NAME DESCRIPTION SQL
  local -n who=$1
  local out
  if out=$("${who[@]}" -e "$3" 2>&1); then
    fail "$2 was allowed"
  elif grep -qiE 'denied|ERROR 11(42|43|44)|ERROR 1044|ERROR 1227' <<<"$out"; then
    pass "$2 is refused ($(tail -1 <<<"$out" | cut -c1-70))"
  else
    fail "$2 failed for another reason" "$out"
  fi
}
refused as_sink "the sink: DROP DATABASE of its own database" "DROP DATABASE \`$db\`"
refused as_sink "the sink: DROP TABLE of the audit trail" "DROP TABLE commands"
refused as_sink "the sink: DROP TABLE of the hosts" "DROP TABLE hosts"
refused as_sink "the sink: TRUNCATE of a data table" "TRUNCATE TABLE hosts"
refused as_sink "the sink: reading another schema" "SELECT * FROM \`$other\`.precious"
refused as_sink "the sink: DROP TABLE in another schema" "DROP TABLE \`$other\`.precious"
refused as_sink "the sink: reading mysql.user" "SELECT * FROM mysql.user"
refused as_sink "the sink: GRANT" "GRANT SELECT ON \`$db\`.* TO '$grafana_user'@'%'"
refused as_grafana "Grafana: INSERT" "INSERT INTO host_events (host, ts, kind) VALUES ('x', NOW(), 'x')"
refused as_grafana "Grafana: DELETE" "DELETE FROM cpu_samples"
refused as_grafana "Grafana: DROP DATABASE" "DROP DATABASE \`$db\`"
refused as_grafana "Grafana: DROP TABLE" "DROP TABLE cpu_samples"
if [ "$("${as_grafana[@]}" -N -e "SELECT COUNT(*) FROM cpu_samples WHERE host='priv-check'" 2>&1)" -gt 0 ]; then
  pass "Grafana reads the samples"
else
  fail "Grafana cannot read cpu_samples"
fi
if [ "$("${root[@]}" -N -e "SELECT COUNT(*) FROM \`$db\`.cpu_samples" 2>&1)" -gt 0 ] &&
  [ "$("${root[@]}" -N -e "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name='$db'")" = 1 ]; then
  pass "after the refusals the database and its samples are intact"
else
  fail "the database or its samples were harmed"
fi
finish
