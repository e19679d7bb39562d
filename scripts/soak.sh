#!/usr/bin/env bash
# Runs the release server on a fresh PostgreSQL database and soaks it with mixed traffic
# (scripts/soak.py). SOAK_SECONDS (default 120) bounds the run; loopback only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME=soak
# shellcheck source=scripts/fresh-server.sh
. "$ROOT/scripts/fresh-server.sh"
fresh_database
start_server
python3 "$ROOT/scripts/soak.py" --base "$BASE" --pid "$SERVER" \
    --database-url "$DATABASE_URL_FRESH" --seconds "${SOAK_SECONDS:-120}"
