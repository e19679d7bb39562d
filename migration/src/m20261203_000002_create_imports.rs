//! Event import jobs, and the indexes the attendance statistics read.
//!
//! A job keeps its upload (the CSV text) until it finishes, so a job left `processing` by a
//! crash can be taken up again from the table alone. `lease_until` is the claim of the
//! instance processing it: once it has lapsed, any instance may claim the job again.

use sea_orm_migration::prelude::*;

use crate::m20261122_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Imports::Table)
                    .col(ColumnDef::new(Imports::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Imports::CreatedBy).uuid().not_null())
                    .col(
                        ColumnDef::new(Imports::Status)
                            .string_len(16)
                            .not_null()
                            .check(Expr::col(Imports::Status).is_in([
                                "queued",
                                "processing",
                                "completed",
                                "failed",
                            ])),
                    )
                    // The uploaded CSV; emptied once the job has finished.
                    .col(ColumnDef::new(Imports::Content).text().not_null())
                    .col(ColumnDef::new(Imports::RowsTotal).integer().not_null())
                    .col(ColumnDef::new(Imports::RowsImported).integer().not_null())
                    // JSON array of `{row, field, message}`, at most 100.
                    .col(ColumnDef::new(Imports::Errors).text().not_null())
                    .col(ColumnDef::new(Imports::Attempts).integer().not_null())
                    .col(
                        ColumnDef::new(Imports::LeaseUntil)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Imports::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Imports::StartedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Imports::FinishedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("imports_created_by_fkey")
                            .from(Imports::Table, Imports::CreatedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The worker's look for claimable jobs: unfinished ones, oldest first.
        manager
            .create_index(
                Index::create()
                    .name("imports_status_created_at_idx")
                    .table(Imports::Table)
                    .col(Imports::Status)
                    .col(Imports::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("imports_created_by_idx")
                    .table(Imports::Table)
                    .col(Imports::CreatedBy)
                    .to_owned(),
            )
            .await?;
        // Statistics: check-ins per hour of one event without reading its other attendees.
        manager
            .create_index(
                Index::create()
                    .name("attendees_event_id_checked_in_at_idx")
                    .table(Attendees::Table)
                    .col(Attendees::EventId)
                    .col(Attendees::CheckedInAt)
                    .to_owned(),
            )
            .await?;
        // Statistics: cancellations per hour of one event from the change feed, without
        // reading its registrations.
        manager
            .create_index(
                Index::create()
                    .name("changes_event_id_kind_occurred_at_idx")
                    .table(Changes::Table)
                    .col(Changes::EventId)
                    .col(Changes::Kind)
                    .col(Changes::OccurredAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("changes_event_id_kind_occurred_at_idx")
                    .table(Changes::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("attendees_event_id_checked_in_at_idx")
                    .table(Attendees::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Imports::Table).to_owned())
            .await
    }
}

/// The `imports` table.
#[derive(DeriveIden, Clone, Copy)]
pub enum Imports {
    Table,
    Id,
    CreatedBy,
    Status,
    Content,
    RowsTotal,
    RowsImported,
    Errors,
    Attempts,
    LeaseUntil,
    CreatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Attendees {
    Table,
    EventId,
    CheckedInAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Changes {
    Table,
    EventId,
    Kind,
    OccurredAt,
}
