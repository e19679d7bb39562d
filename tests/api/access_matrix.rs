//! Who may do what on public, private and draft events: every endpoint that acts on an event
//! against every kind of caller, as one table per event kind. A refused call must change
//! nothing (the event, the record, staff, invitations, the change feed, stored answers).

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::{TestApp, TestUser},
};

/// The kinds of caller, in the order of the table's columns.
const CALLERS: [&str; 8] = [
    "anonymous",
    "stranger",
    "attendee",
    "invitation holder",
    "checker",
    "co-organizer",
    "organizer",
    "admin",
];

/// The kinds of event, in the order of each row's expectations.
const KINDS: [&str; 3] = ["public", "private", "draft"];

/// One endpoint and the status each kind of caller gets on each kind of event.
///
/// Placeholders: `{E}` the event, `{R}` the attendee's record on it (an unknown id on a
/// draft, which takes no registrations), `{G}` a user with no part in it, `{C}` the
/// checker, `{I}` an invitation of the event and `{T}` the holder's invitation token.
struct Row {
    method: &'static str,
    path: &'static str,
    body: &'static str,
    /// [public, private, draft] x [anonymous .. admin].
    expect: [[u16; 8]; 3],
}

const fn row(
    method: &'static str,
    path: &'static str,
    body: &'static str,
    expect: [[u16; 8]; 3],
) -> Row {
    Row {
        method,
        path,
        body,
        expect,
    }
}

const RENAME: &str = r#"[{"op": "replace", "path": "/title", "value": "Renamed"}]"#;
const CANCEL: &str = r#"[{"op": "replace", "path": "/status", "value": "cancelled"}]"#;
const CHECK_IN: &str = r#"[{"op": "replace", "path": "/status", "value": "checked_in"}]"#;
const SELF: &str = "{}";
const INVITED: &str = r#"{"invitation": "{T}"}"#;
const GUEST: &str = r#"{"user_id": "{G}"}"#;
const CHECKER: &str = r#"{"role": "checker"}"#;
const SCAN: &str = r#"{"scans": [{"attendee_id": "{R}"}]}"#;

//  anon stranger attendee holder checker co-org organizer admin
#[rustfmt::skip]
const TABLE: &[Row] = &[
    row("GET",    "/api/v1/events/{E}", "", [
        [200, 200, 200, 200, 200, 200, 200, 200],
        [404, 404, 200, 404, 200, 200, 200, 200],
        [404, 404, 404, 404, 200, 200, 200, 200]]),
    row("PATCH",  "/api/v1/events/{E}", RENAME, [
        [401, 403, 403, 403, 403, 200, 200, 200],
        [401, 404, 403, 404, 403, 200, 200, 200],
        [401, 404, 404, 404, 403, 200, 200, 200]]),
    row("DELETE", "/api/v1/events/{E}", "", [
        [401, 403, 403, 403, 403, 403, 204, 204],
        [401, 404, 403, 404, 403, 403, 204, 204],
        [401, 404, 404, 404, 403, 403, 204, 204]]),
    row("POST",   "/api/v1/events/{E}/attendees", SELF, [
        [401, 201, 409, 201, 201, 201, 201, 201],
        [401, 404, 409, 404, 403, 201, 201, 201],
        [401, 404, 404, 404, 409, 409, 409, 409]]),
    row("POST",   "/api/v1/events/{E}/attendees", INVITED, [
        [401, 201, 409, 201, 201, 201, 201, 201],
        [401, 201, 409, 201, 201, 201, 201, 201],
        [401, 409, 409, 409, 409, 409, 409, 409]]),
    row("POST",   "/api/v1/events/{E}/attendees", GUEST, [
        [401, 403, 403, 403, 403, 201, 201, 201],
        [401, 404, 403, 404, 403, 201, 201, 201],
        [401, 404, 404, 404, 403, 409, 409, 409]]),
    row("GET",    "/api/v1/events/{E}/attendees", "", [
        [401, 403, 403, 403, 200, 200, 200, 200],
        [401, 404, 403, 404, 200, 200, 200, 200],
        [401, 404, 404, 404, 200, 200, 200, 200]]),
    row("GET",    "/api/v1/events/{E}/attendees/{R}", "", [
        [401, 404, 200, 404, 200, 200, 200, 200],
        [401, 404, 200, 404, 200, 200, 200, 200],
        [401, 404, 404, 404, 404, 404, 404, 404]]),
    row("PATCH",  "/api/v1/events/{E}/attendees/{R}", CHECK_IN, [
        [401, 404, 403, 404, 200, 200, 200, 200],
        [401, 404, 403, 404, 200, 200, 200, 200],
        [401, 404, 404, 404, 404, 404, 404, 404]]),
    row("PATCH",  "/api/v1/events/{E}/attendees/{R}", CANCEL, [
        [401, 404, 200, 404, 403, 200, 200, 200],
        [401, 404, 200, 404, 403, 200, 200, 200],
        [401, 404, 404, 404, 404, 404, 404, 404]]),
    row("DELETE", "/api/v1/events/{E}/attendees/{R}", "", [
        [401, 404, 204, 404, 403, 204, 204, 204],
        [401, 404, 204, 404, 403, 204, 204, 204],
        [401, 404, 404, 404, 404, 404, 404, 404]]),
    row("GET",    "/api/v1/events/{E}/stats", "", [
        [401, 403, 403, 403, 200, 200, 200, 200],
        [401, 404, 403, 404, 200, 200, 200, 200],
        [401, 404, 404, 404, 200, 200, 200, 200]]),
    row("POST",   "/api/v1/events/{E}/check-ins", SCAN, [
        [401, 403, 403, 403, 200, 200, 200, 200],
        [401, 404, 403, 404, 200, 200, 200, 200],
        [401, 404, 404, 404, 409, 409, 409, 409]]),
    row("GET",    "/api/v1/events/{E}/changes", "", [
        [200, 200, 200, 200, 200, 200, 200, 200],
        [404, 404, 200, 404, 200, 200, 200, 200],
        [404, 404, 404, 404, 200, 200, 200, 200]]),
    row("GET",    "/api/v1/events/{E}/staff", "", [
        [401, 403, 403, 403, 200, 200, 200, 200],
        [401, 404, 403, 404, 200, 200, 200, 200],
        [401, 404, 404, 404, 200, 200, 200, 200]]),
    row("PUT",    "/api/v1/events/{E}/staff/{G}", CHECKER, [
        [401, 403, 403, 403, 403, 403, 201, 201],
        [401, 404, 403, 404, 403, 403, 201, 201],
        [401, 404, 404, 404, 403, 403, 201, 201]]),
    row("DELETE", "/api/v1/events/{E}/staff/{C}", "", [
        [401, 403, 403, 403, 403, 403, 204, 204],
        [401, 404, 403, 404, 403, 403, 204, 204],
        [401, 404, 404, 404, 403, 403, 204, 204]]),
    row("POST",   "/api/v1/events/{E}/invitations", SELF, [
        [401, 403, 403, 403, 403, 201, 201, 201],
        [401, 404, 403, 404, 403, 201, 201, 201],
        [401, 404, 404, 404, 403, 201, 201, 201]]),
    row("GET",    "/api/v1/events/{E}/invitations", "", [
        [401, 403, 403, 403, 403, 200, 200, 200],
        [401, 404, 403, 404, 403, 200, 200, 200],
        [401, 404, 404, 404, 403, 200, 200, 200]]),
    row("GET",    "/api/v1/events/{E}/invitations/{I}", "", [
        [401, 403, 403, 403, 403, 200, 200, 200],
        [401, 404, 403, 404, 403, 200, 200, 200],
        [401, 404, 404, 404, 403, 200, 200, 200]]),
    row("DELETE", "/api/v1/events/{E}/invitations/{I}", "", [
        [401, 403, 403, 403, 403, 204, 204, 204],
        [401, 404, 403, 404, 403, 204, 204, 204],
        [401, 404, 404, 404, 403, 204, 204, 204]]),
    row("GET",    "/api/v1/invitations/{T}", "", [
        [200, 200, 200, 200, 200, 200, 200, 200],
        [200, 200, 200, 200, 200, 200, 200, 200],
        [200, 200, 200, 200, 200, 200, 200, 200]]),
];

/// The people of the scenario; events are made afresh whenever a call changed one.
struct Cast {
    organizer: TestUser,
    attendee: TestUser,
    holder: TestUser,
    checker: TestUser,
    co_organizer: TestUser,
    stranger: TestUser,
    admin: TestUser,
    guest: TestUser,
}

impl Cast {
    fn token(&self, caller: usize) -> Option<&str> {
        let user = match caller {
            0 => return None,
            1 => &self.stranger,
            2 => &self.attendee,
            3 => &self.holder,
            4 => &self.checker,
            5 => &self.co_organizer,
            6 => &self.organizer,
            _ => &self.admin,
        };
        Some(&user.token)
    }
}

/// An event of one kind with its staff, the attendee's record and an invitation.
struct Scene {
    event: String,
    record: String,
    invitation: String,
    token: String,
}

async fn put_staff(app: &TestApp, token: &str, event: &str, user: &str, role: &str) -> u16 {
    app.send(
        app.request(
            Method::PUT,
            &format!("/api/v1/events/{event}/staff/{user}"),
            Some(token),
        )
        .json(&json!({"role": role})),
    )
    .await
    .status
}

async fn scene(app: &TestApp, cast: &Cast, kind: usize, n: usize) -> Scene {
    let organizer = cast.organizer.token.as_str();
    let mut body = json!({"title": format!("Scene {n}"), "capacity": 10, "waitlist_enabled": true});
    match KINDS[kind] {
        "public" => body["status"] = json!("published"),
        "private" => {
            body["status"] = json!("published");
            body["visibility"] = json!("private");
        }
        _ => {}
    }
    let created = app.create_event(organizer, body).await;
    created.expect(201);
    let event = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        put_staff(app, organizer, &event, &cast.checker.id, "checker").await,
        201
    );
    assert_eq!(
        put_staff(
            app,
            organizer,
            &event,
            &cast.co_organizer.id,
            "co_organizer"
        )
        .await,
        201
    );
    let record = if KINDS[kind] == "draft" {
        uuid::Uuid::now_v7().to_string()
    } else {
        let r = app
            .register_user(organizer, &event, &cast.attendee.id)
            .await;
        r.expect(201);
        r.body["id"].as_str().expect("id").to_owned()
    };
    let invitation = app
        .post(
            &format!("/api/v1/events/{event}/invitations"),
            Some(organizer),
            json!({"max_uses": 5}),
        )
        .await;
    invitation.expect(201);
    Scene {
        event,
        record,
        invitation: invitation.body["id"].as_str().expect("id").to_owned(),
        token: invitation.body["token"].as_str().expect("token").to_owned(),
    }
}

/// Everything a refused call could have touched.
#[derive(Debug, PartialEq)]
struct Snapshot {
    event: Value,
    record: Value,
    attendees: i64,
    active_attendees: i64,
    checked_in: i64,
    staff: i64,
    invitation_uses: i64,
    revoked: i64,
    invitations: i64,
    changes: i64,
    idempotency_keys: i64,
}

async fn snapshot(app: &TestApp, cast: &Cast, s: &Scene) -> Snapshot {
    let admin = Some(cast.admin.token.as_str());
    let event = app.get(&format!("/api/v1/events/{}", s.event), admin).await;
    let record = app
        .get(
            &format!("/api/v1/events/{}/attendees/{}", s.event, s.record),
            admin,
        )
        .await;
    // A problem's `request_id` differs on every call; the rest must not.
    let steady = |body: &Value| {
        let mut body = body.clone();
        if let Some(map) = body.as_object_mut() {
            map.remove("request_id");
        }
        body
    };
    Snapshot {
        event: steady(&event.body),
        record: steady(&record.body),
        attendees: app.scalar_i64("SELECT COUNT(*) FROM attendees").await,
        active_attendees: app
            .scalar_i64("SELECT COUNT(*) FROM attendees WHERE status <> 'cancelled'")
            .await,
        checked_in: app
            .scalar_i64("SELECT COUNT(*) FROM attendees WHERE checked_in_at IS NOT NULL")
            .await,
        staff: app.scalar_i64("SELECT COUNT(*) FROM event_staff").await,
        invitation_uses: app
            .scalar_i64("SELECT CAST(COALESCE(SUM(uses), 0) AS BIGINT) FROM invitations")
            .await,
        revoked: app
            .scalar_i64("SELECT COUNT(*) FROM invitations WHERE revoked_at IS NOT NULL")
            .await,
        invitations: app.scalar_i64("SELECT COUNT(*) FROM invitations").await,
        changes: app.scalar_i64("SELECT COUNT(*) FROM changes").await,
        idempotency_keys: app
            .scalar_i64("SELECT COUNT(*) FROM idempotency_keys")
            .await,
    }
}

backend_tests! {
    async fn every_event_endpoint_answers_each_role_on_each_kind_of_event_as_the_table_says(app) {
        let cast = Cast {
            organizer: app.user().await,
            attendee: app.user().await,
            holder: app.user().await,
            checker: app.user().await,
            co_organizer: app.user().await,
            stranger: app.user().await,
            admin: app.admin().await,
            guest: app.user().await,
        };
        let mut failures = Vec::new();
        let mut cells = 0;
        let mut n = 0;
        for (kind, kind_name) in KINDS.iter().enumerate() {
            // A scene is used until a call changes it.
            let mut current: Option<Scene> = None;
            for row in TABLE {
                for (caller, &expected) in row.expect[kind].iter().enumerate() {
                    cells += 1;
                    if current.is_none() {
                        n += 1;
                        current = Some(scene(&app, &cast, kind, n).await);
                    }
                    let s = current.as_ref().expect("a scene");
                    let fill = |text: &str| {
                        text.replace("{E}", &s.event)
                            .replace("{R}", &s.record)
                            .replace("{G}", &cast.guest.id)
                            .replace("{C}", &cast.checker.id)
                            .replace("{I}", &s.invitation)
                            .replace("{T}", &s.token)
                    };
                    let path = fill(row.path);
                    let label = format!(
                        "{} {} {} on a {kind_name} event as {}",
                        row.method, row.path, row.body, CALLERS[caller]
                    );
                    let before = snapshot(&app, &cast, s).await;
                    let method = Method::from_bytes(row.method.as_bytes()).expect("a method");
                    let mut rb = app.request(method, &path, cast.token(caller));
                    if row.method != "GET" {
                        rb = rb.header("idempotency-key", format!("cell-{cells}"));
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
                    }
                    if resp.status >= 400 {
                        if resp.header("content-type") != Some("application/problem+json") {
                            failures.push(format!("{label}: refusal is not a problem"));
                        }
                        if resp.status == 401 && resp.header("www-authenticate") != Some("Bearer") {
                            failures.push(format!("{label}: 401 without WWW-Authenticate: Bearer"));
                        }
                        let after = snapshot(&app, &cast, s).await;
                        if after != before {
                            failures.push(format!("{label}: refused, yet changed\n  before: {before:?}\n  after:  {after:?}"));
                        }
                    } else if row.method != "GET" {
                        current = None;
                    }
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {cells} cells differ:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}
