//! The `event-manager` binary: parse configuration, set up logs, connect, then serve,
//! migrate or create an administrator.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use event_manager::{
    AppState, build_app,
    config::{Cli, Command},
    db,
    model::UserCreate,
    telemetry,
};
use poem::{
    Server,
    listener::{Listener, TcpListener},
};

fn main() -> ExitCode {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line naming the option, not a usage screen.
            let rendered = e.to_string();
            eprintln!("{}", rendered.lines().next().unwrap_or("invalid arguments"));
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    if let Err(e) = cli.config.validate() {
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
        Err(e) => {
            tracing::error!(error = ?e, "fatal");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    let db = db::connect(&config).await?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            db::migrate(&db).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::CreateAdmin(args) => {
            db::migrate(&db).await?;
            let state = AppState::new(config, db)?;
            let input = UserCreate {
                email: args.email,
                password: args.password,
                full_name: args.full_name,
            };
            let (user, created) = state
                .users
                .create_admin(input)
                .await
                .map_err(|e| anyhow::anyhow!(describe_service_error(e)))?;
            println!(
                "{} administrator {} ({})",
                if created { "created" } else { "promoted" },
                user.email,
                user.id
            );
            Ok(())
        }
        Command::Serve => {
            if config.auto_migrate {
                db::migrate(&db).await?;
            }
            let bind = config.bind_addr;
            let drain = std::time::Duration::from_secs(config.shutdown_timeout);
            let state = AppState::new(config, db.clone())?;
            let health = state.health.clone();
            let app = build_app(state);
            let acceptor = TcpListener::bind(bind)
                .into_acceptor()
                .await
                .with_context(|| format!("Failed to listen on {bind}"))?;
            tracing::info!(%bind, "serving");
            Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    async move {
                        shutdown_signal().await;
                        health.start_draining();
                    },
                    Some(drain),
                )
                .await
                .with_context(|| format!("Failed to serve on {bind}"))?;
            db.close()
                .await
                .context("Failed to close the database pool")?;
            tracing::info!("stopped");
            Ok(())
        }
    }
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
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested: finishing in-flight requests");
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
