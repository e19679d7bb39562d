//! Event import jobs.

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Nullable, Timestamp};
use crate::entity::import;

/// Most row errors a job keeps.
pub const MAX_IMPORT_ERRORS: usize = 100;

/// State of an import job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ImportStatus {
    /// Waiting for a worker.
    Queued,
    /// Being imported.
    Processing,
    /// Every row was imported.
    Completed,
    /// Nothing was imported; `errors` says why.
    Failed,
}

impl From<import::ImportStatus> for ImportStatus {
    fn from(s: import::ImportStatus) -> Self {
        match s {
            import::ImportStatus::Queued => ImportStatus::Queued,
            import::ImportStatus::Processing => ImportStatus::Processing,
            import::ImportStatus::Completed => ImportStatus::Completed,
            import::ImportStatus::Failed => ImportStatus::Failed,
        }
    }
}

/// Why a row (or the file) could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct ImportError {
    /// The data row, from 1 (the header row is not counted); 0 for the file or its header.
    pub row: u64,
    /// The column, as named in the header; null when the problem is the row's shape.
    pub field: Nullable<String>,
    /// What is wrong.
    pub message: String,
}

/// A problem of an import file as the job stores it (JSON in `imports.errors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowProblem {
    /// The data row, from 1; 0 for the file or its header.
    pub row: u64,
    /// The column, if the problem is one cell's.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl From<RowProblem> for ImportError {
    fn from(p: RowProblem) -> Self {
        Self {
            row: p.row,
            field: p.field.into(),
            message: p.message,
        }
    }
}

/// An import job: a CSV of events, imported all together or not at all.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct ImportJob {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// `queued`, `processing`, `completed` or `failed`.
    pub status: ImportStatus,
    /// Data rows in the file; 0 until processing begins.
    pub rows_total: u64,
    /// Rows imported so far (all of them once `completed`; 0 once `failed`).
    pub rows_imported: u64,
    /// The first 100 problems; empty unless `failed`.
    pub errors: Vec<ImportError>,
    /// Upload time.
    pub created_at: Timestamp,
    /// When processing began (null while queued).
    pub started_at: Nullable<Timestamp>,
    /// When the job completed or failed (null until then).
    pub finished_at: Nullable<Timestamp>,
}

impl From<import::Model> for ImportJob {
    fn from(m: import::Model) -> Self {
        Self {
            id: m.id,
            status: m.status.into(),
            rows_total: u64::try_from(m.rows_total).unwrap_or(0),
            rows_imported: u64::try_from(m.rows_imported).unwrap_or(0),
            errors: serde_json::from_str::<Vec<RowProblem>>(&m.errors)
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            created_at: m.created_at.into(),
            started_at: m.started_at.map(Timestamp::from).into(),
            finished_at: m.finished_at.map(Timestamp::from).into(),
        }
    }
}
