//! Queries on `idempotency_keys`, and the PostgreSQL advisory lock that claims a key.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement,
};

use super::Result;
use crate::entity::idempotency_key::{self, Entity as IdempotencyKeys};

/// An answer to store.
pub struct NewKey {
    /// Scope (user id or `anonymous`).
    pub scope: String,
    /// The key.
    pub key: String,
    /// Hex SHA-256 of the request.
    pub request_hash: String,
    /// HTTP status.
    pub status: i32,
    /// JSON object of the replayed headers.
    pub headers: String,
    /// Body bytes (sealed or not).
    pub body: Vec<u8>,
    /// Whether `body` is sealed.
    pub sealed: bool,
    /// Now.
    pub created_at: DateTime<Utc>,
    /// When it may be swept.
    pub expires_at: DateTime<Utc>,
}

/// Takes the transaction-scoped advisory lock `id` without waiting (PostgreSQL); `false`
/// when another transaction holds it. Other backends serialise writers and always get it.
pub async fn try_lock(db: &impl ConnectionTrait, id: i64) -> Result<bool> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(true);
    }
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock($1) AS locked",
            [id.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<bool>("", "locked")?,
        None => false,
    })
}

/// The stored answer of a key, expired or not.
pub async fn find(
    db: &impl ConnectionTrait,
    scope: &str,
    key: &str,
) -> Result<Option<idempotency_key::Model>> {
    Ok(
        IdempotencyKeys::find_by_id((scope.to_owned(), key.to_owned()))
            .one(db)
            .await?,
    )
}

/// Stores an answer.
pub async fn insert(db: &impl ConnectionTrait, new: NewKey) -> Result<()> {
    idempotency_key::ActiveModel {
        scope: Set(new.scope),
        key: Set(new.key),
        request_hash: Set(new.request_hash),
        status: Set(new.status),
        headers: Set(new.headers),
        body: Set(new.body),
        sealed: Set(new.sealed),
        created_at: Set(new.created_at),
        expires_at: Set(new.expires_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Deletes one key's row (an expired one, before the key is used again).
pub async fn delete(db: &impl ConnectionTrait, scope: &str, key: &str) -> Result<()> {
    IdempotencyKeys::delete_by_id((scope.to_owned(), key.to_owned()))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes the rows that expired at or before `now`, about `batch` at a time: the oldest
/// `batch` and any that expire at the same instant as the last of them. Returns how many went.
pub async fn delete_expired(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64> {
    let last: Option<DateTime<Utc>> = IdempotencyKeys::find()
        .select_only()
        .column(idempotency_key::Column::ExpiresAt)
        .filter(idempotency_key::Column::ExpiresAt.lte(now))
        .order_by_asc(idempotency_key::Column::ExpiresAt)
        .offset(batch.saturating_sub(1))
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    let cutoff = last.unwrap_or(now);
    Ok(IdempotencyKeys::delete_many()
        .filter(idempotency_key::Column::ExpiresAt.lte(cutoff))
        .exec(db)
        .await?
        .rows_affected)
}
