#!/usr/bin/env bash
# What the sink's own health costs its ingest (issue 14: at most 2 %):
# scripts/bench.sh ingest run in pairs, alternately without the health rows
# and the metrics endpoint (--health-interval off) and with them (rows every
# second instead of the default 5 s, /metrics served and scraped every
# second by curl, harsher than any Prometheus), then the medians of each
# side's sink/ceiling ratios side by side. The ceiling (plain INSERTs on the
# same server, in the same rounds) takes out the load of a shared machine.
#
#   scripts/bench-health.sh [--pairs 2] [bench.sh ingest flags, e.g. --hosts 500 --rounds 5]
set -euo pipefail
cd "$(dirname "$0")/.."

pairs=2
if [ "${1:-}" = "--pairs" ]; then
  pairs=$2
  shift 2
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
with="--health-interval 1s --metrics-addr 127.0.0.1:$port"
without="--health-interval off"

scraper=
stop_scraper() { [ -n "$scraper" ] && kill "$scraper" 2>/dev/null; scraper=; }
trap stop_scraper EXIT

declare -A ratios=([without]="" [with]="")
for pair in $(seq 1 "$pairs"); do
  for side in without with; do
    args=$without
    if [ "$side" = with ]; then
      args=$with
      (while sleep 1; do curl -s -o /dev/null "http://127.0.0.1:$port/metrics" || true; done) &
      scraper=$!
    fi
    echo "== pair $pair, $side: --sink-args \"$args\"" >&2
    out=$(bash scripts/bench.sh ingest --sink-args "$args" "$@" | tee /dev/stderr)
    stop_scraper
    ratio=$(sed -n 's/.*median of per-round ratios \([0-9.]*\) %.*/\1/p' <<<"$out")
    ratios[$side]+="$ratio "
  done
done
echo "== sink ingest as % of the ceiling, median of per-round ratios, per run"
echo "without health/metrics: ${ratios[without]}"
echo "with health every 1 s + /metrics scraped every 1 s: ${ratios[with]}"
python3 - "${ratios[without]}" "${ratios[with]}" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
ma, mb = statistics.median(a), statistics.median(b)
print(f"median: without {ma:.1f} %, with {mb:.1f} %: with/without = {mb / ma * 100:.1f} % "
      f"(cost {100 - mb / ma * 100:+.1f} % of ingest; goal: at most 2 %)")
PY
