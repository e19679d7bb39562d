//! Event imports: CSV uploads queued as jobs, imported all together or not at all.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::{Resp, TestApp},
};

const HEADER: &str =
    "title,description,location,starts_at,ends_at,capacity,waitlist_enabled,status,visibility\n";

fn row(i: usize) -> String {
    format!(
        "Imported {i},\"Line one\nline two, with a comma\",Hall {i},2030-01-01T18:00:00Z,\
         2030-01-01T20:00:00Z,{},{},published,public\n",
        10 + i,
        i.is_multiple_of(2)
    )
}

async fn upload(
    app: &TestApp,
    token: Option<&str>,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> Resp {
    app.send(
        app.request(Method::POST, "/api/v1/imports", token)
            .header("content-type", content_type)
            .body(body),
    )
    .await
}

/// Polls the job until it is `completed` or `failed` (at most 60 s).
async fn finished(app: &TestApp, token: &str, location: &str) -> Value {
    for _ in 0..600 {
        let resp = app.get(location, Some(token)).await;
        resp.expect(200);
        if matches!(resp.body["status"].as_str(), Some("completed" | "failed")) {
            return resp.body.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the import job did not finish within a minute");
}

async fn event_count(app: &TestApp) -> i64 {
    app.scalar_i64("SELECT COUNT(*) FROM events").await
}

backend_tests! {
    async fn an_import_is_accepted_as_a_job_and_creates_every_event(app) {
        let user = app.user().await;
        let body = format!("{HEADER}{}{}{}", row(1), row(2), row(3));
        let resp = upload(&app, Some(&user.token), "text/csv", body).await;
        resp.expect(202);
        let location = resp.header("location").expect("a Location header").to_owned();
        assert_eq!(location, format!("/api/v1/imports/{}", resp.body["id"].as_str().expect("id")));
        assert!(matches!(resp.body["status"].as_str(), Some("queued" | "processing")), "{}", resp.body);
        assert_eq!(resp.body["errors"], json!([]));
        assert!(resp.body["created_at"].is_string());

        let job = finished(&app, &user.token, &location).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["rows_total"], json!(3));
        assert_eq!(job["rows_imported"], json!(3));
        assert!(job["started_at"].is_string() && job["finished_at"].is_string(), "{job}");

        let mine = app
            .get_query("/api/v1/events", Some(&user.token), &[("organizer_id", user.id.as_str()), ("sort", "title")])
            .await;
        mine.expect(200);
        let items = mine.body["items"].as_array().expect("items");
        assert_eq!(items.len(), 3);
        assert_eq!(items[0]["title"], "Imported 1");
        assert_eq!(items[0]["description"], "Line one\nline two, with a comma");
        assert_eq!(items[0]["capacity"], json!(11));
        assert_eq!(items[1]["waitlist_enabled"], json!(true));
        assert_eq!(items[0]["status"], "published");
        assert_eq!(items[0]["organizer_id"], json!(user.id));
        // Each created event has its `event.created` change, as a create through the API does.
        let id = items[0]["id"].as_str().expect("id");
        let changes = app.get(&format!("/api/v1/events/{id}/changes"), Some(&user.token)).await;
        changes.expect(200);
        assert_eq!(changes.body["items"][0]["type"], "event.created", "{}", changes.body);
    }

    async fn one_bad_row_among_a_thousand_imports_nothing_and_names_the_row(app) {
        let user = app.user().await;
        let before = event_count(&app).await;
        let mut body = HEADER.to_owned();
        for i in 1..=1000 {
            if i == 617 {
                body.push_str("Broken,,,2030-01-01T18:00:00Z,2029-01-01T20:00:00Z,,,,\n");
            } else {
                body.push_str(&row(i));
            }
        }
        let resp = upload(&app, Some(&user.token), "text/csv; charset=utf-8", body).await;
        resp.expect(202);
        let location = resp.header("location").expect("Location").to_owned();
        let job = finished(&app, &user.token, &location).await;
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(job["rows_total"], json!(1000));
        assert_eq!(job["rows_imported"], json!(0));
        assert_eq!(job["errors"].as_array().expect("errors").len(), 1, "{job}");
        assert_eq!(job["errors"][0]["row"], json!(617));
        assert_eq!(job["errors"][0]["field"], "ends_at");
        assert!(job["errors"][0]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(event_count(&app).await, before, "nothing was imported");
    }

    async fn rows_that_break_the_create_rules_get_their_fields_named(app) {
        let user = app.user().await;
        let body = format!(
            "{HEADER}{}\
             ,,,2030-01-01T18:00:00Z,2030-01-01T20:00:00Z,,,,\n\
             Too big,,,2030-01-01T18:00:00Z,2030-01-01T20:00:00Z,2000000,,,\n\
             Bad status,,,2030-01-01T18:00:00Z,2030-01-01T20:00:00Z,,,cancelled,\n\
             Bad visibility,,,2030-01-01T18:00:00Z,2030-01-01T20:00:00Z,,,,secret\n\
             Bad date,,,tomorrow,2030-01-01T20:00:00Z,,,,\n\
             Short row,,\n",
            row(1)
        );
        let resp = upload(&app, Some(&user.token), "text/csv", body).await;
        resp.expect(202);
        let job = finished(&app, &user.token, resp.header("location").expect("Location")).await;
        assert_eq!(job["status"], "failed");
        let errors: Vec<(u64, Value)> = job["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| (e["row"].as_u64().expect("row"), e["field"].clone()))
            .collect();
        for expected in [
            (2, json!("title")),
            (3, json!("capacity")),
            (4, json!("status")),
            (5, json!("visibility")),
            (6, json!("starts_at")),
            (7, Value::Null),
        ] {
            assert!(errors.contains(&expected), "{expected:?} in {errors:?}");
        }
    }

    async fn a_file_with_an_unknown_column_or_no_rows_fails(app) {
        let user = app.user().await;
        let resp = upload(&app, Some(&user.token), "text/csv", "title,starts_at,ends_at,colour\n").await;
        resp.expect(202);
        let job = finished(&app, &user.token, resp.header("location").expect("Location")).await;
        assert_eq!(job["status"], "failed");
        assert_eq!(job["errors"][0]["row"], json!(0));
        assert_eq!(job["errors"][0]["field"], "colour");

        let resp = upload(&app, Some(&user.token), "text/csv", HEADER).await;
        resp.expect(202);
        let job = finished(&app, &user.token, resp.header("location").expect("Location")).await;
        assert_eq!(job["status"], "failed");
        assert_eq!(job["errors"][0]["row"], json!(0));
    }

    async fn an_import_job_is_seen_by_its_creator_and_admins_only(app) {
        let user = app.user().await;
        let other = app.user().await;
        let admin = app.admin().await;
        let resp = upload(&app, Some(&user.token), "text/csv", format!("{HEADER}{}", row(1))).await;
        resp.expect(202);
        let location = resp.header("location").expect("Location").to_owned();
        app.get(&location, Some(&user.token)).await.expect(200);
        app.get(&location, Some(&admin.token)).await.expect(200);
        app.get(&location, Some(&other.token)).await.expect_problem(404);
        app.get(&location, None).await.expect_problem(401);
        app.get("/api/v1/imports/not-a-uuid", Some(&user.token)).await.expect_problem(404);
        finished(&app, &user.token, &location).await;
    }

    async fn an_upload_needs_a_token_csv_and_utf8(app) {
        let user = app.user().await;
        let body = format!("{HEADER}{}", row(1));
        upload(&app, None, "text/csv", body.clone()).await.expect_problem(401);
        upload(&app, Some(&user.token), "application/json", body).await.expect_problem(415);
        upload(&app, Some(&user.token), "text/csv", vec![0xff_u8, 0xfe, b'a']).await.expect_problem(400);
    }

    async fn an_upload_above_max_import_bytes_is_413_but_the_json_limit_does_not_apply(app) {
        let user = app.user().await;
        // Well past MAX_BODY_BYTES (64 KiB): imports have their own limit.
        let mut body = HEADER.to_owned();
        let mut i = 0;
        while body.len() < 200 * 1024 {
            i += 1;
            body.push_str(&row(i));
        }
        let resp = upload(&app, Some(&user.token), "text/csv", body).await;
        resp.expect(202);
        let job = finished(&app, &user.token, resp.header("location").expect("Location")).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["rows_imported"], json!(i));
        // Past MAX_IMPORT_BYTES (10 MiB by default).
        let huge = vec![b'a'; 10 * 1024 * 1024 + 1];
        upload(&app, Some(&user.token), "text/csv", huge).await.expect_problem(413);
    }
}

backend_tests! {
    async fn an_upload_retried_with_its_idempotency_key_queues_one_job(app) {
        let user = app.user().await;
        let body = format!("{HEADER}{}", row(1));
        let send = || {
            app.send(
                app.request(Method::POST, "/api/v1/imports", Some(&user.token))
                    .header("content-type", "text/csv")
                    .header("idempotency-key", "import-1")
                    .body(body.clone()),
            )
        };
        let first = send().await;
        first.expect(202);
        let again = send().await;
        again.expect(202);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.body["id"], first.body["id"]);
        assert_eq!(again.header("location"), first.header("location"));
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM imports").await, 1);
        finished(&app, &user.token, first.header("location").expect("Location")).await;
    }
}

/// A smaller `MAX_IMPORT_BYTES` is honoured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_import_bytes_is_configurable() {
    let app = TestApp::spawn_with(crate::helpers::Backend::Sqlite, |c| {
        c.max_import_bytes = 1000
    })
    .await
    .expect("sqlite");
    let user = app.user().await;
    let resp = upload(&app, Some(&user.token), "text/csv", vec![b'a'; 1001]).await;
    resp.expect_problem(413);
    upload(
        &app,
        Some(&user.token),
        "text/csv",
        format!("{HEADER}{}", row(1)),
    )
    .await
    .expect(202);
}

/// Two instances on one PostgreSQL database share the queue: every job is imported once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "TEST_DATABASE_URL is unset: PostgreSQL not tested"
)]
async fn two_instances_import_each_job_exactly_once() {
    let app = crate::helpers::postgres_app().await;
    let other = app.second_instance().await;
    let user = app.user().await;
    let mut locations = Vec::new();
    for job in 0..6 {
        let mut body = HEADER.to_owned();
        for i in 0..50 {
            body.push_str(&row(job * 100 + i));
        }
        // Half the uploads through each instance, so both workers are woken.
        let server = if job % 2 == 0 { &app } else { &other };
        let resp = upload(server, Some(&user.token), "text/csv", body).await;
        resp.expect(202);
        locations.push(resp.header("location").expect("Location").to_owned());
    }
    for location in &locations {
        let job = finished(&app, &user.token, location).await;
        assert_eq!(job["status"], "completed", "{job}");
    }
    assert_eq!(event_count(&app).await, 300, "each row imported once");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM imports WHERE attempts <> 1")
            .await,
        0,
        "no job was claimed twice"
    );
}
