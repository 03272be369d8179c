//! Start-up and the one shutdown path of `precinct serve`.
//!
//! Start: connect to NATS (creating the streams idempotently) and PostgreSQL, apply
//! migrations, bootstrap the ADMIN if configured, then start the roles. Shutdown (on the
//! token): the HTTP server stops accepting and finishes in-flight requests (SSE streams
//! end; connections still open after a grace period are left), the live hub lets its
//! subscribers go, the projectors commit or roll back their current batch, the SLA
//! worker stops between commands, and the request-log writer drains before the process
//! exits.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use precinct_api::live::LiveHub;
use precinct_api::{ApiConfig, AppState};
use precinct_app::App;
use precinct_eventlog::{EventLog, RequestLogWriter};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Config;

/// How long shutdown waits for open HTTP connections after the token.
const HTTP_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A started process: where it listens and how to wait for it.
#[derive(Debug)]
pub struct Running {
    /// The HTTP address (with the real port when configured with port 0).
    pub addr: Option<SocketAddr>,
    pub pool: PgPool,
    pub log: EventLog,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Waits until every role has stopped (after the shutdown token was cancelled).
    pub async fn wait(self) -> anyhow::Result<()> {
        for t in self.tasks {
            t.await.context("task panicked")??;
        }
        Ok(())
    }
}

pub async fn connect_pg(url: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(url)
        .await
        .with_context(|| "cannot connect to PostgreSQL (DATABASE_URL)")
}

/// Everything a role or an operator command works with.
#[derive(Debug, Clone)]
pub struct Connected {
    /// The log; it opens sealed personal fields when a master key is configured.
    pub log: EventLog,
    pub pool: PgPool,
    pub app: App,
    pub vault: Option<precinct_vault::Vault>,
}

/// Connects to NATS (creating streams and the key bucket) and PostgreSQL (migrating).
pub async fn connect(config: &Config) -> anyhow::Result<Connected> {
    let mut log = EventLog::connect(&config.nats_url, config.log.clone())
        .await
        .context("cannot connect to NATS JetStream (NATS_URL)")?;
    let vault = match &config.master_keys {
        Some(master) => {
            let vault = precinct_vault::Vault::open(
                log.jetstream(),
                &config.log.keys_bucket,
                config.log.replicas,
                master.clone(),
            )
            .await
            .context("cannot open the key bucket")?;
            log = log.with_opener(std::sync::Arc::new(vault.clone()));
            Some(vault)
        }
        None => None,
    };
    let app = match &vault {
        Some(v) => App::with_vault(log.clone(), v.clone()),
        None => App::new(log.clone()),
    };
    let pool = connect_pg(&config.database_url).await?;
    precinct_projections::migrate(&pool)
        .await
        .context("migrations failed")?;
    Ok(Connected {
        log,
        pool,
        app,
        vault,
    })
}

/// Starts the configured roles; everything stops when `shutdown` is cancelled.
pub async fn start(config: Config, shutdown: CancellationToken) -> anyhow::Result<Running> {
    if config.master_keys.is_none() {
        anyhow::bail!(
            "PRECINCT_MASTER_KEY is not set: personal data cannot be sealed \
             (generate one with `precinct keys generate`)"
        );
    }
    let Connected { log, pool, app, .. } = connect(&config).await?;
    if let Some((email, password)) = &config.admin {
        let outcome = crate::admin::ensure_admin(&app, email, password).await?;
        tracing::info!(?outcome, "admin bootstrap");
    }
    let mut tasks = Vec::new();
    let mut addr = None;

    if config.roles.projector {
        let (pool, log, token) = (pool.clone(), log.clone(), shutdown.clone());
        let roster = config.roster.clone();
        tasks.push(tokio::spawn(async move {
            precinct_projections::run_all(pool, log, roster, token)
                .await
                .map_err(|e| anyhow::anyhow!("projectors: {e}"))
        }));
    }
    if config.roles.sla {
        let worker = crate::sla::SlaWorker {
            app: app.clone(),
            pool: pool.clone(),
            accept: config.sla_accept,
            respond: config.sla_respond,
        };
        let token = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            worker.run(token).await;
            Ok(())
        }));
    }
    if config.roles.api || config.roles.live {
        let mut api = ApiConfig::new(config.secret.clone());
        api.sla_accept = config.sla_accept;
        api.sla_respond = config.sla_respond;
        api.token_ttl = config.token_ttl;
        api.cors_origins = config.cors_origins.clone();
        api.health_details = config.health_details;
        api.anonymous_reports_per_minute = config.anonymous_reports_per_minute;
        api.live = config.live.clone();
        let (requests, request_task) = RequestLogWriter::start(log.clone());
        let mut state = AppState::new(app.clone(), pool.clone(), api, requests);
        if config.roles.live {
            // One positions consumer and one log consumer for every SSE client here.
            let (hub, hub_task) = LiveHub::start(
                log.clone(),
                pool.clone(),
                state.live.directory.clone(),
                config.live.clone(),
                shutdown.clone(),
            );
            tasks.push(tokio::spawn(async move {
                hub_task.await.context("live hub")?;
                Ok(())
            }));
            state = state.with_live_hub(hub);
        }
        let router = if config.roles.api {
            precinct_api::router(state)
        } else {
            precinct_api::live_router(state)
        };
        let listener = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.http_addr))?;
        addr = Some(listener.local_addr()?);
        tracing::info!(addr = ?addr, "HTTP API listening");
        let token = shutdown.clone();
        let grace = token.clone();
        tasks.push(tokio::spawn(async move {
            let serve = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { token.cancelled().await });
            // SSE streams end on the token, but a client that stopped reading keeps its
            // connection blocked in a write: do not wait for it forever.
            let all_closed = tokio::select! {
                served = serve.into_future() => {
                    served.context("HTTP server")?;
                    true
                }
                _ = async {
                    grace.cancelled().await;
                    tokio::time::sleep(HTTP_SHUTDOWN_GRACE).await;
                } => false,
            };
            if all_closed {
                // The router (and with it every request-log sender) is gone: drain the
                // writer.
                request_task.finish().await;
            } else {
                // Open connections still hold request-log senders: give the writer a
                // moment for what is queued.
                tracing::warn!("HTTP connections still open after the grace period; leaving them");
                let _ = tokio::time::timeout(Duration::from_secs(2), request_task.finish()).await;
            }
            Ok(())
        }));
    }
    Ok(Running {
        addr,
        pool,
        log,
        tasks,
    })
}
