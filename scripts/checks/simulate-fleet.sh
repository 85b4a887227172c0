#!/usr/bin/env bash
# The local fleet simulation, small: 1 to 4 publishers joining and leaving
# (cleanly and by SIGKILL) against a private NATS, the sink and the local
# MariaDB, then every host's data checked complete and every departed host
# offline. See scripts/simulate-fleet.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec bash scripts/simulate-fleet.sh --min 1 --max 4 --step 4
