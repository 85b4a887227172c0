# shellcheck shell=sh
# The in-VM benchmark: the cost of one full process-table snapshot through
# /proc/vigia/procs against the publisher's procfs walk, with 1,000 and then
# 10,000 processes. Prints `BENCH ...` lines; the host prints them.
BENCH=/usr/bin/vigia-source-bench
insmod /lib/modules/vigia.ko || { echo "BENCH-FAIL insmod"; exit 1; }
total=$(grep -c . /proc/vigia/procs)
for target in ${BENCH_PROCS:-1000 10000}; do
  # Sleepers until the table holds `target` processes (2 lines are headers).
  have=$(($(grep -c . /proc/vigia/procs) - 2))
  while [ "$have" -lt "$target" ]; do
    sleep 100000 &
    have=$((have + 1))
  done
  sleep 2
  total=$(($(grep -c . /proc/vigia/procs) - 2))
  echo "bench: $total processes"
  $BENCH module 41
  $BENCH procfs 21
done
echo "BENCH-DONE"
