#!/usr/bin/env bash
# Benchmarks every Grafana panel query over a big fleet: 100 hosts x 24 h at
# the publisher's default rates (CPU and RAM every 1 s, processes every 5 s),
# written through the sink's insert path (`vigia-bench fill`), then each
# panel query timed (p50/p95) at the dashboards' 1 h default and over the
# full 24 h (`vigia-bench dashboards`; bench/src/dashboards.rs).
#
# It runs its own mariadbd (port 3307, data in $VIGIA_BENCH_DIR, default
# /tmp/vigia-bench-db) so the shared server is left alone, and stops it at the
# end. The server has the settings vigia ships (mysql/conf/vigia.cnf: its
# buffer pool, page compression), so the reads pay what they pay in
# production; only the redo log is larger and flushed once a second, which
# speeds the fill and does not touch a read. VIGIA_BENCH_KEEP=1 keeps the filled data for another run. Arguments
# go to `vigia-bench dashboards`, e.g. `--dashboards DIR` to time another
# version's dashboards on the same data. `scripts/bench.sh dashboards` runs
# this script.
#   HOSTS=100 SPAN=24h bash scripts/bench-dashboards.sh
set -euo pipefail
cd "$(dirname "$0")/.."

HOSTS=${HOSTS:-100}
SPAN=${SPAN:-24h}
PORT=${VIGIA_BENCH_PORT:-3307}
DIR=${VIGIA_BENCH_DIR:-/tmp/vigia-bench-db}
# Another buffer pool than the shipped one, e.g. VIGIA_BENCH_BUFFER_POOL=4G.
POOL=${VIGIA_BENCH_BUFFER_POOL:-}
URL="mysql://root@127.0.0.1:$PORT/vigia_bench"

command -v mariadbd >/dev/null || bash scripts/services.sh
cargo build --release --locked -p vigia-bench --bins

fresh=
if [ ! -d "$DIR/mysql" ]; then
  mkdir -p "$DIR"
  mariadb-install-db --no-defaults --datadir="$DIR" --user="$(id -un)" \
    --auth-root-authentication-method=normal --skip-test-db >/dev/null
  fresh=1
fi
mariadbd --defaults-file="$PWD/mysql/conf/vigia.cnf" --datadir="$DIR" --socket="$DIR/mysqld.sock" \
  --pid-file="$DIR/mysqld.pid" --port="$PORT" --bind-address=127.0.0.1 \
  --user="$(id -un)" ${POOL:+--innodb-buffer-pool-size="$POOL"} \
  --innodb-log-file-size=1G --innodb-flush-log-at-trx-commit=2 \
  --log-error="$DIR/error.log" &
server=$!
stop() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  [ "${VIGIA_BENCH_KEEP:-0}" = 1 ] || rm -rf "$DIR"
}
trap stop EXIT
for _ in $(seq 1 100); do
  mariadb -h127.0.0.1 -P"$PORT" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.2
done

if [ -n "$fresh" ] || [ "${VIGIA_BENCH_REFILL:-0}" = 1 ]; then
  echo "== filling $HOSTS hosts x $SPAN through the sink's writer"
  mariadb -h127.0.0.1 -P"$PORT" -uroot -e 'DROP DATABASE IF EXISTS vigia_bench'
  target/release/vigia-bench fill --database-url "$URL" --hosts "$HOSTS" --span "$SPAN"
  mariadb -h127.0.0.1 -P"$PORT" -uroot -e "
    SELECT table_name, table_rows, ROUND((data_length + index_length) / 1048576) AS mib
    FROM information_schema.tables WHERE table_schema = 'vigia_bench' ORDER BY 3 DESC"
  # Every table written to disk, so that the timing reads what steady state
  # left there, not pages the fill still holds dirty.
  was=$(mariadb -h127.0.0.1 -P"$PORT" -uroot -N -e 'SELECT @@GLOBAL.innodb_max_dirty_pages_pct')
  mariadb -h127.0.0.1 -P"$PORT" -uroot -e 'SET GLOBAL innodb_max_dirty_pages_pct = 0'
  for _ in $(seq 1 600); do
    dirty=$(mariadb -h127.0.0.1 -P"$PORT" -uroot -N -e "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'" | cut -f2)
    [ "$dirty" = 0 ] && break
    sleep 1
  done
  [ "$dirty" = 0 ] || echo "warning: $dirty pages still dirty after 600 s; the timings read some from memory" >&2
  mariadb -h127.0.0.1 -P"$PORT" -uroot -e "SET GLOBAL innodb_max_dirty_pages_pct = $was"
  # What Grafana would meet: statistics current, as after normal operation.
  mariadb -h127.0.0.1 -P"$PORT" -uroot vigia_bench -e 'ANALYZE TABLE hosts, host_minutes, host_ten_minutes, process_ten_minutes, cpu_samples, ram_samples, process_samples, procs_snapshots, host_events, processes' >/dev/null
fi

echo "== timing every panel query"
target/release/vigia-bench dashboards --database-url "$URL" --range 1h --range 6h --range 24h --runs "${RUNS:-20}" "$@"
