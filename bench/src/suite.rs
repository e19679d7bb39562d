//! The scenarios, in order, for each backend.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::Method;
use rand::Rng;
use reqwest::Client;

use crate::{
    Args, Backend, Part, Profile, api,
    api::User,
    load::{self, Outcome, Stop},
    pg::{self, Length, Pg, PgbenchOutcome},
    report::{Baseline, Cpu, Fanout, Latency, Ops, Process, Report, Row},
    server::{self, CpuProbe, CpuSnapshot, Hashing, Server},
    streams::{self, Streams},
};

/// Name of the scenario without SQL.
pub const FLOOR: &str = "HTTP floor: GET /health/live (no SQL)";

/// Scenario name of GET one event measured beside the same with metrics off.
pub const GET_METRICS_ON: &str = "GET one event, metrics on";
/// Scenario name of GET one event on a server started with `METRICS_ENABLED=false`.
pub const GET_METRICS_OFF: &str = "GET one event, metrics off";

/// Name of the PostgreSQL database the scenarios run on.
const PG_DB: &str = "em_bench";
/// Name of the databases for start-up trials on an empty database.
const PG_FRESH_DB: &str = "em_bench_fresh";
/// Scenario name of the burst with live streams open.
pub const STREAMED_BURST: &str = "registration burst, streams open";
/// Scenario name of the burst whose every request carries a fresh `Idempotency-Key`.
pub const KEYED_BURST: &str = "registration burst, Idempotency-Key";
/// Scenario name of the burst with webhooks on its event whose receiver hangs.
pub const HOOKED_BURST: &str = "registration burst, 10 webhooks to a receiver sleeping 30 s";
/// Webhooks of a hooked burst.
const BURST_WEBHOOKS: usize = 10;
/// Streams of a streamed burst that also measure delivery delays.
const STREAM_SAMPLE: usize = 50;
/// An `event.created` change's data as the server writes it.
const CHANGE_EVENT_JSON: &str = r#"{"id":"01a22ee8-8762-7252-8268-43afe9bdfbdc","title":"Created event 0","description":"An event seeded by em-bench, with a description of ordinary length.","location":"Hall 0","starts_at":"2026-12-02T00:02:00Z","ends_at":"2026-12-02T02:02:00Z","capacity":100,"waitlist_enabled":false,"status":"published","organizer_id":"01a22ee8-83c8-71a9-a18b-69f011bea33d","confirmed_count":0,"waitlist_count":0,"available_seats":100,"created_at":"2026-12-01T00:02:00.673797Z","updated_at":"2026-12-01T00:02:00.673797Z","version":1}"#;
/// An `attendee.registered` change's data as the server writes it.
const CHANGE_ATTENDEE_JSON: &str = r#"{"id":"01a22ee8-8773-7477-809d-2630a61201cf","event_id":"01a22ee8-85d5-71e5-a86f-9b4f2a075eb6","user_id":"01a22ee8-83c8-71a9-a18b-69f011bea33d","status":"confirmed","waitlist_position":null,"registered_at":"2026-12-01T00:02:00.689872Z","updated_at":"2026-12-01T00:02:00.689872Z","version":1}"#;
/// Capacity of the seeded events: never reached.
const SEED_CAPACITY: i64 = 1_000_000;
/// Title prefix of the events seeded through the API (the "1k" table).
const SEED_TITLE: &str = "Bench event";

/// Runs everything; `Ok(false)` when something failed but a report was printed.
/// The private-event GET scenario, compared with "GET one event".
pub const PRIVATE_GET: &str = "private event: GET one as a registered user";
/// The list scenario as users registered for private events, compared with the 1k list.
pub const PRIVATE_LIST: &str = "private events: list (1k) as a registered user";

pub async fn run(args: Args, profile: Profile) -> anyhow::Result<bool> {
    std::fs::create_dir_all(&args.out)?;
    let out = std::fs::canonicalize(&args.out)?;
    let mut suite = Suite {
        pg: Pg {
            host: args.pg_host.clone(),
            port: args.pg_port,
            user: args.pg_user.clone(),
            log: args.pg_log.clone().unwrap_or_default(),
            psql: args.psql.clone(),
            pgbench: args.pgbench.clone(),
        },
        args,
        profile,
        out,
        report: Report::default(),
        failures: Vec::new(),
        probe: None,
    };
    let load_before = loadavg();
    let backends = suite.args.backends.clone();
    for backend in backends {
        eprintln!("== {}", backend.name());
        if let Err(e) = suite.backend(backend).await {
            suite.failures.push(format!("{}: {e:#}", backend.name()));
            eprintln!("em-bench: {} aborted: {e:#}", backend.name());
        }
    }
    let table = suite.report.table();
    let targets = suite.report.targets();
    let mut text = format!(
        "{}\nload average before: {load_before}; after: {}\n\n{table}\n{targets}",
        machine(),
        loadavg()
    );
    for (name, diffs) in &suite.report.sql_checks {
        if diffs.is_empty() {
            text.push_str(&format!(
                "\nSQL check {name}: the pgbench script replays the captured statements"
            ));
        }
    }
    text.push('\n');
    println!("\n{text}");
    std::fs::write(suite.out.join("results.md"), &text)?;
    std::fs::write(
        suite.out.join("results.json"),
        serde_json::to_string_pretty(&suite.report)?,
    )?;
    let errors: u64 = suite
        .report
        .rows
        .iter()
        .map(|r| r.errors + r.baseline.as_ref().map_or(0, |b| b.errors))
        .sum();
    if errors > 0 {
        suite
            .failures
            .push(format!("{errors} failed requests or transactions"));
    }
    for f in &suite.failures {
        eprintln!("FAILED: {f}");
    }
    Ok(suite.failures.is_empty())
}

struct Suite {
    args: Args,
    profile: Profile,
    pg: Pg,
    out: PathBuf,
    report: Report,
    failures: Vec<String>,
    /// CPU accounting of the running server (and cluster).
    probe: Option<CpuProbe>,
}

/// What the scenarios of one backend share.
struct Ctx {
    backend: Backend,
    base: String,
    addr: SocketAddr,
    client: Client,
    users: Arc<Vec<User>>,
    events: Arc<Vec<String>>,
    /// Database name (PostgreSQL) or file (SQLite).
    db: String,
    /// The server's database URL (for a second server on the same database).
    url: String,
    /// The server's process id.
    pid: u32,
}

impl Suite {
    fn conc(&self) -> usize {
        self.args.concurrency
    }

    fn log(&self, backend: Backend) -> PathBuf {
        self.out.join(format!("server-{}.log", backend.name()))
    }

    fn stop(&self) -> Stop {
        match self.profile.seconds {
            Some(s) => Stop::After(Duration::from_secs(s)),
            None => Stop::After(self.profile.smoke_http),
        }
    }

    fn pg_length(&self) -> Length {
        match self.profile.seconds {
            Some(s) => Length::Seconds(s),
            None => Length::PerClient(self.profile.timed_transactions),
        }
    }

    fn cpu(&self) -> CpuSnapshot {
        self.probe
            .as_ref()
            .map(CpuProbe::snapshot)
            .unwrap_or_default()
    }

    /// Starts accounting CPU for `server` (and the cluster on PostgreSQL).
    fn watch(&mut self, backend: Backend, server: &Server) {
        let backend_pid = match backend {
            Backend::Postgres => self
                .pg
                .sql(
                    "postgres",
                    "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'",
                )
                .ok()
                .and_then(|p| p.parse().ok()),
            Backend::Sqlite => None,
        };
        self.probe = Some(CpuProbe::new(server.pid(), backend_pid));
    }

    fn script(&self, name: &str) -> PathBuf {
        self.args.scripts.join(format!("{name}.sql"))
    }

    async fn backend(&mut self, backend: Backend) -> anyhow::Result<()> {
        let (url, db) = match backend {
            Backend::Postgres => {
                self.pg.recreate_db(PG_DB)?;
                (self.pg.url(PG_DB), PG_DB.to_owned())
            }
            Backend::Sqlite => {
                let file = self.out.join("em-bench.sqlite");
                remove_sqlite(&file);
                (
                    format!("sqlite://{}?mode=rwc", file.display()),
                    file.display().to_string(),
                )
            }
        };
        let _ = std::fs::remove_file(self.log(backend));
        let bin = self.args.server_bin.clone();
        let server = Server::start(
            &bin,
            &url,
            Hashing::Cheap,
            &self.log(backend),
            &self.args.server_env,
        )
        .await?;
        self.watch(backend, &server);
        let client = load::client(self.conc())?;
        eprintln!(
            "seeding {} users and {} events",
            self.profile.users, self.profile.events
        );
        let base = server.base.clone();
        let users = {
            let (client, base) = (client.clone(), base.clone());
            load::par_map(self.profile.users, self.conc(), move |i| {
                let (client, base) = (client.clone(), base.clone());
                async move { api::user(&client, &base, format!("bench-{i}@example.com")).await }
            })
            .await?
        };
        let users = Arc::new(users);
        let events = {
            let (client, base, users) = (client.clone(), base.clone(), users.clone());
            load::par_map(self.profile.events, self.conc(), move |i| {
                let (client, base, users) = (client.clone(), base.clone(), users.clone());
                async move {
                    // A capacity far above any load keeps seats free and gives the change feed (and the
                    // pgbench replay of it) a number to record.
                    let body = api::event_body(SEED_TITLE, i, Some(SEED_CAPACITY), false);
                    api::create_event(&client, &base, &users[i % users.len()].bearer, &body).await
                }
            })
            .await?
        };
        let ctx = Ctx {
            backend,
            addr: server::addr_of(&base)?,
            base,
            client,
            users,
            events: Arc::new(events),
            db,
            url: url.clone(),
            pid: server.pid(),
        };
        if backend == Backend::Postgres {
            self.pgbench_data(&ctx)?;
            self.capture(&ctx).await?;
        }
        let result = self.scenarios(&ctx).await;
        server.stop();
        result?;
        if self.wants(Part::Login) {
            self.login(&ctx, &url).await?;
        }
        if self.wants(Part::Process) {
            self.process(&ctx, &url).await?;
        }
        Ok(())
    }

    /// Whether `--only` leaves this part in.
    fn wants(&self, part: Part) -> bool {
        self.args.only.is_empty() || self.args.only.contains(&part)
    }

    async fn scenarios(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        if self.wants(Part::Floor) {
            self.floor(ctx).await?;
        }
        if self.wants(Part::Get) {
            self.get_one(ctx).await?;
        }
        if self.wants(Part::List) {
            self.list(ctx, "list events (1k)").await?;
        }
        if self.wants(Part::Spread) {
            self.spread(ctx).await?;
        }
        if self.wants(Part::Burst) {
            self.burst(ctx).await?;
        }
        if self.wants(Part::Create) {
            self.create(ctx).await?;
        }
        if self.wants(Part::Private) {
            self.private(ctx).await?;
        }
        if self.wants(Part::CheckIn) {
            self.check_in(ctx).await?;
        }
        if self.wants(Part::Ops) {
            self.ops(ctx).await?;
        }
        if self.wants(Part::ListBig) {
            let n = self.top_up(ctx)?;
            self.list(ctx, &format!("list events ({})", thousands(n)))
                .await?;
        }
        Ok(())
    }

    /// Runs a timed HTTP scenario after a warm-up.
    async fn timed(
        &self,
        addr: SocketAddr,
        concurrency: usize,
        make: Arc<load::MakeRequest>,
        check: Arc<load::Check>,
    ) -> Outcome {
        let warm = Stop::After(self.profile.warmup);
        let _ = load::run(addr, concurrency, warm, make.clone(), check.clone()).await;
        load::run(addr, concurrency, self.stop(), make, check).await
    }

    /// A timed scenario whose every answer must have `status`, then (on PostgreSQL) the
    /// pgbench `script` that replays its SQL, recorded as one row.
    async fn measure(
        &mut self,
        ctx: &Ctx,
        scenario: &str,
        make: Arc<load::MakeRequest>,
        status: u16,
        script: Option<&str>,
    ) -> anyhow::Result<()> {
        let c0 = self.cpu();
        let http = self
            .timed(
                ctx.addr,
                self.conc(),
                make,
                Arc::new(move |s, _| s == status),
            )
            .await;
        let c1 = self.cpu();
        let db = match script {
            Some(script) => self.baseline(ctx, script, self.conc(), None, self.pg_length())?,
            None => None,
        };
        let c2 = self.cpu();
        self.record(ctx, scenario, self.conc(), http, c1 - c0, db, c2 - c1);
        Ok(())
    }

    fn record(
        &mut self,
        ctx: &Ctx,
        scenario: &str,
        concurrency: usize,
        http: Outcome,
        http_cpu: CpuSnapshot,
        db: Option<PgbenchOutcome>,
        db_cpu: CpuSnapshot,
    ) {
        let per = |seconds: f64, n: u64| seconds * 1e6 / n.max(1) as f64;
        let cpu = Cpu {
            server_us: per(http_cpu.server, http.requests),
            bench_us: per(http_cpu.bench, http.requests),
            postgres_us: per(http_cpu.postgres, http.requests),
            others_share: http_cpu.others_share(),
        };
        for s in &http.samples {
            eprintln!("  error sample: {s}");
        }
        let row = Row {
            scenario: scenario.to_owned(),
            backend: ctx.backend,
            concurrency,
            requests: http.requests,
            rps: http.rps(),
            latency: Latency::from(&http.hist),
            errors: http.errors,
            cpu,
            baseline: db.map(|d| Baseline {
                tps: d.tps,
                latency: Latency::from(&d.hist),
                transactions: d.transactions,
                errors: d.errors,
                postgres_cpu_us: per(db_cpu.postgres, d.transactions),
            }),
        };
        eprintln!(
            "  {scenario}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors; CPU µs/request: server {:.0}, em-bench {:.0}, postgres {:.0}; other processes {:.0} %{}",
            row.rps,
            row.latency.p50_ms,
            row.latency.p99_ms,
            row.errors,
            row.cpu.server_us,
            row.cpu.bench_us,
            row.cpu.postgres_us,
            row.cpu.others_share * 100.0,
            match &row.baseline {
                Some(b) => format!(
                    "; pgbench {:.0} TPS, p50 {:.2} ms ({:.0} %), postgres CPU µs/transaction {:.0}",
                    b.tps,
                    b.latency.p50_ms,
                    row.rps / b.tps * 100.0,
                    b.postgres_cpu_us
                ),
                None => String::new(),
            }
        );
        self.report.rows.push(row);
    }

    // --- scenarios ----------------------------------------------------------------------

    /// The server's floor: an answer that touches no database, with the same token header
    /// as the other scenarios (ignored there). What HTTP on loopback, routing, middleware and
    /// logging cost per request, before any SQL.
    async fn floor(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let users = ctx.users.clone();
        let make: Arc<load::MakeRequest> = Arc::new(move |_, rng| {
            let u = &users[rng.random_range(0..users.len())];
            load::request(Method::GET, "/health/live", Some(&u.bearer), None)
        });
        self.measure(ctx, FLOOR, make, 200, None).await
    }

    async fn get_one(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let (users, events) = (ctx.users.clone(), ctx.events.clone());
        let make: Arc<load::MakeRequest> = Arc::new(move |_, rng| {
            let u = &users[rng.random_range(0..users.len())];
            let e = &events[rng.random_range(0..events.len())];
            load::request(
                Method::GET,
                &format!("/api/v1/events/{e}"),
                Some(&u.bearer),
                None,
            )
        });
        self.measure(ctx, "GET one event", make, 200, Some("get"))
            .await
    }

    async fn list(&mut self, ctx: &Ctx, scenario: &str) -> anyhow::Result<()> {
        let users = ctx.users.clone();
        let make: Arc<load::MakeRequest> = Arc::new(move |_, rng| {
            let u = &users[rng.random_range(0..users.len())];
            load::request(
                Method::GET,
                "/api/v1/events?limit=20",
                Some(&u.bearer),
                None,
            )
        });
        self.measure(ctx, scenario, make, 200, Some("list")).await
    }

    /// GET and list as users each registered (by invitation) for one of 100 private events.
    async fn private(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let organizer = ctx.users[0].bearer.clone();
        let count = ctx.users.len().min(100);
        let mut events = Vec::with_capacity(count);
        for i in 0..count {
            let mut body = api::event_body("Private event", i, Some(SEED_CAPACITY), false);
            body["visibility"] = serde_json::json!("private");
            let id = api::create_event(&ctx.client, &ctx.base, &organizer, &body).await?;
            let token =
                api::invite(&ctx.client, &ctx.base, &organizer, &id, ctx.users.len()).await?;
            events.push((id, token));
        }
        let events = Arc::new(events);
        {
            let (client, base, users, events) = (
                ctx.client.clone(),
                ctx.base.clone(),
                ctx.users.clone(),
                events.clone(),
            );
            load::par_map(users.len(), self.conc(), move |i| {
                let (client, base, users, events) =
                    (client.clone(), base.clone(), users.clone(), events.clone());
                async move {
                    let (event, token) = &events[i % events.len()];
                    let body = serde_json::json!({ "invitation": token });
                    api::register_with(&client, &base, &users[i].bearer, event, &body).await
                }
            })
            .await?;
        }
        let (users, private) = (ctx.users.clone(), events.clone());
        let make: Arc<load::MakeRequest> = Arc::new(move |_, rng| {
            let i = rng.random_range(0..users.len());
            let (event, _) = &private[i % private.len()];
            load::request(
                Method::GET,
                &format!("/api/v1/events/{event}"),
                Some(&users[i].bearer),
                None,
            )
        });
        self.measure(ctx, PRIVATE_GET, make, 200, None).await?;
        let users = ctx.users.clone();
        let make: Arc<load::MakeRequest> = Arc::new(move |_, rng| {
            let u = &users[rng.random_range(0..users.len())];
            load::request(
                Method::GET,
                "/api/v1/events?limit=20",
                Some(&u.bearer),
                None,
            )
        });
        self.measure(ctx, PRIVATE_LIST, make, 200, None).await
    }

    /// Batch check-in: events with `scans` registrations each, their batch uploaded twice.
    async fn check_in(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let scans = ctx.users.len().min(1000);
        let rounds = if self.args.smoke { 1 } else { 5 };
        let organizer = ctx.users[0].bearer.clone();
        let mut result = crate::report::CheckIns {
            backend: ctx.backend.name().to_owned(),
            scans,
            first_seconds: Vec::new(),
            repeat_seconds: Vec::new(),
        };
        for round in 0..rounds {
            let body = api::event_body("Door", round, None, false);
            let event = api::create_event(&ctx.client, &ctx.base, &organizer, &body).await?;
            let attendees = {
                let (client, base, users, event) = (
                    ctx.client.clone(),
                    ctx.base.clone(),
                    ctx.users.clone(),
                    event.clone(),
                );
                load::par_map(scans, self.conc(), move |i| {
                    let (client, base, users, event) =
                        (client.clone(), base.clone(), users.clone(), event.clone());
                    async move {
                        let body = serde_json::json!({});
                        api::register_with(&client, &base, &users[i].bearer, &event, &body).await
                    }
                })
                .await?
            };
            let started = std::time::Instant::now();
            let checked =
                api::check_in(&ctx.client, &ctx.base, &organizer, &event, &attendees).await?;
            result.first_seconds.push(started.elapsed().as_secs_f64());
            let started = std::time::Instant::now();
            let again =
                api::check_in(&ctx.client, &ctx.base, &organizer, &event, &attendees).await?;
            result.repeat_seconds.push(started.elapsed().as_secs_f64());
            if checked != scans || again != 0 {
                self.failures.push(format!(
                    "{}: check-in of {scans} scans checked in {checked}, then {again}",
                    ctx.backend.name()
                ));
            }
        }
        eprintln!(
            "  batch check-in of {scans} scans: first {:?} s, again {:?} s",
            result.first_seconds, result.repeat_seconds
        );
        self.report.check_ins.push(result);
        Ok(())
    }

    async fn create(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let users = ctx.users.clone();
        let make: Arc<load::MakeRequest> = Arc::new(move |seq, rng| {
            let u = &users[rng.random_range(0..users.len())];
            let body = api::event_body("Created event", seq, Some(100), false).to_string();
            load::request(
                Method::POST,
                "/api/v1/events",
                Some(&u.bearer),
                Some(body.into()),
            )
        });
        self.measure(ctx, "create event", make, 201, Some("create"))
            .await
    }

    /// Each request registers a different (user, event) pair; consecutive requests hit
    /// different events.
    async fn spread(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let n = self.profile.spread_requests;
        let (users, events) = (ctx.users.clone(), ctx.events.clone());
        anyhow::ensure!(
            n / users.len() < events.len(),
            "too few events for distinct pairs"
        );
        let make: Arc<load::MakeRequest> = Arc::new(move |seq, _| {
            let u = seq % users.len();
            let e = (u + seq / users.len()) % events.len();
            load::request(
                Method::POST,
                &format!("/api/v1/events/{}/attendees", events[e]),
                Some(&users[u].bearer),
                Some(Bytes::from_static(b"{}")),
            )
        });
        let c0 = self.cpu();
        let http = load::run(
            ctx.addr,
            self.conc(),
            Stop::Count(n),
            make,
            Arc::new(|s, _| s == 201),
        )
        .await;
        let c1 = self.cpu();
        let per_client = n / self.conc();
        let db = self.baseline(
            ctx,
            "spread",
            self.conc(),
            Some((per_client, None)),
            Length::PerClient(per_client),
        )?;
        let c2 = self.cpu();
        self.record(
            ctx,
            &format!("registrations over {} events", thousands(ctx.events.len())),
            self.conc(),
            http,
            c1 - c0,
            db,
            c2 - c1,
        );
        Ok(())
    }

    /// One HTTP burst: `burst_users` distinct users register at once for a fresh event of
    /// capacity `burst_capacity` with a waitlist, while `streams` live streams follow it;
    /// with `keyed`, each request carries a fresh `Idempotency-Key`.
    /// Returns the outcome, its CPU, and the streams' delivery delays.
    async fn http_burst(
        &mut self,
        ctx: &Ctx,
        round: usize,
        streams: usize,
        keyed: bool,
        hooks: Option<(&str, usize)>,
    ) -> anyhow::Result<(
        Outcome,
        CpuSnapshot,
        Option<hdrhistogram::Histogram<u64>>,
        Vec<String>,
    )> {
        let p = self.profile.clone();
        let organizer = ctx.users[0].bearer.clone();
        let title = match (streams > 0, keyed, hooks.is_some()) {
            (true, _, _) => "Burst event streamed",
            (false, true, _) => "Burst event keyed",
            (false, false, true) => "Burst event hooked",
            (false, false, false) => "Burst event",
        };
        let body = api::event_body(title, round, Some(p.burst_capacity), true);
        let event = api::create_event(&ctx.client, &ctx.base, &organizer, &body).await?;
        let mut webhooks = Vec::new();
        if let Some((url, n)) = hooks {
            for _ in 0..n {
                webhooks.push(
                    api::create_webhook(&ctx.client, &ctx.base, &organizer, url, &event).await?,
                );
            }
        }
        let open = if streams > 0 {
            let client = streams::client()?;
            Some(
                Streams::open(
                    &client,
                    &ctx.base,
                    &event,
                    streams,
                    STREAM_SAMPLE.min(streams),
                )
                .await?,
            )
        } else {
            None
        };
        let users = ctx.users.clone();
        let path = format!("/api/v1/events/{event}/attendees");
        // Unique per request: the users are the same in every round and scenario.
        let run = format!("{}-{round}", std::process::id());
        let make: Arc<load::MakeRequest> = Arc::new(move |seq, _| {
            let mut request = load::request(
                Method::POST,
                &path,
                Some(&users[seq].bearer),
                Some(Bytes::from_static(b"{}")),
            );
            if keyed {
                let key = http::HeaderValue::from_str(&format!("burst-{run}-{seq}"))
                    .expect("a valid key");
                request.headers_mut().insert("idempotency-key", key);
            }
            request
        });
        let confirmed = Arc::new(AtomicU64::new(0));
        let counted = confirmed.clone();
        let check: Arc<load::Check> = Arc::new(move |s, body| {
            if s != 201 {
                return false;
            }
            if body.windows(20).any(|w| w == b"\"status\":\"confirmed\"") {
                counted.fetch_add(1, Ordering::Relaxed);
            }
            true
        });
        let c0 = self.cpu();
        let o = load::run(
            ctx.addr,
            self.conc(),
            Stop::Count(p.burst_users),
            make,
            check,
        )
        .await;
        let cpu = self.cpu() - c0;
        let seated = confirmed.load(Ordering::Relaxed);
        if seated != p.burst_capacity as u64 {
            self.failures.push(format!(
                "{}: burst seated {seated}, capacity {}",
                ctx.backend.name(),
                p.burst_capacity
            ));
        }
        let delays = match open {
            Some(open) => {
                let registered = o.requests as usize - o.errors as usize;
                let short = open.wait_for(registered, Duration::from_secs(30)).await;
                if short > 0 {
                    self.failures.push(format!(
                        "{}: {short} of {streams} streams missed changes of the burst",
                        ctx.backend.name()
                    ));
                }
                let delays = open.delays();
                open.close();
                Some(delays)
            }
            None => None,
        };
        Ok((o, cpu, delays, webhooks))
    }

    /// Registration bursts, each an HTTP burst, the same burst with a fresh
    /// `Idempotency-Key` per request, then a pgbench burst of the same transaction (so a
    /// change in the machine's load hits all three alike); then the same HTTP bursts with
    /// `burst_streams` live streams following the event.
    async fn burst(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let p = self.profile.clone();
        anyhow::ensure!(
            ctx.users.len() >= p.burst_users,
            "too few users for the burst"
        );
        let organizer = ctx.users[0].bearer.clone();
        let (mut http, mut db): (Option<Outcome>, Option<PgbenchOutcome>) = (None, None);
        let (mut http_cpu, mut db_cpu) = (CpuSnapshot::default(), CpuSnapshot::default());
        let (mut keyed, mut keyed_cpu) = (None::<Outcome>, CpuSnapshot::default());
        for round in 0..p.burst_rounds {
            let (o, cpu, _, _) = self.http_burst(ctx, round, 0, false, None).await?;
            http_cpu = http_cpu + cpu;
            match &mut http {
                Some(h) => h.merge(o),
                None => http = Some(o),
            }
            let (o, cpu, _, _) = self.http_burst(ctx, round, 0, true, None).await?;
            keyed_cpu = keyed_cpu + cpu;
            match &mut keyed {
                Some(k) => k.merge(o),
                None => keyed = Some(o),
            }
            if ctx.backend != Backend::Postgres {
                continue;
            }
            let per_client = p.burst_users / self.conc();
            let body = api::event_body("Burst event pgbench", round, Some(p.burst_capacity), true);
            let event = api::create_event(&ctx.client, &ctx.base, &organizer, &body).await?;
            self.pg.sql(
                &ctx.db,
                &format!("UPDATE events SET location = id::text WHERE id = '{event}'"),
            )?;
            let c0 = self.cpu();
            let o = self
                .baseline(
                    ctx,
                    "burst",
                    self.conc(),
                    Some((per_client, Some(event.clone()))),
                    Length::PerClient(per_client),
                )?
                .context("no pgbench outcome")?;
            db_cpu = db_cpu + (self.cpu() - c0);
            let counts = self.pg.sql(
                &ctx.db,
                &format!(
                    "SELECT confirmed_count || ' ' || waitlist_count FROM events WHERE id = '{event}'"
                ),
            )?;
            let expected = format!(
                "{} {}",
                p.burst_capacity,
                (per_client * self.conc()) as i64 - p.burst_capacity
            );
            if counts != expected {
                self.failures.push(format!(
                    "pgbench burst left counts {counts}, expected {expected}"
                ));
            }
            match &mut db {
                Some(d) => d.merge(o),
                None => db = Some(o),
            }
        }
        let http = http.context("no burst round ran")?;
        self.record(
            ctx,
            "registration burst",
            self.conc(),
            http,
            http_cpu,
            db,
            db_cpu,
        );
        self.record(
            ctx,
            KEYED_BURST,
            self.conc(),
            keyed.context("no keyed burst round ran")?,
            keyed_cpu,
            None,
            CpuSnapshot::default(),
        );
        self.hooked_burst(ctx).await?;
        self.delivery_throughput(ctx).await?;
        if p.burst_streams == 0 {
            return Ok(());
        }
        let (mut http, mut cpu, mut delays) =
            (None::<Outcome>, CpuSnapshot::default(), load::histogram());
        for round in 0..p.burst_rounds {
            let (o, c, d, _) = self
                .http_burst(ctx, round, p.burst_streams, false, None)
                .await?;
            cpu = cpu + c;
            if let Some(d) = d {
                delays.add(&d).context("merging delay histograms")?;
            }
            match &mut http {
                Some(h) => h.merge(o),
                None => http = Some(o),
            }
        }
        let scenario = format!("{STREAMED_BURST} ({} streams)", thousands(p.burst_streams));
        self.record(
            ctx,
            &scenario,
            self.conc(),
            http.context("no burst round ran")?,
            cpu,
            None,
            CpuSnapshot::default(),
        );
        let fanout = Fanout {
            backend: ctx.backend.name().to_owned(),
            streams: p.burst_streams,
            sampled: STREAM_SAMPLE.min(p.burst_streams),
            deliveries: delays.len(),
            delay: Latency::from(&delays),
        };
        eprintln!(
            "  fan-out to {} streams: delivery delay p50 {:.2} ms, p99 {:.2} ms ({} sampled deliveries)",
            fanout.streams, fanout.delay.p50_ms, fanout.delay.p99_ms, fanout.deliveries
        );
        self.report.fanout.push(fanout);
        Ok(())
    }

    /// The registration burst with [`BURST_WEBHOOKS`] webhooks on its event, posting to a
    /// receiver that takes 30 s per request: deliveries run outside the requests, so the burst
    /// should not notice them.
    async fn hooked_burst(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let slow = crate::receiver::Receiver::start(Duration::from_secs(30)).await?;
        let organizer = ctx.users[0].bearer.clone();
        let (mut http, mut cpu) = (None::<Outcome>, CpuSnapshot::default());
        for round in 0..self.profile.burst_rounds {
            let (o, c, _, hooks) = self
                .http_burst(ctx, round, 0, false, Some((&slow.url, BURST_WEBHOOKS)))
                .await?;
            cpu = cpu + c;
            match &mut http {
                Some(h) => h.merge(o),
                None => http = Some(o),
            }
            // Their pending deliveries would otherwise hang on into the next scenarios.
            for hook in hooks {
                api::delete_webhook(&ctx.client, &ctx.base, &organizer, &hook).await?;
            }
        }
        eprintln!(
            "  slow receiver got {} deliveries during the hooked bursts",
            slow.received()
        );
        slow.stop();
        self.record(
            ctx,
            HOOKED_BURST,
            self.conc(),
            http.context("no hooked burst round ran")?,
            cpu,
            None,
            CpuSnapshot::default(),
        );
        Ok(())
    }

    /// Delivery throughput: one webhook on a burst's event posting to a receiver that answers
    /// at once; from the burst's start until every registration was delivered.
    async fn delivery_throughput(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let fast = crate::receiver::Receiver::start(Duration::ZERO).await?;
        let organizer = ctx.users[0].bearer.clone();
        let started = std::time::Instant::now();
        let (o, _, _, hooks) = self
            .http_burst(
                ctx,
                self.profile.burst_rounds,
                0,
                false,
                Some((&fast.url, 1)),
            )
            .await?;
        let expected = o.requests - o.errors;
        let deadline = started + Duration::from_secs(120);
        while fast.received() < expected && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        let delivered = fast.received();
        if delivered < expected {
            self.failures.push(format!(
                "{}: {delivered} of {expected} webhook deliveries arrived within 120 s",
                ctx.backend.name()
            ));
        }
        for hook in hooks {
            api::delete_webhook(&ctx.client, &ctx.base, &organizer, &hook).await?;
        }
        fast.stop();
        let throughput = crate::report::Deliveries {
            backend: ctx.backend.name().to_owned(),
            deliveries: delivered,
            seconds,
        };
        eprintln!(
            "  webhook deliveries to a fast receiver: {delivered} in {seconds:.2} s = {:.0}/s",
            throughput.per_second()
        );
        self.report.deliveries.push(throughput);
        Ok(())
    }

    /// Restarts the server with production argon2 parameters and measures logins alone.
    async fn login(&mut self, ctx: &Ctx, url: &str) -> anyhow::Result<()> {
        let bin = self.args.server_bin.clone();
        let server = Server::start(
            &bin,
            url,
            Hashing::Default,
            &self.log(ctx.backend),
            &self.args.server_env,
        )
        .await?;
        self.watch(ctx.backend, &server);
        let result = async {
            let (client, base) = (ctx.client.clone(), server.base.clone());
            let users = load::par_map(self.profile.login_users, 2, move |i| {
                let (client, base) = (client.clone(), base.clone());
                async move { api::user(&client, &base, format!("login-{i}@example.com")).await }
            })
            .await?;
            let bodies: Arc<Vec<Bytes>> = Arc::new(
                users
                    .iter()
                    .map(|u| api::login_body(&u.email, &u.password).to_string().into())
                    .collect(),
            );
            let make: Arc<load::MakeRequest> = Arc::new(move |seq, _| {
                load::request(
                    Method::POST,
                    "/api/v1/auth/token",
                    None,
                    Some(bodies[seq % bodies.len()].clone()),
                )
            });
            let conc = self.args.login_concurrency;
            let c0 = self.cpu();
            let addr = server::addr_of(&server.base)?;
            let http = self
                .timed(addr, conc, make, Arc::new(|s, _| s == 200))
                .await;
            let c1 = self.cpu();
            let db = self.baseline(ctx, "login", conc, None, self.pg_length())?;
            let c2 = self.cpu();
            self.record(
                ctx,
                "login (argon2id 19 MiB, t=2)",
                conc,
                http,
                c1 - c0,
                db,
                c2 - c1,
            );
            Ok::<(), anyhow::Error>(())
        }
        .await;
        server.stop();
        result
    }

    /// Start-to-ready trials and memory, with production settings.
    async fn process(&mut self, ctx: &Ctx, url: &str) -> anyhow::Result<()> {
        let bin = self.args.server_bin.clone();
        let log = self
            .out
            .join(format!("server-{}-process.log", ctx.backend.name()));
        let mut p = Process {
            backend: ctx.backend.name().to_owned(),
            ..Process::default()
        };
        for _ in 0..self.profile.ready_trials {
            let s = Server::start(&bin, url, Hashing::Default, &log, &self.args.server_env).await?;
            p.ready_existing_ms
                .push(s.ready_after.as_secs_f64() * 1000.0);
            s.stop();
        }
        for _ in 0..self.profile.ready_trials {
            let fresh = match ctx.backend {
                Backend::Postgres => {
                    self.pg.recreate_db(PG_FRESH_DB)?;
                    self.pg.url(PG_FRESH_DB)
                }
                Backend::Sqlite => {
                    let f = self.out.join("em-bench-fresh.sqlite");
                    remove_sqlite(&f);
                    format!("sqlite://{}?mode=rwc", f.display())
                }
            };
            let s =
                Server::start(&bin, &fresh, Hashing::Default, &log, &self.args.server_env).await?;
            p.ready_fresh_ms.push(s.ready_after.as_secs_f64() * 1000.0);
            s.stop();
        }
        let s = Server::start(&bin, url, Hashing::Default, &log, &self.args.server_env).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        (p.idle_rss_kib, p.idle_hwm_kib) = server::memory_kib(s.pid())?;
        let n = self.profile.idle_connections;
        let conns = server::open_idle_connections(server::port_of(&s.base)?, n).await;
        let conns = match conns {
            Ok(c) => c,
            Err(e) => {
                s.stop();
                bail!("opening {n} connections: {e:#} (raise ulimit -n)");
            }
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        (p.conns_rss_kib, p.conns_hwm_kib) = server::memory_kib(s.pid())?;
        p.connections = conns.len();
        drop(conns);
        let n = self.profile.idle_streams;
        if n > 0 {
            let event = ctx.events.first().context("no seeded event")?;
            let client = streams::client()?;
            match Streams::open(&client, &s.base, event, n, 0).await {
                Ok(open) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    (p.streams_rss_kib, p.streams_hwm_kib) = server::memory_kib(s.pid())?;
                    p.streams = n;
                    open.close();
                }
                Err(e) => {
                    s.stop();
                    bail!("opening {n} streams: {e:#} (raise ulimit -n)");
                }
            }
        }
        s.stop();
        if n > 0 {
            // The same streams multiplexed over HTTP/2 connections, on a fresh server (freed
            // memory is not given back, so the first measurement would show through).
            let s = Server::start(&bin, url, Hashing::Default, &log, &self.args.server_env).await?;
            let event = ctx.events.first().context("no seeded event")?;
            let client = streams::client_h2()?;
            match Streams::open(&client, &s.base, event, n, 0).await {
                Ok(open) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    (p.streams_h2_rss_kib, p.streams_h2_hwm_kib) = server::memory_kib(s.pid())?;
                    open.close();
                }
                Err(e) => {
                    s.stop();
                    bail!("opening {n} streams over HTTP/2: {e:#}");
                }
            }
            s.stop();
        }
        eprintln!(
            "  ready {:?} ms (migrated), {:?} ms (empty); RSS idle {} KiB (peak {}), with {} connections {} KiB (peak {}), with {} streams {} KiB, over HTTP/2 {} KiB",
            p.ready_existing_ms,
            p.ready_fresh_ms,
            p.idle_rss_kib,
            p.idle_hwm_kib,
            p.connections,
            p.conns_rss_kib,
            p.conns_hwm_kib,
            p.streams,
            p.streams_rss_kib,
            p.streams_h2_rss_kib
        );
        self.report.process.push(p);
        Ok(())
    }

    // --- data ---------------------------------------------------------------------------

    /// Tops the event table up to `big_events` with copies of the seeded events (SQL: the
    /// API would take minutes); returns the new count.
    fn top_up(&self, ctx: &Ctx) -> anyhow::Result<usize> {
        let target = self.profile.big_events;
        let current: usize = match ctx.backend {
            Backend::Postgres => self.pg.sql(&ctx.db, "SELECT count(*) FROM events")?,
            Backend::Sqlite => sqlite(&self.args.sqlite3, &ctx.db, "SELECT count(*) FROM events;")?,
        }
        .parse()?;
        let need = target.saturating_sub(current);
        let copies = need.div_ceil(ctx.events.len()).max(1);
        eprintln!("topping events up from {current} to {target} with SQL");
        let cols = "title, description, location, starts_at, ends_at, capacity, \
                    waitlist_enabled, status, organizer_id, confirmed_count, waitlist_count, \
                    created_at, updated_at, version";
        let like = format!("'{SEED_TITLE} %'");
        match ctx.backend {
            Backend::Postgres => {
                self.pg.sql(
                    &ctx.db,
                    &format!(
                        "INSERT INTO events (id, {cols}) \
                         SELECT gen_random_uuid(), {cols} FROM events \
                         CROSS JOIN generate_series(1, {copies}) \
                         WHERE title LIKE {like} LIMIT {need}"
                    ),
                )?;
                self.pg.sql(&ctx.db, "VACUUM ANALYZE events")?;
            }
            Backend::Sqlite => {
                sqlite(
                    &self.args.sqlite3,
                    &ctx.db,
                    &format!(
                        "PRAGMA busy_timeout = 10000; \
                         WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {copies}) \
                         INSERT INTO events (id, {cols}) \
                         SELECT {id}, {cols} FROM events, g \
                         WHERE title LIKE {like} LIMIT {need}; ANALYZE;",
                        id = SQLITE_NEW_UUID
                    ),
                )?;
            }
        }
        Ok(current + need)
    }

    /// Statistics and the CSV export of an event with `report_attendees` attendees (seeded
    /// with SQL), an import of `import_rows` rows, and GET one event with and without the
    /// metrics layer.
    async fn ops(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let organizer = ctx.users[0].clone();
        let body = api::event_body("Report event", 0, None, false);
        let event = api::create_event(&ctx.client, &ctx.base, &organizer.bearer, &body).await?;
        let n = self.profile.report_attendees;
        eprintln!("seeding {n} attendees with SQL");
        self.seed_attendees(ctx, &event, n)?;

        let (bearer, path) = (
            organizer.bearer.clone(),
            format!("/api/v1/events/{event}/stats"),
        );
        let make: Arc<load::MakeRequest> =
            Arc::new(move |_, _| load::request(Method::GET, &path, Some(&bearer), None));
        let c0 = self.cpu();
        let http = self
            .timed(ctx.addr, 1, make, Arc::new(|s, _| s == 200))
            .await;
        let c1 = self.cpu();
        let stats_p50_ms = Latency::from(&http.hist).p50_ms;
        self.record(
            ctx,
            &format!("stats ({} attendees)", thousands(n)),
            1,
            http,
            c1 - c0,
            None,
            CpuSnapshot::default(),
        );

        let (export_rows, export_seconds, export_rss_growth_kib) =
            self.export(ctx, &event, &organizer.bearer).await?;
        anyhow::ensure!(
            export_rows == n,
            "the export had {export_rows} rows for {n} attendees"
        );
        eprintln!(
            "  CSV export: {export_rows} rows in {export_seconds:.2} s ({:.0} rows/s), server RSS +{:.1} MiB",
            export_rows as f64 / export_seconds,
            export_rss_growth_kib as f64 / 1024.0
        );
        let (import_rows, import_seconds) = self.import(ctx, &organizer.bearer).await?;
        eprintln!(
            "  CSV import: {import_rows} rows in {import_seconds:.2} s ({:.0} rows/s)",
            import_rows as f64 / import_seconds
        );
        self.report.ops.push(Ops {
            backend: ctx.backend.name().to_owned(),
            attendees: n,
            stats_p50_ms,
            export_rows,
            export_rows_per_s: export_rows as f64 / export_seconds.max(f64::EPSILON),
            export_rss_growth_kib,
            import_rows,
            import_rows_per_s: import_rows as f64 / import_seconds.max(f64::EPSILON),
        });
        self.metrics_overhead(ctx).await
    }

    /// Inserts `n` users registered for `event` (a quarter checked in, a tenth cancelled),
    /// registrations spread over two days.
    fn seed_attendees(&self, ctx: &Ctx, event: &str, n: usize) -> anyhow::Result<()> {
        let status = |col: &str| {
            format!(
                "CASE WHEN {col} % 4 = 0 THEN 'checked_in' WHEN {col} % 10 = 1 THEN 'cancelled' \
                 ELSE 'confirmed' END"
            )
        };
        let users = "id, email, email_normalized, full_name, password_hash, role, created_at, \
                     updated_at, version";
        let attendees = "id, event_id, user_id, status, waitlist_position, registered_at, \
                         updated_at, version, checked_in_at";
        match ctx.backend {
            Backend::Postgres => {
                for stmt in [
                    format!(
                        "INSERT INTO users ({users}) SELECT gen_random_uuid(), 'att-' || g || '@example.com', \
                         'att-' || g || '@example.com', 'Attendee ' || g, 'x', 'member', now(), now(), 1 \
                         FROM generate_series(1, {n}) g"
                    ),
                    format!(
                        "INSERT INTO attendees ({attendees}) SELECT gen_random_uuid(), '{event}'::uuid, u.id, {}, \
                         NULL, now() - (u.n % 172800) * interval '1 second', now(), 1, \
                         CASE WHEN u.n % 4 = 0 THEN now() - (u.n % 7200) * interval '1 second' END \
                         FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users \
                               WHERE email_normalized LIKE 'att-%') u",
                        status("u.n")
                    ),
                    "VACUUM ANALYZE users".to_owned(),
                    "VACUUM ANALYZE attendees".to_owned(),
                ] {
                    self.pg.sql(&ctx.db, &stmt)?;
                }
            }
            Backend::Sqlite => {
                let hex: String = event.chars().filter(|c| *c != '-').collect();
                let at = |offset: &str| {
                    format!(
                        "strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now', '-' || ({offset}) || ' seconds')"
                    )
                };
                sqlite(
                    &self.args.sqlite3,
                    &ctx.db,
                    &format!(
                        "PRAGMA busy_timeout = 10000; \
                         WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n}) \
                         INSERT INTO users ({users}) SELECT {SQLITE_NEW_UUID}, 'att-' || n || '@example.com', \
                         'att-' || n || '@example.com', 'Attendee ' || n, 'x', 'member', {now}, {now}, 1 FROM g; \
                         INSERT INTO attendees ({attendees}) SELECT {SQLITE_NEW_UUID}, X'{hex}', u.id, {status}, \
                         NULL, {registered}, {now}, 1, CASE WHEN u.n % 4 = 0 THEN {checked} END \
                         FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users \
                               WHERE email_normalized LIKE 'att-%') u; ANALYZE;",
                        now = at("0"),
                        status = status("u.n"),
                        registered = at("u.n % 172800"),
                        checked = at("u.n % 7200"),
                    ),
                )?;
            }
        }
        Ok(())
    }

    /// Downloads the event's attendees as CSV; returns the rows, the seconds it took and the
    /// growth of the server's resident memory during it (largest sample minus before).
    async fn export(
        &self,
        ctx: &Ctx,
        event: &str,
        bearer: &str,
    ) -> anyhow::Result<(usize, f64, u64)> {
        let pid = ctx.pid;
        let before = server::memory_kib(pid)?.0;
        let peak = Arc::new(AtomicU64::new(before));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = tokio::spawn({
            let (peak, done) = (peak.clone(), done.clone());
            async move {
                while !done.load(Ordering::Relaxed) {
                    if let Ok((rss, _)) = server::memory_kib(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        let started = std::time::Instant::now();
        let mut resp = ctx
            .client
            .get(format!("{}/api/v1/events/{event}/attendees", ctx.base))
            .header("authorization", bearer)
            .header("accept", "text/csv")
            .timeout(Duration::from_secs(600))
            .send()
            .await?;
        anyhow::ensure!(resp.status() == 200, "export answered {}", resp.status());
        let mut lines = 0usize;
        while let Some(chunk) = resp.chunk().await? {
            lines += chunk.iter().filter(|b| **b == b'\n').count();
        }
        let seconds = started.elapsed().as_secs_f64();
        done.store(true, Ordering::Relaxed);
        let _ = sampler.await;
        let growth = peak.load(Ordering::Relaxed).saturating_sub(before);
        Ok((lines.saturating_sub(1), seconds, growth))
    }

    /// Imports `import_rows` events from one CSV and waits for the job; returns the rows and
    /// the seconds from upload to completion.
    async fn import(&self, ctx: &Ctx, bearer: &str) -> anyhow::Result<(usize, f64)> {
        let n = self.profile.import_rows;
        let mut csv = String::from(
            "title,description,location,starts_at,ends_at,capacity,waitlist_enabled,status,visibility\n",
        );
        for i in 0..n {
            csv.push_str(&format!(
                "Imported event {i},An event imported by em-bench.,Hall {},2030-03-01T18:00:00Z,\
                 2030-03-01T21:00:00Z,{},false,published,public\n",
                i % 50,
                1 + i % 500
            ));
        }
        let started = std::time::Instant::now();
        let queued = ctx
            .client
            .post(format!("{}/api/v1/imports", ctx.base))
            .header("authorization", bearer)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await?;
        anyhow::ensure!(
            queued.status() == 202,
            "import answered {}",
            queued.status()
        );
        let location = queued
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .context("an import without Location")?
            .to_owned();
        loop {
            let body = ctx
                .client
                .get(format!("{}{location}", ctx.base))
                .header("authorization", bearer)
                .send()
                .await?
                .bytes()
                .await?;
            let job: serde_json::Value = serde_json::from_slice(&body)?;
            match job["status"].as_str() {
                Some("completed") => {
                    anyhow::ensure!(job["rows_imported"] == serde_json::json!(n), "{job}");
                    return Ok((n, started.elapsed().as_secs_f64()));
                }
                Some("failed") => bail!("the import failed: {job}"),
                _ => {}
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(600),
                "the import did not finish in 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// GET one event on two fresh servers over the same database, one started with
    /// `METRICS_ENABLED=false`: measured off, on, off, on, and the better run of each kept,
    /// so that neither the order nor a passing autovacuum decides the comparison.
    async fn metrics_overhead(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let mut servers = Vec::new();
        for (enabled, label) in [("false", "off"), ("true", "on")] {
            let mut env = self.args.server_env.clone();
            env.push(("METRICS_ENABLED".to_owned(), enabled.to_owned()));
            let server = Server::start(
                &self.args.server_bin,
                &ctx.url,
                Hashing::Cheap,
                &self
                    .out
                    .join(format!("server-{}-metrics-{label}.log", ctx.backend.name())),
                &env,
            )
            .await?;
            servers.push(server);
        }
        let (users, events) = (ctx.users.clone(), ctx.events.clone());
        let make: Arc<load::MakeRequest> = Arc::new(move |_, rng| {
            let u = &users[rng.random_range(0..users.len())];
            let e = &events[rng.random_range(0..events.len())];
            load::request(
                Method::GET,
                &format!("/api/v1/events/{e}"),
                Some(&u.bearer),
                None,
            )
        });
        let mut best: [Option<Outcome>; 2] = [None, None];
        for _round in 0..2 {
            for (i, server) in servers.iter().enumerate() {
                let addr = server::addr_of(&server.base)?;
                let http = self
                    .timed(addr, self.conc(), make.clone(), Arc::new(|s, _| s == 200))
                    .await;
                if best[i].as_ref().is_none_or(|b| http.rps() > b.rps()) {
                    best[i] = Some(http);
                }
            }
        }
        for server in servers {
            server.stop();
        }
        let [off, on] = best;
        for (scenario, http) in [(GET_METRICS_OFF, off), (GET_METRICS_ON, on)] {
            if let Some(http) = http {
                self.record(
                    ctx,
                    scenario,
                    self.conc(),
                    http,
                    CpuSnapshot::default(),
                    None,
                    CpuSnapshot::default(),
                );
            }
        }
        Ok(())
    }

    /// PostgreSQL only: users for pgbench, and the chains its scripts walk (see
    /// `bench/pgbench/README.md`).
    fn pgbench_data(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let p = self.profile.pgbench_users;
        let e = ctx.events.len();
        let login = self.args.login_concurrency * 4;
        let sql = format!(
            "CREATE TABLE bench_heads (run text, client int, u text, e text, PRIMARY KEY (run, client));
             INSERT INTO users (id, email, email_normalized, full_name, password_hash, role, created_at, updated_at, version)
               SELECT gen_random_uuid(), 'pgb-' || g || '@example.com', 'pgb-' || g || '@example.com', 'x',
                      (SELECT password_hash FROM users LIMIT 1), 'member', now(), now(), 1
               FROM generate_series(1, {p}) g;
             INSERT INTO users (id, email, email_normalized, full_name, password_hash, role, created_at, updated_at, version)
               SELECT gen_random_uuid(), 'pgl-' || g || '@example.com', 'pgl-' || g || '@example.com', 'x',
                      (SELECT password_hash FROM users LIMIT 1), 'member', now(), now(), 1
               FROM generate_series(1, {login}) g;
             CREATE TABLE bench_user_pool AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, id::text AS v
               FROM users WHERE email_normalized LIKE 'pgb-%';
             CREATE TABLE bench_login_pool AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, email_normalized AS v
               FROM users WHERE email_normalized LIKE 'pgl-%';
             CREATE TABLE bench_event_pool AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, id::text AS v
               FROM events WHERE title LIKE '{SEED_TITLE} %';
             UPDATE users u SET full_name = nx.v FROM bench_user_pool cur JOIN bench_user_pool nx ON nx.n = (cur.n + 1) % {p}
               WHERE u.id = cur.v::uuid;
             UPDATE users u SET full_name = nx.v FROM bench_login_pool cur JOIN bench_login_pool nx ON nx.n = (cur.n + 1) % {login}
               WHERE u.email_normalized = cur.v;
             UPDATE events ev SET location = nx.v FROM bench_event_pool cur JOIN bench_event_pool nx ON nx.n = (cur.n + 1) % {e}
               WHERE ev.id = cur.v::uuid;
             VACUUM ANALYZE;"
        );
        for stmt in sql.split(";\n") {
            self.pg.sql(&ctx.db, stmt)?;
        }
        Ok(())
    }

    /// Fills `bench_heads` for one pgbench run: client `k` starts its user chain at
    /// position `k * user_stride` and its event chain at `k * events / clients` (or at
    /// `event`).
    fn heads(
        &self,
        ctx: &Ctx,
        run: &str,
        clients: usize,
        user_stride: Option<usize>,
        event: Option<&str>,
    ) -> anyhow::Result<()> {
        let (pool, size) = if run == "login" {
            ("bench_login_pool", self.args.login_concurrency * 4)
        } else {
            ("bench_user_pool", self.profile.pgbench_users)
        };
        let stride = user_stride.unwrap_or(size / clients).max(1);
        let e = ctx.events.len();
        let event = match event {
            Some(id) => format!("'{id}'"),
            None => format!(
                "(SELECT v FROM bench_event_pool WHERE n = (k * {}) % {e})",
                (e / clients).max(1)
            ),
        };
        self.pg.sql(
            &ctx.db,
            &format!(
                "DELETE FROM bench_heads WHERE run = '{run}';
                 INSERT INTO bench_heads (run, client, u, e)
                 SELECT '{run}', k, (SELECT v FROM {pool} WHERE n = (k * {stride}) % {size}), {event}
                 FROM generate_series(0, {clients} - 1) k"
            ),
        )?;
        Ok(())
    }

    /// Runs the pgbench script `name` (PostgreSQL only).
    fn baseline(
        &self,
        ctx: &Ctx,
        name: &str,
        clients: usize,
        chain: Option<(usize, Option<String>)>,
        length: Length,
    ) -> anyhow::Result<Option<PgbenchOutcome>> {
        if ctx.backend != Backend::Postgres {
            return Ok(None);
        }
        let (stride, event) = match &chain {
            Some((stride, event)) => (Some(*stride), event.as_deref()),
            None => (None, None),
        };
        self.heads(ctx, name, clients, stride, event)?;
        let now = chrono::Utc::now().to_rfc3339();
        let start = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
        let end = (chrono::Utc::now() + chrono::Duration::days(30) + chrono::Duration::hours(2))
            .to_rfc3339();
        let vars = [
            ("run", name.to_owned()),
            ("started", "0".to_owned()),
            ("one", "1".to_owned()),
            ("page", "20".to_owned()),
            ("zero", "0".to_owned()),
            ("now", now),
            ("starts", start),
            ("ends", end),
            ("draft", "draft".to_owned()),
            ("published", "published".to_owned()),
            ("public", "public".to_owned()),
            ("private", "private".to_owned()),
            ("cancelled", "cancelled".to_owned()),
            ("confirmed", "confirmed".to_owned()),
            ("waitlisted", "waitlisted".to_owned()),
            ("yes", "true".to_owned()),
            ("no", "false".to_owned()),
            ("title", "Created event pgbench".to_owned()),
            (
                "description",
                "An event seeded by em-bench, with a description of ordinary length.".to_owned(),
            ),
            ("location", "Hall 7".to_owned()),
            ("capacity", "100".to_owned()),
            // What the change feed stores with a change: the resource as JSON, of the size the
            // server writes (a variable, since pgbench reads `:name` inside literals too).
            ("event_json", CHANGE_EVENT_JSON.to_owned()),
            ("event_created", "event.created".to_owned()),
            ("attendee_registered", "attendee.registered".to_owned()),
            ("attendee_json", CHANGE_ATTENDEE_JSON.to_owned()),
        ];
        let out = pg::pgbench(
            &self.pg,
            &ctx.db,
            &self.script(name),
            clients,
            length,
            &vars,
            &self.out,
        )?;
        Ok(Some(out))
    }

    /// Turns statement logging on, sends one request of each scenario, and checks the
    /// pgbench scripts against what the server sent.
    async fn capture(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let (c, base) = (&ctx.client, ctx.base.as_str());
        let (u0, u1) = (&ctx.users[0], &ctx.users[1]);
        let body = api::event_body("Capture event", 0, Some(1), true);
        let event = api::create_event(c, base, &u0.bearer, &body).await?;
        let from = self.pg.log_len()?;
        self.pg.statement_logging(true)?;
        let result = async {
            self.pg.mark(&ctx.db, "get")?;
            expect(
                c.get(format!("{base}/api/v1/events/{}", ctx.events[0]))
                    .header("authorization", &u0.bearer),
                200,
            )
            .await?;
            self.pg.mark(&ctx.db, "list")?;
            expect(
                c.get(format!("{base}/api/v1/events?limit=20"))
                    .header("authorization", &u0.bearer),
                200,
            )
            .await?;
            self.pg.mark(&ctx.db, "create")?;
            let body = api::event_body("Created event", 0, Some(100), false);
            api::create_event(c, base, &u0.bearer, &body).await?;
            self.pg.mark(&ctx.db, "register-seat")?;
            let s = api::register(c, base, &u0.bearer, &event).await?;
            anyhow::ensure!(s == "confirmed", "first registration was {s}");
            self.pg.mark(&ctx.db, "register-waitlist")?;
            let s = api::register(c, base, &u1.bearer, &event).await?;
            anyhow::ensure!(s == "waitlisted", "second registration was {s}");
            self.pg.mark(&ctx.db, "login")?;
            api::login(c, base, &u0.email, &u0.password).await?;
            self.pg.mark(&ctx.db, "end")?;
            Ok::<(), anyhow::Error>(())
        }
        .await;
        self.pg.statement_logging(false)?;
        result?;
        let groups = pg::captured_since(&self.pg, from)?;
        let mut text = String::from(
            "-- SQL the server sent for one request of each scenario, captured with log_statement = all\n",
        );
        for (name, stmts) in &groups {
            if name == "end" {
                continue;
            }
            text.push_str(&format!("\n-- {name}\n"));
            for (s, params) in stmts {
                text.push_str(s);
                text.push_str(";\n");
                if let Some(p) = params {
                    text.push_str(&format!("--   parameters: {p}\n"));
                }
            }
        }
        std::fs::write(self.out.join("captured.sql"), &text)?;
        let group = |n: &str| -> Vec<String> {
            groups
                .iter()
                .find(|(g, _)| g == n)
                .map(|(_, s)| s.iter().map(|(stmt, _)| stmt.clone()).collect())
                .unwrap_or_default()
        };
        let seat = group("register-seat");
        let both: Vec<String> = seat
            .iter()
            .chain(group("register-waitlist").iter())
            .cloned()
            .collect();
        for (script, captured) in [
            ("get", group("get")),
            ("list", group("list")),
            ("create", group("create")),
            ("spread", seat),
            ("burst", both),
            ("login", group("login")),
        ] {
            let text = std::fs::read_to_string(self.script(script))
                .with_context(|| format!("reading {}", self.script(script).display()))?;
            let diffs = pg::compare(&captured, &pg::script_statements(&text));
            if diffs.is_empty() {
                eprintln!("  SQL of {script}: the pgbench script matches the captured statements");
            } else {
                let msg = format!(
                    "bench/pgbench/{script}.sql no longer replays what the server sends (see {}):\n    {}",
                    self.out.join("captured.sql").display(),
                    diffs.join("\n    ")
                );
                if self.args.smoke {
                    eprintln!("WARNING: {msg}");
                } else {
                    self.failures.push(msg);
                }
            }
            self.report.sql_checks.push((script.to_owned(), diffs));
        }
        Ok(())
    }
}

async fn expect(req: reqwest::RequestBuilder, status: u16) -> anyhow::Result<()> {
    let got = req.send().await?.status().as_u16();
    anyhow::ensure!(got == status, "expected {status}, got {got}");
    Ok(())
}

/// A new id in SQLite: the server stores UUIDs as 16-byte blobs there.
const SQLITE_NEW_UUID: &str = "randomblob(16)";

fn sqlite(bin: &str, file: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args(["-batch", "-bail", file, sql])
        .output()
        .with_context(|| format!("running {bin} (install the sqlite3 command-line tool)"))?;
    if !out.status.success() {
        bail!(
            "sqlite3 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn remove_sqlite(file: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = file.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPUs, CPU model and memory of the machine.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    format!(
        "machine: {cpus} CPUs ({model}), {:.1} GiB memory",
        mem_kib as f64 / 1048576.0
    )
}

fn thousands(n: usize) -> String {
    if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}
