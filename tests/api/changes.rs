//! The change feed: every committed change recorded once, in order, readable per event,
//! globally (with a cursor that never skips), and live.

use std::time::Duration;

use futures::{StreamExt, stream};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, TestUser},
};

fn changes_path(event_id: &str) -> String {
    format!("/api/v1/events/{event_id}/changes")
}

/// Every change of an event as `viewer` sees it (all pages).
async fn changes_of(app: &TestApp, viewer: Option<&str>, event_id: &str) -> Vec<Value> {
    let mut after = 0;
    let mut all = Vec::new();
    loop {
        let resp = app
            .get(
                &format!("{}?after={after}&limit=1000", changes_path(event_id)),
                viewer,
            )
            .await;
        resp.expect(200);
        let items = resp.body["items"].as_array().expect("items").clone();
        let next = resp.body["next_after"].as_i64().expect("next_after");
        if items.is_empty() {
            assert_eq!(
                next, after,
                "an empty page leaves the position where it was"
            );
            return all;
        }
        after = next;
        all.extend(items);
    }
}

fn types(changes: &[Value]) -> Vec<&str> {
    changes
        .iter()
        .map(|c| c["type"].as_str().expect("type"))
        .collect()
}

fn seqs(changes: &[Value]) -> Vec<i64> {
    changes
        .iter()
        .map(|c| c["seq"].as_i64().expect("seq"))
        .collect()
}

async fn published(app: &TestApp, organizer: &TestUser, capacity: Option<i64>) -> String {
    app.published_event(
        &organizer.token,
        json!({"capacity": capacity, "waitlist_enabled": true}),
    )
    .await
}

/// Every change of every event through the global feed, from the start (admin), once
/// `expected` changes are served. On PostgreSQL the feed serves a change only when every
/// older transaction of the server has ended (other tests' databases included), so it may
/// take a moment.
async fn global_changes(
    app: &TestApp,
    admin: &TestUser,
    limit: u32,
    expected: usize,
) -> (Vec<Value>, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (mut all, mut cursor) = global_page_run(app, admin, limit, None).await;
    while all.len() < expected && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (more, next) = global_page_run(app, admin, limit, Some(cursor.clone())).await;
        all.extend(more);
        cursor = next;
    }
    (all, cursor)
}

/// Reads global pages from `cursor` until an empty one.
async fn global_page_run(
    app: &TestApp,
    admin: &TestUser,
    limit: u32,
    mut cursor: Option<String>,
) -> (Vec<Value>, String) {
    let mut all = Vec::new();
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/changes?limit={limit}&after={c}"),
            None => format!("/api/v1/changes?limit={limit}"),
        };
        let resp = app.get(&path, Some(&admin.token)).await;
        resp.expect(200);
        let items = resp.body["items"].as_array().expect("items").clone();
        let next = resp.body["next_cursor"]
            .as_str()
            .expect("next_cursor")
            .to_owned();
        if items.is_empty() {
            return (all, next);
        }
        all.extend(items);
        cursor = Some(next);
    }
}

/// The cursor after the first `n` changes of the global feed (all already served).
async fn cursor_after(app: &TestApp, admin: &TestUser, n: usize) -> String {
    let mut cursor: Option<String> = None;
    for _ in 0..n {
        let path = match &cursor {
            Some(c) => format!("/api/v1/changes?limit=1&after={c}"),
            None => "/api/v1/changes?limit=1".to_owned(),
        };
        let page = app.get(&path, Some(&admin.token)).await;
        page.expect(200);
        assert_eq!(page.body["items"].as_array().map(Vec::len), Some(1));
        cursor = Some(
            page.body["next_cursor"]
                .as_str()
                .expect("cursor")
                .to_owned(),
        );
    }
    cursor.expect("n > 0")
}

/// The global feed after `cursor`, once `expected` changes are served.
async fn global_changes_from(
    app: &TestApp,
    admin: &TestUser,
    cursor: &str,
    expected: usize,
) -> (Vec<Value>, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut all = Vec::new();
    let mut cursor = cursor.to_owned();
    loop {
        let (more, next) = global_page_run(app, admin, 100, Some(cursor.clone())).await;
        all.extend(more);
        cursor = next;
        if all.len() >= expected || std::time::Instant::now() > deadline {
            return (all, cursor);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn keys(changes: &[Value]) -> Vec<(String, i64)> {
    changes
        .iter()
        .map(|c| {
            (
                c["event_id"].as_str().expect("event_id").to_owned(),
                c["seq"].as_i64().expect("seq"),
            )
        })
        .collect()
}

backend_tests! {
    async fn creating_an_event_records_event_created_as_seq_1_with_the_event_as_data(app) {
        let organizer = app.user().await;
        let resp = app.create_event(&organizer.token, json!({"capacity": 10})).await;
        resp.expect(201);
        let id = resp.body["id"].as_str().expect("id");
        let changes = changes_of(&app, Some(&organizer.token), id).await;
        assert_eq!(types(&changes), ["event.created"]);
        let created = &changes[0];
        assert_eq!(created["seq"], 1);
        assert_eq!(created["event_id"], id);
        assert_eq!(created["actor_id"], json!(organizer.id));
        assert_eq!(created["data"]["title"], resp.body["title"]);
        assert_eq!(
            created["counts"],
            json!({"confirmed_count": 0, "waitlist_count": 0, "available_seats": 10})
        );
        assert!(created["occurred_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    }

    async fn a_capacity_raise_and_a_cancellation_record_their_promotions_after_themselves(app) {
        let organizer = app.user().await;
        let event = published(&app, &organizer, Some(2)).await;
        let users = [app.user().await, app.user().await, app.user().await, app.user().await];
        let mut records = Vec::new();
        for u in &users {
            let r = app.register(&u.token, &event).await;
            r.expect(201);
            records.push(r.body["id"].as_str().expect("id").to_owned());
        }
        // Two seats and two in the queue. One more seat promotes the oldest waitlisted.
        app.patch(
            &format!("/api/v1/events/{event}"),
            Some(&organizer.token),
            json!([{"op": "replace", "path": "/capacity", "value": 3}]),
            None,
        )
        .await
        .expect(200);
        // Cancelling a confirmed attendee promotes the last one in the queue.
        app.delete(
            &format!("/api/v1/events/{event}/attendees/{}", records[0]),
            Some(&users[0].token),
        )
        .await
        .expect(204);
        let changes = changes_of(&app, Some(&organizer.token), &event).await;
        assert_eq!(
            types(&changes),
            [
                "event.created",
                "attendee.registered",
                "attendee.registered",
                "attendee.registered",
                "attendee.registered",
                "event.updated",
                "attendee.promoted",
                "attendee.cancelled",
                "attendee.promoted",
            ]
        );
        assert_eq!(changes[6]["data"]["user_id"], json!(users[2].id));
        assert_eq!(changes[7]["data"]["user_id"], json!(users[0].id));
        assert_eq!(changes[7]["data"]["status"], "cancelled");
        assert_eq!(changes[8]["data"]["user_id"], json!(users[3].id));
        assert_eq!(changes[8]["data"]["status"], "confirmed");
        let expected: Vec<i64> = (1..=9).collect();
        assert_eq!(seqs(&changes), expected, "seq counts from 1 without gaps");
        // The changes of one write all carry the counts after that write.
        assert_eq!(changes[7]["counts"], changes[8]["counts"]);
        assert_eq!(
            changes[8]["counts"],
            json!({"confirmed_count": 3, "waitlist_count": 0, "available_seats": 0})
        );
    }

    async fn cancelling_with_two_waitlisted_behind_a_capacity_raise_promotes_both_in_queue_order(app) {
        let organizer = app.user().await;
        let event = published(&app, &organizer, Some(1)).await;
        let users = [app.user().await, app.user().await, app.user().await];
        for u in &users {
            app.register(&u.token, &event).await.expect(201);
        }
        app.patch(
            &format!("/api/v1/events/{event}"),
            Some(&organizer.token),
            json!([{"op": "remove", "path": "/capacity"}]),
            None,
        )
        .await
        .expect(200);
        let changes = changes_of(&app, Some(&organizer.token), &event).await;
        let tail: Vec<&str> = types(&changes).into_iter().rev().take(3).rev().collect();
        assert_eq!(tail, ["event.updated", "attendee.promoted", "attendee.promoted"]);
        let n = changes.len();
        assert_eq!(changes[n - 2]["data"]["user_id"], json!(users[1].id));
        assert_eq!(changes[n - 1]["data"]["user_id"], json!(users[2].id));
    }

    async fn refused_and_failed_writes_record_no_change(app) {
        let organizer = app.user().await;
        let full = app
            .published_event(&organizer.token, json!({"capacity": 1, "waitlist_enabled": false}))
            .await;
        let first = app.user().await;
        app.register(&first.token, &full).await.expect(201);
        let before = changes_of(&app, Some(&organizer.token), &full).await;
        // Full without a waitlist: 409 after the seat UPDATE matched nothing.
        app.register(&app.user().await.token, &full).await.expect(409);
        // Registering twice: 409 after the place was taken, so the transaction rolls back.
        app.register(&first.token, &full).await.expect(409);
        // A patch that breaks a rule: 409, and one that fails its test: 422.
        app.patch(
            &format!("/api/v1/events/{full}"),
            Some(&organizer.token),
            json!([{"op": "replace", "path": "/status", "value": "draft"}]),
            None,
        )
        .await
        .expect(409);
        app.patch(
            &format!("/api/v1/events/{full}"),
            Some(&organizer.token),
            json!([
                {"op": "replace", "path": "/title", "value": "New"},
                {"op": "test", "path": "/location", "value": "nowhere"}
            ]),
            None,
        )
        .await
        .expect(422);
        // A patch that changes nothing is not a change.
        app.patch(&format!("/api/v1/events/{full}"), Some(&organizer.token), json!([]), None)
            .await
            .expect(200);
        let after = changes_of(&app, Some(&organizer.token), &full).await;
        assert_eq!(after, before, "no change recorded for writes that did not commit");
        let seq: i64 = app.scalar_i64("SELECT MAX(change_seq) FROM events").await;
        assert_eq!(seq, before.len() as i64, "the counter did not move either");
    }

    async fn anonymous_viewers_and_attendees_see_counts_only_on_attendee_changes(app) {
        let organizer = app.user().await;
        let event = published(&app, &organizer, Some(5)).await;
        let attendee = app.user().await;
        app.register(&attendee.token, &event).await.expect(201);
        for viewer in [None, Some(attendee.token.as_str())] {
            let changes = changes_of(&app, viewer, &event).await;
            assert_eq!(types(&changes), ["event.created", "attendee.registered"]);
            assert!(changes[0]["data"].is_object(), "the event itself is visible");
            assert_eq!(changes[1]["data"], Value::Null);
            assert_eq!(changes[1]["actor_id"], Value::Null);
            assert_eq!(changes[1]["counts"]["confirmed_count"], 1);
            assert_eq!(changes[1]["counts"]["available_seats"], 4);
        }
        let admin = app.admin().await;
        for viewer in [&organizer.token, &admin.token] {
            let changes = changes_of(&app, Some(viewer), &event).await;
            assert_eq!(changes[1]["data"]["user_id"], json!(attendee.id));
            assert_eq!(changes[1]["actor_id"], json!(attendee.id));
        }
    }

    async fn a_drafts_changes_are_404_to_everyone_but_its_organizer_and_admins(app) {
        let organizer = app.user().await;
        let draft = app.create_event(&organizer.token, json!({})).await;
        let id = draft.body["id"].as_str().expect("id");
        app.get(&changes_path(id), None).await.expect_problem(404);
        app.get(&changes_path(id), Some(&app.user().await.token))
            .await
            .expect_problem(404);
        app.get(&changes_path(id), Some(&organizer.token)).await.expect(200);
        app.get(&changes_path(id), Some(&app.admin().await.token))
            .await
            .expect(200);
        app.get(&changes_path(&uuid::Uuid::now_v7().to_string()), None)
            .await
            .expect_problem(404);
    }

    async fn a_deleted_event_keeps_its_changes_readable_ending_with_event_deleted(app) {
        let organizer = app.user().await;
        let event = published(&app, &organizer, None).await;
        let attendee = app.user().await;
        app.register(&attendee.token, &event).await.expect(201);
        app.delete(&format!("/api/v1/events/{event}"), Some(&organizer.token))
            .await
            .expect(204);
        let changes = changes_of(&app, None, &event).await;
        assert_eq!(
            types(&changes),
            ["event.created", "attendee.registered", "event.deleted"]
        );
        let deleted = &changes[2];
        assert_eq!(deleted["data"]["id"], json!(event));
        assert_eq!(deleted["data"]["status"], "published", "its last state");
        assert_eq!(deleted["actor_id"], json!(organizer.id));
    }

    async fn seq_stays_gap_free_under_200_concurrent_registrations(app) {
        let organizer = app.user().await;
        let event = published(&app, &organizer, Some(20)).await;
        let users: Vec<TestUser> = stream::iter(0..200)
            .map(|_| app.user())
            .buffer_unordered(16)
            .collect()
            .await;
        let path = format!("/api/v1/events/{event}/attendees");
        let statuses: Vec<u16> = futures::future::join_all(
            users.iter().map(|u| async { app.post(&path, Some(&u.token), json!({})).await.status }),
        )
        .await;
        assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
        let changes = changes_of(&app, Some(&organizer.token), &event).await;
        assert_eq!(changes.len(), 201);
        let expected: Vec<i64> = (1..=201).collect();
        assert_eq!(seqs(&changes), expected);
        // The counts of consecutive registrations move by exactly one place each.
        for pair in changes[1..].windows(2) {
            let (a, b) = (&pair[0]["counts"], &pair[1]["counts"]);
            let total = |c: &Value| {
                c["confirmed_count"].as_i64().expect("n") + c["waitlist_count"].as_i64().expect("n")
            };
            assert_eq!(total(b), total(a) + 1, "{a} then {b}");
        }
    }

    async fn the_global_feed_is_for_administrators_and_pages_without_skipping_or_repeating(app) {
        let organizer = app.user().await;
        app.get("/api/v1/changes", None).await.expect_problem(401);
        app.get("/api/v1/changes", Some(&organizer.token))
            .await
            .expect_problem(403);
        let admin = app.admin().await;
        let a = published(&app, &organizer, Some(3)).await;
        let b = published(&app, &organizer, None).await;
        for _ in 0..3 {
            let u = app.user().await;
            app.register(&u.token, &a).await.expect(201);
            app.register(&u.token, &b).await.expect(201);
        }
        let (all, cursor) = global_changes(&app, &admin, 2, 8).await;
        assert_eq!(all.len(), 8);
        let mut seen = keys(&all);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 8, "no change twice");
        assert!(all.iter().all(|c| c["data"].is_object()), "admins see everything");
        // Later changes come after the cursor, and only they.
        app.delete(&format!("/api/v1/events/{b}"), Some(&organizer.token))
            .await
            .expect(204);
        let (after, _) = global_changes_from(&app, &admin, &cursor, 1).await;
        assert_eq!(types(&after), ["event.deleted"]);
    }

    async fn a_cursor_that_is_not_ours_is_400(app) {
        let admin = app.admin().await;
        for bad in ["nonsense", "djE6LTE6MA", "", "djE6MTox%3A"] {
            let resp = app
                .get(&format!("/api/v1/changes?after={bad}"), Some(&admin.token))
                .await;
            resp.expect_problem(400);
        }
    }

    async fn changes_past_retention_answer_410_changes_expired(app) {
        let organizer = app.user().await;
        let admin = app.admin().await;
        let event = published(&app, &organizer, None).await;
        app.register(&app.user().await.token, &event).await.expect(201);
        app.register(&app.user().await.token, &event).await.expect(201);
        let (all, _) = global_changes(&app, &admin, 100, 3).await;
        assert_eq!(all.len(), 3);
        let after_first = cursor_after(&app, &admin, 1).await;
        let after_second = cursor_after(&app, &admin, 2).await;
        // Age the first two changes past the retention period, then sweep.
        let thirty_years_earlier = match app.backend {
            Backend::Postgres => "occurred_at - interval '30 years'",
            Backend::Sqlite => "'1996' || substr(occurred_at, 5)",
        };
        app.db
            .execute_unprepared(&format!(
                "UPDATE changes SET occurred_at = {thirty_years_earlier} WHERE seq <= 2"
            ))
            .await
            .expect("ageing changes");
        assert_eq!(app.state.changes.sweep().await.expect("sweep"), 2);
        for after in [0, 1] {
            let resp = app.get(&format!("{}?after={after}", changes_path(&event)), None).await;
            resp.expect_problem(410);
            assert_eq!(resp.body["type"], "urn:problem:event-manager:changes-expired");
        }
        let resp = app.get(&format!("{}?after=2", changes_path(&event)), None).await;
        resp.expect(200);
        assert_eq!(seqs(resp.body["items"].as_array().expect("items")), [3]);
        // A client that had seen only the first change missed the second: 410. One that had
        // seen both goes on.
        app.get(&format!("/api/v1/changes?after={after_first}"), Some(&admin.token))
            .await
            .expect_problem(410);
        let resp = app
            .get(&format!("/api/v1/changes?after={after_second}"), Some(&admin.token))
            .await;
        resp.expect(200);
        assert_eq!(seqs(resp.body["items"].as_array().expect("items")), [3]);
    }

    async fn a_stream_sends_the_snapshot_then_changes_and_resumes_after_last_event_id(app) {
        let organizer = app.user().await;
        let event = published(&app, &organizer, Some(1)).await;
        let mut sse = Sse::open(&app, &event, None, None).await;
        let snapshot = sse.next().await;
        assert_eq!(snapshot.event, "snapshot");
        assert_eq!(snapshot.id.as_deref(), Some("1"));
        assert_eq!(snapshot.data["seq"], 1);
        assert_eq!(snapshot.data["counts"]["available_seats"], 1);
        let first = app.user().await;
        app.register(&first.token, &event).await.expect(201);
        let second = app.user().await;
        app.register(&second.token, &event).await.expect(201);
        let a = sse.next().await;
        let b = sse.next().await;
        assert_eq!((a.event.as_str(), a.id.as_deref()), ("attendee.registered", Some("2")));
        assert_eq!((b.event.as_str(), b.id.as_deref()), ("attendee.registered", Some("3")));
        assert_eq!(b.data["counts"]["waitlist_count"], 1);
        assert_eq!(b.data["data"], Value::Null, "an anonymous stream sees counts only");
        drop(sse);
        // Reconnect as a browser does: everything after seq 2, nothing lost.
        let mut resumed = Sse::open(&app, &event, Some("2"), Some(&organizer.token)).await;
        assert_eq!(resumed.next().await.event, "snapshot");
        let again = resumed.next().await;
        assert_eq!(again.id.as_deref(), Some("3"));
        assert_eq!(again.data["data"]["user_id"], json!(second.id));
    }

    async fn a_stream_of_a_draft_is_404_for_strangers_and_bad_last_event_ids_are_400(app) {
        let organizer = app.user().await;
        let draft = app.create_event(&organizer.token, json!({})).await;
        let id = draft.body["id"].as_str().expect("id");
        let resp = app.get(&format!("/api/v1/events/{id}/stream"), None).await;
        resp.expect_problem(404);
        let event = published(&app, &organizer, None).await;
        let resp = app
            .send(
                app.request(reqwest::Method::GET, &format!("/api/v1/events/{event}/stream"), None)
                    .header("last-event-id", "x"),
            )
            .await;
        resp.expect_problem(400);
    }

    async fn streams_beyond_max_streams_get_503_with_retry_after(app) {
        let organizer = app.user().await;
        let event = published(&app, &organizer, None).await;
        // Test servers allow 4 streams (tests/api/helpers.rs).
        let mut open = Vec::new();
        for _ in 0..4 {
            let mut s = Sse::open(&app, &event, None, None).await;
            assert_eq!(s.next().await.event, "snapshot");
            open.push(s);
        }
        let refused = app.get(&format!("/api/v1/events/{event}/stream"), None).await;
        refused.expect_problem(503);
        assert!(refused.header("retry-after").is_some());
        assert_eq!(refused.body["type"], "urn:problem:event-manager:too-many-streams");
        drop(open.pop());
        // The server learns that a client went away when a write to it fails: after a change
        // or two (or the 15 s heartbeats). Then the place is given back.
        let mut again = None;
        for _ in 0..50 {
            app.register(&app.user().await.token, &event).await.expect(201);
            tokio::time::sleep(Duration::from_millis(20)).await;
            let probe = app
                .client
                .get(app.url(&format!("/api/v1/events/{event}/stream")))
                .send()
                .await
                .expect("request");
            if probe.status() == 200 {
                again = Some(probe);
                break;
            }
        }
        assert!(again.is_some(), "a stream place was given back");
    }
}

/// One message of a Server-Sent Events stream.
#[derive(Debug)]
pub struct SseMessage {
    pub event: String,
    pub id: Option<String>,
    pub data: Value,
}

/// A client of `GET /events/{id}/stream` that reads messages one at a time.
pub struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    pub async fn open(
        app: &TestApp,
        event_id: &str,
        last_event_id: Option<&str>,
        token: Option<&str>,
    ) -> Sse {
        let mut rb = app.request(
            reqwest::Method::GET,
            &format!("/api/v1/events/{event_id}/stream"),
            token,
        );
        if let Some(id) = last_event_id {
            rb = rb.header("last-event-id", id);
        }
        let response = rb.send().await.expect("stream request");
        Self::from_response(response)
    }

    /// A stream already requested.
    pub fn from_response(response: reqwest::Response) -> Sse {
        assert_eq!(response.status(), 200);
        assert!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("text/event-stream"))
        );
        Sse {
            response,
            buffer: String::new(),
        }
    }

    /// The next message (comments skipped); fails the test after 5 s.
    pub async fn next(&mut self) -> SseMessage {
        tokio::time::timeout(Duration::from_secs(5), self.read())
            .await
            .expect("a stream message within 5 s")
    }

    async fn read(&mut self) -> SseMessage {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = "message".to_owned();
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a heartbeat comment
                }
                return SseMessage {
                    event,
                    id,
                    data: serde_json::from_str(&data).expect("JSON data"),
                };
            }
            let chunk = self
                .response
                .chunk()
                .await
                .expect("stream chunk")
                .expect("the stream stays open");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

/// Every mutating operation of the API and the changes one successful call records. A new
/// write endpoint fails `every_mutating_endpoint_is_accounted_for` until it is listed here,
/// so none can commit without deciding what it records.
const WRITES: &[(&str, &str, &[&str])] = &[
    ("post", "/api/v1/users", &[]),
    ("post", "/api/v1/auth/token", &[]),
    ("post", "/api/v1/auth/refresh", &[]),
    ("post", "/api/v1/auth/logout", &[]),
    ("patch", "/api/v1/users/{id}", &[]),
    // Deleting a user cancels their registrations: see the test below.
    ("delete", "/api/v1/users/{id}", &["attendee.cancelled"]),
    ("post", "/api/v1/events", &["event.created"]),
    ("patch", "/api/v1/events/{id}", &["event.updated"]),
    ("delete", "/api/v1/events/{id}", &["event.deleted"]),
    (
        "post",
        "/api/v1/events/{id}/attendees",
        &["attendee.registered"],
    ),
    (
        "patch",
        "/api/v1/events/{id}/attendees/{attendee_id}",
        &["attendee.checked_in"],
    ),
    (
        "delete",
        "/api/v1/events/{id}/attendees/{attendee_id}",
        &["attendee.cancelled"],
    ),
    (
        "put",
        "/api/v1/events/{id}/staff/{user_id}",
        &["staff.changed"],
    ),
    (
        "delete",
        "/api/v1/events/{id}/staff/{user_id}",
        &["staff.changed"],
    ),
    (
        "post",
        "/api/v1/events/{id}/invitations",
        &["invitation.created"],
    ),
    (
        "delete",
        "/api/v1/events/{id}/invitations/{invitation_id}",
        &["invitation.revoked"],
    ),
    (
        "post",
        "/api/v1/events/{id}/check-ins",
        &["attendee.checked_in"],
    ),
    // The upload queues a job; its worker records each imported event's `event.created`
    // in the job's transaction (tests/api/imports.rs), not the request.
    ("post", "/api/v1/imports", &[]),
    // Webhooks are the caller's own configuration, not a change of an event.
    ("post", "/api/v1/webhooks", &[]),
    ("patch", "/api/v1/webhooks/{id}", &[]),
    ("delete", "/api/v1/webhooks/{id}", &[]),
    (
        "post",
        "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
        &[],
    ),
];

backend_tests! {
    async fn every_mutating_endpoint_is_accounted_for(app) {
        let spec = app.get("/openapi.json", None).await.body;
        let mut missing = Vec::new();
        for (path, item) in spec["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("operations").keys() {
                if matches!(method.as_str(), "post" | "patch" | "put" | "delete")
                    && !WRITES.iter().any(|(m, p, _)| m == method && p == path)
                {
                    missing.push(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "write endpoints with no decision about the changes they record: {missing:?}"
        );
    }

    async fn every_write_to_an_event_or_its_attendees_records_its_change(app) {
        let organizer = app.user().await;
        let attendee = app.user().await;
        let created = app
            .create_event(&organizer.token, json!({"status": "published", "capacity": 5}))
            .await;
        created.expect(201);
        let event = created.body["id"].as_str().expect("id").to_owned();
        let registered = app.register(&attendee.token, &event).await;
        registered.expect(201);
        let record = registered.body["id"].as_str().expect("id").to_owned();
        app.patch(
            &format!("/api/v1/events/{event}/attendees/{record}"),
            Some(&organizer.token),
            json!([{"op": "replace", "path": "/status", "value": "checked_in"}]),
            None,
        )
        .await
        .expect(200);
        app.delete(
            &format!("/api/v1/events/{event}/attendees/{record}"),
            Some(&organizer.token),
        )
        .await
        .expect(204);
        app.patch(
            &format!("/api/v1/events/{event}"),
            Some(&organizer.token),
            json!([{"op": "replace", "path": "/title", "value": "Renamed"}]),
            None,
        )
        .await
        .expect(200);
        let helper = app.user().await;
        let staff = format!("/api/v1/events/{event}/staff/{}", helper.id);
        app.send(
            app.request(reqwest::Method::PUT, &staff, Some(&organizer.token))
                .json(&json!({"role": "checker"})),
        )
        .await
        .expect(201);
        app.delete(&staff, Some(&organizer.token)).await.expect(204);
        let invitation = app
            .post(
                &format!("/api/v1/events/{event}/invitations"),
                Some(&organizer.token),
                json!({}),
            )
            .await;
        invitation.expect(201);
        app.delete(
            invitation.header("location").expect("Location"),
            Some(&organizer.token),
        )
        .await
        .expect(204);
        let door = app.register(&helper.token, &event).await;
        door.expect(201);
        app.post(
            &format!("/api/v1/events/{event}/check-ins"),
            Some(&organizer.token),
            json!({"scans": [{"attendee_id": door.body["id"]}]}),
        )
        .await
        .expect(200);
        let leaver = app.user().await;
        app.register(&leaver.token, &event).await.expect(201);
        app.delete(&format!("/api/v1/users/{}", leaver.id), Some(&leaver.token))
            .await
            .expect(204);
        app.delete(&format!("/api/v1/events/{event}"), Some(&organizer.token))
            .await
            .expect(204);
        let changes = changes_of(&app, None, &event).await;
        let expected: Vec<&str> = [
            "event.created",
            "attendee.registered",
            "attendee.checked_in",
            "attendee.cancelled",
            "event.updated",
            "staff.changed",
            "staff.changed",
            "invitation.created",
            "invitation.revoked",
            "attendee.registered",
            "attendee.checked_in",
            "attendee.registered",
            "attendee.cancelled",
            "event.deleted",
        ]
        .to_vec();
        assert_eq!(types(&changes), expected);
        for (method, path, kinds) in WRITES {
            for kind in *kinds {
                assert!(
                    expected.contains(kind),
                    "{method} {path} is exercised above ({kind})"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "TEST_DATABASE_URL is unset: PostgreSQL not tested"
)]
async fn postgres_the_global_cursor_never_skips_a_change_that_commits_late() {
    let app = crate::helpers::postgres_app().await;
    let admin = app.admin().await;
    let organizer = app.user().await;
    let early = published(&app, &organizer, None).await;
    let late = published(&app, &organizer, None).await;
    let (before, cursor) = global_changes(&app, &admin, 100, 2).await;
    assert_eq!(before.len(), 2);

    // A write that takes its change's id first and commits last, as a slow transaction on
    // another instance would.
    let held = uncommitted_change(&app, &early, 2).await;

    // Meanwhile, later transactions commit (with larger ids).
    for _ in 0..3 {
        app.register(&app.user().await.token, &late)
            .await
            .expect(201);
    }
    let mut seen = before.clone();
    let mut cursor = cursor;
    let page = app
        .get(
            &format!("/api/v1/changes?after={cursor}"),
            Some(&admin.token),
        )
        .await;
    page.expect(200);
    let items = page.body["items"].as_array().expect("items").clone();
    assert!(
        items.is_empty(),
        "nothing after a transaction still running is served yet: {items:?}"
    );
    cursor = page.body["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();

    held.commit().await.expect("commit");
    let (after, _) = global_changes_from(&app, &admin, &cursor, 4).await;
    seen.extend(after);
    let mut got = keys(&seen);
    got.sort();
    let mut all = vec![(early.clone(), 1), (early.clone(), 2), (late.clone(), 1)];
    all.extend((2..=4).map(|s| (late.clone(), s)));
    all.sort();
    assert_eq!(
        got, all,
        "every committed change once, the late one included"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "TEST_DATABASE_URL is unset: PostgreSQL not tested"
)]
async fn postgres_a_change_through_one_instance_reaches_a_stream_on_another_within_1_s() {
    let a = crate::helpers::postgres_app().await;
    let b = a.second_instance().await;
    let organizer = a.user().await;
    let event = published(&a, &organizer, None).await;
    let mut sse = Sse::open(&b, &event, None, Some(&organizer.token)).await;
    assert_eq!(sse.next().await.event, "snapshot");
    let attendee = a.user().await;
    let sent = std::time::Instant::now();
    a.register(&attendee.token, &event).await.expect(201);
    let message = tokio::time::timeout(Duration::from_secs(1), sse.read())
        .await
        .expect("the change reached the other instance within 1 s");
    assert_eq!(message.event, "attendee.registered");
    assert_eq!(message.data["data"]["user_id"], json!(attendee.id));
    assert!(sent.elapsed() < Duration::from_secs(1));
}

/// A write in progress: the event row advanced and locked, an `event.updated` change with
/// `seq` inserted, nothing committed yet.
async fn uncommitted_change(app: &TestApp, event: &str, seq: i64) -> sea_orm::DatabaseTransaction {
    let held = sea_orm::TransactionTrait::begin(&app.db)
        .await
        .expect("begin");
    held.execute_unprepared(&format!(
        "UPDATE events SET change_seq = change_seq + 1 WHERE id = '{event}'"
    ))
    .await
    .expect("bump");
    held.execute_unprepared(&format!(
        "INSERT INTO changes (event_id, seq, kind, occurred_at, actor_id, confirmed_count, \
         waitlist_count, capacity, data) VALUES ('{event}', {seq}, 'event.updated', now(), NULL, \
         0, 0, NULL, '{{}}')"
    ))
    .await
    .expect("insert");
    held
}

/// The `event_changes` notifications (their event ids) that arrive within `window`.
async fn notifications_within(
    listener: &mut sea_orm::sqlx::postgres::PgListener,
    window: Duration,
) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, listener.recv()).await {
        got.push(n.payload().to_owned());
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "TEST_DATABASE_URL is unset: PostgreSQL not tested"
)]
async fn postgres_only_writes_to_followed_events_notify_and_a_stopped_instance_stops_them() {
    let a = crate::helpers::postgres_app().await;
    let b = a.second_instance().await;
    let organizer = a.user().await;
    let followed = published(&a, &organizer, None).await;
    let unfollowed = published(&a, &organizer, None).await;
    let mut listener = sea_orm::sqlx::postgres::PgListener::connect(a.database_url())
        .await
        .expect("listener");
    listener.listen("event_changes").await.expect("listen");
    let registered = |m: &SseMessage, user: &TestUser| {
        assert_eq!(m.event, "attendee.registered");
        assert_eq!(m.data["data"]["user_id"], json!(user.id));
    };

    let mut sse = Sse::open(&b, &followed, None, Some(&organizer.token)).await;
    assert_eq!(sse.next().await.event, "snapshot");
    a.register(&a.user().await.token, &unfollowed)
        .await
        .expect(201);
    let first = a.user().await;
    a.register(&first.token, &followed).await.expect(201);
    let got = notifications_within(&mut listener, Duration::from_millis(800)).await;
    assert_eq!(
        got,
        vec![followed.clone()],
        "a notification for the followed event only"
    );
    registered(&sse.next().await, &first);

    // An instance that stops takes its records with it: nobody is woken for nothing.
    b.state
        .changes
        .hub()
        .forget_followers()
        .await
        .expect("forget");
    let second = a.user().await;
    a.register(&second.token, &followed).await.expect(201);
    let got = notifications_within(&mut listener, Duration::from_millis(500)).await;
    assert!(got.is_empty(), "no follower, no notification: {got:?}");

    // Records lost while streams were open (expired during an outage) are written again by
    // the refresh, and what committed unannounced meanwhile is read from the table.
    b.state
        .changes
        .hub()
        .refresh_followers()
        .await
        .expect("refresh");
    registered(&sse.next().await, &second);
    let third = a.user().await;
    a.register(&third.token, &followed).await.expect(201);
    let got = notifications_within(&mut listener, Duration::from_millis(800)).await;
    assert_eq!(got, vec![followed.clone()]);
    registered(&sse.next().await, &third);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "TEST_DATABASE_URL is unset: PostgreSQL not tested"
)]
async fn postgres_a_change_committing_while_another_instance_starts_following_reaches_its_stream() {
    let a = crate::helpers::postgres_app().await;
    let b = a.second_instance().await;
    let organizer = a.user().await;
    let event = published(&a, &organizer, None).await;

    // A write in progress on A's side: its change is inserted (its trigger has run, with
    // nobody following) but not committed.
    let held = uncommitted_change(&a, &event, 2).await;

    // B starts following meanwhile; the write commits while it does.
    let opening = {
        let b_base = b.url("");
        let token = organizer.token.clone();
        let event = event.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .get(format!("{b_base}/api/v1/events/{event}/stream"))
                .bearer_auth(token)
                .send()
                .await
                .expect("stream request")
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    held.commit().await.expect("commit");
    let response = opening.await.expect("opened");
    assert_eq!(response.status(), 200);
    let mut sse = Sse::from_response(response);
    assert_eq!(sse.next().await.event, "snapshot");
    let message = tokio::time::timeout(Duration::from_secs(2), sse.read())
        .await
        .expect("the change that committed meanwhile reached the stream");
    assert_eq!(message.id.as_deref(), Some("2"));
    assert_eq!(message.event, "event.updated");
}
