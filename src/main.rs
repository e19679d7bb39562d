//! The `event-manager` binary: parse configuration, set up logs, connect, then serve,
//! migrate or create an administrator.

use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};
use event_manager::{
    AppState, build_app,
    config::{Cli, Command, Config, describe_parse_error},
    db,
    model::UserCreate,
    telemetry,
};
use poem::{
    Server,
    listener::{Listener, TcpListener},
};
use sea_orm::DatabaseConnection;

fn main() -> ExitCode {
    tune_allocator();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = Cli::command()
        .try_get_matches_from(&argv)
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) if e.use_stderr() => {
            // One line naming the option (or its environment variable), not a usage screen.
            eprintln!("{}", describe_parse_error(&e, &argv));
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    if let Err(e) = cli.config.validate(&matches) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    // Held until the end of main: dropping it flushes the log lines still queued.
    let _log_guard = match telemetry::init(cli.config.log_format, &cli.config.log_filter) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // Printed once, on one line: the log would only repeat it.
        Err(Failure::StartUp(e)) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(2)
        }
        Err(Failure::Running(e)) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Why the program stops: it could not start (the address, the database, the migrations:
/// exit 2, like an invalid option), or it failed while running (exit 1).
enum Failure {
    StartUp(anyhow::Error),
    Running(anyhow::Error),
}

/// The error and its causes on one line, leaving out a cause its parent already quotes.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            connect(&config, true).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::CreateAdmin(args) => {
            let db = connect(&config, true).await?;
            let state = AppState::new(config, db).map_err(Failure::StartUp)?;
            let input = UserCreate {
                email: args.email,
                password: args.password,
                full_name: args.full_name,
            };
            let (user, created) = state
                .users
                .create_admin(input)
                .await
                .map_err(|e| Failure::Running(anyhow::anyhow!(describe_service_error(e))))?;
            println!(
                "{} administrator {} ({})",
                if created { "created" } else { "promoted" },
                user.email,
                user.id
            );
            Ok(())
        }
        Command::Serve => {
            let shutdown = shutdown_signal();
            // The port first: a busy port fails at once, before the database is touched,
            // and the port is held while migrations run.
            let bind = config.bind_addr.clone();
            let acceptor = TcpListener::bind(bind.clone())
                .into_acceptor()
                .await
                .with_context(|| format!("Failed to listen on {bind}"))
                .map_err(Failure::StartUp)?;
            let db = connect(&config, config.auto_migrate).await?;
            let drain = std::time::Duration::from_secs(config.shutdown_timeout);
            let state = AppState::new(config, db.clone()).map_err(Failure::StartUp)?;
            let health = state.health.clone();
            let hub = state.changes.hub().clone();
            let workers = event_manager::worker::Workers::start(&state);
            let app = build_app(state);
            tracing::info!(%bind, "serving");
            Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    async move {
                        shutdown.await;
                        health.start_draining();
                        // Live streams end now, so they do not hold the drain open.
                        hub.shut_down();
                    },
                    Some(drain),
                )
                .await
                .with_context(|| format!("Failed to serve on {bind}"))
                .map_err(Failure::Running)?;
            workers.join(std::time::Duration::from_secs(2)).await;
            db.close()
                .await
                .context("Failed to close the database pool")
                .map_err(Failure::Running)?;
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// Opens the pool and, when asked, applies pending migrations.
async fn connect(config: &Config, migrate: bool) -> Result<DatabaseConnection, Failure> {
    let db = db::connect(config).await.map_err(Failure::StartUp)?;
    if migrate {
        db::migrate(&db).await.map_err(Failure::StartUp)?;
    }
    Ok(db)
}

/// Makes glibc return large blocks to the system when they are freed.
///
/// Every password hash allocates the argon2 memory cost (19 MiB by default). glibc raises its
/// mmap threshold after the first such block is freed, so later ones come from per-thread
/// arenas and stay resident: hundreds of MiB after a burst of logins. A fixed threshold keeps
/// them mmapped, and freeing one unmaps it.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Resolves on SIGINT or SIGTERM (what `docker stop` and Kubernetes send).
/// Listens for SIGINT and SIGTERM from now on (one that arrives while the database is still
/// being migrated is kept, not fatal); the future resolves on the first of them.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let listening = {
        use tokio::signal::unix::{SignalKind, signal};
        [
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ]
    };
    async move {
        #[cfg(unix)]
        {
            let waits = listening.into_iter().map(|listener| {
                Box::pin(async move {
                    match listener {
                        Ok(mut signal) => {
                            signal.recv().await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot listen for a shutdown signal");
                            std::future::pending::<()>().await;
                        }
                    }
                })
            });
            futures_util::future::select_all(waits).await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested: finishing in-flight requests");
    }
}

/// A readable line for a service error in the CLI.
fn describe_service_error(e: event_manager::service::Error) -> String {
    match e {
        event_manager::service::Error::Validation(errors) => errors
            .iter()
            .map(|f| format!("invalid {}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}
