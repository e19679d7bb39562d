//! Business rules: validation, permissions, status moves. Services own transactions.

pub mod attendees;
pub mod auth;
pub mod changes;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod imports;
pub mod invitations;
pub mod live;
pub mod operations;
pub mod patch;
pub mod policy;
pub mod reports;
pub mod sessions;
pub mod staff;
pub mod throttle;
pub mod totals;
pub mod users;
pub mod waitlist;
pub mod webhooks;

use sea_orm::{
    DatabaseConnection, DatabaseTransaction, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use uuid::Uuid;

use self::idempotency::{Claim, Written};
use crate::{entity::user, model::FieldError, repository};

/// The authenticated caller, as the services see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// User id.
    pub id: Uuid,
    /// Role, read from the database on every request (a demotion takes effect at once).
    pub role: user::Role,
}

impl Caller {
    /// Whether the caller is an administrator.
    pub fn is_admin(&self) -> bool {
        self.role == user::Role::Admin
    }
}

/// What a request refused for conflicting with current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Another account has this email.
    EmailTaken,
    /// Any other state conflict; the detail explains it.
    State,
}

/// Errors of the service layer; `crate::error` maps each to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Field values break the rules (422).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// A JSON Patch that cannot be applied, or a read-only path (422).
    #[error("patch cannot be applied: {0}")]
    Unprocessable(String),
    /// The request is malformed in a way the framework could not see (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Missing, invalid or expired credentials (401).
    #[error("not authenticated: {0}")]
    Unauthenticated(&'static str),
    /// Wrong email or password; one message for both (401).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Authenticated, but may not do this (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No such resource, or one the caller may not see (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with current state (409).
    #[error("conflict: {1}")]
    Conflict(Conflict, String),
    /// `If-Match` did not match the current version (412).
    #[error("version mismatch: current version is {current}")]
    PreconditionFailed {
        /// The resource's version now.
        current: i64,
    },
    /// Too many failed attempts; retry after the given number of seconds (429).
    #[error("too many requests")]
    TooManyRequests {
        /// Seconds until the next attempt may succeed.
        retry_after_seconds: u64,
    },
    /// What the request points at has been removed for good, e.g. changes past retention (410).
    #[error("gone: {detail}")]
    Gone {
        /// Problem type slug.
        slug: &'static str,
        /// Explanation.
        detail: String,
    },
    /// A bounded resource of this process is exhausted; retry later (503 with Retry-After).
    #[error("busy: {detail}")]
    Busy {
        /// Problem type slug.
        slug: &'static str,
        /// Explanation.
        detail: String,
        /// Seconds to wait before retrying.
        retry_after_seconds: u64,
    },
    /// Another request with this `Idempotency-Key` is still running (409 with Retry-After).
    #[error("idempotency key in use")]
    IdempotencyKeyInUse,
    /// This `Idempotency-Key` was used for another request (422).
    #[error("idempotency key reused for another request")]
    IdempotencyKeyReused,
    /// The database is unreachable; nothing was done (503).
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// A bug or an unexpected failure (500).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Result of a service call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A 409 with a message.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Error::Conflict(Conflict::State, detail.into())
    }
}

impl From<repository::Error> for Error {
    fn from(err: repository::Error) -> Self {
        match err {
            // Translated by constraint name: PostgreSQL reports the index name, SQLite the column.
            repository::Error::UniqueViolation(c)
                if c.contains("users_email_normalized_key")
                    || c.contains("users.email_normalized") =>
            {
                users::email_taken()
            }
            repository::Error::Unavailable(e) => Error::Unavailable(anyhow::Error::new(e)),
            other => Error::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(err: sea_orm::DbErr) -> Self {
        repository::Error::from(err).into()
    }
}

/// Begins a transaction for writing. On SQLite it is `BEGIN IMMEDIATE`: the write lock is
/// taken at once, so a transaction that reads before it writes cannot fail on lock upgrade
/// with "database is locked"; writers queue on the busy timeout instead.
async fn begin_transaction(db: &DatabaseConnection) -> Result<DatabaseTransaction> {
    Ok(db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?)
}

async fn rollback(txn: DatabaseTransaction) {
    if let Err(rollback) = txn.rollback().await {
        tracing::warn!(error = %rollback, "rollback failed");
    }
}

/// A write transaction of a request, with the `Idempotency-Key` claim it answers for.
pub(crate) struct Write<'c, 'r, T> {
    txn: DatabaseTransaction,
    claim: &'c Claim<'r, T>,
}

impl<T> Write<'_, '_, T> {
    /// The transaction, for the repository calls of the write.
    pub(crate) fn txn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Abandons the write (a lost race the caller retries); nothing is stored.
    pub(crate) async fn roll_back(self) {
        rollback(self.txn).await;
    }
}

/// A begun write, or the stored answer of an earlier request with the same key.
pub(crate) enum Begun<'c, 'r, T> {
    /// Run the write in this transaction.
    Write(Write<'c, 'r, T>),
    /// Nothing to run: answer this.
    Replay(Written<T>),
}

/// Begins the write transaction of a request. The first thing it does is claim the request's
/// `Idempotency-Key` (see [`idempotency`]): every write a request makes goes through here,
/// so none can forget the key.
pub(crate) async fn begin_write<'c, 'r, T>(
    db: &DatabaseConnection,
    claim: &'c Claim<'r, T>,
) -> Result<Begun<'c, 'r, T>> {
    let txn = begin_transaction(db).await?;
    match claim.enter(&txn).await {
        Ok(None) => Ok(Begun::Write(Write { txn, claim })),
        Ok(Some(answer)) => {
            rollback(txn).await;
            Ok(Begun::Replay(Written::Replayed(answer)))
        }
        Err(e) => {
            rollback(txn).await;
            Err(e)
        }
    }
}

/// Commits `write` when `result` is a success, storing its answer for the key first (in the
/// same transaction); rolls it back, storing nothing, otherwise.
pub(crate) async fn commit_or_rollback<T>(
    write: Write<'_, '_, T>,
    result: Result<T>,
) -> Result<Written<T>> {
    let Write { txn, claim } = write;
    let stored = match result {
        Ok(value) => claim
            .store(&txn, &value)
            .await
            .map(|stored| (value, stored)),
        Err(e) => Err(e),
    };
    match stored {
        Ok((value, stored)) => {
            txn.commit().await?;
            Ok(Written::Fresh { value, stored })
        }
        Err(e) => {
            rollback(txn).await;
            Err(e)
        }
    }
}

/// Commits `write` whatever `result` says (a refused refresh token still revokes its login),
/// storing the answer for the key only on success.
pub(crate) async fn commit_either_way<T>(
    write: Write<'_, '_, T>,
    result: Result<T>,
) -> Result<Written<T>> {
    let Write { txn, claim } = write;
    let outcome = match result {
        Ok(value) => match claim.store(&txn, &value).await {
            Ok(stored) => Ok(Written::Fresh { value, stored }),
            Err(e) => {
                rollback(txn).await;
                return Err(e);
            }
        },
        Err(e) => Err(e),
    };
    txn.commit().await?;
    outcome
}

/// Begins a write no request asked for (retention sweeps): no key to claim.
pub(crate) async fn begin_background_write(db: &DatabaseConnection) -> Result<DatabaseTransaction> {
    begin_transaction(db).await
}

/// Commits a background write when `result` is a success, rolls it back otherwise.
pub(crate) async fn finish_background_write<T>(
    txn: DatabaseTransaction,
    result: Result<T>,
) -> Result<T> {
    match result {
        Ok(value) => {
            txn.commit().await?;
            Ok(value)
        }
        Err(e) => {
            rollback(txn).await;
            Err(e)
        }
    }
}
