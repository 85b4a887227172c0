#!/usr/bin/env bash
# Builds kernel-module/ (vigia.ko) against the kernel build directory $1 and
# copies the .ko to $2. The sources are copied to a scratch directory first so
# that the build leaves no objects in the repository.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=scripts/kernel/env.sh
. "$here/env.sh"
kernel_env
kdir=${1:?usage: build-module.sh KERNEL_BUILD_DIR OUT.ko}
out=${2:?usage: build-module.sh KERNEL_BUILD_DIR OUT.ko}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp "$repo"/kernel-module/{Kbuild,*.rs,*.c,*.h} "$scratch/"
# Any warning fails the build (checked below).
make -s -C "$KERNEL_SRC" O="$kdir" M="$scratch" "${KMAKE_ARGS[@]}" modules 2>"$scratch/build.log" || {
  cat "$scratch/build.log" >&2
  exit 1
}
if grep -v 'Failed to run rustfmt' "$scratch/build.log" | grep -qiE 'warning|error'; then
  cat "$scratch/build.log" >&2
  echo "build-module.sh: the module build printed warnings" >&2
  exit 1
fi
cp "$scratch/vigia.ko" "$out"
