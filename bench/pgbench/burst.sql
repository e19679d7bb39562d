-- POST /api/v1/events/{id}/attendees during a burst on one event of small capacity with a
-- waitlist, as captured with log_statement = all: one UPDATE gives a seat while one is free,
-- then waitlist places (its waitlist_count says which). Replayed by em-bench with pgbench -M prepared
-- (see docs/performance.md); the event's location holds its own id, so it stays the target.
-- Once per client: where its chains start (bench_heads is filled by em-bench before each run).
\if :started = 0
SELECT u AS u_full_name, e AS e_location FROM bench_heads WHERE run = :run AND client = :client_id \gset
\set started 1
\endif
-- The bearer token's user (router/auth.rs); users.full_name holds the next user of the chain.
SELECT "users"."id", "users"."email", "users"."email_normalized", "users"."full_name", "users"."password_hash", "users"."role", "users"."created_at", "users"."updated_at", "users"."version" FROM "users" WHERE "users"."id" = :u_full_name LIMIT :one \gset u_
BEGIN;
-- The place (repository/events.rs claim_seat_or_waitlist_place); the CASE results are literals: pgbench leaves
-- untyped parameters text, the server binds int4.
UPDATE "events" SET "confirmed_count" = "confirmed_count" + (CASE WHEN (("events"."capacity" IS NULL OR "confirmed_count" < "capacity") AND "events"."waitlist_count" = :zero) THEN 1 ELSE 0 END), "waitlist_count" = "waitlist_count" + (CASE WHEN (("events"."capacity" IS NULL OR "confirmed_count" < "capacity") AND "events"."waitlist_count" = :zero) THEN 0 ELSE 1 END), "change_seq" = "change_seq" + :one WHERE "events"."id" = :e_location AND "events"."status" = :published AND "events"."ends_at" > :now AND ((("events"."capacity" IS NULL OR "confirmed_count" < "capacity") AND "events"."waitlist_count" = :zero) OR ("events"."waitlist_enabled" = :yes AND "events"."capacity" IS NOT NULL)) RETURNING "id", "title", "description", "location", "starts_at", "ends_at", "capacity", "waitlist_enabled", "status", "organizer_id", "confirmed_count", "waitlist_count", "created_at", "updated_at", "version", "change_seq", "visibility" \gset e_
\if :e_waitlist_count > 0
INSERT INTO "attendees" ("id", "event_id", "user_id", "status", "waitlist_position", "registered_at", "updated_at", "version", "checked_in_at") VALUES (gen_random_uuid(), :e_id, :u_id, :waitlisted, :e_waitlist_count, :now, :now, :one, NULL) ON CONFLICT ("event_id", "user_id") DO UPDATE SET "status" = "excluded"."status", "waitlist_position" = "excluded"."waitlist_position", "registered_at" = "excluded"."registered_at", "updated_at" = "excluded"."updated_at", "checked_in_at" = "excluded"."checked_in_at", "version" = "attendees"."version" + :one WHERE "attendees"."status" = :cancelled RETURNING "id", "event_id", "user_id", "status", "waitlist_position", "registered_at", "updated_at", "version", "checked_in_at" \gset a_
\else
INSERT INTO "attendees" ("id", "event_id", "user_id", "status", "waitlist_position", "registered_at", "updated_at", "version", "checked_in_at") VALUES (gen_random_uuid(), :e_id, :u_id, :confirmed, NULL, :now, :now, :one, NULL) ON CONFLICT ("event_id", "user_id") DO UPDATE SET "status" = "excluded"."status", "waitlist_position" = "excluded"."waitlist_position", "registered_at" = "excluded"."registered_at", "updated_at" = "excluded"."updated_at", "checked_in_at" = "excluded"."checked_in_at", "version" = "attendees"."version" + :one WHERE "attendees"."status" = :cancelled RETURNING "id", "event_id", "user_id", "status", "waitlist_position", "registered_at", "updated_at", "version", "checked_in_at" \gset a_
\endif
-- The attendee.registered change (service/changes.rs record), with the attendee as data.
INSERT INTO "changes" ("event_id", "seq", "kind", "occurred_at", "actor_id", "confirmed_count", "waitlist_count", "capacity", "data") VALUES (:e_id, :e_change_seq, :attendee_registered, :now, :u_id, :e_confirmed_count, :e_waitlist_count, :e_capacity, :attendee_json);
COMMIT;
