-- POST /api/v1/events with a bearer token, as captured with log_statement = all.
-- Replayed by em-bench with pgbench -M prepared (see docs/performance.md). The server sends
-- a fresh UUIDv7 as $1; the script uses gen_random_uuid(). The event and its change feed row
-- are written in one transaction.
-- Once per client: where its chains start (bench_heads is filled by em-bench before each run).
\if :started = 0
SELECT u AS u_full_name, e AS e_location FROM bench_heads WHERE run = :run AND client = :client_id \gset
\set started 1
\endif
-- The bearer token's user (router/auth.rs); users.full_name holds the next user of the chain.
SELECT "users"."id", "users"."email", "users"."email_normalized", "users"."full_name", "users"."password_hash", "users"."role", "users"."created_at", "users"."updated_at", "users"."version" FROM "users" WHERE "users"."id" = :u_full_name LIMIT :one \gset u_
BEGIN;
INSERT INTO "events" ("id", "title", "description", "location", "starts_at", "ends_at", "capacity", "waitlist_enabled", "status", "organizer_id", "confirmed_count", "waitlist_count", "created_at", "updated_at", "version", "change_seq", "visibility") VALUES (gen_random_uuid(), :title, :description, :location, :starts, :ends, :capacity, :no, :published, :u_id, :zero, :zero, :now, :now, :one, :one, :public) RETURNING "id", "title", "description", "location", "starts_at", "ends_at", "capacity", "waitlist_enabled", "status", "organizer_id", "confirmed_count", "waitlist_count", "created_at", "updated_at", "version", "change_seq", "visibility" \gset e_
-- Its event.created change (service/changes.rs record), with the event as data.
INSERT INTO "changes" ("event_id", "seq", "kind", "occurred_at", "actor_id", "confirmed_count", "waitlist_count", "capacity", "data") VALUES (:e_id, :one, :event_created, :now, :u_id, :zero, :zero, :capacity, :event_json);
COMMIT;
