//! `precinct`: serve, migrate, admin create, rebuild, replay, projections
//! status|retry|skip, keys.

mod telemetry;

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
    /// Run the HTTP API, the projectors, the SLA worker and the live hub (or a subset:
    /// --roles).
    Serve {
        #[arg(long, default_value = "api,projector,sla,live,webhooks")]
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
    /// Projection health and poison-event repairs (ADR 0009).
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Print one report's history from the log.
    Replay {
        #[arg(long)]
        crime: uuid::Uuid,
    },
    /// Master-key operations for sealed personal data.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new random master key as `<id>:<hex>` (for PRECINCT_MASTER_KEY).
    Generate {
        #[arg(long)]
        id: String,
    },
    /// Re-wrap every data key with the current PRECINCT_MASTER_KEY (old keys in
    /// PRECINCT_MASTER_KEYS_PREVIOUS). The log is not rewritten.
    Rotate,
}

#[derive(Subcommand)]
enum ProjectionsCommand {
    /// Each projection's position and lag, and every quarantined event still held back
    /// (one JSON object per line).
    Status,
    /// Apply the quarantined events of the aggregate of the entry at POSITION again, in
    /// order (after a fix), and release the aggregate if they all apply.
    Retry {
        /// `reports`, `patrols`, `stations`, `accounts`, `audit` or `request_log`.
        projection: String,
        position: u64,
        /// Who decides (kept with the decision).
        #[arg(long)]
        by: String,
    },
    /// Drop the effect of the poison event at POSITION for good (a rebuild honours it
    /// too), then retry the rest of its aggregate.
    Skip {
        projection: String,
        position: u64,
        #[arg(long)]
        by: String,
        /// Why (kept with the decision).
        #[arg(long)]
        reason: Option<String>,
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

/// Errors end the process with one line on stderr, `error: ` and the chain of causes
/// (`{:#}`), and exit status 1 — never Rust's debug output of the error or a backtrace
/// (which `fn main() -> Result` prints, with `RUST_BACKTRACE` set): an operator who
/// mistyped a projection's name needs the sentence, not the stack.
fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match start(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start(cli: Cli) -> anyhow::Result<()> {
    // Telemetry outlives the runtime, so that spans of the shutdown are exported too.
    let telemetry = telemetry::init()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(cli));
    drop(runtime);
    telemetry.shutdown();
    result
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::from_env()?;
    match cli.command {
        Command::Serve { roles } => {
            config.roles = Roles::parse(&roles)?;
            let shutdown = CancellationToken::new();
            let running = server::start(config, shutdown.clone()).await?;
            if let Some(addr) = running.addr {
                println!("precinct listening on http://{addr}");
            }
            if let Some(addr) = running.ops_addr {
                println!("precinct operations listening on http://{addr}");
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
            let app = server::connect(&config).await?.app;
            let outcome = precinct::admin::ensure_admin(&app, &email, &password).await?;
            println!("{outcome:?}");
        }
        Command::Rebuild => {
            let server::Connected { log, pool, .. } = server::connect(&config).await?;
            let started = std::time::Instant::now();
            let report = precinct_projections::rebuild_with(&pool, &log, config.roster.clone())
                .await
                .map_err(|e| anyhow::anyhow!("rebuild: {e}"))?;
            println!(
                "rebuilt in {:.1} s: {report:?}",
                started.elapsed().as_secs_f64()
            );
        }
        Command::Keys { command } => keys(config, command).await?,
        Command::Projections { command } => projections(config, command).await?,
        Command::Replay { crime } => {
            let log = server::connect(&config).await?.log;
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

async fn projections(config: Config, command: ProjectionsCommand) -> anyhow::Result<()> {
    use precinct_projections::quarantine;
    let server::Connected { log, pool, .. } = server::connect(&config).await?;
    let repaired = match command {
        ProjectionsCommand::Status => {
            let mut status = precinct_projections::status(&pool, &log).await?;
            status.push(precinct_projections::request_log_status(&pool, &log).await?);
            for s in status {
                println!("{}", serde_json::json!({ "projection": s }));
            }
            for q in precinct_readmodel::quarantine::held(&pool, None).await? {
                println!("{}", serde_json::json!({ "quarantined": q }));
            }
            return Ok(());
        }
        ProjectionsCommand::Retry {
            projection,
            position,
            by,
        } => quarantine::retry(&pool, &log, &projection, position, &by).await?,
        ProjectionsCommand::Skip {
            projection,
            position,
            by,
            reason,
        } => quarantine::skip(&pool, &log, &projection, position, &by, reason.as_deref()).await?,
    };
    println!("{}", serde_json::json!({ "repair": repaired }));
    if !repaired.released() {
        anyhow::bail!(
            "the aggregate is still held back: {:?}",
            repaired.failed.map(|(p, e)| format!("position {p}: {e}"))
        );
    }
    Ok(())
}

async fn keys(config: Config, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate { id } => {
            let key: [u8; 32] = rand::random();
            println!("{id}:{}", hex::encode(key));
        }
        KeysCommand::Rotate => {
            let vault = server::connect(&config)
                .await?
                .vault
                .ok_or_else(|| anyhow::anyhow!("PRECINCT_MASTER_KEY is not set"))?;
            let n = vault.rotate().await?;
            println!("re-wrapped {n} data keys");
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
