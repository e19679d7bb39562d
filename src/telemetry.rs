//! Logging, the per-request id, and the fields every request's log lines carry.

use std::{fmt::Display, io::IsTerminal};

use tracing::Subscriber;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{
    EnvFilter, Layer, fmt, fmt::MakeWriter, prelude::*, registry::LookupSpan,
};

use crate::config::LogFormat;

tokio::task_local! {
    /// Id of the request being served, for problem bodies and logs.
    pub static REQUEST_ID: String;
    /// Span of the request being served: fields learnt later (the caller) are recorded on it.
    pub static REQUEST_SPAN: tracing::Span;
}

/// The id of the request being served, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// Records the authenticated caller of the request being served (`user_id` on its log
/// lines from now on, including the line that ends the request). Outside a request: nothing.
pub fn record_user(id: impl Display) {
    let _ = REQUEST_SPAN.try_with(|span| {
        span.record("user_id", tracing::field::display(&id));
    });
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
        LogFormat::Json => registry.with(json_layer(writer)).try_init()?,
    }
    Ok(guard)
}

/// One JSON object per line: the event's fields at the top level, the fields of the
/// innermost span (the request's) under `span`. The list of all spans is left out: it
/// repeated the request's fields a second time on every line.
pub fn json_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(writer)
}

/// A log writer that keeps what it is given, for tests that read log lines.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl CapturedLogs {
    /// The lines written so far, parsed as JSON.
    pub(crate) fn json_lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().expect("log buffer").clone();
        String::from_utf8(bytes)
            .expect("UTF-8 logs")
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
            .collect()
    }

    /// Everything written so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("log buffer").clone()).expect("UTF-8 logs")
    }
}

#[cfg(test)]
impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::prelude::*;

    use super::{CapturedLogs, REQUEST_SPAN, json_layer, record_user};

    #[tokio::test]
    async fn a_json_line_carries_each_request_field_once_and_the_recorded_user() {
        let logs = CapturedLogs::default();
        let subscriber = tracing_subscriber::registry().with(json_layer(logs.clone()));
        let _guard = tracing::subscriber::set_default(subscriber);
        let span = tracing::info_span!(
            "request",
            request_id = "req-1",
            route = "/api/v1/events/{id}",
            user_id = tracing::field::Empty,
        );
        REQUEST_SPAN
            .scope(span.clone(), async {
                record_user("0190a1b2-0000-7000-8000-000000000001");
                span.in_scope(|| tracing::info!(status = 200_u16, "request served"));
            })
            .await;
        let lines = logs.json_lines();
        assert_eq!(lines.len(), 1, "{}", logs.text());
        let line = &lines[0];
        assert_eq!(line["message"], "request served");
        assert_eq!(line["span"]["request_id"], "req-1");
        assert_eq!(
            line["span"]["user_id"],
            "0190a1b2-0000-7000-8000-000000000001"
        );
        assert!(
            line.get("spans").is_none(),
            "no second copy of the span: {line}"
        );
        assert_eq!(logs.text().matches("req-1").count(), 1, "{}", logs.text());
    }
}
