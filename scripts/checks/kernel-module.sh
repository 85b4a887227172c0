#!/usr/bin/env bash
# The kernel-module check run by scripts/test.sh (and so by CI): the qemu
# harness of scripts/kernel/. It installs its own toolchain, reuses the test
# kernel cached in /var/cache/vigia/kernel when its inputs did not change,
# and ends with `PASS` or `FAIL: <what>` (non-zero exit on FAIL).
set -euo pipefail
exec bash "$(dirname "$0")/../kernel/harness.sh" "$@"
