#!/usr/bin/env bash
# vigia's benchmarks (issue 2). Each prints its exact configuration and its
# figures; none asserts a time. Each starts a private nats-server on a free
# port and uses a database of its own on MariaDB 127.0.0.1:3306, and removes
# both (and every process it started) when it ends, however it ends.
#
#   scripts/bench.sh footprint [--seconds 60 --processes 400 --against OTHER_PUBLISHER_BINARY]
#   scripts/bench.sh ingest    [--hosts 500 --processes 400 --rounds 5 --ceiling-chunk 1000 --sink-args "..."]
#   scripts/bench.sh latency   [--hosts 500 --processes 400 --seconds 60 --warmup 10 --poll-ms 20 --sink-args "..."]
#   scripts/bench.sh capacity  [--steps 250,500,1000,2000,4000 --step-seconds 180 --shared-mariadb --sink-args "..." --sinks N]
#   scripts/bench.sh storage   [--hosts 20 --span 6h --processes 400]
#   scripts/bench.sh history   [--hosts 50 --round-seconds 60 --rounds 13 --sink-args "..." --sink-log FILE]
#   scripts/bench.sh dashboards [--dashboards DIR]  (scripts/bench-dashboards.sh: HOSTS, SPAN, RUNS)
#   scripts/bench.sh all       (footprint, ingest and latency at their defaults, one after another)
#
# Timings: footprint ~70 s, ingest ~1-3 min, latency ~75 s plus the drain,
# capacity about 3 min a step (it stops one step past the knee), storage
# about a minute per 20 host-hours, history about 15 min (6 of them
# filling 90 days of 50 hosts, most of the rest waiting for the rounds'
# clock), dashboards about 10 min at full size
# (the fill writes 100 hosts x 24 h in about 6 min).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
what=$1
shift
case $what in
  footprint | ingest | latency | capacity | storage | history | all) ;;
  # Its own mariadbd, kept between runs on request: a script of its own.
  dashboards) exec bash scripts/bench-dashboards.sh "$@" ;;
  -h | --help | help) usage ;;
  *) echo "bench.sh: unknown benchmark '$what'" >&2; usage ;;
esac

bash scripts/services.sh
echo "== building (release)" >&2
cargo build --release --locked --workspace --bins >&2

bench_pid=
cleanup() {
  if [ -n "$bench_pid" ]; then
    # The bench runs in a session of its own: whatever it started and left
    # behind (it should leave nothing) is in its process group.
    kill -TERM -- "-$bench_pid" 2>/dev/null || true
    local leftovers
    leftovers=$(mariadb -h127.0.0.1 -P"${VIGIA_MYSQL_PORT:-3306}" -uroot -N -e \
      "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'vigia\\_t\\_bench\\_%\\_${bench_pid}\\_%'" 2>/dev/null || true)
    for db in $leftovers; do
      mariadb -h127.0.0.1 -P"${VIGIA_MYSQL_PORT:-3306}" -uroot -e "DROP DATABASE IF EXISTS \`$db\`" || true
    done
    bench_pid=
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run() {
  echo "== host: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r); $(mariadb --version | sed 's/,.*//'); $(nats-server --version)"
  setsid target/release/vigia-bench "$@" &
  bench_pid=$!
  local status=0
  wait "$bench_pid" || status=$?
  cleanup
  return "$status"
}

if [ "$what" = all ]; then
  run footprint
  run ingest
  run latency
else
  run "$what" "$@"
fi
