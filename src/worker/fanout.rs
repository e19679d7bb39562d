//! Fan-out: on every wake-up, reads each changed event's new rows once and broadcasts them to
//! that event's open streams in this process.

use std::{sync::Arc, time::Duration};

use crate::service::live::ChangeHub;

/// Runs until shutdown.
pub async fn run(hub: Arc<ChangeHub>) {
    let shutdown = hub.shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let events = tokio::select! {
            events = hub.next_dirty() => events,
            () = &mut shutdown => return,
        };
        for event_id in events {
            if let Err(e) = hub.fan_out(event_id).await {
                // The rows stay in the table: try again shortly.
                tracing::warn!(error = %e, %event_id, "fan-out could not read changes; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                hub.wake(event_id);
            }
        }
    }
}
