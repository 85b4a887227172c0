#!/usr/bin/env bash
# Installs what the kernel harness needs on a fresh Debian 12 machine: the
# Debian packages of env.sh, jq and shellcheck, and bindgen-cli (the kernel
# needs >= 0.65.1; Debian has 0.60) into the cache directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/kernel/env.sh
. "$here/env.sh"

need_packages "${KERNEL_APT_PACKAGES[@]}" jq shellcheck

if [[ ! -x $BINDGEN_ROOT/bin/bindgen ]]; then
  log "cargo install bindgen-cli $BINDGEN_VERSION (about 90 s)"
  mkdir -p "$VIGIA_KCACHE"
  nice -n 5 cargo install --locked --quiet bindgen-cli --version "$BINDGEN_VERSION" --root "$BINDGEN_ROOT"
fi
