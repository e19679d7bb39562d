//! Webhooks against real receivers: HTTP servers on 127.0.0.1 inside each test (so these
//! tests allow private targets, but the SSRF tests, which run with the guard on).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use poem::{
    Server,
    listener::{Acceptor, Listener, TcpListener},
};
use sea_orm::ConnectionTrait as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, TestApp, TestUser};

/// Declares each test once per backend, on a server whose webhooks may target 127.0.0.1,
/// with a short receiver timeout.
macro_rules! webhook_tests {
    ($( async fn $name:ident($app:ident) $body:block )*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($app: TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run(spawn(Backend::Sqlite).await.expect("sqlite is always available")).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(postgres_tests), ignore = "TEST_DATABASE_URL is unset: PostgreSQL not tested")]
                async fn postgres() {
                    run(spawn(Backend::Postgres).await.expect(crate::helpers::POSTGRES_REQUIRED)).await;
                }
            }
        )*
    };
}

async fn spawn(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        c.webhook_allow_private_targets = true;
        c.webhook_poll_ms = 50;
        c.webhook_timeout_ms = 500;
    })
    .await
}

/// What a receiver does with a request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Status(u16),
    Hang,
}

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Got {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    answered: u16,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Inbox {
    got: Vec<Got>,
    plan: VecDeque<Reply>,
    /// Answer every request past the plan with this (200 when `None`).
    otherwise: Option<Reply>,
}

/// An HTTP server that records what it is sent and answers as planned.
#[derive(Clone)]
struct Receiver {
    url: String,
    inbox: Arc<Mutex<Inbox>>,
}

impl Receiver {
    async fn start() -> Self {
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("binding a receiver port");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a socket address");
        let shared = inbox.clone();
        let endpoint = poem::endpoint::make(move |mut req: poem::Request| {
            let inbox = shared.clone();
            async move {
                let body = req.take_body().into_vec().await.unwrap_or_default();
                let header = |name: &str| {
                    req.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let reply = {
                    let mut inbox = inbox.lock().expect("inbox");
                    let reply = inbox
                        .plan
                        .pop_front()
                        .or(inbox.otherwise)
                        .unwrap_or(Reply::Status(200));
                    inbox.got.push(Got {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body,
                        answered: match reply {
                            Reply::Status(s) => s,
                            Reply::Hang => 0,
                        },
                    });
                    reply
                };
                match reply {
                    Reply::Status(status) => {
                        poem::http::StatusCode::from_u16(status).expect("a status")
                    }
                    Reply::Hang => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        poem::http::StatusCode::OK
                    }
                }
            }
        });
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(endpoint).await;
        });
        Self {
            url: format!("http://{addr}/hook"),
            inbox,
        }
    }

    fn plan(&self, replies: &[Reply]) {
        self.inbox.lock().expect("inbox").plan.extend(replies);
    }

    fn otherwise(&self, reply: Reply) {
        self.inbox.lock().expect("inbox").otherwise = Some(reply);
    }

    fn got(&self) -> Vec<Got> {
        self.inbox.lock().expect("inbox").got.clone()
    }

    /// Waits until `done` holds for what the receiver got.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        let start = Instant::now();
        loop {
            let got = self.got();
            if done(&got) {
                return got;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "receiver never got {what}; it got {} requests",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// HMAC-SHA256 written out from RFC 2104 over the `sha2` digest, independent of the
/// server's `hmac` crate.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Whether a request carries a valid Standard Webhooks signature under `secret`.
fn verifies(secret: &str, got: &Got) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 secret");
    let signed = format!(
        "{}.{}.{}",
        got.id,
        got.timestamp,
        String::from_utf8_lossy(&got.body)
    );
    let expected = STANDARD.encode(hmac_sha256(&key, signed.as_bytes()));
    got.signature
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

/// Creates a webhook and returns the 201's body.
async fn webhook(app: &TestApp, owner: &TestUser, body: Value) -> Value {
    let resp = app.post("/api/v1/webhooks", Some(&owner.token), body).await;
    resp.expect(201);
    resp.body.clone()
}

async fn deliveries(app: &TestApp, token: &str, hook: &str) -> Vec<Value> {
    let resp = app
        .get(
            &format!("/api/v1/webhooks/{hook}/deliveries?limit=100"),
            Some(token),
        )
        .await;
    resp.expect(200);
    resp.body["items"].as_array().expect("items").clone()
}

/// Waits until the webhook's delivery log satisfies `done`.
async fn wait_log(
    app: &TestApp,
    token: &str,
    hook: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let items = deliveries(app, token, hook).await;
        if done(&items) {
            return items;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the delivery log never showed {what}: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

webhook_tests! {
    async fn changes_arrive_signed_to_the_standard_webhooks_scheme_and_the_secret_is_shown_once(app) {
        let receiver = Receiver::start().await;
        let organizer = app.user().await;
        let created = webhook(&app, &organizer, json!({"url": receiver.url, "description": "CRM"})).await;
        let secret = created["secret"].as_str().expect("a secret").to_owned();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&secret[6..]).expect("base64").len(), 32);
        assert_eq!(created["active"], json!(true));
        assert_eq!(created["types"], json!([]));
        assert_eq!(created["event_id"], Value::Null);
        let hook = created["id"].as_str().expect("id").to_owned();

        let event = app.published_event(&organizer.token, json!({"title": "Signed"})).await;
        let attendee = app.user().await;
        app.register(&attendee.token, &event).await.expect(201);

        let got = receiver.wait_for("two changes", |g| g.len() >= 2).await;
        for request in &got {
            assert!(verifies(&secret, request), "signature does not verify: {request:?}");
            let ts: i64 = request.timestamp.parse().expect("unix seconds");
            assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
        }
        let bodies: Vec<Value> = got.iter().map(Got::json).collect();
        assert_eq!(bodies[0]["type"], json!("event.created"));
        assert_eq!(bodies[0]["seq"], json!(1));
        assert_eq!(bodies[0]["event_id"], json!(event));
        assert_eq!(bodies[1]["type"], json!("attendee.registered"));
        assert_eq!(bodies[1]["data"]["user_id"], json!(attendee.id));

        let log = wait_log(&app, &organizer.token, &hook, "two successes", |items| {
            items.len() == 2 && items.iter().all(|d| d["status"] == json!("succeeded"))
        })
        .await;
        // Newest first; webhook-id is the delivery id.
        assert_eq!(log[0]["change"]["seq"], json!(2));
        assert_eq!(log[1]["change"]["type"], json!("event.created"));
        assert_eq!(log[1]["id"].as_str(), Some(got[0].id.as_str()));
        assert_eq!(log[0]["attempts"], json!(1));
        assert_eq!(log[0]["last_status_code"], json!(200));
        assert_eq!(log[0]["next_attempt_at"], Value::Null);

        // The secret never appears again, nor does the database hold it in clear.
        let read = app.get(&format!("/api/v1/webhooks/{hook}"), Some(&organizer.token)).await;
        read.expect(200);
        let list = app.get("/api/v1/webhooks", Some(&organizer.token)).await;
        let patched = app
            .patch(
                &format!("/api/v1/webhooks/{hook}"),
                Some(&organizer.token),
                json!([{"op": "replace", "path": "/description", "value": "CRM 2"}]),
                Some(read.etag()),
            )
            .await;
        patched.expect(200);
        for body in [&read.body, &list.body, &patched.body, &Value::Array(log)] {
            assert!(!body.to_string().contains(&secret[6..]), "secret leaked: {body}");
            assert!(!body.to_string().contains("secret"), "a secret member: {body}");
        }
        let raw = STANDARD.decode(&secret[6..]).expect("base64");
        let stored = app
            .scalar_i64(&format!(
                "SELECT COUNT(*) FROM webhooks WHERE LENGTH(secret) = {}",
                12 + 32 + 16
            ))
            .await;
        assert_eq!(stored, 1, "the secret is stored as nonce, ciphertext and tag");
        assert_ne!(raw.len(), 0);
    }

    async fn a_receiver_answering_500_is_retried_with_the_same_webhook_id(app) {
        let receiver = Receiver::start().await;
        receiver.plan(&[Reply::Status(500), Reply::Status(503)]);
        let organizer = app.user().await;
        let created = webhook(&app, &organizer, json!({"url": receiver.url})).await;
        let secret = created["secret"].as_str().expect("secret").to_owned();
        app.published_event(&organizer.token, json!({})).await;

        let got = receiver.wait_for("a success after two failures", |g| g.len() >= 3).await;
        assert_eq!(got[0].id, got[1].id, "webhook-id is stable across retries");
        assert_eq!(got[1].id, got[2].id);
        assert_eq!(got[0].body, got[2].body);
        assert!(got.iter().all(|g| verifies(&secret, g)));
        let hook = created["id"].as_str().expect("id");
        let log = wait_log(&app, &organizer.token, hook, "a success", |items| {
            items.first().is_some_and(|d| d["status"] == json!("succeeded"))
        })
        .await;
        assert_eq!(log[0]["attempts"], json!(3));
        assert_eq!(log[0]["last_status_code"], json!(200));
        assert_eq!(log[0]["last_error"], Value::Null);
    }

    async fn a_receiver_that_hangs_times_out_is_retried_and_never_slows_the_api(app) {
        let receiver = Receiver::start().await;
        receiver.plan(&[Reply::Hang]);
        let organizer = app.user().await;
        let created = webhook(&app, &organizer, json!({"url": receiver.url})).await;
        let hook = created["id"].as_str().expect("id").to_owned();
        let event = app.published_event(&organizer.token, json!({})).await;
        receiver.wait_for("the first attempt", |g| !g.is_empty()).await;

        // While the receiver hangs, the API answers at once.
        let started = Instant::now();
        let attendee = app.user().await;
        app.register(&attendee.token, &event).await.expect(201);
        assert!(started.elapsed() < Duration::from_secs(2), "the API waited for a receiver");

        let log = wait_log(&app, &organizer.token, &hook, "a timed-out attempt", |items| {
            items.iter().any(|d| d["change"]["seq"] == json!(1) && d["last_error"].is_string())
        })
        .await;
        let first = log.iter().find(|d| d["change"]["seq"] == json!(1)).expect("seq 1");
        assert_eq!(first["status"], json!("pending"));
        assert!(first["last_error"].as_str().expect("error").contains("500 ms"), "{first}");
        assert!(first["next_attempt_at"].is_string());

        let got = receiver.wait_for("the retry and the next change", |g| g.len() >= 3).await;
        assert_eq!(got[0].id, got[1].id, "the retry carries the same webhook-id");
        assert_eq!(got[2].json()["seq"], json!(2), "seq 2 waited for seq 1");
        wait_log(&app, &organizer.token, &hook, "both delivered", |items| {
            items.len() == 2 && items.iter().all(|d| d["status"] == json!("succeeded"))
        })
        .await;
    }

    async fn redelivery_sends_the_same_delivery_again_and_answers_202(app) {
        let receiver = Receiver::start().await;
        let organizer = app.user().await;
        let stranger = app.user().await;
        let created = webhook(&app, &organizer, json!({"url": receiver.url})).await;
        let hook = created["id"].as_str().expect("id").to_owned();
        app.published_event(&organizer.token, json!({})).await;
        let log = wait_log(&app, &organizer.token, &hook, "a success", |items| {
            items.first().is_some_and(|d| d["status"] == json!("succeeded"))
        })
        .await;
        let delivery = log[0]["id"].as_str().expect("id").to_owned();
        let path = format!("/api/v1/webhooks/{hook}/deliveries/{delivery}/redeliver");

        app.post(&path, Some(&stranger.token), json!(null)).await.expect_problem(404);
        let other = format!("/api/v1/webhooks/{hook}/deliveries/{}/redeliver", uuid::Uuid::now_v7());
        app.post(&other, Some(&organizer.token), json!(null)).await.expect_problem(404);

        let queued = app.send(app.request(reqwest::Method::POST, &path, Some(&organizer.token))).await;
        queued.expect(202);
        assert_eq!(queued.body["id"], json!(delivery));
        assert_eq!(queued.body["status"], json!("pending"));

        let got = receiver.wait_for("the redelivery", |g| g.len() >= 2).await;
        assert_eq!(got[0].id, got[1].id);
        assert_eq!(got[0].body, got[1].body);
        let log = wait_log(&app, &organizer.token, &hook, "the redelivery recorded", |items| {
            items[0]["status"] == json!("succeeded") && items[0]["attempts"] == json!(2)
        })
        .await;
        assert_eq!(log.len(), 1, "a redelivery is the same delivery, not a new one");
    }

    async fn one_events_changes_arrive_in_seq_order_under_a_burst_with_failures(app) {
        let receiver = Receiver::start().await;
        // Every third request fails: a later change must still wait for the earlier one.
        receiver.plan(&[Reply::Status(500), Reply::Status(200), Reply::Status(200)].repeat(10));
        let organizer = app.user().await;
        let event = app
            .published_event(&organizer.token, json!({"capacity": 5, "waitlist_enabled": true}))
            .await;
        webhook(&app, &organizer, json!({"url": receiver.url, "event_id": event})).await;
        let mut users = Vec::new();
        for _ in 0..12 {
            users.push(app.user().await);
        }
        let burst = users.iter().map(|u| app.register(&u.token, &event));
        for resp in futures::future::join_all(burst).await {
            resp.expect(201);
        }
        let got = receiver
            .wait_for("twelve changes acknowledged", |g| {
                g.iter().filter(|r| r.answered == 200).count() >= 12
            })
            .await;
        let acked: Vec<i64> = got
            .iter()
            .filter(|r| r.answered == 200)
            .map(|r| r.json()["seq"].as_i64().expect("seq"))
            .collect();
        let expected: Vec<i64> = (2..=13).collect();
        assert_eq!(acked, expected, "acknowledged out of seq order");
        // Every request that was sent before a seq's success carried that seq or an earlier one.
        let mut highest = 0;
        for request in &got {
            let seq = request.json()["seq"].as_i64().expect("seq");
            assert!(seq >= highest, "seq {seq} sent after {highest} was delivered");
            if request.answered == 200 {
                highest = seq;
            }
        }
    }

    async fn a_webhook_whose_deliveries_fail_for_a_day_is_deactivated_and_can_be_reactivated(app) {
        let receiver = Receiver::start().await;
        receiver.otherwise(Reply::Status(500));
        let organizer = app.user().await;
        let created = webhook(&app, &organizer, json!({"url": receiver.url})).await;
        let hook = created["id"].as_str().expect("id").to_owned();
        app.published_event(&organizer.token, json!({})).await;
        receiver.wait_for("a first attempt", |g| !g.is_empty()).await;
        wait_log(&app, &organizer.token, &hook, "a failed attempt", |items| {
            items.first().is_some_and(|d| d["last_status_code"] == json!(500))
        })
        .await;

        // A day and an hour later, the next attempt fails again: the delivery gives up and
        // the webhook is deactivated.
        let later = chrono::Utc::now() + chrono::Duration::hours(25);
        let attempted = app.state.webhooks.run_due_at(later).await.expect("attempts");
        assert!(attempted >= 1);
        let read = app.get(&format!("/api/v1/webhooks/{hook}"), Some(&organizer.token)).await;
        read.expect(200);
        assert_eq!(read.body["active"], json!(false));
        assert!(read.body["disabled_reason"].as_str().expect("a reason").contains("24 hours"));
        let log = deliveries(&app, &organizer.token, &hook).await;
        assert_eq!(log[0]["status"], json!("failed"));
        assert_eq!(log[0]["next_attempt_at"], Value::Null);

        // Deactivated: new changes make no deliveries.
        let sent = receiver.got().len();
        app.published_event(&organizer.token, json!({})).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(receiver.got().len(), sent);
        assert_eq!(deliveries(&app, &organizer.token, &hook).await.len(), 1);

        let reactivated = app
            .patch(
                &format!("/api/v1/webhooks/{hook}"),
                Some(&organizer.token),
                json!([{"op": "replace", "path": "/active", "value": true}]),
                Some(read.etag()),
            )
            .await;
        reactivated.expect(200);
        assert_eq!(reactivated.body["active"], json!(true));
        assert_eq!(reactivated.body["disabled_reason"], Value::Null);
    }

    async fn a_webhook_receives_only_the_events_its_owner_may_manage(app) {
        let mine = Receiver::start().await;
        let theirs = Receiver::start().await;
        let admins = Receiver::start().await;
        let organizer = app.user().await;
        let stranger = app.user().await;
        let admin = app.admin().await;
        webhook(&app, &organizer, json!({"url": mine.url, "types": ["attendee.registered"]})).await;
        webhook(&app, &stranger, json!({"url": theirs.url})).await;
        webhook(&app, &admin, json!({"url": admins.url})).await;
        let event = app.published_event(&organizer.token, json!({})).await;
        let draft = app.create_event(&organizer.token, json!({})).await;
        let draft = draft.body["id"].as_str().expect("id").to_owned();

        // Subscribing to someone else's event: 403 when it is visible, 404 when it is not.
        let refused = app
            .post("/api/v1/webhooks", Some(&stranger.token), json!({"url": theirs.url, "event_id": event}))
            .await;
        refused.expect_problem(403);
        let hidden = app
            .post("/api/v1/webhooks", Some(&stranger.token), json!({"url": theirs.url, "event_id": draft}))
            .await;
        hidden.expect_problem(404);

        app.register(&stranger.token, &event).await.expect(201);
        let got = mine.wait_for("the registration", |g| !g.is_empty()).await;
        assert_eq!(got[0].json()["type"], json!("attendee.registered"));
        admins.wait_for("every change", |g| g.len() >= 3).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(mine.got().len(), 1, "types filter the changes");
        assert!(theirs.got().is_empty(), "a stranger's webhook received an event they do not manage");
    }

    async fn a_list_shows_the_callers_webhooks_and_administrators_see_all(app) {
        let receiver = Receiver::start().await;
        let organizer = app.user().await;
        let stranger = app.user().await;
        let admin = app.admin().await;
        webhook(&app, &organizer, json!({"url": receiver.url})).await;
        webhook(&app, &organizer, json!({"url": receiver.url})).await;
        webhook(&app, &stranger, json!({"url": receiver.url})).await;
        let mine = app.get("/api/v1/webhooks?limit=1", Some(&organizer.token)).await;
        mine.expect(200);
        assert_eq!(mine.body["total"], json!(2));
        assert_eq!(mine.body["items"].as_array().expect("items").len(), 1);
        let all = app.get("/api/v1/webhooks", Some(&admin.token)).await;
        assert_eq!(all.body["total"], json!(3));
        let bad = app
            .post("/api/v1/webhooks", Some(&organizer.token), json!({"url": "ftp://example.com/x"}))
            .await;
        bad.expect_problem(422).expect_field_error("url");
        let unknown = app
            .post("/api/v1/webhooks", Some(&organizer.token), json!({"url": receiver.url, "types": ["nope"]}))
            .await;
        assert!(unknown.status == 400 || unknown.status == 422, "{}", unknown.status);
    }
}

crate::backend_tests! {
    async fn internal_targets_are_refused_on_create_and_patch_and_again_at_delivery(app) {
        let organizer = app.user().await;
        for url in [
            "http://127.0.0.1:9/hook",
            "http://[::1]/hook",
            "http://localhost:8080/hook",
            "http://10.0.0.7/hook",
            "http://192.168.1.1/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[fe80::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://0.0.0.0/hook",
            "http://224.0.0.1/hook",
        ] {
            let resp = app.post("/api/v1/webhooks", Some(&organizer.token), json!({"url": url})).await;
            resp.expect_problem(422).expect_field_error("url");
        }
        assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM webhooks").await, 0);

        // A public name that does not resolve here is accepted on create: it is checked
        // again at each delivery.
        let created = app
            .post("/api/v1/webhooks", Some(&organizer.token), json!({"url": "https://hooks.example.invalid/in"}))
            .await;
        created.expect(201);
        let hook = created.body["id"].as_str().expect("id").to_owned();
        let refused = app
            .patch(
                &format!("/api/v1/webhooks/{hook}"),
                Some(&organizer.token),
                json!([{"op": "replace", "path": "/url", "value": "http://127.0.0.1/x"}]),
                None,
            )
            .await;
        refused.expect_problem(422).expect_field_error("url");

        // A target that turned internal after the check (a DNS change) is refused at delivery
        // and never reached.
        let receiver = Receiver::start().await;
        let port = receiver.url.rsplit(':').next().expect("port").to_owned();
        let sneaky = format!("http://localhost:{port}");
        app.db
            .execute_unprepared(&format!("UPDATE webhooks SET url = '{sneaky}' WHERE url = 'https://hooks.example.invalid/in'"))
            .await
            .expect("updating the url");
        app.published_event(&organizer.token, json!({})).await;
        let log = wait_log(&app, &organizer.token, &hook, "a refused attempt", |items| {
            items.first().is_some_and(|d| d["last_error"].is_string())
        })
        .await;
        let error = log[0]["last_error"].as_str().expect("error");
        assert!(error.contains("not an allowed target"), "{error}");
        assert_eq!(log[0]["last_status_code"], Value::Null);
        assert!(receiver.got().is_empty(), "an internal target was reached");
    }
}
