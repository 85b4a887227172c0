#!/usr/bin/env bash
# Runs every check vigia has, as CI does: services, formatting, lints, the
# Rust tests against real NATS and MariaDB, then each script in scripts/checks/
# (kernel module in qemu, shell scripts, compose and Dockerfiles, ...).
# Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build (the tests run the binaries)"
cargo build --workspace --bins --locked
echo "== cargo test"
cargo test --workspace --locked

shopt -s nullglob
for check in scripts/checks/*.sh; do
  echo "== $check"
  bash "$check"
done
echo "== all checks passed"
