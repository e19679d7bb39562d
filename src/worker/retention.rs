//! Retention: deletes changes older than `CHANGES_RETENTION_DAYS`, and the stored answers of
//! `Idempotency-Key`s past `IDEMPOTENCY_TTL_SECONDS`, oldest first, in bounded batches so
//! that no sweep holds locks for long.

use std::time::Duration;

use crate::service::{changes::ChangeFeed, idempotency::Idempotency};

/// How often the sweeps run.
const EVERY: Duration = Duration::from_secs(3600);

/// Runs until `shutdown` resolves: one sweep at start, then one every hour.
pub async fn run(feed: ChangeFeed, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        match feed.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired changes deleted"),
            Err(e) => {
                tracing::warn!(error = %e, "change retention sweep failed; next one in an hour")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            () = &mut shutdown => return,
        }
    }
}

/// Runs until `shutdown` resolves: one sweep of expired idempotency keys at start, then one
/// every hour (keys live at least a day, so an hour late is harmless).
pub async fn run_idempotency_keys(keys: Idempotency, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            swept = keys.sweep() => match swept {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "expired idempotency keys deleted"),
                Err(e) => tracing::warn!(
                    error = %e,
                    "idempotency key sweep failed; next one in an hour"
                ),
            },
            () = &mut shutdown => return,
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            () = &mut shutdown => return,
        }
    }
}
