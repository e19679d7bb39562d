-- GET /api/v1/events?limit=20 with a bearer token, as captured with log_statement = all.
-- Replayed by em-bench with pgbench -M prepared (see docs/performance.md).
-- Once per client: where its chains start (bench_heads is filled by em-bench before each run).
\if :started = 0
SELECT u AS u_full_name, e AS e_location FROM bench_heads WHERE run = :run AND client = :client_id \gset
-- The remembered non-draft total: once per client here, about once per 2 s in the server.
SELECT COUNT(*) AS num_items FROM (SELECT "events"."id", "events"."title", "events"."description", "events"."location", "events"."starts_at", "events"."ends_at", "events"."capacity", "events"."waitlist_enabled", "events"."status", "events"."organizer_id", "events"."confirmed_count", "events"."waitlist_count", "events"."created_at", "events"."updated_at", "events"."version", "events"."change_seq", "events"."visibility" FROM "events" WHERE "events"."status" <> :draft AND "events"."visibility" = :public) AS "sub_query" \gset
\set started 1
\endif
-- The bearer token's user (router/auth.rs); users.full_name holds the next user of the chain.
SELECT "users"."id", "users"."email", "users"."email_normalized", "users"."full_name", "users"."password_hash", "users"."role", "users"."created_at", "users"."updated_at", "users"."version" FROM "users" WHERE "users"."id" = :u_full_name LIMIT :one \gset u_
-- The total: the unlisted events the viewer may see (drafts and private events they organize,
-- staff or, once published, are registered for; counted per request), plus the listed ones,
-- which the server remembers (src/service/totals.rs) and counts again at most every 2 s.
SELECT COUNT(*) AS num_items FROM (SELECT "events"."id", "events"."title", "events"."description", "events"."location", "events"."starts_at", "events"."ends_at", "events"."capacity", "events"."waitlist_enabled", "events"."status", "events"."organizer_id", "events"."confirmed_count", "events"."waitlist_count", "events"."created_at", "events"."updated_at", "events"."version", "events"."change_seq", "events"."visibility" FROM "events" WHERE ("events"."status" = :draft OR "events"."visibility" = :private) AND ("events"."organizer_id" = :u_id OR "events"."id" IN (SELECT "event_id" FROM "event_staff" WHERE "event_staff"."user_id" = :u_id) OR ("events"."status" <> :draft AND "events"."id" IN (SELECT "event_id" FROM "attendees" WHERE "attendees"."user_id" = :u_id AND "attendees"."status" <> :cancelled)))) AS "sub_query" \gset
-- Then the first page.
SELECT "events"."id", "events"."title", "events"."description", "events"."location", "events"."starts_at", "events"."ends_at", "events"."capacity", "events"."waitlist_enabled", "events"."status", "events"."organizer_id", "events"."confirmed_count", "events"."waitlist_count", "events"."created_at", "events"."updated_at", "events"."version", "events"."change_seq", "events"."visibility" FROM "events" WHERE ("events"."status" <> :draft AND "events"."visibility" = :public) OR ("events"."organizer_id" = :u_id OR "events"."id" IN (SELECT "event_id" FROM "event_staff" WHERE "event_staff"."user_id" = :u_id) OR ("events"."status" <> :draft AND "events"."id" IN (SELECT "event_id" FROM "attendees" WHERE "attendees"."user_id" = :u_id AND "attendees"."status" <> :cancelled))) ORDER BY "events"."starts_at" ASC, "events"."id" ASC LIMIT :page OFFSET :zero;
