//! Database readiness.

use std::time::{Duration, Instant};

use sea_orm::DatabaseConnection;

/// How long a readiness probe waits for the database.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Probes the database.
#[derive(Clone)]
pub struct HealthService {
    db: DatabaseConnection,
}

impl HealthService {
    /// The service over a pool.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Round-trip time of a database ping, or `None` when it failed or took over a second.
    pub async fn database_latency(&self) -> Option<Duration> {
        let start = Instant::now();
        match tokio::time::timeout(PROBE_TIMEOUT, self.db.ping()).await {
            Ok(Ok(())) => Some(start.elapsed()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "database ping failed");
                None
            }
            Err(_) => {
                tracing::warn!("database ping timed out");
                None
            }
        }
    }
}
