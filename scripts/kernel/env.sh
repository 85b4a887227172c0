# shellcheck shell=bash
# The variables are used by the scripts that source this file.
# shellcheck disable=SC2034
# Shared settings of the kernel harness, sourced by every script in
# scripts/kernel/. One place names the toolchain so that the cache key, the
# kernel build and the module build can never disagree about it.

# Everything built or downloaded lives outside the repository, so a fresh
# clone (CI) reuses it when the machine kept it and rebuilds it otherwise.
VIGIA_KCACHE=${VIGIA_KCACHE:-/var/cache/vigia/kernel}
KERNEL_SERIES=6.12
KERNEL_SRC_TARBALL=/usr/src/linux-source-${KERNEL_SERIES}.tar.xz
# The .cmd files of a kernel build hold absolute paths, so the source is
# always unpacked at this one place.
KERNEL_SRC=$VIGIA_KCACHE/src/linux-source-${KERNEL_SERIES}
BINDGEN_VERSION=0.69.5
BINDGEN_ROOT=$VIGIA_KCACHE/bindgen-$BINDGEN_VERSION
LLVM_VERSION=19

# Debian packages the harness needs (installed by setup.sh).
KERNEL_APT_PACKAGES=(
  "linux-source-$KERNEL_SERIES" rustc-web rust-web-src
  "clang-$LLVM_VERSION" "lld-$LLVM_VERSION" "llvm-$LLVM_VERSION" "libclang-$LLVM_VERSION-dev"
  qemu-system-x86 busybox-static bc bison flex libelf-dev libssl-dev cpio make
  xz-utils dwarves zstd
)

# Debian's rustc (rustc-web) must come before rustup's: only Debian's has the
# core/alloc sources the kernel compiles, and the `macros` proc-macro must be
# built by the same compiler (hence HOSTRUSTC).
kernel_env() {
  export PATH="$BINDGEN_ROOT/bin:/usr/lib/llvm-$LLVM_VERSION/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  export LIBCLANG_PATH=/usr/lib/llvm-$LLVM_VERSION/lib
  KMAKE_ARGS=(LLVM=1 RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc "BINDGEN=$BINDGEN_ROOT/bin/bindgen")
}

VIGIA_SCRIPT=${VIGIA_SCRIPT:-kernel}
# shellcheck source=scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
