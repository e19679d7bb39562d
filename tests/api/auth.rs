//! Access tokens: login, and the 401 every bad credential gets.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::{JWT_SECRET, PASSWORD, Resp, TestApp},
};

/// Unpadded base64url (RFC 4648 §5), the encoding of JWT segments. Hand-rolled so that the
/// tests need no extra dependency to build tokens `jsonwebtoken` refuses to make.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims like the server's, for `sub`, valid for an hour.
fn claims(sub: &str) -> Value {
    json!({"sub": sub, "iat": now(), "exp": now() + 3600})
}

fn sign(claims: &Value, alg: Algorithm, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret))
        .expect("signing a token")
}

/// Asserts the 401 of a refused credential: a problem with the `Bearer` challenge.
#[track_caller]
fn expect_unauthorized(resp: &Resp) {
    resp.expect_problem(401);
    assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
}

async fn login(app: &TestApp, email: &str, password: &str) -> Resp {
    app.post(
        "/api/v1/auth/token",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

/// GET /users/me with a raw `Authorization` header.
async fn me_with_header(app: &TestApp, authorization: &str) -> Resp {
    app.send(
        app.request(reqwest::Method::GET, "/api/v1/users/me", None)
            .header("authorization", authorization),
    )
    .await
}

backend_tests! {
    async fn valid_credentials_get_a_bearer_token_for_an_hour(app) {
        let user = app.user().await;
        let resp = login(&app, &user.email, PASSWORD).await;
        resp.expect(200);
        assert_eq!(resp.body["token_type"], "bearer");
        assert_eq!(resp.body["expires_in"], 3600);
        let token = resp.body["access_token"].as_str().expect("access_token");
        assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        let data = jsonwebtoken::decode::<Value>(
            token,
            &DecodingKey::from_secret(JWT_SECRET.as_bytes()),
            &validation,
        )
        .expect("an HS256 token signed with the configured secret");
        assert_eq!(data.claims["sub"], user.id.as_str());
        let (iat, exp) = (
            data.claims["iat"].as_i64().unwrap(),
            data.claims["exp"].as_i64().unwrap(),
        );
        assert_eq!(exp - iat, 3600);
        assert!((iat - now()).abs() < 60, "issued now");

        let me = app.get("/api/v1/users/me", Some(token)).await;
        me.expect(200);
        assert_eq!(me.body["id"], user.id.as_str());
    }

    async fn wrong_password_and_unknown_email_get_the_same_401(app) {
        let user = app.user().await;
        let wrong = login(&app, &user.email, "not the password").await;
        let unknown = login(&app, "nobody@example.com", PASSWORD).await;
        for resp in [&wrong, &unknown] {
            expect_unauthorized(resp);
            assert!(resp.body.get("access_token").is_none());
        }
        assert!(wrong.body["detail"].is_string());
        assert_eq!(wrong.body["detail"], unknown.body["detail"]);
        assert_eq!(wrong.body["type"], unknown.body["type"]);
        assert_eq!(wrong.body["title"], unknown.body["title"]);
    }

    async fn login_compares_emails_case_insensitively(app) {
        let user = app.user_with_email("Mixed.Case@Example.com").await;
        for email in [
            "mixed.case@example.com",
            "MIXED.CASE@EXAMPLE.COM",
            "Mixed.Case@Example.com",
        ] {
            let resp = login(&app, email, PASSWORD).await;
            resp.expect(200);
            let token = resp.body["access_token"].as_str().unwrap();
            let me = app.get("/api/v1/users/me", Some(token)).await;
            me.expect(200);
            assert_eq!(me.body["id"], user.id.as_str());
        }
        // The password, unlike the email, is compared exactly.
        expect_unauthorized(&login(&app, "mixed.case@example.com", &PASSWORD.to_uppercase()).await);
    }

    async fn every_protected_endpoint_without_a_token_is_401_with_a_bearer_challenge(app) {
        let user = app.user().await;
        let path = format!("/api/v1/users/{}", user.id);
        expect_unauthorized(&app.get("/api/v1/users/me", None).await);
        expect_unauthorized(&app.get("/api/v1/users", None).await);
        expect_unauthorized(&app.get(&path, None).await);
        expect_unauthorized(&app.delete(&path, None).await);
        expect_unauthorized(
            &app.patch(
                &path,
                None,
                json!([{"op": "replace", "path": "/full_name", "value": "X"}]),
                None,
            )
            .await,
        );
        // Nothing was changed or deleted.
        let me = app.get("/api/v1/users/me", Some(&user.token)).await;
        me.expect(200);
        assert_eq!(me.body["version"], 1);
    }

    async fn malformed_authorization_headers_are_401(app) {
        let user = app.user().await;
        for header in [
            "Bearer".to_owned(),
            "Bearer ".to_owned(),
            "Basic dXNlcjpwYXNz".to_owned(),
            format!("Basic {}", user.token),
            format!("Token {}", user.token),
            user.token.clone(),
            "".to_owned(),
        ] {
            let resp = me_with_header(&app, &header).await;
            expect_unauthorized(&resp);
            assert!(resp.body.get("id").is_none(), "{header:?}: {}", resp.body);
        }
    }

    async fn garbage_tokens_are_401(app) {
        for token in [
            "abc",
            "not.a.jwt",
            "a.b.c",
            "...",
            "eyJhbGciOiJIUzI1NiJ9.e30.",
            &"x".repeat(4000),
        ] {
            expect_unauthorized(&app.get("/api/v1/users/me", Some(token)).await);
        }
    }

    async fn a_token_signed_with_another_secret_is_401(app) {
        let user = app.user().await;
        let forged = sign(
            &claims(&user.id),
            Algorithm::HS256,
            b"another-secret-0123456789abcdef-0123456789",
        );
        expect_unauthorized(&app.get("/api/v1/users/me", Some(&forged)).await);
        // The same claims signed with the real secret pass: only the key made the difference.
        let genuine = sign(&claims(&user.id), Algorithm::HS256, JWT_SECRET.as_bytes());
        app.get("/api/v1/users/me", Some(&genuine))
            .await
            .expect(200);
    }

    async fn a_token_signed_with_another_algorithm_is_401(app) {
        let user = app.user().await;
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            let token = sign(&claims(&user.id), alg, JWT_SECRET.as_bytes());
            expect_unauthorized(&app.get("/api/v1/users/me", Some(&token)).await);
        }
    }

    async fn a_token_with_a_tampered_payload_is_401(app) {
        let admin = app.admin().await;
        let member = app.user().await;
        // Swap the member's subject for the admin's, keeping the member's signature.
        let parts: Vec<&str> = member.token.split('.').collect();
        let payload = base64url(claims(&admin.id).to_string().as_bytes());
        let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
        expect_unauthorized(&app.get("/api/v1/users/me", Some(&tampered)).await);
        expect_unauthorized(&app.get("/api/v1/users", Some(&tampered)).await);
        // A flipped signature character is refused too.
        let mut sig = parts[2].to_owned();
        let last = sig.pop().unwrap();
        sig.push(if last == 'A' { 'B' } else { 'A' });
        let bad_sig = format!("{}.{}.{sig}", parts[0], parts[1]);
        expect_unauthorized(&app.get("/api/v1/users/me", Some(&bad_sig)).await);
    }

    async fn an_expired_token_is_401(app) {
        let user = app.user().await;
        let expired = sign(
            &json!({"sub": user.id, "iat": now() - 3700, "exp": now() - 100}),
            Algorithm::HS256,
            JWT_SECRET.as_bytes(),
        );
        expect_unauthorized(&app.get("/api/v1/users/me", Some(&expired)).await);
        let just_expired = sign(
            &json!({"sub": user.id, "iat": now() - 3600, "exp": now() - 1}),
            Algorithm::HS256,
            JWT_SECRET.as_bytes(),
        );
        expect_unauthorized(&app.get("/api/v1/users/me", Some(&just_expired)).await);
    }

    async fn a_token_missing_a_required_claim_or_naming_no_user_is_401(app) {
        let user = app.user().await;
        for claims in [
            json!({"sub": user.id, "iat": now()}),
            json!({"iat": now(), "exp": now() + 3600}),
            json!({"sub": "not-a-uuid", "iat": now(), "exp": now() + 3600}),
            json!({"sub": uuid::Uuid::now_v7(), "iat": now(), "exp": now() + 3600}),
        ] {
            let token = sign(&claims, Algorithm::HS256, JWT_SECRET.as_bytes());
            expect_unauthorized(&app.get("/api/v1/users/me", Some(&token)).await);
        }
    }

    async fn an_alg_none_token_is_401(app) {
        let admin = app.admin().await;
        let payload = base64url(claims(&admin.id).to_string().as_bytes());
        for header in [
            json!({"alg": "none", "typ": "JWT"}),
            json!({"alg": "None", "typ": "JWT"}),
            json!({"alg": "NONE"}),
        ] {
            let header = base64url(header.to_string().as_bytes());
            for token in [
                format!("{header}.{payload}."),
                format!("{header}.{payload}"),
            ] {
                expect_unauthorized(&app.get("/api/v1/users/me", Some(&token)).await);
                expect_unauthorized(&app.get("/api/v1/users", Some(&token)).await);
            }
        }
    }

    async fn a_token_of_a_deleted_user_is_401(app) {
        let user = app.user().await;
        let path = format!("/api/v1/users/{}", user.id);
        app.delete(&path, Some(&user.token)).await.expect(204);
        expect_unauthorized(&app.get("/api/v1/users/me", Some(&user.token)).await);
        expect_unauthorized(&app.get(&path, Some(&user.token)).await);
        expect_unauthorized(&app.delete(&path, Some(&user.token)).await);
        // A new account with the same email does not revive the old token.
        app.user_with_email(&user.email).await;
        expect_unauthorized(&app.get("/api/v1/users/me", Some(&user.token)).await);
    }

    async fn after_a_password_change_only_the_new_password_logs_in(app) {
        let user = app.user().await;
        let resp = app
            .patch(
                &format!("/api/v1/users/{}", user.id),
                Some(&user.token),
                json!([{"op": "replace", "path": "/password", "value": "brand new password"}]),
                None,
            )
            .await;
        resp.expect(200);
        assert_eq!(resp.body["version"], 2);
        assert!(resp.body.get("password").is_none());
        login(&app, &user.email, "brand new password")
            .await
            .expect(200);
        expect_unauthorized(&login(&app, &user.email, PASSWORD).await);
    }

    async fn a_malformed_token_request_is_400(app) {
        app.post(
            "/api/v1/auth/token",
            None,
            json!({"email": "a@example.com"}),
        )
        .await
        .expect_problem(400);
        app.post(
            "/api/v1/auth/token",
            None,
            json!({"email": 1, "password": PASSWORD}),
        )
        .await
        .expect_problem(400);
    }

    async fn repeated_failed_logins_are_rate_limited_with_retry_after(app) {
        let user = app.user().await;
        let mut limited = None;
        for _ in 0..100 {
            let resp = login(&app, &user.email, "wrong password").await;
            if resp.status == 429 {
                limited = Some(resp);
                break;
            }
            expect_unauthorized(&resp);
        }
        let resp = limited.expect("100 failed logins in a row were never rate limited (429)");
        resp.expect_problem(429);
        let retry_after = resp.header("retry-after").expect("Retry-After");
        assert!(
            retry_after.parse::<u64>().is_ok_and(|s| s > 0),
            "Retry-After: {retry_after}"
        );
    }
}

#[test]
fn base64url_matches_rfc_4648_vectors() {
    // RFC 4648 §10, in the URL-safe alphabet and without padding.
    for (input, expected) in [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64url(input.as_bytes()), expected);
    }
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
}
