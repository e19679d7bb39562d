//! Logging and the per-request id.

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

tokio::task_local! {
    /// Id of the request being served, for problem bodies and logs.
    pub static REQUEST_ID: String;
}

/// The id of the request being served, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// Installs the global subscriber: human lines, or JSON with `LOG_FORMAT=json`. Lines are
/// written by a background thread (a request never waits on the terminal or the disk), and
/// coloured only on a terminal. Keep the returned guard alive: dropping it flushes the rest.
pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<WorkerGuard> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("invalid value for RUST_LOG: {e}"))?;
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let ansi = std::io::stderr().is_terminal();
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry
            .with(fmt::layer().with_writer(writer).with_ansi(ansi))
            .try_init()?,
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(writer),
            )
            .try_init()?,
    }
    Ok(guard)
}
