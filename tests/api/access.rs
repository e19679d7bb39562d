//! Private events, staff, invitations and batch check-in.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::{Resp, TestApp, TestUser},
};

async fn private_event(app: &TestApp, organizer: &TestUser, extra: Value) -> String {
    let mut body = json!({"visibility": "private", "capacity": 100});
    if let (Some(map), Value::Object(extra)) = (body.as_object_mut(), extra) {
        map.extend(extra);
    }
    app.published_event(&organizer.token, body).await
}

async fn invite(app: &TestApp, token: &str, event: &str, body: Value) -> Resp {
    app.post(
        &format!("/api/v1/events/{event}/invitations"),
        Some(token),
        body,
    )
    .await
}

async fn put_staff(app: &TestApp, token: &str, event: &str, user: &str, role: &str) -> Resp {
    app.send(
        app.request(
            Method::PUT,
            &format!("/api/v1/events/{event}/staff/{user}"),
            Some(token),
        )
        .json(&json!({"role": role})),
    )
    .await
}

async fn register_with(app: &TestApp, user: &TestUser, event: &str, token: &str) -> Resp {
    app.post(
        &format!("/api/v1/events/{event}/attendees"),
        Some(&user.token),
        json!({"invitation": token}),
    )
    .await
}

async fn exec(app: &TestApp, sql: &str) {
    use sea_orm::ConnectionTrait;
    app.db.execute_unprepared(sql).await.expect("statement");
}

async fn check_in(app: &TestApp, token: &str, event: &str, scans: Value) -> Resp {
    app.post(
        &format!("/api/v1/events/{event}/check-ins"),
        Some(token),
        json!({ "scans": scans }),
    )
    .await
}

fn ids(list: &Resp) -> Vec<String> {
    list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

backend_tests! {
    async fn a_private_event_is_listed_only_for_its_organizer_staff_registered_users_and_admins(app) {
        let organizer = app.user().await;
        let checker = app.user().await;
        let attendee = app.user().await;
        let stranger = app.user().await;
        let admin = app.admin().await;
        let public = app.published_event(&organizer.token, json!({"title": "Open"})).await;
        let hidden = private_event(&app, &organizer, json!({"title": "Invite only"})).await;
        put_staff(&app, &organizer.token, &hidden, &checker.id, "checker").await.expect(201);
        app.register_user(&organizer.token, &hidden, &attendee.id).await.expect(201);
        for (who, token, sees) in [
            ("anonymous", None, false),
            ("stranger", Some(stranger.token.as_str()), false),
            ("attendee", Some(attendee.token.as_str()), true),
            ("checker", Some(checker.token.as_str()), true),
            ("organizer", Some(organizer.token.as_str()), true),
            ("admin", Some(admin.token.as_str()), true),
        ] {
            let list = app.get("/api/v1/events?limit=100", token).await;
            list.expect(200);
            let listed = ids(&list);
            assert!(listed.contains(&public), "{who} lists the public event");
            assert_eq!(listed.contains(&hidden), sees, "{who} and the private event");
            assert_eq!(list.body["total"], json!(listed.len()), "{who}: total counts what is listed");
            let got = app.get(&format!("/api/v1/events/{hidden}"), token).await;
            assert_eq!(got.status, if sees { 200 } else { 404 }, "{who} reads it");
        }
        // A cancelled registration no longer shows it.
        let record = app.attendees_of(&organizer.token, &hidden).await[0]["id"].as_str().expect("id").to_owned();
        app.delete(&format!("/api/v1/events/{hidden}/attendees/{record}"), Some(&attendee.token)).await.expect(204);
        app.get(&format!("/api/v1/events/{hidden}"), Some(&attendee.token)).await.expect_problem(404);
    }

    async fn visibility_is_created_read_and_patched_like_the_other_fields(app) {
        let organizer = app.user().await;
        let created = app.create_event(&organizer.token, json!({"status": "published"})).await;
        created.expect(201);
        assert_eq!(created.body["visibility"], "public");
        let id = created.body["id"].as_str().expect("id").to_owned();
        let stranger = app.user().await;
        let patched = app.patch(
            &format!("/api/v1/events/{id}"),
            Some(&organizer.token),
            json!([{"op": "replace", "path": "/visibility", "value": "private"}]),
            None,
        ).await;
        patched.expect(200);
        assert_eq!(patched.body["visibility"], "private");
        assert_eq!(patched.body["version"], 2);
        app.get(&format!("/api/v1/events/{id}"), Some(&stranger.token)).await.expect_problem(404);
        app.patch(
            &format!("/api/v1/events/{id}"),
            Some(&organizer.token),
            json!([{"op": "replace", "path": "/visibility", "value": "secret"}]),
            None,
        ).await.expect_problem(422);
        app.patch(
            &format!("/api/v1/events/{id}"),
            Some(&organizer.token),
            json!([{"op": "remove", "path": "/visibility"}]),
            None,
        ).await.expect_problem(422);
        app.create_event(&organizer.token, json!({"visibility": "hidden"})).await.expect_problem(400);
    }

    async fn an_invitation_shows_its_token_once_and_admits_to_a_private_event_until_used_up(app) {
        let organizer = app.user().await;
        let event = private_event(&app, &organizer, json!({"title": "Dinner", "location": "Attic"})).await;
        let created = invite(&app, &organizer.token, &event, json!({"max_uses": 2})).await;
        created.expect(201);
        let token = created.body["token"].as_str().expect("token").to_owned();
        assert!(token.len() >= 43, "32 random bytes, base64url: {token}");
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(created.body["status"], "active");
        assert_eq!(created.body["uses"], 0);
        assert_eq!(created.body["max_uses"], 2);
        let location = created.header("location").expect("Location").to_owned();
        let read = app.get(&location, Some(&organizer.token)).await;
        read.expect(200);
        assert!(read.body.get("token").is_none(), "the token is shown once: {}", read.body);
        let list = app.get(&format!("/api/v1/events/{event}/invitations"), Some(&organizer.token)).await;
        list.expect(200);
        assert!(list.body["items"][0].get("token").is_none());
        let stored = app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM invitations WHERE token_hash = '{}'",
            token.replace('\'', "")
        )).await;
        assert_eq!(stored, 0, "only the hash is stored");

        let lookup = app.get(&format!("/api/v1/invitations/{token}"), None).await;
        lookup.expect(200);
        assert_eq!(lookup.body["event"]["title"], "Dinner");
        assert_eq!(lookup.body["event"]["location"], "Attic");
        assert!(lookup.body["event"]["organizer_name"].as_str().is_some_and(|n| !n.is_empty()));

        let (first, second, third) = (app.user().await, app.user().await, app.user().await);
        app.register(&first.token, &event).await.expect_problem(404);
        register_with(&app, &first, &event, "not-a-token").await.expect_problem(404);
        register_with(&app, &first, &event, &token).await.expect(201);
        // A registration that fails takes no use.
        register_with(&app, &first, &event, &token).await.expect_problem(409);
        register_with(&app, &second, &event, &token).await.expect(201);
        register_with(&app, &third, &event, &token).await.expect_problem(404);
        let read = app.get(&location, Some(&organizer.token)).await;
        assert_eq!(read.body["uses"], 2);
        assert_eq!(read.body["status"], "used_up");
        let gone = app.get(&format!("/api/v1/invitations/{token}"), None).await;
        gone.expect_problem(410);
        assert_eq!(gone.body["type"], "urn:problem:event-manager:invitation-used-up");
        app.get("/api/v1/invitations/unknown-token", None).await.expect_problem(404);
        // Who got in sees the event.
        app.get(&format!("/api/v1/events/{event}"), Some(&first.token)).await.expect(200);
    }

    async fn revoked_and_expired_invitations_admit_nobody_and_answer_410(app) {
        let organizer = app.user().await;
        let event = private_event(&app, &organizer, json!({})).await;
        let revoked = invite(&app, &organizer.token, &event, json!({"max_uses": 5})).await;
        let revoked_token = revoked.body["token"].as_str().expect("token").to_owned();
        let revoked_id = revoked.body["id"].as_str().expect("id").to_owned();
        app.delete(&format!("/api/v1/events/{event}/invitations/{revoked_id}"), Some(&organizer.token)).await.expect(204);
        app.delete(&format!("/api/v1/events/{event}/invitations/{revoked_id}"), Some(&organizer.token)).await.expect(204);
        let gone = app.get(&format!("/api/v1/invitations/{revoked_token}"), None).await;
        gone.expect_problem(410);
        assert_eq!(gone.body["type"], "urn:problem:event-manager:invitation-revoked");
        let user = app.user().await;
        register_with(&app, &user, &event, &revoked_token).await.expect_problem(404);

        let expiring = invite(&app, &organizer.token, &event, json!({})).await;
        let expiring_token = expiring.body["token"].as_str().expect("token").to_owned();
        let expiring_id = expiring.body["id"].as_str().expect("id").to_owned();
        app.get(&format!("/api/v1/events/{event}/invitations/{expiring_id}"), Some(&organizer.token)).await.expect(200);
        // Time passes: the one invitation not revoked reaches its expiry.
        exec(&app, "UPDATE invitations SET expires_at = created_at WHERE revoked_at IS NULL").await;
        let gone = app.get(&format!("/api/v1/invitations/{expiring_token}"), None).await;
        gone.expect_problem(410);
        assert_eq!(gone.body["type"], "urn:problem:event-manager:invitation-expired");
        register_with(&app, &user, &event, &expiring_token).await.expect_problem(404);
    }

    async fn invitation_rules_are_checked(app) {
        let organizer = app.user().await;
        let event = private_event(&app, &organizer, json!({})).await;
        invite(&app, &organizer.token, &event, json!({"max_uses": 0})).await.expect_problem(422);
        invite(&app, &organizer.token, &event, json!({"max_uses": 10001})).await.expect_problem(422);
        invite(&app, &organizer.token, &event, json!({"expires_at": "2020-01-01T00:00:00Z"})).await.expect_field_error("expires_at");
        let far = (chrono::Utc::now() + chrono::Duration::days(400)).to_rfc3339();
        invite(&app, &organizer.token, &event, json!({"expires_at": far})).await.expect_field_error("expires_at");
        let created = invite(&app, &organizer.token, &event, json!({})).await;
        created.expect(201);
        assert_eq!(created.body["max_uses"], 1);
        let expires = chrono::DateTime::parse_from_rfc3339(created.body["expires_at"].as_str().expect("expires_at")).expect("a time");
        let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
        assert!((167..=168).contains(&days), "7 days by default, got {days} hours");
        // An invitation to a public event is checked too.
        let public = app.published_event(&organizer.token, json!({})).await;
        let user = app.user().await;
        register_with(&app, &user, &public, "nonsense").await.expect_problem(409);
        let public_invite = invite(&app, &organizer.token, &public, json!({})).await;
        let t = public_invite.body["token"].as_str().expect("token").to_owned();
        register_with(&app, &user, &public, &t).await.expect(201);
        assert_eq!(app.scalar_i64("SELECT CAST(SUM(uses) AS BIGINT) FROM invitations").await, 1);
    }

    async fn fifty_concurrent_registrations_on_an_invitation_for_ten_admit_exactly_ten(app) {
        let organizer = app.user().await;
        let event = private_event(&app, &organizer, json!({})).await;
        let created = invite(&app, &organizer.token, &event, json!({"max_uses": 10})).await;
        let token = created.body["token"].as_str().expect("token").to_owned();
        let location = created.header("location").expect("Location").to_owned();
        let mut users = Vec::new();
        for _ in 0..50 {
            users.push(app.user().await);
        }
        let results = futures::future::join_all(
            users.iter().map(|u| register_with(&app, u, &event, &token)),
        ).await;
        let admitted = results.iter().filter(|r| r.status == 201).count();
        let refused = results.iter().filter(|r| r.status == 404).count();
        assert_eq!(admitted, 10, "statuses: {:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());
        assert_eq!(refused, 40);
        let read = app.get(&location, Some(&organizer.token)).await;
        assert_eq!(read.body["uses"], 10);
        let event_now = app.get(&format!("/api/v1/events/{event}"), Some(&organizer.token)).await;
        assert_eq!(event_now.body["confirmed_count"], 10);
    }

    async fn staff_roles_are_added_changed_listed_and_removed(app) {
        let organizer = app.user().await;
        let helper = app.user().await;
        let event = app.published_event(&organizer.token, json!({})).await;
        let added = put_staff(&app, &organizer.token, &event, &helper.id, "checker").await;
        added.expect(201);
        assert_eq!(added.body["role"], "checker");
        assert_eq!(added.body["user_id"], helper.id);
        put_staff(&app, &organizer.token, &event, &helper.id, "checker").await.expect(200);
        let changed = put_staff(&app, &organizer.token, &event, &helper.id, "co_organizer").await;
        changed.expect(200);
        assert_eq!(changed.body["role"], "co_organizer");
        assert_eq!(changed.body["added_at"], added.body["added_at"]);
        let list = app.get(&format!("/api/v1/events/{event}/staff"), Some(&helper.token)).await;
        list.expect(200);
        assert_eq!(list.body["items"].as_array().expect("items").len(), 1);
        // The organizer is never staff of their own event; unknown users and roles are refused.
        put_staff(&app, &organizer.token, &event, &organizer.id, "checker").await.expect_problem(409);
        put_staff(&app, &organizer.token, &event, &uuid::Uuid::now_v7().to_string(), "checker").await.expect_problem(404);
        put_staff(&app, &organizer.token, &event, &helper.id, "owner").await.expect_problem(400);
        // A co-organizer changes the event but may not manage staff or delete it.
        app.patch(&format!("/api/v1/events/{event}"), Some(&helper.token),
            json!([{"op": "replace", "path": "/title", "value": "Co-run"}]), None).await.expect(200);
        app.delete(&format!("/api/v1/events/{event}"), Some(&helper.token)).await.expect_problem(403);
        app.delete(&format!("/api/v1/events/{event}/staff/{}", helper.id), Some(&organizer.token)).await.expect(204);
        app.delete(&format!("/api/v1/events/{event}/staff/{}", helper.id), Some(&organizer.token)).await.expect_problem(404);
        app.patch(&format!("/api/v1/events/{event}"), Some(&helper.token),
            json!([{"op": "replace", "path": "/title", "value": "Again"}]), None).await.expect_problem(403);
    }

    async fn a_deleted_user_loses_staff_roles_but_their_invitations_stay_valid(app) {
        let organizer = app.user().await;
        let co = app.user().await;
        let event = private_event(&app, &organizer, json!({})).await;
        put_staff(&app, &organizer.token, &event, &co.id, "co_organizer").await.expect(201);
        let created = invite(&app, &co.token, &event, json!({"max_uses": 3})).await;
        created.expect(201);
        assert_eq!(created.body["created_by"], co.id);
        let token = created.body["token"].as_str().expect("token").to_owned();
        app.delete(&format!("/api/v1/users/{}", co.id), Some(&co.token)).await.expect(204);
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM event_staff").await, 0);
        let changes = app.get(&format!("/api/v1/events/{event}/changes"), Some(&organizer.token)).await;
        let kinds: Vec<&str> = changes.body["items"].as_array().expect("items").iter().map(|c| c["type"].as_str().expect("type")).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "staff.changed").count(), 2, "added, then removed: {kinds:?}");
        let guest = app.user().await;
        register_with(&app, &guest, &event, &token).await.expect(201);
    }

    async fn a_batch_of_scans_checks_in_once_and_reports_each_scan_in_order(app) {
        let organizer = app.user().await;
        let checker = app.user().await;
        let event = app.published_event(&organizer.token, json!({"capacity": 1, "waitlist_enabled": true})).await;
        put_staff(&app, &organizer.token, &event, &checker.id, "checker").await.expect(201);
        let (a, b, c) = (app.user().await, app.user().await, app.user().await);
        let confirmed = app.register(&a.token, &event).await.body["id"].as_str().expect("id").to_owned();
        let waitlisted = app.register(&b.token, &event).await.body["id"].as_str().expect("id").to_owned();
        let cancelled = app.register(&c.token, &event).await.body["id"].as_str().expect("id").to_owned();
        app.delete(&format!("/api/v1/events/{event}/attendees/{cancelled}"), Some(&c.token)).await.expect(204);
        let unknown = uuid::Uuid::now_v7().to_string();
        let batch = json!([
            {"attendee_id": confirmed, "scanned_at": "2026-01-02T10:00:05Z"},
            {"attendee_id": waitlisted},
            {"attendee_id": cancelled},
            {"attendee_id": unknown},
            {"attendee_id": confirmed, "scanned_at": "2026-01-02T10:00:00Z"},
        ]);
        let first = check_in(&app, &checker.token, &event, batch.clone()).await;
        first.expect(200);
        let results = first.body["results"].as_array().expect("results");
        let outcomes: Vec<&str> = results.iter().map(|r| r["result"].as_str().expect("result")).collect();
        assert_eq!(outcomes, ["checked_in", "not_confirmed", "not_confirmed", "not_found", "already_checked_in"]);
        // The earliest scan is the check-in time.
        assert_eq!(results[0]["checked_in_at"], "2026-01-02T10:00:00Z");
        assert_eq!(results[4]["checked_in_at"], "2026-01-02T10:00:00Z");
        let changes_before = app.scalar_i64("SELECT COUNT(*) FROM changes").await;
        let again = check_in(&app, &checker.token, &event, batch).await;
        again.expect(200);
        let outcomes: Vec<&str> = again.body["results"].as_array().expect("results").iter().map(|r| r["result"].as_str().expect("result")).collect();
        assert_eq!(outcomes, ["already_checked_in", "not_confirmed", "not_confirmed", "not_found", "already_checked_in"]);
        assert_eq!(again.body["results"][0]["checked_in_at"], "2026-01-02T10:00:00Z");
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM changes").await, changes_before, "nothing changed");
        let record = app.get(&format!("/api/v1/events/{event}/attendees/{confirmed}"), Some(&a.token)).await;
        assert_eq!(record.body["checked_in_at"], "2026-01-02T10:00:00Z");
        let feed = app.get(&format!("/api/v1/events/{event}/changes"), Some(&organizer.token)).await;
        let checked: Vec<&Value> = feed.body["items"].as_array().expect("items").iter().filter(|c| c["type"] == "attendee.checked_in").collect();
        assert_eq!(checked.len(), 1);
    }

    async fn check_in_rules_are_checked(app) {
        let organizer = app.user().await;
        let event = app.published_event(&organizer.token, json!({})).await;
        check_in(&app, &organizer.token, &event, json!([])).await.expect_field_error("scans");
        let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        check_in(&app, &organizer.token, &event, json!([{"attendee_id": uuid::Uuid::now_v7(), "scanned_at": future}]))
            .await.expect_field_error("scans[0].scanned_at");
        let too_many: Vec<Value> = (0..1001).map(|_| json!({"attendee_id": uuid::Uuid::now_v7()})).collect();
        check_in(&app, &organizer.token, &event, json!(too_many)).await.expect_field_error("scans");
        let draft = app.create_event(&organizer.token, json!({})).await.body["id"].as_str().expect("id").to_owned();
        check_in(&app, &organizer.token, &draft, json!([{"attendee_id": uuid::Uuid::now_v7()}])).await.expect_problem(409);
    }

    async fn a_batch_of_a_thousand_scans_sent_twice_at_once_checks_each_in_once(app) {
        let organizer = app.user().await;
        let event = app.published_event(&organizer.token, json!({})).await;
        // A thousand sign-ups (not logins: those are throttled per client), registered by
        // the organizer.
        let mut records = Vec::new();
        let (app, organizer, event) = (&app, &organizer, &event);
        for chunk in 0..10 {
            let futures = (0..100).map(|i| async move {
                let signed_up = app
                    .post(
                        "/api/v1/users",
                        None,
                        json!({"email": format!("door{chunk}-{i}@example.com"), "password": "password-123", "full_name": "Guest"}),
                    )
                    .await;
                signed_up.expect(201);
                let user = signed_up.body["id"].as_str().expect("id").to_owned();
                let r = app.register_user(&organizer.token, event, &user).await;
                r.expect(201);
                r.body["id"].as_str().expect("id").to_owned()
            });
            records.extend(futures::future::join_all(futures).await);
        }
        let batch: Vec<Value> = records.iter().map(|id| json!({"attendee_id": id})).collect();
        let body = json!(batch);
        let (one, two) = tokio::join!(
            check_in(app, &organizer.token, event, body.clone()),
            check_in(app, &organizer.token, event, body),
        );
        one.expect(200);
        two.expect(200);
        let count = |r: &Resp, what: &str| r.body["results"].as_array().expect("results").iter().filter(|x| x["result"] == what).count();
        assert_eq!(count(&one, "checked_in") + count(&two, "checked_in"), 1000);
        assert_eq!(count(&one, "already_checked_in") + count(&two, "already_checked_in"), 1000);
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM attendees WHERE status = 'checked_in' AND checked_in_at IS NOT NULL").await, 1000);
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM changes WHERE kind = 'attendee.checked_in'").await, 1000);
    }

    async fn the_change_feed_records_staff_invitation_and_check_in_changes_with_details_for_staff_only(app) {
        let organizer = app.user().await;
        let checker = app.user().await;
        let attendee = app.user().await;
        let event = app.published_event(&organizer.token, json!({})).await;
        put_staff(&app, &organizer.token, &event, &checker.id, "checker").await.expect(201);
        let created = invite(&app, &organizer.token, &event, json!({})).await;
        let invitation = created.body["id"].as_str().expect("id").to_owned();
        app.delete(&format!("/api/v1/events/{event}/invitations/{invitation}"), Some(&organizer.token)).await.expect(204);
        let record = app.register(&attendee.token, &event).await.body["id"].as_str().expect("id").to_owned();
        check_in(&app, &checker.token, &event, json!([{"attendee_id": record}])).await.expect(200);
        let feed = app.get(&format!("/api/v1/events/{event}/changes"), Some(&checker.token)).await;
        let items = feed.body["items"].as_array().expect("items");
        let kinds: Vec<&str> = items.iter().map(|c| c["type"].as_str().expect("type")).collect();
        assert_eq!(kinds, ["event.created", "staff.changed", "invitation.created", "invitation.revoked", "attendee.registered", "attendee.checked_in"]);
        assert_eq!(items[1]["data"]["role"], "checker");
        assert_eq!(items[2]["data"]["id"], invitation);
        assert!(items[2]["data"].get("token").is_none(), "the token never reaches the feed");
        assert_eq!(items[3]["data"]["status"], "revoked");
        assert_eq!(items[5]["actor_id"], checker.id);
        let seqs: Vec<i64> = items.iter().map(|c| c["seq"].as_i64().expect("seq")).collect();
        assert_eq!(seqs, (1..=6).collect::<Vec<_>>());
        let public = app.get(&format!("/api/v1/events/{event}/changes"), Some(&attendee.token)).await;
        for change in public.body["items"].as_array().expect("items").iter().skip(1) {
            assert!(change["data"].is_null() && change["actor_id"].is_null(), "counts only: {change}");
        }
    }

    async fn a_checker_reads_attendance_and_checks_in_but_changes_nothing_else(app) {
        let organizer = app.user().await;
        let checker = app.user().await;
        let attendee = app.user().await;
        let event = app.published_event(&organizer.token, json!({})).await;
        put_staff(&app, &organizer.token, &event, &checker.id, "checker").await.expect(201);
        let record = app.register(&attendee.token, &event).await.body["id"].as_str().expect("id").to_owned();
        assert_eq!(app.attendees_of(&checker.token, &event).await.len(), 1);
        let path = format!("/api/v1/events/{event}/attendees/{record}");
        app.patch(&path, Some(&checker.token), json!([{"op": "replace", "path": "/status", "value": "cancelled"}]), None).await.expect_problem(403);
        let checked = app.patch(&path, Some(&checker.token), json!([{"op": "replace", "path": "/status", "value": "checked_in"}]), None).await;
        checked.expect(200);
        assert!(checked.body["checked_in_at"].is_string());
        invite(&app, &checker.token, &event, json!({})).await.expect_problem(403);
    }
}

backend_tests! {
    async fn a_private_event_streams_only_to_who_may_see_it(app) {
        let organizer = app.user().await;
        let attendee = app.user().await;
        let stranger = app.user().await;
        let event = private_event(&app, &organizer, json!({})).await;
        app.register_user(&organizer.token, &event, &attendee.id).await.expect(201);
        let path = format!("/api/v1/events/{event}/stream");
        let refused = app.request(Method::GET, &path, Some(&stranger.token)).send().await.expect("sent");
        assert_eq!(refused.status().as_u16(), 404);
        let anonymous = app.request(Method::GET, &path, None).send().await.expect("sent");
        assert_eq!(anonymous.status().as_u16(), 404);
        let mut open = app.request(Method::GET, &path, Some(&attendee.token)).send().await.expect("sent");
        assert_eq!(open.status().as_u16(), 200);
        let first = open.chunk().await.expect("chunk").expect("the snapshot");
        assert!(String::from_utf8_lossy(&first).contains("event: snapshot"));
    }

    async fn co_organizers_may_subscribe_webhooks_to_the_event_and_checkers_may_not(app) {
        let organizer = app.user().await;
        let co = app.user().await;
        let checker = app.user().await;
        let event = app.published_event(&organizer.token, json!({})).await;
        put_staff(&app, &organizer.token, &event, &co.id, "co_organizer").await.expect(201);
        put_staff(&app, &organizer.token, &event, &checker.id, "checker").await.expect(201);
        let hook = json!({"url": "https://hooks.example.invalid/in", "event_id": event, "active": false});
        app.post("/api/v1/webhooks", Some(&co.token), hook.clone()).await.expect(201);
        app.post("/api/v1/webhooks", Some(&checker.token), hook).await.expect_problem(403);
    }
}

backend_tests! {
    async fn a_checker_reads_the_statistics_and_exports_the_list_for_the_door(app) {
        let organizer = app.user().await;
        let checker = app.user().await;
        let attendee = app.user().await;
        let event = private_event(&app, &organizer, json!({})).await;
        put_staff(&app, &organizer.token, &event, &checker.id, "checker").await.expect(201);
        let record = app.register_user(&organizer.token, &event, &attendee.id).await.body["id"].as_str().expect("id").to_owned();
        check_in(&app, &checker.token, &event, json!([{"attendee_id": record}])).await.expect(200);
        let stats = app.get(&format!("/api/v1/events/{event}/stats"), Some(&checker.token)).await;
        stats.expect(200);
        assert_eq!(stats.body["counts"]["checked_in"], 1);
        assert_eq!(stats.body["check_in_rate"], 1.0);
        let csv = app
            .request(Method::GET, &format!("/api/v1/events/{event}/attendees"), Some(&checker.token))
            .header("accept", "text/csv")
            .send()
            .await
            .expect("sent");
        assert_eq!(csv.status().as_u16(), 200);
        let text = csv.text().await.expect("body");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[1].starts_with(&record) && lines[1].contains("checked_in"), "{text}");
        let stranger = app.user().await;
        app.get(&format!("/api/v1/events/{event}/stats"), Some(&stranger.token)).await.expect_problem(404);
    }
}

/// A full batch fits whatever `MAX_BODY_BYTES` says; other bodies keep the configured limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_a_thousand_scans_fits_although_max_body_bytes_is_one_kib() {
    let app = TestApp::spawn_with(crate::helpers::Backend::Sqlite, |c| c.max_body_bytes = 1024)
        .await
        .expect("sqlite is always available");
    let organizer = app.user().await;
    let event = app.published_event(&organizer.token, json!({})).await;
    let scans: Vec<Value> = (0..1000)
        .map(|_| json!({"attendee_id": uuid::Uuid::now_v7(), "scanned_at": "2026-01-02T10:00:00Z"}))
        .collect();
    let body = json!({ "scans": scans });
    assert!(
        body.to_string().len() > 64 * 1024,
        "larger than the default limit too"
    );
    let answered = check_in(&app, &organizer.token, &event, json!(scans)).await;
    answered.expect(200);
    assert_eq!(
        answered.body["results"].as_array().expect("results").len(),
        1000
    );
    let padded = "x".repeat(2000);
    app.post(
        "/api/v1/events",
        Some(&organizer.token),
        json!({"title": "T", "description": padded}),
    )
    .await
    .expect_problem(413);
}
