//! Access tokens: login, the 401 every bad credential gets, and failed-login throttling.

use event_manager::config::Config;
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

    async fn every_token_answer_carries_rate_limit_headers(app) {
        let user = app.user().await;
        let ok = login(&app, &user.email, PASSWORD).await;
        ok.expect(200);
        assert_eq!(rate_limit(&ok), (5, 5, 0), "a client that never failed");
        for remaining in (0..5).rev() {
            let resp = login(&app, &user.email, "wrong password").await;
            expect_unauthorized(&resp);
            let (limit, left, reset) = rate_limit(&resp);
            assert_eq!((limit, left), (5, remaining));
            assert!((1..=60).contains(&reset), "RateLimit-Reset: {reset}");
        }
        let refused = login(&app, &user.email, "wrong password").await;
        refused.expect_problem(429);
        let (limit, left, reset) = rate_limit(&refused);
        assert_eq!((limit, left), (5, 0));
        let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=12).contains(&retry_after), "one failure is forgiven every 12 s");
        assert!(reset >= retry_after, "{reset} >= {retry_after}");
        // While refused, even the right password from this client gets 429: otherwise
        // guessing could go on and only the right guess would get through.
        let right = login(&app, &user.email, PASSWORD).await;
        right.expect_problem(429);
        assert!(right.header("retry-after").is_some());
        assert_eq!(rate_limit(&right).1, 0);
    }

    async fn simultaneous_guesses_from_one_client_get_no_more_answers_than_its_allowance(app) {
        let user = app.user().await;
        let guesses = (0..40).map(|n| login(&app, &user.email, if n == 39 { PASSWORD } else { "guess" }));
        let started = std::time::Instant::now();
        let answers = futures::future::join_all(guesses).await;
        // Five at once, and one more for every 12 s the attempts took (a loaded machine
        // hashes slowly): the allowance refills at that pace.
        let allowance = 5 + (started.elapsed().as_secs() / 12) as usize;
        // The right password is evaluated too when it arrives before this client's first
        // failure is recorded (a client that has not failed is never refused): wrong
        // guesses are what the allowance bounds.
        let guessed = answers.iter().filter(|r| r.status == 401).count();
        assert!(
            guessed <= allowance,
            "{guessed} of 39 simultaneous wrong guesses were evaluated (allowance {allowance})"
        );
        assert!(
            answers.iter().all(|r| matches!(r.status, 200 | 401 | 429)),
            "only answers, refusals and throttling"
        );
        assert!(answers.iter().filter(|r| r.status == 200).count() <= 1);
        for resp in answers.iter().filter(|r| r.status == 429) {
            resp.expect_problem(429);
            assert!(resp.header("retry-after").is_some());
        }
    }

    async fn wrong_passwords_from_one_client_do_not_lock_the_user_out_from_another(app) {
        let app = behind_proxy(app, |_| {}).await;
        let user = app.user().await;
        for _ in 0..20 {
            let resp = login_from(&app, &user.email, "wrong password", "203.0.113.66").await;
            assert!(matches!(resp.status, 401 | 429), "{}", resp.status);
        }
        login_from(&app, &user.email, "wrong password", "203.0.113.66")
            .await
            .expect_problem(429);
        // The real user, elsewhere, signs in.
        let resp = login_from(&app, &user.email, PASSWORD, "198.51.100.7").await;
        resp.expect(200);
        assert_eq!(rate_limit(&resp).1, 5);
        // The attacker stays refused for that account, but not for its own.
        login_from(&app, &user.email, PASSWORD, "203.0.113.66")
            .await
            .expect_problem(429);
    }

    async fn a_client_failing_across_many_emails_is_refused_for_every_email(app) {
        let app = behind_proxy(app, |c| c.login_failures_per_client = 3).await;
        let user = app.user().await;
        for n in 0..3 {
            let resp = login_from(&app, &format!("nobody{n}@example.com"), "guess", "203.0.113.66").await;
            expect_unauthorized(&resp);
        }
        let refused = login_from(&app, &user.email, PASSWORD, "203.0.113.66").await;
        refused.expect_problem(429);
        assert_eq!(rate_limit(&refused), (3, 0, rate_limit(&refused).2));
        login_from(&app, &user.email, PASSWORD, "198.51.100.7")
            .await
            .expect(200);
    }

    async fn an_email_attacked_from_many_clients_refuses_those_clients_but_not_its_user(app) {
        let app = behind_proxy(app, |c| c.login_failures_per_email = 4).await;
        let user = app.user().await;
        for n in 1..=4 {
            let resp = login_from(&app, &user.email, "guess", &format!("203.0.113.{n}")).await;
            expect_unauthorized(&resp);
        }
        // Each attacking client failed only once, far below its own limit of 5, yet the
        // email's limit is spent: they are refused.
        for n in 1..=4 {
            let resp = login_from(&app, &user.email, PASSWORD, &format!("203.0.113.{n}")).await;
            resp.expect_problem(429);
            assert_eq!(rate_limit(&resp).0, 4);
        }
        // A client that has not failed is not refused.
        login_from(&app, &user.email, PASSWORD, "198.51.100.7")
            .await
            .expect(200);
    }

    async fn forwarding_headers_from_an_untrusted_peer_are_ignored(app) {
        // No TRUSTED_PROXIES: every request comes from 127.0.0.1, whatever it claims.
        let user = app.user().await;
        for n in 1..=5 {
            let resp = login_from(&app, &user.email, "guess", &format!("203.0.113.{n}")).await;
            expect_unauthorized(&resp);
        }
        login_from(&app, &user.email, PASSWORD, "198.51.100.7")
            .await
            .expect_problem(429);
    }

    async fn the_right_most_untrusted_forwarded_hop_is_the_client(app) {
        let app = behind_proxy(app, |_| {}).await;
        let user = app.user().await;
        // Spoofed left-most values change nothing: the proxy appended the real peer.
        for n in 1..=5 {
            let resp = app
                .send(
                    app.request(reqwest::Method::POST, "/api/v1/auth/token", None)
                        .header("x-forwarded-for", format!("10.9.9.{n}, 203.0.113.66"))
                        .json(&json!({"email": user.email, "password": "guess"})),
                )
                .await;
            expect_unauthorized(&resp);
        }
        let resp = app
            .send(
                app.request(reqwest::Method::POST, "/api/v1/auth/token", None)
                    .header("forwarded", "for=10.9.9.9, for=\"203.0.113.66:4711\"")
                    .json(&json!({"email": user.email, "password": PASSWORD})),
            )
            .await;
        resp.expect_problem(429);
    }
}

/// The `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers.
#[track_caller]
fn rate_limit(resp: &Resp) -> (u64, u64, u64) {
    let get = |name: &str| -> u64 {
        resp.header(name)
            .unwrap_or_else(|| panic!("{name} missing on a {}", resp.status))
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number"))
    };
    (
        get("ratelimit-limit"),
        get("ratelimit-remaining"),
        get("ratelimit-reset"),
    )
}

/// A server that trusts the test client (127.0.0.1) as a reverse proxy, so that requests
/// name their client in `X-Forwarded-For`, on the same backend as `app`.
async fn behind_proxy(app: TestApp, tweak: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(app.backend, |c| {
        c.trusted_proxies = "127.0.0.1/32".parse().unwrap();
        tweak(c);
    })
    .await
    .expect("a server")
}

/// A login as seen through a proxy, from `client`.
async fn login_from(app: &TestApp, email: &str, password: &str, client: &str) -> Resp {
    app.send(
        app.request(reqwest::Method::POST, "/api/v1/auth/token", None)
            .header("x-forwarded-for", client)
            .json(&json!({"email": email, "password": password})),
    )
    .await
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
