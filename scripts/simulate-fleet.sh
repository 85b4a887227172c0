#!/usr/bin/env bash
# A local stand-in for the GCP instance group: runs simulated VMs as separate
# vigia-publisher processes, each with its own host name, and grows and
# shrinks that set on a schedule as an autoscaler would. Hosts join; some
# leave cleanly (SIGTERM: the publisher flushes and sends `bye`), some are
# killed without a word (SIGKILL, as a VM deleted under load). At the end it
# checks in MariaDB, for every host, that:
#   - each kind (cpu, ram, procs) has seq 1..N with no gap and no duplicate,
#     from the host's one boot, and N fits how long the host lived;
#   - hello came once; bye came exactly when the host left cleanly;
#   - the hosts table says offline for every host that left (and, midway,
#     online for every host still running).
# It prints the hosts-online curve it produced, next to the same curve read
# back from the hosts table (what the Fleet dashboard's churn panel shows),
# each point read 3 intervals + 0.5 s after the change, the time the sink
# takes to notice a host that died without a bye; the two must agree.
#
# It runs its own nats-server (JetStream, on a free loopback port, in a
# temporary directory) and its own sink with its own database on the local
# MariaDB (127.0.0.1:3306, root, no password): a sink elsewhere on this
# machine sharing the stream's consumer would take part of the messages, and
# two streams cannot both hold telemetry.>.
#
# Ends with "simulate-fleet: N passed, N failed"; exits non-zero on a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

MIN=2 MAX=5 STEP=5 INTERVAL=500ms PROCS_INTERVAL=2s SCHEDULE='' BIN_DIR='' KEEP=''
MYSQL_HOST=${VIGIA_MYSQL_HOST:-127.0.0.1} MYSQL_PORT=${VIGIA_MYSQL_PORT:-3306}
DATABASE=

usage() {
  cat <<EOF
usage: scripts/simulate-fleet.sh [--min N] [--max N] [--step SECONDS] [--schedule N,N,...]
                                 [--interval D] [--procs-interval D] [--bin-dir DIR]
                                 [--database NAME] [--keep]
  --min, --max      fleet size bounds (default $MIN, $MAX); the default schedule
                    climbs from min to max one host a step and comes back down
  --schedule        the hosts wanted at each step instead, e.g. 2,6,3,8,1
  --step            seconds between steps (default $STEP)
  --interval        the publishers' cpu/ram interval (default $INTERVAL)
  --procs-interval  the publishers' procs interval (default $PROCS_INTERVAL)
  --bin-dir         where vigia-publisher and vigia-sink are (default: target/debug,
                    built with cargo if missing)
  --database        database for the sink (default vigia_sim_<run id>, dropped at
                    the end unless --keep)
EOF
}
while [ $# -gt 0 ]; do
  case $1 in
    --min) MIN=$2; shift 2 ;;
    --max) MAX=$2; shift 2 ;;
    --step) STEP=$2; shift 2 ;;
    --schedule) SCHEDULE=$2; shift 2 ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --procs-interval) PROCS_INTERVAL=$2; shift 2 ;;
    --bin-dir) BIN_DIR=$2; shift 2 ;;
    --database) DATABASE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; echo "simulate-fleet: unknown argument: $1" >&2; exit 2 ;;
  esac
done

log() { printf 'simulate-fleet: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Durations as milliseconds (the publishers take 500ms, 1s, 2m).
to_ms() {
  case $1 in
    *ms) echo "${1%ms}" ;;
    *s) echo $(( ${1%s} * 1000 )) ;;
    *m) echo $(( ${1%m} * 60000 )) ;;
    *) die "duration '$1': use e.g. 500ms, 2s, 1m" ;;
  esac
}
INTERVAL_MS=$(to_ms "$INTERVAL")
# The sink calls a silent host offline after three missed intervals, and
# never before 2 s of silence (sink/src/liveness.rs, MIN_SILENCE).
GRACE_MS=$(( 3 * INTERVAL_MS > 2000 ? 3 * INTERVAL_MS : 2000 ))
PROCS_MS=$(to_ms "$PROCS_INTERVAL")
[[ $MIN =~ ^[0-9]+$ && $MAX =~ ^[0-9]+$ && $MAX -ge 1 && $MAX -ge $MIN ]] || die "need 0 <= --min <= --max, --max >= 1"
[[ $STEP =~ ^[0-9]+$ && $STEP -ge 1 ]] || die "--step is whole seconds"

if [ -z "$SCHEDULE" ]; then
  steps=()
  for ((n = MIN; n <= MAX; n++)); do steps+=("$n"); done
  for ((n = MAX - 1; n >= MIN; n--)); do steps+=("$n"); done
else
  IFS=, read -r -a steps <<<"$SCHEDULE"
  for n in "${steps[@]}"; do [[ $n =~ ^[0-9]+$ ]] || die "--schedule: '$n' is not a count"; done
fi

# ---- binaries, services --------------------------------------------------------
if [ -z "$BIN_DIR" ]; then
  BIN_DIR=$REPO/target/debug
  if [ ! -x "$BIN_DIR/vigia-publisher" ] || [ ! -x "$BIN_DIR/vigia-sink" ]; then
    log "building vigia-publisher and vigia-sink"
    cargo build --locked -q -p vigia-publisher -p vigia-sink
  fi
fi
PUBLISHER=$BIN_DIR/vigia-publisher
SINK=$BIN_DIR/vigia-sink
if [ ! -x "$PUBLISHER" ] || [ ! -x "$SINK" ]; then die "no vigia-publisher/vigia-sink in $BIN_DIR"; fi
command -v nats-server >/dev/null || die "nats-server not found (scripts/services.sh installs it)"
command -v mariadb >/dev/null || die "mariadb client not found (scripts/services.sh installs it)"

RUN=$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
DATABASE=${DATABASE:-vigia_sim_$RUN}
[[ $DATABASE =~ ^[A-Za-z0-9_]+$ ]] || die "--database: letters, digits and _ only"
WORK=$(mktemp -d)
sql() { mariadb -h"$MYSQL_HOST" -P"$MYSQL_PORT" -uroot -N -B "$@"; }
sql -e 'SELECT 1' >/dev/null || die "cannot reach MariaDB as root at $MYSQL_HOST:$MYSQL_PORT"

declare -A PID=() STARTED=() STOPPED=() HOW=()
NATS_PID='' SINK_PID=''
cleanup() {
  local h
  for h in "${!PID[@]}"; do
    [ -n "${STOPPED[$h]:-}" ] || kill -KILL "${PID[$h]}" 2>/dev/null || true
  done
  [ -z "$SINK_PID" ] || { kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null; } || true
  [ -z "$NATS_PID" ] || { kill "$NATS_PID" 2>/dev/null; wait "$NATS_PID" 2>/dev/null; } || true
  if [ -z "$KEEP" ]; then
    sql -e "DROP DATABASE IF EXISTS \`$DATABASE\`" 2>/dev/null || true
    rm -rf "$WORK"
  else
    log "kept: database $DATABASE, logs in $WORK"
  fi
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

# A private JetStream server on a port the kernel picks.
nats-server -a 127.0.0.1 -p -1 -js -sd "$WORK/jetstream" -l "$WORK/nats.log" &
NATS_PID=$!
for _ in $(seq 100); do
  NATS_URL=$(sed -n 's/.*Listening for client connections on \(127.0.0.1:[0-9]*\).*/nats:\/\/\1/p' "$WORK/nats.log" 2>/dev/null | head -1 || true)
  [ -n "$NATS_URL" ] && break
  sleep 0.1
done
[ -n "${NATS_URL:-}" ] || die "nats-server did not start: $(tail -5 "$WORK/nats.log")"

"$SINK" --nats-url "$NATS_URL" --database-url "mysql://root@$MYSQL_HOST:$MYSQL_PORT/$DATABASE" \
  --batch-wait 100ms 2>"$WORK/sink.log" &
SINK_PID=$!
for _ in $(seq 150); do
  sql -e "SELECT 1 FROM \`$DATABASE\`.hosts LIMIT 1" >/dev/null 2>&1 && break
  kill -0 "$SINK_PID" 2>/dev/null || die "the sink exited: $(tail -5 "$WORK/sink.log")"
  sleep 0.2
done
sql -e "SELECT 1 FROM \`$DATABASE\`.hosts LIMIT 1" >/dev/null 2>&1 || die "the sink made no schema in $DATABASE"
log "run $RUN: NATS $NATS_URL, sink into $DATABASE, schedule ${steps[*]} every ${STEP}s"

# ---- the fleet -------------------------------------------------------------------
next=0 alive=() removals=0 curve=()
join() {
  local host
  next=$((next + 1))
  host=$(printf 'sim-%s-%02d' "$RUN" "$next")
  "$PUBLISHER" --nats-url "$NATS_URL" --host "$host" --interval "$INTERVAL" \
    --procs-interval "$PROCS_INTERVAL" 2>"$WORK/$host.log" &
  PID[$host]=$!
  STARTED[$host]=$(now_ms)
  alive+=("$host")
}
# Takes the oldest host away, alternately cleanly and by a kill, so both
# happen whenever the fleet shrinks more than once.
leave() {
  local host=${alive[0]} pid
  alive=("${alive[@]:1}")
  pid=${PID[$host]}
  if [ $((removals % 2)) -eq 0 ]; then
    HOW[$host]='bye'
    kill -TERM "$pid"
    wait "$pid" || log "$host: publisher exited with $? after SIGTERM"
  else
    HOW[$host]='kill'
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
  fi
  STOPPED[$host]=$(now_ms)
  removals=$((removals + 1))
}

T0=$(now_ms)
for target in "${steps[@]}"; do
  while [ ${#alive[@]} -lt "$target" ]; do join; done
  while [ ${#alive[@]} -gt "$target" ]; do leave; done
  curve+=("$(now_ms) ${#alive[@]}")
  log "t=$(( ($(now_ms) - T0) / 1000 ))s  ${#alive[@]} hosts"
  sleep "$STEP"
  for host in "${alive[@]}"; do
    kill -0 "${PID[$host]}" 2>/dev/null || die "$host's publisher died by itself: $(tail -5 "$WORK/$host.log")"
  done
done

passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
host_like="sim-$RUN-%"

# Midway: the sink marks a killed host offline after three missed intervals
# (it sweeps every second); running hosts must still be online.
sleep "$(( (GRACE_MS + 2500) / 1000 ))"
declare -A STATUS=()
while read -r host status; do STATUS[$host]=$status; done \
  < <(sql "$DATABASE" -e "SELECT host, status FROM hosts WHERE host LIKE '$host_like'")
for host in "${!PID[@]}"; do
  want=online
  [ -z "${STOPPED[$host]:-}" ] || want=offline
  if [ "${STATUS[$host]:-absent}" = "$want" ]; then ok; else bad "$host: status ${STATUS[$host]:-absent} while it ${HOW[$host]:-runs}, want $want"; fi
done

# The rest leave cleanly, as when the whole group is deleted.
while [ ${#alive[@]} -gt 0 ]; do removals=0; leave; done
curve+=("$(now_ms) 0")

# Wait until the sink has written the last of it: every host offline.
for _ in $(seq 60); do
  online=$(sql "$DATABASE" -e "SELECT COUNT(*) FROM hosts WHERE host LIKE '$host_like' AND status = 'online'")
  [ "$online" = 0 ] && break
  sleep 0.5
done
sleep 1   # a last batch in flight

# ---- verification ----------------------------------------------------------------
declare -A STAT=()
# kind host -> "boots rows min max boot"
while IFS=$'\t' read -r kind host boots rows lo hi boot; do
  STAT[$kind.$host]="$boots $rows $lo $hi $boot"
done < <(sql "$DATABASE" -e "
  SELECT 'cpu', host, COUNT(DISTINCT boot), COUNT(*), MIN(seq), MAX(seq), MIN(boot) FROM cpu_samples WHERE host LIKE '$host_like' GROUP BY host
  UNION ALL SELECT 'ram', host, COUNT(DISTINCT boot), COUNT(*), MIN(seq), MAX(seq), MIN(boot) FROM ram_samples WHERE host LIKE '$host_like' GROUP BY host
  UNION ALL SELECT 'procs', host, COUNT(DISTINCT boot), COUNT(*), MIN(seq), MAX(seq), MIN(boot) FROM procs_snapshots WHERE host LIKE '$host_like' GROUP BY host
  UNION ALL SELECT kind, host, COUNT(DISTINCT boot), COUNT(*), MIN(seq), MAX(seq), MIN(boot) FROM host_events WHERE host LIKE '$host_like' GROUP BY host, kind
  UNION ALL SELECT 'hosts', host, 1, 1, 0, 0, CONCAT(status, ':', boot) FROM hosts WHERE host LIKE '$host_like'")

printf '%-16s %6s %5s  %-9s %-9s %-9s %-5s %-3s %s\n' host lived left cpu ram procs hello bye status
mapfile -t hosts < <(printf '%s\n' "${!PID[@]}" | sort)
for host in "${hosts[@]}"; do
  lived_ms=$(( STOPPED[$host] - STARTED[$host] ))
  read -r _ _ _ _ hello_boot <<<"${STAT[hello.$host]:-0 0 0 0 -}"
  cols=()
  for kind in cpu ram procs; do
    read -r boots rows lo hi boot <<<"${STAT[$kind.$host]:-0 0 0 0 -}"
    case $kind in procs) every=$PROCS_MS ;; *) every=$INTERVAL_MS ;; esac
    # At least half the samples its life allowed: the machine is shared and a
    # killed publisher loses what it had not sent yet.
    least=$(( lived_ms / every / 2 ))
    [ "$kind" = procs ] || [ "$least" -ge 1 ] || least=1
    if [ "$rows" -eq 0 ] && [ "$least" -eq 0 ]; then
      ok; cols+=("-")
    elif [ "$boots" = 1 ] && [ "$lo" = 1 ] && [ "$rows" = "$hi" ] && [ "$hi" -ge "$least" ] && [ "$boot" = "$hello_boot" ]; then
      ok; cols+=("1..$hi")
    else
      bad "$host $kind: boots $boots, $rows rows, seq $lo..$hi (want one boot = hello's, 1..N without gaps, N >= $least)"
      cols+=("BAD")
    fi
  done
  read -r _ rows lo _ _ <<<"${STAT[hello.$host]:-0 0 0 0 -}"
  if [ "$rows" = 1 ] && [ "$lo" = 1 ]; then ok; else bad "$host: $rows hello rows (want 1, seq 1)"; fi
  read -r _ byes _ _ _ <<<"${STAT[bye.$host]:-0 0 0 0 -}"
  want_byes=0
  [ "${HOW[$host]}" = bye ] && want_byes=1
  if [ "$byes" = "$want_byes" ]; then ok; else bad "$host: $byes bye rows after leaving by ${HOW[$host]} (want $want_byes)"; fi
  read -r _ _ _ _ status_boot <<<"${STAT[hosts.$host]:-0 0 0 0 absent:-}"
  if [ "$status_boot" = "offline:$hello_boot" ]; then ok; else bad "$host: hosts row '$status_boot', want offline:$hello_boot"; fi
  printf '%-16s %5ss %5s  %-9s %-9s %-9s %-5s %-3s %s\n' "$host" "$((lived_ms / 1000))" "${HOW[$host]}" \
    "${cols[@]}" "$rows" "$byes" "${status_boot%%:*}"
done

# ---- the curve -------------------------------------------------------------------
echo
echo "hosts online: simulated, and as the hosts table tells it (first_seen .. offline_since)"
printf '%8s %10s %8s\n' "t (s)" simulated "in db"
for point in "${curve[@]}"; do
  read -r at count <<<"$point"
  # Read once the sink can know: a killed host counts as online for three
  # missed intervals.
  probe=$(( at + GRACE_MS + 500 ))
  in_db=$(sql "$DATABASE" -e "SET time_zone = '+00:00'; SELECT COUNT(*) FROM hosts WHERE host LIKE '$host_like'
    AND first_seen <= FROM_UNIXTIME($probe / 1000)
    AND (offline_since IS NULL OR offline_since > FROM_UNIXTIME($probe / 1000))")
  printf '%8.1f %10s %8s\n' "$(( at - T0 ))e-3" "$count" "$in_db"
  if [ "$count" = "$in_db" ]; then ok; else bad "at t=$(( (at - T0) / 1000 ))s the hosts table shows $in_db hosts online, the simulation had $count"; fi
done
echo
echo "simulate-fleet: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
