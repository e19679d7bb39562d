//! Limits, timeouts, panics, security headers, CORS and shutdown readiness.

use std::time::{Duration, Instant};

use event_manager::{config::Config, repository, router::with_middleware};
use poem::{
    Route, Server, get, handler,
    listener::{Acceptor, Listener, TcpListener},
};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, test_config},
};

#[handler]
fn boom() -> &'static str {
    panic!("a handler bug")
}

#[handler]
fn fine() -> &'static str {
    "fine"
}

/// Serves a tiny router, wrapped in the production middleware, on an ephemeral port.
async fn serve_with_middleware(routes: Route, config: &Config) -> String {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let addr = *acceptor.local_addr()[0]
        .as_socket_addr()
        .expect("socket address");
    let app = with_middleware(routes, config, Default::default());
    tokio::spawn(async move {
        let _ = Server::new_with_acceptor(acceptor).run(app).await;
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_panicking_handler_answers_a_500_problem_and_the_server_keeps_serving() {
    let config = test_config("sqlite::memory:".to_owned());
    let base = serve_with_middleware(
        Route::new().at("/boom", get(boom)).at("/fine", get(fine)),
        &config,
    )
    .await;
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{base}/boom"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let request_id = resp.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_owned();
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["status"], 500);
    assert_eq!(body["request_id"], request_id.as_str());
    assert!(
        !body.to_string().contains("a handler bug"),
        "the panic message stays internal: {body}"
    );
    let again = client
        .get(format!("{base}/fine"))
        .send()
        .await
        .expect("sent");
    assert_eq!(again.status(), 200);
}

#[test]
fn debug_output_of_configuration_and_users_hides_secrets() {
    let mut config = test_config("postgres://app:s3cret-pw@db:5432/events".to_owned());
    config.jwt_secret = Some("super-secret-signing-key-0123456789abcdef".to_owned());
    let shown = format!("{config:?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(!shown.contains("super-secret-signing-key"), "{shown}");

    let user = event_manager::entity::user::Model {
        id: uuid::Uuid::now_v7(),
        email: "a@example.com".into(),
        email_normalized: "a@example.com".into(),
        full_name: "A".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$secrethash".into(),
        role: event_manager::entity::user::Role::Member,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
        version: 1,
    };
    let shown = format!("{user:?}");
    assert!(!shown.contains("argon2id"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_outlives_the_request_timeout_gets_a_503_problem() {
    // Expensive password hashing makes sign-up slower than the one-second budget.
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.request_timeout_seconds = 1;
        c.argon2_memory_kib = 262_144;
        c.argon2_iterations = 16;
    })
    .await
    .expect("sqlite");
    let started = Instant::now();
    let resp = app
        .post(
            "/api/v1/users",
            None,
            json!({"email": "slow@example.com", "password": "long enough", "full_name": "Slow"}),
        )
        .await;
    let elapsed = started.elapsed();
    resp.expect_problem(503);
    assert!(resp.header("retry-after").is_some());
    assert!(
        elapsed < Duration::from_millis(2500),
        "answered after {elapsed:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "TEST_DATABASE_URL is unset: PostgreSQL not tested"
)]
async fn a_statement_over_the_statement_timeout_is_cancelled_and_reported_as_unavailable() {
    let app = TestApp::spawn_with(Backend::Postgres, |c| c.db_statement_timeout_ms = 200)
        .await
        .expect(crate::helpers::POSTGRES_REQUIRED);
    let started = Instant::now();
    let err = app
        .db
        .execute_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT pg_sleep(2)",
        ))
        .await
        .expect_err("the statement is cancelled");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        matches!(
            repository::Error::from(err),
            repository::Error::Unavailable(_)
        ),
        "a cancelled statement maps to 503"
    );
}

backend_tests! {
    async fn every_response_carries_security_headers(app) {
        for path in ["/health/live", "/api/v1/events", "/nope"] {
            let resp = app.get(path, None).await;
            assert_eq!(resp.header("x-content-type-options"), Some("nosniff"), "{path}");
            assert_eq!(resp.header("x-frame-options"), Some("DENY"), "{path}");
            assert_eq!(resp.header("referrer-policy"), Some("no-referrer"), "{path}");
            assert!(resp.header("content-security-policy").is_some(), "{path}");
            assert_eq!(resp.header("cache-control"), Some("no-store"), "{path}");
        }
    }

    async fn cors_answers_only_configured_origins(app) {
        let allowed = app
            .send(
                app.request(reqwest::Method::GET, "/api/v1/events", None)
                    .header("origin", "https://app.example.com"),
            )
            .await;
        allowed.expect(200);
        assert_eq!(allowed.header("access-control-allow-origin"), Some("https://app.example.com"));
        let preflight = app
            .send(
                app.request(reqwest::Method::OPTIONS, "/api/v1/events", None)
                    .header("origin", "https://app.example.com")
                    .header("access-control-request-method", "PATCH")
                    .header("access-control-request-headers", "authorization, if-match"),
            )
            .await;
        assert!(preflight.status < 300, "preflight status {}", preflight.status);
        let refused = app
            .send(
                app.request(reqwest::Method::GET, "/api/v1/events", None)
                    .header("origin", "https://evil.example.net"),
            )
            .await;
        assert_eq!(refused.header("access-control-allow-origin"), None);
    }

    async fn readiness_turns_503_once_shutdown_begins_while_liveness_stays_200(app) {
        app.get("/health/ready", None).await.expect(200);
        app.state.health.start_draining();
        let resp = app.get("/health/ready", None).await;
        resp.expect(503);
        assert_eq!(resp.body["status"], "unavailable");
        app.get("/health/live", None).await.expect(200);
    }
}
