//! Import jobs: one at a time per instance, outside any request. A job queued here starts at
//! once; jobs queued by other instances, or left `processing` by a crash (once their lease
//! has lapsed), are found by polling.

use std::time::Duration;

use crate::service::imports::ImportService;

/// Runs until `shutdown` resolves. A job running at shutdown is abandoned with its
/// transaction (nothing of it is committed) and taken up again when its lease lapses.
pub async fn run(service: ImportService, poll: Duration, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let ran = tokio::select! {
            result = service.run_next() => result,
            () = &mut shutdown => return,
        };
        match ran {
            // Another job may be waiting: look again at once.
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "running an import job failed; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = service.queued() => {}
            () = &mut shutdown => return,
        }
    }
}
