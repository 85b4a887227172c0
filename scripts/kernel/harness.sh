#!/usr/bin/env bash
# The vigia kernel-module test harness: builds (or restores from the cache)
# a Rust-enabled 6.12 test kernel, builds the module and the publisher, packs
# them into a busybox initramfs, boots it under qemu (tcg, 2 CPUs, no
# network) and runs the in-VM checks of guest/checks.sh, or the benchmark
# of guest/bench.sh with --bench.
#
#   scripts/kernel/harness.sh                 # the checks; last line PASS or FAIL: ...
#   scripts/kernel/harness.sh --bench         # the benchmark: medians and ratio
#   scripts/kernel/harness.sh --keep DIR      # keep the VM's output files in DIR
#
# Exits non-zero on FAIL.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
mode='test'
keep=
while (($#)); do
  case $1 in
    --bench) mode=bench ;;
    --keep) keep=${2:?--keep DIR}; shift ;;
    *) echo "usage: harness.sh [--bench] [--keep DIR]" >&2; exit 2 ;;
  esac
  shift
done

VIGIA_SCRIPT=kernel-module
# shellcheck source=scripts/lib/common.sh
. "$repo/scripts/lib/common.sh"

started=$SECONDS
work=$(mktemp -d)
if [[ -n $keep ]]; then mkdir -p "$keep"; work=$keep; fi
cleanup() { [[ -n $keep ]] || rm -rf "$work"; }
trap cleanup EXIT

die() {
  fail "$*"
  finish
  echo "FAIL: $*"
  exit 1
}
step() { printf '[kernel] %s (%d s)\n' "$*" "$((SECONDS - started))"; }

step "setup"
bash "$here/setup.sh" || die "installing the toolchain (scripts/kernel/setup.sh)"
step "kernel"
kdir=$(bash "$here/build-kernel.sh") || die "building the test kernel (scripts/kernel/build-kernel.sh)"
step "module"
bash "$here/build-module.sh" "$kdir" "$work/vigia.ko" || die "building the module"
step "publisher (cargo build --release)"
# No musl target can be installed here, so the publisher is the usual glibc
# build and initramfs.sh copies the libraries it links.
(cd "$repo" && cargo build --release --locked -q -p vigia-publisher) || die "building the publisher"
bench_bin=()
if [[ $mode == bench ]]; then
  # 10,000 processes need more memory than the checks.
  export VIGIA_VM_MEM=${VIGIA_VM_MEM:-4096}
  (cd "$repo" && cargo build --release --locked -q -p vigia-publisher --example source_bench) ||
    die "building the benchmark"
  bench_bin=("$repo/target/release/examples/source_bench")
fi
step "initramfs"
bash "$here/initramfs.sh" "$work/vigia.ko" "$repo/target/release/vigia-publisher" "$work/initramfs.cpio.gz" \
  "${bench_bin[@]}" || die "building the initramfs"
step "boot ($mode)"
bash "$here/boot.sh" "$kdir/arch/x86/boot/bzImage" "$work/initramfs.cpio.gz" "$mode" "$work"
qemu_rc=$?
tr -d '\r' <"$work/console.log" >"$work/console.txt"
tr -d '\r' <"$work/ttyS1.log" >"$work/exports.txt"
# Cut the files the guest exported (=== BEGIN name / === END name).
mkdir -p "$work/out"
awk -v dir="$work/out" '
  /^=== BEGIN / { f = dir "/" $3; printf "" > f; next }
  /^=== END / { close(f); f = ""; next }
  f != "" { print >> f }' "$work/exports.txt"

if [[ $mode == bench ]]; then
  grep -E '^(BENCH|bench)' "$work/console.txt"
  # The ratio of the medians, per process count.
  awk '/^BENCH source=/ {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      med[v["source"], v["procs"]] = v["median_us"]; n[v["procs"]] = 1
    }
    END { for (p in n) if (med["module", p] > 0)
      printf "BENCH ratio procs=%s procfs/module=%.1fx (medians %d us vs %d us)\n", p,
        med["procfs", p] / med["module", p], med["procfs", p], med["module", p] }' "$work/console.txt"
  grep -q '^BENCH-DONE' "$work/console.txt" || die "the benchmark did not finish (see $work/console.txt)"
  exit 0
fi

grep -E '^CHECK ' "$work/console.txt"
passed=$(grep -c '^CHECK ok' "$work/console.txt")
failed=$(grep -c '^CHECK FAIL' "$work/console.txt")
failed_checks=$(grep '^CHECK FAIL' "$work/console.txt" | sed 's/^CHECK FAIL //; s/:.*//' | paste -sd, -)

# Host side: the publisher's two sources must agree (jq reads its JSON).
once_agree() {
  local m=$work/out/once.module p=$work/out/once.procfs
  [[ -s $m && -s $p ]] || { echo "no --once output"; return 1; }
  jq -e -s '.[0].body.source == "module"' "$m" >/dev/null || { echo "module run reports another source"; return 1; }
  jq -e -s '.[0].body.source == "procfs"' "$p" >/dev/null || { echo "procfs run reports another source"; return 1; }
  local pm pp
  pm=$(jq -c -s '[.[] | select(.kind == "procs") | .body.processes[].pid] | sort' "$m")
  pp=$(jq -c -s '[.[] | select(.kind == "procs") | .body.processes[].pid] | sort' "$p")
  # The two runs are separate processes: each sees itself, not the other.
  local diff
  diff=$(jq -n -c --argjson a "$pm" --argjson b "$pp" '(($a - $b) + ($b - $a)) | length')
  ((diff <= 2)) || { echo "pid sets differ by $diff: $pm vs $pp"; return 1; }
  local tm tp
  tm=$(jq -s '.[] | select(.kind == "ram") | .body.total' "$m")
  tp=$(jq -s '.[] | select(.kind == "ram") | .body.total' "$p")
  [[ $tm == "$tp" && -n $tm ]] || { echo "RAM total $tm vs $tp"; return 1; }
  local bm bp
  bm=$(jq -s '.[] | select(.kind == "cpu") | .body.busy_pct' "$m")
  bp=$(jq -s '.[] | select(.kind == "cpu") | .body.busy_pct' "$p")
  jq -e -n --argjson a "$bm" --argjson b "$bp" '($a - $b) | fabs <= 15' >/dev/null ||
    { echo "CPU busy % $bm vs $bp"; return 1; }
  echo "pids equal but for the two runs themselves, RAM total $tm, busy % $bm vs $bp"
}
check "publisher --source module and --source procfs agree" once_agree

vm_ok() {
  if grep -q '^VIGIA-CHECKS ' "$work/console.txt" && grep -q '^VIGIA-VM-END' "$work/console.txt"; then
    return 0
  fi
  echo "the VM did not finish its checks (qemu exit $qemu_rc); last lines: $(tail -5 "$work/console.txt" | tr "\n" ";")"
  return 1
}
check "VM ran to the end" vm_ok
kernel_clean() {
  # The console has every kernel message, including any after the guest's
  # own dmesg check (a panic on unload, for instance).
  ! grep -v '^CHECK ' "$work/console.txt" |
    grep -E 'BUG|WARNING|Oops|Kernel panic|sleeping function called from invalid context|suspicious RCU usage|Call Trace'
}
check "console has no kernel splat" kernel_clean

step "done"
if finish && ((passed > 0)); then
  echo PASS
else
  echo "FAIL: ${failed_checks:-no check ran}"
  exit 1
fi
