//! Test harness: every test gets its own freshly migrated database (a SQLite file in a temp
//! dir, or a PostgreSQL database cloned from a migrated template) and a real server on an
//! ephemeral loopback port.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use event_manager::{AppState, build_app, config::Config, db};
use poem::{
    Server,
    listener::{Acceptor, Listener, TcpListener},
};
use reqwest::{Method, header::HeaderMap};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};

/// HS256 secret of every test server, so tests can forge tokens.
pub const JWT_SECRET: &str = "test-secret-0123456789abcdef-0123456789abcdef";
/// Password of users made by `TestApp::user`.
pub const PASSWORD: &str = "correct horse battery";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A database on the server named by `TEST_DATABASE_URL`.
    Postgres,
}

/// A running server and the handles a test needs.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The server's state (services), for setup that has no API.
    pub state: AppState,
    /// A direct connection to the test database, for checking invariants.
    pub db: DatabaseConnection,
    /// Which backend.
    pub backend: Backend,
    _sqlite_dir: Option<tempfile::TempDir>,
    pg_database: Option<String>,
    /// The database URL, for more instances.
    url: String,
    /// Background tasks; they stop when the server's hub shuts down.
    _workers: Option<event_manager::worker::Workers>,
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// JSON body (`Null` when empty or not JSON).
    pub body: Value,
}

impl Resp {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }

    /// Asserts an RFC 9457 problem of this status.
    #[track_caller]
    pub fn expect_problem(&self, status: u16) -> &Self {
        self.expect(status);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "problem responses are application/problem+json"
        );
        assert_eq!(
            self.body["status"],
            json!(status),
            "problem body: {}",
            self.body
        );
        assert!(self.body["type"].is_string() && self.body["title"].is_string());
        self
    }
}

/// A signed-up user with a token.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// User id.
    pub id: String,
    /// Email.
    pub email: String,
    /// Bearer token.
    pub token: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Serialises PostgreSQL template creation and cloning within this test process.
static PG_TEMPLATE: tokio::sync::Mutex<Option<String>> = tokio::sync::Mutex::const_new(None);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `TEST_DATABASE_URL`, if PostgreSQL tests are enabled.
pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// The same server URL with another database name.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

async fn admin_connection(url: &str) -> DatabaseConnection {
    let mut opts = sea_orm::ConnectOptions::new(url.to_owned());
    opts.max_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    Database::connect(opts).await.unwrap_or_else(|e| {
        panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable ({url}): {e}")
    })
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .unwrap_or_else(|e| panic!("`{sql}` failed: {e}"));
}

/// Creates a fresh PostgreSQL database cloned from this process's migrated template.
async fn fresh_postgres_database(url: &str) -> String {
    let mut template = PG_TEMPLATE.lock().await;
    let admin = admin_connection(url).await;
    if template.is_none() {
        drop_stale_databases(&admin).await;
        let name = format!("em_tpl_{}", std::process::id());
        exec(
            &admin,
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )
        .await;
        exec(&admin, &format!("CREATE DATABASE \"{name}\"")).await;
        let tpl = admin_connection(&with_database(url, &name)).await;
        db::migrate(&tpl)
            .await
            .expect("migrating the template database");
        tpl.close().await.expect("closing the template connection");
        *template = Some(name);
    }
    let name = unique("em_t_").replace('-', "_");
    exec(
        &admin,
        &format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{}\"",
            template.as_ref().expect("template exists")
        ),
    )
    .await;
    let _ = admin.close().await;
    name
}

/// Drops test databases left by earlier test processes that have exited.
async fn drop_stale_databases(admin: &DatabaseConnection) {
    let rows = admin
        .query_all_raw(Statement::from_string(
            admin.get_database_backend(),
            "SELECT datname FROM pg_database WHERE datname LIKE 'em\\_t\\_%' OR datname LIKE 'em\\_tpl\\_%'"
                .to_owned(),
        ))
        .await
        .expect("listing test databases");
    for row in rows {
        let name: String = row.try_get("", "datname").expect("datname");
        let pid = name
            .trim_start_matches("em_tpl_")
            .trim_start_matches("em_t_")
            .split('_')
            .next()
            .and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            exec(
                admin,
                &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            )
            .await;
        }
    }
}

/// Configuration of test servers: cheap password hashing, a known JWT secret.
pub fn test_config(database_url: String) -> Config {
    let mut config = Config::for_database(database_url);
    config.jwt_secret = Some(JWT_SECRET.to_owned());
    config.argon2_memory_kib = 256;
    config.argon2_iterations = 1;
    config.db_max_connections = 10;
    // Many test servers share two cores: give connections time under that load.
    config.db_acquire_timeout_ms = 10_000;
    config.cors_allowed_origins = vec!["https://app.example.com".to_owned()];
    // Small enough for a test to reach the limit.
    config.max_streams = 4;
    // Deliveries follow changes quickly, so webhook tests wait little.
    config.webhook_poll_ms = 100;
    config
}

impl TestApp {
    /// Starts a server on a fresh database; `None` for PostgreSQL when `TEST_DATABASE_URL`
    /// is unset (such tests are marked ignored at build time; see `build.rs`).
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Like `spawn`, with a chance to change the configuration first.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
        let (url, sqlite_dir, pg_database) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/test.db?mode=rwc", dir.path().display());
                (url, Some(dir), None)
            }
            Backend::Postgres => {
                let server = postgres_url()?;
                let name = fresh_postgres_database(&server).await;
                (with_database(&server, &name), None, Some(name))
            }
        };
        let url_for_instances = url.clone();
        let mut config = test_config(url);
        tweak(&mut config);
        let db = db::connect(&config)
            .await
            .expect("connecting to the test database");
        if backend == Backend::Sqlite {
            db::migrate(&db).await.expect("migrating the test database");
        }
        let state = AppState::new(config, db.clone()).expect("building state");
        Some(
            Self::serve(
                state,
                db,
                backend,
                url_for_instances,
                sqlite_dir,
                pg_database,
            )
            .await,
        )
    }

    /// Starts the server and its background tasks over a state.
    async fn serve(
        state: AppState,
        db: DatabaseConnection,
        backend: Backend,
        url: String,
        sqlite_dir: Option<tempfile::TempDir>,
        pg_database: Option<String>,
    ) -> TestApp {
        let workers = event_manager::worker::Workers::start(&state);
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("binding a port");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a socket address");
        let app = build_app(state.clone());
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .expect("client"),
            state,
            db,
            backend,
            _sqlite_dir: sqlite_dir,
            pg_database,
            url,
            _workers: Some(workers),
        }
    }

    /// A second server process on this test's database (PostgreSQL), as another instance
    /// of a deployment would be: its own pool, hub and listener.
    pub async fn second_instance(&self) -> TestApp {
        self.second_instance_with(|_| {}).await
    }

    /// A second server process on this test's database with its configuration changed.
    pub async fn second_instance_with(&self, change: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = test_config(self.url.clone());
        change(&mut config);
        let db = db::connect(&config)
            .await
            .expect("connecting the second instance");
        let state = AppState::new(config, db.clone()).expect("building state");
        Self::serve(state, db, self.backend, self.url.clone(), None, None).await
    }

    /// The database this server uses.
    pub fn database_url(&self) -> &str {
        &self.url
    }

    /// Full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request builder with an optional bearer token.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, self.url(path));
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// Sends a request and reads the response whole.
    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        let resp = rb.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body read");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    /// GET.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(self.request(Method::GET, path, token)).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.send(self.request(Method::POST, path, token).json(&body))
            .await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(self.request(Method::DELETE, path, token)).await
    }

    /// PATCH with a JSON Patch document and an optional `If-Match`.
    pub async fn patch(
        &self,
        path: &str,
        token: Option<&str>,
        ops: Value,
        if_match: Option<&str>,
    ) -> Resp {
        let mut rb = self
            .request(Method::PATCH, path, token)
            .header("content-type", "application/json-patch+json")
            .body(ops.to_string());
        if let Some(tag) = if_match {
            rb = rb.header("if-match", tag);
        }
        self.send(rb).await
    }

    /// Signs up a user with this email and `PASSWORD`, and logs in.
    pub async fn user_with_email(&self, email: &str) -> TestUser {
        let created = self
            .post(
                "/api/v1/users",
                None,
                json!({"email": email, "password": PASSWORD, "full_name": "Test User"}),
            )
            .await;
        created.expect(201);
        let token = self.token(email, PASSWORD).await;
        TestUser {
            id: created.body["id"].as_str().expect("id").to_owned(),
            email: email.to_owned(),
            token,
        }
    }

    /// Signs up a fresh member and logs in.
    pub async fn user(&self) -> TestUser {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.user_with_email(&format!("user{n}@example.com")).await
    }

    /// A fresh administrator (made as `create-admin` does) with a token.
    pub async fn admin(&self) -> TestUser {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let email = format!("admin{n}@example.com");
        let (user, _) = self
            .state
            .users
            .create_admin(event_manager::model::UserCreate {
                email: email.clone(),
                password: PASSWORD.to_owned(),
                full_name: "Admin".to_owned(),
            })
            .await
            .expect("creating an admin");
        let token = self.token(&email, PASSWORD).await;
        TestUser {
            id: user.id.to_string(),
            email,
            token,
        }
    }

    /// Logs in and returns the access token.
    pub async fn token(&self, email: &str, password: &str) -> String {
        let resp = self
            .post(
                "/api/v1/auth/token",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        resp.expect(200);
        resp.body["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// Runs a query on the test database and returns the first column of the first row.
    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                sql.to_owned(),
            ))
            .await
            .expect("query")
            .expect("a row");
        row.try_get_by_index::<i64>(0).expect("an integer")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Ends streams and background tasks of this server.
        self.state.changes.hub().shut_down();
        // Drop this test's PostgreSQL database now rather than leave it for the next run.
        let (Some(name), Some(server)) = (self.pg_database.take(), postgres_url()) else {
            return;
        };
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = admin_connection(&server).await;
                exec(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                )
                .await;
                let _ = admin.close().await;
            });
            Some(())
        })
        .join();
    }
}

/// Why a PostgreSQL test cannot run although the build said PostgreSQL is tested.
pub const POSTGRES_REQUIRED: &str = "this test binary was built with TEST_DATABASE_URL set \
     (cfg postgres_tests) but runs without it: run it through cargo test, or set it";

/// Declares each test once per backend: `NAME::sqlite` and `NAME::postgres`. The PostgreSQL
/// half is ignored (and counted so) when the build did not see `TEST_DATABASE_URL`.
#[macro_export]
macro_rules! backend_tests {
    ($( $(#[$meta:meta])* async fn $name:ident($app:ident) $body:block )*) => {
        $(
            $(#[$meta])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($app: $crate::helpers::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite)
                        .await
                        .expect("sqlite is always available");
                    run(app).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(postgres_tests), ignore = "TEST_DATABASE_URL is unset: PostgreSQL not tested")]
                async fn postgres() {
                    let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres)
                        .await
                        .expect($crate::helpers::POSTGRES_REQUIRED);
                    run(app).await;
                }
            }
        )*
    };
}

impl Resp {
    /// Asserts a 422 validation problem whose `errors` name `field`.
    #[track_caller]
    pub fn expect_field_error(&self, field: &str) -> &Self {
        self.expect_problem(422);
        let errors = self.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("a validation problem lists `errors`: {}", self.body));
        assert!(
            errors.iter().any(
                |e| e["field"] == field && e["message"].as_str().is_some_and(|m| !m.is_empty())
            ),
            "expected an error on `{field}`: {}",
            self.body
        );
        self
    }

    /// The `ETag` header.
    #[track_caller]
    pub fn etag(&self) -> &str {
        self.header("etag").expect("an ETag header")
    }
}

impl TestApp {
    /// GET with query parameters, URL-encoded by the client.
    pub async fn get_query(&self, path: &str, token: Option<&str>, query: &[(&str, &str)]) -> Resp {
        self.send(self.request(Method::GET, path, token).query(query))
            .await
    }

    /// Number of rows in `users`.
    pub async fn user_count(&self) -> i64 {
        self.scalar_i64("SELECT COUNT(*) FROM users").await
    }
}

/// A valid event body (future dates, unlimited seats, draft) with `overrides` merged over it.
pub fn event_body(overrides: Value) -> Value {
    let mut body = json!({
        "title": "Rust meetup",
        "starts_at": "2030-03-01T18:00:00Z",
        "ends_at": "2030-03-01T21:00:00Z",
    });
    if let (Some(map), Value::Object(extra)) = (body.as_object_mut(), overrides) {
        map.extend(extra);
    }
    body
}

impl TestApp {
    /// Creates an event as `token` from `event_body(overrides)`.
    pub async fn create_event(&self, token: &str, overrides: Value) -> Resp {
        self.post("/api/v1/events", Some(token), event_body(overrides))
            .await
    }

    /// Creates a published event from `event_body(overrides)` and returns its id.
    pub async fn published_event(&self, token: &str, overrides: Value) -> String {
        let mut body = json!({"status": "published"});
        if let (Some(map), Value::Object(extra)) = (body.as_object_mut(), overrides) {
            map.extend(extra);
        }
        let resp = self.create_event(token, body).await;
        resp.expect(201);
        resp.body["id"].as_str().expect("event id").to_owned()
    }

    /// Registers the caller for an event (`{}` body).
    pub async fn register(&self, token: &str, event_id: &str) -> Resp {
        self.post(
            &format!("/api/v1/events/{event_id}/attendees"),
            Some(token),
            json!({}),
        )
        .await
    }

    /// Registers `user_id` for an event on the caller's authority.
    pub async fn register_user(&self, token: &str, event_id: &str, user_id: &str) -> Resp {
        self.post(
            &format!("/api/v1/events/{event_id}/attendees"),
            Some(token),
            json!({"user_id": user_id}),
        )
        .await
    }

    /// An event's attendee records (first 100, by registration time), read by `token`.
    pub async fn attendees_of(&self, token: &str, event_id: &str) -> Vec<Value> {
        let resp = self
            .get(
                &format!("/api/v1/events/{event_id}/attendees?limit=100"),
                Some(token),
            )
            .await;
        resp.expect(200);
        resp.body["items"].as_array().expect("items").clone()
    }
}

impl TestApp {
    /// `(status, waitlist_position)` of an event's attendees keyed by user id, read by `token`.
    pub async fn attendance(
        &self,
        token: &str,
        event_id: &str,
    ) -> std::collections::HashMap<String, (String, Value)> {
        self.attendees_of(token, event_id)
            .await
            .into_iter()
            .map(|a| {
                (
                    a["user_id"].as_str().expect("user_id").to_owned(),
                    (
                        a["status"].as_str().expect("status").to_owned(),
                        a["waitlist_position"].clone(),
                    ),
                )
            })
            .collect()
    }
}

/// Starts a PostgreSQL test server (tests that use it are ignored without
/// `TEST_DATABASE_URL`, and fail when it names a server that does not answer).
pub async fn postgres_app() -> TestApp {
    TestApp::spawn(Backend::Postgres)
        .await
        .expect(POSTGRES_REQUIRED)
}
