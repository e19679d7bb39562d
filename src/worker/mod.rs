//! Background tasks: started by `main` beside the server, stopped by the same shutdown
//! signal. They call services, never routers, and hold no business rule of their own.

pub mod fanout;
pub mod followers;
pub mod imports;
pub mod listener;
pub mod retention;
pub mod webhooks;

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::state::AppState;

/// Folds recorded samples into the metrics' histograms every few seconds until `shutdown`.
async fn metrics_upkeep(state: AppState, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = every.tick() => state.operations.upkeep(),
            () = &mut shutdown => return,
        }
    }
}

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
            tokio::spawn(imports::run(
                state.imports.clone(),
                Duration::from_millis(state.config.import_poll_ms),
                state.changes.hub().shutdown_signal(),
            )),
        ];
        if state.operations.enabled() {
            handles.push(tokio::spawn(metrics_upkeep(
                state.clone(),
                state.changes.hub().shutdown_signal(),
            )));
        }
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
