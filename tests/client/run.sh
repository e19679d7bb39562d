#!/usr/bin/env bash
# Contract checks against the release server on a fresh PostgreSQL database:
#   1. the served /openapi.json passes Redocly CLI (`recommended`) and Spectral (`spectral:oas`)
#      with 0 errors and 0 warnings;
#   2. openapi-typescript (default options) generates types from it, and flow.ts, a frontend's
#      first session written with openapi-fetch, type-checks under `tsc --strict`;
#   3. flow.ts runs against the server.
# Tool versions are pinned in package.json / package-lock.json (`npm ci`).
#
# Env: PG_SERVER_URL (default postgres://postgres@127.0.0.1:5432), EM_BIN (another build).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$ROOT/target/client"
mkdir -p "$OUT"

cd "$HERE"
# Reinstall only when the lock file changed since the last install.
if ! cmp -s package-lock.json node_modules/.package-lock.json 2>/dev/null; then
    npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
fi
BIN_DIR="$HERE/node_modules/.bin"

NAME=client
# shellcheck source=scripts/fresh-server.sh
. "$ROOT/scripts/fresh-server.sh"
fresh_database
start_server

curl -fsS "$BASE/openapi.json" -o "$OUT/openapi.json"

# Every stage runs, so one run shows every problem; the script fails if any stage failed.
failed=()
stage() {
    local name="$1"
    shift
    echo "==> $name"
    "$@" || failed+=("$name")
}

stage "Redocly CLI (recommended)" \
    "$BIN_DIR/redocly" lint --config "$HERE/redocly.yaml" --max-problems 500 "$OUT/openapi.json"
stage "Spectral (spectral:oas)" \
    "$BIN_DIR/spectral" lint --ruleset "$HERE/.spectral.yaml" --fail-severity=hint "$OUT/openapi.json"
stage "openapi-typescript" "$BIN_DIR/openapi-typescript" "$OUT/openapi.json" -o "$OUT/schema.d.ts"
stage "tsc --strict" "$BIN_DIR/tsc" -p "$HERE/tsconfig.json"
if [ -f "$HERE/build/flow.js" ] && [ ${#failed[@]} -eq 0 ]; then
    stage "typed client against the server" node "$HERE/build/flow.js" "$BASE"
fi

if [ ${#failed[@]} -gt 0 ]; then
    printf 'contract checks failed: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "contract checks: linters 0 errors 0 warnings, typed client type-checks and runs"
