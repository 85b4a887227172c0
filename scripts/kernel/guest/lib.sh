# shellcheck shell=sh
# Helpers shared by the in-VM scripts (busybox sh).

PASSED=0
FAILED=0
# The host reads these lines from the console: one per check.
pass() { PASSED=$((PASSED + 1)); echo "CHECK ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "CHECK FAIL $1: $2"; }

# Sends a file to the host over ttyS1, framed so the host can cut it out.
export_file() { # NAME FILE
  { echo "=== BEGIN $1"; cat "$2"; echo "=== END $1"; } >/dev/ttyS1
}

# Decodes the \ooo escapes of a procs name (FORMAT.md) into raw bytes.
unescape() {
  printf '%b' "$(printf '%s' "$1" | sed 's/\\\([0-7][0-7][0-7]\)/\\0\1/g')"
}
