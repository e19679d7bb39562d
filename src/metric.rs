//! Prometheus metrics: the names this process exports, the one recorder behind them, and the
//! few functions the layers call to count what they did.
//!
//! The recorder is process-wide (the `metrics` facade's global), so any layer can count
//! without a handle being passed down; `GET /metrics` renders it after setting the gauges
//! that are read at scrape time (pool, streams, webhook queue).

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering},
};

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by `method`, `route` (pattern: `/api/v1/events/:id`) and `status`.
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// Time to the response head, by `method`, `route` and `status`, in seconds.
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
/// Requests being handled now.
pub const HTTP_IN_FLIGHT: &str = "http_requests_in_flight";
/// Open database connections.
pub const DB_POOL_SIZE: &str = "db_pool_connections";
/// Open database connections not in use.
pub const DB_POOL_IDLE: &str = "db_pool_idle_connections";
/// Largest number of connections the pool opens.
pub const DB_POOL_MAX: &str = "db_pool_max_connections";
/// Callers waiting for a database connection.
pub const DB_POOL_WAITING: &str = "db_pool_waiting";
/// Registrations by `outcome`: `confirmed`, `waitlisted`, `refused`.
pub const REGISTRATIONS: &str = "registrations_total";
/// Webhook delivery attempts by `outcome`: `succeeded`, `retrying`, `failed`.
pub const WEBHOOK_DELIVERIES: &str = "webhook_deliveries_total";
/// Webhook deliveries neither delivered nor given up.
pub const WEBHOOK_QUEUE: &str = "webhook_queue_depth";
/// Age of the oldest webhook delivery neither delivered nor given up, in seconds.
pub const WEBHOOK_OLDEST_AGE: &str = "webhook_oldest_pending_age_seconds";
/// Open event streams.
pub const STREAMS_OPEN: &str = "event_streams_open";
/// Finished import jobs by `outcome`: `completed`, `failed`.
pub const IMPORTS: &str = "imports_total";

/// Buckets of the request latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Requests being handled, kept beside the gauge for the pool's waiting estimate.
static IN_FLIGHT: AtomicU64 = AtomicU64::new(0);

/// Counts a request in flight until the guard drops (also when the request is abandoned).
pub struct InFlight(());

impl InFlight {
    /// Counts one more request in flight.
    pub fn start() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        gauge!(HTTP_IN_FLIGHT).increment(1.0);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
        gauge!(HTTP_IN_FLIGHT).decrement(1.0);
    }
}

/// Requests being handled now.
pub fn in_flight() -> u64 {
    IN_FLIGHT.load(Ordering::Relaxed)
}

/// sqlx does not count the callers queued for a connection, so this estimates them: when
/// every connection is open and busy, requests in flight beyond the pool's size are waiting
/// for one (a request holds at most one connection at a time). Otherwise nobody waits.
pub fn estimate_pool_waiting(size: u64, idle: u64, max: u64, in_flight: u64) -> u64 {
    if idle == 0 && size >= max {
        in_flight.saturating_sub(size)
    } else {
        0
    }
}

/// Installs the process's recorder on first call and returns its handle; later calls
/// return the same handle. Until it is installed, counting is a no-op.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), &LATENCY_BUCKETS)
                .expect("the latency buckets are not empty");
            let handle = match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed (an embedding program's): render ours anyway,
                // empty but valid.
                Err(e) => {
                    tracing::warn!(error = %e, "a metrics recorder is already installed");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            };
            describe();
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "time to the response head, by route template and status"
    );
    describe_gauge!(HTTP_IN_FLIGHT, "HTTP requests being handled");
    describe_gauge!(DB_POOL_SIZE, "open database connections");
    describe_gauge!(DB_POOL_IDLE, "open database connections not in use");
    describe_gauge!(
        DB_POOL_MAX,
        "largest number of database connections the pool opens"
    );
    describe_gauge!(
        DB_POOL_WAITING,
        "callers waiting for a database connection (estimated: see docs/operations.md)"
    );
    describe_counter!(REGISTRATIONS, "registrations by outcome");
    describe_counter!(WEBHOOK_DELIVERIES, "webhook delivery attempts by outcome");
    describe_gauge!(
        WEBHOOK_QUEUE,
        "webhook deliveries not yet delivered nor given up"
    );
    describe_gauge!(
        WEBHOOK_OLDEST_AGE,
        Unit::Seconds,
        "age of the oldest webhook delivery not yet delivered nor given up"
    );
    describe_gauge!(STREAMS_OPEN, "open event streams (Server-Sent Events)");
    describe_counter!(IMPORTS, "finished import jobs by outcome");
}

/// Counts a registration attempt's outcome: `confirmed`, `waitlisted` or `refused`.
pub fn registration(outcome: &'static str) {
    counter!(REGISTRATIONS, "outcome" => outcome).increment(1);
}

/// Counts a webhook delivery attempt's outcome: `succeeded`, `retrying` or `failed`.
pub fn webhook_delivery(outcome: &'static str) {
    counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
}

/// Counts a finished import job: `completed` or `failed`.
pub fn import_finished(outcome: &'static str) {
    counter!(IMPORTS, "outcome" => outcome).increment(1);
}

/// The values read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Open connections.
    pub pool_size: u64,
    /// Idle connections.
    pub pool_idle: u64,
    /// The pool's limit.
    pub pool_max: u64,
    /// Callers waiting for a connection.
    pub pool_waiting: u64,
    /// Open event streams.
    pub streams: u64,
    /// Undelivered webhook deliveries.
    pub webhook_queue: u64,
    /// Age of the oldest of them, in seconds (0 when none).
    pub webhook_oldest_age_seconds: f64,
}

/// Sets the scrape-time gauges and renders every metric in the Prometheus text format.
pub fn render(handle: &PrometheusHandle, gauges: &Gauges) -> String {
    gauge!(DB_POOL_SIZE).set(gauges.pool_size as f64);
    gauge!(DB_POOL_IDLE).set(gauges.pool_idle as f64);
    gauge!(DB_POOL_MAX).set(gauges.pool_max as f64);
    gauge!(DB_POOL_WAITING).set(gauges.pool_waiting as f64);
    gauge!(STREAMS_OPEN).set(gauges.streams as f64);
    gauge!(WEBHOOK_QUEUE).set(gauges.webhook_queue as f64);
    gauge!(WEBHOOK_OLDEST_AGE).set(gauges.webhook_oldest_age_seconds);
    // Registration outcomes exist from the first scrape, so rates need no `absent()` dance.
    for outcome in ["confirmed", "waitlisted", "refused"] {
        counter!(REGISTRATIONS, "outcome" => outcome).increment(0);
    }
    for outcome in ["succeeded", "retrying", "failed"] {
        counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(0);
    }
    handle.render()
}
