-- GET /api/v1/events/{id} with a bearer token, as captured with log_statement = all.
-- Replayed by em-bench with pgbench -M prepared (see docs/performance.md, "How pgbench
-- replays the SQL"). Variables: -D run one started; the rest come from \gset.
-- Once per client: where its chains start (bench_heads is filled by em-bench before each run).
\if :started = 0
SELECT u AS u_full_name, e AS e_location FROM bench_heads WHERE run = :run AND client = :client_id \gset
\set started 1
\endif
-- The bearer token's user (router/auth.rs); users.full_name holds the next user of the chain.
SELECT "users"."id", "users"."email", "users"."email_normalized", "users"."full_name", "users"."password_hash", "users"."role", "users"."created_at", "users"."updated_at", "users"."version" FROM "users" WHERE "users"."id" = :u_full_name LIMIT :one \gset u_
-- The event; events.location holds the next event of the chain.
SELECT "events"."id", "events"."title", "events"."description", "events"."location", "events"."starts_at", "events"."ends_at", "events"."capacity", "events"."waitlist_enabled", "events"."status", "events"."organizer_id", "events"."confirmed_count", "events"."waitlist_count", "events"."created_at", "events"."updated_at", "events"."version", "events"."change_seq", "events"."visibility" FROM "events" WHERE "events"."id" = :e_location LIMIT :one \gset e_
