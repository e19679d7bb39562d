//! Webhook delivery: turns new changes into deliveries, then attempts the due ones, at most
//! `WEBHOOK_CONCURRENCY` at a time, outside any request. A receiver that hangs holds one
//! permit for at most the timeout; the API never waits for it.

use std::{sync::Arc, time::Duration};

use tokio::sync::{Notify, Semaphore};

use crate::{service::webhooks::WebhookService, time::now};

/// Runs until `shutdown` resolves. Attempts in flight at shutdown are abandoned: their
/// deliveries are due again when their lease ends (at least once).
pub async fn run(
    service: WebhookService,
    concurrency: usize,
    poll: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    // A finished attempt may unblock the next delivery of its (webhook, event): look again at
    // once rather than at the next poll.
    let finished = Arc::new(Notify::new());
    loop {
        loop {
            if let Err(e) = service.dispatch().await {
                tracing::warn!(error = %e, "turning changes into webhook deliveries failed; retrying");
                break;
            }
            let first = tokio::select! {
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => return,
                },
                () = &mut shutdown => return,
            };
            let wanted = 1 + permits.available_permits();
            let claimed = match service.claim(now(), wanted).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming webhook deliveries failed; retrying");
                    break;
                }
            };
            if claimed.is_empty() {
                break;
            }
            let full = claimed.len() == wanted;
            let mut first = Some(first);
            for delivery in claimed {
                let permit = match first.take() {
                    Some(p) => p,
                    None => match permits.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                };
                let (service, finished) = (service.clone(), finished.clone());
                tokio::spawn(async move {
                    if let Err(e) = service.attempt(delivery, now()).await {
                        tracing::warn!(error = %e, "recording a webhook delivery attempt failed");
                    }
                    drop(permit);
                    finished.notify_one();
                });
            }
            if !full {
                break;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = finished.notified() => {}
            () = &mut shutdown => return,
        }
    }
}
