# shellcheck shell=sh
# The in-VM checks of the vigia module (run by /init under busybox sh).
# Each check prints one `CHECK ok|FAIL` line; the host counts them.
# shellcheck source=scripts/kernel/guest/lib.sh
. /vigia/lib.sh
KO=/lib/modules/vigia.ko
PUB=/usr/bin/vigia-publisher

# --- load ---------------------------------------------------------------
if insmod "$KO"; then pass "insmod"; else fail "insmod" "insmod $KO failed"; fi
for f in cpu ram procs; do
  mode=$(stat -c %a "/proc/vigia/$f" 2>/dev/null)
  if [ "$mode" = 444 ]; then pass "mode /proc/vigia/$f"; else fail "mode /proc/vigia/$f" "mode '$mode', want 444"; fi
done
cpus=$(grep -c '^cpu[0-9]' /proc/stat)
if [ "$cpus" -ge 2 ]; then pass "smp: $cpus CPUs"; else fail "smp" "guest sees $cpus CPU(s)"; fi

# Named processes that test the escaping of names: space, tab, backslash,
# newline. A shell renames itself through /proc/self/comm, then blocks in
# open() of a FIFO nobody writes (no child processes come and go).
mkfifo /tmp/never
spawn_named() { # NAME
  sh -c 'printf "%b" "$1" >/proc/self/comm; read -r x </tmp/never' - "$1" &
}
spawn_named 'sp ace\ttab'
P_SPACE=$!
spawn_named 'back\\slash'
P_BACK=$!
spawn_named 'new\nline'
P_NL=$!
sleep 1

# --- ram ----------------------------------------------------------------
# total exact; each other figure between what meminfo said just before and
# just after, give or take 2 MiB (the reading processes themselves).
cp /proc/meminfo /tmp/mi1; cp /proc/vigia/ram /tmp/ram; cp /proc/meminfo /tmp/mi2
export_file ram /tmp/ram
if awk -v tol=2048 '
  FNR == 1 { f++ }
  f == 1 { if (FNR == 1) { if ($0 != "vigia-ram 1") { print "header: " $0; bad = 1 } } else v[$1] = $2; next }
  { sub(":", "", $1); if (f == 2) a[$1] = $2; else b[$1] = $2 }
  END {
    split("total_kib:MemTotal free_kib:MemFree available_kib:MemAvailable buffers_kib:Buffers cached_kib:Cached shared_kib:Shmem slab_reclaimable_kib:SReclaimable swap_total_kib:SwapTotal swap_free_kib:SwapFree", pairs, " ")
    for (i in pairs) {
      split(pairs[i], kv, ":"); k = kv[1]; m = kv[2]
      if (!(k in v)) { print "missing " k; bad = 1; continue }
      lo = a[m] < b[m] ? a[m] : b[m]; hi = a[m] < b[m] ? b[m] : a[m]
      if (k == "total_kib") { if (v[k] != a[m]) { print k " " v[k] " != MemTotal " a[m]; bad = 1 } }
      else if (v[k] < lo - tol || v[k] > hi + tol) { print k " " v[k] " outside " m " " lo ".." hi; bad = 1 }
    }
    exit bad
  }' /tmp/ram /tmp/mi1 /tmp/mi2 >/tmp/ram.err; then
  pass "ram agrees with /proc/meminfo"
else
  fail "ram agrees with /proc/meminfo" "$(tr '\n' ';' </tmp/ram.err)"
fi

# --- procs --------------------------------------------------------------
# Snapshots taken with shell builtins only (no fork), so the set of
# processes cannot change because of the snapshot itself.
procs_vs_proc() {
  : >/tmp/pids.mod; : >/tmp/pids.proc
  {
    read -r hdr; read -r cols
    while read -r pid ppid _uid state _ut _st _rss _vsz _thr _start name; do
      echo "$pid $ppid $state $name" >>/tmp/pids.mod
    done
  } </proc/vigia/procs
  for d in /proc/[0-9]*; do echo "${d#/proc/}" >>/tmp/pids.proc; done
  [ "$hdr" = "vigia-procs 1" ] || { echo "header '$hdr'"; return 1; }
  [ "$cols" = "pid ppid uid state utime_ns stime_ns rss_kib vsz_kib threads start_ns name" ] || { echo "columns '$cols'"; return 1; }
  cut -d' ' -f1 /tmp/pids.mod | sort -n >/tmp/a; sort -n /tmp/pids.proc >/tmp/b
  if ! cmp -s /tmp/a /tmp/b; then echo "pid sets differ: $(diff /tmp/a /tmp/b | grep '^[-+][0-9]' | tr '\n' ' ')"; return 1; fi
  bad=0
  while read -r pid ppid state name; do
    read -r line </proc/"$pid"/stat 2>/dev/null || continue
    rest=${line##*) }
    # shellcheck disable=SC2086
    set -- $rest
    pstate=$1 pppid=$2
    comm=${line#*(}; comm=${comm%) *}
    [ "$pid" = "$P_NL" ] && continue   # its name has a newline: checked below
    if [ "$pppid" != "$ppid" ]; then echo "pid $pid ppid $ppid vs $pppid"; bad=1; fi
    if [ "$pstate" != "$state" ] && [ "$pid" != "$$" ]; then echo "pid $pid state $state vs $pstate"; bad=1; fi
    # /proc gives kernel threads (children of kthreadd) a longer name than
    # their 15-byte comm, which is all the module reports (FORMAT.md).
    n=$(unescape "$name")
    if [ "$n" != "$comm" ] && ! { [ "$ppid" = 2 ] && [ "${comm#"$n"}" != "$comm" ]; }; then
      echo "pid $pid name '$name' vs '$comm'"; bad=1
    fi
  done </tmp/pids.mod
  return $bad
}
ok=0
for try in 1 2 3 4 5; do
  if procs_vs_proc >/tmp/procs.err 2>&1; then ok=1; break; fi
  sleep 1
done
if [ $ok = 1 ]; then pass "procs: pid set, ppids, states, names equal /proc (try $try)"; else fail "procs vs /proc" "$(tr '\n' ';' </tmp/procs.err | cut -c1-600)"; fi

cp /proc/vigia/procs /tmp/procs
export_file procs /tmp/procs
check_name() { # PID ESCAPED
  got=$(awk -v p="$1" '$1 == p { print $11 }' /tmp/procs)
  if [ "$got" = "$2" ]; then pass "name escaping: $2"; else fail "name escaping" "pid $1: '$got', want '$2'"; fi
}
check_name "$P_SPACE" 'sp\040ace\011tab'
check_name "$P_BACK" 'back\134slash'
check_name "$P_NL" 'new\012line'
if awk 'NR > 2 && NF != 11 { exit 1 }' /tmp/procs; then pass "procs: 11 fields on every line"; else fail "procs fields" "a line has other than 11 fields"; fi
# pid 1 (this init) has threads 1, a start time, and a resident size.
if awk '$1 == 1 && $9 == 1 && $7 > 0 && $8 >= $7 { f = 1 } END { exit !f }' /tmp/procs; then
  pass "procs: pid 1 rss/vsz/threads"
else
  fail "procs: pid 1" "$(grep '^1 ' /tmp/procs)"
fi
kill "$P_SPACE" "$P_BACK" "$P_NL"

# --- cpu ----------------------------------------------------------------
# Each counter, scaled to USER_HZ (100/s: 10^7 ns) as /proc/stat prints it,
# lies between two module reads taken before and after /proc/stat.
cp /proc/vigia/cpu /tmp/cpu1; cp /proc/stat /tmp/stat; sleep 1; cp /proc/vigia/cpu /tmp/cpu2
export_file cpu /tmp/cpu2
if awk '
  FNR == 1 { f++ }
  f == 1 && FNR == 1 && $0 != "vigia-cpu 1" { print "header: " $0; bad = 1 }
  f == 1 && FNR == 2 && $0 != "columns user nice system idle iowait irq softirq steal" { print "columns: " $0; bad = 1 }
  f == 1 && /^cpu/ { for (i = 2; i <= 9; i++) m1[$1, i] = $i; n1++ }
  f == 2 && /^cpu/ { for (i = 2; i <= 9; i++) s[$1, i] = $i; ns++ }
  f == 3 && /^cpu/ { for (i = 2; i <= 9; i++) { m2[$1, i] = $i; sum1[$1] += m1[$1, i]; sum2[$1] += $i }; n2++; lines[$1] = 1 }
  f == 3 && $1 == "tasks_running" && $2 < 1 { print "tasks_running " $2; bad = 1 }
  f == 3 && $1 == "tasks_total" { tt = $2 }
  f == 3 && $1 == "loadavg_milli" { la = NF }
  END {
    if (n1 != ns || n2 != ns) { print "cpu lines: module " n1 "/" n2 ", /proc/stat " ns; bad = 1 }
    for (c in lines) {
      if (!(sum2[c] > sum1[c])) { print c " did not move forward"; bad = 1 }
      for (i = 2; i <= 9; i++) {
        lo = int(m1[c, i] / 10000000); hi = int(m2[c, i] / 10000000)
        if (m2[c, i] < m1[c, i]) { print c " field " i " went backwards"; bad = 1 }
        if (s[c, i] < lo || s[c, i] > hi) { print c " field " i ": /proc/stat " s[c, i] " not in " lo ".." hi; bad = 1 }
      }
    }
    if (tt < 10) { print "tasks_total " tt; bad = 1 }
    if (la != 4) { print "loadavg_milli has " la " fields"; bad = 1 }
    exit bad
  }' /tmp/cpu1 /tmp/stat /tmp/cpu2 >/tmp/cpu.err; then
  pass "cpu agrees with /proc/stat and moves forward"
else
  fail "cpu agrees with /proc/stat" "$(tr '\n' ';' </tmp/cpu.err | cut -c1-600)"
fi

# --- publisher: module vs procfs -----------------------------------------
if [ -x "$PUB" ]; then
  if "$PUB" --once --source module >/tmp/once.module 2>/tmp/once.module.err &&
    "$PUB" --once --source procfs >/tmp/once.procfs 2>/tmp/once.procfs.err; then
    pass "publisher --once runs with both sources"
  else
    fail "publisher --once" "$(cat /tmp/once.module.err /tmp/once.procfs.err | tr '\n' ';' | cut -c1-600)"
  fi
  # Compared on the host (jq): same pids, same RAM total, CPU % close.
  export_file once.module /tmp/once.module
  export_file once.procfs /tmp/once.procfs
else
  fail "publisher" "$PUB missing from the initramfs"
fi

# --- stress: readers while processes fork and exit, 30 s -----------------
STRESS_S=${STRESS_S:-30}
end=$(($(date +%s) + STRESS_S))
: >/tmp/stress.bad
for r in 1 2 3 4; do
  (
    n=0
    while [ "$(date +%s)" -lt "$end" ]; do
      cat /proc/vigia/procs >/tmp/r$r || echo "reader $r: read failed" >>/tmp/stress.bad
      read -r h </tmp/r$r
      [ "$h" = "vigia-procs 1" ] || echo "reader $r: header '$h'" >>/tmp/stress.bad
      tail -c1 /tmp/r$r | od -An -c | grep -q '\\n' || echo "reader $r: last line cut" >>/tmp/stress.bad
      cat /proc/vigia/cpu /proc/vigia/ram >/dev/null || echo "reader $r: cpu/ram failed" >>/tmp/stress.bad
      n=$((n + 1))
    done
    echo "$n" >/tmp/reads$r
  ) &
done
(
  forks=0
  while [ "$(date +%s)" -lt "$end" ]; do
    i=0
    while [ $i -lt 200 ]; do
      (: ) &
      i=$((i + 1))
    done
    # a few multi-threaded processes too (the publisher starts threads)
    [ -x "$PUB" ] && "$PUB" --once --source module >/dev/null 2>&1 &
    wait
    forks=$((forks + 201))
  done
  echo "$forks" >/tmp/forks
) &
wait
reads=$(cat /tmp/reads1 /tmp/reads2 /tmp/reads3 /tmp/reads4 | awk '{ s += $1 } END { print s }')
forks=$(cat /tmp/forks)
if [ -s /tmp/stress.bad ]; then
  fail "stress" "$(sort -u /tmp/stress.bad | tr '\n' ';' | cut -c1-600)"
elif [ "$reads" -lt 4 ] || [ "$forks" -lt 200 ]; then
  fail "stress" "too little happened: $reads reads, $forks forks"
else
  pass "stress: $reads full reads by 4 readers during $forks forks in ${STRESS_S}s"
fi

# --- unload while open, then 50 load/unload cycles -----------------------
exec 3</proc/vigia/procs
if rmmod vigia; then
  if cat <&3 >/dev/null 2>&1; then :; fi # must fail cleanly, not crash
  exec 3<&-
  if [ ! -e /proc/vigia ]; then pass "rmmod with a file open removes /proc/vigia"; else fail "rmmod" "/proc/vigia still there"; fi
else
  exec 3<&-
  fail "rmmod" "rmmod failed"
fi
cycles=0
while [ $cycles -lt 50 ]; do
  insmod "$KO" || break
  cat /proc/vigia/procs /proc/vigia/cpu /proc/vigia/ram >/dev/null || break
  rmmod vigia || break
  cycles=$((cycles + 1))
done
if [ $cycles = 50 ] && [ ! -e /proc/vigia ]; then pass "50 load/unload cycles"; else fail "load/unload cycles" "stopped after $cycles"; fi

# --- dmesg ----------------------------------------------------------------
dmesg >/tmp/dmesg
export_file dmesg /tmp/dmesg
# Every lockdep, RCU and might_sleep report starts with one of these.
if grep -E 'BUG|WARNING|Oops|lockdep is turned off|sleeping function called from invalid context|suspicious RCU usage|circular locking|INFO: (possible|inconsistent)|Call Trace' /tmp/dmesg >/tmp/dmesg.bad; then
  fail "dmesg clean" "$(head -5 /tmp/dmesg.bad | tr '\n' ';')"
else
  pass "dmesg clean (no BUG, WARNING, oops, lockdep, sleeping-in-atomic)"
fi
echo "VIGIA-CHECKS passed=$PASSED failed=$FAILED"
