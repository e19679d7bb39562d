//! Idempotency keys: the stored answer of each write that carried an `Idempotency-Key`.
//!
//! One row per (scope, key), written in the write's own transaction just before it commits,
//! so a rolled-back write leaves none. `request_hash` tells a retry (same method, path and
//! body) from a reuse of the key for another request. Rows live at least
//! `IDEMPOTENCY_TTL_SECONDS`; the background worker deletes them by `expires_at`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    // The caller's user id, or `anonymous`.
                    .col(
                        ColumnDef::new(IdempotencyKeys::Scope)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::Key)
                            .string_len(255)
                            .not_null(),
                    )
                    // Lower-case hex SHA-256 of method, path with query and body.
                    .col(
                        ColumnDef::new(IdempotencyKeys::RequestHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(IdempotencyKeys::Status).integer().not_null())
                    // JSON object of the headers replayed (`Location`, `ETag`, `Content-Type`...).
                    .col(ColumnDef::new(IdempotencyKeys::Headers).text().not_null())
                    // The exact body bytes, or (when `sealed`) nonce and AES-256-GCM ciphertext.
                    .col(ColumnDef::new(IdempotencyKeys::Body).blob().not_null())
                    .col(
                        ColumnDef::new(IdempotencyKeys::Sealed)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .name("idempotency_keys_pkey")
                            .col(IdempotencyKeys::Scope)
                            .col(IdempotencyKeys::Key),
                    )
                    .to_owned(),
            )
            .await?;
        // The sweep deletes the oldest expired rows first.
        manager
            .create_index(
                Index::create()
                    .name("idempotency_keys_expires_at_idx")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum IdempotencyKeys {
    Table,
    Scope,
    Key,
    RequestHash,
    Status,
    Headers,
    Body,
    Sealed,
    CreatedAt,
    ExpiresAt,
}
