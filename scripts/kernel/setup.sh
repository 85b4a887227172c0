#!/usr/bin/env bash
# Installs what the kernel harness needs on a fresh Debian 12 machine: the
# Debian packages of env.sh, jq and shellcheck, and bindgen-cli (the kernel
# needs >= 0.65.1; Debian has 0.60) into the cache directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/kernel/env.sh
. "$here/env.sh"

missing=()
for p in "${KERNEL_APT_PACKAGES[@]}" jq shellcheck; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -x $BINDGEN_ROOT/bin/bindgen ]]; then
  log "cargo install bindgen-cli $BINDGEN_VERSION (about 90 s)"
  mkdir -p "$VIGIA_KCACHE"
  nice -n 5 cargo install --locked --quiet bindgen-cli --version "$BINDGEN_VERSION" --root "$BINDGEN_ROOT"
fi
