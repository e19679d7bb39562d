//! Retention: deletes changes older than `CHANGES_RETENTION_DAYS`, oldest first, in small
//! batches so that no sweep holds locks for long.

use std::time::Duration;

use crate::service::changes::ChangeFeed;

/// How often the sweep runs.
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
