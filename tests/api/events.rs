//! Events: creation and its rules, visibility, the list (filters, sorts, paging), JSON Patch
//! with status moves and capacity rules, and deletion.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::{Resp, TestApp},
};

const EVENTS: &str = "/api/v1/events";

fn event_path(id: &str) -> String {
    format!("{EVENTS}/{id}")
}

fn id_of(resp: &Resp) -> String {
    resp.body["id"].as_str().expect("id").to_owned()
}

/// The titles of a list page, in order.
fn titles(resp: &Resp) -> Vec<String> {
    resp.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["title"].as_str().expect("title").to_owned())
        .collect()
}

/// The titles of a list page, sorted, for checks that do not care about order.
fn title_set(resp: &Resp) -> Vec<String> {
    let mut t = titles(resp);
    t.sort();
    t
}

fn ids(resp: &Resp) -> Vec<String> {
    resp.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

fn replace(path: &str, value: Value) -> Value {
    json!([{"op": "replace", "path": path, "value": value}])
}

async fn set_status(app: &TestApp, token: &str, id: &str, status: &str) -> Resp {
    app.patch(
        &event_path(id),
        Some(token),
        replace("/status", json!(status)),
        None,
    )
    .await
}

/// Creates an event with this title (and overrides) and returns its id.
async fn event_titled(app: &TestApp, token: &str, title: &str, overrides: Value) -> String {
    let mut body = json!({"title": title});
    if let (Some(map), Value::Object(extra)) = (body.as_object_mut(), overrides) {
        map.extend(extra);
    }
    let resp = app.create_event(token, body).await;
    resp.expect(201);
    id_of(&resp)
}

/// Creates a published event, then moves it to `status` (cancelled or completed).
async fn event_in_status(app: &TestApp, token: &str, title: &str, status: &str) -> String {
    let id = event_titled(app, token, title, json!({"status": "published"})).await;
    set_status(app, token, &id, status).await.expect(200);
    id
}

async fn read_event(app: &TestApp, token: &str, id: &str) -> Value {
    let resp = app.get(&event_path(id), Some(token)).await;
    resp.expect(200);
    resp.body.clone()
}

fn parse_time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a timestamp"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

backend_tests! {
    async fn creating_an_event_returns_201_with_location_etag_and_the_caller_as_organizer(app) {
        let organizer = app.user().await;
        let resp = app
            .create_event(
                &organizer.token,
                json!({
                    "title": "Rust meetup",
                    "description": "Talks and pizza",
                    "location": "Main hall",
                    "capacity": 50,
                    "waitlist_enabled": true,
                }),
            )
            .await;
        resp.expect(201);
        let id = id_of(&resp);
        assert_eq!(uuid::Uuid::parse_str(&id).expect("a UUID").get_version_num(), 7);
        assert_eq!(resp.header("location"), Some(event_path(&id).as_str()));
        assert_eq!(resp.etag(), "\"1\"");
        let b = &resp.body;
        assert_eq!(b["title"], "Rust meetup");
        assert_eq!(b["description"], "Talks and pizza");
        assert_eq!(b["location"], "Main hall");
        assert_eq!(b["starts_at"], "2030-03-01T18:00:00Z");
        assert_eq!(b["ends_at"], "2030-03-01T21:00:00Z");
        assert_eq!(b["capacity"], 50);
        assert_eq!(b["waitlist_enabled"], true);
        assert_eq!(b["status"], "draft", "draft is the default status");
        assert_eq!(b["organizer_id"], organizer.id.as_str());
        assert_eq!(b["confirmed_count"], 0);
        assert_eq!(b["waitlist_count"], 0);
        assert_eq!(b["available_seats"], 50);
        assert_eq!(b["version"], 1);
        assert!(b["created_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(b["updated_at"], b["created_at"]);

        let read = app.get(resp.header("location").unwrap(), Some(&organizer.token)).await;
        read.expect(200);
        assert_eq!(read.etag(), "\"1\"");
        assert_eq!(read.body, resp.body);
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM events").await, 1);
    }

    async fn an_event_may_be_created_published_and_is_then_public(app) {
        let organizer = app.user().await;
        let resp = app.create_event(&organizer.token, json!({"status": "published"})).await;
        resp.expect(201);
        assert_eq!(resp.body["status"], "published");
        let public = app.get(&event_path(&id_of(&resp)), None).await;
        public.expect(200);
        assert_eq!(public.body["status"], "published");
    }

    async fn an_event_cannot_be_created_cancelled_or_completed(app) {
        let organizer = app.user().await;
        for status in ["cancelled", "completed"] {
            let resp = app.create_event(&organizer.token, json!({"status": status})).await;
            resp.expect_field_error("status");
        }
        let resp = app.create_event(&organizer.token, json!({"status": "archived"})).await;
        assert_eq!(resp.status / 100, 4, "an unknown status is refused: {}", resp.body);
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM events").await, 0);
    }

    async fn the_title_is_stored_trimmed(app) {
        let organizer = app.user().await;
        let resp = app.create_event(&organizer.token, json!({"title": "  Trim me  "})).await;
        resp.expect(201);
        assert_eq!(resp.body["title"], "Trim me");
        assert_eq!(read_event(&app, &organizer.token, &id_of(&resp)).await["title"], "Trim me");
        // 200 characters plus surrounding spaces is still 200 characters.
        let long = format!("  {}  ", "t".repeat(200));
        let resp = app.create_event(&organizer.token, json!({"title": long})).await;
        resp.expect(201);
        assert_eq!(resp.body["title"], "t".repeat(200));
    }

    async fn invalid_event_fields_are_refused_with_422_naming_the_field(app) {
        let organizer = app.user().await;
        let cases = [
            (json!({"title": ""}), "title"),
            (json!({"title": "   "}), "title"),
            (json!({"title": "t".repeat(201)}), "title"),
            (json!({"title": "nul\u{0}inside"}), "title"),
            (json!({"description": "d".repeat(5001)}), "description"),
            (json!({"description": "nul\u{0}inside"}), "description"),
            (json!({"location": "l".repeat(301)}), "location"),
            (json!({"capacity": 0}), "capacity"),
            (json!({"capacity": -1}), "capacity"),
            (json!({"capacity": 1_000_001}), "capacity"),
        ];
        for (overrides, field) in cases {
            let resp = app.create_event(&organizer.token, overrides.clone()).await;
            assert_eq!(resp.status, 422, "{overrides}: {}", resp.body);
            resp.expect_field_error(field);
        }
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM events").await, 0);

        // The limits themselves are accepted.
        let boundaries = [
            json!({"title": "t".repeat(200)}),
            json!({"title": "x"}),
            json!({"description": "d".repeat(5000)}),
            json!({"description": "multi\nline\twith tabs"}),
            json!({"location": "l".repeat(300)}),
            json!({"capacity": 1}),
            json!({"capacity": 1_000_000}),
            json!({"ends_at": "2030-03-01T18:00:01Z"}),
        ];
        for overrides in &boundaries {
            let resp = app.create_event(&organizer.token, overrides.clone()).await;
            assert_eq!(resp.status, 201, "{overrides}: {}", resp.body);
        }
        assert_eq!(
            app.scalar_i64("SELECT COUNT(*) FROM events").await,
            boundaries.len() as i64
        );
    }

    async fn an_end_not_after_the_start_is_422_naming_ends_at(app) {
        let organizer = app.user().await;
        for ends_at in ["2030-03-01T18:00:00Z", "2030-03-01T17:00:00Z", "2030-03-01T18:30:00+01:00"] {
            let resp = app.create_event(&organizer.token, json!({"ends_at": ends_at})).await;
            assert_eq!(resp.status, 422, "{ends_at}: {}", resp.body);
            resp.expect_field_error("ends_at");
        }
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM events").await, 0);

        let id = event_titled(&app, &organizer.token, "Ordered", json!({})).await;
        for ops in [
            replace("/ends_at", json!("2030-03-01T17:00:00Z")),
            replace("/starts_at", json!("2030-03-01T21:00:00Z")),
        ] {
            let resp = app.patch(&event_path(&id), Some(&organizer.token), ops.clone(), None).await;
            assert_eq!(resp.status, 422, "{ops}: {}", resp.body);
            resp.expect_field_error("ends_at");
        }
        assert_eq!(read_event(&app, &organizer.token, &id).await["version"], 1);
    }

    async fn unlimited_capacity_shows_no_available_seats(app) {
        let organizer = app.user().await;
        for overrides in [json!({"capacity": null}), json!({})] {
            let resp = app.create_event(&organizer.token, overrides).await;
            resp.expect(201);
            assert_eq!(resp.body["capacity"], Value::Null);
            assert_eq!(resp.body["available_seats"], Value::Null);
            assert!(resp.body.as_object().unwrap().contains_key("available_seats"));
        }
    }

    async fn timestamps_given_with_an_offset_are_returned_in_utc_with_z(app) {
        let organizer = app.user().await;
        let resp = app
            .create_event(
                &organizer.token,
                json!({
                    "starts_at": "2030-03-01T19:00:00+01:00",
                    "ends_at": "2030-03-01T16:30:00-05:00",
                }),
            )
            .await;
        resp.expect(201);
        assert_eq!(resp.body["starts_at"], "2030-03-01T18:00:00Z");
        assert_eq!(resp.body["ends_at"], "2030-03-01T21:30:00Z");
        let read = read_event(&app, &organizer.token, &id_of(&resp)).await;
        assert_eq!(read["starts_at"], "2030-03-01T18:00:00Z");
        assert_eq!(read["ends_at"], "2030-03-01T21:30:00Z");
        for field in ["created_at", "updated_at"] {
            assert!(read[field].as_str().unwrap().ends_with('Z'), "{field}: {}", read[field]);
        }
    }

    async fn events_in_the_past_may_be_created(app) {
        let organizer = app.user().await;
        let resp = app
            .create_event(
                &organizer.token,
                json!({
                    "status": "published",
                    "starts_at": "2001-01-01T10:00:00Z",
                    "ends_at": "2001-01-01T12:00:00Z",
                }),
            )
            .await;
        resp.expect(201);
        assert_eq!(resp.body["starts_at"], "2001-01-01T10:00:00Z");
        assert_eq!(resp.body["status"], "published");
    }

    async fn anonymous_callers_list_published_cancelled_and_completed_events_but_no_drafts(app) {
        let organizer = app.user().await;
        event_titled(&app, &organizer.token, "Draft", json!({})).await;
        event_titled(&app, &organizer.token, "Published", json!({"status": "published"})).await;
        event_in_status(&app, &organizer.token, "Cancelled", "cancelled").await;
        event_in_status(&app, &organizer.token, "Completed", "completed").await;

        let resp = app.get(EVENTS, None).await;
        resp.expect(200);
        assert_eq!(title_set(&resp), ["Cancelled", "Completed", "Published"]);
        assert_eq!(resp.body["total"], 3);
        assert_eq!(resp.body["limit"], 20);
        assert_eq!(resp.body["offset"], 0);
    }

    async fn organizers_list_their_own_drafts_but_not_those_of_others(app) {
        let alice = app.user().await;
        let bob = app.user().await;
        event_titled(&app, &alice.token, "Alice draft", json!({})).await;
        event_titled(&app, &bob.token, "Bob draft", json!({})).await;
        event_titled(&app, &bob.token, "Bob published", json!({"status": "published"})).await;

        let resp = app.get(EVENTS, Some(&alice.token)).await;
        resp.expect(200);
        assert_eq!(title_set(&resp), ["Alice draft", "Bob published"]);
        assert_eq!(resp.body["total"], 2);

        let resp = app.get(EVENTS, Some(&bob.token)).await;
        assert_eq!(title_set(&resp), ["Bob draft", "Bob published"]);

        // Asking for drafts by status does not reveal other people's.
        let resp = app.get_query(EVENTS, Some(&alice.token), &[("status", "draft")]).await;
        resp.expect(200);
        assert_eq!(titles(&resp), ["Alice draft"]);
        assert_eq!(resp.body["total"], 1);
    }

    async fn administrators_list_every_event_including_drafts(app) {
        let alice = app.user().await;
        let admin = app.admin().await;
        event_titled(&app, &alice.token, "Draft", json!({})).await;
        event_titled(&app, &alice.token, "Published", json!({"status": "published"})).await;
        event_in_status(&app, &alice.token, "Cancelled", "cancelled").await;

        let resp = app.get(EVENTS, Some(&admin.token)).await;
        resp.expect(200);
        assert_eq!(title_set(&resp), ["Cancelled", "Draft", "Published"]);
        assert_eq!(resp.body["total"], 3);
    }

    async fn the_list_filters_by_status_and_organizer(app) {
        let alice = app.user().await;
        let bob = app.user().await;
        event_titled(&app, &alice.token, "Alice published", json!({"status": "published"})).await;
        event_in_status(&app, &alice.token, "Alice cancelled", "cancelled").await;
        event_titled(&app, &bob.token, "Bob published", json!({"status": "published"})).await;
        event_in_status(&app, &bob.token, "Bob completed", "completed").await;

        let app = &app;
        let by_status = |status: &'static str| async move {
            app.get_query(EVENTS, None, &[("status", status)]).await
        };
        let resp = by_status("published").await;
        resp.expect(200);
        assert_eq!(title_set(&resp), ["Alice published", "Bob published"]);
        assert_eq!(resp.body["total"], 2);
        assert_eq!(titles(&by_status("cancelled").await), ["Alice cancelled"]);
        assert_eq!(titles(&by_status("completed").await), ["Bob completed"]);
        assert_eq!(by_status("draft").await.body["total"], 0);

        let resp = app.get_query(EVENTS, None, &[("organizer_id", bob.id.as_str())]).await;
        resp.expect(200);
        assert_eq!(title_set(&resp), ["Bob completed", "Bob published"]);
        assert_eq!(resp.body["total"], 2);

        let resp = app
            .get_query(
                EVENTS,
                None,
                &[("organizer_id", alice.id.as_str()), ("status", "published")],
            )
            .await;
        assert_eq!(titles(&resp), ["Alice published"]);

        let nobody = uuid::Uuid::now_v7().to_string();
        let resp = app.get_query(EVENTS, None, &[("organizer_id", nobody.as_str())]).await;
        resp.expect(200);
        assert_eq!(resp.body["total"], 0);
        assert_eq!(resp.body["items"], json!([]));
    }

    async fn starts_after_is_inclusive_and_starts_before_is_exclusive(app) {
        let organizer = app.user().await;
        for hour in [10, 11, 12] {
            event_titled(
                &app,
                &organizer.token,
                &format!("At {hour}"),
                json!({
                    "status": "published",
                    "starts_at": format!("2030-01-01T{hour}:00:00Z"),
                    "ends_at": format!("2030-01-01T{hour}:30:00Z"),
                }),
            )
            .await;
        }
        let app = &app;
        let list = |query: Vec<(&'static str, &'static str)>| async move {
            let resp = app.get_query(EVENTS, None, &query).await;
            resp.expect(200);
            titles(&resp)
        };
        assert_eq!(list(vec![("starts_after", "2030-01-01T11:00:00Z")]).await, ["At 11", "At 12"]);
        assert_eq!(list(vec![("starts_before", "2030-01-01T11:00:00Z")]).await, ["At 10"]);
        assert_eq!(
            list(vec![
                ("starts_after", "2030-01-01T11:00:00Z"),
                ("starts_before", "2030-01-01T12:00:00Z"),
            ])
            .await,
            ["At 11"]
        );
        // Offsets are honoured: 12:00+01:00 is 11:00Z.
        assert_eq!(list(vec![("starts_after", "2030-01-01T12:00:00+01:00")]).await, ["At 11", "At 12"]);
        assert_eq!(list(vec![("starts_before", "2030-01-01T10:00:00Z")]).await, Vec::<String>::new());
    }

    async fn q_searches_title_and_description_case_insensitively(app) {
        let organizer = app.user().await;
        let published = json!({"status": "published"});
        event_titled(&app, &organizer.token, "Rust Meetup", published.clone()).await;
        event_titled(
            &app,
            &organizer.token,
            "Workshop",
            json!({"status": "published", "description": "Learn RUST basics"}),
        )
        .await;
        event_titled(&app, &organizer.token, "Cooking class", published.clone()).await;
        event_titled(&app, &organizer.token, "100% fun", published).await;

        let app = &app;
        let search = |q: &'static str| async move {
            let resp = app.get_query(EVENTS, None, &[("q", q)]).await;
            resp.expect(200);
            (title_set(&resp), resp.body["total"].clone())
        };
        let both = vec!["Rust Meetup".to_owned(), "Workshop".to_owned()];
        assert_eq!(search("rust").await, (both.clone(), json!(2)));
        assert_eq!(search("RuSt").await, (both, json!(2)));
        assert_eq!(search("MEETUP").await.0, ["Rust Meetup"]);
        assert_eq!(search("basics").await.0, ["Workshop"]);
        assert_eq!(search("nothing like this").await, (vec![], json!(0)));
        // LIKE wildcards are matched literally.
        assert_eq!(search("%").await.0, ["100% fun"]);
        assert_eq!(search("_").await.0, Vec::<String>::new());
    }

    async fn every_sort_orders_the_list_and_breaks_ties_by_id(app) {
        let organizer = app.user().await;
        // Pairs share a start time or a title, so only the id can order them.
        let specs = [
            ("Beta", "2030-01-02T10:00:00Z"),
            ("Alpha", "2030-01-01T10:00:00Z"),
            ("Beta", "2030-01-02T10:00:00Z"),
            ("Gamma", "2030-01-01T10:00:00Z"),
            ("Alpha", "2030-01-03T10:00:00Z"),
            ("Delta", "2030-01-02T10:00:00Z"),
        ];
        let mut events = Vec::new();
        for (title, starts) in specs {
            let starts_at = parse_time(&json!(starts));
            let resp = app
                .create_event(
                    &organizer.token,
                    json!({
                        "title": title,
                        "status": "published",
                        "starts_at": starts,
                        "ends_at": (starts_at + chrono::Duration::hours(1)).to_rfc3339(),
                    }),
                )
                .await;
            resp.expect(201);
            events.push(resp.body.clone());
        }
        type Cmp = fn(&Value, &Value) -> std::cmp::Ordering;
        let by_id: Cmp = |a, b| a["id"].as_str().cmp(&b["id"].as_str());
        let cases: [(&str, Cmp); 5] = [
            ("starts_at", |a, b| parse_time(&a["starts_at"]).cmp(&parse_time(&b["starts_at"]))),
            ("-starts_at", |a, b| parse_time(&b["starts_at"]).cmp(&parse_time(&a["starts_at"]))),
            ("created_at", |a, b| parse_time(&a["created_at"]).cmp(&parse_time(&b["created_at"]))),
            ("-created_at", |a, b| parse_time(&b["created_at"]).cmp(&parse_time(&a["created_at"]))),
            ("title", |a, b| a["title"].as_str().cmp(&b["title"].as_str())),
        ];
        for (sort, cmp) in cases {
            let mut expected = events.clone();
            expected.sort_by(|a, b| cmp(a, b).then_with(|| by_id(a, b)));
            let expected: Vec<String> =
                expected.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
            let resp = app.get_query(EVENTS, None, &[("sort", sort)]).await;
            resp.expect(200);
            assert_eq!(ids(&resp), expected, "sort={sort}");
            // Paging through the same order gives the same sequence.
            let mut paged = Vec::new();
            for offset in ["0", "2", "4"] {
                let page = app
                    .get_query(EVENTS, None, &[("sort", sort), ("limit", "2"), ("offset", offset)])
                    .await;
                page.expect(200);
                paged.extend(ids(&page));
            }
            assert_eq!(paged, expected, "paged sort={sort}");
        }
        // `starts_at` is the default.
        let default = app.get(EVENTS, None).await;
        let explicit = app.get_query(EVENTS, None, &[("sort", "starts_at")]).await;
        assert_eq!(ids(&default), ids(&explicit));
    }

    async fn limit_and_offset_page_through_the_list_with_the_total(app) {
        let organizer = app.user().await;
        for day in 1..=5 {
            event_titled(
                &app,
                &organizer.token,
                &format!("Day {day}"),
                json!({
                    "status": "published",
                    "starts_at": format!("2030-01-0{day}T10:00:00Z"),
                    "ends_at": format!("2030-01-0{day}T11:00:00Z"),
                }),
            )
            .await;
        }
        let app = &app;
        let page = |limit: &'static str, offset: &'static str| async move {
            let resp = app.get_query(EVENTS, None, &[("limit", limit), ("offset", offset)]).await;
            resp.expect(200);
            resp
        };
        let first = page("2", "0").await;
        assert_eq!(titles(&first), ["Day 1", "Day 2"]);
        assert_eq!(first.body["total"], 5);
        assert_eq!(first.body["limit"], 2);
        assert_eq!(first.body["offset"], 0);
        let second = page("2", "2").await;
        assert_eq!(titles(&second), ["Day 3", "Day 4"]);
        assert_eq!(second.body["offset"], 2);
        let last = page("2", "4").await;
        assert_eq!(titles(&last), ["Day 5"]);
        assert_eq!(last.body["total"], 5);
        let beyond = page("2", "10").await;
        assert_eq!(beyond.body["items"], json!([]));
        assert_eq!(beyond.body["total"], 5);
        let all = page("100", "0").await;
        assert_eq!(all.body["items"].as_array().unwrap().len(), 5);
        assert_eq!(all.body["limit"], 100);
        assert_eq!(page("1", "0").await.body["items"].as_array().unwrap().len(), 1);
    }

    async fn bad_list_parameters_are_400(app) {
        let cases: [(&str, &str); 9] = [
            ("limit", "0"),
            ("limit", "101"),
            ("limit", "ten"),
            ("offset", "-1"),
            ("sort", "bogus"),
            ("sort", "-title"),
            ("status", "archived"),
            ("starts_after", "yesterday"),
            ("organizer_id", "not-a-uuid"),
        ];
        for (name, value) in cases {
            let resp = app.get_query(EVENTS, None, &[(name, value)]).await;
            assert_eq!(resp.status, 400, "{name}={value}: {}", resp.body);
            resp.expect_problem(400);
        }
    }

    async fn a_draft_is_404_for_strangers_and_anonymous_but_visible_to_its_organizer_and_admins(app) {
        let organizer = app.user().await;
        let stranger = app.user().await;
        let admin = app.admin().await;
        let id = event_titled(&app, &organizer.token, "Secret", json!({})).await;
        let path = event_path(&id);

        app.get(&path, None).await.expect_problem(404);
        app.get(&path, Some(&stranger.token)).await.expect_problem(404);
        for token in [&organizer.token, &admin.token] {
            let resp = app.get(&path, Some(token)).await;
            resp.expect(200);
            assert_eq!(resp.body["title"], "Secret");
            assert_eq!(resp.body["status"], "draft");
            assert_eq!(resp.etag(), "\"1\"");
        }
        let missing = event_path(&uuid::Uuid::now_v7().to_string());
        app.get(&missing, Some(&admin.token)).await.expect_problem(404);
    }

    async fn patching_a_field_bumps_the_version_and_the_etag(app) {
        let organizer = app.user().await;
        let created = app.create_event(&organizer.token, json!({})).await;
        created.expect(201);
        let id = id_of(&created);
        let resp = app
            .patch(&event_path(&id), Some(&organizer.token), replace("/title", json!("  Renamed ")), None)
            .await;
        resp.expect(200);
        assert_eq!(resp.body["title"], "Renamed", "patched titles are trimmed too");
        assert_eq!(resp.body["version"], 2);
        assert_eq!(resp.etag(), "\"2\"");
        assert!(parse_time(&resp.body["updated_at"]) >= parse_time(&created.body["updated_at"]));
        assert_eq!(resp.body["created_at"], created.body["created_at"]);

        let resp = app
            .patch(
                &event_path(&id),
                Some(&organizer.token),
                json!([
                    {"op": "replace", "path": "/capacity", "value": 7},
                    {"op": "replace", "path": "/location", "value": "Room 2"},
                    {"op": "replace", "path": "/starts_at", "value": "2030-03-01T18:30:00+01:00"},
                ]),
                None,
            )
            .await;
        resp.expect(200);
        assert_eq!(resp.body["version"], 3, "one patch is one change");
        assert_eq!(resp.body["capacity"], 7);
        assert_eq!(resp.body["available_seats"], 7);
        assert_eq!(resp.body["location"], "Room 2");
        assert_eq!(resp.body["starts_at"], "2030-03-01T17:30:00Z");

        let read = app.get(&event_path(&id), Some(&organizer.token)).await;
        assert_eq!(read.etag(), "\"3\"");
        assert_eq!(read.body, resp.body);
    }

    async fn a_patch_that_changes_nothing_leaves_the_version(app) {
        let organizer = app.user().await;
        let id = event_titled(&app, &organizer.token, "Same", json!({})).await;
        for ops in [json!([]), replace("/title", json!("Same")), json!([{"op": "test", "path": "/title", "value": "Same"}])] {
            let resp = app.patch(&event_path(&id), Some(&organizer.token), ops.clone(), None).await;
            resp.expect(200);
            assert_eq!(resp.body["version"], 1, "{ops}");
            assert_eq!(resp.etag(), "\"1\"");
        }
        assert_eq!(app.scalar_i64("SELECT version FROM events").await, 1);
    }

    async fn a_patched_event_is_validated_like_a_new_one(app) {
        let organizer = app.user().await;
        let id = event_titled(&app, &organizer.token, "Valid", json!({})).await;
        let cases = [
            (replace("/title", json!("")), "title"),
            (replace("/capacity", json!(0)), "capacity"),
            (replace("/location", json!("l".repeat(301))), "location"),
        ];
        for (ops, field) in cases {
            let resp = app.patch(&event_path(&id), Some(&organizer.token), ops.clone(), None).await;
            assert_eq!(resp.status, 422, "{ops}: {}", resp.body);
            resp.expect_field_error(field);
        }
        let read = read_event(&app, &organizer.token, &id).await;
        assert_eq!(read["version"], 1);
        assert_eq!(read["title"], "Valid");
    }

    async fn allowed_status_moves_succeed(app) {
        let organizer = app.user().await;
        for (from, to) in [
            ("draft", "published"),
            ("draft", "cancelled"),
            ("published", "cancelled"),
            ("published", "completed"),
        ] {
            let id = event_titled(&app, &organizer.token, "Move", json!({"status": from})).await;
            let resp = set_status(&app, &organizer.token, &id, to).await;
            assert_eq!(resp.status, 200, "{from} -> {to}: {}", resp.body);
            assert_eq!(resp.body["status"], to);
            assert_eq!(resp.body["version"], 2);
            assert_eq!(read_event(&app, &organizer.token, &id).await["status"], to);
        }
    }

    async fn forbidden_status_moves_are_409_and_change_nothing(app) {
        let organizer = app.user().await;
        // (how to reach the start state, target)
        let cases = [
            ("published", "draft"),
            ("cancelled", "published"),
            ("cancelled", "draft"),
            ("completed", "published"),
            ("completed", "cancelled"),
            ("draft", "completed"),
        ];
        for (from, to) in cases {
            let id = match from {
                "draft" | "published" => {
                    event_titled(&app, &organizer.token, "Stuck", json!({"status": from})).await
                }
                final_status => event_in_status(&app, &organizer.token, "Stuck", final_status).await,
            };
            let before = read_event(&app, &organizer.token, &id).await;
            let resp = set_status(&app, &organizer.token, &id, to).await;
            assert_eq!(resp.status, 409, "{from} -> {to}: {}", resp.body);
            resp.expect_problem(409);
            assert_eq!(read_event(&app, &organizer.token, &id).await, before, "{from} -> {to}");
        }
    }

    async fn a_cancelled_or_completed_event_accepts_no_field_changes(app) {
        let organizer = app.user().await;
        for status in ["cancelled", "completed"] {
            let id = event_in_status(&app, &organizer.token, "Final", status).await;
            let before = read_event(&app, &organizer.token, &id).await;
            for ops in [
                replace("/title", json!("Changed")),
                replace("/capacity", json!(10)),
                replace("/waitlist_enabled", json!(true)),
                replace("/ends_at", json!("2030-03-02T21:00:00Z")),
            ] {
                let resp = app.patch(&event_path(&id), Some(&organizer.token), ops.clone(), None).await;
                assert_eq!(resp.status, 409, "{status} {ops}: {}", resp.body);
                resp.expect_problem(409);
            }
            assert_eq!(read_event(&app, &organizer.token, &id).await, before);
        }
    }

    async fn capacity_cannot_drop_below_the_confirmed_count(app) {
        let organizer = app.user().await;
        let id = app.published_event(&organizer.token, json!({"capacity": 3})).await;
        for _ in 0..2 {
            let user = app.user().await;
            app.register(&user.token, &id).await.expect(201);
        }
        let resp = app
            .patch(&event_path(&id), Some(&organizer.token), replace("/capacity", json!(1)), None)
            .await;
        resp.expect_problem(409);
        let read = read_event(&app, &organizer.token, &id).await;
        assert_eq!(read["capacity"], 3);
        assert_eq!(read["version"], 1);

        let resp = app
            .patch(&event_path(&id), Some(&organizer.token), replace("/capacity", json!(2)), None)
            .await;
        resp.expect(200);
        assert_eq!(resp.body["capacity"], 2);
        assert_eq!(resp.body["confirmed_count"], 2);
        assert_eq!(resp.body["available_seats"], 0);
    }

    async fn raising_capacity_promotes_the_oldest_waitlisted_attendees(app) {
        let organizer = app.user().await;
        let id = app
            .published_event(&organizer.token, json!({"capacity": 1, "waitlist_enabled": true}))
            .await;
        let mut users = Vec::new();
        for _ in 0..4 {
            let user = app.user().await;
            app.register(&user.token, &id).await.expect(201);
            users.push(user);
        }
        let before = app.attendance(&organizer.token, &id).await;
        assert_eq!(before[&users[0].id], ("confirmed".to_owned(), Value::Null));
        for (i, user) in users[1..].iter().enumerate() {
            assert_eq!(before[&user.id], ("waitlisted".to_owned(), json!(i + 1)));
        }

        let resp = app
            .patch(&event_path(&id), Some(&organizer.token), replace("/capacity", json!(3)), None)
            .await;
        resp.expect(200);
        assert_eq!(resp.body["capacity"], 3);
        assert_eq!(resp.body["confirmed_count"], 3);
        assert_eq!(resp.body["waitlist_count"], 1);
        assert_eq!(resp.body["available_seats"], 0);
        assert_eq!(resp.body["version"], 2);

        let after = app.attendance(&organizer.token, &id).await;
        assert_eq!(after[&users[0].id], ("confirmed".to_owned(), Value::Null));
        assert_eq!(after[&users[1].id], ("confirmed".to_owned(), Value::Null));
        assert_eq!(after[&users[2].id], ("confirmed".to_owned(), Value::Null));
        assert_eq!(after[&users[3].id], ("waitlisted".to_owned(), json!(1)));
        assert_eq!(
            app.scalar_i64("SELECT COUNT(*) FROM attendees WHERE status = 'confirmed'").await,
            3
        );
    }

    async fn making_capacity_unlimited_promotes_everyone_waiting(app) {
        let organizer = app.user().await;
        let id = app
            .published_event(&organizer.token, json!({"capacity": 1, "waitlist_enabled": true}))
            .await;
        let mut users = Vec::new();
        for _ in 0..3 {
            let user = app.user().await;
            app.register(&user.token, &id).await.expect(201);
            users.push(user);
        }
        let resp = app
            .patch(&event_path(&id), Some(&organizer.token), replace("/capacity", Value::Null), None)
            .await;
        resp.expect(200);
        assert_eq!(resp.body["capacity"], Value::Null);
        assert_eq!(resp.body["available_seats"], Value::Null);
        assert_eq!(resp.body["confirmed_count"], 3);
        assert_eq!(resp.body["waitlist_count"], 0);
        let after = app.attendance(&organizer.token, &id).await;
        for user in &users {
            assert_eq!(after[&user.id], ("confirmed".to_owned(), Value::Null));
        }
        assert_eq!(
            app.scalar_i64("SELECT COUNT(*) FROM attendees WHERE status = 'waitlisted'").await,
            0
        );
    }

    async fn a_stale_if_match_is_412_and_changes_nothing(app) {
        let organizer = app.user().await;
        let id = event_titled(&app, &organizer.token, "First", json!({})).await;
        let path = event_path(&id);
        app.patch(&path, Some(&organizer.token), replace("/title", json!("Second")), Some("\"1\""))
            .await
            .expect(200);
        let stale = app
            .patch(&path, Some(&organizer.token), replace("/title", json!("Third")), Some("\"1\""))
            .await;
        stale.expect_problem(412);
        let read = read_event(&app, &organizer.token, &id).await;
        assert_eq!(read["title"], "Second");
        assert_eq!(read["version"], 2);

        let fresh = app
            .patch(&path, Some(&organizer.token), replace("/title", json!("Third")), Some("\"2\""))
            .await;
        fresh.expect(200);
        assert_eq!(fresh.body["version"], 3);
        assert_eq!(fresh.etag(), "\"3\"");
    }

    async fn strangers_get_403_patching_a_published_event_and_404_patching_a_draft(app) {
        let organizer = app.user().await;
        let stranger = app.user().await;
        let published = app.published_event(&organizer.token, json!({"title": "Public"})).await;
        let draft = event_titled(&app, &organizer.token, "Private", json!({})).await;

        let resp = app
            .patch(&event_path(&published), Some(&stranger.token), replace("/title", json!("Hijacked")), None)
            .await;
        resp.expect_problem(403);
        let resp = app
            .patch(&event_path(&draft), Some(&stranger.token), replace("/title", json!("Hijacked")), None)
            .await;
        resp.expect_problem(404);

        assert_eq!(read_event(&app, &organizer.token, &published).await["title"], "Public");
        assert_eq!(read_event(&app, &organizer.token, &draft).await["title"], "Private");
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM events WHERE version = 1").await, 2);
    }

    async fn read_only_event_fields_cannot_be_patched(app) {
        let organizer = app.user().await;
        let other = app.user().await;
        let id = event_titled(&app, &organizer.token, "Fixed", json!({})).await;
        let before = read_event(&app, &organizer.token, &id).await;
        for (path, value) in [
            ("/id", json!(uuid::Uuid::now_v7().to_string())),
            ("/organizer_id", json!(other.id)),
            ("/confirmed_count", json!(5)),
            ("/waitlist_count", json!(5)),
            ("/version", json!(9)),
            ("/created_at", json!("2020-01-01T00:00:00Z")),
        ] {
            let resp = app.patch(&event_path(&id), Some(&organizer.token), replace(path, value), None).await;
            assert_eq!(resp.status, 422, "{path}: {}", resp.body);
            resp.expect_problem(422);
        }
        assert_eq!(read_event(&app, &organizer.token, &id).await, before);
    }

    async fn deleting_an_event_removes_it_and_its_attendee_records(app) {
        let organizer = app.user().await;
        let doomed = app.published_event(&organizer.token, json!({"title": "Doomed"})).await;
        let kept = app.published_event(&organizer.token, json!({"title": "Kept"})).await;
        let alice = app.user().await;
        let bob = app.user().await;
        app.register(&alice.token, &doomed).await.expect(201);
        app.register(&bob.token, &doomed).await.expect(201);
        app.register(&alice.token, &kept).await.expect(201);
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees").await, 3);

        let resp = app.delete(&event_path(&doomed), Some(&organizer.token)).await;
        resp.expect(204);
        assert_eq!(resp.body, Value::Null, "204 has no body");
        app.get(&event_path(&doomed), Some(&organizer.token)).await.expect_problem(404);
        app.get(&event_path(&doomed), None).await.expect_problem(404);
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM events").await, 1);
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees").await, 1);
        assert_eq!(
            app.scalar_i64(
                "SELECT COUNT(*) FROM attendees a JOIN events e ON e.id = a.event_id WHERE e.title = 'Kept'"
            )
            .await,
            1
        );
        let mine = app.get("/api/v1/users/me/registrations", Some(&alice.token)).await;
        mine.expect(200);
        assert_eq!(mine.body["total"], 1);
        assert_eq!(mine.body["items"][0]["event"]["title"], "Kept");
        // Deleting again finds nothing.
        app.delete(&event_path(&doomed), Some(&organizer.token)).await.expect_problem(404);
    }

    async fn strangers_cannot_delete_an_event(app) {
        let organizer = app.user().await;
        let stranger = app.user().await;
        let published = app.published_event(&organizer.token, json!({})).await;
        let draft = event_titled(&app, &organizer.token, "Draft", json!({})).await;
        let attendee = app.user().await;
        app.register(&attendee.token, &published).await.expect(201);

        app.delete(&event_path(&published), Some(&stranger.token)).await.expect_problem(403);
        app.delete(&event_path(&published), Some(&attendee.token)).await.expect_problem(403);
        app.delete(&event_path(&draft), Some(&stranger.token)).await.expect_problem(404);
        app.get(&event_path(&published), None).await.expect(200);
        app.get(&event_path(&draft), Some(&organizer.token)).await.expect(200);
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM events").await, 2);
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees").await, 1);
    }
}

backend_tests! {
    async fn removing_an_optional_member_clears_it_as_if_replaced_with_null(app) {
        let organizer = app.user().await;
        let id = event_titled(
            &app,
            &organizer.token,
            "Full",
            json!({"location": "Room 1", "description": "Talks", "capacity": 5}),
        )
        .await;
        let resp = app
            .patch(
                &event_path(&id),
                Some(&organizer.token),
                json!([
                    {"op": "remove", "path": "/location"},
                    {"op": "remove", "path": "/description"},
                    {"op": "remove", "path": "/capacity"},
                    // Within the patch the removed member already reads as null.
                    {"op": "test", "path": "/capacity", "value": null},
                ]),
                None,
            )
            .await;
        resp.expect(200);
        assert_eq!(resp.body["location"], "");
        assert_eq!(resp.body["description"], "");
        assert_eq!(resp.body["capacity"], Value::Null);
        assert_eq!(resp.body["version"], 2);
        assert_eq!(read_event(&app, &organizer.token, &id).await, resp.body);
    }

    async fn moving_out_of_an_optional_member_clears_the_source(app) {
        let organizer = app.user().await;
        let id = event_titled(
            &app,
            &organizer.token,
            "Moved",
            json!({"location": "Room 1", "description": "Talks"}),
        )
        .await;
        let resp = app
            .patch(
                &event_path(&id),
                Some(&organizer.token),
                json!([{"op": "move", "from": "/location", "path": "/description"}]),
                None,
            )
            .await;
        resp.expect(200);
        assert_eq!(resp.body["description"], "Room 1");
        assert_eq!(resp.body["location"], "");
    }

    async fn removing_a_required_event_member_is_422_naming_it_and_changes_nothing(app) {
        let organizer = app.user().await;
        let id = event_titled(&app, &organizer.token, "Kept", json!({})).await;
        for field in ["title", "starts_at", "ends_at", "waitlist_enabled", "status"] {
            let resp = app
                .patch(
                    &event_path(&id),
                    Some(&organizer.token),
                    json!([{"op": "remove", "path": format!("/{field}")}]),
                    None,
                )
                .await;
            resp.expect_field_error(field);
        }
        let read = read_event(&app, &organizer.token, &id).await;
        assert_eq!(read["version"], 1);
        assert_eq!(read["title"], "Kept");
    }
}
