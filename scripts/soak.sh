#!/usr/bin/env bash
# Runs the release server on a fresh PostgreSQL database and soaks it with mixed traffic
# (scripts/soak.py). SOAK_SECONDS (default 120) bounds the run; loopback only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_SERVER_URL="${PG_SERVER_URL:-postgres://postgres@127.0.0.1:5432}"
DB="em_soak_$$"
if [ -z "${EM_BIN:-}" ]; then
    cargo build --release --locked --bin event-manager
fi
BIN="${EM_BIN:-$ROOT/target/release/event-manager}"
psql "$PG_SERVER_URL/postgres" -qc "CREATE DATABASE $DB" >/dev/null
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
DATABASE_URL="$PG_SERVER_URL/$DB" BIND_ADDR="127.0.0.1:$PORT" JWT_SECRET="soak-run-secret-0123456789abcdef-0123" \
    RUST_LOG=warn "$BIN" serve >"$ROOT/target/soak-server.log" 2>&1 &
SERVER=$!
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    psql "$PG_SERVER_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break; sleep 0.1; done
python3 "$ROOT/scripts/soak.py" --base "http://127.0.0.1:$PORT" --pid "$SERVER" \
    --database-url "$PG_SERVER_URL/$DB" --seconds "${SOAK_SECONDS:-120}"
