#!/usr/bin/env bash
# Fuzzes every decoder of untrusted bytes (fuzz/, see fuzz/README.md) for a
# bounded time each, starting from the committed seeds, and fails on any
# crash, failed assertion, leak or hang.
#
#   FUZZ_SECONDS   seconds per target (default 25)
#   FUZZ_TARGETS   targets to run (default: all that `cargo fuzz list` shows)
#   FUZZ_TARGET_DIR  where the instrumented build goes (default: a cache
#                  outside the clone, so that a later run on the same machine,
#                  from any clone, rebuilds only vigia's own crates)
#
# cargo fuzz needs nightly-only rustc flags (-Zsanitizer=address); this
# machine has stable only, so RUSTC_BOOTSTRAP=1 lets stable rustc take them
# for this build alone. Crash inputs are kept in fuzz/artifacts/<target>/;
# reproduce one with `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/../.." || exit
# shellcheck source=scripts/lib/common.sh
. scripts/lib/common.sh

seconds=${FUZZ_SECONDS:-25}
target_dir=${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vigia/fuzz-target}
mkdir -p "$target_dir"
target_dir=$(cd "$target_dir" && pwd)
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2
fi
# libfuzzer-sys compiles libFuzzer, which is C++.
need c++:g++

echo "== cargo fmt --check (fuzz)"
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
# Fails if fuzz/Cargo.lock is out of date rather than quietly resolving anew.
cargo fetch --locked --manifest-path fuzz/Cargo.toml

echo "== cargo fuzz build"
(cd fuzz && cargo fuzz build --target-dir "$target_dir")

read -r -a targets <<<"${FUZZ_TARGETS:-$(cd fuzz && cargo fuzz list | tr '\n' ' ')}"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
for target in "${targets[@]}"; do
  # New inputs go to a scratch folder: the committed seeds stay as they are.
  corpus="$logs/corpus-$target"
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  log="$logs/$target.log"
  dict=()
  if [ -f "fuzz/dict/$target.dict" ]; then dict=(-dict="dict/$target.dict"); fi
  echo "== fuzz $target for ${seconds}s"
  if (cd fuzz && cargo fuzz run --target-dir "$target_dir" "$target" "$corpus" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="artifacts/$target/" "${dict[@]}") >"$log" 2>&1; then
    pass "fuzz $target"
    # libFuzzer's last status line and its execution count.
    grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1 || true
    grep -E '^stat::number_of_executed_units' "$log" || true
  else
    tail -n 60 "$log"
    fail "fuzz $target" "crash input in fuzz/artifacts/$target/"
  fi
done
finish
