//! Command line and environment configuration.
//!
//! Every option is a flag and an environment variable, so the same binary runs from a shell,
//! a container or a test harness without a config file.

use clap::{ArgMatches, Args, CommandFactory, Parser, Subcommand, ValueEnum, parser::ValueSource};

/// The smallest HS256 secret accepted: shorter keys are brute-forceable.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Command line of the `event-manager` binary.
#[derive(Debug, Parser)]
#[command(
    name = "event-manager",
    version,
    about = "REST backend for events, users and attendees"
)]
pub struct Cli {
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub config: Config,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands of the binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create an administrator, or promote an existing user with that email.
    CreateAdmin(CreateAdmin),
}

/// Arguments of `create-admin`.
#[derive(Debug, Args)]
pub struct CreateAdmin {
    /// Email of the administrator.
    #[arg(long, env = "ADMIN_EMAIL")]
    pub email: String,
    /// Password (8 to 128 characters); ignored when the user already exists.
    #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Full name; ignored when the user already exists.
    #[arg(long, env = "ADMIN_FULL_NAME")]
    pub full_name: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Runtime configuration. `Debug` redacts the JWT secret and the database password.
#[derive(Clone, Args)]
pub struct Config {
    /// Database URL: `postgres://...` or `sqlite://path?mode=rwc`.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = "sqlite://event-manager.db?mode=rwc"
    )]
    pub database_url: String,

    /// Address the HTTP server listens on: `host:port`, the host an IP address or a name
    /// (`localhost:8000`), resolved at start-up.
    #[arg(
        long,
        global = true,
        env = "BIND_ADDR",
        default_value = "127.0.0.1:8000"
    )]
    pub bind_addr: String,

    /// HS256 signing secret (at least 32 bytes). Unset: a random per-process secret.
    #[arg(long, global = true, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Lifetime of access tokens, in seconds.
    #[arg(long, global = true, env = "TOKEN_TTL_SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub token_ttl_seconds: u64,

    /// Maximum number of pooled database connections (default: twice the CPUs, at least 4).
    #[arg(long, global = true, env = "DB_MAX_CONNECTIONS", default_value_t = default_pool_size(),
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_max_connections: u32,

    /// Milliseconds to wait for a database connection (pool or new) before answering 503.
    #[arg(long, global = true, env = "DB_ACQUIRE_TIMEOUT_MS", default_value_t = 1500,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub db_acquire_timeout_ms: u64,

    /// Longest a single SQL statement may run on PostgreSQL, in milliseconds (503 after).
    #[arg(long, global = true, env = "DB_STATEMENT_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub db_statement_timeout_ms: u64,

    /// Longest a request may take before the server answers 503, in seconds.
    #[arg(long, global = true, env = "REQUEST_TIMEOUT_SECONDS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub request_timeout_seconds: u64,

    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(long, global = true, env = "SHUTDOWN_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_timeout: u64,

    /// Largest accepted request body, in bytes.
    #[arg(long, global = true, env = "MAX_BODY_BYTES", default_value_t = 65536,
          value_parser = clap::value_parser!(u64).range(1..=67_108_864))]
    pub max_body_bytes: u64,

    /// Origins allowed by CORS, comma separated; empty: no cross-origin access.
    #[arg(long, global = true, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',', num_args = 0..)]
    pub cors_allowed_origins: Vec<String>,

    /// Log format.
    #[arg(long, global = true, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, in `tracing_subscriber::EnvFilter` syntax.
    #[arg(long, global = true, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,

    /// Apply pending migrations when `serve` starts.
    #[arg(long, global = true, env = "AUTO_MIGRATE", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_migrate: bool,

    /// Failed logins a minute allowed for one email from one client before that client gets
    /// 429 for that email.
    #[arg(long, global = true, env = "LOGIN_FAILURES_PER_EMAIL_AND_CLIENT", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub login_failures_per_email_and_client: u32,

    /// Failed logins a minute for one email from all clients together; beyond it, clients
    /// that failed for that email get 429 (clients that did not fail may still sign in).
    #[arg(long, global = true, env = "LOGIN_FAILURES_PER_EMAIL", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub login_failures_per_email: u32,

    /// Failed logins a minute allowed from one client address (all emails) before 429.
    #[arg(long, global = true, env = "LOGIN_FAILURES_PER_CLIENT", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub login_failures_per_client: u32,

    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` headers name the client:
    /// comma-separated CIDRs or addresses. Empty: those headers are ignored.
    #[arg(long, global = true, env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: TrustedProxies,

    /// Lifetime of refresh tokens, in seconds (each use gives a new one with a fresh lifetime).
    #[arg(long, global = true, env = "REFRESH_TOKEN_TTL_SECONDS", default_value_t = 2_592_000,
          value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
    pub refresh_token_ttl_seconds: u64,

    /// Argon2id memory cost in KiB (OWASP's minimum is 19456).
    #[arg(long, global = true, env = "ARGON2_MEMORY_KIB", default_value_t = 19456,
          value_parser = clap::value_parser!(u32).range(8..=4_194_304))]
    pub argon2_memory_kib: u32,

    /// Argon2id iterations.
    #[arg(long, global = true, env = "ARGON2_ITERATIONS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub argon2_iterations: u32,

    /// Days the change feed keeps changes; older `after`/cursors answer 410.
    #[arg(long, global = true, env = "CHANGES_RETENTION_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub changes_retention_days: u32,

    /// Open event streams (Server-Sent Events) this process serves at most; beyond: 503.
    #[arg(long, global = true, env = "MAX_STREAMS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_streams: u32,

    /// Seconds the answer of a write with an `Idempotency-Key` is kept for its retries
    /// (at least a day, as the API promises).
    #[arg(long, global = true, env = "IDEMPOTENCY_TTL_SECONDS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(86_400..=31_536_000))]
    pub idempotency_ttl_seconds: u64,

    /// Key (at least 32 bytes) under which webhook secrets are stored encrypted. Unset: a key
    /// derived from `JWT_SECRET` (a warning at start).
    #[arg(
        long,
        global = true,
        env = "WEBHOOK_SECRET_KEY",
        hide_env_values = true
    )]
    pub webhook_secret_key: Option<String>,

    /// Hours a webhook delivery is retried before it is `failed`.
    #[arg(long, global = true, env = "WEBHOOK_RETRY_HOURS", default_value_t = 24,
          value_parser = clap::value_parser!(u32).range(1..=720))]
    pub webhook_retry_hours: u32,

    /// Allow webhook targets on loopback, private, link-local and other internal addresses.
    #[arg(long, global = true, env = "WEBHOOK_ALLOW_PRIVATE_TARGETS", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub webhook_allow_private_targets: bool,

    /// Milliseconds a webhook receiver has to answer before the attempt counts as failed.
    #[arg(long, global = true, env = "WEBHOOK_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub webhook_timeout_ms: u64,

    /// Webhook deliveries this process sends at once, at most.
    #[arg(long, global = true, env = "WEBHOOK_CONCURRENCY", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub webhook_concurrency: u32,

    /// Milliseconds between two looks for new changes and due webhook deliveries.
    #[arg(long, global = true, env = "WEBHOOK_POLL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub webhook_poll_ms: u64,

    /// Serve `GET /metrics` and count requests for it; `false` leaves the request path
    /// without the metrics layer (and `/metrics` answers 404).
    #[arg(long, global = true, env = "METRICS_ENABLED", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub metrics_enabled: bool,

    /// Bearer token `GET /metrics` requires; unset: the metrics are open to anyone who can
    /// reach the port.
    #[arg(long, global = true, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Largest accepted CSV upload to `POST /api/v1/imports`, in bytes (`MAX_BODY_BYTES` does
    /// not apply to it).
    #[arg(long, global = true, env = "MAX_IMPORT_BYTES", default_value_t = 10_485_760,
          value_parser = clap::value_parser!(u64).range(1..=1_073_741_824))]
    pub max_import_bytes: u64,

    /// Seconds an import job's claim lasts; a job whose instance died is taken up again once
    /// its claim has lapsed.
    #[arg(long, global = true, env = "IMPORT_LEASE_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub import_lease_seconds: u64,

    /// Milliseconds between two looks for queued import jobs.
    #[arg(long, global = true, env = "IMPORT_POLL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub import_poll_ms: u64,
}

/// The reverse proxies trusted to name the client (`TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

impl std::ops::Deref for TrustedProxies {
    type Target = [ipnet::IpNet];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::str::FromStr for TrustedProxies {
    type Err = String;

    /// Comma-separated CIDRs (`10.0.0.0/8`, `fd00::/8`) or single addresses; empty is none.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        value
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        format!("{entry:?} is not a CIDR such as 10.0.0.0/8 or an IP address")
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

/// Default pool size: about twice the cores. A database does its best with a few
/// connections per core; more connections than that only queue inside it, where every waiter
/// costs a process wake-up (and, for one hot row, a re-check of the lock). Measured with
/// `make bench` on 2 cores: 16 connections gave a registration burst 76 % of pgbench's rate,
/// 8 gave 85 %, 4 gave 103 % (docs/performance.md). Set `DB_MAX_CONNECTIONS` to about twice
/// the database server's cores when it runs elsewhere.
fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(cores * 2).unwrap_or(u32::MAX).clamp(4, 64)
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &crate::db::redact_url(&self.database_url))
            .field("bind_addr", &self.bind_addr)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("token_ttl_seconds", &self.token_ttl_seconds)
            .field("db_max_connections", &self.db_max_connections)
            .field("db_acquire_timeout_ms", &self.db_acquire_timeout_ms)
            .field("db_statement_timeout_ms", &self.db_statement_timeout_ms)
            .field("request_timeout_seconds", &self.request_timeout_seconds)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .field("auto_migrate", &self.auto_migrate)
            .field(
                "login_failures_per_email_and_client",
                &self.login_failures_per_email_and_client,
            )
            .field("login_failures_per_email", &self.login_failures_per_email)
            .field("login_failures_per_client", &self.login_failures_per_client)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("refresh_token_ttl_seconds", &self.refresh_token_ttl_seconds)
            .field("argon2_memory_kib", &self.argon2_memory_kib)
            .field("argon2_iterations", &self.argon2_iterations)
            .field("changes_retention_days", &self.changes_retention_days)
            .field("max_streams", &self.max_streams)
            .field("idempotency_ttl_seconds", &self.idempotency_ttl_seconds)
            .field(
                "webhook_secret_key",
                &self.webhook_secret_key.as_ref().map(|_| "[redacted]"),
            )
            .field("webhook_retry_hours", &self.webhook_retry_hours)
            .field(
                "webhook_allow_private_targets",
                &self.webhook_allow_private_targets,
            )
            .field("webhook_timeout_ms", &self.webhook_timeout_ms)
            .field("webhook_concurrency", &self.webhook_concurrency)
            .field("webhook_poll_ms", &self.webhook_poll_ms)
            .field("metrics_enabled", &self.metrics_enabled)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "[redacted]"),
            )
            .field("max_import_bytes", &self.max_import_bytes)
            .field("import_lease_seconds", &self.import_lease_seconds)
            .field("import_poll_ms", &self.import_poll_ms)
            .finish()
    }
}

/// Checks that a configured CORS origin is exactly what a browser sends in `Origin`
/// (`scheme://host[:port]`, lower case, no default port, no path, no trailing slash):
/// origins are compared byte for byte, so anything else would silently never match.
fn check_cors_origin(origin: &str) -> Result<(), String> {
    let example = "write it as scheme://host[:port], such as https://app.example.com";
    let parsed = url::Url::parse(origin).map_err(|_| format!("is not a URL; {example}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("is not an http or https origin; {example}"));
    }
    let serialized = parsed.origin().ascii_serialization();
    if serialized == origin {
        return Ok(());
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "has a path, query or fragment, which browsers never send in Origin; {example}"
        ));
    }
    if origin.ends_with('/') {
        return Err(format!(
            "ends with a slash, which browsers never send in Origin; write {serialized}"
        ));
    }
    Err(format!(
        "is not written as browsers send it in Origin; write {serialized}"
    ))
}

/// A configuration value that parses but cannot be used. Each names the setting as the
/// operator gave it: the environment variable, or the flag (see [`setting_name`]).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The JWT secret is too short to be safe.
    #[error("invalid value for {0}: it must be at least {MIN_JWT_SECRET_BYTES} bytes long")]
    JwtSecretTooShort(String),
    /// A CORS origin that is not exactly what a browser sends in `Origin`.
    #[error("invalid value for {0}: {1:?} {2}")]
    BadCorsOrigin(String, String, String),
    /// A listen address that is not `host:port` or whose host does not resolve.
    #[error("invalid value {1:?} for {0}: {2}")]
    BadBindAddr(String, String, String),
    /// A log filter `tracing` cannot parse.
    #[error("invalid value {1:?} for {0}: {2}")]
    BadLogFilter(String, String, String),
}

/// How messages name a setting: its environment variable when the value came from there,
/// else its flag. `id` is the field name (`jwt_secret`).
pub fn setting_name(matches: &ArgMatches, id: &str) -> String {
    let command = Cli::command();
    let arg = command.get_arguments().find(|a| a.get_id() == id);
    let flag = arg
        .and_then(|a| a.get_long())
        .map_or_else(|| id.replace('_', "-"), |long| format!("--{long}"));
    match (matches.value_source(id), arg.and_then(|a| a.get_env())) {
        (Some(ValueSource::EnvVariable), Some(env)) => env.to_string_lossy().into_owned(),
        _ => flag,
    }
}

/// The first line of a clap error, naming the environment variable when the refused value
/// came from the environment, else the flag (clap names the flag and its value either way).
pub fn describe_parse_error(error: &clap::Error, argv: &[std::ffi::OsString]) -> String {
    let rendered = error.to_string();
    let mut line = rendered
        .lines()
        .next()
        .unwrap_or("error: invalid arguments")
        .to_owned();
    let mut command = Cli::command();
    command.build();
    let args = command
        .get_arguments()
        .chain(command.get_subcommands().flat_map(|c| c.get_arguments()))
        .filter_map(|a| Some((a.get_long()?, a.get_env()?, a.get_value_names())));
    for (long, env, value_names) in args {
        let flag = format!("--{long}");
        let value_name = value_names.and_then(|names| names.first()).map_or_else(
            || long.to_uppercase().replace('-', "_"),
            ToString::to_string,
        );
        let shown = format!("'{flag} <{value_name}>'");
        let on_command_line = argv.iter().any(|a| {
            a.to_str()
                .is_some_and(|a| a == flag || a.starts_with(&format!("{flag}=")))
        });
        if line.contains(&shown) {
            let name = if !on_command_line && std::env::var_os(env).is_some() {
                env.to_string_lossy().into_owned()
            } else {
                flag
            };
            line = line.replace(&shown, &name);
        }
    }
    line
}

impl Config {
    /// Checks the rules clap cannot express; `matches` tells where each value came from, so
    /// that a message names the environment variable or the flag the operator used.
    pub fn validate(&self, matches: &ArgMatches) -> Result<(), ConfigError> {
        let name = |id: &str| setting_name(matches, id);
        if let Some(secret) = &self.jwt_secret
            && secret.len() < MIN_JWT_SECRET_BYTES
        {
            return Err(ConfigError::JwtSecretTooShort(name("jwt_secret")));
        }
        if let Some(key) = &self.webhook_secret_key
            && key.len() < MIN_JWT_SECRET_BYTES
        {
            return Err(ConfigError::JwtSecretTooShort(name("webhook_secret_key")));
        }
        for origin in &self.cors_allowed_origins {
            check_cors_origin(origin).map_err(|why| {
                ConfigError::BadCorsOrigin(name("cors_allowed_origins"), origin.clone(), why)
            })?;
        }
        self.bind_addresses().map_err(|reason| {
            ConfigError::BadBindAddr(name("bind_addr"), self.bind_addr.clone(), reason)
        })?;
        tracing_subscriber::EnvFilter::try_new(&self.log_filter).map_err(|e| {
            ConfigError::BadLogFilter(name("log_filter"), self.log_filter.clone(), e.to_string())
        })?;
        Ok(())
    }

    /// The socket addresses `bind_addr` names: an IP address and port, or a host name and
    /// port resolved by the system (`localhost:8000`).
    pub fn bind_addresses(&self) -> Result<Vec<std::net::SocketAddr>, String> {
        use std::net::ToSocketAddrs;

        let addresses: Vec<_> = self
            .bind_addr
            .to_socket_addrs()
            .map_err(|e| {
                format!("expected host:port such as 127.0.0.1:8000 or localhost:8000 ({e})")
            })?
            .collect();
        if addresses.is_empty() {
            return Err("the host name resolves to no address".into());
        }
        Ok(addresses)
    }

    /// A configuration for tests and embedding: defaults plus the given database URL.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        let mut cli = Cli::parse_from(["event-manager"]);
        cli.config.database_url = database_url.into();
        cli.config
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    fn with_origins(origins: &[&str]) -> Config {
        let mut config = Config::for_database("sqlite::memory:");
        config.cors_allowed_origins = origins.iter().map(|o| (*o).to_owned()).collect();
        config
    }

    #[test]
    fn origins_written_as_browsers_send_them_are_accepted() {
        let config = with_origins(&[
            "https://app.example.com",
            "http://localhost:3000",
            "https://[::1]:8443",
        ]);
        let matches = Cli::command().get_matches_from(["event-manager"]);
        assert!(
            config.validate(&matches).is_ok(),
            "{:?}",
            config.validate(&matches)
        );
    }

    #[test]
    fn an_origin_with_a_trailing_slash_a_path_or_another_spelling_is_a_start_up_error() {
        for origin in [
            "https://app.example.com/",
            "https://app.example.com/app",
            "https://app.example.com?x=1",
            "https://App.Example.com",
            "https://app.example.com:443",
            "https://user@app.example.com",
            "ftp://app.example.com",
            "app.example.com",
            "*",
            "",
        ] {
            let matches = Cli::command().get_matches_from(["event-manager"]);
            let err = with_origins(&[origin])
                .validate(&matches)
                .expect_err(origin)
                .to_string();
            // Named by the flag here: the value did not come from the environment.
            assert!(
                err.starts_with("invalid value for --cors-allowed-origins:"),
                "{err}"
            );
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn trusted_proxies_take_cidrs_and_addresses_and_empty_means_none() {
        let parsed: TrustedProxies = " 10.0.0.0/8 ,192.168.1.5, ::1, fd00::/8 ,".parse().unwrap();
        let expected: Vec<ipnet::IpNet> = ["10.0.0.0/8", "192.168.1.5/32", "::1/128", "fd00::/8"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(parsed.0, expected);
        assert_eq!(
            "".parse::<TrustedProxies>().unwrap(),
            TrustedProxies::default()
        );
        assert!(
            Cli::parse_from(["event-manager"])
                .config
                .trusted_proxies
                .is_empty()
        );
    }

    #[test]
    fn idempotency_keys_are_kept_a_day_by_default_and_never_less() {
        let config = Cli::parse_from(["event-manager"]).config;
        assert_eq!(config.idempotency_ttl_seconds, 86_400);
        let week = Cli::try_parse_from(["event-manager", "--idempotency-ttl-seconds", "604800"])
            .expect("a week is fine");
        assert_eq!(week.config.idempotency_ttl_seconds, 604_800);
        let err = Cli::try_parse_from(["event-manager", "--idempotency-ttl-seconds", "3600"])
            .expect_err("an hour is less than the API promises");
        let line = describe_parse_error(&err, &["event-manager".into()]);
        assert!(
            line.contains("IDEMPOTENCY_TTL_SECONDS") || line.contains("--idempotency-ttl-seconds"),
            "{line}"
        );
        assert!(line.contains("86400"), "{line}");
    }

    #[test]
    fn an_invalid_trusted_proxy_is_refused_naming_the_option() {
        for bad in [
            "10.0.0.0/33",
            "localhost",
            "10.0.0",
            "10.0.0.0/8;",
            "10.0.0.0/8 10.1.0.0/16",
        ] {
            let err = Cli::try_parse_from(["event-manager", "--trusted-proxies", bad])
                .expect_err(bad)
                .to_string();
            assert!(err.contains("TRUSTED_PROXIES"), "{err}");
        }
    }
}
