#!/usr/bin/env bash
# Boots the test VM once: boot.sh BZIMAGE INITRAMFS MODE WORKDIR
# MODE is passed to the guest's /init (test | bench). Writes WORKDIR/console.log
# (ttyS0: kernel messages and the scripts' output) and WORKDIR/ttyS1.log
# (files the guest exports). Software emulation (tcg), 2 CPUs, no network.
set -euo pipefail
kernel=${1:?usage: boot.sh BZIMAGE INITRAMFS MODE WORKDIR}
initrd=${2:?}
mode=${3:?}
work=${4:?}
mem=${VIGIA_VM_MEM:-2048}
timeout_s=${VIGIA_VM_TIMEOUT:-1200}
: >"$work/console.log"
: >"$work/ttyS1.log"
# -nic none: the guest gets no network at all. -no-reboot: the guest's
# poweroff (or a panic, with panic=-1) ends qemu.
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m "$mem" \
  -nic none -display none -monitor none -no-reboot \
  -serial "file:$work/console.log" -serial "file:$work/ttyS1.log" \
  -kernel "$kernel" -initrd "$initrd" \
  -append "console=ttyS0 panic=-1 vigia_mode=$mode" </dev/null
