//! `Idempotency-Key`: the first answer of a keyed write is stored in its transaction and
//! replayed byte for byte to its retries; a reuse for another request is 422, a twin while
//! the first runs is 409, a failed request stores nothing.

use std::collections::BTreeSet;

use reqwest::{Method, RequestBuilder, header::HeaderMap};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::{PASSWORD, TestApp, TestUser},
};

/// An answer read as bytes, for comparing replays byte for byte.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn problem_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }

    #[track_caller]
    fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }

    /// Asserts this is the replay of `first`: same status, headers that matter and bytes.
    #[track_caller]
    fn expect_replay_of(&self, first: &Raw) {
        assert_eq!(self.status, first.status, "the replay has the first status");
        assert_eq!(
            self.body, first.body,
            "the replay has the first body, byte for byte"
        );
        for name in ["content-type", "location", "etag"] {
            assert_eq!(self.header(name), first.header(name), "{name} is replayed");
        }
        assert_eq!(self.header("idempotent-replayed"), Some("true"));
        assert_eq!(
            first.header("idempotent-replayed"),
            None,
            "the first answer is no replay"
        );
    }
}

async fn raw(rb: RequestBuilder) -> Raw {
    let resp = rb.send().await.expect("request sent");
    Raw {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.bytes().await.expect("body").to_vec(),
    }
}

fn key() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A request with `Idempotency-Key: key` and, when given, a JSON (or JSON Patch) body.
fn keyed(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    key: &str,
) -> RequestBuilder {
    let content_type = if method == Method::PATCH {
        "application/json-patch+json"
    } else {
        "application/json"
    };
    let rb = app
        .request(method, path, token)
        .header("idempotency-key", key);
    match body {
        Some(body) => rb
            .header("content-type", content_type)
            .body(body.to_string()),
        None => rb,
    }
}

/// Sends the same keyed request twice; asserts the second is the replay of the first.
async fn twice(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    status: u16,
) -> Raw {
    let k = key();
    let first = raw(keyed(app, method.clone(), path, token, body.clone(), &k)).await;
    first.expect(status);
    let second = raw(keyed(app, method, path, token, body, &k)).await;
    second.expect_replay_of(&first);
    first
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.scalar_i64(sql).await
}

async fn changes_of(app: &TestApp, token: &str, event: &str) -> Vec<String> {
    let resp = app
        .get(
            &format!("/api/v1/events/{event}/changes?limit=1000"),
            Some(token),
        )
        .await;
    resp.expect(200);
    resp.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["type"].as_str().expect("type").to_owned())
        .collect()
}

fn event(title: &str) -> Value {
    json!({
        "title": title,
        "starts_at": "2030-03-01T18:00:00Z",
        "ends_at": "2030-03-01T21:00:00Z",
        "status": "published",
    })
}

/// The id of a webhook's first delivery, once the dispatcher has made it.
async fn first_delivery(app: &TestApp, token: &str, hook: &str) -> String {
    let start = std::time::Instant::now();
    loop {
        let resp = app
            .get(&format!("/api/v1/webhooks/{hook}/deliveries"), Some(token))
            .await;
        resp.expect(200);
        if let Some(id) = resp.body["items"][0]["id"].as_str() {
            return id.to_owned();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "no delivery was made"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A created event's id.
fn id_of(raw: &Raw) -> String {
    raw.json()["id"].as_str().expect("id").to_owned()
}

backend_tests! {
    async fn a_retry_gets_the_first_answer_byte_for_byte_and_changes_nothing(app) {
        let user = app.user().await;
        let first = twice(
            &app,
            Method::POST,
            "/api/v1/events",
            Some(&user.token),
            Some(event("Once")),
            201,
        )
        .await;
        assert!(first.header("location").is_some() && first.header("etag").is_some());
        assert_eq!(count(&app, "SELECT COUNT(*) FROM events").await, 1, "one event");
        let id = id_of(&first);
        assert_eq!(changes_of(&app, &user.token, &id).await, ["event.created"]);

        // A third try, later, after other writes: still the first answer.
        let k = key();
        let a = raw(keyed(&app, Method::POST, "/api/v1/events", Some(&user.token), Some(event("Later")), &k)).await;
        a.expect(201);
        app.create_event(&user.token, json!({"title": "In between"})).await.expect(201);
        let b = raw(keyed(&app, Method::POST, "/api/v1/events", Some(&user.token), Some(event("Later")), &k)).await;
        b.expect_replay_of(&a);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM events").await, 3);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM changes").await, 3, "no change on replay");
    }

    async fn a_retried_registration_gets_its_201_not_a_409(app) {
        let organizer = app.user().await;
        let attendee = app.user().await;
        let event = app.published_event(&organizer.token, json!({"capacity": 5})).await;
        let path = format!("/api/v1/events/{event}/attendees");
        let first = twice(&app, Method::POST, &path, Some(&attendee.token), Some(json!({})), 201).await;
        assert_eq!(first.json()["status"], "confirmed");
        // Without the key, the same registration is the conflict the key avoids.
        app.register(&attendee.token, &event).await.expect_problem(409);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM attendees").await, 1);
        assert_eq!(
            changes_of(&app, &organizer.token, &event).await,
            ["event.created", "attendee.registered"]
        );
    }

    async fn the_key_of_another_method_path_or_body_is_422_idempotency_key_reused(app) {
        let user = app.user().await;
        let k = key();
        let created = raw(keyed(&app, Method::POST, "/api/v1/events", Some(&user.token), Some(event("First")), &k)).await;
        created.expect(201);
        let id = id_of(&created);
        let others = [
            keyed(&app, Method::POST, "/api/v1/events", Some(&user.token), Some(event("Other body")), &k),
            keyed(&app, Method::POST, "/api/v1/events?source=retry", Some(&user.token), Some(event("First")), &k),
            keyed(&app, Method::POST, &format!("/api/v1/events/{id}/attendees"), Some(&user.token), Some(json!({})), &k),
            keyed(
                &app,
                Method::PATCH,
                &format!("/api/v1/events/{id}"),
                Some(&user.token),
                Some(json!([{"op": "replace", "path": "/title", "value": "Renamed"}])),
                &k,
            ),
            keyed(&app, Method::DELETE, &format!("/api/v1/events/{id}"), Some(&user.token), None, &k),
        ];
        for rb in others {
            let resp = raw(rb).await;
            resp.expect(422);
            assert_eq!(resp.header("content-type"), Some("application/problem+json"));
            assert_eq!(resp.problem_type(), "urn:problem:event-manager:idempotency-key-reused");
        }
        assert_eq!(count(&app, "SELECT COUNT(*) FROM events").await, 1);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM attendees").await, 0);
        let current = app.get(&format!("/api/v1/events/{id}"), Some(&user.token)).await;
        assert_eq!(current.expect(200).body["title"], "First");
    }

    async fn keys_that_are_empty_too_long_or_not_visible_ascii_are_400(app) {
        let user = app.user().await;
        for bad in [
            reqwest::header::HeaderValue::from_static(""),
            reqwest::header::HeaderValue::from_str(&"k".repeat(256)).unwrap(),
            reqwest::header::HeaderValue::from_static("two words"),
            reqwest::header::HeaderValue::from_bytes("clé".as_bytes()).unwrap(),
        ] {
            let resp = raw(
                app.request(Method::POST, "/api/v1/events", Some(&user.token))
                    .header("idempotency-key", bad.clone())
                    .json(&event("Refused")),
            )
            .await;
            resp.expect(400);
            assert_eq!(resp.header("content-type"), Some("application/problem+json"), "{bad:?}");
        }
        // Two keys in one request are refused as well.
        let resp = raw(
            app.request(Method::POST, "/api/v1/events", Some(&user.token))
                .header("idempotency-key", "a")
                .header("idempotency-key", "b")
                .json(&event("Refused")),
        )
        .await;
        resp.expect(400);
        // The longest and the widest keys are fine.
        for good in ["~".repeat(255), "!#$%&'*+-.^_`|~0-9A-Za-z".to_owned()] {
            twice(&app, Method::POST, "/api/v1/events", Some(&user.token), Some(event(&good[..10])), 201).await;
        }
        assert_eq!(count(&app, "SELECT COUNT(*) FROM events").await, 2);
    }

    async fn the_same_key_from_two_users_has_two_effects(app) {
        let (a, b) = (app.user().await, app.user().await);
        let k = key();
        let first = raw(keyed(&app, Method::POST, "/api/v1/events", Some(&a.token), Some(event("Same")), &k)).await;
        let second = raw(keyed(&app, Method::POST, "/api/v1/events", Some(&b.token), Some(event("Same")), &k)).await;
        first.expect(201);
        second.expect(201);
        assert_eq!(second.header("idempotent-replayed"), None);
        assert_ne!(id_of(&first), id_of(&second));
        assert_eq!(first.json()["organizer_id"], json!(a.id));
        assert_eq!(second.json()["organizer_id"], json!(b.id));
        assert_eq!(count(&app, "SELECT COUNT(*) FROM events").await, 2);
    }

    async fn sign_ups_share_the_anonymous_scope(app) {
        let body = json!({"email": "once@example.com", "password": PASSWORD, "full_name": "Once"});
        let first = twice(&app, Method::POST, "/api/v1/users", None, Some(body), 201).await;
        assert_eq!(first.json()["email"], "once@example.com");
        assert_eq!(app.user_count().await, 1, "one account, not a 409 on the retry");
        let k = key();
        raw(keyed(
            &app,
            Method::POST,
            "/api/v1/users",
            None,
            Some(json!({"email": "a@example.com", "password": PASSWORD, "full_name": "A"})),
            &k,
        ))
        .await
        .expect(201);
        // Another anonymous request with that key is another request: refused.
        let other = raw(keyed(
            &app,
            Method::POST,
            "/api/v1/users",
            None,
            Some(json!({"email": "b@example.com", "password": PASSWORD, "full_name": "B"})),
            &k,
        ))
        .await;
        other.expect(422);
        assert_eq!(other.problem_type(), "urn:problem:event-manager:idempotency-key-reused");
        assert_eq!(app.user_count().await, 2);
        let scopes = count(&app, "SELECT COUNT(*) FROM idempotency_keys WHERE scope = 'anonymous'").await;
        assert_eq!(scopes, 2);
    }

    async fn fifty_concurrent_requests_with_one_key_have_one_effect(app) {
        let user = app.user().await;
        let k = key();
        let requests = (0..50).map(|_| {
            raw(keyed(&app, Method::POST, "/api/v1/events", Some(&user.token), Some(event("Burst")), &k))
        });
        let answers = futures::future::join_all(requests).await;
        let created: Vec<&Raw> = answers.iter().filter(|a| a.status == 201).collect();
        assert!(!created.is_empty(), "one of them ran");
        for a in &answers {
            match a.status {
                201 => assert_eq!(a.body, created[0].body, "every 201 is the same answer"),
                409 => {
                    assert_eq!(a.problem_type(), "urn:problem:event-manager:idempotency-key-in-use");
                    assert_eq!(a.header("retry-after"), Some("1"));
                }
                other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&a.body)),
            }
        }
        let fresh = created.iter().filter(|a| a.header("idempotent-replayed").is_none()).count();
        assert_eq!(fresh, 1, "exactly one answer is not a replay");
        assert_eq!(count(&app, "SELECT COUNT(*) FROM events").await, 1, "exactly one effect");
        assert_eq!(count(&app, "SELECT COUNT(*) FROM changes").await, 1);
        // After the burst every retry replays.
        let after = raw(keyed(&app, Method::POST, "/api/v1/events", Some(&user.token), Some(event("Burst")), &k)).await;
        after.expect(201);
        assert_eq!(after.body, created[0].body);
    }

    async fn expired_keys_are_swept_and_then_run_again(app) {
        let user = app.user().await;
        let k = key();
        let send = || raw(keyed(&app, Method::POST, "/api/v1/events", Some(&user.token), Some(event("Swept")), &k));
        send().await.expect(201);
        assert_eq!(app.state.idempotency.sweep().await.expect("sweep"), 0, "kept while fresh");
        assert_eq!(count(&app, "SELECT COUNT(*) FROM idempotency_keys").await, 1);
        assert_eq!(send().await.header("idempotent-replayed"), Some("true"));
        // A day later (the TTL is at least a day): as if it had expired.
        app.db
            .execute_unprepared("UPDATE idempotency_keys SET expires_at = created_at")
            .await
            .expect("aging the key");
        let after_expiry = send().await;
        after_expiry.expect(201);
        assert_eq!(after_expiry.header("idempotent-replayed"), None, "an expired key runs again");
        app.db
            .execute_unprepared("UPDATE idempotency_keys SET expires_at = created_at")
            .await
            .expect("aging the key");
        assert_eq!(app.state.idempotency.sweep().await.expect("sweep"), 1);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM idempotency_keys").await, 0);
        send().await.expect(201);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM events").await, 3, "each run after expiry is new");
    }

    async fn a_failed_request_stores_nothing_and_its_retry_runs(app) {
        let organizer = app.user().await;
        let attendee = app.user().await;
        let event = app.published_event(&organizer.token, json!({"capacity": 1})).await;
        app.register(&app.user().await.token, &event).await.expect(201);
        let path = format!("/api/v1/events/{event}/attendees");
        let k = key();
        let full = raw(keyed(&app, Method::POST, &path, Some(&attendee.token), Some(json!({})), &k)).await;
        full.expect(409);
        assert_eq!(full.problem_type(), "urn:problem:event-manager:conflict");
        assert_eq!(count(&app, "SELECT COUNT(*) FROM idempotency_keys").await, 0, "errors store nothing");
        app.patch(
            &format!("/api/v1/events/{event}"),
            Some(&organizer.token),
            json!([{"op": "replace", "path": "/capacity", "value": 2}]),
            None,
        )
        .await
        .expect(200);
        let retry = raw(keyed(&app, Method::POST, &path, Some(&attendee.token), Some(json!({})), &k)).await;
        retry.expect(201);
        assert_eq!(retry.header("idempotent-replayed"), None, "the retry ran");
        assert_eq!(retry.json()["status"], "confirmed");
    }

    async fn token_answers_replay_without_a_second_login_and_are_stored_sealed(app) {
        let user = app.user().await;
        let logins_before = count(&app, "SELECT COUNT(*) FROM refresh_tokens").await;
        let login = twice(
            &app,
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"email": user.email, "password": PASSWORD})),
            200,
        )
        .await;
        assert_eq!(count(&app, "SELECT COUNT(*) FROM refresh_tokens").await, logins_before + 1);
        assert!(login.header("ratelimit-limit").is_some(), "a login answer has its rate-limit headers");
        let tokens = login.json();
        let refresh_token = tokens["refresh_token"].as_str().expect("refresh token").to_owned();
        // A retried refresh gets the same new pair, not the 401 of a spent token (which
        // would sign the login out everywhere).
        let refreshed = twice(
            &app,
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh_token})),
            200,
        )
        .await;
        let next = refreshed.json()["refresh_token"].as_str().expect("next").to_owned();
        assert_ne!(next, refresh_token);
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": next}))
            .await
            .expect(200);
        // Nothing of a token is readable in the stored answers.
        let rows = app
            .db
            .query_all_raw(sea_orm::Statement::from_string(
                app.db.get_database_backend(),
                "SELECT body, sealed FROM idempotency_keys".to_owned(),
            ))
            .await
            .expect("rows");
        assert_eq!(rows.len(), 2);
        for row in rows {
            let body: Vec<u8> = row.try_get("", "body").expect("body");
            let sealed: bool = row.try_get("", "sealed").expect("sealed");
            assert!(sealed);
            let text = String::from_utf8_lossy(&body);
            assert!(!text.contains("token") && !text.contains(&refresh_token) && !text.contains(&next));
        }
    }

    async fn the_spec_documents_the_key_on_every_write_and_the_replay_header(app) {
        let spec = app.get("/openapi.json", None).await.body;
        for (path, item) in spec["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("operations") {
                let write = matches!(method.as_str(), "post" | "patch" | "put" | "delete");
                let param = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p["name"] == "Idempotency-Key");
                assert_eq!(param.is_some(), write, "{method} {path}: Idempotency-Key on writes only");
                let Some(param) = param else { continue };
                assert_eq!(param["in"], "header");
                assert_ne!(param["required"], json!(true));
                let schema = &param["schema"];
                assert_eq!(schema["minLength"], 1, "{method} {path}");
                assert_eq!(schema["maxLength"], 255);
                assert_eq!(schema["pattern"], "^[!-~]+$");
                for (status, response) in op["responses"].as_object().expect("responses") {
                    let replayed = &response["headers"]["Idempotent-Replayed"];
                    assert_eq!(!replayed.is_null(), status.starts_with('2'), "{method} {path} {status}");
                }
                let in_use = &op["responses"]["409"]["headers"]["Retry-After"];
                assert!(!in_use.is_null(), "{method} {path}: 409 documents Retry-After");
            }
        }
    }

    async fn every_write_operation_replays_its_first_answer(app) {
        let exercised = exercise_every_write(&app).await;
        let spec = app.get("/openapi.json", None).await.body;
        let mut writes = BTreeSet::new();
        for (path, item) in spec["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("operations").keys() {
                if matches!(method.as_str(), "post" | "patch" | "put" | "delete") {
                    writes.insert(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        let missing: Vec<_> = writes.difference(&exercised).collect();
        assert!(missing.is_empty(), "write operations whose replay no test checks: {missing:?}");
        let unknown: Vec<_> = exercised.difference(&writes).collect();
        assert!(unknown.is_empty(), "exercised but not in the spec: {unknown:?}");
    }
}

/// Sends each write operation of the API twice with one key and checks the replay; returns
/// the operations exercised, as `METHOD /path/{template}`.
async fn exercise_every_write(app: &TestApp) -> BTreeSet<String> {
    let mut done = BTreeSet::new();
    let mut mark = |op: &str| {
        done.insert(op.to_owned());
    };
    let organizer = app.user().await;
    let attendee = app.user().await;
    let admin = app.admin().await;

    let email = "everything@example.com";
    let signed_up = twice(
        app,
        Method::POST,
        "/api/v1/users",
        None,
        Some(json!({"email": email, "password": PASSWORD, "full_name": "Every Thing"})),
        201,
    )
    .await;
    mark("POST /api/v1/users");
    let member = TestUser {
        id: signed_up.json()["id"].as_str().expect("id").to_owned(),
        email: email.to_owned(),
        token: String::new(),
    };
    let login = twice(
        app,
        Method::POST,
        "/api/v1/auth/token",
        None,
        Some(json!({"email": email, "password": PASSWORD})),
        200,
    )
    .await;
    mark("POST /api/v1/auth/token");
    let token = login.json()["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let refreshed = twice(
        app,
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": login.json()["refresh_token"]})),
        200,
    )
    .await;
    mark("POST /api/v1/auth/refresh");
    twice(
        app,
        Method::POST,
        "/api/v1/auth/logout",
        None,
        Some(json!({"refresh_token": refreshed.json()["refresh_token"]})),
        204,
    )
    .await;
    mark("POST /api/v1/auth/logout");
    twice(
        app,
        Method::PATCH,
        &format!("/api/v1/users/{}", member.id),
        Some(&token),
        Some(json!([{"op": "replace", "path": "/full_name", "value": "Renamed"}])),
        200,
    )
    .await;
    mark("PATCH /api/v1/users/{id}");

    // A webhook made before the event's changes receives them (and fails to deliver them:
    // the name does not resolve, which the log shows, and which redelivery does not mind).
    let hook = twice(
        app,
        Method::POST,
        "/api/v1/webhooks",
        Some(&organizer.token),
        Some(json!({"url": "https://hooks.example.invalid/in"})),
        201,
    )
    .await;
    mark("POST /api/v1/webhooks");
    let hook = id_of(&hook);
    twice(
        app,
        Method::PATCH,
        &format!("/api/v1/webhooks/{hook}"),
        Some(&organizer.token),
        Some(json!([{"op": "replace", "path": "/description", "value": "CRM"}])),
        200,
    )
    .await;
    mark("PATCH /api/v1/webhooks/{id}");

    let created = twice(
        app,
        Method::POST,
        "/api/v1/events",
        Some(&organizer.token),
        Some(event("Everything")),
        201,
    )
    .await;
    mark("POST /api/v1/events");
    // An import takes CSV, not JSON: the same check by hand.
    let csv = "title,starts_at,ends_at\nImported,2030-03-01T18:00:00Z,2030-03-01T21:00:00Z\n";
    let k = key();
    let upload = || {
        app.request(Method::POST, "/api/v1/imports", Some(&organizer.token))
            .header("idempotency-key", &k)
            .header("content-type", "text/csv")
            .body(csv)
    };
    let first = raw(upload()).await;
    first.expect(202);
    raw(upload()).await.expect_replay_of(&first);
    mark("POST /api/v1/imports");
    let id = id_of(&created);
    twice(
        app,
        Method::PATCH,
        &format!("/api/v1/events/{id}"),
        Some(&organizer.token),
        Some(json!([{"op": "replace", "path": "/capacity", "value": 10}])),
        200,
    )
    .await;
    mark("PATCH /api/v1/events/{id}");
    let delivery = first_delivery(app, &organizer.token, &hook).await;
    twice(
        app,
        Method::POST,
        &format!("/api/v1/webhooks/{hook}/deliveries/{delivery}/redeliver"),
        Some(&organizer.token),
        None,
        202,
    )
    .await;
    mark("POST /api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver");
    twice(
        app,
        Method::DELETE,
        &format!("/api/v1/webhooks/{hook}"),
        Some(&organizer.token),
        None,
        204,
    )
    .await;
    mark("DELETE /api/v1/webhooks/{id}");
    let registered = twice(
        app,
        Method::POST,
        &format!("/api/v1/events/{id}/attendees"),
        Some(&attendee.token),
        Some(json!({})),
        201,
    )
    .await;
    mark("POST /api/v1/events/{id}/attendees");
    let record = id_of(&registered);
    twice(
        app,
        Method::PATCH,
        &format!("/api/v1/events/{id}/attendees/{record}"),
        Some(&organizer.token),
        Some(json!([{"op": "replace", "path": "/status", "value": "checked_in"}])),
        200,
    )
    .await;
    mark("PATCH /api/v1/events/{id}/attendees/{attendee_id}");
    twice(
        app,
        Method::DELETE,
        &format!("/api/v1/events/{id}/attendees/{record}"),
        Some(&organizer.token),
        None,
        204,
    )
    .await;
    mark("DELETE /api/v1/events/{id}/attendees/{attendee_id}");
    let door = twice(
        app,
        Method::POST,
        &format!("/api/v1/events/{id}/attendees"),
        Some(&admin.token),
        Some(json!({})),
        201,
    )
    .await;
    twice(
        app,
        Method::POST,
        &format!("/api/v1/events/{id}/check-ins"),
        Some(&organizer.token),
        Some(json!({"scans": [{"attendee_id": id_of(&door)}]})),
        200,
    )
    .await;
    mark("POST /api/v1/events/{id}/check-ins");
    twice(
        app,
        Method::PUT,
        &format!("/api/v1/events/{id}/staff/{}", attendee.id),
        Some(&organizer.token),
        Some(json!({"role": "checker"})),
        201,
    )
    .await;
    mark("PUT /api/v1/events/{id}/staff/{user_id}");
    twice(
        app,
        Method::DELETE,
        &format!("/api/v1/events/{id}/staff/{}", attendee.id),
        Some(&organizer.token),
        None,
        204,
    )
    .await;
    mark("DELETE /api/v1/events/{id}/staff/{user_id}");
    let invitation = twice(
        app,
        Method::POST,
        &format!("/api/v1/events/{id}/invitations"),
        Some(&organizer.token),
        Some(json!({"max_uses": 3})),
        201,
    )
    .await;
    mark("POST /api/v1/events/{id}/invitations");
    twice(
        app,
        Method::DELETE,
        &format!("/api/v1/events/{id}/invitations/{}", id_of(&invitation)),
        Some(&organizer.token),
        None,
        204,
    )
    .await;
    mark("DELETE /api/v1/events/{id}/invitations/{invitation_id}");
    twice(
        app,
        Method::DELETE,
        &format!("/api/v1/events/{id}"),
        Some(&organizer.token),
        None,
        204,
    )
    .await;
    mark("DELETE /api/v1/events/{id}");
    // By an administrator: a user deleting themself cannot retry with a token that no
    // longer authenticates (401 before any key is looked at).
    twice(
        app,
        Method::DELETE,
        &format!("/api/v1/users/{}", member.id),
        Some(&admin.token),
        None,
        204,
    )
    .await;
    mark("DELETE /api/v1/users/{id}");
    assert_eq!(
        changes_of(app, &organizer.token, &id).await,
        [
            "event.created",
            "event.updated",
            "attendee.registered",
            "attendee.checked_in",
            "attendee.cancelled",
            "attendee.registered",
            "attendee.checked_in",
            "staff.changed",
            "staff.changed",
            "invitation.created",
            "invitation.revoked",
            "event.deleted",
        ],
        "each write recorded its changes once"
    );
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "TEST_DATABASE_URL is unset: PostgreSQL not tested"
)]
async fn postgres_one_key_sent_to_two_instances_at_once_has_one_effect() {
    let a = crate::helpers::postgres_app().await;
    let b = a.second_instance().await;
    let user = a.user().await;
    for round in 0..10 {
        let k = key();
        let body = event(&format!("Twin {round}"));
        let requests = (0..10).map(|i| {
            let instance = if i % 2 == 0 { &a } else { &b };
            raw(keyed(
                instance,
                Method::POST,
                "/api/v1/events",
                Some(&user.token),
                Some(body.clone()),
                &k,
            ))
        });
        let answers = futures::future::join_all(requests).await;
        let mut bodies = BTreeSet::new();
        for answer in &answers {
            match answer.status {
                201 => {
                    bodies.insert(answer.body.clone());
                }
                409 => assert_eq!(answer.header("retry-after"), Some("1")),
                other => panic!(
                    "unexpected {other}: {}",
                    String::from_utf8_lossy(&answer.body)
                ),
            }
        }
        assert_eq!(
            bodies.len(),
            1,
            "round {round}: every 201 is the same answer"
        );
        let events = a
            .scalar_i64(&format!(
                "SELECT COUNT(*) FROM events WHERE title = 'Twin {round}'"
            ))
            .await;
        assert_eq!(
            events, 1,
            "round {round}: exactly one effect across instances"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "TEST_DATABASE_URL is unset: PostgreSQL not tested"
)]
async fn postgres_a_token_answer_sealed_under_a_replaced_jwt_secret_runs_again_instead_of_failing()
{
    let a = crate::helpers::postgres_app().await;
    let rotated = a
        .second_instance_with(|config| {
            config.jwt_secret = Some("a-rotated-secret-0123456789abcdef-0123456789".to_owned());
        })
        .await;
    let user = a.user().await;
    let k = key();
    let body = json!({"email": user.email, "password": PASSWORD});
    let first = raw(keyed(
        &a,
        Method::POST,
        "/api/v1/auth/token",
        None,
        Some(body.clone()),
        &k,
    ))
    .await;
    first.expect(200);
    let retry = raw(keyed(
        &rotated,
        Method::POST,
        "/api/v1/auth/token",
        None,
        Some(body),
        &k,
    ))
    .await;
    retry.expect(200);
    assert_eq!(
        retry.header("idempotent-replayed"),
        None,
        "an answer that cannot be opened is not replayed: the login runs again"
    );
    assert_ne!(retry.json()["access_token"], first.json()["access_token"]);
}
