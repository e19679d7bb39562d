//! The request log line, as the server writes it in JSON.

use std::sync::{Arc, Mutex, OnceLock};

use event_manager::telemetry::json_layer;
use reqwest::Method;
use serde_json::{Value, json};
use tracing_subscriber::{filter::Targets, fmt::MakeWriter, prelude::*};

use crate::backend_tests;

/// Every line the application logs in this test process (servers run in process).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs (once) a JSON subscriber for the application's own `info` lines.
fn captured_logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let filter = Targets::new().with_target("event_manager", tracing::Level::INFO);
        tracing_subscriber::registry()
            .with(json_layer(logs.clone()).with_filter(filter))
            .try_init()
            .expect("no other global subscriber in the test process");
        logs
    })
}

/// The JSON lines logged for one request id.
fn lines_of(request_id: &str) -> Vec<Value> {
    let bytes = captured_logs().0.lock().expect("log buffer").clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|line| line.contains(request_id))
        .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
        .collect()
}

backend_tests! {
    async fn the_request_line_names_the_route_template_the_user_and_the_client(app) {
        captured_logs();
        let user = app.user().await;
        let event = app.published_event(&user.token, json!({})).await;
        let request_id = format!("logs-{}", uuid::Uuid::now_v7());
        app.send(
            app.request(Method::GET, &format!("/api/v1/events/{event}"), Some(&user.token))
                .header("x-request-id", &request_id),
        )
        .await
        .expect(200);
        let lines = lines_of(&request_id);
        let line = lines
            .iter()
            .find(|l| l["message"] == "request served")
            .unwrap_or_else(|| panic!("a request line among {lines:?}"));
        assert_eq!(line["status"], 200);
        assert!(line["elapsed_ms"].is_u64(), "whole milliseconds: {line}");
        let span = &line["span"];
        assert_eq!(span["request_id"], request_id.as_str());
        assert_eq!(span["method"], "GET");
        assert_eq!(span["route"], "/api/v1/events/{id}");
        assert_eq!(span["user_id"], user.id.as_str());
        assert_eq!(span["client"], "127.0.0.1");
        assert!(line.get("spans").is_none(), "the request's fields appear once: {line}");
        assert!(!line.to_string().contains(&event), "no raw id in the line: {line}");
    }

    async fn an_unknown_path_is_logged_as_unmatched(app) {
        captured_logs();
        let request_id = format!("logs-{}", uuid::Uuid::now_v7());
        app.send(
            app.request(Method::GET, "/api/v1/no-such-thing/12345", None)
                .header("x-request-id", &request_id),
        )
        .await
        .expect(404);
        let lines = lines_of(&request_id);
        let line = lines
            .iter()
            .find(|l| l["message"] == "request served")
            .unwrap_or_else(|| panic!("a request line among {lines:?}"));
        assert_eq!(line["span"]["route"], "unmatched");
        assert!(line["span"].get("user_id").is_none(), "anonymous: {line}");
        assert!(!line.to_string().contains("12345"), "{line}");
    }
}

backend_tests! {
    async fn a_webhook_secret_is_never_logged(app) {
        captured_logs();
        let user = app.user().await;
        let created = app
            .post(
                "/api/v1/webhooks",
                Some(&user.token),
                json!({"url": "https://hooks.example.invalid/in"}),
            )
            .await;
        created.expect(201);
        let secret = created.body["secret"].as_str().expect("a secret").to_owned();
        let hook = created.body["id"].as_str().expect("id").to_owned();
        // Its deliveries are attempted (and fail), which logs too.
        app.published_event(&user.token, json!({})).await;
        let start = std::time::Instant::now();
        while app
            .get(&format!("/api/v1/webhooks/{hook}/deliveries"), Some(&user.token))
            .await
            .body["items"][0]["attempts"]
            .as_i64()
            .unwrap_or(0)
            == 0
        {
            assert!(start.elapsed() < std::time::Duration::from_secs(30), "no attempt");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let bytes = captured_logs().0.lock().expect("log buffer").clone();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&secret[6..]), "the secret is in the log");
    }
}
