//! The change feed: one row per committed change to an event or what belongs to it.
//!
//! `events.change_seq` is the per-event counter. Every write that records changes bumps it in
//! the UPDATE that already locks the event row, so `seq` is gap-free and in commit order per
//! event without a global sequence. `changes.txid` is the writing transaction's id on
//! PostgreSQL (0 on SQLite, whose writes are serialised): the global feed serves only rows
//! of transactions older than every transaction still running (docs/decisions.md).
//! On PostgreSQL a trigger sends `NOTIFY event_changes, '<event_id>'` for every inserted row;
//! it is delivered at commit and never for a rolled-back write.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

use crate::m20261122_000002_create_events_and_attendees::Events;

/// `events.change_seq`: the last `seq` recorded for the event.
const CHANGE_SEQ: &str = "change_seq";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == DatabaseBackend::Postgres;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(
                        ColumnDef::new(CHANGE_SEQ)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        let mut txid = ColumnDef::new(Changes::Txid);
        txid.big_integer().not_null();
        if postgres {
            txid.default(Expr::cust("(pg_current_xact_id()::text::bigint)"));
        } else {
            txid.default(0);
        }
        manager
            .create_table(
                Table::create()
                    .table(Changes::Table)
                    .col(
                        ColumnDef::new(Changes::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    // No foreign key: `event.deleted` outlives its event.
                    .col(ColumnDef::new(Changes::EventId).uuid().not_null())
                    .col(ColumnDef::new(Changes::Seq).big_integer().not_null())
                    .col(ColumnDef::new(Changes::Kind).string_len(32).not_null())
                    .col(
                        ColumnDef::new(Changes::OccurredAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Changes::ActorId).uuid().null())
                    .col(ColumnDef::new(Changes::ConfirmedCount).integer().not_null())
                    .col(ColumnDef::new(Changes::WaitlistCount).integer().not_null())
                    .col(ColumnDef::new(Changes::Capacity).integer().null())
                    .col(ColumnDef::new(Changes::Data).text().not_null())
                    .col(&mut txid)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("changes_event_id_seq_key")
                    .table(Changes::Table)
                    .col(Changes::EventId)
                    .col(Changes::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("changes_txid_id_idx")
                    .table(Changes::Table)
                    .col(Changes::Txid)
                    .col(Changes::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("changes_occurred_at_idx")
                    .table(Changes::Table)
                    .col(Changes::OccurredAt)
                    .to_owned(),
            )
            .await?;
        // Where the retention sweep has deleted up to, in the global feed's order: a cursor
        // before it may have missed deleted rows (410). One row.
        manager
            .create_table(
                Table::create()
                    .table(ChangeSweeps::Table)
                    .col(
                        ColumnDef::new(ChangeSweeps::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ChangeSweeps::Txid).big_integer().not_null())
                    .col(
                        ColumnDef::new(ChangeSweeps::LastId)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(ChangeSweeps::Table)
                    .columns([ChangeSweeps::Id, ChangeSweeps::Txid, ChangeSweeps::LastId])
                    .values_panic([1.into(), 0.into(), 0.into()])
                    .to_owned(),
            )
            .await?;
        if postgres {
            let db = manager.get_connection();
            db.execute_unprepared(
                "CREATE FUNCTION changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN PERFORM pg_notify('event_changes', NEW.event_id::text); RETURN NULL; END $$",
            )
            .await?;
            db.execute_unprepared(
                "CREATE TRIGGER changes_notify AFTER INSERT ON changes \
                 FOR EACH ROW EXECUTE FUNCTION changes_notify()",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS changes_notify() CASCADE")
                .await?;
        }
        manager
            .drop_table(Table::drop().table(ChangeSweeps::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Changes::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(CHANGE_SEQ)
                    .to_owned(),
            )
            .await
    }
}

/// Columns of `changes`.
#[derive(DeriveIden)]
pub enum Changes {
    /// The table.
    Table,
    /// Insertion order (global feed tiebreak within a transaction).
    Id,
    /// The event the change belongs to.
    EventId,
    /// Per-event sequence number, from 1, gap-free.
    Seq,
    /// `event.created`, `attendee.registered`, ...
    Kind,
    /// Commit-time clock of the writer.
    OccurredAt,
    /// Who made the change.
    ActorId,
    /// Event counts after the change.
    ConfirmedCount,
    /// Event counts after the change.
    WaitlistCount,
    /// Capacity after the change (available seats derive from it).
    Capacity,
    /// The resource after the change, JSON.
    Data,
    /// Writing transaction (PostgreSQL `pg_current_xact_id()`; 0 on SQLite).
    Txid,
}

/// Columns of `change_sweeps`.
#[derive(DeriveIden)]
pub enum ChangeSweeps {
    /// The table.
    Table,
    /// Always 1.
    Id,
    /// Transaction id of the last row deleted by retention.
    Txid,
    /// Row id of the last row deleted by retention.
    LastId,
}
