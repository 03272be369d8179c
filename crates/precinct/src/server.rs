//! Start-up and the one shutdown path of `precinct serve`.
//!
//! Start: refuse plain HTTP on a non-loopback address (unless behind a TLS proxy), connect
//! to NATS (creating the streams idempotently) and PostgreSQL, apply migrations,
//! bootstrap the ADMIN if configured, then start the roles (the HTTP listener serves
//! HTTPS when a certificate is configured) and the operations listener (`/metrics` and
//! probes; by default only in a process without an HTTP API, ADR 0025). Shutdown (on the
//! token): the HTTP server stops accepting and finishes in-flight requests (SSE streams
//! end; connections still open after a grace period are left), the live hub lets its
//! subscribers go, the projectors commit or roll back their current batch, the SLA
//! worker stops between commands, the webhook deliverer between attempts, and the request-log writer drains before the process
//! exits.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use precinct_api::live::LiveHub;
use precinct_api::{ApiConfig, AppState};
use precinct_app::App;
use precinct_eventlog::{EventLog, RequestLogWriter};
use precinct_retry as backoff;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Config;

/// How long shutdown waits for open HTTP connections after the token.
const HTTP_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often an API process deletes expired throttle rows (ADR 0010).
const THROTTLE_PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// A started process: where it listens and how to wait for it.
#[derive(Debug)]
pub struct Running {
    /// The HTTP address (with the real port when configured with port 0).
    pub addr: Option<SocketAddr>,
    /// The operations listener's address (`PRECINCT_OPS_ADDR`, ADR 0025), if any.
    pub ops_addr: Option<SocketAddr>,
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

/// The webhook deliverer's own pool (ADR 0028, amended 2026-11-30): its writes — the
/// delivery ledger and cursors — commit without waiting for the WAL flush
/// (`synchronous_commit = off`). A process restart or failover loses none of them (the
/// server has them); a PostgreSQL crash may lose the last fraction of a second of them,
/// and then the cursor is behind: those events are delivered again under the same
/// `webhook-id` — at least once still holds, nothing is skipped. Connections are opened
/// on first use, at most 8.
pub fn webhook_pool(url: &str) -> anyhow::Result<PgPool> {
    use sqlx::Executor as _;
    use std::str::FromStr as _;
    let options = sqlx::postgres::PgConnectOptions::from_str(url).context("DATABASE_URL")?;
    Ok(PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(std::time::Duration::from_secs(5))
        // A session setting, not a startup parameter: connection poolers that refuse
        // unknown startup parameters still accept it.
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET synchronous_commit = off").await?;
                Ok(())
            })
        })
        .connect_lazy_with(options))
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
                &log,
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
    precinct_readmodel::migrate(&pool)
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
    let listens = config.roles.api || config.roles.live;
    if listens {
        crate::config::check_transport(
            config.http_addr,
            config.tls.as_ref(),
            config.behind_tls_proxy,
        )?;
    }
    // Read the certificate before connecting to anything: a bad file is a start-up error.
    let tls = match (&config.tls, listens) {
        (Some(files), true) => Some(crate::tls::server_config(files)?),
        _ => None,
    };
    if config.master_keys.is_none() {
        anyhow::bail!(
            "PRECINCT_MASTER_KEY is not set: personal data cannot be sealed \
             (generate one with `precinct keys generate`)"
        );
    }
    // The metrics recorder before anything records: every family exists at zero from
    // here on, and the first connection and appends are counted.
    precinct_api::metrics::handle();
    let Connected { log, pool, app, .. } = connect(&config).await?;
    if let Some((email, password)) = &config.admin {
        let outcome = crate::admin::ensure_admin(&app, email, password).await?;
        tracing::info!(?outcome, "admin bootstrap");
    }
    let mut tasks = Vec::new();
    let mut addr = None;
    // The background roles the operations listener's probes watch.
    let workers = precinct_api::ops::Workers::default();
    // The state the operations listener serves: the API's when this process has one.
    let mut ops_state = None;

    if config.roles.projector {
        let (pool, log, token) = (pool.clone(), log.clone(), shutdown.clone());
        let roster = config.roster.clone();
        let running = workers.register("projector");
        tasks.push(tokio::spawn(async move {
            let _running = running;
            precinct_projections::run_all(pool, log, roster, token)
                .await
                .map_err(|e| anyhow::anyhow!("projectors: {e}"))
        }));
    }
    if config.roles.sla {
        let worker = crate::sla::SlaWorker {
            app: app.clone(),
            pool: pool.clone(),
            defaults: config.sla_defaults(),
        };
        let token = shutdown.clone();
        let running = workers.register("sla");
        tasks.push(tokio::spawn(async move {
            let _running = running;
            worker.run(token).await;
            Ok(())
        }));
    }
    if config.roles.webhooks {
        let deliverer = crate::webhooks::Deliverer {
            app: app.clone(),
            log: log.clone(),
            pool: webhook_pool(&config.database_url)?,
            config: config.webhooks.clone(),
        };
        let token = shutdown.clone();
        let running = workers.register("webhooks");
        tasks.push(tokio::spawn(async move {
            let _running = running;
            deliverer.run(token).await;
            Ok(())
        }));
        // The reporter mailer: the other outbound path, only where SMTP is configured.
        if let Some(mail) = &config.mail {
            let mailer = crate::mailer::Mailer {
                log: log.clone(),
                pool: pool.clone(),
                config: mail.clone(),
            };
            let token = shutdown.clone();
            let running = workers.register("mailer");
            tasks.push(tokio::spawn(async move {
                let _running = running;
                mailer.run(token).await;
                Ok(())
            }));
        }
        // Officer notifications go out from the same role (ADR 0032).
        let pusher = crate::push::PushDeliverer {
            app: app.clone(),
            log: log.clone(),
            pool: pool.clone(),
            config: config.push.clone(),
        };
        let token = shutdown.clone();
        let running = workers.register("push");
        tasks.push(tokio::spawn(async move {
            let _running = running;
            pusher.run(token).await;
            Ok(())
        }));
    }
    if config.roles.api || config.roles.live {
        let api = api_config(&config);
        let (requests, request_task) = RequestLogWriter::start(log.clone());
        let mut state = AppState::new(app.clone(), pool.clone(), api, requests);
        state.workers = workers.clone();
        // The account view every request is authorized by (ADR 0011).
        let accounts = state.accounts.start(shutdown.clone());
        tasks.push(tokio::spawn(async move {
            accounts.await.context("account view")?;
            Ok(())
        }));
        if config.roles.live {
            // One positions consumer and one log consumer for every SSE client here.
            let (hub, hub_task) = LiveHub::start(
                log.clone(),
                pool.clone(),
                state.live.directory.clone(),
                state.accounts.clone(),
                config.live.clone(),
                shutdown.clone(),
            );
            tasks.push(tokio::spawn(async move {
                hub_task.await.context("live hub")?;
                Ok(())
            }));
            state = state.with_live_hub(hub);
        }
        ops_state = Some(state.clone());
        let router = if config.roles.api {
            precinct_api::router(state)
        } else {
            precinct_api::live_router(state)
        };
        if config.roles.api {
            tasks.push(tokio::spawn(purge_throttle(pool.clone(), shutdown.clone())));
        }
        let listener = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.http_addr))?;
        addr = Some(listener.local_addr()?);
        tracing::info!(addr = ?addr, tls = tls.is_some(), "HTTP API listening");
        let token = shutdown.clone();
        let grace = token.clone();
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let stop = async move { token.cancelled().await };
        type Served = Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>;
        let serve: Served = match tls {
            Some(tls) => {
                use axum::serve::ListenerExt;
                // `tap_io` makes the peer's `SocketAddr` the connect info, as for TCP.
                let listener = crate::tls::TlsListener::new(listener, tls, config.tls_handshakes)?
                    .tap_io(|_| {});
                Box::pin(
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stop)
                        .into_future(),
                )
            }
            None => Box::pin(
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .into_future(),
            ),
        };
        tasks.push(tokio::spawn(async move {
            // SSE streams end on the token, but a client that stopped reading keeps its
            // connection blocked in a write: do not wait for it forever.
            let all_closed = tokio::select! {
                served = serve => {
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
    let mut ops_addr = None;
    if let Some(at) = config.ops_addr.resolve(listens) {
        let state = match ops_state {
            Some(state) => state,
            None => {
                // No API here: a state for the operations routes only. Nothing is
                // recorded to the request log, so its writer ends with the state.
                let (requests, _idle) = RequestLogWriter::start(log.clone());
                let mut state =
                    AppState::new(app.clone(), pool.clone(), api_config(&config), requests);
                state.workers = workers.clone();
                state
            }
        };
        let (bound, task) = crate::ops::listen(at, state, shutdown.clone()).await?;
        ops_addr = Some(bound);
        tasks.push(task);
    }
    Ok(Running {
        addr,
        ops_addr,
        pool,
        log,
        tasks,
    })
}

/// The HTTP layer's settings from the process's configuration (the API listener's, and
/// the operations listener's token rule and readiness details).
fn api_config(config: &Config) -> ApiConfig {
    let mut api = ApiConfig::new(config.secret.clone());
    api.sla_accept = config.sla_accept;
    api.sla_respond = config.sla_respond;
    api.sla_defaults = config.sla_defaults();
    api.token_ttl = config.token_ttl;
    api.cors_origins = config.cors_origins.clone();
    api.health_details = config.health_details;
    api.admission = config.admission;
    api.anonymous_reports_per_minute = config.anonymous_reports_per_minute;
    api.registrations_per_hour = config.registrations_per_hour;
    api.invite_accepts_per_hour = config.invite_accepts_per_hour;
    api.login = config.login.clone();
    api.password_jobs = config.password_jobs;
    api.trusted_proxies = config.trusted_proxies.clone();
    api.hsts = config.tls.is_some() || config.behind_tls_proxy;
    api.metrics_token = config.metrics_token.clone();
    api.command_rates = config.command_rates;
    api.log_read_rates = config.log_read_rates;
    api.export_rates = config.export_rates;
    api.duplicates = config.duplicates;
    api.public_heatmap_min_count = config.public_heatmap_min_count;
    api.live = config.live.clone();
    api.webhook_targets = config.webhooks.targets.clone();
    api.map_tiles = config.map_tiles.clone();
    api.vapid_public_key = config.push.vapid.as_ref().map(|v| v.public_key.clone());
    api
}

/// Deletes expired login-throttle and rate-window rows now and then, until shutdown.
/// Every API process runs it; the deletes are idempotent, so running it in several
/// processes is harmless.
async fn purge_throttle(pool: PgPool, shutdown: CancellationToken) -> anyhow::Result<()> {
    loop {
        if !backoff::pause(&shutdown, THROTTLE_PURGE_INTERVAL).await {
            return Ok(());
        }
        match precinct_readmodel::throttle::purge_expired(&pool, 10_000).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "expired throttle rows purged"),
            Err(e) => tracing::warn!(error = %e, "purging expired throttle rows failed"),
        }
    }
}
