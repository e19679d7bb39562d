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
PG_SERVER_URL="${PG_SERVER_URL:-postgres://postgres@127.0.0.1:5432}"
DB="em_schemathesis_$$"
REPORTS="$ROOT/target/schemathesis-report"

if [ ! -x "$VENV/bin/st" ] || ! "$VENV/bin/st" --version | grep -q "$VERSION"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi

# EM_BIN runs another build of the server (a debug one while iterating); CI uses release.
if [ -z "${EM_BIN:-}" ]; then
    cargo build --release --locked --bin event-manager
fi
BIN="${EM_BIN:-$ROOT/target/release/event-manager}"

psql "$PG_SERVER_URL/postgres" -qc "CREATE DATABASE $DB" >/dev/null
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
LOG="$ROOT/target/schemathesis-server.log"

export EM_ADMIN_EMAIL="fuzz-admin@example.com" EM_ADMIN_PASSWORD="fuzz-admin-password"
DATABASE_URL="$PG_SERVER_URL/$DB" RUST_LOG=warn "$BIN" create-admin \
    --email "$EM_ADMIN_EMAIL" --password "$EM_ADMIN_PASSWORD" --full-name "Fuzz Admin" >/dev/null

DATABASE_URL="$PG_SERVER_URL/$DB" BIND_ADDR="127.0.0.1:$PORT" \
    JWT_SECRET="schemathesis-run-secret-0123456789abcdef" RUST_LOG=warn \
    "$BIN" serve >"$LOG" 2>&1 &
SERVER=$!
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    psql "$PG_SERVER_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 100); do
    curl -fsS "$BASE/health/ready" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$BASE/health/ready" >/dev/null || { cat "$LOG"; echo "server did not become ready" >&2; exit 1; }

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
