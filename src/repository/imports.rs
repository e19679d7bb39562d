//! Queries on `imports`: jobs, their claims and their outcome.
//!
//! A claim bumps `attempts`; every later write of the worker names the attempt it holds, so
//! a worker whose lease lapsed (and whose job another instance took up) changes nothing.

use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, Statement,
};
use uuid::Uuid;

use super::Result;
use crate::{
    entity::import::{self, Entity as Imports, ImportStatus},
    time::UtcDateTime,
};

/// Stores a new job.
pub async fn insert(
    db: &impl ConnectionTrait,
    model: import::ActiveModel,
) -> Result<import::Model> {
    Ok(model.insert(db).await?)
}

/// The job with this id.
pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<import::Model>> {
    Ok(Imports::find_by_id(id).one(db).await?)
}

/// Claims the oldest job that is queued, or processing under a lapsed lease, until
/// `lease_until`. On PostgreSQL `FOR UPDATE SKIP LOCKED` keeps two instances from claiming
/// one job; SQLite has one writer at a time anyway.
pub async fn claim(
    db: &impl ConnectionTrait,
    now: UtcDateTime,
    lease_until: UtcDateTime,
) -> Result<Option<import::Model>> {
    let backend = db.get_database_backend();
    let lock = match backend {
        DbBackend::Postgres => "FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    let sql = format!(
        "UPDATE imports SET status = 'processing', attempts = attempts + 1, lease_until = $1, \
         started_at = COALESCE(started_at, $2) \
         WHERE id = (SELECT id FROM imports \
             WHERE status = 'queued' OR (status = 'processing' AND lease_until < $2) \
             ORDER BY created_at, id LIMIT 1 {lock}) \
         RETURNING id, created_by, status, content, rows_total, rows_imported, errors, attempts, \
         lease_until, created_at, started_at, finished_at"
    );
    let stmt = Statement::from_sql_and_values(backend, sql, [lease_until.into(), now.into()]);
    Ok(import::Model::find_by_statement(stmt).one(db).await?)
}

/// Records progress and extends the lease of the claim `attempt`; `false` when the job is no
/// longer this attempt's.
pub async fn progress(
    db: &impl ConnectionTrait,
    id: Uuid,
    attempt: i32,
    rows_total: i32,
    rows_imported: i32,
    lease_until: UtcDateTime,
) -> Result<bool> {
    let backend = db.get_database_backend();
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE imports SET rows_total = $1, rows_imported = $2, lease_until = $3 \
             WHERE id = $4 AND attempts = $5 AND status = 'processing'",
            [
                rows_total.into(),
                rows_imported.into(),
                lease_until.into(),
                id.into(),
                attempt.into(),
            ],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// How a job ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `completed` or `failed`.
    pub status: ImportStatus,
    /// Data rows in the file.
    pub rows_total: i32,
    /// Rows imported.
    pub rows_imported: i32,
    /// JSON array of the errors.
    pub errors: String,
    /// When.
    pub finished_at: UtcDateTime,
}

/// Finishes the claim `attempt` of a job (dropping its upload); `false` when the job is no
/// longer this attempt's, and nothing changed.
pub async fn finish(
    db: &impl ConnectionTrait,
    id: Uuid,
    attempt: i32,
    outcome: Outcome,
) -> Result<bool> {
    let status = match outcome.status {
        ImportStatus::Completed => "completed",
        ImportStatus::Failed => "failed",
        ImportStatus::Queued => "queued",
        ImportStatus::Processing => "processing",
    };
    let backend = db.get_database_backend();
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE imports SET status = $1, rows_total = $2, rows_imported = $3, errors = $4, \
             finished_at = $5, lease_until = NULL, content = '' \
             WHERE id = $6 AND attempts = $7 AND status = 'processing'",
            [
                status.into(),
                outcome.rows_total.into(),
                outcome.rows_imported.into(),
                outcome.errors.into(),
                outcome.finished_at.into(),
                id.into(),
                attempt.into(),
            ],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}
