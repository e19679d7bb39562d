#!/usr/bin/env bash
# `make bench` and `make bench-smoke`: builds the release server and em-bench, starts a
# throwaway PostgreSQL cluster on its own port (so statement logging and settings are ours),
# runs every scenario on PostgreSQL and SQLite, prints the table, and stops the cluster.
#
#   scripts/bench.sh          full run (about 3 minutes once built); results in target/bench/
#   scripts/bench.sh --smoke  seconds-long run with small data on the debug build, fails on any
#                             error; results in target/bench-smoke/
#
# Extra arguments go to em-bench (see `target/release/em-bench --help`), e.g. --seconds 10.
# Environment: BENCH_OUT (results directory), BENCH_PG_PORT (first port to try), PG_BIN,
# BENCH_WAIT_IDLE (seconds to wait for a load average below 1.0), BENCH_RELEASE=1 (smoke on
# the release build), BENCH_CARGO_PROFILE=profiling (the release build with symbols, for perf).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT="${BENCH_OUT:-target/bench}"
for arg in "$@"; do
    if [ "$arg" = --smoke ]; then OUT="${BENCH_OUT:-target/bench-smoke}"; fi
done
PG_PORT="${BENCH_PG_PORT:-55432}"
CARGO="${CARGO:-cargo}"

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
    printf '[bench] ERROR: %s\n' "$*" >&2
    exit 1
}

# --- tools ----------------------------------------------------------------------------

if [ -z "${PG_BIN:-}" ]; then
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$candidate/initdb" ] && [ -x "$candidate/pgbench" ]; then
            PG_BIN="$candidate"
            break
        fi
    done
fi
[ -n "${PG_BIN:-}" ] || die "no PostgreSQL server binaries (initdb, pgbench) under /usr/lib/postgresql/*/bin; install postgresql or set PG_BIN"
for tool in initdb pg_ctl pgbench psql; do
    [ -x "$PG_BIN/$tool" ] || die "$PG_BIN/$tool is missing"
done
if ! command -v sqlite3 >/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        log "installing the sqlite3 command-line tool (bulk-loads the SQLite event table)"
        apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends sqlite3 >/dev/null
    else
        die "the sqlite3 command-line tool is missing"
    fi
fi

# 10,000 idle streams (one socket each in em-bench and in the server): raise the open-file limit.
hard="$(ulimit -Hn)"
if [ "$hard" = unlimited ] || [ "$hard" -ge 32768 ]; then ulimit -n 32768; else ulimit -n "$hard"; fi

# --- build ----------------------------------------------------------------------------

# The smoke run exercises the same code paths on the debug build that `make test` has
# already compiled (numbers from it mean nothing); BENCH_RELEASE=1 makes it use release.
BIN_DIR=target/release
BUILD=(--release)
# BENCH_CARGO_PROFILE=profiling: the release build with symbols (Cargo.toml), for perf.
if [ -n "${BENCH_CARGO_PROFILE:-}" ]; then
    BIN_DIR="target/$BENCH_CARGO_PROFILE"
    BUILD=(--profile "$BENCH_CARGO_PROFILE")
fi
for arg in "$@"; do
    if [ "$arg" = --smoke ] && [ "${BENCH_RELEASE:-0}" != 1 ]; then
        BIN_DIR=target/debug
        BUILD=()
    fi
done
log "building the server and em-bench (${BIN_DIR#target/})"
"$CARGO" build "${BUILD[@]}" --locked -p event-manager -p em-bench

# --- throwaway PostgreSQL cluster -----------------------------------------------------

PG_DIR="$(mktemp -d /tmp/em-bench-pg.XXXXXX)"
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}
cleanup() {
    local rc=$?
    if [ -f "$PG_DIR/data/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$PG_DIR"
    exit "$rc"
}
trap cleanup EXIT INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
while ! port_free "$PG_PORT"; do PG_PORT=$((PG_PORT + 1)); done

[ "$(id -u)" -ne 0 ] || chown postgres "$PG_DIR"
chmod 700 "$PG_DIR"
as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust >"$PG_DIR/initdb.log" 2>&1 ||
    die "initdb failed: $(cat "$PG_DIR/initdb.log")"
as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null ||
    die "the throwaway cluster did not start: $(tail -n 20 "$PG_DIR/server.log")"
log "throwaway PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT ($PG_DIR)"

# --- run ------------------------------------------------------------------------------

# The machine may be shared: BENCH_WAIT_IDLE=SECONDS waits (up to that long) for the 1-minute
# load average to fall below 1.0 before measuring.
if [ -n "${BENCH_WAIT_IDLE:-}" ]; then
    waited=0
    while awk '{exit !($1 >= 1.0)}' /proc/loadavg && [ "$waited" -lt "$BENCH_WAIT_IDLE" ]; do
        log "load $(cut -d' ' -f1-3 /proc/loadavg): waiting for the machine to be idle"
        sleep 60
        waited=$((waited + 60))
    done
fi

log "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$OUT"
"$BIN_DIR/em-bench" \
    --server-bin "$BIN_DIR/event-manager" \
    --pg-port "$PG_PORT" --pg-log "$PG_DIR/server.log" \
    --psql "$PG_BIN/psql" --pgbench "$PG_BIN/pgbench" \
    --scripts bench/pgbench --out "$OUT" "$@"
log "load after the run: $(cut -d' ' -f1-3 /proc/loadavg); results in $OUT/results.md"
