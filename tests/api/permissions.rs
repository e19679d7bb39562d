//! Who may do what: every Events, Attendees, change feed and Webhooks endpoint (but the never-ending
//! stream, tested in `changes.rs`) against every kind of caller, as one table. Each cell runs
//! on a fresh scenario, and a refused call must leave it untouched. Writes carry an
//! `Idempotency-Key`: a refusal stores no answer for it either.

use reqwest::Method;
use serde_json::Value;

use crate::{
    backend_tests,
    helpers::{TestApp, TestUser},
};

/// The kinds of caller, in the order of the table's columns.
const CALLERS: [&str; 5] = ["anonymous", "stranger", "attendee", "organizer", "admin"];

/// One endpoint and the status each kind of caller gets.
///
/// Placeholders: `{P}` a published event of the organizer, `{D}` their draft, `{R}` the
/// attendee's registration for `{P}`, `{G}` a user registered nowhere, `{W}` the organizer's
/// webhook on `{P}` and `{V}` one of its deliveries.
struct Row {
    method: &'static str,
    path: &'static str,
    /// JSON request body (a JSON Patch document for PATCH); empty for none.
    body: &'static str,
    /// Expected status for [anonymous, stranger, attendee, organizer, admin].
    expect: [u16; 5],
}

const fn row(
    method: &'static str,
    path: &'static str,
    body: &'static str,
    expect: [u16; 5],
) -> Row {
    Row {
        method,
        path,
        body,
        expect,
    }
}

const NEW_EVENT: &str = r#"{"title": "Created", "starts_at": "2030-03-01T18:00:00Z", "ends_at": "2030-03-01T21:00:00Z"}"#;
const RENAME: &str = r#"[{"op": "replace", "path": "/title", "value": "Renamed"}]"#;
const CANCEL: &str = r#"[{"op": "replace", "path": "/status", "value": "cancelled"}]"#;
const CHECK_IN: &str = r#"[{"op": "replace", "path": "/status", "value": "checked_in"}]"#;
const SELF: &str = "{}";
const GUEST: &str = r#"{"user_id": "{G}"}"#;
// Created inactive, so that the cells after them do not feed them deliveries.
const NEW_HOOK: &str = r#"{"url": "https://hooks.example.invalid/in", "active": false}"#;
const HOOK_ON_P: &str =
    r#"{"url": "https://hooks.example.invalid/in", "event_id": "{P}", "active": false}"#;
const HOOK_ON_D: &str =
    r#"{"url": "https://hooks.example.invalid/in", "event_id": "{D}", "active": false}"#;
const DESCRIBE: &str = r#"[{"op": "replace", "path": "/description", "value": "CRM"}]"#;

#[rustfmt::skip]
const TABLE: &[Row] = &[
    //   method    path                                  body       anon stranger attendee organizer admin
    row("POST",   "/api/v1/events",                     NEW_EVENT, [401, 201, 201, 201, 201]),
    row("GET",    "/api/v1/events",                     "",        [200, 200, 200, 200, 200]),
    row("GET",    "/api/v1/events/{P}",                 "",        [200, 200, 200, 200, 200]),
    row("GET",    "/api/v1/events/{D}",                 "",        [404, 404, 404, 200, 200]),
    row("PATCH",  "/api/v1/events/{P}",                 RENAME,    [401, 403, 403, 200, 200]),
    row("PATCH",  "/api/v1/events/{P}",                 CANCEL,    [401, 403, 403, 200, 200]),
    row("PATCH",  "/api/v1/events/{D}",                 RENAME,    [401, 404, 404, 200, 200]),
    row("DELETE", "/api/v1/events/{P}",                 "",        [401, 403, 403, 204, 204]),
    row("DELETE", "/api/v1/events/{D}",                 "",        [401, 404, 404, 204, 204]),
    row("POST",   "/api/v1/events/{P}/attendees",       SELF,      [401, 201, 409, 201, 201]),
    row("POST",   "/api/v1/events/{P}/attendees",       GUEST,     [401, 403, 403, 201, 201]),
    row("POST",   "/api/v1/events/{D}/attendees",       SELF,      [401, 404, 404, 409, 409]),
    row("POST",   "/api/v1/events/{D}/attendees",       GUEST,     [401, 404, 404, 409, 409]),
    row("GET",    "/api/v1/events/{P}/attendees",       "",        [401, 403, 403, 200, 200]),
    row("GET",    "/api/v1/events/{D}/attendees",       "",        [401, 404, 404, 200, 200]),
    row("GET",    "/api/v1/events/{P}/attendees/{R}",   "",        [401, 404, 200, 200, 200]),
    row("PATCH",  "/api/v1/events/{P}/attendees/{R}",   CANCEL,    [401, 404, 200, 200, 200]),
    row("PATCH",  "/api/v1/events/{P}/attendees/{R}",   CHECK_IN,  [401, 404, 403, 200, 200]),
    row("DELETE", "/api/v1/events/{P}/attendees/{R}",   "",        [401, 404, 204, 204, 204]),
    row("GET",    "/api/v1/users/me/registrations",     "",        [401, 200, 200, 200, 200]),
    row("GET",    "/api/v1/events/{P}/changes",         "",        [200, 200, 200, 200, 200]),
    row("GET",    "/api/v1/events/{D}/changes",         "",        [404, 404, 404, 200, 200]),
    row("GET",    "/api/v1/changes",                    "",        [401, 403, 403, 403, 200]),
    row("POST",   "/api/v1/webhooks",                   NEW_HOOK,  [401, 201, 201, 201, 201]),
    row("POST",   "/api/v1/webhooks",                   HOOK_ON_P, [401, 403, 403, 201, 201]),
    row("POST",   "/api/v1/webhooks",                   HOOK_ON_D, [401, 404, 404, 201, 201]),
    row("GET",    "/api/v1/webhooks",                   "",        [401, 200, 200, 200, 200]),
    row("GET",    "/api/v1/webhooks/{W}",               "",        [401, 404, 404, 200, 200]),
    row("PATCH",  "/api/v1/webhooks/{W}",               DESCRIBE,  [401, 404, 404, 200, 200]),
    row("DELETE", "/api/v1/webhooks/{W}",               "",        [401, 404, 404, 204, 204]),
    row("GET",    "/api/v1/webhooks/{W}/deliveries",    "",        [401, 404, 404, 200, 200]),
    row("POST",   "/api/v1/webhooks/{W}/deliveries/{V}/redeliver", "", [401, 404, 404, 202, 202]),
];

/// The people of the scenario; events are made afresh for every cell.
struct Cast {
    organizer: TestUser,
    attendee: TestUser,
    stranger: TestUser,
    admin: TestUser,
    guest: TestUser,
}

impl Cast {
    fn token(&self, caller: usize) -> Option<&str> {
        match caller {
            0 => None,
            1 => Some(&self.stranger.token),
            2 => Some(&self.attendee.token),
            3 => Some(&self.organizer.token),
            _ => Some(&self.admin.token),
        }
    }
}

/// A published event with the attendee registered, and a draft.
struct Scene {
    published: String,
    draft: String,
    record: String,
    /// The organizer's webhook on the published event (empty unless the row needs it).
    webhook: String,
    /// A delivery of it.
    delivery: String,
}

async fn scene(app: &TestApp, cast: &Cast, n: usize, with_webhook: bool) -> Scene {
    let published = app
        .published_event(
            &cast.organizer.token,
            serde_json::json!({"title": format!("Published {n}"), "capacity": 10, "waitlist_enabled": true}),
        )
        .await;
    let draft = app
        .create_event(
            &cast.organizer.token,
            serde_json::json!({"title": format!("Draft {n}")}),
        )
        .await;
    draft.expect(201);
    let record = app.register(&cast.attendee.token, &published).await;
    record.expect(201);
    let (webhook, delivery) = if with_webhook {
        webhook_with_a_delivery(app, cast, &published).await
    } else {
        Default::default()
    };
    Scene {
        published,
        draft: draft.body["id"].as_str().expect("id").to_owned(),
        record: record.body["id"].as_str().expect("id").to_owned(),
        webhook,
        delivery,
    }
}

/// The organizer's webhook on `event`, and the delivery of a rename made after it.
async fn webhook_with_a_delivery(app: &TestApp, cast: &Cast, event: &str) -> (String, String) {
    let token = Some(cast.organizer.token.as_str());
    let hook = app
        .post(
            "/api/v1/webhooks",
            token,
            serde_json::json!({"url": "https://hooks.example.invalid/in", "event_id": event, "types": ["event.updated"]}),
        )
        .await;
    hook.expect(201);
    let hook = hook.body["id"].as_str().expect("id").to_owned();
    app.patch(
        &format!("/api/v1/events/{event}"),
        token,
        serde_json::json!([{"op": "replace", "path": "/description", "value": "Now with webhooks"}]),
        None,
    )
    .await
    .expect(200);
    let start = std::time::Instant::now();
    loop {
        let log = app
            .get(&format!("/api/v1/webhooks/{hook}/deliveries"), token)
            .await;
        if let Some(id) = log.body["items"][0]["id"].as_str() {
            return (hook, id.to_owned());
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "no delivery made"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Everything a refused call could have touched, as an administrator and SQL see it.
#[derive(Debug, PartialEq)]
struct Snapshot {
    published: Value,
    draft: Value,
    record: Value,
    events: i64,
    attendees: i64,
    active_attendees: i64,
    confirmed_count: i64,
    waitlist_count: i64,
    /// Rows of the change feed: a refused write records nothing.
    changes: i64,
    /// Stored answers of keyed writes: a refused write stores none.
    idempotency_keys: i64,
    /// Webhooks and their versions (not their deliveries, whose attempts run meanwhile).
    webhooks: i64,
    webhook_versions: i64,
}

async fn snapshot(app: &TestApp, cast: &Cast, s: &Scene, n: usize) -> Snapshot {
    let admin = Some(cast.admin.token.as_str());
    let published = app
        .get(&format!("/api/v1/events/{}", s.published), admin)
        .await;
    let draft = app.get(&format!("/api/v1/events/{}", s.draft), admin).await;
    let record = app
        .get(
            &format!("/api/v1/events/{}/attendees/{}", s.published, s.record),
            admin,
        )
        .await;
    let counter = |column: &str| {
        format!("SELECT CAST({column} AS BIGINT) FROM events WHERE title = 'Published {n}'")
    };
    Snapshot {
        published: published.body.clone(),
        draft: draft.body.clone(),
        record: record.body.clone(),
        events: app.scalar_i64("SELECT COUNT(*) FROM events").await,
        attendees: app.scalar_i64("SELECT COUNT(*) FROM attendees").await,
        active_attendees: app
            .scalar_i64("SELECT COUNT(*) FROM attendees WHERE status <> 'cancelled'")
            .await,
        confirmed_count: app.scalar_i64(&counter("confirmed_count")).await,
        waitlist_count: app.scalar_i64(&counter("waitlist_count")).await,
        changes: app.scalar_i64("SELECT COUNT(*) FROM changes").await,
        idempotency_keys: app
            .scalar_i64("SELECT COUNT(*) FROM idempotency_keys")
            .await,
        webhooks: app.scalar_i64("SELECT COUNT(*) FROM webhooks").await,
        webhook_versions: app
            .scalar_i64("SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM webhooks")
            .await,
    }
}

backend_tests! {
    async fn every_endpoint_answers_each_kind_of_caller_as_the_table_says_and_refusals_change_nothing(app) {
        let cast = Cast {
            organizer: app.user().await,
            attendee: app.user().await,
            stranger: app.user().await,
            admin: app.admin().await,
            guest: app.user().await,
        };
        let mut failures = Vec::new();
        let mut n = 0;
        for row in TABLE {
            for (caller, &expected) in row.expect.iter().enumerate() {
                n += 1;
                let s = scene(&app, &cast, n, row.path.contains("{W}")).await;
                let fill = |text: &str| {
                    text.replace("{P}", &s.published)
                        .replace("{D}", &s.draft)
                        .replace("{R}", &s.record)
                        .replace("{G}", &cast.guest.id)
                        .replace("{W}", &s.webhook)
                        .replace("{V}", &s.delivery)
                };
                let path = fill(row.path);
                let label = format!("{} {} {} as {}", row.method, row.path, row.body, CALLERS[caller]);
                let before = snapshot(&app, &cast, &s, n).await;

                let method = Method::from_bytes(row.method.as_bytes()).expect("a method");
                let mut rb = app.request(method, &path, cast.token(caller));
                if row.method != "GET" {
                    rb = rb.header("idempotency-key", format!("cell-{n}"));
                }
                if !row.body.is_empty() {
                    let content_type = if row.method == "PATCH" {
                        "application/json-patch+json"
                    } else {
                        "application/json"
                    };
                    rb = rb.header("content-type", content_type).body(fill(row.body));
                }
                let resp = app.send(rb).await;

                if resp.status != expected {
                    failures.push(format!("{label}: expected {expected}, got {} {}", resp.status, resp.body));
                    continue;
                }
                if expected >= 400 {
                    if resp.header("content-type") != Some("application/problem+json") {
                        failures.push(format!("{label}: refusal is not a problem: {:?}", resp.header("content-type")));
                    }
                    if expected == 401 && resp.header("www-authenticate") != Some("Bearer") {
                        failures.push(format!("{label}: 401 without WWW-Authenticate: Bearer"));
                    }
                    let after = snapshot(&app, &cast, &s, n).await;
                    if after != before {
                        failures.push(format!("{label}: refused, yet changed\n  before: {before:?}\n  after:  {after:?}"));
                    }
                } else if row.method != "GET" {
                    let stored = app.scalar_i64("SELECT COUNT(*) FROM idempotency_keys").await;
                    if stored != before.idempotency_keys + 1 {
                        failures.push(format!("{label}: {stored} stored answers after one keyed write, before {}", before.idempotency_keys));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{} of {n} cells differ:\n{}", failures.len(), failures.join("\n"));
    }
}
