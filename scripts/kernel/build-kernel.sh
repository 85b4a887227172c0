#!/usr/bin/env bash
# Builds the test kernel, or reuses the one built earlier with the very same
# inputs. Prints the build directory (the O= dir: bzImage and what an
# out-of-tree module builds against) on stdout.
#
# Cache key: the version of every tool that goes into the build (Debian
# packages and bindgen), the hash of config.sh and the make targets. Each key
# has its own directory, so changing a tool or an option never reuses a stale
# build; a directory only counts once its `complete` stamp exists, so a build
# interrupted half-way is started again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/kernel/env.sh
. "$here/env.sh"
kernel_env
# `modules` writes Module.symvers, which out-of-tree modules link against.
targets=(bzImage modules)

cache_key() {
  {
    for p in "${KERNEL_APT_PACKAGES[@]}"; do
      printf '%s=%s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p")"
    done
    printf 'bindgen=%s\n' "$("$BINDGEN_ROOT/bin/bindgen" --version)"
    printf 'targets=%s\n' "${targets[*]}"
    sha256sum "$here/config.sh" | cut -d' ' -f1
  } | sha256sum | cut -c1-16
}

key=$(cache_key)
out=$VIGIA_KCACHE/build-$key
if [[ -f $out/complete && -f $out/arch/x86/boot/bzImage && -d $KERNEL_SRC ]]; then
  log "kernel cache hit: $out"
  echo "$out"
  exit 0
fi

log "kernel cache miss (key $key): building, about 5 minutes on 2 cores"
start=$SECONDS
# Unpack the source once per tarball version (the tarball is in the key).
src_stamp=$KERNEL_SRC/.vigia-tarball
want="$(dpkg-query -W -f='${Version}' "linux-source-$KERNEL_SERIES")"
if [[ ! -f $src_stamp || $(cat "$src_stamp") != "$want" ]]; then
  rm -rf "$KERNEL_SRC"
  mkdir -p "$(dirname "$KERNEL_SRC")"
  tar -C "$(dirname "$KERNEL_SRC")" -xf "$KERNEL_SRC_TARBALL"
  echo "$want" >"$src_stamp"
fi
rm -rf "$out"
bash "$here/config.sh" "$out" >&2
nice -n 5 make -s -C "$KERNEL_SRC" O="$out" "${KMAKE_ARGS[@]}" -j"$(nproc)" "${targets[@]}" >&2
touch "$out/complete"
log "kernel built in $((SECONDS - start)) s"
# Old keys are dead weight: keep only this one.
find "$VIGIA_KCACHE" -maxdepth 1 -name 'build-*' ! -name "build-$key" -exec rm -rf {} +
echo "$out"
