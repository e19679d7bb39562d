//! `GET /metrics`: the Prometheus text format, parsed as Prometheus would.

use reqwest::Method;
use serde_json::json;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp},
};

/// Scrapes `/metrics` (with `token` as bearer) and parses the text.
async fn scrape(app: &TestApp, token: Option<&str>) -> prometheus_parse::Scrape {
    let resp = app
        .request(Method::GET, "/metrics", token)
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("text")
            .starts_with("text/plain; version=0.0.4"),
    );
    let text = resp.text().await.expect("body");
    if std::env::var_os("SHOW_METRICS").is_some() {
        eprintln!("{text}");
    }
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("Prometheus text")
}

/// The value of the sample `name` whose labels include `labels`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref buckets) => {
                buckets.last().map_or(0.0, |b| b.count)
            }
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .reduce(|a, b| a + b)
}

backend_tests! {
    async fn metrics_count_requests_by_route_template_and_status(app) {
        let user = app.user().await;
        let event = app.published_event(&user.token, json!({})).await;
        app.get(&format!("/api/v1/events/{event}"), None).await.expect(200);
        app.get(&format!("/api/v1/events/{}", uuid::Uuid::now_v7()), None).await.expect(404);
        let scrape = scrape(&app, None).await;
        let route = "/api/v1/events/:id";
        assert!(value(&scrape, "http_requests_total", &[("route", route), ("status", "200"), ("method", "GET")]).is_some_and(|v| v >= 1.0));
        assert!(value(&scrape, "http_requests_total", &[("route", route), ("status", "404")]).is_some_and(|v| v >= 1.0));
        assert!(value(&scrape, "http_request_duration_seconds_count", &[("route", route), ("status", "200")]).is_some_and(|v| v >= 1.0));
        assert!(scrape.samples.iter().any(|s| s.metric == "http_request_duration_seconds_bucket" || matches!(s.value, prometheus_parse::Value::Histogram(_))));
        // Never a raw path: no label holds an id.
        for sample in &scrape.samples {
            if let Some(route) = sample.labels.get("route") {
                assert!(!route.contains(&event), "raw path in {route}");
            }
        }
        assert!(value(&scrape, "http_requests_in_flight", &[]).is_some());
    }

    async fn metrics_cover_the_pool_registrations_webhooks_and_streams(app) {
        let organizer = app.user().await;
        let event = app.published_event(&organizer.token, json!({"capacity": 1, "waitlist_enabled": true})).await;
        let full = app.published_event(&organizer.token, json!({"capacity": 1})).await;
        for _ in 0..2 {
            let user = app.user().await;
            app.register(&user.token, &event).await.expect(201);
        }
        let late = app.user().await;
        app.register(&late.token, &full).await.expect(201);
        let refused = app.user().await;
        app.register(&refused.token, &full).await.expect_problem(409);

        let scrape = scrape(&app, None).await;
        for outcome in ["confirmed", "waitlisted", "refused"] {
            assert!(
                value(&scrape, "registrations_total", &[("outcome", outcome)]).is_some_and(|v| v >= 1.0),
                "registrations_total{{outcome={outcome}}}"
            );
        }
        for name in [
            "db_pool_connections",
            "db_pool_idle_connections",
            "db_pool_max_connections",
            "db_pool_waiting",
            "webhook_queue_depth",
            "webhook_oldest_pending_age_seconds",
            "event_streams_open",
        ] {
            assert!(value(&scrape, name, &[]).is_some(), "{name} is exported");
        }
        for outcome in ["succeeded", "retrying", "failed"] {
            assert!(value(&scrape, "webhook_deliveries_total", &[("outcome", outcome)]).is_some());
        }
        assert!(value(&scrape, "db_pool_connections", &[]).is_some_and(|v| v >= 1.0));
    }
}

/// With `METRICS_TOKEN`, `/metrics` needs it as a bearer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_metrics_token_when_one_is_set() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.metrics_token = Some("scrape-secret-0123456789".to_owned());
    })
    .await
    .expect("sqlite");
    for token in [None, Some("wrong"), Some("scrape-secret-012345678")] {
        let resp = app.get("/metrics", token).await;
        resp.expect_problem(401);
        assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
    }
    // An access token of a user is not the metrics token either.
    let user = app.user().await;
    app.get("/metrics", Some(&user.token))
        .await
        .expect_problem(401);
    scrape(&app, Some("scrape-secret-0123456789")).await;
}

/// `METRICS_ENABLED=false`: no metrics layer and no endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_disabled() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.metrics_enabled = false)
        .await
        .expect("sqlite");
    app.get("/metrics", None).await.expect_problem(404);
    app.get("/health/live", None).await.expect(200);
}

/// The webhook queue's gauges are read from this server's table at scrape time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_queue_gauges_are_read_at_scrape_time() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let scrape_before = scrape(&app, None).await;
    assert_eq!(value(&scrape_before, "webhook_queue_depth", &[]), Some(0.0));
}

/// A webhook receiver on loopback that answers every delivery with 500.
async fn failing_receiver() -> String {
    use poem::listener::{Acceptor, Listener, TcpListener};
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("binding a receiver port");
    let addr = *acceptor.local_addr()[0]
        .as_socket_addr()
        .expect("a socket address");
    let endpoint = poem::endpoint::make_sync(|_| poem::http::StatusCode::INTERNAL_SERVER_ERROR);
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor)
            .run(endpoint)
            .await;
    });
    format!("http://{addr}/hook")
}

/// A failed webhook attempt is counted as `retrying`, and the delivery it leaves pending
/// shows in the queue's depth and age.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_outcomes_and_the_queue_show_a_failing_receiver() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.webhook_allow_private_targets = true;
        c.webhook_poll_ms = 50;
        c.webhook_timeout_ms = 500;
    })
    .await
    .expect("sqlite");
    let url = failing_receiver().await;
    let organizer = app.user().await;
    app.post(
        "/api/v1/webhooks",
        Some(&organizer.token),
        json!({"url": url}),
    )
    .await
    .expect(201);
    app.published_event(&organizer.token, json!({})).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let attempted = app
            .scalar_i64("SELECT COUNT(*) FROM webhook_deliveries WHERE attempts > 0 AND last_error IS NOT NULL")
            .await;
        if attempted > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery was attempted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let scrape = scrape(&app, None).await;
    assert!(
        value(
            &scrape,
            "webhook_deliveries_total",
            &[("outcome", "retrying")]
        )
        .is_some_and(|v| v >= 1.0)
    );
    assert!(value(&scrape, "webhook_queue_depth", &[]).is_some_and(|v| v >= 1.0));
    assert!(value(&scrape, "webhook_oldest_pending_age_seconds", &[]).is_some_and(|v| v >= 0.0));
}
