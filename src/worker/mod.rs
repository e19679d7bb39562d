//! Background tasks: started by `main` beside the server, stopped by the same shutdown
//! signal. They call services, never routers, and hold no business rule of their own.

pub mod fanout;
pub mod followers;
pub mod listener;
pub mod retention;
pub mod webhooks;

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::state::AppState;

/// The running background tasks.
pub struct Workers {
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts every background task of this process. They run until the hub shuts down.
    pub fn start(state: &AppState) -> Self {
        let mut handles = vec![
            tokio::spawn(fanout::run(state.changes.hub().clone())),
            tokio::spawn(retention::run(
                state.changes.clone(),
                state.changes.hub().shutdown_signal(),
            )),
            tokio::spawn(retention::run_idempotency_keys(
                state.idempotency.clone(),
                state.changes.hub().shutdown_signal(),
            )),
            tokio::spawn(webhooks::run(
                state.webhooks.clone(),
                state.config.webhook_concurrency as usize,
                std::time::Duration::from_millis(state.config.webhook_poll_ms),
                state.changes.hub().shutdown_signal(),
            )),
        ];
        if state.config.database_url.starts_with("postgres") {
            handles.push(tokio::spawn(listener::run(
                state.config.database_url.clone(),
                state.changes.hub().clone(),
            )));
            handles.push(tokio::spawn(followers::run(state.changes.hub().clone())));
        }
        Self { handles }
    }

    /// Waits (at most `timeout`) for the tasks to finish after shutdown began.
    pub async fn join(self, timeout: Duration) {
        let all = futures_util::future::join_all(self.handles);
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::warn!("background tasks did not stop in time");
        }
    }
}
