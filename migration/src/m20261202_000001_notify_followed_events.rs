//! Notify only for events that some instance follows.
//!
//! `change_followers` holds one row per (event, instance) with live streams on that event;
//! instances refresh their rows while they follow and rows nobody refreshes expire. The
//! `changes` trigger sends `NOTIFY event_changes` only when the event has a row: a write to
//! an event nobody streams wakes no listener (docs/decisions.md). PostgreSQL only: SQLite
//! runs one process, woken in-process.
//!
//! Also drops `changes_occurred_at_idx`: retention walks the `(txid, id)` order, so nothing
//! reads it, and every change paid for its upkeep.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("changes_occurred_at_idx")
                    .table(Changes::Table)
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        manager
            .create_table(
                Table::create()
                    .table(ChangeFollowers::Table)
                    .col(ColumnDef::new(ChangeFollowers::EventId).uuid().not_null())
                    .col(
                        ColumnDef::new(ChangeFollowers::InstanceId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ChangeFollowers::SeenAt)
                            .timestamp_with_time_zone()
                            .not_null()
                            .default(Expr::current_timestamp()),
                    )
                    .primary_key(
                        Index::create()
                            .col(ChangeFollowers::EventId)
                            .col(ChangeFollowers::InstanceId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE OR REPLACE FUNCTION changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN \
                 IF EXISTS (SELECT 1 FROM change_followers WHERE event_id = NEW.event_id) THEN \
                 PERFORM pg_notify('event_changes', NEW.event_id::text); \
                 END IF; \
                 RETURN NULL; END $$",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "CREATE OR REPLACE FUNCTION changes_notify() RETURNS trigger LANGUAGE plpgsql \
                     AS $$ BEGIN PERFORM pg_notify('event_changes', NEW.event_id::text); \
                     RETURN NULL; END $$",
                )
                .await?;
            manager
                .drop_table(Table::drop().table(ChangeFollowers::Table).to_owned())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("changes_occurred_at_idx")
                    .table(Changes::Table)
                    .col(Changes::OccurredAt)
                    .to_owned(),
            )
            .await
    }
}

/// Columns of `changes` used here.
#[derive(DeriveIden)]
enum Changes {
    Table,
    OccurredAt,
}

/// Columns of `change_followers`.
#[derive(DeriveIden)]
enum ChangeFollowers {
    /// The table.
    Table,
    /// The followed event.
    EventId,
    /// The following process (random per start).
    InstanceId,
    /// When the instance last said it still follows.
    SeenAt,
}
