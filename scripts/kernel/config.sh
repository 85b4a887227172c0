#!/usr/bin/env bash
# Writes the test kernel's .config into the build directory $1.
#
# A tinyconfig (fast to build: about 5 min on 2 cores) plus what the tests
# need: Rust, modules, an initramfs with a serial console, SMP with ACPI so
# that qemu's `-smp 2` is visible to the guest, full preemption (preemptible
# RCU, the hardest case for an RCU reader), and the lock debugging that turns
# a sleep inside an RCU section or a spinlock into a splat in dmesg.
# The cache key hashes this file: any change here rebuilds the kernel.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/kernel/env.sh
. "$here/env.sh"
kernel_env
out=${1:?usage: config.sh BUILD_DIR}
mkdir -p "$out"

make -s -C "$KERNEL_SRC" O="$out" "${KMAKE_ARGS[@]}" tinyconfig

enable=(
  # the base: a 64-bit kernel that boots an initramfs on a serial console
  64BIT PRINTK PRINTK_TIME EARLY_PRINTK BUG TTY SERIAL_8250 SERIAL_8250_CONSOLE
  BLK_DEV_INITRD RD_GZIP PROC_FS PROC_SYSCTL SYSCTL SYSFS DEVTMPFS DEVTMPFS_MOUNT
  TMPFS SHMEM BINFMT_ELF BINFMT_SCRIPT MULTIUSER
  # loadable Rust modules
  MODULES MODULE_UNLOAD RUST
  # what a Rust/tokio user-space program (the publisher) calls
  FUTEX EPOLL EVENTFD SIGNALFD TIMERFD POSIX_TIMERS FILE_LOCKING ADVISE_SYSCALLS
  MEMBARRIER RSEQ
  # two CPUs visible: SMP plus a way to discover them (ACPI's MADT, MP table)
  SMP ACPI X86_MPPARSE
  # preemptible kernel and RCU
  PREEMPT
  # lock and atomic-context debugging
  DEBUG_KERNEL PROVE_LOCKING DEBUG_ATOMIC_SLEEP DEBUG_PREEMPT KALLSYMS
  DEBUG_LIST
)
args=()
for opt in "${enable[@]}"; do args+=(--enable "$opt"); done
"$KERNEL_SRC/scripts/config" --file "$out/.config" "${args[@]}" \
  --disable MODVERSIONS --set-val NR_CPUS 4
make -s -C "$KERNEL_SRC" O="$out" "${KMAKE_ARGS[@]}" olddefconfig

# olddefconfig silently drops what it cannot satisfy: insist on what matters.
missing=()
for opt in RUST SMP ACPI PREEMPT PROVE_LOCKING DEBUG_ATOMIC_SLEEP MODULE_UNLOAD PROC_FS FUTEX EPOLL; do
  grep -q "^CONFIG_$opt=y" "$out/.config" || missing+=("$opt")
done
if ((${#missing[@]})); then
  echo "config.sh: not enabled after olddefconfig: ${missing[*]}" >&2
  exit 1
fi
