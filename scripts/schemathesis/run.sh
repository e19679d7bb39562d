#!/usr/bin/env bash
# Fuzzes the HTTP contract: a pinned Schemathesis runs every check and every phase
# (examples, coverage, fuzzing, stateful) against the release server on a fresh PostgreSQL
# database, with a fixed seed and bounded examples. Zero failures is the bar.
#
# Env: PG_SERVER_URL (default postgres://postgres@127.0.0.1:5432), SCHEMATHESIS_VERSION, EM_BIN.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
VENV="$ROOT/target/schemathesis-venv"
REPORTS="$ROOT/target/schemathesis-report"

if [ ! -x "$VENV/bin/st" ] || ! "$VENV/bin/st" --version | grep -q "$VERSION"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi

NAME=schemathesis
# shellcheck source=scripts/fresh-server.sh
. "$ROOT/scripts/fresh-server.sh"
fresh_database

# GET /api/v1/users/{id} runs as this administrator (see hooks.py).
export EM_ADMIN_EMAIL="fuzz-admin@example.com" EM_ADMIN_PASSWORD="fuzz-admin-password"
DATABASE_URL="$DATABASE_URL_FRESH" RUST_LOG=warn "$BIN" create-admin \
    --email "$EM_ADMIN_EMAIL" --password "$EM_ADMIN_PASSWORD" --full-name "Fuzz Admin" >/dev/null

# The fuzzer's own failed logins all come from 127.0.0.1, like the hooks' sign-ins: with the
# default per-client limit (20 failures a minute) the hooks' correct logins are then refused
# (429) and the run stops on authentication errors. Throttling is tested in tests/api; here
# the limits are out of the way.
export LOGIN_FAILURES_PER_CLIENT=100000 LOGIN_FAILURES_PER_EMAIL=100000
start_server

cd "$HERE"
rc=0
EM_BASE_URL="$BASE" PYTHONPATH="$HERE" "$VENV/bin/st" --config-file "$HERE/schemathesis.toml" run \
    "$BASE/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --report junit --report-dir "$REPORTS" \
    --no-color || rc=$?

if grep -qE "panicked|ERROR" "$LOG"; then
    echo "the server logged errors during the run:" >&2
    grep -E "panicked|ERROR" "$LOG" | head -20 >&2
    rc=1
fi
exit $rc
