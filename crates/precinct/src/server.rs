//! Start-up and the one shutdown path of `precinct serve`.
//!
//! Start: connect to NATS (creating the streams idempotently) and PostgreSQL, apply
//! migrations, bootstrap the ADMIN if configured, then start the roles. Shutdown (on the
//! token): the HTTP server stops accepting and finishes in-flight requests, the
//! projectors commit or roll back their current batch, the SLA worker stops between
//! commands, and the request-log writer drains before the process exits.

use std::net::SocketAddr;

use anyhow::Context;
use precinct_api::{ApiConfig, AppState};
use precinct_app::App;
use precinct_eventlog::{EventLog, RequestLogWriter};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Config;

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

pub async fn connect(config: &Config) -> anyhow::Result<(EventLog, PgPool)> {
    let log = EventLog::connect(&config.nats_url, config.log.clone())
        .await
        .context("cannot connect to NATS JetStream (NATS_URL)")?;
    let pool = connect_pg(&config.database_url).await?;
    precinct_projections::migrate(&pool)
        .await
        .context("migrations failed")?;
    Ok((log, pool))
}

/// Starts the configured roles; everything stops when `shutdown` is cancelled.
pub async fn start(config: Config, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let (log, pool) = connect(&config).await?;
    let app = App::new(log.clone());
    if let Some((email, password)) = &config.admin {
        let outcome = crate::admin::ensure_admin(&app, email, password).await?;
        tracing::info!(?outcome, "admin bootstrap");
    }
    let mut tasks = Vec::new();
    let mut addr = None;

    if config.roles.projector {
        let (pool, log, token) = (pool.clone(), log.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            precinct_projections::run(pool, log, token)
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
    if config.roles.api {
        let mut api = ApiConfig::new(config.secret.clone());
        api.sla_accept = config.sla_accept;
        api.sla_respond = config.sla_respond;
        api.token_ttl = config.token_ttl;
        let (requests, request_task) = RequestLogWriter::start(log.clone());
        let state = AppState::new(app.clone(), pool.clone(), api, requests);
        let router = precinct_api::router(state);
        let listener = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.http_addr))?;
        addr = Some(listener.local_addr()?);
        tracing::info!(addr = ?addr, "HTTP API listening");
        let token = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
            .context("HTTP server")?;
            // The router (and with it every request-log sender) is gone: drain the writer.
            request_task.finish().await;
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
