//! `em-bench`: the benchmark harness of event-manager.
//!
//! For each backend it starts the release server on a fresh database, seeds users and events
//! through the API, drives HTTP load from this process over loopback, replays the same SQL
//! with pgbench on PostgreSQL, measures memory and start-up time, and prints one table.
//! `scripts/bench.sh` builds everything and provides the throwaway PostgreSQL cluster.

mod api;
mod load;
mod pg;
mod receiver;
mod report;
mod server;
mod streams;
mod suite;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, ValueEnum};

/// A database backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// PostgreSQL (the production backend), with pgbench baselines.
    Postgres,
    /// SQLite (the embedded default).
    Sqlite,
}

impl Backend {
    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// A part of the run, for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    /// The HTTP floor: an answer without SQL.
    Floor,
    /// GET one event.
    Get,
    /// List events at 1k.
    List,
    /// Registrations spread over the events.
    Spread,
    /// Registration bursts on one event.
    Burst,
    /// Create event.
    Create,
    /// GET and list as a registered user of private events.
    Private,
    /// Batch check-in of 1,000 scans.
    CheckIn,
    /// List events at 100k (tops the table up).
    ListBig,
    /// Login with production-cost hashes.
    Login,
    /// Memory and start-up time.
    Process,
    /// Statistics, CSV export, CSV import, and GET one event with metrics off.
    Ops,
}

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "em-bench", about = "Benchmark harness of event-manager")]
pub struct Args {
    /// The release binary of the server.
    #[arg(long, default_value = "target/release/event-manager")]
    pub server_bin: PathBuf,
    /// Backends to measure, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "postgres,sqlite"
    )]
    pub backends: Vec<Backend>,
    /// Host of the throwaway PostgreSQL cluster.
    #[arg(long, default_value = "127.0.0.1")]
    pub pg_host: String,
    /// Port of the throwaway PostgreSQL cluster.
    #[arg(long, default_value_t = 55432)]
    pub pg_port: u16,
    /// Superuser of the cluster (trust authentication).
    #[arg(long, default_value = "postgres")]
    pub pg_user: String,
    /// The cluster's log file, where `log_statement = all` writes.
    #[arg(long)]
    pub pg_log: Option<PathBuf>,
    /// `psql` binary.
    #[arg(long, default_value = "psql")]
    pub psql: String,
    /// `pgbench` binary.
    #[arg(long, default_value = "pgbench")]
    pub pgbench: String,
    /// `sqlite3` binary (bulk-loads the large event table on SQLite).
    #[arg(long, default_value = "sqlite3")]
    pub sqlite3: String,
    /// Directory of the pgbench scripts.
    #[arg(long, default_value = "bench/pgbench")]
    pub scripts: PathBuf,
    /// Directory for results, logs and databases.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
    /// Seconds-long run with small data: same code paths, fails on any error.
    #[arg(long)]
    pub smoke: bool,
    /// Concurrent requests (and pgbench clients) of every scenario but login.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Concurrent logins (argon2 is CPU-bound: more than the cores only queues).
    #[arg(long, default_value_t = 4)]
    pub login_concurrency: usize,
    /// Seconds each timed scenario runs (HTTP and pgbench alike); 5 unless --smoke.
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Run only these parts (all when absent), e.g. `--only get,list-big` while working on
    /// one scenario. The SQL capture still runs on PostgreSQL.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Part>,
    /// Extra environment of the server, e.g. `--server-env RUST_LOG=warn` (repeatable).
    #[arg(long, value_parser = key_value)]
    pub server_env: Vec<(String, String)>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// Sizes of one run.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Users seeded through the API (each with a token).
    pub users: usize,
    /// Events seeded through the API: the "1k events" table.
    pub events: usize,
    /// Events for the large list (topped up with SQL).
    pub big_events: usize,
    /// Users inserted with SQL for pgbench (never log in).
    pub pgbench_users: usize,
    /// How long timed scenarios run; `None`: `timed_transactions` per pgbench client.
    pub seconds: Option<u64>,
    /// In smoke runs: HTTP duration and pgbench transactions per client.
    pub smoke_http: Duration,
    /// pgbench transactions per client in smoke runs.
    pub timed_transactions: usize,
    /// Warm-up before each timed HTTP scenario.
    pub warmup: Duration,
    /// Registrations spread over the events.
    pub spread_requests: usize,
    /// Bursts (each on a fresh event).
    pub burst_rounds: usize,
    /// Distinct users per burst.
    pub burst_users: usize,
    /// Capacity of a burst event.
    pub burst_capacity: i64,
    /// Users with production-cost hashes for the login scenario.
    pub login_users: usize,
    /// Start-to-ready trials per kind of start.
    pub ready_trials: usize,
    /// Idle keep-alive connections held for the memory measurement.
    pub idle_connections: usize,
    /// Live streams following the event of a streamed burst.
    pub burst_streams: usize,
    /// Idle live streams held for the memory measurement.
    pub idle_streams: usize,
    /// Attendees of the event whose statistics and export are measured.
    pub report_attendees: usize,
    /// Rows of the measured import.
    pub import_rows: usize,
}

impl Profile {
    fn full(seconds: u64) -> Self {
        Self {
            users: 1000,
            events: 1000,
            big_events: 100_000,
            pgbench_users: 5000,
            seconds: Some(seconds),
            smoke_http: Duration::ZERO,
            timed_transactions: 0,
            warmup: Duration::from_secs(1),
            spread_requests: 4000,
            burst_rounds: 5,
            burst_users: 1000,
            burst_capacity: 100,
            login_users: 8,
            ready_trials: 5,
            idle_connections: 1000,
            burst_streams: 1000,
            idle_streams: 10_000,
            report_attendees: 100_000,
            import_rows: 10_000,
        }
    }

    fn smoke() -> Self {
        Self {
            users: 40,
            events: 50,
            big_events: 1000,
            pgbench_users: 200,
            seconds: None,
            smoke_http: Duration::from_millis(300),
            timed_transactions: 10,
            warmup: Duration::from_millis(100),
            spread_requests: 80,
            burst_rounds: 1,
            burst_users: 40,
            burst_capacity: 10,
            login_users: 2,
            ready_trials: 1,
            idle_connections: 50,
            burst_streams: 20,
            idle_streams: 50,
            report_attendees: 2_500,
            import_rows: 200,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let profile = if args.smoke {
        Profile::smoke()
    } else {
        Profile::full(args.seconds.unwrap_or(5))
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("em-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(suite::run(args, profile)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("em-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
