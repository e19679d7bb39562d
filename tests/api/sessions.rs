//! Refresh tokens: rotation, theft detection, logout, expiry.

use event_manager::entity::refresh_token;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr};
use serde_json::json;
use uuid::Uuid;

use crate::{
    backend_tests,
    helpers::{PASSWORD, Resp, TestApp, TestUser},
};

/// Signs in and returns the whole token response.
async fn sign_in(app: &TestApp, user: &TestUser) -> Resp {
    let resp = app
        .post(
            "/api/v1/auth/token",
            None,
            json!({"email": user.email, "password": PASSWORD}),
        )
        .await;
    resp.expect(200);
    resp
}

fn refresh_token_of(resp: &Resp) -> String {
    resp.body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned()
}

async fn refresh(app: &TestApp, token: &str) -> Resp {
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": token}),
    )
    .await
}

async fn logout(app: &TestApp, token: &str) -> Resp {
    app.post("/api/v1/auth/logout", None, json!({"refresh_token": token}))
        .await
}

/// Asserts the 401 of a refused refresh token.
#[track_caller]
fn expect_refused(resp: &Resp) {
    resp.expect_problem(401);
    assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
    assert!(resp.body.get("access_token").is_none());
}

async fn stored_tokens(app: &TestApp) -> Vec<refresh_token::Model> {
    refresh_token::Entity::find()
        .all(&app.db)
        .await
        .expect("reading refresh_tokens")
}

backend_tests! {
    async fn signing_in_returns_an_opaque_refresh_token_for_thirty_days(app) {
        let user = app.user().await;
        let resp = sign_in(&app, &user).await;
        assert_eq!(resp.body["refresh_expires_in"], 2_592_000);
        assert_eq!(resp.body["expires_in"], 3600);
        let token = refresh_token_of(&resp);
        assert_eq!(token.len(), 43, "32 random bytes in unpadded base64url: {token}");
        assert!(
            token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "URL-safe: {token}"
        );
        assert_ne!(token, refresh_token_of(&sign_in(&app, &user).await));
    }

    async fn only_the_sha256_of_a_refresh_token_is_stored(app) {
        let user = app.user().await;
        let token = refresh_token_of(&sign_in(&app, &user).await);
        let rows = stored_tokens(&app).await;
        let row = rows
            .iter()
            .find(|r| r.token_hash.len() == 64 && r.spent_at.is_none() && r.user_id.to_string() == user.id)
            .expect("a row for the login");
        assert!(rows.iter().all(|r| r.token_hash != token));
        let expected: String = {
            use sha2::Digest;
            sha2::Sha256::digest(token.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        assert!(rows.iter().any(|r| r.token_hash == expected));
        let lifetime = row.expires_at - row.created_at;
        assert_eq!(lifetime.num_seconds(), 2_592_000);
    }

    async fn a_refresh_answers_like_a_login_with_a_new_pair(app) {
        let user = app.user().await;
        let first = refresh_token_of(&sign_in(&app, &user).await);
        let resp = refresh(&app, &first).await;
        resp.expect(200);
        assert_eq!(resp.body["token_type"], "bearer");
        assert_eq!(resp.body["expires_in"], 3600);
        assert_eq!(resp.body["refresh_expires_in"], 2_592_000);
        let second = refresh_token_of(&resp);
        assert_ne!(second, first);
        let access = resp.body["access_token"].as_str().expect("access_token");
        let me = app.get("/api/v1/users/me", Some(access)).await;
        me.expect(200);
        assert_eq!(me.body["id"], user.id.as_str());
        // The new refresh token works in turn.
        refresh(&app, &second).await.expect(200);
    }

    async fn a_spent_refresh_token_is_401_and_revokes_every_token_of_its_login(app) {
        let user = app.user().await;
        let first = refresh_token_of(&sign_in(&app, &user).await);
        let other_login = refresh_token_of(&sign_in(&app, &user).await);
        let second = refresh_token_of(refresh(&app, &first).await.expect(200));
        let third = refresh_token_of(refresh(&app, &second).await.expect(200));

        // The first token again: someone holds a copy.
        expect_refused(&refresh(&app, &first).await);
        // Its whole family is gone, including the current token.
        expect_refused(&refresh(&app, &third).await);
        expect_refused(&refresh(&app, &second).await);
        // Another login of the same user is untouched.
        refresh(&app, &other_login).await.expect(200);
    }

    async fn two_simultaneous_refreshes_with_one_token_give_one_success_and_revoke_the_login(app) {
        let user = app.user().await;
        for round in 0..5 {
            let token = refresh_token_of(&sign_in(&app, &user).await);
            let (a, b) = tokio::join!(refresh(&app, &token), refresh(&app, &token));
            let mut statuses = [a.status, b.status];
            statuses.sort();
            assert_eq!(statuses, [200, 401], "round {round}: {} / {}", a.body, b.body);
            let (winner, loser) = if a.status == 200 { (&a, &b) } else { (&b, &a) };
            expect_refused(loser);
            // The loser saw a spent token: the winner's new token is revoked with its login.
            expect_refused(&refresh(&app, &refresh_token_of(winner)).await);
        }
        let live = refresh_token::Entity::find()
            .filter(refresh_token::Column::SpentAt.is_null())
            .count(&app.db)
            .await
            .expect("count");
        // Only the login made by `app.user()` is left.
        assert_eq!(live, 1);
    }

    async fn logout_revokes_that_login_only_and_keeps_access_tokens_valid(app) {
        let user = app.user().await;
        let login = sign_in(&app, &user).await;
        let token = refresh_token_of(&login);
        let access = login.body["access_token"].as_str().unwrap().to_owned();
        let other = refresh_token_of(&sign_in(&app, &user).await);
        let resp = logout(&app, &token).await;
        resp.expect(204);
        assert_eq!(resp.body, serde_json::Value::Null);
        expect_refused(&refresh(&app, &token).await);
        refresh(&app, &other).await.expect(200);
        app.get("/api/v1/users/me", Some(&access)).await.expect(200);
    }

    async fn logout_with_a_spent_unknown_or_revoked_token_is_still_204(app) {
        let user = app.user().await;
        let first = refresh_token_of(&sign_in(&app, &user).await);
        let second = refresh_token_of(refresh(&app, &first).await.expect(200));
        // A spent token still names its login: signing out with it ends the login.
        logout(&app, &first).await.expect(204);
        expect_refused(&refresh(&app, &second).await);
        logout(&app, &first).await.expect(204);
        logout(&app, &second).await.expect(204);
        logout(&app, "no-such-token").await.expect(204);
    }

    async fn unknown_refresh_tokens_are_401(app) {
        for token in ["x", "no-such-token-0123456789abcdefghijklmnopqrstu", &"A".repeat(256)] {
            expect_refused(&refresh(&app, token).await);
        }
    }

    async fn a_malformed_refresh_or_logout_body_is_400(app) {
        for path in ["/api/v1/auth/refresh", "/api/v1/auth/logout"] {
            for body in [
                json!({}),
                json!({"refresh_token": 12}),
                json!({"refresh_token": null}),
                json!("refresh_token"),
            ] {
                app.post(path, None, body).await.expect_problem(400);
            }
        }
    }

    async fn an_empty_or_overlong_refresh_token_is_422(app) {
        for path in ["/api/v1/auth/refresh", "/api/v1/auth/logout"] {
            for token in [String::new(), "A".repeat(257)] {
                let resp = app.post(path, None, json!({"refresh_token": token})).await;
                resp.expect_problem(422);
                assert_eq!(resp.body["errors"][0]["field"], "refresh_token", "{}", resp.body);
            }
        }
    }

    async fn a_refresh_for_a_deleted_user_is_401_and_their_sessions_are_gone(app) {
        let user = app.user().await;
        let token = refresh_token_of(&sign_in(&app, &user).await);
        app.delete(&format!("/api/v1/users/{}", user.id), Some(&user.token))
            .await
            .expect(204);
        expect_refused(&refresh(&app, &token).await);
        let id = Uuid::parse_str(&user.id).unwrap();
        let left = refresh_token::Entity::find()
            .filter(refresh_token::Column::UserId.eq(id))
            .count(&app.db)
            .await
            .expect("count");
        assert_eq!(left, 0, "deleting a user deletes their refresh tokens");
    }

    async fn an_expired_refresh_token_is_401(app) {
        let user = app.user().await;
        let token = refresh_token_of(&sign_in(&app, &user).await);
        let past = chrono::Utc::now() - chrono::Duration::seconds(1);
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::ExpiresAt, Expr::value(past))
            .exec(&app.db)
            .await
            .expect("expiring the tokens");
        expect_refused(&refresh(&app, &token).await);
        // Still refused the second time (nothing was revived).
        expect_refused(&refresh(&app, &token).await);
    }

    async fn the_spec_documents_refresh_and_logout_with_plain_schemas_and_descriptions(app) {
        let spec = app.get("/openapi.json", None).await;
        spec.expect(200);
        let spec = spec.body;
        for (path, schema, success) in [
            ("/api/v1/auth/token", "TokenRequest", "200"),
            ("/api/v1/auth/refresh", "RefreshRequest", "200"),
            ("/api/v1/auth/logout", "LogoutRequest", "204"),
        ] {
            let op = &spec["paths"][path]["post"];
            assert_eq!(op["tags"], json!(["Auth"]), "{path}");
            assert!(op["summary"].as_str().is_some_and(|s| !s.contains('.')), "{path}: a short summary");
            assert!(op["description"].as_str().is_some_and(|d| d.len() > 80), "{path}: a description");
            let body = &op["requestBody"]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(body, &json!(format!("#/components/schemas/{schema}")), "{path}");
            assert!(op["responses"][success].is_object(), "{path} answers {success}");
        }
        for (path, statuses) in [
            ("/api/v1/auth/token", &["401", "429"][..]),
            ("/api/v1/auth/refresh", &["401", "422"][..]),
            ("/api/v1/auth/logout", &["422"][..]),
        ] {
            for status in statuses {
                assert!(spec["paths"][path]["post"]["responses"][status].is_object(), "{path} {status}");
            }
        }
        let token = &spec["paths"]["/api/v1/auth/token"]["post"]["responses"]["200"];
        // Any JSON media type (parameters such as charset aside).
        let (_, media) = token["content"]
            .as_object()
            .expect("content")
            .iter()
            .find(|(ct, _)| ct.starts_with("application/json"))
            .expect("a JSON body");
        assert_eq!(media["schema"]["$ref"], "#/components/schemas/TokenResponse");
        let headers: Vec<String> = token["headers"]
            .as_object()
            .expect("headers")
            .keys()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        for name in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
            assert!(headers.iter().any(|h| h == name), "{name} in {headers:?}");
        }
        let response = &spec["components"]["schemas"]["TokenResponse"];
        for field in ["refresh_token", "refresh_expires_in"] {
            assert!(response["required"].as_array().unwrap().contains(&json!(field)), "{field}");
        }
    }

    async fn the_refresh_token_lifetime_is_configurable(app) {
        let app = TestApp::spawn_with(app.backend, |c| c.refresh_token_ttl_seconds = 120)
            .await
            .expect("a server");
        let user = app.user().await;
        let resp = sign_in(&app, &user).await;
        assert_eq!(resp.body["refresh_expires_in"], 120);
        let resp = refresh(&app, &refresh_token_of(&resp)).await;
        resp.expect(200);
        assert_eq!(resp.body["refresh_expires_in"], 120);
    }
}
