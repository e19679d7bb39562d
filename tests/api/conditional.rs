//! Conditional reads: every GET of a single resource honours `If-None-Match`.

use reqwest::{Method, header::HeaderMap};
use serde_json::json;

use crate::{
    backend_tests,
    helpers::{TestApp, TestUser},
};

/// An answer read whole, body as bytes.
struct Raw {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn read(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    if_none_match: Option<&str>,
) -> Raw {
    let mut rb = app.request(method, path, Some(token));
    if let Some(tag) = if_none_match {
        rb = rb.header("if-none-match", tag);
    }
    let resp = rb.send().await.expect("request sent");
    Raw {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.bytes().await.expect("body").to_vec(),
    }
}

/// The path of every kind of single resource, readable by `owner`.
async fn single_resources(app: &TestApp, owner: &TestUser) -> Vec<String> {
    let event = app.published_event(&owner.token, json!({})).await;
    let attendee = app.register(&owner.token, &event).await;
    attendee.expect(201);
    vec![
        "/api/v1/users/me".to_owned(),
        format!("/api/v1/users/{}", owner.id),
        format!("/api/v1/events/{event}"),
        format!(
            "/api/v1/events/{event}/attendees/{}",
            attendee.body["id"].as_str().expect("attendee id")
        ),
    ]
}

backend_tests! {
    async fn a_get_with_the_current_etag_in_if_none_match_is_304_without_a_body(app) {
        let owner = app.user().await;
        for path in single_resources(&app, &owner).await {
            let full = read(&app, Method::GET, &path, &owner.token, None).await;
            assert_eq!(full.status, 200, "{path}");
            let etag = full.header("etag").expect("an ETag").to_owned();
            let revalidated = read(&app, Method::GET, &path, &owner.token, Some(&etag)).await;
            assert_eq!(revalidated.status, 304, "{path}");
            assert!(revalidated.body.is_empty(), "{path}: no body");
            assert_eq!(revalidated.header("etag"), Some(etag.as_str()), "{path}");
            assert_eq!(revalidated.header("cache-control"), Some("no-cache"), "{path}");
            assert_eq!(revalidated.header("content-type"), None, "{path}");
            assert!(revalidated.header("x-request-id").is_some(), "{path}");
        }
    }

    async fn if_none_match_accepts_star_lists_and_weak_tags(app) {
        let owner = app.user().await;
        let path = format!("/api/v1/users/{}", owner.id);
        for condition in ["*", "\"7\", \"1\"", "W/\"1\"", "\"9\",W/\"1\""] {
            let resp = read(&app, Method::GET, &path, &owner.token, Some(condition)).await;
            assert_eq!(resp.status, 304, "If-None-Match: {condition}");
        }
        for condition in ["\"2\"", "\"7\", W/\"8\"", "1", ""] {
            let resp = read(&app, Method::GET, &path, &owner.token, Some(condition)).await;
            assert_eq!(resp.status, 200, "If-None-Match: {condition}");
            assert!(!resp.body.is_empty());
        }
    }

    async fn a_stale_etag_gets_the_new_version_whole(app) {
        let owner = app.user().await;
        let path = format!("/api/v1/users/{}", owner.id);
        app.patch(
            &path,
            Some(&owner.token),
            json!([{"op": "replace", "path": "/full_name", "value": "Renamed"}]),
            None,
        )
        .await
        .expect(200);
        let resp = read(&app, Method::GET, &path, &owner.token, Some("\"1\"")).await;
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("etag"), Some("\"2\""));
        let body: serde_json::Value = serde_json::from_slice(&resp.body).expect("JSON");
        assert_eq!(body["full_name"], "Renamed");
    }

    async fn a_head_with_the_current_etag_is_304(app) {
        let owner = app.user().await;
        let resp = read(&app, Method::HEAD, "/api/v1/users/me", &owner.token, Some("\"1\"")).await;
        assert_eq!(resp.status, 304);
        assert_eq!(resp.header("etag"), Some("\"1\""));
    }

    async fn if_none_match_never_turns_a_write_or_an_error_into_a_304(app) {
        let owner = app.user().await;
        let path = format!("/api/v1/users/{}", owner.id);
        let resp = app
            .send(
                app.request(Method::PATCH, &path, Some(&owner.token))
                    .header("content-type", "application/json-patch+json")
                    .header("if-none-match", "*")
                    .body(
                        json!([{"op": "replace", "path": "/full_name", "value": "New"}])
                            .to_string(),
                    ),
            )
            .await;
        resp.expect(200);
        assert_eq!(resp.body["full_name"], "New");
        let other = app.user().await;
        let hidden = read(
            &app,
            Method::GET,
            &format!("/api/v1/users/{}", other.id),
            &owner.token,
            Some("*"),
        )
        .await;
        assert_eq!(hidden.status, 404);
    }

    async fn answers_with_an_etag_say_no_cache_and_others_no_store(app) {
        let owner = app.user().await;
        let tagged = read(&app, Method::GET, "/api/v1/users/me", &owner.token, None).await;
        assert_eq!(tagged.status, 200);
        assert_eq!(tagged.header("cache-control"), Some("no-cache"));
        let list = read(&app, Method::GET, "/api/v1/events", &owner.token, None).await;
        assert_eq!(list.status, 200);
        assert_eq!(list.header("cache-control"), Some("no-store"));
        let problem = read(&app, Method::GET, "/api/v1/users/nope", &owner.token, None).await;
        assert_eq!(problem.header("cache-control"), Some("no-store"));
    }
}
