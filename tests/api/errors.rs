//! Every error is an RFC 9457 problem; framework-level refusals (404, 405, 400, 413, 415);
//! request ids. Each test runs twice per backend: without `Origin` (`same_origin`) and as a
//! browser on the allowed origin would send it (`cross_origin`), where CORS must only add
//! its headers to the same problems.

use reqwest::{Method, header::HeaderValue};
use serde_json::json;

use crate::{
    backend_tests,
    helpers::{PASSWORD, Resp, TestApp},
};

/// The origin the test configuration allows.
const ORIGIN: &str = "https://app.example.com";

tokio::task_local! {
    /// Whether the running test sends `Origin` with every request.
    static CROSS_ORIGIN: bool;
}

/// The same app, with a client that sends `Origin: https://app.example.com` on every request.
fn with_origin_header(mut app: TestApp) -> TestApp {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", HeaderValue::from_static(ORIGIN));
    app.client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client");
    app
}

/// Declares each test four times: `NAME::{same_origin, cross_origin}::{sqlite, postgres}`.
macro_rules! error_tests {
    ($( async fn $name:ident($app:ident) $body:block )*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn scenario($app: TestApp) $body

                backend_tests! {
                    async fn same_origin(app) {
                        CROSS_ORIGIN.scope(false, scenario(app)).await
                    }

                    async fn cross_origin(app) {
                        CROSS_ORIGIN.scope(true, scenario(with_origin_header(app))).await
                    }
                }
            }
        )*
    };
}

/// All values of a header, comma-joined.
fn header_values(resp: &Resp, name: &str) -> String {
    resp.headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ")
        .to_lowercase()
}

/// A valid sign-up body.
fn sign_up_body() -> serde_json::Value {
    json!({"email": "new@example.com", "password": PASSWORD, "full_name": "New User"})
}

/// POST /api/v1/users with a raw body and `Content-Type` (none when `None`).
async fn post_raw(
    app: &TestApp,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Resp {
    let mut rb = app.request(Method::POST, "/api/v1/users", None).body(body);
    if let Some(ct) = content_type {
        rb = rb.header("content-type", ct);
    }
    app.send(rb).await
}

/// Asserts a problem of `status` that carries the response's request id and leaks nothing.
#[track_caller]
fn expect_full_problem(resp: &Resp, status: u16) {
    resp.expect_problem(status);
    let header_id = resp
        .header("x-request-id")
        .expect("X-Request-Id on every response");
    assert_eq!(resp.body["request_id"], header_id, "{}", resp.body);
    assert!(resp.body["type"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(resp.body["title"].as_str().is_some_and(|t| !t.is_empty()));
    let text = resp.body.to_string().to_lowercase();
    match status {
        401 => assert_eq!(
            resp.header("www-authenticate"),
            Some("Bearer"),
            "401 challenges"
        ),
        405 => assert!(
            resp.header("allow").is_some_and(|a| !a.is_empty()),
            "405 lists the allowed methods"
        ),
        _ => {}
    }
    assert!(
        header_values(resp, "vary").contains("origin"),
        "CORS is on: answers vary on Origin"
    );
    if CROSS_ORIGIN.try_with(|c| *c).unwrap_or(false) {
        assert_eq!(resp.header("access-control-allow-origin"), Some(ORIGIN));
        assert!(
            header_values(resp, "access-control-expose-headers").contains("x-request-id"),
            "the request id is readable cross-origin"
        );
    }
    for leak in [
        "select ",
        "insert ",
        "sqlx",
        "sea_orm",
        "panicked",
        "src/",
        ".rs:",
        "stack",
        "$argon2",
        "test-secret",
    ] {
        assert!(!text.contains(leak), "`{leak}` in a problem body: {text}");
    }
}

error_tests! {
    async fn every_kind_of_error_is_a_problem_with_a_request_id(app) {
        let member = app.user().await;
        let other = app.user().await;
        let me = format!("/api/v1/users/{}", member.id);
        let cases: Vec<(u16, Resp)> = vec![
            (400, post_raw(&app, Some("application/json"), "{").await),
            (401, app.get("/api/v1/users/me", None).await),
            (403, app.get("/api/v1/users", Some(&member.token)).await),
            (
                404,
                app.get(&format!("/api/v1/users/{}", other.id), Some(&member.token))
                    .await,
            ),
            (404, app.get("/api/v1/no-such-thing", None).await),
            (
                405,
                app.send(
                    app.request(Method::PUT, "/api/v1/users", None)
                        .json(&sign_up_body()),
                )
                .await,
            ),
            (
                409,
                app.post(
                    "/api/v1/users",
                    None,
                    json!({"email": member.email, "password": PASSWORD, "full_name": "Dup"}),
                )
                .await,
            ),
            (
                412,
                app.patch(&me, Some(&member.token), json!([]), Some("\"9\""))
                    .await,
            ),
            (
                413,
                post_raw(&app, Some("application/json"), vec![b' '; 70_000]).await,
            ),
            (
                415,
                post_raw(&app, Some("text/plain"), sign_up_body().to_string()).await,
            ),
            (
                422,
                app.post(
                    "/api/v1/users",
                    None,
                    json!({"email": "x", "password": PASSWORD, "full_name": "X"}),
                )
                .await,
            ),
            (
                422,
                app.patch(
                    &me,
                    Some(&member.token),
                    json!([{"op": "replace", "path": "/id", "value": "x"}]),
                    None,
                )
                .await,
            ),
        ];
        for (status, resp) in &cases {
            expect_full_problem(resp, *status);
            // `errors` belongs to validation problems only.
            assert_eq!(
                resp.body.get("errors").is_some(),
                resp.body["type"]
                    .as_str()
                    .unwrap()
                    .ends_with("validation-error"),
                "{}",
                resp.body
            );
        }
        // Distinct requests get distinct ids.
        let mut ids: Vec<&str> = cases
            .iter()
            .map(|(_, r)| r.header("x-request-id").unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), cases.len());
    }

    async fn an_unknown_route_is_404(app) {
        for path in [
            "/api/v1/nope",
            "/api/v2/users",
            "/nope",
            "/api/v1/users/me/nope",
        ] {
            let resp = app.get(path, None).await;
            expect_full_problem(&resp, 404);
        }
    }

    async fn a_path_id_that_is_not_a_uuid_is_404(app) {
        let user = app.user().await;
        for path in [
            "/api/v1/users/not-a-uuid",
            "/api/v1/events/42",
            "/api/v1/events/not-a-uuid/attendees",
        ] {
            let resp = app.get(path, Some(&user.token)).await;
            expect_full_problem(&resp, 404);
        }
        let resp = app
            .patch("/api/v1/users/nope", Some(&user.token), json!([]), None)
            .await;
        expect_full_problem(&resp, 404);
    }

    async fn a_bad_query_parameter_is_400(app) {
        for query in ["limit=abc", "offset=-1x", "limit=1e3"] {
            let resp = app.get(&format!("/api/v1/events?{query}"), None).await;
            expect_full_problem(&resp, 400);
        }
    }

    async fn a_missing_or_invalid_token_is_401_with_a_challenge(app) {
        for token in [None, Some("not-a-jwt")] {
            let resp = app.get("/api/v1/users/me", token).await;
            expect_full_problem(&resp, 401);
        }
    }

    async fn a_wrong_method_is_405(app) {
        let user = app.user().await;
        for (method, path) in [
            (Method::PUT, "/api/v1/users".to_owned()),
            (Method::DELETE, "/api/v1/users".to_owned()),
            (Method::GET, "/api/v1/auth/token".to_owned()),
            (Method::PUT, format!("/api/v1/users/{}", user.id)),
            (Method::POST, "/health".to_owned()),
        ] {
            let resp = app
                .send(app.request(method.clone(), &path, Some(&user.token)))
                .await;
            expect_full_problem(&resp, 405);
        }
        assert_eq!(app.user_count().await, 1);
    }

    async fn malformed_json_is_400(app) {
        for body in [
            "{",
            "{\"email\": ",
            "not json",
            "[]",
            "\"a string\"",
            "null",
            "",
        ] {
            let resp = post_raw(&app, Some("application/json"), body).await;
            expect_full_problem(&resp, 400);
            assert!(resp.body["detail"].is_string());
        }
        assert_eq!(app.user_count().await, 0);
    }

    async fn a_missing_field_is_400_naming_it(app) {
        let resp = app
            .post(
                "/api/v1/users",
                None,
                json!({"email": "a@example.com", "password": PASSWORD}),
            )
            .await;
        expect_full_problem(&resp, 400);
        assert!(
            resp.body["detail"].as_str().unwrap().contains("full_name"),
            "{}",
            resp.body
        );
        assert_eq!(app.user_count().await, 0);
    }

    async fn a_wrong_type_is_400_and_never_coerced(app) {
        for (body, field) in [
            (
                json!({"email": "a@example.com", "password": PASSWORD, "full_name": 97}),
                "full_name",
            ),
            (
                json!({"email": "a@example.com", "password": 12345678, "full_name": "A"}),
                "password",
            ),
            (
                json!({"email": ["a@example.com"], "password": PASSWORD, "full_name": "A"}),
                "email",
            ),
            (
                json!({"email": "a@example.com", "password": PASSWORD, "full_name": null}),
                "full_name",
            ),
        ] {
            let resp = app.post("/api/v1/users", None, body).await;
            expect_full_problem(&resp, 400);
            assert!(
                resp.body["detail"].as_str().unwrap().contains(field),
                "{}",
                resp.body
            );
        }
        assert_eq!(
            app.user_count().await,
            0,
            "no user was created from a coerced value"
        );
    }

    async fn a_post_without_or_with_a_wrong_content_type_is_415(app) {
        let body = sign_up_body().to_string();
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("application/json-patch+json"),
        ] {
            let resp = post_raw(&app, content_type, body.clone()).await;
            expect_full_problem(&resp, 415);
        }
        assert_eq!(app.user_count().await, 0);
        // The same body with the right type works, with or without a charset.
        post_raw(&app, Some("application/json; charset=utf-8"), body)
            .await
            .expect(201);
    }

    async fn a_body_over_64_kib_is_413_and_one_at_the_limit_is_served(app) {
        let json = sign_up_body().to_string();
        // Pad valid JSON with whitespace to exact sizes.
        let sized = |len: usize| format!("{json}{}", " ".repeat(len - json.len()));
        let resp = post_raw(&app, Some("application/json"), sized(65_537)).await;
        expect_full_problem(&resp, 413);
        assert_eq!(app.user_count().await, 0);
        let resp = post_raw(&app, Some("application/json"), vec![b'x'; 1024 * 1024]).await;
        expect_full_problem(&resp, 413);
        post_raw(&app, Some("application/json"), sized(65_536))
            .await
            .expect(201);
    }

    async fn a_sent_request_id_is_echoed_in_the_header_and_the_problem(app) {
        let resp = app
            .send(
                app.request(Method::GET, "/api/v1/users/me", None)
                    .header("x-request-id", "trace-abc-123"),
            )
            .await;
        expect_full_problem(&resp, 401);
        assert_eq!(resp.header("x-request-id"), Some("trace-abc-123"));
        assert_eq!(resp.body["request_id"], "trace-abc-123");

        let ok = app
            .send(
                app.request(Method::GET, "/health/live", None)
                    .header("x-request-id", "trace-ok-1"),
            )
            .await;
        ok.expect(200);
        assert_eq!(ok.header("x-request-id"), Some("trace-ok-1"));
    }

    async fn a_request_id_is_generated_when_none_is_sent(app) {
        let first = app.get("/api/v1/users/me", None).await;
        let second = app.get("/api/v1/users/me", None).await;
        for resp in [&first, &second] {
            expect_full_problem(resp, 401);
            assert!(resp.header("x-request-id").is_some_and(|id| !id.is_empty()));
        }
        assert_ne!(first.header("x-request-id"), second.header("x-request-id"));
        let ok = app.get("/health/live", None).await;
        assert!(ok.header("x-request-id").is_some_and(|id| !id.is_empty()));
    }

    async fn an_unprintable_or_overlong_request_id_is_replaced(app) {
        for sent in ["has spaces in it".to_owned(), "x".repeat(129)] {
            let resp = app
                .send(
                    app.request(Method::GET, "/api/v1/users/me", None)
                        .header("x-request-id", sent.as_str()),
                )
                .await;
            expect_full_problem(&resp, 401);
            let id = resp.header("x-request-id").unwrap();
            assert_ne!(id, sent);
            assert!(!id.is_empty() && id.len() <= 128);
        }
    }

    async fn a_request_while_the_database_is_gone_is_a_503_problem(app) {
        app.db.clone().close().await.expect("closing the pool");
        let resp = app.post("/api/v1/users", None, sign_up_body()).await;
        expect_full_problem(&resp, 503);
        assert!(
            resp.header("retry-after")
                .is_some_and(|s| s.parse::<u64>().is_ok())
        );
    }
}
