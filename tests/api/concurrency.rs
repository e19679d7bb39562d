//! Capacity, uniqueness and waitlist order under hundreds of simultaneous requests.

use std::collections::BTreeSet;

use event_manager::entity::{attendee, event};
use futures::{StreamExt, stream};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    backend_tests,
    helpers::{TestApp, TestUser},
};

/// Signs up `n` users, a few at a time.
async fn many_users(app: &TestApp, n: usize) -> Vec<TestUser> {
    stream::iter(0..n)
        .map(|_| app.user())
        .buffer_unordered(16)
        .collect()
        .await
}

/// A published event with this capacity and a waitlist; returns its id.
async fn published_event(
    app: &TestApp,
    organizer: &TestUser,
    capacity: Option<i64>,
    waitlist: bool,
) -> String {
    let resp = app
        .post(
            "/api/v1/events",
            Some(&organizer.token),
            json!({
                "title": "Concert",
                "starts_at": "2030-01-01T18:00:00Z",
                "ends_at": "2030-01-01T23:00:00Z",
                "capacity": capacity,
                "waitlist_enabled": waitlist,
                "status": "published"
            }),
        )
        .await;
    resp.expect(201);
    resp.body["id"].as_str().expect("id").to_owned()
}

/// Sends all registrations at once and returns their responses in user order.
async fn register_all(app: &TestApp, event_id: &str, users: &[TestUser]) -> Vec<(u16, Value)> {
    let path = format!("/api/v1/events/{event_id}/attendees");
    let requests = users.iter().map(|u| {
        let path = path.clone();
        async move {
            let r = app.post(&path, Some(&u.token), json!({})).await;
            (r.status, r.body)
        }
    });
    futures::future::join_all(requests).await
}

/// Checks, from the database itself, every invariant of an event's attendance: counters
/// match the records, never more confirmed than seats, waitlist positions exactly 1..n,
/// one record per user, no one queued while a seat is free.
async fn assert_invariants(app: &TestApp, event_id: &str) -> (event::Model, Vec<attendee::Model>) {
    let id = Uuid::parse_str(event_id).expect("uuid");
    let ev = event::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("event exists");
    let records = attendee::Entity::find()
        .filter(attendee::Column::EventId.eq(id))
        .all(&app.db)
        .await
        .expect("query");
    let confirmed = records.iter().filter(|a| a.status.holds_seat()).count() as i32;
    let mut positions: Vec<i32> = records
        .iter()
        .filter(|a| a.status == attendee::AttendeeStatus::Waitlisted)
        .map(|a| {
            a.waitlist_position
                .expect("waitlisted records have a position")
        })
        .collect();
    positions.sort_unstable();
    assert_eq!(
        ev.confirmed_count, confirmed,
        "confirmed_count matches the records"
    );
    assert_eq!(
        ev.waitlist_count as usize,
        positions.len(),
        "waitlist_count matches the records"
    );
    if let Some(capacity) = ev.capacity {
        assert!(
            confirmed <= capacity,
            "{confirmed} confirmed for {capacity} seats"
        );
        if !positions.is_empty() {
            assert_eq!(confirmed, capacity, "no one waits while a seat is free");
        }
    } else {
        assert!(positions.is_empty(), "an unlimited event has no queue");
    }
    let expected: Vec<i32> = (1..=positions.len() as i32).collect();
    assert_eq!(positions, expected, "waitlist positions are exactly 1..n");
    for a in records
        .iter()
        .filter(|a| a.status != attendee::AttendeeStatus::Waitlisted)
    {
        assert_eq!(
            a.waitlist_position, None,
            "only waitlisted records have a position"
        );
    }
    let users: BTreeSet<_> = records.iter().map(|a| a.user_id).collect();
    assert_eq!(users.len(), records.len(), "one record per user and event");
    (ev, records)
}

backend_tests! {
    async fn two_hundred_simultaneous_registrations_fill_twenty_seats_and_queue_the_rest(app) {
        let organizer = app.user().await;
        let event_id = published_event(&app, &organizer, Some(20), true).await;
        let users = many_users(&app, 200).await;

        let responses = register_all(&app, &event_id, &users).await;

        for (status, body) in &responses {
            assert_eq!(*status, 201, "every registration is accepted: {body}");
        }
        let confirmed = responses.iter().filter(|(_, b)| b["status"] == "confirmed").count();
        let mut positions: Vec<i64> = responses
            .iter()
            .filter(|(_, b)| b["status"] == "waitlisted")
            .map(|(_, b)| b["waitlist_position"].as_i64().expect("position"))
            .collect();
        positions.sort_unstable();
        assert_eq!(confirmed, 20);
        assert_eq!(positions, (1..=180).collect::<Vec<_>>(), "positions handed out are 1..180");
        let (ev, _) = assert_invariants(&app, &event_id).await;
        assert_eq!((ev.confirmed_count, ev.waitlist_count), (20, 180));
    }

    async fn one_user_registering_sixteen_times_at_once_gets_one_seat(app) {
        let organizer = app.user().await;
        let event_id = published_event(&app, &organizer, Some(5), true).await;
        let user = app.user().await;
        let same_user = vec![user; 16];

        let responses = register_all(&app, &event_id, &same_user).await;

        let created = responses.iter().filter(|(s, _)| *s == 201).count();
        let conflicts = responses.iter().filter(|(s, _)| *s == 409).count();
        assert_eq!((created, conflicts), (1, 15), "responses: {responses:?}");
        let (ev, records) = assert_invariants(&app, &event_id).await;
        assert_eq!(records.len(), 1);
        assert_eq!(ev.confirmed_count, 1);
    }

    async fn simultaneous_cancellations_promote_exactly_as_many_of_the_oldest_waitlisted(app) {
        let organizer = app.user().await;
        let event_id = published_event(&app, &organizer, Some(20), true).await;
        let users = many_users(&app, 40).await;
        // Register one by one so that the queue order is known.
        let mut records = Vec::new();
        for u in &users {
            let r = app
                .post(&format!("/api/v1/events/{event_id}/attendees"), Some(&u.token), json!({}))
                .await;
            r.expect(201);
            records.push(r.body.clone());
        }
        let confirmed: Vec<_> = users.iter().zip(&records).filter(|(_, r)| r["status"] == "confirmed").collect();
        assert_eq!(confirmed.len(), 20);

        let app = &app;
        let cancellations = confirmed.iter().take(12).map(|(u, r)| {
            let path = format!("/api/v1/events/{event_id}/attendees/{}", r["id"].as_str().expect("id"));
            async move { app.delete(&path, Some(&u.token)).await.status }
        });
        let statuses = futures::future::join_all(cancellations).await;
        assert!(statuses.iter().all(|s| *s == 204), "statuses: {statuses:?}");

        let (ev, rows) = assert_invariants(app, &event_id).await;
        assert_eq!((ev.confirmed_count, ev.waitlist_count), (20, 8));
        // The first twelve of the queue (registered 21st..32nd) were promoted, in order.
        for (i, r) in records.iter().enumerate().skip(20) {
            let id = Uuid::parse_str(r["id"].as_str().expect("id")).expect("uuid");
            let row = rows.iter().find(|a| a.id == id).expect("record");
            if i < 32 {
                assert_eq!(row.status, attendee::AttendeeStatus::Confirmed, "queue place {} promoted", i - 19);
            } else {
                assert_eq!(row.waitlist_position, Some(i as i32 - 31), "queue order kept");
            }
        }
    }

    async fn capacity_changes_racing_registrations_never_overbook(app) {
        let organizer = app.user().await;
        let event_id = published_event(&app, &organizer, Some(10), true).await;
        let users = many_users(&app, 120).await;
        let path = format!("/api/v1/events/{event_id}");

        let registrations = register_all(&app, &event_id, &users);
        let capacity_changes = async {
            let mut statuses = Vec::new();
            for capacity in [15, 5, 30, 12, 60, 8, 25, 40, 3, 50] {
                let r = app
                    .patch(&path, Some(&organizer.token), json!([{"op": "replace", "path": "/capacity", "value": capacity}]), None)
                    .await;
                statuses.push(r.status);
            }
            statuses
        };
        let (responses, statuses) = tokio::join!(registrations, capacity_changes);

        assert!(responses.iter().all(|(s, _)| *s == 201), "every registration accepted");
        assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "capacity changes: {statuses:?}");
        assert!(statuses.contains(&200), "some capacity changes applied: {statuses:?}");
        let (ev, records) = assert_invariants(&app, &event_id).await;
        assert_eq!(records.len(), 120);
        assert_eq!(ev.confirmed_count + ev.waitlist_count, 120);
    }

    async fn simultaneous_registrations_on_an_unlimited_event_all_confirm(app) {
        let organizer = app.user().await;
        let event_id = published_event(&app, &organizer, None, false).await;
        let users = many_users(&app, 60).await;
        let responses = register_all(&app, &event_id, &users).await;
        assert!(responses.iter().all(|(s, b)| *s == 201 && b["status"] == "confirmed"));
        let (ev, _) = assert_invariants(&app, &event_id).await;
        assert_eq!(ev.confirmed_count, 60);
    }

    async fn a_full_event_without_waitlist_refuses_the_overflow_under_load(app) {
        let organizer = app.user().await;
        let event_id = published_event(&app, &organizer, Some(7), false).await;
        let users = many_users(&app, 50).await;
        let responses = register_all(&app, &event_id, &users).await;
        let created = responses.iter().filter(|(s, _)| *s == 201).count();
        let refused = responses.iter().filter(|(s, _)| *s == 409).count();
        assert_eq!((created, refused), (7, 43), "responses: {responses:?}");
        let (ev, _) = assert_invariants(&app, &event_id).await;
        assert_eq!(ev.confirmed_count, 7);
    }
}
