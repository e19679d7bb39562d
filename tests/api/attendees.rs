//! Registrations: seats, the waitlist queue, check-in, cancellation, visibility, the caller's
//! registrations, and what deleting a user does to them.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::{Resp, TestApp, TestUser},
};

fn event_path(event_id: &str) -> String {
    format!("/api/v1/events/{event_id}")
}

fn attendees_path(event_id: &str) -> String {
    format!("/api/v1/events/{event_id}/attendees")
}

fn record_path(event_id: &str, record_id: &str) -> String {
    format!("/api/v1/events/{event_id}/attendees/{record_id}")
}

fn id_of(resp: &Resp) -> String {
    resp.body["id"].as_str().expect("id").to_owned()
}

fn set_status(status: &str) -> Value {
    json!([{"op": "replace", "path": "/status", "value": status}])
}

async fn patch_status(
    app: &TestApp,
    token: &str,
    event_id: &str,
    record_id: &str,
    status: &str,
) -> Resp {
    app.patch(
        &record_path(event_id, record_id),
        Some(token),
        set_status(status),
        None,
    )
    .await
}

/// A record as `token` sees it (asserts 200).
async fn record(app: &TestApp, token: &str, event_id: &str, record_id: &str) -> Value {
    let resp = app
        .get(&record_path(event_id, record_id), Some(token))
        .await;
    resp.expect(200);
    resp.body.clone()
}

/// `(confirmed_count, waitlist_count, available_seats)` of an event, read by `token`.
async fn counts(app: &TestApp, token: &str, event_id: &str) -> (Value, Value, Value) {
    let resp = app.get(&event_path(event_id), Some(token)).await;
    resp.expect(200);
    (
        resp.body["confirmed_count"].clone(),
        resp.body["waitlist_count"].clone(),
        resp.body["available_seats"].clone(),
    )
}

fn c(confirmed: i64, waitlist: i64, available: Value) -> (Value, Value, Value) {
    (json!(confirmed), json!(waitlist), available)
}

fn parse_time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a timestamp"))
        .expect("RFC 3339")
        .with_timezone(&chrono::Utc)
}

fn state(status: &str, position: Value) -> (String, Value) {
    (status.to_owned(), position)
}

/// A published event with a waitlist and `registered` users registered in order; the first
/// `capacity` are confirmed, the rest queued.
struct Queue {
    organizer: TestUser,
    event: String,
    users: Vec<TestUser>,
    records: Vec<String>,
}

async fn queue(app: &TestApp, capacity: i64, registered: usize) -> Queue {
    let organizer = app.user().await;
    let event = app
        .published_event(
            &organizer.token,
            json!({"capacity": capacity, "waitlist_enabled": true}),
        )
        .await;
    let mut users = Vec::new();
    let mut records = Vec::new();
    for _ in 0..registered {
        let user = app.user().await;
        let resp = app.register(&user.token, &event).await;
        resp.expect(201);
        records.push(id_of(&resp));
        users.push(user);
    }
    Queue {
        organizer,
        event,
        users,
        records,
    }
}

backend_tests! {
    async fn registering_with_no_body_or_an_empty_object_confirms_the_caller(app) {
        let organizer = app.user().await;
        let event = app.published_event(&organizer.token, json!({"capacity": 10})).await;
        let alice = app.user().await;
        let bob = app.user().await;

        let no_body = app
            .send(app.request(Method::POST, &attendees_path(&event), Some(&alice.token)))
            .await;
        let empty_object = app.register(&bob.token, &event).await;
        for (resp, user) in [(&no_body, &alice), (&empty_object, &bob)] {
            resp.expect(201);
            let id = id_of(resp);
            assert_eq!(uuid::Uuid::parse_str(&id).expect("a UUID").get_version_num(), 7);
            assert_eq!(resp.header("location"), Some(record_path(&event, &id).as_str()));
            assert_eq!(resp.etag(), "\"1\"");
            assert_eq!(resp.body["event_id"], event.as_str());
            assert_eq!(resp.body["user_id"], user.id.as_str());
            assert_eq!(resp.body["status"], "confirmed");
            assert_eq!(resp.body["waitlist_position"], Value::Null);
            assert!(resp.body.as_object().unwrap().contains_key("waitlist_position"));
            assert_eq!(resp.body["version"], 1);
            assert!(resp.body["registered_at"].as_str().unwrap().ends_with('Z'));
            assert_eq!(resp.body["updated_at"], resp.body["registered_at"]);

            let read = app.get(resp.header("location").unwrap(), Some(&user.token)).await;
            read.expect(200);
            assert_eq!(read.etag(), "\"1\"");
            assert_eq!(read.body, resp.body);
        }
        assert_eq!(counts(&app, &organizer.token, &event).await, c(2, 0, json!(8)));
    }

    async fn a_full_event_with_a_waitlist_queues_registrations_in_order(app) {
        let q = queue(&app, 1, 4).await;
        let first = record(&app, &q.users[0].token, &q.event, &q.records[0]).await;
        assert_eq!(first["status"], "confirmed");
        for (i, (user, id)) in q.users.iter().zip(&q.records).enumerate().skip(1) {
            let r = record(&app, &user.token, &q.event, id).await;
            assert_eq!(r["status"], "waitlisted");
            assert_eq!(r["waitlist_position"], i, "registration {i}");
        }
        assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(1, 3, json!(0)));
    }

    async fn a_full_event_without_a_waitlist_refuses_registration_with_409(app) {
        let organizer = app.user().await;
        let event = app.published_event(&organizer.token, json!({"capacity": 1})).await;
        let first = app.user().await;
        let late = app.user().await;
        app.register(&first.token, &event).await.expect(201);
        app.register(&late.token, &event).await.expect_problem(409);
        assert_eq!(counts(&app, &organizer.token, &event).await, c(1, 0, json!(0)));
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees").await, 1);
    }

    async fn a_draft_event_is_404_for_a_stranger_and_409_for_its_organizer(app) {
        let organizer = app.user().await;
        let admin = app.admin().await;
        let stranger = app.user().await;
        let created = app.create_event(&organizer.token, json!({})).await;
        created.expect(201);
        let draft = id_of(&created);

        app.register(&stranger.token, &draft).await.expect_problem(404);
        app.register(&organizer.token, &draft).await.expect_problem(409);
        app.register(&admin.token, &draft).await.expect_problem(409);
        app.register_user(&organizer.token, &draft, &stranger.id).await.expect_problem(409);
        let missing = uuid::Uuid::now_v7().to_string();
        app.register(&stranger.token, &missing).await.expect_problem(404);
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees").await, 0);
        assert_eq!(counts(&app, &organizer.token, &draft).await, c(0, 0, Value::Null));
    }

    async fn cancelled_completed_and_ended_events_refuse_registrations(app) {
        let organizer = app.user().await;
        let user = app.user().await;
        let mut closed = Vec::new();
        for status in ["cancelled", "completed"] {
            let id = app.published_event(&organizer.token, json!({"capacity": 5})).await;
            patch_status_event(&app, &organizer.token, &id, status).await;
            closed.push(id);
        }
        closed.push(
            app.published_event(
                &organizer.token,
                json!({
                    "capacity": 5,
                    "starts_at": "2001-01-01T10:00:00Z",
                    "ends_at": "2001-01-01T12:00:00Z",
                }),
            )
            .await,
        );
        for id in &closed {
            app.register(&user.token, id).await.expect_problem(409);
            app.register_user(&organizer.token, id, &user.id).await.expect_problem(409);
            assert_eq!(counts(&app, &organizer.token, id).await, c(0, 0, json!(5)));
        }
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees").await, 0);
    }

    async fn registering_twice_while_active_is_409(app) {
        let q = queue(&app, 1, 2).await;
        // Confirmed, waitlisted, and through the organizer: all refused.
        app.register(&q.users[0].token, &q.event).await.expect_problem(409);
        app.register(&q.users[1].token, &q.event).await.expect_problem(409);
        app.register_user(&q.organizer.token, &q.event, &q.users[0].id).await.expect_problem(409);
        assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(1, 1, json!(0)));
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees").await, 2);
        for (user, record_id) in q.users.iter().zip(&q.records) {
            assert_eq!(record(&app, &user.token, &q.event, record_id).await["version"], 1);
        }
    }

    async fn registering_again_after_cancelling_reactivates_the_same_record_at_the_back_of_the_queue(app) {
        let q = queue(&app, 1, 3).await;
        let (u0, u1) = (&q.users[0], &q.users[1]);
        let original = record(&app, &u1.token, &q.event, &q.records[1]).await;
        assert_eq!(original["waitlist_position"], 1);

        app.delete(&record_path(&q.event, &q.records[1]), Some(&u1.token)).await.expect(204);
        let resp = app.register(&u1.token, &q.event).await;
        resp.expect(201);
        assert_eq!(id_of(&resp), q.records[1], "the same record comes back");
        assert_eq!(resp.header("location"), Some(record_path(&q.event, &q.records[1]).as_str()));
        assert_eq!(resp.body["status"], "waitlisted");
        assert_eq!(resp.body["waitlist_position"], 2, "behind the one who waited");
        assert_eq!(resp.body["version"], 3, "registered, cancelled, registered again");
        assert_eq!(resp.etag(), "\"3\"");
        assert!(
            parse_time(&resp.body["registered_at"]) > parse_time(&original["registered_at"]),
            "registered_at is the time of the latest registration"
        );
        let a = app.attendance(&q.organizer.token, &q.event).await;
        assert_eq!(a[&q.users[2].id], state("waitlisted", json!(1)));
        assert_eq!(a[&u1.id], state("waitlisted", json!(2)));
        assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(1, 2, json!(0)));

        // A confirmed attendee who comes back also queues at the back.
        app.delete(&record_path(&q.event, &q.records[0]), Some(&u0.token)).await.expect(204);
        let back = app.register(&u0.token, &q.event).await;
        back.expect(201);
        assert_eq!(id_of(&back), q.records[0]);
        assert_eq!(back.body["status"], "waitlisted");
        assert_eq!(back.body["waitlist_position"], 2);
        let a = app.attendance(&q.organizer.token, &q.event).await;
        assert_eq!(a[&q.users[2].id], state("confirmed", Value::Null));
        assert_eq!(a[&u1.id], state("waitlisted", json!(1)));
        assert_eq!(a[&u0.id], state("waitlisted", json!(2)));
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees").await, 3, "no new rows");
    }

    async fn organizers_and_admins_may_register_another_user(app) {
        let organizer = app.user().await;
        let admin = app.admin().await;
        let event = app.published_event(&organizer.token, json!({"title": "Guests", "capacity": 5})).await;
        let alice = app.user().await;
        let bob = app.user().await;

        for (token, user) in [(&organizer.token, &alice), (&admin.token, &bob)] {
            let resp = app.register_user(token, &event, &user.id).await;
            resp.expect(201);
            assert_eq!(resp.body["user_id"], user.id.as_str());
            assert_eq!(resp.body["status"], "confirmed");
            let mine = app.get("/api/v1/users/me/registrations", Some(&user.token)).await;
            mine.expect(200);
            assert_eq!(mine.body["total"], 1);
            assert_eq!(mine.body["items"][0]["id"], resp.body["id"]);
            assert_eq!(mine.body["items"][0]["event"]["title"], "Guests");
        }
        assert_eq!(counts(&app, &organizer.token, &event).await, c(2, 0, json!(3)));
        // Naming oneself is ordinary self-registration.
        let resp = app.register_user(&alice.token, &event, &alice.id).await;
        resp.expect_problem(409);
    }

    async fn strangers_and_attendees_cannot_register_another_user(app) {
        let organizer = app.user().await;
        let event = app.published_event(&organizer.token, json!({"capacity": 5})).await;
        let attendee = app.user().await;
        let stranger = app.user().await;
        let target = app.user().await;
        app.register(&attendee.token, &event).await.expect(201);

        app.register_user(&stranger.token, &event, &target.id).await.expect_problem(403);
        app.register_user(&attendee.token, &event, &target.id).await.expect_problem(403);
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees").await, 1);
        assert_eq!(counts(&app, &organizer.token, &event).await, c(1, 0, json!(4)));
    }

    async fn registering_a_user_that_does_not_exist_is_404_and_takes_no_seat(app) {
        let organizer = app.user().await;
        let event = app.published_event(&organizer.token, json!({"capacity": 1})).await;
        let ghost = uuid::Uuid::now_v7().to_string();
        app.register_user(&organizer.token, &event, &ghost).await.expect_problem(404);
        assert_eq!(counts(&app, &organizer.token, &event).await, c(0, 0, json!(1)));
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees").await, 0);
        // The seat is still there for a real user.
        let user = app.user().await;
        app.register(&user.token, &event).await.expect(201);
    }

    async fn the_event_counts_follow_every_change(app) {
        let q = queue(&app, 2, 0).await;
        let org = &q.organizer.token;
        let check = |expected: (Value, Value, Value)| {
            let (app, event) = (&app, &q.event);
            async move {
                let got = counts(app, org, event).await;
                assert_eq!(got, expected);
                // The counters agree with the records.
                assert_eq!(
                    json!(app.scalar_i64("SELECT COUNT(*) FROM attendees WHERE status IN ('confirmed', 'checked_in')").await),
                    got.0
                );
                assert_eq!(
                    json!(app.scalar_i64("SELECT COUNT(*) FROM attendees WHERE status = 'waitlisted'").await),
                    got.1
                );
            }
        };
        let mut users = Vec::new();
        let mut records = Vec::new();
        let expected_after_each = [c(1, 0, json!(1)), c(2, 0, json!(0)), c(2, 1, json!(0)), c(2, 2, json!(0))];
        for expected in expected_after_each {
            let user = app.user().await;
            let resp = app.register(&user.token, &q.event).await;
            resp.expect(201);
            records.push(id_of(&resp));
            users.push(user);
            check(expected).await;
        }
        patch_status(&app, org, &q.event, &records[0], "checked_in").await.expect(200);
        check(c(2, 2, json!(0))).await;
        patch_status(&app, &users[3].token, &q.event, &records[3], "cancelled").await.expect(200);
        check(c(2, 1, json!(0))).await;
        app.delete(&record_path(&q.event, &records[1]), Some(&users[1].token)).await.expect(204);
        check(c(2, 0, json!(0))).await;
        app.delete(&record_path(&q.event, &records[0]), Some(org)).await.expect(204);
        check(c(1, 0, json!(1))).await;
        app.register(&users[1].token, &q.event).await.expect(201);
        check(c(2, 0, json!(0))).await;
        app.register(&users[3].token, &q.event).await.expect(201);
        check(c(2, 1, json!(0))).await;
    }

    async fn cancelling_a_confirmed_attendee_promotes_the_oldest_waitlisted_and_renumbers_the_queue(app) {
        let q = queue(&app, 1, 4).await;
        let resp = patch_status(&app, &q.users[0].token, &q.event, &q.records[0], "cancelled").await;
        resp.expect(200);
        assert_eq!(resp.body["status"], "cancelled");
        assert_eq!(resp.body["waitlist_position"], Value::Null);
        assert_eq!(resp.body["version"], 2);
        assert_eq!(resp.etag(), "\"2\"");

        let a = app.attendance(&q.organizer.token, &q.event).await;
        assert_eq!(a[&q.users[0].id], state("cancelled", Value::Null));
        assert_eq!(a[&q.users[1].id], state("confirmed", Value::Null));
        assert_eq!(a[&q.users[2].id], state("waitlisted", json!(1)));
        assert_eq!(a[&q.users[3].id], state("waitlisted", json!(2)));
        let promoted = record(&app, &q.users[1].token, &q.event, &q.records[1]).await;
        assert_eq!(promoted["version"], 2, "promotion is a change of the record");
        assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(1, 2, json!(0)));
    }

    async fn cancelling_a_waitlisted_attendee_moves_those_behind_up(app) {
        let q = queue(&app, 1, 5).await;
        // users[2] is second in the queue.
        let resp = patch_status(&app, &q.users[2].token, &q.event, &q.records[2], "cancelled").await;
        resp.expect(200);
        assert_eq!(resp.body["waitlist_position"], Value::Null);
        let a = app.attendance(&q.organizer.token, &q.event).await;
        assert_eq!(a[&q.users[0].id], state("confirmed", Value::Null));
        assert_eq!(a[&q.users[1].id], state("waitlisted", json!(1)));
        assert_eq!(a[&q.users[2].id], state("cancelled", Value::Null));
        assert_eq!(a[&q.users[3].id], state("waitlisted", json!(2)));
        assert_eq!(a[&q.users[4].id], state("waitlisted", json!(3)));
        assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(1, 3, json!(0)));
    }

    async fn cancelling_a_checked_in_attendee_promotes_the_waitlist(app) {
        let q = queue(&app, 1, 3).await;
        patch_status(&app, &q.organizer.token, &q.event, &q.records[0], "checked_in").await.expect(200);
        let resp = patch_status(&app, &q.organizer.token, &q.event, &q.records[0], "cancelled").await;
        resp.expect(200);
        assert_eq!(resp.body["status"], "cancelled");
        let a = app.attendance(&q.organizer.token, &q.event).await;
        assert_eq!(a[&q.users[1].id], state("confirmed", Value::Null));
        assert_eq!(a[&q.users[2].id], state("waitlisted", json!(1)));
        assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(1, 1, json!(0)));
    }

    async fn the_organizer_checks_in_a_confirmed_attendee_who_still_counts_as_confirmed(app) {
        let q = queue(&app, 3, 2).await;
        let admin = app.admin().await;
        let resp = patch_status(&app, &q.organizer.token, &q.event, &q.records[0], "checked_in").await;
        resp.expect(200);
        assert_eq!(resp.body["status"], "checked_in");
        assert_eq!(resp.body["waitlist_position"], Value::Null);
        assert_eq!(resp.body["version"], 2);
        assert_eq!(resp.etag(), "\"2\"");
        assert_eq!(record(&app, &q.users[0].token, &q.event, &q.records[0]).await["status"], "checked_in");
        assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(2, 0, json!(1)));

        let resp = patch_status(&app, &admin.token, &q.event, &q.records[1], "checked_in").await;
        resp.expect(200);
        assert_eq!(resp.body["status"], "checked_in");
        assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(2, 0, json!(1)));
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees WHERE status = 'checked_in'").await, 2);
    }

    async fn attendees_cannot_check_themselves_in(app) {
        let q = queue(&app, 2, 1).await;
        let resp = patch_status(&app, &q.users[0].token, &q.event, &q.records[0], "checked_in").await;
        resp.expect_problem(403);
        let r = record(&app, &q.users[0].token, &q.event, &q.records[0]).await;
        assert_eq!(r["status"], "confirmed");
        assert_eq!(r["version"], 1);
    }

    async fn only_confirmed_attendees_can_be_checked_in(app) {
        let q = queue(&app, 1, 3).await;
        // Waitlisted.
        let resp = patch_status(&app, &q.organizer.token, &q.event, &q.records[1], "checked_in").await;
        resp.expect_problem(409);
        // Cancelled.
        app.delete(&record_path(&q.event, &q.records[2]), Some(&q.users[2].token)).await.expect(204);
        let resp = patch_status(&app, &q.organizer.token, &q.event, &q.records[2], "checked_in").await;
        resp.expect_problem(409);
        let a = app.attendance(&q.organizer.token, &q.event).await;
        assert_eq!(a[&q.users[1].id], state("waitlisted", json!(1)));
        assert_eq!(a[&q.users[2].id], state("cancelled", Value::Null));
        assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(1, 1, json!(0)));
    }

    async fn nobody_may_set_confirmed_or_waitlisted_by_patch(app) {
        let q = queue(&app, 1, 2).await;
        let admin = app.admin().await;
        let cases = [
            (&q.organizer.token, 1, "confirmed"),
            (&admin.token, 1, "confirmed"),
            (&q.users[1].token, 1, "confirmed"),
            (&q.users[0].token, 0, "waitlisted"),
            (&q.organizer.token, 0, "waitlisted"),
        ];
        for (token, who, status) in cases {
            let resp = patch_status(&app, token, &q.event, &q.records[who], status).await;
            assert_eq!(resp.status, 403, "record {who} -> {status}: {}", resp.body);
            resp.expect_problem(403);
        }
        let a = app.attendance(&q.organizer.token, &q.event).await;
        assert_eq!(a[&q.users[0].id], state("confirmed", Value::Null));
        assert_eq!(a[&q.users[1].id], state("waitlisted", json!(1)));
        assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(1, 1, json!(0)));
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees WHERE version = 1").await, 2);
    }

    async fn an_attendee_cannot_cancel_once_checked_in(app) {
        let q = queue(&app, 2, 1).await;
        patch_status(&app, &q.organizer.token, &q.event, &q.records[0], "checked_in").await.expect(200);
        patch_status(&app, &q.users[0].token, &q.event, &q.records[0], "cancelled").await.expect_problem(409);
        app.delete(&record_path(&q.event, &q.records[0]), Some(&q.users[0].token)).await.expect_problem(409);
        let r = record(&app, &q.users[0].token, &q.event, &q.records[0]).await;
        assert_eq!(r["status"], "checked_in");
        assert_eq!(r["version"], 2);
        assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(1, 0, json!(1)));
    }

    async fn attendance_of_a_cancelled_or_completed_event_cannot_change(app) {
        for final_status in ["cancelled", "completed"] {
            let q = queue(&app, 2, 2).await;
            patch_status_event(&app, &q.organizer.token, &q.event, final_status).await;
            let before = app.attendees_of(&q.organizer.token, &q.event).await;
            patch_status(&app, &q.users[0].token, &q.event, &q.records[0], "cancelled").await.expect_problem(409);
            app.delete(&record_path(&q.event, &q.records[0]), Some(&q.users[0].token)).await.expect_problem(409);
            patch_status(&app, &q.organizer.token, &q.event, &q.records[1], "checked_in").await.expect_problem(409);
            assert_eq!(app.attendees_of(&q.organizer.token, &q.event).await, before, "{final_status}");
            assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(2, 0, json!(0)));
        }
    }

    async fn deleting_a_registration_cancels_it_and_keeps_the_record(app) {
        let q = queue(&app, 3, 1).await;
        let resp = app.delete(&record_path(&q.event, &q.records[0]), Some(&q.users[0].token)).await;
        resp.expect(204);
        assert_eq!(resp.body, Value::Null);
        let read = app.get(&record_path(&q.event, &q.records[0]), Some(&q.users[0].token)).await;
        read.expect(200);
        assert_eq!(read.body["status"], "cancelled");
        assert_eq!(read.body["waitlist_position"], Value::Null);
        assert_eq!(read.body["version"], 2);
        assert_eq!(read.etag(), "\"2\"");
        assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(0, 0, json!(3)));
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees WHERE status = 'cancelled'").await, 1);
        // Cancelling again changes nothing, like a patch that changes nothing.
        app.delete(&record_path(&q.event, &q.records[0]), Some(&q.users[0].token)).await.expect(204);
        assert_eq!(record(&app, &q.users[0].token, &q.event, &q.records[0]).await["version"], 2);
    }

    async fn a_record_is_visible_to_its_user_the_organizer_and_admins_only(app) {
        let q = queue(&app, 5, 2).await;
        let admin = app.admin().await;
        let stranger = app.user().await;
        let path = record_path(&q.event, &q.records[0]);
        for token in [&q.users[0].token, &q.organizer.token, &admin.token] {
            let resp = app.get(&path, Some(token)).await;
            resp.expect(200);
            assert_eq!(resp.body["id"], q.records[0].as_str());
            assert_eq!(resp.body["user_id"], q.users[0].id.as_str());
            assert_eq!(resp.etag(), "\"1\"");
        }
        app.get(&path, Some(&stranger.token)).await.expect_problem(404);
        app.get(&path, Some(&q.users[1].token)).await.expect_problem(404);
        let resp = app.get(&path, None).await;
        resp.expect_problem(401);
        assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
        // A record is only found under its own event.
        let other = app.published_event(&q.organizer.token, json!({})).await;
        app.get(&record_path(&other, &q.records[0]), Some(&q.organizer.token)).await.expect_problem(404);
        let missing = uuid::Uuid::now_v7().to_string();
        app.get(&record_path(&q.event, &missing), Some(&admin.token)).await.expect_problem(404);
    }

    async fn the_organizer_lists_attendees_by_registration_time_with_a_status_filter(app) {
        let q = queue(&app, 2, 4).await;
        let admin = app.admin().await;
        let (u, r) = (&q.users, &q.records);
        app.delete(&record_path(&q.event, &r[1]), Some(&u[1].token)).await.expect(204);
        patch_status(&app, &q.organizer.token, &q.event, &r[0], "checked_in").await.expect(200);

        let list = |token: String, query: Vec<(&'static str, &'static str)>| {
            let (app, event) = (&app, &q.event);
            async move {
                let resp = app.get_query(&attendees_path(event), Some(&token), &query).await;
                resp.expect(200);
                let ids: Vec<String> = resp.body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["id"].as_str().unwrap().to_owned())
                    .collect();
                (ids, resp.body["total"].clone(), resp.body["limit"].clone(), resp.body["offset"].clone())
            }
        };
        let org = q.organizer.token.clone();
        let all = list(org.clone(), vec![]).await;
        assert_eq!(all, (r.clone(), json!(4), json!(20), json!(0)));
        assert_eq!(list(admin.token.clone(), vec![]).await, all);
        assert_eq!(list(org.clone(), vec![("status", "confirmed")]).await.0, [r[2].clone()]);
        assert_eq!(list(org.clone(), vec![("status", "checked_in")]).await.0, [r[0].clone()]);
        assert_eq!(list(org.clone(), vec![("status", "cancelled")]).await.0, [r[1].clone()]);
        let waitlisted = list(org.clone(), vec![("status", "waitlisted")]).await;
        assert_eq!(waitlisted.0, [r[3].clone()]);
        assert_eq!(waitlisted.1, 1);
        assert_eq!(
            list(org.clone(), vec![("limit", "2"), ("offset", "1")]).await,
            (vec![r[1].clone(), r[2].clone()], json!(4), json!(2), json!(1))
        );

        // registered_at is the latest registration: coming back moves a record to the end.
        app.register(&u[1].token, &q.event).await.expect(201);
        let again = list(org.clone(), vec![]).await;
        assert_eq!(again.0, [r[0].clone(), r[2].clone(), r[3].clone(), r[1].clone()]);

        for (name, value) in [("status", "gone"), ("limit", "0"), ("limit", "101")] {
            let resp = app.get_query(&attendees_path(&q.event), Some(&org), &[(name, value)]).await;
            resp.expect_problem(400);
        }
    }

    async fn strangers_and_attendees_cannot_list_attendees(app) {
        let q = queue(&app, 5, 1).await;
        let stranger = app.user().await;
        app.get(&attendees_path(&q.event), Some(&stranger.token)).await.expect_problem(403);
        app.get(&attendees_path(&q.event), Some(&q.users[0].token)).await.expect_problem(403);
        app.get(&attendees_path(&q.event), None).await.expect_problem(401);
        let created = app.create_event(&q.organizer.token, json!({})).await;
        created.expect(201);
        app.get(&attendees_path(&id_of(&created)), Some(&stranger.token)).await.expect_problem(404);
    }

    async fn my_registrations_list_the_callers_records_with_an_event_summary(app) {
        let organizer = app.user().await;
        let user = app.user().await;
        let other = app.user().await;
        let mut events = Vec::new();
        for (title, day) in [("First", "01"), ("Second", "02"), ("Third", "03")] {
            let id = app
                .published_event(
                    &organizer.token,
                    json!({
                        "title": title,
                        "starts_at": format!("2030-05-{day}T09:00:00+02:00"),
                        "ends_at": format!("2030-05-{day}T17:00:00Z"),
                    }),
                )
                .await;
            events.push(id);
        }
        let mut records = Vec::new();
        for id in &events {
            let resp = app.register(&user.token, id).await;
            resp.expect(201);
            records.push(id_of(&resp));
        }
        app.register(&other.token, &events[0]).await.expect(201);
        app.delete(&record_path(&events[1], &records[1]), Some(&user.token)).await.expect(204);
        patch_status_event(&app, &organizer.token, &events[2], "cancelled").await;

        let resp = app.get("/api/v1/users/me/registrations", Some(&user.token)).await;
        resp.expect(200);
        assert_eq!(resp.body["total"], 3);
        assert_eq!(resp.body["limit"], 20);
        assert_eq!(resp.body["offset"], 0);
        let items = resp.body["items"].as_array().unwrap();
        let got: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(got, records.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(items[0]["user_id"], user.id.as_str());
        assert_eq!(items[0]["event_id"], events[0].as_str());
        assert_eq!(items[0]["status"], "confirmed");
        assert_eq!(items[1]["status"], "cancelled");
        assert_eq!(
            items[0]["event"],
            json!({"id": events[0], "title": "First", "starts_at": "2030-05-01T07:00:00Z", "status": "published"})
        );
        assert_eq!(items[2]["event"]["status"], "cancelled", "the summary shows the event as it is now");
        assert_eq!(items[2]["event"]["title"], "Third");

        let page = app
            .get_query("/api/v1/users/me/registrations", Some(&user.token), &[("limit", "2"), ("offset", "1")])
            .await;
        page.expect(200);
        assert_eq!(page.body["total"], 3);
        assert_eq!(page.body["limit"], 2);
        assert_eq!(page.body["offset"], 1);
        let got: Vec<&str> = page.body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(got, [records[1].as_str(), records[2].as_str()]);

        let others = app.get("/api/v1/users/me/registrations", Some(&other.token)).await;
        assert_eq!(others.body["total"], 1);
        assert_eq!(others.body["items"][0]["event"]["title"], "First");
        let nobody = app.get("/api/v1/users/me/registrations", Some(&organizer.token)).await;
        nobody.expect(200);
        assert_eq!(nobody.body["total"], 0);
        assert_eq!(nobody.body["items"], json!([]));
        app.get("/api/v1/users/me/registrations", None).await.expect_problem(401);
    }

    async fn a_stale_if_match_on_an_attendee_change_is_412(app) {
        let q = queue(&app, 2, 1).await;
        let (user, path) = (&q.users[0], record_path(&q.event, &q.records[0]));
        app.delete(&path, Some(&user.token)).await.expect(204);
        app.register(&user.token, &q.event).await.expect(201);
        // Now at version 3.
        let stale = app.patch(&path, Some(&user.token), set_status("cancelled"), Some("\"1\"")).await;
        stale.expect_problem(412);
        let stale = app
            .send(app.request(Method::DELETE, &path, Some(&user.token)).header("if-match", "\"2\""))
            .await;
        stale.expect_problem(412);
        let r = record(&app, &user.token, &q.event, &q.records[0]).await;
        assert_eq!(r["status"], "confirmed");
        assert_eq!(r["version"], 3);
        assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(1, 0, json!(1)));

        let fresh = app.patch(&path, Some(&q.organizer.token), set_status("checked_in"), Some("\"3\"")).await;
        fresh.expect(200);
        assert_eq!(fresh.body["version"], 4);
        assert_eq!(fresh.etag(), "\"4\"");
    }

    async fn only_the_status_of_a_registration_can_be_patched(app) {
        let q = queue(&app, 2, 1).await;
        let other = app.user().await;
        let before = record(&app, &q.organizer.token, &q.event, &q.records[0]).await;
        for (path, value) in [
            ("/user_id", json!(other.id)),
            ("/event_id", json!(uuid::Uuid::now_v7().to_string())),
            ("/id", json!(uuid::Uuid::now_v7().to_string())),
            ("/waitlist_position", json!(1)),
            ("/version", json!(7)),
        ] {
            let resp = app
                .patch(
                    &record_path(&q.event, &q.records[0]),
                    Some(&q.organizer.token),
                    json!([{"op": "replace", "path": path, "value": value}]),
                    None,
                )
                .await;
            assert_eq!(resp.status, 422, "{path}: {}", resp.body);
            resp.expect_problem(422);
        }
        assert_eq!(record(&app, &q.organizer.token, &q.event, &q.records[0]).await, before);
    }

    async fn registration_endpoints_refuse_the_wrong_content_type_with_415(app) {
        let q = queue(&app, 2, 1).await;
        let path = record_path(&q.event, &q.records[0]);
        for content_type in ["application/json", "text/plain"] {
            let resp = app
                .send(
                    app.request(Method::PATCH, &path, Some(&q.users[0].token))
                        .header("content-type", content_type)
                        .body(set_status("cancelled").to_string()),
                )
                .await;
            resp.expect_problem(415);
            assert_eq!(resp.header("accept-patch"), Some("application/json-patch+json"));
        }
        let late = app.user().await;
        let resp = app
            .send(
                app.request(Method::POST, &attendees_path(&q.event), Some(&late.token))
                    .header("content-type", "text/plain")
                    .body("{}"),
            )
            .await;
        resp.expect_problem(415);
        let r = record(&app, &q.users[0].token, &q.event, &q.records[0]).await;
        assert_eq!(r["status"], "confirmed");
        assert_eq!(r["version"], 1);
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees").await, 1);
    }

    async fn deleting_a_user_cancels_their_registrations_and_promotes_the_waitlist(app) {
        let q = queue(&app, 1, 4).await;
        let other_event = app.published_event(&q.organizer.token, json!({"capacity": 5})).await;
        app.register(&q.users[0].token, &other_event).await.expect(201);

        // The confirmed attendee leaves: the head of the queue takes the seat.
        let resp = app.delete(&format!("/api/v1/users/{}", q.users[0].id), Some(&q.users[0].token)).await;
        resp.expect(204);
        let a = app.attendance(&q.organizer.token, &q.event).await;
        assert!(!a.contains_key(&q.users[0].id), "the deleted user's records are gone: {a:?}");
        assert_eq!(a[&q.users[1].id], state("confirmed", Value::Null));
        assert_eq!(a[&q.users[2].id], state("waitlisted", json!(1)));
        assert_eq!(a[&q.users[3].id], state("waitlisted", json!(2)));
        assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(1, 2, json!(0)));
        assert_eq!(counts(&app, &q.organizer.token, &other_event).await, c(0, 0, json!(5)));

        // A waitlisted attendee removed by an admin: the queue closes up.
        let admin = app.admin().await;
        app.delete(&format!("/api/v1/users/{}", q.users[2].id), Some(&admin.token)).await.expect(204);
        let a = app.attendance(&q.organizer.token, &q.event).await;
        assert_eq!(a[&q.users[3].id], state("waitlisted", json!(1)));
        assert_eq!(counts(&app, &q.organizer.token, &q.event).await, c(1, 1, json!(0)));
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees").await, 2);
    }

    async fn a_user_organizing_a_live_published_event_cannot_be_deleted_until_it_is_cancelled(app) {
        let organizer = app.user().await;
        let event = app.published_event(&organizer.token, json!({"capacity": 5})).await;
        let me = format!("/api/v1/users/{}", organizer.id);
        app.delete(&me, Some(&organizer.token)).await.expect_problem(409);
        let admin = app.admin().await;
        app.delete(&me, Some(&admin.token)).await.expect_problem(409);
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM events").await, 1);
        app.get("/api/v1/users/me", Some(&organizer.token)).await.expect(200);

        patch_status_event(&app, &organizer.token, &event, "cancelled").await;
        app.delete(&me, Some(&organizer.token)).await.expect(204);
        app.get(&me, Some(&admin.token)).await.expect_problem(404);

        // Drafts and published events that have ended do not hold an account.
        let other = app.user().await;
        app.create_event(&other.token, json!({})).await.expect(201);
        app.published_event(
            &other.token,
            json!({"starts_at": "2001-01-01T10:00:00Z", "ends_at": "2001-01-01T12:00:00Z"}),
        )
        .await;
        app.delete(&format!("/api/v1/users/{}", other.id), Some(&other.token)).await.expect(204);
    }
}

/// Moves an event to `status` as its organizer (asserts 200).
async fn patch_status_event(app: &TestApp, token: &str, event_id: &str, status: &str) {
    let resp = app
        .patch(&event_path(event_id), Some(token), set_status(status), None)
        .await;
    resp.expect(200);
    assert_eq!(resp.body["status"], status);
}

backend_tests! {
    async fn removing_an_attendees_status_is_422_naming_it_and_keeps_the_record(app) {
        let organizer = app.user().await;
        let event_id = app.published_event(&organizer.token, json!({})).await;
        let user = app.user().await;
        let registered = app.register(&user.token, &event_id).await;
        registered.expect(201);
        let path = record_path(&event_id, &id_of(&registered));
        let resp = app
            .patch(&path, Some(&organizer.token), json!([{"op": "remove", "path": "/status"}]), None)
            .await;
        resp.expect_field_error("status");
        let after = record(&app, &organizer.token, &event_id, &id_of(&registered)).await;
        assert_eq!(after["status"], "confirmed");
        assert_eq!(after["version"], 1);
    }
}

backend_tests! {
    async fn the_seat_rule_in_sql_and_in_rust_agree_over_every_event_state(app) {
        use event_manager::{
            entity::event::EventStatus,
            repository::events::{self, EventFields, Place, Refusal},
            time,
        };
        use sea_orm::TransactionTrait;

        let organizer: uuid::Uuid = app.user().await.id.parse().expect("a user id");
        let now = time::now();
        let mut outcomes = std::collections::HashSet::new();
        for (capacity, confirmed) in [(None, 3), (Some(2), 2), (Some(2), 1)] {
            for waitlist_enabled in [false, true] {
                for waiting in [0, 1] {
                    for status in [
                        EventStatus::Draft,
                        EventStatus::Published,
                        EventStatus::Cancelled,
                        EventStatus::Completed,
                    ] {
                        for ended in [false, true] {
                            let ends_at = if ended {
                                now - chrono::Duration::hours(1)
                            } else {
                                now + chrono::Duration::days(1)
                            };
                            let fields = EventFields {
                                title: "Rule".into(),
                                description: String::new(),
                                location: String::new(),
                                starts_at: ends_at - chrono::Duration::hours(2),
                                ends_at,
                                capacity,
                                waitlist_enabled,
                                status,
                                visibility: event_manager::entity::event::Visibility::Public,
                            };
                            let id = uuid::Uuid::now_v7();
                            events::insert(&app.db, id, organizer, fields, now).await.expect("insert");
                            let event = events::adjust_counts(&app.db, id, confirmed, waiting, 0)
                                .await
                                .expect("counters")
                                .expect("the event");
                            let in_rust = events::place_for_newcomer(&event, now);
                            let txn = app.db.begin().await.expect("begin");
                            let in_sql = events::claim_seat_or_waitlist_place(&txn, id, now)
                                .await
                                .expect("claim")
                                .map(|(place, _)| place);
                            txn.rollback().await.expect("rollback");
                            assert_eq!(in_rust.ok(), in_sql, "{event:?}");
                            outcomes.insert(format!("{in_rust:?}"));
                        }
                    }
                }
            }
        }
        // The table reaches every outcome, so no branch of the rule went untested.
        for outcome in [
            Ok(Place::Seat),
            Ok(Place::Waitlist(1)),
            Ok(Place::Waitlist(2)),
            Err(Refusal::NotPublished),
            Err(Refusal::Ended),
            Err(Refusal::FullWithoutWaitlist),
        ] {
            assert!(outcomes.contains(&format!("{outcome:?}")), "never saw {outcome:?}");
        }
    }
}
