# shellcheck shell=bash
# What the repository's scripts share, so each is written once: log lines
# named for the script, counting checks to the closing line
# "<check>: N passed, N failed", and installing Debian packages on a fresh
# machine (CI runs as root on Debian). Source it after setting VIGIA_SCRIPT
# (the name on log lines and on the closing line; default: the script's file
# name without .sh). Works with and without `set -e`.
#
# Not for the scripts that run alone on a VM (scripts/gcp/vm-startup.sh,
# scripts/install-publisher.sh) nor for the busybox guest of the kernel
# harness (scripts/kernel/guest/): they carry their own few lines.

VIGIA_SCRIPT=${VIGIA_SCRIPT:-$(basename "$0" .sh)}

# log MESSAGE...: a progress line on stderr.
log() { printf '%s: %s\n' "$VIGIA_SCRIPT" "$*" >&2; }
# die MESSAGE...: logs an error and exits 1.
die() {
  log "error: $*"
  exit 1
}

# ---- checks ------------------------------------------------------------------
passed=0
failed=0
# The names of the failed checks, comma-separated.
failed_checks=
# pass NAME: counts a check that held.
pass() {
  passed=$((passed + 1))
  printf 'ok   %s\n' "$1"
}
# fail NAME [DETAIL]: counts a check that did not hold; DETAIL (what the
# failing command said) follows, indented, its first 40 lines.
fail() {
  failed=$((failed + 1))
  failed_checks=${failed_checks:+$failed_checks,}$1
  printf 'FAIL %s\n' "$1"
  if [ -n "${2:-}" ]; then head -40 <<<"$2" | sed 's/^/     | /'; fi
}
# check NAME COMMAND...: passes when COMMAND succeeds, else fails with its
# output.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}
# finish: the closing line; returns non-zero when a check failed.
finish() {
  echo "$VIGIA_SCRIPT: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# ---- installs ----------------------------------------------------------------
apt_updated=
# apt_install PACKAGE...: Debian packages, without recommends; one
# `apt-get update` per run.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$apt_updated" ]; then
    apt-get update -qq >&2 || return 1
    apt_updated=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
# need COMMAND:PACKAGE...: installs the package of each command not found
# (one apt-get for all); non-zero when one is still missing after.
need() {
  local pair lacking=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || lacking+=("${pair#*:}")
  done
  [ ${#lacking[@]} -eq 0 ] && return 0
  log "installing ${lacking[*]}"
  apt_install "${lacking[@]}" || return 1
  hash -r
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || return 1
  done
}
# need_packages PACKAGE...: installs the packages dpkg does not list as
# installed (for packages that bring no command of the same name).
need_packages() {
  local p lacking=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || lacking+=("$p")
  done
  [ ${#lacking[@]} -eq 0 ] && return 0
  log "installing ${lacking[*]}"
  apt_install "${lacking[@]}"
}
