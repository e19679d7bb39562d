# Sourced by scripts that drive a real server: the server binary on a fresh PostgreSQL
# database, on a free loopback port, stopped and the database dropped on exit.
#
# Before sourcing: ROOT (the repository), NAME (database prefix and log name).
# Env: PG_SERVER_URL (default postgres://postgres@127.0.0.1:5432), EM_BIN (another build of
# the server; otherwise the release build is made).
# After `fresh_database`: DB, DATABASE_URL_FRESH. After `start_server`: BASE, SERVER, LOG.

PG_SERVER_URL="${PG_SERVER_URL:-postgres://postgres@127.0.0.1:5432}"
if [ -z "${EM_BIN:-}" ]; then
    cargo build --release --locked --bin event-manager
fi
BIN="${EM_BIN:-$ROOT/target/release/event-manager}"
DB="em_${NAME}_$$"
SERVER=""

fresh_database() {
    psql "$PG_SERVER_URL/postgres" -qc "CREATE DATABASE $DB" >/dev/null
    DATABASE_URL_FRESH="$PG_SERVER_URL/$DB"
}

start_server() {
    local port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    BASE="http://127.0.0.1:$port"
    LOG="$ROOT/target/$NAME-server.log"
    DATABASE_URL="$DATABASE_URL_FRESH" BIND_ADDR="127.0.0.1:$port" \
        JWT_SECRET="$NAME-run-secret-0123456789abcdef-0123456789" RUST_LOG=warn \
        "$BIN" serve >"$LOG" 2>&1 &
    SERVER=$!
    for _ in $(seq 100); do
        curl -fsS "$BASE/health/ready" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    cat "$LOG" >&2
    echo "the server did not become ready" >&2
    return 1
}

stop_server_and_drop_database() {
    if [ -n "$SERVER" ]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    psql "$PG_SERVER_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null || true
}
trap stop_server_and_drop_database EXIT
