//! `precinct`: serve, migrate, admin create, rebuild, replay.

use clap::{Parser, Subcommand};
use precinct::{server, Config, Roles};
use precinct_domain::report::Report;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "precinct",
    about = "Crime reporting and police dispatch backend"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API, the projectors and the SLA worker (or a subset: --roles).
    Serve {
        #[arg(long, default_value = "api,projector,sla")]
        roles: String,
    },
    /// Create the streams and apply the database migrations.
    Migrate,
    /// Account administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Drop every read model and rebuild it from the log.
    Rebuild,
    /// Print one report's history from the log.
    Replay {
        #[arg(long)]
        crime: uuid::Uuid,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an ADMIN account (idempotent).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,async_nats=warn"));
    let json = std::env::var("PRECINCT_LOG_FORMAT")
        .map(|v| v == "json")
        .unwrap_or(true);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    let mut config = Config::from_env()?;
    match cli.command {
        Command::Serve { roles } => {
            config.roles = Roles::parse(&roles)?;
            let shutdown = CancellationToken::new();
            let running = server::start(config, shutdown.clone()).await?;
            if let Some(addr) = running.addr {
                println!("precinct listening on http://{addr}");
            }
            let signal = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("shutting down");
                signal.cancel();
            });
            running.wait().await?;
        }
        Command::Migrate => {
            server::connect(&config).await?;
            println!("streams and migrations are up to date");
        }
        Command::Admin {
            command: AdminCommand::Create { email, password },
        } => {
            let (log, _) = server::connect(&config).await?;
            let app = precinct_app::App::new(log);
            let outcome = precinct::admin::ensure_admin(&app, &email, &password).await?;
            println!("{outcome:?}");
        }
        Command::Rebuild => {
            let (log, pool) = server::connect(&config).await?;
            let started = std::time::Instant::now();
            let report = precinct_projections::rebuild(&pool, &log)
                .await
                .map_err(|e| anyhow::anyhow!("rebuild: {e}"))?;
            println!(
                "rebuilt in {:.1} s: {report:?}",
                started.elapsed().as_secs_f64()
            );
        }
        Command::Replay { crime } => {
            let (log, _) = server::connect(&config).await?;
            let stream = precinct_app::uow::stream_of::<Report>(crime);
            for e in log.read(&stream).await? {
                println!(
                    "{}",
                    serde_json::json!({
                        "position": e.position(),
                        "type": e.envelope.event_type,
                        "occurred_at": e.envelope.occurred_at,
                        "actor": e.envelope.actor,
                        "data": e.data,
                    })
                );
            }
        }
    }
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
