#!/usr/bin/env bash
# Installs the vigia kernel module on this machine, if its kernel can take it:
# builds kernel-module/ against the running kernel, loads it, and makes it
# load at every boot. When the kernel cannot (no CONFIG_RUST, no Rust build
# files, a different rustc), it says why and changes nothing: the publisher's
# default `--source auto` then reads procfs.
#
#   sudo kernel-module/install.sh            # exit 0 whether or not installed
#   sudo kernel-module/install.sh --strict   # exit 1 when not installed
#   sudo kernel-module/install.sh --uninstall
#
# Environment: KDIR (default /lib/modules/$(uname -r)/build), RUSTC, BINDGEN
# (default: from PATH) when the kernel was built with tools not first on PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
release=$(uname -r)
kdir=${KDIR:-/lib/modules/$release/build}
dest=/lib/modules/$release/extra
strict=0

case ${1:-} in
  --strict) strict=1 ;;
  --uninstall)
    modprobe -r vigia 2>/dev/null || rmmod vigia 2>/dev/null || true
    rm -f "$dest/vigia.ko" /etc/modules-load.d/vigia.conf
    depmod -a "$release"
    echo "vigia: module removed; the publisher reads procfs"
    exit 0
    ;;
  "") ;;
  *) echo "usage: install.sh [--strict|--uninstall]" >&2; exit 2 ;;
esac

skip() {
  echo "vigia: kernel module NOT installed: $*" >&2
  echo "vigia: the publisher will read procfs (--source auto picks it when /proc/vigia is absent)" >&2
  exit $((strict))
}

[[ $(id -u) == 0 ]] || skip "run as root (it loads a module and writes /lib/modules)"

# 1. The running kernel must have Rust support.
config=
for c in "/boot/config-$release" "$kdir/.config"; do
  [[ -r $c ]] && { config=$c; break; }
done
if [[ -n $config ]]; then
  grep -q '^CONFIG_RUST=y' "$config" || skip "kernel $release is built without CONFIG_RUST ($config)"
elif [[ -r /proc/config.gz ]]; then
  zgrep -q '^CONFIG_RUST=y' /proc/config.gz || skip "kernel $release is built without CONFIG_RUST"
else
  skip "cannot find the configuration of kernel $release (/boot/config-$release)"
fi

# 2. Its build files, Rust part included (Ubuntu: linux-headers-$release and
#    linux-lib-rust-$release; try to install them when apt knows them).
if [[ ! -f $kdir/rust/libkernel.rmeta ]] && command -v apt-get >/dev/null; then
  if apt-cache show "linux-lib-rust-$release" >/dev/null 2>&1; then
    echo "vigia: installing linux-headers-$release linux-lib-rust-$release"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "linux-headers-$release" "linux-lib-rust-$release" ||
      skip "could not install linux-lib-rust-$release"
  fi
fi
[[ -f $kdir/Makefile ]] || skip "no kernel build directory at $kdir (install the headers of $release)"
[[ -f $kdir/rust/libkernel.rmeta ]] ||
  skip "no Rust build files in $kdir/rust (on Ubuntu: apt-get install linux-lib-rust-$release)"

# 3. The same rustc that built the kernel (Rust has no stable ABI).
rustc=${RUSTC:-rustc}
want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"/\1/p' "${config:-$kdir/.config}" 2>/dev/null || true)
have=$("$rustc" --version 2>/dev/null || true)
if [[ -n $want && $have != "$want" ]]; then
  skip "kernel $release was built with '$want' but $rustc is '${have:-missing}' (set RUSTC=)"
fi

# 4. Build out of tree, in a scratch copy (no objects left in the repo).
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp "$here"/{Kbuild,*.rs,*.c,*.h} "$scratch/"
make_args=(-C "$kdir" M="$scratch" LLVM=1 RUSTC="$rustc")
[[ -z ${BINDGEN:-} ]] || make_args+=(BINDGEN="$BINDGEN")
if ! make "${make_args[@]}" modules >"$scratch/build.log" 2>&1; then
  tail -20 "$scratch/build.log" >&2
  skip "the module did not build against $kdir (log above)"
fi

# 5. Install, load now, load at boot.
install -D -m 0644 "$scratch/vigia.ko" "$dest/vigia.ko"
depmod -a "$release"
modprobe -r vigia 2>/dev/null || true
modprobe vigia || skip "modprobe vigia failed (see dmesg)"
echo vigia >/etc/modules-load.d/vigia.conf
[[ -r /proc/vigia/procs ]] || skip "the module loaded but /proc/vigia/procs is missing"
echo "vigia: module installed in $dest, loaded, and listed in /etc/modules-load.d/vigia.conf"
echo "vigia: restart the publisher (or let --source auto pick it up at its next start)"
