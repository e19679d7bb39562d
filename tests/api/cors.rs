//! CORS: configured origins get the headers a browser client needs; other origins are served
//! without them; every answer varies on `Origin`.

use reqwest::Method;

use crate::{
    backend_tests,
    helpers::{Backend, Resp, TestApp},
};

/// The origin the test configuration allows.
const ORIGIN: &str = "https://app.example.com";

/// A header's values, comma-joined and lower-cased.
fn values(resp: &Resp, name: &str) -> String {
    resp.headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ")
        .to_lowercase()
}

/// The comma-separated members of a header, lower-cased.
fn members(resp: &Resp, name: &str) -> Vec<String> {
    values(resp, name)
        .split(',')
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

async fn preflight(app: &TestApp, origin: &str, method: &str, headers: &str) -> Resp {
    app.send(
        app.request(Method::OPTIONS, "/api/v1/events", None)
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers),
    )
    .await
}

backend_tests! {
    async fn a_cross_origin_answer_exposes_the_headers_a_browser_client_reads(app) {
        let user = app.user().await;
        let resp = app
            .send(
                app.request(Method::GET, "/api/v1/users/me", Some(&user.token))
                    .header("origin", ORIGIN),
            )
            .await;
        resp.expect(200);
        assert_eq!(resp.header("access-control-allow-origin"), Some(ORIGIN));
        let exposed = members(&resp, "access-control-expose-headers");
        for header in [
            "etag",
            "location",
            "x-request-id",
            "retry-after",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "idempotent-replayed",
        ] {
            assert!(exposed.iter().any(|h| h == header), "{header} exposed: {exposed:?}");
        }
        assert!(members(&resp, "vary").contains(&"origin".to_owned()));
    }

    async fn a_preflight_allows_the_methods_and_headers_a_browser_client_sends(app) {
        let headers = "authorization, content-type, if-match, if-none-match, idempotency-key, \
                       last-event-id, x-request-id";
        for method in ["GET", "POST", "PATCH", "DELETE"] {
            let resp = preflight(&app, ORIGIN, method, headers).await;
            assert!(resp.status < 300, "preflight of {method}: {}", resp.status);
            assert_eq!(resp.header("access-control-allow-origin"), Some(ORIGIN));
            assert!(members(&resp, "access-control-allow-methods").contains(&method.to_lowercase()));
            let allowed = members(&resp, "access-control-allow-headers");
            for header in headers.split(',').map(str::trim) {
                assert!(allowed.iter().any(|h| h == header), "{header} allowed: {allowed:?}");
            }
            assert!(resp.header("access-control-max-age").is_some());
        }
    }

    async fn a_preflight_from_an_unknown_origin_or_for_another_method_is_a_403_problem(app) {
        for (origin, method) in [("https://evil.example.net", "GET"), (ORIGIN, "PUT")] {
            let resp = preflight(&app, origin, method, "content-type").await;
            resp.expect_problem(403);
            assert_eq!(resp.body["type"], "urn:problem:event-manager:cors-rejected");
            assert_eq!(resp.header("access-control-allow-origin"), None);
            assert!(resp.header("x-request-id").is_some());
        }
    }

    async fn a_request_from_an_unknown_origin_is_served_without_cors_headers(app) {
        // A same-origin POST from the docs page carries `Origin` too: it must still work.
        let resp = app
            .send(
                app.request(Method::POST, "/api/v1/users", None)
                    .header("origin", "http://127.0.0.1:8000")
                    .json(&serde_json::json!({
                        "email": "docs@example.com",
                        "password": crate::helpers::PASSWORD,
                        "full_name": "Docs Page"
                    })),
            )
            .await;
        resp.expect(201);
        assert_eq!(resp.header("access-control-allow-origin"), None);
        assert_eq!(resp.header("access-control-expose-headers"), None);
        assert!(members(&resp, "vary").contains(&"origin".to_owned()));
    }

    async fn every_answer_varies_on_origin_even_without_one(app) {
        for path in ["/health/live", "/api/v1/events", "/nope"] {
            let resp = app.get(path, None).await;
            assert!(members(&resp, "vary").contains(&"origin".to_owned()), "{path}");
        }
    }
}

#[tokio::test]
async fn without_configured_origins_no_cors_header_is_sent() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.cors_allowed_origins.clear())
        .await
        .expect("sqlite is always available");
    let resp = app
        .send(
            app.request(Method::GET, "/api/v1/events", None)
                .header("origin", ORIGIN),
        )
        .await;
    resp.expect(200);
    assert_eq!(resp.header("access-control-allow-origin"), None);
    assert!(!members(&resp, "vary").contains(&"origin".to_owned()));
}
