//! SeaORM queries. Functions take `&impl ConnectionTrait` and never begin or commit:
//! the service that calls them owns the transaction.

pub mod attendees;
pub mod changes;
pub mod events;
pub mod followers;
pub mod idempotency_keys;
pub mod imports;
pub mod invitations;
pub mod refresh_tokens;
pub mod reports;
pub mod staff;
pub mod users;
pub mod webhooks;

use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// Errors of the repository layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A unique constraint refused the write; carries the constraint (PostgreSQL) or
    /// `table.column` list (SQLite) that was violated.
    #[error("unique constraint violated: {0}")]
    UniqueViolation(String),
    /// A foreign key refused the write.
    #[error("foreign key violated: {0}")]
    ForeignKeyViolation(String),
    /// The database could not be reached or gave no connection in time.
    #[error("database unavailable")]
    Unavailable(#[source] DbErr),
    /// Anything else the database reported.
    #[error("database error")]
    Database(#[source] DbErr),
}

/// Result of a repository call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(message)) => {
                return Error::UniqueViolation(constraint_name(&err).unwrap_or(message));
            }
            Some(SqlErr::ForeignKeyConstraintViolation(message)) => {
                return Error::ForeignKeyViolation(constraint_name(&err).unwrap_or(message));
            }
            _ => {}
        }
        if is_unavailable(&err) {
            Error::Unavailable(err)
        } else {
            Error::Database(err)
        }
    }
}

/// The driver's sqlx error, when there is one.
fn sqlx_error(err: &DbErr) -> Option<&sea_orm::sqlx::Error> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => Some(e.as_ref()),
        _ => None,
    }
}

/// PostgreSQL names the violated constraint; SQLite only says `table.column` in its message.
fn constraint_name(err: &DbErr) -> Option<String> {
    match sqlx_error(err)? {
        sea_orm::sqlx::Error::Database(db) => Some(
            db.constraint()
                .map(str::to_owned)
                .unwrap_or_else(|| db.message().to_owned()),
        ),
        _ => None,
    }
}

/// Connection-level failures: the request did nothing and may be retried later.
fn is_unavailable(err: &DbErr) -> bool {
    if matches!(err, DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) {
        return true;
    }
    match sqlx_error(err) {
        Some(sea_orm::sqlx::Error::Io(_))
        | Some(sea_orm::sqlx::Error::PoolTimedOut)
        | Some(sea_orm::sqlx::Error::PoolClosed)
        | Some(sea_orm::sqlx::Error::Tls(_))
        | Some(sea_orm::sqlx::Error::WorkerCrashed) => true,
        Some(sea_orm::sqlx::Error::Database(db)) => {
            // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now,
            // 08xxx connection exceptions, 57014 statement timeout (query_canceled).
            db.code().is_some_and(|code| {
                code.starts_with("08")
                    || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "57014")
            })
        }
        _ => false,
    }
}
