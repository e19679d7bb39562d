//! PostgreSQL `LISTEN event_changes`: other instances' commits wake this process's fan-out.
//!
//! One dedicated connection per process (not one per stream). A notification is only a
//! wake-up; the changes table holds the data. When the connection drops, notifications sent
//! meanwhile are lost, so after every reconnect every followed event is read again.

use std::{sync::Arc, time::Duration};

use sea_orm::sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::service::live::ChangeHub;

/// The channel the `changes` trigger notifies, with the event id as payload.
pub const CHANNEL: &str = "event_changes";

/// Runs until shutdown, reconnecting with a pause after failures.
pub async fn run(database_url: String, hub: Arc<ChangeHub>) {
    let shutdown = hub.shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            result = listen(&database_url, &hub) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "change listener disconnected; reconnecting");
                }
            }
            () = &mut shutdown => return,
        }
        // Whatever was notified while disconnected is read from the table.
        hub.wake_all();
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = &mut shutdown => return,
        }
    }
}

async fn listen(database_url: &str, hub: &ChangeHub) -> Result<(), sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect(database_url).await?;
    listener.listen(CHANNEL).await?;
    // Connected: anything committed before LISTEN took effect is read now.
    hub.wake_all();
    loop {
        match listener.try_recv().await? {
            Some(notification) => {
                if let Ok(event_id) = Uuid::parse_str(notification.payload()) {
                    hub.wake(event_id);
                }
            }
            // The connection dropped and was re-established: notifications may be lost.
            None => hub.wake_all(),
        }
    }
}
