//! JSON Patch (RFC 6902) on users: operations, atomicity, paths, versions, If-Match, media types.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::{PASSWORD, Resp, TestApp, TestUser},
};

fn user_path(user: &TestUser) -> String {
    format!("/api/v1/users/{}", user.id)
}

/// PATCH as `user` on their own account.
async fn patch_self(app: &TestApp, user: &TestUser, ops: Value) -> Resp {
    app.patch(&user_path(user), Some(&user.token), ops, None)
        .await
}

/// The user as they see themself.
async fn read(app: &TestApp, user: &TestUser) -> Value {
    let resp = app.get(&user_path(user), Some(&user.token)).await;
    resp.expect(200);
    resp.body
}

/// PATCH with a raw body and `Content-Type` (none when `None`).
async fn patch_raw(app: &TestApp, user: &TestUser, content_type: Option<&str>, body: &str) -> Resp {
    let mut rb = app
        .request(Method::PATCH, &user_path(user), Some(&user.token))
        .body(body.to_owned());
    if let Some(ct) = content_type {
        rb = rb.header("content-type", ct);
    }
    app.send(rb).await
}

/// Asserts a successful patch: 200, version bumped by one, `ETag` of the new version.
#[track_caller]
fn expect_changed(resp: &Resp, before: &Value) {
    resp.expect(200);
    let version = before["version"].as_i64().unwrap() + 1;
    assert_eq!(resp.body["version"], version);
    assert_eq!(resp.etag(), format!("\"{version}\""));
    assert!(resp.body.get("password").is_none());
}

backend_tests! {
    async fn a_patch_over_the_operation_limit_is_422_even_with_a_stale_if_match(app) {
        let user = app.user().await;
        let ops: Vec<Value> = (0..101)
            .map(|_| json!({"op": "replace", "path": "/full_name", "value": "Ada"}))
            .collect();
        let resp = app
            .patch(
                &format!("/api/v1/users/{}", user.id),
                Some(&user.token),
                Value::Array(ops),
                Some("\"999\""),
            )
            .await;
        // The document's own rule (at most 100 operations) is checked before the precondition.
        resp.expect_problem(422);
    }

    async fn a_patch_whose_path_is_no_member_pointer_is_422_even_with_a_stale_if_match(app) {
        let user = app.user().await;
        // The whole document: a pointer, but to no member.
        let resp = app
            .patch(
                &format!("/api/v1/users/{}", user.id),
                Some(&user.token),
                json!([{"op": "test", "path": "", "value": null}]),
                Some("\"999\""),
            )
            .await;
        resp.expect_problem(422);
        // Not JSON Pointers at all: malformed documents.
        for path in ["title", "/a~2b"] {
            let resp = app
                .patch(
                    &format!("/api/v1/users/{}", user.id),
                    Some(&user.token),
                    json!([{"op": "test", "path": path, "value": null}]),
                    Some("\"999\""),
                )
                .await;
            resp.expect_problem(400);
        }
    }

    async fn add_on_an_existing_member_replaces_it(app) {
        let user = app.user().await;
        let before = read(&app, &user).await;
        let resp = patch_self(
            &app,
            &user,
            json!([{"op": "add", "path": "/full_name", "value": "Added Name"}]),
        )
        .await;
        expect_changed(&resp, &before);
        assert_eq!(resp.body["full_name"], "Added Name");
        assert_eq!(resp.body["email"], before["email"]);
        assert_eq!(read(&app, &user).await, resp.body);
    }

    async fn replace_changes_the_field_and_updated_at(app) {
        let user = app.user().await;
        let before = read(&app, &user).await;
        let resp = patch_self(
            &app,
            &user,
            json!([{"op": "replace", "path": "/full_name", "value": "  Replaced  "}]),
        )
        .await;
        expect_changed(&resp, &before);
        assert_eq!(
            resp.body["full_name"], "Replaced",
            "stored trimmed, as at sign-up"
        );
        assert_eq!(resp.body["created_at"], before["created_at"]);
        assert!(
            resp.body["updated_at"].as_str().unwrap() >= before["updated_at"].as_str().unwrap()
        );
        assert_eq!(
            app.scalar_i64("SELECT version FROM users WHERE full_name = 'Replaced'")
                .await,
            2
        );
    }

    async fn removing_the_write_only_password_changes_nothing(app) {
        let user = app.user().await;
        let before = read(&app, &user).await;
        // `password` reads as null; removing it leaves the password as it is.
        let resp = patch_self(&app, &user, json!([{"op": "remove", "path": "/password"}])).await;
        resp.expect(200);
        assert_eq!(resp.body, before);
        assert_eq!(resp.etag(), "\"1\"");
        app.token(&user.email, PASSWORD).await;
    }

    async fn removing_a_required_field_is_422_naming_it(app) {
        let user = app.user().await;
        let before = read(&app, &user).await;
        for field in ["full_name", "email"] {
            let resp = patch_self(
                &app,
                &user,
                json!([{"op": "remove", "path": format!("/{field}")}]),
            )
            .await;
            resp.expect_field_error(field);
        }
        // Only an administrator may touch /role at all; removing it is then a 422 too.
        let admin = app.admin().await;
        let resp = app
            .patch(
                &format!("/api/v1/users/{}", user.id),
                Some(&admin.token),
                json!([{"op": "remove", "path": "/role"}]),
                None,
            )
            .await;
        resp.expect_field_error("role");
        assert_eq!(read(&app, &user).await, before);
    }

    async fn move_takes_the_value_from_one_member_to_another(app) {
        let user = app.user().await;
        let before = read(&app, &user).await;
        let resp = patch_self(
            &app,
            &user,
            json!([
                {"op": "add", "path": "/password", "value": "Moved Name"},
                {"op": "move", "from": "/password", "path": "/full_name"}
            ]),
        )
        .await;
        expect_changed(&resp, &before);
        assert_eq!(resp.body["full_name"], "Moved Name");
        // The password was moved away, so it is unchanged.
        app.token(&user.email, PASSWORD).await;
    }

    async fn copy_duplicates_a_value_even_from_a_read_only_member(app) {
        let user = app.user().await;
        let before = read(&app, &user).await;
        let resp = patch_self(
            &app,
            &user,
            json!([{"op": "copy", "from": "/role", "path": "/full_name"}]),
        )
        .await;
        expect_changed(&resp, &before);
        assert_eq!(resp.body["full_name"], "member");
        assert_eq!(resp.body["role"], "member");

        // Copied into the write-only password: the email becomes the password.
        let resp = patch_self(
            &app,
            &user,
            json!([{"op": "copy", "from": "/email", "path": "/password"}]),
        )
        .await;
        resp.expect(200);
        assert_eq!(resp.body["version"], 3, "a new password is a change");
        assert_eq!(resp.body["email"], user.email.as_str());
        app.token(&user.email, &user.email).await;
    }

    async fn a_passing_test_lets_the_rest_apply(app) {
        let user = app.user().await;
        let before = read(&app, &user).await;
        let resp = patch_self(
            &app,
            &user,
            json!([
                {"op": "test", "path": "/email", "value": user.email},
                {"op": "test", "path": "/role", "value": "member"},
                {"op": "replace", "path": "/full_name", "value": "Tested"}
            ]),
        )
        .await;
        expect_changed(&resp, &before);
        assert_eq!(resp.body["full_name"], "Tested");
    }

    async fn a_failing_test_changes_nothing(app) {
        let user = app.user().await;
        let before = read(&app, &user).await;
        let resp = patch_self(
            &app,
            &user,
            json!([
                {"op": "replace", "path": "/full_name", "value": "Should Not Stick"},
                {"op": "replace", "path": "/password", "value": "should not stick"},
                {"op": "test", "path": "/email", "value": "someone.else@example.com"}
            ]),
        )
        .await;
        resp.expect_problem(422);
        assert_eq!(
            read(&app, &user).await,
            before,
            "fields and version unchanged"
        );
        app.token(&user.email, PASSWORD).await;
        assert_eq!(
            app.scalar_i64("SELECT COUNT(*) FROM users WHERE full_name = 'Should Not Stick'")
                .await,
            0
        );
    }

    async fn a_path_outside_the_view_is_422_and_changes_nothing(app) {
        let user = app.user().await;
        let before = read(&app, &user).await;
        for ops in [
            json!([{"op": "add", "path": "/nope", "value": 1}]),
            json!([{"op": "replace", "path": "/nope", "value": 1}]),
            json!([{"op": "remove", "path": "/nope"}]),
            json!([
                {"op": "replace", "path": "/full_name", "value": "X"},
                {"op": "replace", "path": "/nope", "value": 1}
            ]),
            json!([{"op": "replace", "path": "", "value": {}}]),
            json!([{"op": "replace", "path": "/full_name/deep", "value": "x"}]),
            json!([{"op": "test", "path": "/nope", "value": 1}]),
            json!([{"op": "copy", "from": "/nope", "path": "/full_name"}]),
        ] {
            let resp = patch_self(&app, &user, ops.clone()).await;
            resp.expect_problem(422);
            assert!(resp.body["detail"].is_string(), "{ops}: {}", resp.body);
        }
        assert_eq!(read(&app, &user).await, before);
    }

    async fn read_only_members_are_422(app) {
        let user = app.user().await;
        let admin = app.admin().await;
        let before = read(&app, &user).await;
        for (path, value) in [
            ("/id", json!(uuid::Uuid::now_v7())),
            ("/version", json!(99)),
            ("/created_at", json!("2020-01-01T00:00:00Z")),
            ("/updated_at", json!("2020-01-01T00:00:00Z")),
        ] {
            for token in [&user.token, &admin.token] {
                let resp = app
                    .patch(
                        &user_path(&user),
                        Some(token),
                        json!([{"op": "replace", "path": path, "value": value}]),
                        None,
                    )
                    .await;
                resp.expect_problem(422);
                let resp = app
                    .patch(
                        &user_path(&user),
                        Some(token),
                        json!([{"op": "add", "path": path, "value": value}]),
                        None,
                    )
                    .await;
                resp.expect_problem(422);
            }
        }
        assert_eq!(read(&app, &user).await, before);
    }

    async fn a_member_changing_their_role_is_403_and_stays_a_member(app) {
        let user = app.user().await;
        let before = read(&app, &user).await;
        for ops in [
            json!([{"op": "replace", "path": "/role", "value": "admin"}]),
            json!([{"op": "add", "path": "/role", "value": "admin"}]),
            json!([{"op": "copy", "from": "/email", "path": "/role"}]),
            json!([
                {"op": "replace", "path": "/full_name", "value": "X"},
                {"op": "replace", "path": "/role", "value": "admin"}
            ]),
        ] {
            patch_self(&app, &user, ops).await.expect_problem(403);
        }
        assert_eq!(read(&app, &user).await, before);
        assert_eq!(
            app.scalar_i64("SELECT COUNT(*) FROM users WHERE role = 'admin'")
                .await,
            0
        );
        app.get("/api/v1/users", Some(&user.token))
            .await
            .expect_problem(403);
    }

    async fn an_admin_changes_a_role(app) {
        let admin = app.admin().await;
        let user = app.user().await;
        let before = read(&app, &user).await;
        let resp = app
            .patch(
                &user_path(&user),
                Some(&admin.token),
                json!([{"op": "replace", "path": "/role", "value": "admin"}]),
                None,
            )
            .await;
        expect_changed(&resp, &before);
        assert_eq!(resp.body["role"], "admin");
        assert_eq!(read(&app, &user).await["role"], "admin");
        app.get("/api/v1/users", Some(&user.token))
            .await
            .expect(200);

        // And back; an unknown role is refused as an invalid value.
        let resp = app
            .patch(
                &user_path(&user),
                Some(&admin.token),
                json!([{"op": "replace", "path": "/role", "value": "superuser"}]),
                None,
            )
            .await;
        resp.expect_field_error("role");
        let resp = app
            .patch(
                &user_path(&user),
                Some(&admin.token),
                json!([{"op": "replace", "path": "/role", "value": "member"}]),
                None,
            )
            .await;
        resp.expect(200);
        assert_eq!(resp.body["role"], "member");
        assert_eq!(resp.body["version"], 3);
        app.get("/api/v1/users", Some(&user.token))
            .await
            .expect_problem(403);
    }

    async fn an_empty_patch_is_200_and_keeps_the_version(app) {
        let user = app.user().await;
        let before = read(&app, &user).await;
        let resp = patch_self(&app, &user, json!([])).await;
        resp.expect(200);
        assert_eq!(resp.body, before);
        assert_eq!(resp.etag(), "\"1\"");
        // Writing the values already there is no change either.
        let resp = patch_self(
            &app,
            &user,
            json!([{"op": "replace", "path": "/full_name", "value": before["full_name"]}]),
        )
        .await;
        resp.expect(200);
        assert_eq!(resp.body["version"], 1);
        assert_eq!(read(&app, &user).await, before);
    }

    async fn every_change_bumps_the_version_by_exactly_one(app) {
        let user = app.user().await;
        for expected in 2..=5 {
            let resp = patch_self(
                &app,
                &user,
                json!([
                    {"op": "replace", "path": "/full_name", "value": format!("Name {expected}")},
                    {"op": "replace", "path": "/email", "value": format!("v{expected}@example.com")}
                ]),
            )
            .await;
            resp.expect(200);
            assert_eq!(
                resp.body["version"], expected,
                "several operations are one change"
            );
            assert_eq!(resp.etag(), format!("\"{expected}\""));
            let stored = app
                .scalar_i64(&format!(
                    "SELECT version FROM users WHERE email = 'v{expected}@example.com'"
                ))
                .await;
            assert_eq!(stored, expected);
        }
        let me = app.get("/api/v1/users/me", Some(&user.token)).await;
        assert_eq!(me.etag(), "\"5\"");
    }

    async fn if_match_applies_only_to_the_named_version(app) {
        let user = app.user().await;
        let path = user_path(&user);
        let op = |name: &str| json!([{"op": "replace", "path": "/full_name", "value": name}]);

        let resp = app
            .patch(&path, Some(&user.token), op("One"), Some("\"1\""))
            .await;
        resp.expect(200);
        assert_eq!(resp.etag(), "\"2\"");

        // Stale: 412, the current version in the ETag, nothing changed.
        let stale = app
            .patch(&path, Some(&user.token), op("Stale"), Some("\"1\""))
            .await;
        stale.expect_problem(412);
        assert_eq!(stale.etag(), "\"2\"");
        let now = read(&app, &user).await;
        assert_eq!(now["full_name"], "One");
        assert_eq!(now["version"], 2);

        // A future version, a weak tag and an unknown tag do not match either.
        for tag in ["\"3\"", "W/\"2\"", "\"abc\""] {
            app.patch(&path, Some(&user.token), op("Nope"), Some(tag))
                .await
                .expect_problem(412);
        }

        // `*` matches any version; a list matches if any tag does.
        let resp = app
            .patch(&path, Some(&user.token), op("Star"), Some("*"))
            .await;
        resp.expect(200);
        assert_eq!(resp.body["version"], 3);
        let resp = app
            .patch(&path, Some(&user.token), op("Listed"), Some("\"1\", \"3\""))
            .await;
        resp.expect(200);
        assert_eq!(resp.body["version"], 4);
        assert_eq!(read(&app, &user).await["full_name"], "Listed");
    }

    async fn a_failing_if_match_wins_over_an_empty_patch(app) {
        let user = app.user().await;
        app.patch(
            &user_path(&user),
            Some(&user.token),
            json!([]),
            Some("\"7\""),
        )
        .await
        .expect_problem(412);
        app.patch(
            &user_path(&user),
            Some(&user.token),
            json!([]),
            Some("\"1\""),
        )
        .await
        .expect(200);
    }

    async fn a_weak_empty_or_malformed_if_match_never_matches(app) {
        let user = app.user().await;
        let before = read(&app, &user).await;
        let ops = json!([{"op": "replace", "path": "/full_name", "value": "Nope"}]);
        for tag in ["W/\"1\"", "", "1", "\"one\""] {
            let resp = app
                .patch(&user_path(&user), Some(&user.token), ops.clone(), Some(tag))
                .await;
            resp.expect_problem(412);
            assert_eq!(resp.etag(), "\"1\"", "412 names the current version");
        }
        assert_eq!(read(&app, &user).await, before);
    }

    async fn a_patch_sent_as_plain_json_is_415_with_accept_patch(app) {
        let user = app.user().await;
        let before = read(&app, &user).await;
        let body =
            json!([{"op": "replace", "path": "/full_name", "value": "Wrong Type"}]).to_string();
        for content_type in [
            Some("application/json"),
            Some("text/plain"),
            Some("application/merge-patch+json"),
            None,
        ] {
            let resp = patch_raw(&app, &user, content_type, &body).await;
            resp.expect_problem(415);
            assert_eq!(
                resp.header("accept-patch"),
                Some("application/json-patch+json"),
                "content type {content_type:?}"
            );
        }
        assert_eq!(read(&app, &user).await, before);
    }

    async fn a_json_patch_content_type_with_a_charset_is_accepted(app) {
        let user = app.user().await;
        let body = json!([{"op": "replace", "path": "/full_name", "value": "Charset"}]).to_string();
        for (n, content_type) in [
            "application/json-patch+json; charset=utf-8",
            "Application/JSON-Patch+JSON",
        ]
        .into_iter()
        .enumerate()
        {
            let resp = patch_raw(&app, &user, Some(content_type), &body).await;
            resp.expect(200);
            assert_eq!(resp.body["full_name"], "Charset");
            assert_eq!(resp.body["version"], 2, "request {n}");
        }
    }

    async fn a_malformed_patch_document_is_400(app) {
        let user = app.user().await;
        let before = read(&app, &user).await;
        for body in [
            "not json",
            "[{\"op\": \"replace\", ",
            "{\"op\": \"replace\", \"path\": \"/full_name\", \"value\": \"X\"}",
            "[{\"op\": \"frobnicate\", \"path\": \"/full_name\", \"value\": \"X\"}]",
            "[{\"op\": \"replace\", \"value\": \"X\"}]",
            "[{\"op\": \"move\", \"path\": \"/full_name\"}]",
            "[{\"path\": \"/full_name\", \"value\": \"X\"}]",
            "[1, 2]",
            "",
        ] {
            let resp = patch_raw(&app, &user, Some("application/json-patch+json"), body).await;
            resp.expect_problem(400);
            assert!(resp.body["detail"].is_string(), "{body:?}: {}", resp.body);
        }
        assert_eq!(read(&app, &user).await, before);
    }

    async fn a_patched_result_that_breaks_the_rules_is_422_naming_the_field(app) {
        let user = app.user().await;
        let before = read(&app, &user).await;
        for (path, value, field) in [
            ("/full_name", json!(""), "full_name"),
            ("/full_name", json!("   "), "full_name"),
            ("/full_name", json!("x".repeat(101)), "full_name"),
            ("/full_name", json!("Nul\u{0}"), "full_name"),
            ("/full_name", json!(97), "full_name"),
            ("/email", json!("x"), "email"),
            (
                "/email",
                json!(format!("{}@example.com", "a".repeat(250))),
                "email",
            ),
            ("/email", json!(null), "email"),
            ("/password", json!("short"), "password"),
            ("/password", json!("p".repeat(129)), "password"),
        ] {
            let resp = patch_self(
                &app,
                &user,
                json!([{"op": "replace", "path": path, "value": value}]),
            )
            .await;
            resp.expect_field_error(field);
        }
        assert_eq!(read(&app, &user).await, before);
        app.token(&user.email, PASSWORD).await;
    }

    async fn changing_the_email_to_another_users_in_another_case_is_409(app) {
        let taken = app.user_with_email("taken@example.com").await;
        let user = app.user().await;
        let before = read(&app, &user).await;
        let resp = patch_self(
            &app,
            &user,
            json!([{"op": "replace", "path": "/email", "value": "TAKEN@Example.COM"}]),
        )
        .await;
        resp.expect_problem(409);
        assert_eq!(read(&app, &user).await, before);
        app.token(&taken.email, PASSWORD).await;

        // Changing only the case of one's own email is allowed, and login follows.
        let resp = patch_self(
            &app,
            &user,
            json!([{"op": "replace", "path": "/email", "value": user.email.to_uppercase()}]),
        )
        .await;
        resp.expect(200);
        assert_eq!(resp.body["email"], user.email.to_uppercase());
        app.token(&user.email, PASSWORD).await;
    }

    async fn changing_the_email_moves_the_login(app) {
        let user = app.user().await;
        let resp = patch_self(
            &app,
            &user,
            json!([{"op": "replace", "path": "/email", "value": "new.address@example.com"}]),
        )
        .await;
        resp.expect(200);
        assert_eq!(resp.body["email"], "new.address@example.com");
        app.token("NEW.address@example.com", PASSWORD).await;
        app.post(
            "/api/v1/auth/token",
            None,
            json!({"email": user.email, "password": PASSWORD}),
        )
        .await
        .expect_problem(401);
        // The old address is free for someone else.
        app.user_with_email(&user.email).await;
    }

    async fn patching_another_user_as_a_member_is_404(app) {
        let me = app.user().await;
        let other = app.user().await;
        let before = read(&app, &other).await;
        for ops in [
            json!([{"op": "replace", "path": "/full_name", "value": "Hijacked"}]),
            json!([]),
        ] {
            app.patch(&user_path(&other), Some(&me.token), ops, None)
                .await
                .expect_problem(404);
        }
        app.patch(
            &format!("/api/v1/users/{}", uuid::Uuid::now_v7()),
            Some(&me.token),
            json!([{"op": "replace", "path": "/full_name", "value": "Ghost"}]),
            None,
        )
        .await
        .expect_problem(404);
        assert_eq!(read(&app, &other).await, before);
    }

    async fn an_admin_patches_another_user(app) {
        let admin = app.admin().await;
        let user = app.user().await;
        let before = read(&app, &user).await;
        let resp = app
            .patch(
                &user_path(&user),
                Some(&admin.token),
                json!([{"op": "replace", "path": "/password", "value": "set by admin"}]),
                None,
            )
            .await;
        expect_changed(&resp, &before);
        app.token(&user.email, "set by admin").await;
    }

    async fn more_than_100_operations_is_422_and_100_are_fine(app) {
        let user = app.user().await;
        let op = json!({"op": "replace", "path": "/full_name", "value": "Many"});
        let resp = patch_self(&app, &user, Value::Array(vec![op.clone(); 101])).await;
        resp.expect_problem(422);
        assert_eq!(read(&app, &user).await["version"], 1);
        let resp = patch_self(&app, &user, Value::Array(vec![op; 100])).await;
        resp.expect(200);
        assert_eq!(resp.body["full_name"], "Many");
        assert_eq!(resp.body["version"], 2);
    }
}
