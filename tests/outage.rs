//! Database outage: with PostgreSQL stopped every request answers within 2 s (503 problem,
//! readiness 503, liveness 200); when it returns the service recovers by itself within 3 s;
//! every write that got a 2xx is in the database afterwards; a write whose first try got 503
//! succeeds on a retry with the same `Idempotency-Key`, once.
//!
//! The test starts its own throwaway PostgreSQL cluster (`initdb` + `pg_ctl` in a temp dir)
//! so it can stop and restart it. Like every PostgreSQL test it runs when the build saw
//! `TEST_DATABASE_URL` (`cfg(postgres_tests)`, see `build.rs`) and is counted as ignored
//! otherwise; when it runs, missing PostgreSQL server binaries fail it.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use event_manager::{AppState, build_app, config::Config, db, entity::event};
use poem::{
    Server,
    listener::{Acceptor, Listener, TcpListener},
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

/// A PostgreSQL cluster in a temporary directory, owned by this test.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

fn postgres_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as user `postgres` when we are root (initdb refuses root).
fn run_pg(bin: &Path, tool: &str, args: &[&str]) {
    let program = bin.join(tool);
    let status = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&program)
            .args(args)
            .status()
    } else {
        Command::new(&program).args(args).status()
    }
    .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    assert!(status.success(), "{tool} {args:?} failed with {status}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Cluster {
    fn create() -> Cluster {
        let bin = postgres_bin_dir().expect(
            "PostgreSQL is tested (TEST_DATABASE_URL is set) but no PostgreSQL server \
             binaries are installed under /usr/lib/postgresql",
        );
        let dir = tempfile::Builder::new()
            .prefix("em-outage-")
            .tempdir()
            .expect("temp dir");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let data = dir.path().join("data");
        let data = data.to_str().expect("utf-8 path");
        run_pg(
            &bin,
            "initdb",
            &["-D", data, "-U", "postgres", "--auth=trust", "-N"],
        );
        let cluster = Cluster {
            bin,
            port: free_port(),
            dir,
        };
        cluster.start();
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        run_pg(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                log.to_str().expect("path"),
                "-w",
                "start",
            ],
        );
    }

    fn stop(&self) {
        run_pg(
            &self.bin,
            "pg_ctl",
            &["-D", &self.data(), "-m", "fast", "-w", "stop"],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let program = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(program)
                .args(args)
                .output()
        } else {
            Command::new(program).args(args).output()
        };
    }
}

/// One write attempt: status, latency, when it started, and the created id on 201.
#[derive(Debug, Clone)]
struct Attempt {
    status: u16,
    latency: Duration,
    started: Instant,
    id: Option<Uuid>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "TEST_DATABASE_URL is unset: PostgreSQL not tested"
)]
async fn a_database_outage_answers_503_fast_recovers_by_itself_and_loses_no_acknowledged_write() {
    let cluster = Cluster::create();

    let mut config = Config::for_database(cluster.url());
    config.jwt_secret = Some("outage-test-secret-0123456789abcdef-0123".to_owned());
    config.argon2_memory_kib = 256;
    config.argon2_iterations = 1;
    let pool = db::connect(&config).await.expect("connecting");
    db::migrate(&pool).await.expect("migrating");
    let state = AppState::new(config, pool.clone()).expect("state");
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let base = format!(
        "http://{}",
        acceptor.local_addr()[0].as_socket_addr().expect("addr")
    );
    let app = build_app(state);
    tokio::spawn(async move { Server::new_with_acceptor(acceptor).run(app).await });

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let signup = client
        .post(format!("{base}/api/v1/users"))
        .json(&json!({"email": "w@example.com", "password": "password123", "full_name": "W"}))
        .send()
        .await
        .expect("sign-up");
    assert_eq!(signup.status(), 201);
    let token: Value = client
        .post(format!("{base}/api/v1/auth/token"))
        .json(&json!({"email": "w@example.com", "password": "password123"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = token["access_token"].as_str().expect("token").to_owned();

    // Writers: create events until told to stop, recording every outcome.
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(Mutex::new(Vec::<Attempt>::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        let (stop, attempts) = (stop.clone(), attempts.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let started = Instant::now();
                let resp = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&token)
                    .json(&json!({
                        "title": format!("writer {w} event {n}"),
                        "starts_at": "2030-01-01T10:00:00Z",
                        "ends_at": "2030-01-01T12:00:00Z"
                    }))
                    .send()
                    .await
                    .expect("every request gets an answer");
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                let id = (status == 201)
                    .then(|| body["id"].as_str().and_then(|s| Uuid::parse_str(s).ok()))
                    .flatten();
                attempts.lock().await.push(Attempt {
                    status,
                    latency: started.elapsed(),
                    started,
                    id,
                });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.stop();
    let outage_began = Instant::now();

    // During the outage: probes and writes answer fast and say why.
    let mut probes = Vec::new();
    while outage_began.elapsed() < Duration::from_secs(3) {
        let t = Instant::now();
        let ready = client
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .expect("ready answers");
        let ready_status = ready.status().as_u16();
        let ready_latency = t.elapsed();
        let body: Value = ready.json().await.expect("json");
        let live = client
            .get(format!("{base}/health/live"))
            .send()
            .await
            .expect("live answers");
        probes.push((ready_status, ready_latency, body, live.status().as_u16()));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for (ready, latency, body, live) in &probes {
        assert_eq!(*ready, 503, "readiness during the outage: {body}");
        assert_eq!(body["database"], "unreachable");
        assert!(
            *latency < Duration::from_secs(2),
            "readiness took {latency:?}"
        );
        assert_eq!(*live, 200, "liveness stays 200");
    }

    // A keyed write refused by the outage stored nothing: its retry after the restart runs.
    let keyed = |client: &reqwest::Client| {
        client
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(&token)
            .header("idempotency-key", "outage-retry-1")
            .json(&json!({
                "title": "keyed during the outage",
                "starts_at": "2030-01-01T10:00:00Z",
                "ends_at": "2030-01-01T12:00:00Z"
            }))
    };
    let refused = keyed(&client).send().await.expect("an answer");
    assert_eq!(refused.status(), 503, "a keyed write during the outage");

    // Writes answered before this instant saw no database at all; `pg_ctl start -w` returns
    // only once the server accepts connections, so a write waiting for a connection while it
    // starts can rightly succeed before `restarted`.
    let restart_began = Instant::now();
    cluster.start();
    let restarted = Instant::now();
    // Recovery: the first successful write after the restart, with no restart of ours.
    let recovered_after = loop {
        let resp = client
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(&token)
            .json(&json!({
                "title": "probe after restart",
                "starts_at": "2030-01-01T10:00:00Z",
                "ends_at": "2030-01-01T12:00:00Z"
            }))
            .send()
            .await
            .expect("answer");
        if resp.status() == 201 {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(3),
            "not recovered within 3 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let retried = keyed(&client).send().await.expect("an answer");
    assert_eq!(
        retried.status(),
        201,
        "the keyed write's retry runs after the restart"
    );
    assert!(retried.headers().get("idempotent-replayed").is_none());
    let first: Value = retried.json().await.expect("json");
    let replayed = keyed(&client).send().await.expect("an answer");
    assert_eq!(replayed.status(), 201);
    assert_eq!(
        replayed
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let again: Value = replayed.json().await.expect("json");
    assert_eq!(again, first, "a later retry replays the answer");
    let keyed_events = event::Entity::find()
        .filter(event::Column::Title.eq("keyed during the outage"))
        .count(&pool)
        .await
        .expect("counting keyed events");
    assert_eq!(keyed_events, 1, "the keyed write took effect exactly once");

    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }

    let attempts = attempts.lock().await.clone();
    let during: Vec<_> = attempts
        .iter()
        .filter(|a| a.started >= outage_began && a.started + a.latency <= restart_began)
        .collect();
    assert!(
        !during.is_empty(),
        "writes were attempted during the outage"
    );
    for a in &during {
        assert_eq!(a.status, 503, "a write during the outage: {a:?}");
        assert!(
            a.latency < Duration::from_secs(2),
            "a write took {:?} during the outage",
            a.latency
        );
    }
    for a in &attempts {
        assert!(matches!(a.status, 201 | 503), "only 201 or 503 ever: {a:?}");
    }
    let acknowledged: Vec<Uuid> = attempts.iter().filter_map(|a| a.id).collect();
    let stored = event::Entity::find()
        .filter(event::Column::Id.is_in(acknowledged.clone()))
        .count(&pool)
        .await
        .expect("counting after recovery");
    assert_eq!(
        stored as usize,
        acknowledged.len(),
        "every acknowledged write is stored"
    );
    let slowest = during.iter().map(|a| a.latency).max().unwrap_or_default();
    eprintln!(
        "outage: {} writes refused (slowest {slowest:?}), {} probes; recovered {recovered_after:?} \
         after restart; {} acknowledged writes all stored",
        during.len(),
        probes.len(),
        acknowledged.len()
    );
}
