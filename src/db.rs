//! Database connection: one code path for PostgreSQL and SQLite, chosen by the URL.

use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::config::Config;

/// How long SQLite writers wait for the write lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the URL names a SQLite database.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Opens the pool. Timeouts are short so that a dead database answers 503 quickly instead of
/// holding requests for SeaORM's default 30 s.
pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let url = &config.database_url;
    let mut options = ConnectOptions::new(url.clone());
    let acquire = Duration::from_millis(config.db_acquire_timeout_ms);
    options
        .max_connections(config.db_max_connections)
        .min_connections(1)
        .connect_timeout(acquire)
        .acquire_timeout(acquire)
        // Pinging on every checkout costs a round trip per request; ping only connections
        // idle long enough to have been dropped (a broken busy one fails fast on first use).
        .test_before_acquire_if_idle_for(Duration::from_secs(1))
        // PostgreSQL only: a runaway statement is cancelled and the request answers 503.
        .statement_timeout(Duration::from_millis(config.db_statement_timeout_ms))
        .sqlx_logging(false);
    if is_sqlite(url) {
        // WAL lets readers run beside the single writer; the busy timeout makes writers
        // queue instead of failing with "database is locked".
        options
            .idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
            });
    }
    if is_sqlite(url) && !url.contains(":memory:") {
        prepare_sqlite_file(url).await?;
    }
    match Database::connect(options).await {
        Ok(db) => Ok(db),
        Err(pool_error) => {
            // The pool retries until its timeout and then reports only "pool timed out";
            // one direct attempt tells the operator why (connection refused, bad password,
            // unknown database).
            let cause = match why_unreachable(url, acquire).await {
                Some(cause) => anyhow::Error::msg(cause),
                None => anyhow::Error::new(pool_error),
            };
            Err(cause.context(format!(
                "Failed to connect to the database at {}",
                redact_url(url)
            )))
        }
    }
}

/// One direct connection attempt to a PostgreSQL server, for its error; `None` when it
/// connects (or the URL is not PostgreSQL's) and the pool's own error is the better one.
async fn why_unreachable(url: &str, timeout: Duration) -> Option<String> {
    use std::str::FromStr;

    use sea_orm::sqlx::{ConnectOptions as _, Connection as _, postgres::PgConnectOptions};

    if is_sqlite(url) {
        return None;
    }
    let options = PgConnectOptions::from_str(url).ok()?;
    match tokio::time::timeout(timeout, options.connect()).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            None
        }
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!(
            "no answer within {} ms (DB_ACQUIRE_TIMEOUT_MS)",
            timeout.as_millis()
        )),
    }
}

/// Switches a SQLite file to WAL over a single connection before the pool opens several:
/// changing the journal mode needs an exclusive lock, and pool connections racing to do it
/// on a new file can fail with "database is locked" instead of waiting. Once set, the mode
/// is stored in the file and the pool's own `journal_mode` pragma is a no-op.
async fn prepare_sqlite_file(url: &str) -> anyhow::Result<()> {
    use std::str::FromStr;

    use sea_orm::sqlx::{
        ConnectOptions as _, Connection as _,
        sqlite::{SqliteConnectOptions, SqliteJournalMode},
    };

    let options = SqliteConnectOptions::from_str(url)
        .with_context(|| format!("Invalid SQLite URL {}", redact_url(url)))?
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT);
    let conn = options
        .connect()
        .await
        .with_context(|| format!("Failed to open the SQLite database at {}", redact_url(url)))?;
    conn.close()
        .await
        .context("Failed to close the SQLite set-up connection")?;
    Ok(())
}

/// Applies pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .context("Failed to apply database migrations")
}

/// The URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_in_database_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/events"),
            "postgres://app:***@db:5432/events"
        );
        assert_eq!(
            redact_url("sqlite://x.db?mode=rwc"),
            "sqlite://x.db?mode=rwc"
        );
    }
}
