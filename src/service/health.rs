//! Database readiness.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::DatabaseConnection;

/// How long a readiness probe waits for the database.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Probes the database and knows whether the process is shutting down.
#[derive(Clone)]
pub struct HealthService {
    db: DatabaseConnection,
    draining: Arc<AtomicBool>,
}

impl HealthService {
    /// The service over a pool.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Marks the process as shutting down: readiness answers 503 from now on, so load
    /// balancers stop sending work while in-flight requests finish.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
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
