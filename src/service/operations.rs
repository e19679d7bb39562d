//! `GET /metrics`: who may read the metrics, and the values read at scrape time.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::{DatabaseConnection, DbBackend};
use subtle::ConstantTimeEq;

use super::{Error, Result, live::ChangeHub};
use crate::{
    metric::{self, Gauges},
    repository,
    time::now,
};

/// The metrics endpoint's service.
#[derive(Clone)]
pub struct Operations {
    db: DatabaseConnection,
    hub: Arc<ChangeHub>,
    /// `None` when metrics are disabled: `/metrics` is then 404.
    handle: Option<PrometheusHandle>,
    token: Option<Arc<str>>,
    pool_max: u32,
}

impl Operations {
    /// The service; `handle` is `None` when metrics are disabled.
    pub fn new(
        db: DatabaseConnection,
        hub: Arc<ChangeHub>,
        handle: Option<PrometheusHandle>,
        token: Option<String>,
        pool_max: u32,
    ) -> Self {
        Self {
            db,
            hub,
            handle,
            token: token.map(Arc::from),
            pool_max,
        }
    }

    /// Drains recorded histogram samples into their buckets, so that memory stays flat
    /// between scrapes (a worker calls it every few seconds).
    pub fn upkeep(&self) {
        if let Some(handle) = &self.handle {
            handle.run_upkeep();
        }
    }

    /// Whether metrics are collected.
    pub fn enabled(&self) -> bool {
        self.handle.is_some()
    }

    /// The metrics in the Prometheus text format, for a caller presenting `bearer` (the
    /// token of the `Authorization` header, if any). A database that does not answer leaves
    /// the webhook queue's gauges as they were: the scrape still succeeds.
    pub async fn scrape(&self, bearer: Option<&str>) -> Result<String> {
        let Some(handle) = &self.handle else {
            return Err(Error::NotFound("metrics"));
        };
        if let Some(token) = &self.token {
            let presented = bearer.unwrap_or_default().as_bytes();
            if !bool::from(presented.ct_eq(token.as_bytes())) {
                return Err(Error::Unauthenticated(
                    "the metrics need `Authorization: Bearer <METRICS_TOKEN>`",
                ));
            }
        }
        let (pool_size, pool_idle) = self.pool();
        let streams = self.hub.open_streams() as u64;
        // Neither this scrape nor open streams hold a connection while they wait.
        let in_flight = metric::in_flight().saturating_sub(streams + 1);
        let mut gauges = Gauges {
            pool_size,
            pool_idle,
            pool_max: u64::from(self.pool_max),
            pool_waiting: metric::estimate_pool_waiting(
                pool_size,
                pool_idle,
                u64::from(self.pool_max),
                in_flight,
            ),
            streams,
            ..Gauges::default()
        };
        match repository::reports::delivery_queue(&self.db).await {
            Ok(queue) => {
                gauges.webhook_queue = u64::try_from(queue.depth).unwrap_or(0);
                gauges.webhook_oldest_age_seconds = queue.oldest.map_or(0.0, |oldest| {
                    ((now() - oldest).num_milliseconds().max(0) as f64) / 1000.0
                });
            }
            Err(e) => tracing::warn!(error = %e, "reading the webhook queue for metrics failed"),
        }
        Ok(metric::render(handle, &gauges))
    }

    /// Open and idle connections of the pool.
    fn pool(&self) -> (u64, u64) {
        match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (u64::from(pool.size()), pool.num_idle() as u64)
            }
            DbBackend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (u64::from(pool.size()), pool.num_idle() as u64)
            }
            _ => (0, 0),
        }
    }
}
