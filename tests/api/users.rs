//! Sign-up, profiles, the admin list, deletion and `create-admin`.

use event_manager::model::{Role, UserCreate};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::{PASSWORD, Resp, TestApp},
};

async fn sign_up(app: &TestApp, email: &str, password: &str, full_name: &str) -> Resp {
    app.post(
        "/api/v1/users",
        None,
        json!({"email": email, "password": password, "full_name": full_name}),
    )
    .await
}

/// A syntactically valid email of exactly `len` characters (197 <= len <= 260).
fn email_of_len(len: usize) -> String {
    let email = format!(
        "{}@{}.{}.{}.com",
        "a".repeat(64),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(len - 197)
    );
    assert_eq!(email.chars().count(), len);
    email
}

/// Fails if a body mentions a password or a hash anywhere.
#[track_caller]
fn assert_no_secret(body: &Value) {
    let text = body.to_string();
    assert!(!text.contains(PASSWORD), "password echoed: {text}");
    assert!(!text.contains("$argon2"), "hash leaked: {text}");
    fn walk(v: &Value) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    assert!(!k.contains("password"), "`{k}` in a response");
                    walk(v);
                }
            }
            Value::Array(items) => items.iter().for_each(walk),
            _ => {}
        }
    }
    walk(body);
}

backend_tests! {
    async fn signing_up_returns_201_with_location_etag_and_the_new_member(app) {
        let resp = sign_up(&app, "ada@example.com", PASSWORD, "Ada Lovelace").await;
        resp.expect(201);
        let id = resp.body["id"].as_str().expect("id").to_owned();
        let uuid = uuid::Uuid::parse_str(&id).expect("id is a UUID");
        assert_eq!(uuid.get_version_num(), 7, "ids are UUIDv7");
        assert_eq!(
            resp.header("location"),
            Some(format!("/api/v1/users/{id}").as_str())
        );
        assert_eq!(resp.etag(), "\"1\"");
        assert_eq!(resp.body["email"], "ada@example.com");
        assert_eq!(resp.body["full_name"], "Ada Lovelace");
        assert_eq!(resp.body["role"], "member");
        assert_eq!(resp.body["version"], 1);
        let created_at = resp.body["created_at"].as_str().expect("created_at");
        assert!(
            created_at.ends_with('Z'),
            "UTC timestamps end in Z: {created_at}"
        );
        chrono::DateTime::parse_from_rfc3339(created_at).expect("RFC 3339");
        assert_eq!(resp.body["updated_at"], resp.body["created_at"]);

        // The Location is where the user can be read.
        let token = app.token("ada@example.com", PASSWORD).await;
        let read = app
            .get(resp.header("location").unwrap(), Some(&token))
            .await;
        read.expect(200);
        assert_eq!(read.body, resp.body);
        assert_eq!(app.user_count().await, 1);
    }

    async fn signing_up_with_role_admin_in_the_body_still_makes_a_member(app) {
        let resp = app
            .post(
                "/api/v1/users",
                None,
                json!({
                    "email": "eve@example.com", "password": PASSWORD, "full_name": "Eve",
                    "role": "admin", "version": 7, "id": "00000000-0000-7000-8000-000000000000"
                }),
            )
            .await;
        resp.expect(201);
        assert_eq!(resp.body["role"], "member");
        assert_eq!(resp.body["version"], 1);
        assert_ne!(resp.body["id"], "00000000-0000-7000-8000-000000000000");
        assert_eq!(
            app.scalar_i64("SELECT COUNT(*) FROM users WHERE role = 'admin'")
                .await,
            0
        );
        let token = app.token("eve@example.com", PASSWORD).await;
        app.get("/api/v1/users", Some(&token))
            .await
            .expect_problem(403);
    }

    async fn full_name_is_stored_trimmed(app) {
        let resp = sign_up(&app, "grace@example.com", PASSWORD, "  Grace Hopper   ").await;
        resp.expect(201);
        assert_eq!(resp.body["full_name"], "Grace Hopper");
        assert_eq!(
            app.scalar_i64("SELECT COUNT(*) FROM users WHERE full_name = 'Grace Hopper'")
                .await,
            1
        );
    }

    async fn no_response_ever_carries_the_password_or_its_hash(app) {
        let created = sign_up(&app, "sec@example.com", PASSWORD, "Secret Keeper").await;
        created.expect(201);
        assert_no_secret(&created.body);
        let id = created.body["id"].as_str().unwrap().to_owned();
        let token = app.token("sec@example.com", PASSWORD).await;
        let admin = app.admin().await;
        for resp in [
            app.get("/api/v1/users/me", Some(&token)).await,
            app.get(&format!("/api/v1/users/{id}"), Some(&token)).await,
            app.get(&format!("/api/v1/users/{id}"), Some(&admin.token))
                .await,
            app.get("/api/v1/users", Some(&admin.token)).await,
            app.patch(
                &format!("/api/v1/users/{id}"),
                Some(&token),
                json!([{"op": "replace", "path": "/password", "value": "another password"}]),
                None,
            )
            .await,
        ] {
            resp.expect(200);
            assert_no_secret(&resp.body);
        }
        let token = app
            .post(
                "/api/v1/auth/token",
                None,
                json!({"email": "sec@example.com", "password": "another password"}),
            )
            .await;
        token.expect(200);
        assert!(!token.body.to_string().contains("another password"));
    }

    async fn invalid_emails_are_refused_with_422_naming_the_field(app) {
        for email in [
            "not-an-email".to_owned(),
            "".to_owned(),
            "two@@example.com".to_owned(),
            "nul\u{0}@example.com".to_owned(),
            "bell\u{7}@example.com".to_owned(),
            email_of_len(255),
        ] {
            let resp = sign_up(&app, &email, PASSWORD, "Someone").await;
            resp.expect_field_error("email");
            let errors = resp.body["errors"].as_array().unwrap();
            assert!(
                errors.iter().all(|e| e["field"] == "email"),
                "only the email is wrong: {}",
                resp.body
            );
        }
        assert_eq!(app.user_count().await, 0);
    }

    async fn passwords_of_7_or_129_characters_are_refused(app) {
        for (n, password) in [(1, "x".repeat(7)), (2, "x".repeat(129))] {
            let resp = sign_up(&app, &format!("p{n}@example.com"), &password, "Someone").await;
            resp.expect_field_error("password");
            assert!(
                !resp.body.to_string().contains(&password),
                "password echoed"
            );
        }
        assert_eq!(app.user_count().await, 0);
    }

    async fn empty_blank_overlong_or_control_character_names_are_refused(app) {
        for name in [
            "".to_owned(),
            "   ".to_owned(),
            "x".repeat(101),
            "é".repeat(101),
            "Null\u{0}Byte".to_owned(),
            "Line\nBreak".to_owned(),
            "Escape\u{1b}[31m".to_owned(),
        ] {
            let resp = sign_up(&app, "name@example.com", PASSWORD, &name).await;
            resp.expect_field_error("full_name");
        }
        assert_eq!(app.user_count().await, 0);
    }

    async fn every_invalid_field_is_reported_at_once(app) {
        let resp = sign_up(&app, "nope", "short", "").await;
        resp.expect_field_error("email");
        resp.expect_field_error("password");
        resp.expect_field_error("full_name");
        assert_eq!(app.user_count().await, 0);
    }

    async fn values_at_the_limits_are_accepted(app) {
        let email = email_of_len(254);
        sign_up(&app, &email, &"p".repeat(8), &"x".repeat(100))
            .await
            .expect(201);
        let resp = sign_up(&app, "max@example.com", &"p".repeat(128), &"é".repeat(100)).await;
        resp.expect(201);
        assert_eq!(resp.body["full_name"], "é".repeat(100));
        // Both passwords really work.
        app.token(&email, &"p".repeat(8)).await;
        app.token("max@example.com", &"p".repeat(128)).await;
    }

    async fn signing_up_with_an_existing_email_in_another_case_is_409(app) {
        sign_up(&app, "Ada@Example.com", PASSWORD, "Ada")
            .await
            .expect(201);
        for email in ["ada@example.com", "ADA@EXAMPLE.COM", "ada@EXAMPLE.com"] {
            let resp = sign_up(&app, email, "other password", "Impostor").await;
            resp.expect_problem(409);
            assert!(
                resp.body["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("email")),
                "{}",
                resp.body
            );
        }
        assert_eq!(app.user_count().await, 1);
        // The original account is untouched.
        app.token("ada@example.com", PASSWORD).await;
    }

    async fn get_me_returns_the_caller_with_its_etag(app) {
        let user = app.user().await;
        app.user().await;
        let resp = app.get("/api/v1/users/me", Some(&user.token)).await;
        resp.expect(200);
        assert_eq!(resp.body["id"], user.id.as_str());
        assert_eq!(resp.body["email"], user.email.as_str());
        assert_eq!(resp.body["role"], "member");
        assert_eq!(resp.etag(), "\"1\"");
    }

    async fn a_member_sees_themself_but_another_member_is_404(app) {
        let me = app.user().await;
        let other = app.user().await;
        let resp = app
            .get(&format!("/api/v1/users/{}", me.id), Some(&me.token))
            .await;
        resp.expect(200);
        assert_eq!(resp.body["id"], me.id.as_str());
        assert_eq!(resp.etag(), "\"1\"");

        let hidden = app
            .get(&format!("/api/v1/users/{}", other.id), Some(&me.token))
            .await;
        hidden.expect_problem(404);
        let missing = app
            .get(
                &format!("/api/v1/users/{}", uuid::Uuid::now_v7()),
                Some(&me.token),
            )
            .await;
        missing.expect_problem(404);
        // Another member's account is indistinguishable from one that does not exist.
        assert_eq!(hidden.body["detail"], missing.body["detail"]);
        assert_eq!(hidden.body["type"], missing.body["type"]);
    }

    async fn an_admin_sees_any_user(app) {
        let admin = app.admin().await;
        let member = app.user().await;
        let resp = app
            .get(&format!("/api/v1/users/{}", member.id), Some(&admin.token))
            .await;
        resp.expect(200);
        assert_eq!(resp.body["id"], member.id.as_str());
        assert_eq!(resp.body["email"], member.email.as_str());
        app.get(
            &format!("/api/v1/users/{}", uuid::Uuid::now_v7()),
            Some(&admin.token),
        )
        .await
        .expect_problem(404);
    }

    async fn admins_page_through_all_users_with_total_limit_and_offset(app) {
        let admin = app.admin().await;
        let mut ids = vec![admin.id.clone()];
        for _ in 0..4 {
            ids.push(app.user().await.id);
        }
        let all = app.get("/api/v1/users", Some(&admin.token)).await;
        all.expect(200);
        assert_eq!(all.body["total"], 5);
        assert_eq!(all.body["limit"], 20, "default limit");
        assert_eq!(all.body["offset"], 0, "default offset");
        let listed: Vec<&str> = all.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap())
            .collect();
        // Oldest first: the creation order.
        assert_eq!(listed, ids.iter().map(String::as_str).collect::<Vec<_>>());

        let mut paged = Vec::new();
        for offset in ["0", "2", "4"] {
            let page = app
                .get_query(
                    "/api/v1/users",
                    Some(&admin.token),
                    &[("limit", "2"), ("offset", offset)],
                )
                .await;
            page.expect(200);
            assert_eq!(page.body["total"], 5);
            assert_eq!(page.body["limit"], 2);
            assert_eq!(page.body["offset"], offset.parse::<u64>().unwrap());
            for u in page.body["items"].as_array().unwrap() {
                assert_no_secret(u);
                paged.push(u["id"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(paged, ids, "pages neither skip nor repeat");

        let past_end = app
            .get_query("/api/v1/users", Some(&admin.token), &[("offset", "10")])
            .await;
        past_end.expect(200);
        assert_eq!(past_end.body["items"], json!([]));
        assert_eq!(past_end.body["total"], 5);
    }

    async fn users_created_at_the_same_instant_are_listed_by_id(app) {
        let admin = app.admin().await;
        for _ in 0..5 {
            app.user().await;
        }
        // Force a tie on the primary sort key: only the id can order them now.
        let n = app
            .db
            .execute_unprepared("UPDATE users SET created_at = (SELECT MIN(created_at) FROM users)")
            .await
            .expect("update");
        assert_eq!(n.rows_affected(), 6);
        let first = app
            .get_query("/api/v1/users", Some(&admin.token), &[("limit", "100")])
            .await;
        first.expect(200);
        let ids: Vec<String> = first.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "ties broken by id");
        let mut paged = Vec::new();
        for offset in ["0", "3"] {
            let page = app
                .get_query(
                    "/api/v1/users",
                    Some(&admin.token),
                    &[("limit", "3"), ("offset", offset)],
                )
                .await;
            page.expect(200);
            paged.extend(
                page.body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u["id"].as_str().unwrap().to_owned()),
            );
        }
        assert_eq!(paged, ids);
    }

    async fn q_matches_email_or_name_case_insensitively(app) {
        let admin = app.admin().await;
        let alice = app.user_with_email("alice@example.com").await;
        let named = app.user_with_email("zed@example.com").await;
        app.patch(
            &format!("/api/v1/users/{}", named.id),
            Some(&named.token),
            json!([{"op": "replace", "path": "/full_name", "value": "Big ALICE"}]),
            None,
        )
        .await
        .expect(200);
        app.user_with_email("carol@example.com").await;

        for q in ["alice", "aLiCe", "ALICE"] {
            let resp = app
                .get_query("/api/v1/users", Some(&admin.token), &[("q", q)])
                .await;
            resp.expect(200);
            assert_eq!(resp.body["total"], 2, "q={q:?}: {}", resp.body);
            let ids: Vec<&str> = resp.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap())
                .collect();
            assert_eq!(ids, vec![alice.id.as_str(), named.id.as_str()]);
        }
        let carol = app
            .get_query("/api/v1/users", Some(&admin.token), &[("q", "CAROL@")])
            .await;
        carol.expect(200);
        assert_eq!(carol.body["total"], 1);
        assert_eq!(carol.body["items"][0]["email"], "carol@example.com");
        let none = app
            .get_query("/api/v1/users", Some(&admin.token), &[("q", "nobody")])
            .await;
        none.expect(200);
        assert_eq!(none.body["total"], 0);
        assert_eq!(none.body["items"], json!([]));
    }

    async fn q_treats_percent_and_underscore_literally(app) {
        let admin = app.admin().await;
        let percent = app.user_with_email("percent@example.com").await;
        app.patch(
            &format!("/api/v1/users/{}", percent.id),
            Some(&percent.token),
            json!([{"op": "replace", "path": "/full_name", "value": "100% Sure"}]),
            None,
        )
        .await
        .expect(200);
        let underscore = app.user_with_email("under_score@example.com").await;
        app.user_with_email("underXscore@example.com").await;
        app.user_with_email("backslash@example.com").await;

        let search = |q: &'static str| {
            let app = &app;
            let token = admin.token.clone();
            async move {
                let resp = app
                    .get_query("/api/v1/users", Some(&token), &[("q", q)])
                    .await;
                resp.expect(200);
                resp.body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u["id"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(search("%").await, vec![percent.id.clone()]);
        assert_eq!(search("0% s").await, vec![percent.id.clone()]);
        assert_eq!(search("_").await, vec![underscore.id.clone()]);
        assert_eq!(search("r_s").await, vec![underscore.id.clone()]);
        assert_eq!(search("\\").await, Vec::<String>::new());
    }

    async fn listing_users_as_a_member_is_403(app) {
        let member = app.user().await;
        let resp = app.get("/api/v1/users", Some(&member.token)).await;
        resp.expect_problem(403);
        assert!(resp.body.get("items").is_none());
    }

    async fn out_of_range_or_non_numeric_paging_parameters_are_400(app) {
        let admin = app.admin().await;
        for (name, value) in [
            ("limit", "0"),
            ("limit", "101"),
            ("limit", "abc"),
            ("limit", "-1"),
            ("limit", "2.5"),
            ("offset", "-1"),
            ("offset", "abc"),
        ] {
            let resp = app
                .get_query("/api/v1/users", Some(&admin.token), &[(name, value)])
                .await;
            resp.expect_problem(400);
            assert!(
                resp.body["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains(name)),
                "{name}={value}: {}",
                resp.body
            );
        }
        for limit in ["1", "100"] {
            let resp = app
                .get_query("/api/v1/users", Some(&admin.token), &[("limit", limit)])
                .await;
            resp.expect(200);
            assert_eq!(resp.body["limit"], limit.parse::<u64>().unwrap());
        }
    }

    async fn deleting_yourself_is_204_and_revokes_the_account(app) {
        let admin = app.admin().await;
        let me = app.user().await;
        let resp = app
            .delete(&format!("/api/v1/users/{}", me.id), Some(&me.token))
            .await;
        resp.expect(204);
        assert_eq!(resp.body, Value::Null);

        let after = app.get("/api/v1/users/me", Some(&me.token)).await;
        after.expect_problem(401);
        assert_eq!(after.header("www-authenticate"), Some("Bearer"));
        app.get(&format!("/api/v1/users/{}", me.id), Some(&admin.token))
            .await
            .expect_problem(404);
        app.post(
            "/api/v1/auth/token",
            None,
            json!({"email": me.email, "password": PASSWORD}),
        )
        .await
        .expect_problem(401);
        assert_eq!(app.user_count().await, 1);
        // The email is free again.
        sign_up(&app, &me.email, PASSWORD, "Again")
            .await
            .expect(201);
    }

    async fn deleting_another_user_as_a_member_is_404_and_deletes_nothing(app) {
        let me = app.user().await;
        let other = app.user().await;
        app.delete(&format!("/api/v1/users/{}", other.id), Some(&me.token))
            .await
            .expect_problem(404);
        assert_eq!(app.user_count().await, 2);
        app.get("/api/v1/users/me", Some(&other.token))
            .await
            .expect(200);
    }

    async fn an_admin_deletes_any_user(app) {
        let admin = app.admin().await;
        let member = app.user().await;
        app.delete(&format!("/api/v1/users/{}", member.id), Some(&admin.token))
            .await
            .expect(204);
        app.get(&format!("/api/v1/users/{}", member.id), Some(&admin.token))
            .await
            .expect_problem(404);
        app.delete(&format!("/api/v1/users/{}", member.id), Some(&admin.token))
            .await
            .expect_problem(404);
        assert_eq!(app.user_count().await, 1);
    }

    async fn deleting_with_a_stale_if_match_is_412_and_keeps_the_user(app) {
        let me = app.user().await;
        let path = format!("/api/v1/users/{}", me.id);
        let resp = app
            .send(
                app.request(reqwest::Method::DELETE, &path, Some(&me.token))
                    .header("if-match", "\"2\""),
            )
            .await;
        resp.expect_problem(412);
        assert_eq!(resp.etag(), "\"1\"");
        assert_eq!(app.user_count().await, 1);
        app.send(
            app.request(reqwest::Method::DELETE, &path, Some(&me.token))
                .header("if-match", "\"1\""),
        )
        .await
        .expect(204);
        assert_eq!(app.user_count().await, 0);
    }

    async fn create_admin_creates_a_new_administrator(app) {
        let (user, created) = app
            .state
            .users
            .create_admin(UserCreate {
                email: "root@example.com".into(),
                password: PASSWORD.into(),
                full_name: "  Root  ".into(),
            })
            .await
            .expect("create_admin");
        assert!(created);
        assert_eq!(user.role, Role::Admin);
        assert_eq!(user.full_name, "Root");
        assert_eq!(user.version, 1);
        let token = app.token("root@example.com", PASSWORD).await;
        app.get("/api/v1/users", Some(&token)).await.expect(200);
    }

    async fn create_admin_promotes_an_existing_user_idempotently(app) {
        let member = app.user_with_email("promote.me@example.com").await;
        app.get("/api/v1/users", Some(&member.token))
            .await
            .expect_problem(403);
        let input = UserCreate {
            email: "PROMOTE.ME@example.com".into(),
            password: "a different password".into(),
            full_name: "Different Name".into(),
        };
        let (first, created) = app
            .state
            .users
            .create_admin(input.clone())
            .await
            .expect("promote");
        assert!(!created, "an existing user is promoted, not created");
        assert_eq!(first.id.to_string(), member.id);
        assert_eq!(first.role, Role::Admin);
        assert_eq!(first.version, 2);
        assert_eq!(first.full_name, "Test User", "the name is left as it was");

        let (again, created) = app
            .state
            .users
            .create_admin(input)
            .await
            .expect("promote again");
        assert!(!created);
        assert_eq!(again.id, first.id);
        assert_eq!(again.role, Role::Admin);
        assert_eq!(again.version, 2, "promoting an admin changes nothing");
        assert_eq!(app.user_count().await, 1);

        // The role is read on every request: the old token now has admin rights.
        app.get("/api/v1/users", Some(&member.token))
            .await
            .expect(200);
        // The password is left as it was.
        app.token("promote.me@example.com", PASSWORD).await;
        app.post(
            "/api/v1/auth/token",
            None,
            json!({"email": "promote.me@example.com", "password": "a different password"}),
        )
        .await
        .expect_problem(401);
    }
}
