#!/usr/bin/env bash
# A local stand-in for the GCP instance group: publishers join and leave
# (cleanly and by SIGKILL) against a private NATS, the sink and the local
# MariaDB, then every host's data is checked complete (the same check as the
# sink's tests) and every departed host offline. The simulator is the Rust
# binary bench/src/bin/simulate-fleet; this runs it with the flags given
# (--min, --max, --step, --schedule, --interval, --procs-interval, --bin-dir,
# --database, --keep; --help lists them).
# Ends with "simulate-fleet: N passed, N failed"; exits non-zero on a failure.
set -euo pipefail
cd "$(dirname "$0")/.." || exit
exec cargo run --locked -q -p vigia-bench --bin simulate-fleet -- "$@"
