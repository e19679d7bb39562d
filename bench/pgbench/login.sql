-- POST /api/v1/auth/token, as captured with log_statement = all: one lookup by email (then
-- argon2 verification, which pgbench does not do). users.full_name holds the next email.
-- Once per client: where its chains start (bench_heads is filled by em-bench before each run).
\if :started = 0
SELECT u AS u_full_name, e AS e_location FROM bench_heads WHERE run = :run AND client = :client_id \gset
\set started 1
\endif
SELECT "users"."id", "users"."email", "users"."email_normalized", "users"."full_name", "users"."password_hash", "users"."role", "users"."created_at", "users"."updated_at", "users"."version" FROM "users" WHERE "users"."email_normalized" = :u_full_name LIMIT :one \gset u_
-- The new login's first refresh token (service/sessions.rs).
INSERT INTO "refresh_tokens" ("id", "family_id", "user_id", "token_hash", "created_at", "expires_at", "spent_at") VALUES (gen_random_uuid(), gen_random_uuid(), :u_id, gen_random_uuid(), :now, :now, NULL) RETURNING "id", "family_id", "user_id", "token_hash", "created_at", "expires_at", "spent_at" \gset r_
