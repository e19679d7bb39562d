//! Attendance statistics and the CSV export of an event's attendees.

use event_manager::entity::{attendee, user};
use reqwest::Method;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    backend_tests,
    helpers::{Resp, TestApp},
};

const HEADER: &str =
    "id,user_id,email,full_name,status,waitlist_position,registered_at,checked_in_at";

fn stats_path(event_id: &str) -> String {
    format!("/api/v1/events/{event_id}/stats")
}

fn attendees_path(event_id: &str) -> String {
    format!("/api/v1/events/{event_id}/attendees")
}

/// GET the attendee list as CSV; returns the response and its body text.
async fn export(app: &TestApp, token: &str, path: &str) -> (u16, String, Option<String>) {
    let resp = app
        .request(Method::GET, path, Some(token))
        .header("accept", "text/csv")
        .send()
        .await
        .expect("request sent");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, resp.text().await.expect("body"), content_type)
}

/// The CSV's records (header first), parsed as a spreadsheet would.
fn records(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("a CSV record").iter().map(str::to_owned).collect())
        .collect()
}

async fn register_id(app: &TestApp, token: &str, event_id: &str) -> String {
    let resp = app.register(token, event_id).await;
    resp.expect(201);
    resp.body["id"].as_str().expect("id").to_owned()
}

async fn set_status(
    app: &TestApp,
    token: &str,
    event_id: &str,
    record: &str,
    status: &str,
) -> Resp {
    app.patch(
        &format!("/api/v1/events/{event_id}/attendees/{record}"),
        Some(token),
        json!([{"op": "replace", "path": "/status", "value": status}]),
        None,
    )
    .await
}

/// Stamps `checked_in_at` on checked-in records that lack it, as a check-in does.
async fn stamp_check_ins(app: &TestApp) {
    app.db
        .execute_raw(Statement::from_string(
            app.db.get_database_backend(),
            "UPDATE attendees SET checked_in_at = updated_at \
             WHERE status = 'checked_in' AND checked_in_at IS NULL",
        ))
        .await
        .expect("stamping check-ins");
}

/// Inserts `n` users registered (confirmed) for the event, a millisecond apart, with every
/// tenth pair sharing a registration time (so that the id breaks the tie).
async fn seed_attendees(app: &TestApp, event_id: &str, n: usize) -> Vec<(String, String)> {
    let event_id: Uuid = event_id.parse().expect("uuid");
    let base = chrono::Utc::now() - chrono::Duration::hours(1);
    let mut expected = Vec::with_capacity(n);
    let mut users = Vec::new();
    let mut attendees = Vec::new();
    for i in 0..n {
        let user_id = Uuid::now_v7();
        let id = Uuid::now_v7();
        let at = base + chrono::Duration::milliseconds((i - i % 10 / 9) as i64);
        users.push(user::ActiveModel {
            id: Set(user_id),
            email: Set(format!("bulk{i}@example.com")),
            email_normalized: Set(format!("bulk{i}@example.com")),
            full_name: Set(format!("Bulk {i}")),
            password_hash: Set("x".to_owned()),
            role: Set(user::Role::Member),
            created_at: Set(base),
            updated_at: Set(base),
            version: Set(1),
        });
        attendees.push(attendee::ActiveModel {
            id: Set(id),
            event_id: Set(event_id),
            user_id: Set(user_id),
            status: Set(attendee::AttendeeStatus::Confirmed),
            waitlist_position: Set(None),
            registered_at: Set(at),
            updated_at: Set(at),
            version: Set(1),
            checked_in_at: Set(None),
        });
        expected.push((at, id, format!("bulk{i}@example.com")));
    }
    for chunk in users.chunks(500) {
        user::Entity::insert_many(chunk.to_vec())
            .exec(&app.db)
            .await
            .expect("inserting users");
    }
    for chunk in attendees.chunks(500) {
        attendee::Entity::insert_many(chunk.to_vec())
            .exec(&app.db)
            .await
            .expect("inserting attendees");
    }
    expected.sort();
    expected
        .into_iter()
        .map(|(_, id, email)| (id.to_string(), email))
        .collect()
}

backend_tests! {
    async fn stats_count_records_by_status_and_give_the_check_in_rate(app) {
        let organizer = app.user().await;
        let event = app
            .published_event(&organizer.token, json!({"capacity": 3, "waitlist_enabled": true}))
            .await;
        let mut records = Vec::new();
        for _ in 0..5 {
            let user = app.user().await;
            records.push((register_id(&app, &user.token, &event).await, user));
        }
        // 3 confirmed, 2 waitlisted; check one in, cancel a waitlisted one.
        set_status(&app, &organizer.token, &event, &records[0].0, "checked_in").await.expect(200);
        set_status(&app, &records[4].1.token, &event, &records[4].0, "cancelled").await.expect(200);
        stamp_check_ins(&app).await;

        let resp = app.get(&stats_path(&event), Some(&organizer.token)).await;
        resp.expect(200);
        let body = &resp.body;
        assert_eq!(
            body["counts"],
            json!({"confirmed": 2, "waitlisted": 1, "cancelled": 1, "checked_in": 1, "total": 5})
        );
        assert_eq!(body["event_id"], json!(event));
        let rate = body["check_in_rate"].as_f64().expect("a rate");
        assert!((rate - 1.0 / 3.0).abs() < 1e-9, "{rate}");
        assert_eq!(body["cancellations"], json!(1));
    }

    async fn stats_per_hour_run_from_the_first_registration_without_gaps_and_add_up(app) {
        let organizer = app.user().await;
        let event = app.published_event(&organizer.token, json!({})).await;
        let mut first = None;
        for i in 0..4 {
            let user = app.user().await;
            let id = register_id(&app, &user.token, &event).await;
            if i == 0 {
                set_status(&app, &organizer.token, &event, &id, "checked_in").await.expect(200);
            }
            if i == 1 {
                set_status(&app, &user.token, &event, &id, "cancelled").await.expect(200);
            }
            first.get_or_insert(id);
        }
        stamp_check_ins(&app).await;
        // One registration two hours earlier, so the series has an empty hour in it.
        app.db
            .execute_raw(Statement::from_sql_and_values(
                app.db.get_database_backend(),
                "UPDATE attendees SET registered_at = $1 WHERE id = $2",
                [
                    (chrono::Utc::now() - chrono::Duration::hours(2)).into(),
                    first.expect("a record").parse::<Uuid>().expect("uuid").into(),
                ],
            ))
            .await
            .expect("moving a registration back");

        let resp = app.get(&stats_path(&event), Some(&organizer.token)).await;
        resp.expect(200);
        let hours = resp.body["per_hour"].as_array().expect("per_hour").clone();
        assert!(hours.len() >= 3, "{hours:?}");
        let starts: Vec<chrono::DateTime<chrono::Utc>> = hours
            .iter()
            .map(|h| h["hour"].as_str().expect("hour").parse().expect("RFC 3339"))
            .collect();
        for pair in starts.windows(2) {
            assert_eq!(pair[1] - pair[0], chrono::Duration::hours(1), "{hours:?}");
        }
        assert_eq!(starts[0].timestamp() % 3600, 0, "hours start on the hour");
        let sum = |key: &str| hours.iter().map(|h| h[key].as_u64().expect("count")).sum::<u64>();
        assert_eq!(sum("registrations"), 4);
        assert_eq!(sum("cancellations"), 1);
        assert_eq!(sum("check_ins"), 1);
        assert_eq!(hours[0]["registrations"], json!(1), "{hours:?}");
        assert!(hours[1..hours.len() - 1].iter().any(|h| h["registrations"] == json!(0)));
    }

    async fn stats_of_an_event_nobody_registered_for_are_zero_with_no_rate(app) {
        let organizer = app.user().await;
        let event = app.published_event(&organizer.token, json!({})).await;
        let resp = app.get(&stats_path(&event), Some(&organizer.token)).await;
        resp.expect(200);
        assert_eq!(resp.body["counts"]["total"], json!(0));
        assert_eq!(resp.body["check_in_rate"], Value::Null);
        assert_eq!(resp.body["per_hour"], json!([]));
    }

    async fn stats_are_for_the_organizer_and_admins_only(app) {
        let organizer = app.user().await;
        let attendee = app.user().await;
        let stranger = app.user().await;
        let admin = app.admin().await;
        let event = app.published_event(&organizer.token, json!({})).await;
        app.register(&attendee.token, &event).await.expect(201);
        let draft = app.create_event(&organizer.token, json!({})).await;
        let draft = draft.body["id"].as_str().expect("id").to_owned();

        app.get(&stats_path(&event), Some(&admin.token)).await.expect(200);
        app.get(&stats_path(&event), Some(&attendee.token)).await.expect_problem(403);
        app.get(&stats_path(&event), Some(&stranger.token)).await.expect_problem(403);
        app.get(&stats_path(&draft), Some(&stranger.token)).await.expect_problem(404);
        app.get(&stats_path(&Uuid::now_v7().to_string()), Some(&organizer.token))
            .await
            .expect_problem(404);
        let anonymous = app.get(&stats_path(&event), None).await;
        anonymous.expect_problem(401);
        assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    }

    async fn the_csv_export_has_the_header_row_and_one_line_per_record(app) {
        let organizer = app.user().await;
        let event = app.published_event(&organizer.token, json!({"capacity": 1, "waitlist_enabled": true})).await;
        let first = app.user().await;
        let second = app.user().await;
        let first_id = register_id(&app, &first.token, &event).await;
        let second_id = register_id(&app, &second.token, &event).await;

        let (status, text, content_type) = export(&app, &organizer.token, &attendees_path(&event)).await;
        assert_eq!(status, 200, "{text}");
        assert_eq!(content_type.as_deref(), Some("text/csv; charset=utf-8"));
        let rows = records(&text);
        assert_eq!(rows[0].join(","), HEADER);
        assert_eq!(rows.len(), 3, "{text}");
        assert_eq!(rows[1][0], first_id);
        assert_eq!(rows[1][1], first.id);
        assert_eq!(rows[1][2], first.email);
        assert_eq!(rows[1][3], "Test User");
        assert_eq!(rows[1][4], "confirmed");
        assert_eq!(rows[1][5], "");
        assert!(rows[1][6].ends_with('Z'), "{}", rows[1][6]);
        assert_eq!(rows[1][7], "");
        assert_eq!(rows[2][0], second_id);
        assert_eq!(rows[2][4], "waitlisted");
        assert_eq!(rows[2][5], "1");
    }

    async fn the_csv_export_defuses_formulas_and_quotes_commas_and_quotes(app) {
        let organizer = app.user().await;
        let event = app.published_event(&organizer.token, json!({})).await;
        for (email, name) in [
            ("eq@example.com", "=HYPERLINK(\"http://evil\")"),
            ("plus@example.com", "+1 555"),
            ("minus@example.com", "-2+3"),
            ("at@example.com", "@SUM(A1:A9)"),
            ("comma@example.com", "Lovelace, Ada \"Countess\""),
        ] {
            let created = app
                .post("/api/v1/users", None, json!({"email": email, "password": crate::helpers::PASSWORD, "full_name": name}))
                .await;
            created.expect(201);
            let token = app.token(email, crate::helpers::PASSWORD).await;
            app.register(&token, &event).await.expect(201);
        }
        let (status, text, _) = export(&app, &organizer.token, &attendees_path(&event)).await;
        assert_eq!(status, 200);
        let names: Vec<String> = records(&text)[1..].iter().map(|r| r[3].clone()).collect();
        assert_eq!(
            names,
            vec![
                "'=HYPERLINK(\"http://evil\")",
                "'+1 555",
                "'-2+3",
                "'@SUM(A1:A9)",
                "Lovelace, Ada \"Countess\"",
            ]
        );
    }

    async fn the_csv_export_filters_by_status(app) {
        let organizer = app.user().await;
        let event = app.published_event(&organizer.token, json!({})).await;
        let staying = app.user().await;
        let leaving = app.user().await;
        register_id(&app, &staying.token, &event).await;
        let gone = register_id(&app, &leaving.token, &event).await;
        set_status(&app, &leaving.token, &event, &gone, "cancelled").await.expect(200);

        let path = format!("{}?status=cancelled", attendees_path(&event));
        let (status, text, _) = export(&app, &organizer.token, &path).await;
        assert_eq!(status, 200);
        let rows = records(&text);
        assert_eq!(rows.len(), 2, "{text}");
        assert_eq!(rows[1][0], gone);
        assert_eq!(rows[1][4], "cancelled");
        let path = format!("{}?status=sleeping", attendees_path(&event));
        let (status, _, _) = export(&app, &organizer.token, &path).await;
        assert_eq!(status, 400);
    }

    async fn the_csv_export_is_refused_like_the_list(app) {
        let organizer = app.user().await;
        let attendee = app.user().await;
        let stranger = app.user().await;
        let event = app.published_event(&organizer.token, json!({})).await;
        app.register(&attendee.token, &event).await.expect(201);
        let draft = app.create_event(&organizer.token, json!({})).await;
        let draft = draft.body["id"].as_str().expect("id").to_owned();

        let (status, text, content_type) = export(&app, &attendee.token, &attendees_path(&event)).await;
        assert_eq!(status, 403, "{text}");
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
        let (status, _, _) = export(&app, &stranger.token, &attendees_path(&draft)).await;
        assert_eq!(status, 404);
        let admin = app.admin().await;
        let (status, _, _) = export(&app, &admin.token, &attendees_path(&event)).await;
        assert_eq!(status, 200);
    }

    async fn the_json_list_stays_the_default(app) {
        let organizer = app.user().await;
        let event = app.published_event(&organizer.token, json!({})).await;
        for accept in [None, Some("*/*"), Some("application/json"), Some("application/json, text/csv;q=0.5")] {
            let mut rb = app.request(Method::GET, &attendees_path(&event), Some(&organizer.token));
            if let Some(accept) = accept {
                rb = rb.header("accept", accept);
            }
            let resp = app.send(rb).await;
            resp.expect(200);
            assert_eq!(resp.header("content-type"), Some("application/json"), "{accept:?}");
            assert_eq!(resp.body["total"], json!(0));
        }
    }

    async fn a_large_export_spans_pages_in_registration_order(app) {
        let organizer = app.user().await;
        let event = app.published_event(&organizer.token, json!({})).await;
        let expected = seed_attendees(&app, &event, 2_500).await;
        let (status, text, _) = export(&app, &organizer.token, &attendees_path(&event)).await;
        assert_eq!(status, 200);
        let rows = records(&text);
        assert_eq!(rows.len(), 2_501);
        let got: Vec<(String, String)> = rows[1..]
            .iter()
            .map(|r| (r[0].clone(), r[2].clone()))
            .collect();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "the export is in (registered_at, id) order, each record once");
    }
}
