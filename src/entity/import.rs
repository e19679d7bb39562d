//! The `imports` table: event import jobs.

use sea_orm::entity::prelude::*;

/// State of an import job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ImportStatus {
    /// Waiting for a worker.
    #[sea_orm(string_value = "queued")]
    Queued,
    /// Claimed by a worker (or left so by a crash, until its lease lapses).
    #[sea_orm(string_value = "processing")]
    Processing,
    /// Every row was imported.
    #[sea_orm(string_value = "completed")]
    Completed,
    /// Nothing was imported; `errors` says why.
    #[sea_orm(string_value = "failed")]
    Failed,
}

/// A row of `imports`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "imports")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Who uploaded it; they organize the imported events.
    pub created_by: Uuid,
    /// State.
    pub status: ImportStatus,
    /// The uploaded CSV text; emptied once the job has finished.
    pub content: String,
    /// Data rows in the file (known once processing began).
    pub rows_total: i32,
    /// Rows imported so far.
    pub rows_imported: i32,
    /// JSON array of `{row, field, message}` (at most 100).
    pub errors: String,
    /// Times a worker claimed the job.
    pub attempts: i32,
    /// Until when the worker that claimed it holds it.
    pub lease_until: Option<DateTimeUtc>,
    /// Upload time.
    pub created_at: DateTimeUtc,
    /// When processing began.
    pub started_at: Option<DateTimeUtc>,
    /// When the job completed or failed.
    pub finished_at: Option<DateTimeUtc>,
}

/// `imports` relations are not navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
