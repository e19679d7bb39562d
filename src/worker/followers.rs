//! PostgreSQL: keeps this process's `change_followers` records alive while it follows events,
//! lets the others expire, and deletes this process's records when it stops.

use std::{sync::Arc, time::Duration};

use crate::service::live::{ChangeHub, FOLLOWER_EXPIRY_SECONDS};

/// How often the records are refreshed: well within their expiry.
const REFRESH: Duration = Duration::from_secs(FOLLOWER_EXPIRY_SECONDS / 4);
/// How long stopping waits for the database to forget this process.
const FORGET_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs until the hub shuts down.
pub async fn run(hub: Arc<ChangeHub>) {
    let shutdown = hub.shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = tokio::time::sleep(REFRESH) => {}
            () = &mut shutdown => break,
        }
        if let Err(e) = hub.refresh_followers().await {
            tracing::warn!(error = %e, "could not refresh the followed events; retrying");
        }
    }
    // Left behind (a crash, a timeout), the records expire on their own.
    match tokio::time::timeout(FORGET_TIMEOUT, hub.forget_followers()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not forget the followed events"),
        Err(_) => tracing::warn!("forgetting the followed events timed out"),
    }
}
