# Developer and CI entry points. `make test` is what CI runs.
#
# PostgreSQL tests run only when TEST_DATABASE_URL names a server, e.g.
#   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make test
# Without it the suite runs on SQLite only and says so loudly at the end.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
# Options for `make run` / `make migrate`, e.g. ARGS="--bind-addr 0.0.0.0:8000".
# Environment variables work too.
ARGS ?=

# The test harness reads it; make passes it through unchanged (empty means SQLite only).
export TEST_DATABASE_URL

.PHONY: help run build release fmt lint test migrate clean fuzz client soak bench bench-smoke

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: ## Serve the API (SQLite file ./event-manager.db unless DATABASE_URL is set)
	$(CARGO) run -- $(ARGS) serve

build: ## Debug build of the workspace
	$(CARGO) build --workspace

release: ## Optimised build: target/release/event-manager
	$(CARGO) build --release --locked

fmt: ## Format the code
	$(CARGO) fmt --all

lint: ## Check formatting and run clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test: lint ## Lint, then run every test (PostgreSQL too when TEST_DATABASE_URL is set)
	@status=0; \
	$(CARGO) test --workspace --locked || status=$$?; \
	if [ -n "$${TEST_DATABASE_URL:-}" ]; then \
		server=$$(sed -E 's#^([a-z0-9+]+://)([^:/@]+):.*@#\1\2:***@#' <<<"$$TEST_DATABASE_URL"); \
		echo; \
		echo "Backends tested: SQLite and PostgreSQL ($$server)."; \
	else \
		printf '%s\n' "$$PG_NOT_TESTED_BANNER" >&2; \
	fi; \
	exit $$status

migrate: ## Apply pending migrations to DATABASE_URL (default: the SQLite file)
	$(CARGO) run -- $(ARGS) migrate

bench: ## Benchmark on PostgreSQL and SQLite (~5 min once built); see docs/performance.md
	scripts/bench.sh

bench-smoke: ## Seconds-long run of the benchmark with small data; fails on any error
	scripts/bench.sh --smoke

soak: ## Minutes of mixed traffic on PostgreSQL, then memory and invariants checked (SOAK_SECONDS)
	scripts/soak.sh

fuzz: ## Schemathesis (pinned) against the release server on a fresh PostgreSQL database
	scripts/schemathesis/run.sh

client: ## OpenAPI linters and a typed TypeScript client against the release server (needs node, npm)
	tests/client/run.sh

clean: ## Remove build artefacts (keeps the local SQLite database)
	$(CARGO) clean

define PG_NOT_TESTED_BANNER

################################################################################
#                                                                              #
#   WARNING: PostgreSQL was NOT tested.                                        #
#                                                                              #
#   TEST_DATABASE_URL is unset, so every `postgres` test was ignored (see the  #
#   "ignored" counts above). Only SQLite was exercised. PostgreSQL is the      #
#   production backend.                                                        #
#                                                                              #
#   To test it, point TEST_DATABASE_URL at a server where the user may         #
#   create databases, then run make test again:                                #
#                                                                              #
#     TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make test  #
#                                                                              #
################################################################################

endef
export PG_NOT_TESTED_BANNER
