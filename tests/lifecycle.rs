//! The real binary: start-up, graceful shutdown on SIGTERM and SIGINT, and webhook
//! deliveries and import jobs surviving SIGKILL.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_event-manager");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The binary serving a fresh SQLite file; argon2 is made slow so a login stays in flight.
struct Running {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

async fn start(extra_env: &[(&str, &str)]) -> Running {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    start_with(
        &[],
        &[&[("BIND_ADDR", bind.as_str())], extra_env].concat(),
        &bind,
    )
    .await
}

/// The binary run with `args`, its environment `env` over a fresh SQLite database, waited
/// for until `http://{address}/health/ready` answers 200.
async fn start_with(args: &[&str], env: &[(&str, &str)], address: &str) -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/em.db?mode=rwc", dir.path().display()),
        )
        .env("JWT_SECRET", "lifecycle-test-secret-0123456789abcdef-01")
        .env("RUST_LOG", "warn")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawning the binary");
    let base = format!("http://{address}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{base}/health/ready")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "the server never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Running {
        child,
        base,
        _dir: dir,
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits for the process to exit; returns its status and how long it took.
async fn wait_exit(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return (status, started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the process did not exit within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_in_flight_request_finish_then_refuses_new_connections_and_exits_0() {
    let mut server = start(&[
        ("ARGON2_MEMORY_KIB", "131072"),
        ("ARGON2_ITERATIONS", "6"),
        ("SHUTDOWN_TIMEOUT", "10"),
    ])
    .await;
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let signup = client
        .post(format!("{base}/api/v1/users"))
        .json(&json!({"email": "s@example.com", "password": "password123", "full_name": "S"}))
        .send()
        .await
        .expect("sign-up");
    assert_eq!(signup.status(), 201);

    // A login takes a while (argon2); send SIGTERM while it is being served.
    let login = tokio::spawn({
        let (client, base) = (client.clone(), base.clone());
        async move {
            let started = Instant::now();
            let resp = client
                .post(format!("{base}/api/v1/auth/token"))
                .json(&json!({"email": "s@example.com", "password": "password123"}))
                .send()
                .await
                .expect("the in-flight request is answered");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.expect("json");
            (status, body, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    signal(&server.child, "TERM");
    let signalled = Instant::now();

    let (status, body, took) = login.await.expect("login task");
    assert_eq!(status, 200, "the in-flight login completed: {body}");
    assert!(body["access_token"].is_string());
    let (exit, _) = wait_exit(&mut server.child, Duration::from_secs(12)).await;
    let drain = signalled.elapsed();
    assert!(exit.success(), "exit status {exit}");
    let refused = reqwest::Client::new()
        .get(format!("{base}/health/live"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "no new connections after shutdown");
    eprintln!("shutdown: in-flight login took {took:?}; process exited 0 {drain:?} after SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_on_an_idle_server_exits_0_promptly() {
    let mut server = start(&[]).await;
    signal(&server.child, "INT");
    let (exit, took) = wait_exit(&mut server.child, Duration::from_secs(5)).await;
    assert!(exit.success(), "exit status {exit}");
    assert!(took < Duration::from_secs(2), "idle shutdown took {took:?}");
}

#[tokio::test]
async fn a_bad_option_value_stops_start_up_with_one_line_naming_it() {
    let out = Command::new(BIN)
        .env_clear()
        .env("BIND_ADDR", "not-an-address")
        .output()
        .expect("running the binary");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("BIND_ADDR"), "{stderr}");

    let out = Command::new(BIN)
        .env_clear()
        .env("JWT_SECRET", "too-short")
        .output()
        .expect("running the binary");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_admin_creates_then_promotes_idempotently() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/em.db?mode=rwc", dir.path().display());
    let run = || {
        Command::new(BIN)
            .env_clear()
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            .args([
                "create-admin",
                "--email",
                "Boss@Example.com",
                "--password",
                "password123",
                "--full-name",
                "Boss",
            ])
            .output()
            .expect("running create-admin")
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).starts_with("created administrator"));
    let second = run();
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).starts_with("promoted administrator"));
}

/// Runs the binary to completion with only `env` and `args`; returns (exit code, stderr).
fn run_to_end(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("running the binary");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_in_bind_addr_is_resolved() {
    let address = format!("localhost:{}", free_port());
    let mut server = start_with(&[], &[("BIND_ADDR", address.as_str())], &address).await;
    signal(&server.child, "INT");
    let (exit, _) = wait_exit(&mut server.child, Duration::from_secs(5)).await;
    assert!(exit.success(), "exit status {exit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flag_is_accepted_after_the_subcommand() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/after.db?mode=rwc", dir.path().display());
    let (code, stderr) = run_to_end(
        &[],
        &["migrate", "--database-url", &url, "--log-filter", "warn"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(dir.path().join("after.db").exists());

    let address = format!("127.0.0.1:{}", free_port());
    let mut server = start_with(
        &["serve", "--database-url", &url, "--bind-addr", &address],
        &[],
        &address,
    )
    .await;
    signal(&server.child, "INT");
    let (exit, _) = wait_exit(&mut server.child, Duration::from_secs(5)).await;
    assert!(exit.success(), "exit status {exit}");
}

#[tokio::test]
async fn a_refused_value_is_named_by_the_variable_or_the_flag_it_came_from() {
    for (env, args, named, not_named) in [
        (
            &[("TOKEN_TTL_SECONDS", "0")][..],
            &[][..],
            "TOKEN_TTL_SECONDS",
            "--token-ttl-seconds",
        ),
        (
            &[],
            &["--token-ttl-seconds", "0"],
            "--token-ttl-seconds",
            "TOKEN_TTL_SECONDS",
        ),
        (
            &[("JWT_SECRET", "short")],
            &[],
            "JWT_SECRET",
            "--jwt-secret",
        ),
        (
            &[],
            &["serve", "--jwt-secret", "short"],
            "--jwt-secret",
            "JWT_SECRET",
        ),
        (&[("BIND_ADDR", "nowhere")], &[], "BIND_ADDR", "--bind-addr"),
        (&[], &["--bind-addr", "nowhere"], "--bind-addr", "BIND_ADDR"),
    ] {
        let (code, stderr) = run_to_end(env, args);
        assert_eq!(code, Some(2), "{env:?} {args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(named), "{env:?} {args:?}: {stderr}");
        assert!(!stderr.contains(not_named), "{env:?} {args:?}: {stderr}");
    }
}

#[tokio::test]
async fn a_database_that_refuses_connections_says_so_once_on_one_line_and_exits_2() {
    let url = format!("postgres://postgres@127.0.0.1:{}/none", free_port());
    let bind = format!("127.0.0.1:{}", free_port());
    for args in [&["migrate"][..], &["serve"][..]] {
        let (code, stderr) = run_to_end(&[("DATABASE_URL", &url), ("BIND_ADDR", &bind)], args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        let lower = stderr.to_lowercase();
        assert!(lower.contains("connection refused"), "{stderr}");
        assert!(!lower.contains("timed out"), "{stderr}");
    }
}

#[tokio::test]
async fn a_busy_port_fails_at_once_before_the_database_is_touched() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let bind = busy.local_addr().expect("address").to_string();
    // A database that would answer slowly: the port must be refused first.
    let url = format!("postgres://postgres@127.0.0.1:{}/none", free_port());
    let started = Instant::now();
    let (code, stderr) = run_to_end(
        &[
            ("DATABASE_URL", &url),
            ("BIND_ADDR", &bind),
            ("DB_ACQUIRE_TIMEOUT_MS", "5000"),
        ],
        &["serve"],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(&bind), "{stderr}");
    assert!(!stderr.contains("database"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_open_streams_ends_them_and_exits_0_well_within_the_timeout() {
    let mut server = start(&[("SHUTDOWN_TIMEOUT", "10")]).await;
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let signup = client
        .post(format!("{base}/api/v1/users"))
        .json(&json!({"email": "o@example.com", "password": "password123", "full_name": "O"}))
        .send()
        .await
        .expect("sign-up");
    assert_eq!(signup.status(), 201);
    let login: Value = client
        .post(format!("{base}/api/v1/auth/token"))
        .json(&json!({"email": "o@example.com", "password": "password123"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["access_token"].as_str().expect("token").to_owned();
    let event: Value = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(&token)
        .json(&json!({
            "title": "Streamed", "starts_at": "2030-01-01T18:00:00Z",
            "ends_at": "2030-01-01T20:00:00Z", "status": "published"
        }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = event["id"].as_str().expect("id").to_owned();
    // Three open streams, each past its snapshot.
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut resp = client
            .get(format!("{base}/api/v1/events/{id}/stream"))
            .send()
            .await
            .expect("stream");
        assert_eq!(resp.status(), 200);
        let first = resp.chunk().await.expect("chunk").expect("the snapshot");
        assert!(String::from_utf8_lossy(&first).contains("event: snapshot"));
        streams.push(resp);
    }

    signal(&server.child, "TERM");
    // Each stream ends (its body finishes) rather than being cut at the drain timeout.
    for mut resp in streams {
        let ended = tokio::time::timeout(Duration::from_secs(3), async move {
            loop {
                match resp.chunk().await {
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => return,
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "a stream was still open 3 s after SIGTERM");
    }
    let (exit, took) = wait_exit(&mut server.child, Duration::from_secs(12)).await;
    assert!(exit.success(), "exit status {exit}");
    assert!(
        took < Duration::from_secs(5),
        "shutdown with streams open took {took:?}, not bounded by the streams"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_during_start_up_is_a_graceful_exit_not_a_kill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let address = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(BIN)
        .env_clear()
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/em.db?mode=rwc", dir.path().display()),
        )
        .env("JWT_SECRET", "lifecycle-test-secret-0123456789abcdef-01")
        .env("BIND_ADDR", &address)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning the binary");
    // The port is bound first, then the database is migrated: signal in between.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(Instant::now() < deadline, "the port was never bound");
        std::thread::sleep(Duration::from_millis(1));
    }
    signal(&child, "TERM");
    let (exit, _) = wait_exit(&mut child, Duration::from_secs(10)).await;
    assert!(exit.success(), "exit status {exit}");
}

/// A webhook receiver for the crash test: it hangs on the first request (so that one is sent
/// and never recorded), then refuses with 503 until `healthy`, then acknowledges, recording
/// the `seq` of each change it acknowledged.
#[derive(Clone, Default)]
struct CrashReceiver {
    state: std::sync::Arc<std::sync::Mutex<(usize, bool, Vec<i64>)>>,
}

impl CrashReceiver {
    async fn start(&self) -> String {
        use poem::listener::{Acceptor, Listener};
        let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("binding a receiver");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a socket address");
        let state = self.state.clone();
        let endpoint = poem::endpoint::make(move |mut req: poem::Request| {
            let state = state.clone();
            async move {
                let body = req.take_body().into_vec().await.unwrap_or_default();
                let seq = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["seq"].as_i64());
                let (first, healthy) = {
                    let mut s = state.lock().expect("state");
                    s.0 += 1;
                    (s.0 == 1, s.1)
                };
                if first {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                if !healthy {
                    return poem::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                if let Some(seq) = seq {
                    state.lock().expect("state").2.push(seq);
                }
                poem::http::StatusCode::OK
            }
        });
        tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor)
                .run(endpoint)
                .await;
        });
        format!("http://{addr}/hook")
    }

    fn requests(&self) -> usize {
        self.state.lock().expect("state").0
    }

    fn heal(&self) {
        self.state.lock().expect("state").1 = true;
    }

    fn acknowledged(&self) -> Vec<i64> {
        self.state.lock().expect("state").2.clone()
    }
}

fn spawn_on(db: &std::path::Path, port: u16) -> Child {
    Command::new(BIN)
        .env_clear()
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", db.display()),
        )
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("JWT_SECRET", "lifecycle-test-secret-0123456789abcdef-01")
        .env("ARGON2_MEMORY_KIB", "256")
        .env("ARGON2_ITERATIONS", "1")
        .env("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
        .env("WEBHOOK_TIMEOUT_MS", "300")
        .env("WEBHOOK_POLL_MS", "50")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning the binary")
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "the server never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_webhook_deliveries_pending_loses_none_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("em.db");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let receiver = CrashReceiver::default();
    let url = receiver.start().await;

    let mut server = spawn_on(&db, port);
    wait_ready(&client, &base).await;
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut rb = client.post(format!("{base}{path}")).json(&body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send()
    };
    let mut tokens = Vec::new();
    for n in 0..6 {
        let email = format!("crash{n}@example.com");
        let created = post(
            "/api/v1/users",
            None,
            json!({"email": email, "password": "correct horse battery", "full_name": "Crash"}),
        )
        .await
        .expect("sign-up");
        assert_eq!(created.status(), 201);
        let login: Value = post(
            "/api/v1/auth/token",
            None,
            json!({"email": email, "password": "correct horse battery"}),
        )
        .await
        .expect("login")
        .json()
        .await
        .expect("token");
        tokens.push(login["access_token"].as_str().expect("token").to_owned());
    }
    let organizer = tokens[0].clone();
    let hook = post("/api/v1/webhooks", Some(&organizer), json!({"url": url}))
        .await
        .expect("webhook");
    assert_eq!(hook.status(), 201);
    let event: Value = post(
        "/api/v1/events",
        Some(&organizer),
        json!({"title": "Crash", "starts_at": "2030-03-01T18:00:00Z",
               "ends_at": "2030-03-01T21:00:00Z", "status": "published"}),
    )
    .await
    .expect("event")
    .json()
    .await
    .expect("event body");
    let event_id = event["id"].as_str().expect("id").to_owned();
    for token in &tokens[1..] {
        let r = post(
            &format!("/api/v1/events/{event_id}/attendees"),
            Some(token),
            json!({}),
        )
        .await
        .expect("registration");
        assert_eq!(r.status(), 201);
    }

    // The first delivery is sent and hangs (its outcome is never recorded); kill the server
    // with every delivery pending.
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.requests() == 0 {
        assert!(Instant::now() < deadline, "no delivery was attempted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(&server, "KILL");
    let _ = server.wait();
    assert!(receiver.acknowledged().is_empty());

    receiver.heal();
    let mut server = spawn_on(&db, port);
    wait_ready(&client, &base).await;
    let expected: Vec<i64> = (1..=6).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut got = receiver.acknowledged();
        got.sort_unstable();
        got.dedup();
        if got == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the restart only these changes were delivered: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        receiver.acknowledged(),
        expected,
        "delivered once each after the restart, in seq order"
    );
    let _ = server.kill();
    let _ = server.wait();
}

/// The binary on a SQLite file with a short import lease, so a job whose instance died is
/// taken up again quickly.
fn spawn_importer(db: &std::path::Path, port: u16) -> Child {
    Command::new(BIN)
        .env_clear()
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", db.display()),
        )
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("JWT_SECRET", "lifecycle-test-secret-0123456789abcdef-01")
        .env("ARGON2_MEMORY_KIB", "256")
        .env("ARGON2_ITERATIONS", "1")
        .env("IMPORT_LEASE_SECONDS", "2")
        .env("IMPORT_POLL_MS", "100")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning the binary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_an_import_leaves_a_job_that_completes_after_a_restart_never_twice() {
    const ROWS: usize = 30_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("em.db");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let mut server = spawn_importer(&db, port);
    wait_ready(&client, &base).await;
    let created = client
        .post(format!("{base}/api/v1/users"))
        .json(&json!({"email": "importer@example.com", "password": "correct horse battery", "full_name": "I"}))
        .send()
        .await
        .expect("sign-up");
    assert_eq!(created.status(), 201);
    let login: Value = client
        .post(format!("{base}/api/v1/auth/token"))
        .json(&json!({"email": "importer@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("token");
    let token = login["access_token"].as_str().expect("token").to_owned();

    let mut csv = String::from("title,location,starts_at,ends_at,capacity,status\n");
    for i in 0..ROWS {
        csv.push_str(&format!(
            "Imported {i},Hall,2030-01-01T18:00:00Z,2030-01-01T20:00:00Z,{},published\n",
            1 + i % 500
        ));
    }
    let queued = client
        .post(format!("{base}/api/v1/imports"))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("upload");
    assert_eq!(queued.status(), 202);
    let location = queued
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location")
        .to_owned();
    let job = |client: reqwest::Client, token: String, url: String| async move {
        client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .ok()?
            .json::<Value>()
            .await
            .ok()
    };
    // Kill it while the rows are being inserted.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = job(client.clone(), token.clone(), format!("{base}{location}")).await;
        let status = status
            .as_ref()
            .and_then(|j| j["status"].as_str())
            .unwrap_or_default()
            .to_owned();
        assert_ne!(
            status, "completed",
            "the import finished before it could be interrupted"
        );
        if status == "processing" {
            break;
        }
        assert!(Instant::now() < deadline, "the import never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&server, "KILL");
    let _ = server.wait();

    let mut server = spawn_importer(&db, port);
    wait_ready(&client, &base).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    let finished = loop {
        if let Some(j) = job(client.clone(), token.clone(), format!("{base}{location}")).await
            && matches!(j["status"].as_str(), Some("completed" | "failed"))
        {
            break j;
        }
        assert!(Instant::now() < deadline, "the interrupted import is stuck");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(finished["status"], "completed", "{finished}");
    assert_eq!(finished["rows_imported"], json!(ROWS));
    // Every row exactly once: the interrupted attempt committed nothing.
    let listed: Value = client
        .get(format!("{base}/api/v1/events?limit=1"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("list body");
    assert_eq!(listed["total"], json!(ROWS));
    let _ = server.kill();
    let _ = server.wait();
}
