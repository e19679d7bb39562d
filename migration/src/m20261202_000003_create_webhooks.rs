//! Webhooks, their deliveries, and the dispatcher's position in the change feed.
//!
//! A delivery is made from one row of `changes` for one webhook, and keeps the body it sends
//! (so every retry signs the same bytes, even after retention swept the change). The unique
//! (webhook, change) pair makes turning changes into deliveries safe to repeat.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Webhooks::Table)
                    .col(ColumnDef::new(Webhooks::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Webhooks::OwnerId).uuid().not_null())
                    .col(ColumnDef::new(Webhooks::Url).text().not_null())
                    // No foreign key: a webhook on an event still receives its `event.deleted`.
                    .col(ColumnDef::new(Webhooks::EventId).uuid().null())
                    // JSON array of change types; empty: all.
                    .col(ColumnDef::new(Webhooks::Types).text().not_null())
                    .col(ColumnDef::new(Webhooks::Active).boolean().not_null())
                    .col(ColumnDef::new(Webhooks::Description).text().not_null())
                    .col(ColumnDef::new(Webhooks::DisabledReason).text().null())
                    // Nonce and AES-256-GCM ciphertext of the signing secret.
                    .col(ColumnDef::new(Webhooks::Secret).blob().not_null())
                    // Since when every attempt failed (null: the last one succeeded).
                    .col(
                        ColumnDef::new(Webhooks::FailingSince)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Webhooks::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Webhooks::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Webhooks::Version).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("webhooks_owner_id_fkey")
                            .from(Webhooks::Table, Webhooks::OwnerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhooks_owner_id_idx")
                    .table(Webhooks::Table)
                    .col(Webhooks::OwnerId)
                    .col(Webhooks::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(
                        ColumnDef::new(WebhookDeliveries::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::WebhookId)
                            .uuid()
                            .not_null(),
                    )
                    // The change's row id (no foreign key: retention sweeps changes).
                    .col(
                        ColumnDef::new(WebhookDeliveries::ChangeId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(WebhookDeliveries::EventId).uuid().not_null())
                    .col(
                        ColumnDef::new(WebhookDeliveries::Seq)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::Kind)
                            .string_len(64)
                            .not_null(),
                    )
                    // The exact body sent (the change as JSON).
                    .col(ColumnDef::new(WebhookDeliveries::Payload).text().not_null())
                    // `pending`, `succeeded` or `failed`.
                    .col(
                        ColumnDef::new(WebhookDeliveries::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::Attempts)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::LastStatusCode)
                            .integer()
                            .null(),
                    )
                    .col(ColumnDef::new(WebhookDeliveries::LastError).text().null())
                    // When a pending delivery may next be attempted; a claim moves it past the
                    // attempt's lease, so a crash before the result is recorded resends it.
                    .col(
                        ColumnDef::new(WebhookDeliveries::NextAttemptAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    // After this, a failed attempt fails the delivery for good.
                    .col(
                        ColumnDef::new(WebhookDeliveries::GiveUpAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("webhook_deliveries_webhook_id_fkey")
                            .from(WebhookDeliveries::Table, WebhookDeliveries::WebhookId)
                            .to(Webhooks::Table, Webhooks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_webhook_change_key")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::WebhookId)
                    .col(WebhookDeliveries::ChangeId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Per (webhook, event) in seq order: the ordering check and the delivery log.
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_order_idx")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::WebhookId)
                    .col(WebhookDeliveries::EventId)
                    .col(WebhookDeliveries::Seq)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_due_idx")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookCursor::Table)
                    .col(
                        ColumnDef::new(WebhookCursor::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(WebhookCursor::Txid).big_integer().not_null())
                    .col(
                        ColumnDef::new(WebhookCursor::LastId)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Webhooks only see changes made after they exist: start after the feed's end.
        let start = match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                "INSERT INTO webhook_cursor (id, txid, last_id) \
                 SELECT 1, COALESCE(MAX(txid), 0), COALESCE(MAX(id), 0) FROM changes"
            }
            _ => {
                "INSERT INTO webhook_cursor (id, txid, last_id) \
                 SELECT 1, 0, COALESCE(MAX(id), 0) FROM changes"
            }
        };
        manager.get_connection().execute_unprepared(start).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookCursor::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Webhooks::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
pub enum Webhooks {
    Table,
    Id,
    OwnerId,
    Url,
    EventId,
    Types,
    Active,
    Description,
    DisabledReason,
    Secret,
    FailingSince,
    CreatedAt,
    UpdatedAt,
    Version,
}

#[derive(DeriveIden)]
pub enum WebhookDeliveries {
    Table,
    Id,
    WebhookId,
    ChangeId,
    EventId,
    Seq,
    Kind,
    Payload,
    Status,
    Attempts,
    LastStatusCode,
    LastError,
    NextAttemptAt,
    GiveUpAt,
    CreatedAt,
}

#[derive(DeriveIden)]
pub enum WebhookCursor {
    Table,
    Id,
    Txid,
    LastId,
}
