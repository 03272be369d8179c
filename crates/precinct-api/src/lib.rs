//! Precinct's HTTP API on axum: every command and query endpoint of the product spec,
//! authentication, role and ownership checks, RFC 9457 errors and the request log.
//!
//! Handlers are thin: they authenticate ([`auth::Caller`]), parse the request into
//! domain values ([`extract::Validator`]), call a command of
//! [`precinct_app::commands`] with the caller as a [`precinct_app::Principal`] (the
//! command holds who may do what on the state as it is now; [`ports`] gives it the
//! facts of this process's read models and caches) or a typed query of
//! [`precinct_readmodel::queries`] (authorized here, with the rules of
//! [`precinct_app::policy`]), and shape the response for the caller's audience
//! ([`views`]).
//!
//! It is not: the domain rules (in `precinct-domain`), the log (in `precinct-eventlog`,
//! the only way to JetStream), the read models and every SQL statement (in
//! `precinct-readmodel`), or the projectors that write them (`precinct-projections`,
//! which this crate does not depend on).
//!
//! # Layout
//! - [`problem`]: [`problem::ApiError`], answered as `application/problem+json`.
//! - [`auth`]: passwords, JWTs, the [`auth::Caller`] extractor.
//! - [`admission`]: the admission limit of commands under overload (503 +
//!   `Retry-After` past it; ADR 0021).
//! - [`access`]: [`access::AccountDirectory`], every account's current role, station
//!   and standing in memory, fed from the log; what the caller extractor authorizes by.
//! - [`extract`]: [`extract::Cmd`] (body + idempotency), validation, `X-Min-Position`.
//! - [`export`]: CSV export of the lists (`?format=csv`, `Accept: text/csv`): streamed,
//!   RFC 4180, safe against spreadsheet formulas (ADR 0030).
//! - [`middleware`]: request and correlation ids, the request span, the request log,
//!   HTTP metrics, security headers.
//! - [`metrics`]: the Prometheus recorder and `GET /metrics`.
//! - [`ops`]: the operations listener's routes (`/metrics`, `/health/live`,
//!   `/health/ready`) and the background roles its probes watch (ADR 0025).
//! - [`own_writes`]: read-your-own-writes by default: the signed cookie that carries an
//!   account's last command position across replicas (ADR 0014).
//! - [`openapi`]: the OpenAPI document (`GET /openapi.json`) and the docs page (`/docs`);
//!   [`openapi_shape`]: its last pass (shapes generators need, error examples, enums).
//! - [`throttle`]: login throttling and per-address rate limits (shared through
//!   PostgreSQL), command budgets per account.
//! - [`proxy`]: the client's address behind trusted reverse proxies.
//! - [`session`]: the console's browser sessions: the cookies, the CSRF proofs, the
//!   session check of cookie-authenticated requests (ADR 0029).
//! - [`ports`]: the application layer's ports over the read models, the account view
//!   and the password hasher.
//! - [`views`]: response shapes per audience.
//! - [`routes`]: one module per resource.
//! - [`live`]: the live path: the patrol directory (membership from memory) and the
//!   per-process fan-out hub behind the SSE endpoints.

pub mod access;
pub mod admission;
pub mod auth;
pub mod export;
pub mod extract;
pub mod live;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod openapi_shape;
pub mod ops;
pub mod own_writes;
pub mod ports;
pub mod problem;
pub mod proxy;
pub mod routes;
pub mod session;
pub mod throttle;
pub mod views;
pub mod webhook_target;

pub use throttle::{CommandRate, CommandRates};

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use precinct_app::App;
use precinct_eventlog::RequestLogWriter;
use precinct_readmodel::{PgPool, ProjectionStatus};

use auth::{Secret, Tokens};

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest accepted request body (default 1 MiB).
    pub body_limit: usize,
    /// Lifetime of access tokens (default 15 min), the console session cookie's too.
    pub token_ttl: Duration,
    /// The longest a console session lasts, renewed or not (12 h; ADR 0029).
    pub session_ttl: Duration,
    /// Signs tokens and derives tracking tokens and invite codes.
    pub secret: Secret,
    pub sla_accept: Duration,
    pub sla_respond: Duration,
    /// What a station's SLA policy falls back on (ADR 0035): `GET /sla` and
    /// `GET /stations/{id}/sla-policy`.
    pub sla_defaults: precinct_domain::sla::SlaDefaults,
    /// Login throttling (ADR 0010).
    pub login: throttle::LoginPolicy,
    /// Self-registrations per client address per hour.
    pub registrations_per_hour: u32,
    /// Invite acceptances per client address per hour.
    pub invite_accepts_per_hour: u32,
    /// The limiter of argon2id work.
    pub password_jobs: auth::PasswordJobsConfig,
    /// Which peers may say who the client is (`X-Forwarded-For` / `Forwarded`).
    pub trusted_proxies: proxy::TrustedProxies,
    /// Send `Strict-Transport-Security` (every client connection is HTTPS).
    pub hsts: bool,
    /// The bearer token of metrics scrapers (`GET /metrics`); ADMIN tokens work too.
    pub metrics_token: Option<Secret>,
    /// How long an invite stays valid.
    pub invite_ttl: Duration,
    /// The live path (positions, SSE).
    pub live: live::LiveConfig,
    /// Anonymous reports accepted per client address per minute.
    pub anonymous_reports_per_minute: u32,
    /// Commands accepted per account (token buckets by role).
    pub command_rates: throttle::CommandRates,
    /// Reads of one report from the log (`as_of`, history) per caller.
    pub log_read_rates: throttle::CommandRates,
    /// CSV exports per caller (ADR 0030).
    pub export_rates: throttle::CommandRates,
    /// Origins allowed to call the API from a browser (none: no CORS headers at all).
    pub cors_origins: Vec<String>,
    /// How fresh the in-memory account view must be to authorize requests.
    pub access: access::AccessConfig,
    /// Who sees the details of `/health/ready` besides ADMIN tokens.
    pub health_details: routes::health::HealthDetails,
    /// The radius and time window of possible duplicates when a request names none.
    pub duplicates: routes::links::DuplicateDefaults,
    /// Commands handled at once, and how long one more waits (ADR 0021).
    pub admission: admission::AdmissionConfig,
    /// The public heatmap leaves out cells with fewer reports than this (k-anonymity,
    /// ADR 0027; default 3).
    pub public_heatmap_min_count: u32,
    /// Where webhooks may be delivered (ADR 0028); push endpoints follow the same rules
    /// (ADR 0032).
    pub webhook_targets: webhook_target::TargetPolicy,
    /// The console map's tile layer (`PRECINCT_MAP_TILES`; default none).
    pub map_tiles: Option<routes::console::MapTiles>,
    /// The server's VAPID public key (base64url) browsers subscribe with; `None`: Web
    /// Push is off and devices cannot be registered (ADR 0032).
    pub vapid_public_key: Option<String>,
}

impl ApiConfig {
    pub fn new(secret: Secret) -> Self {
        Self {
            body_limit: 1024 * 1024,
            token_ttl: Duration::from_secs(15 * 60),
            session_ttl: Duration::from_secs(12 * 3600),
            secret,
            sla_accept: Duration::from_secs(900),
            sla_respond: Duration::from_secs(1800),
            sla_defaults: precinct_domain::sla::SlaDefaults::new(
                Duration::from_secs(900),
                Duration::from_secs(1800),
                None,
                80,
            ),
            login: throttle::LoginPolicy::default(),
            registrations_per_hour: 20,
            invite_accepts_per_hour: 50,
            password_jobs: auth::PasswordJobsConfig::default(),
            trusted_proxies: proxy::TrustedProxies::none(),
            hsts: false,
            metrics_token: None,
            invite_ttl: Duration::from_secs(7 * 24 * 3600),
            live: live::LiveConfig::default(),
            anonymous_reports_per_minute: 20,
            command_rates: throttle::CommandRates::default(),
            log_read_rates: throttle::CommandRates::log_reads(),
            export_rates: throttle::CommandRates::exports(),
            cors_origins: Vec::new(),
            access: access::AccessConfig::default(),
            health_details: routes::health::HealthDetails::Admin,
            duplicates: routes::links::DuplicateDefaults::default(),
            admission: admission::AdmissionConfig::default(),
            public_heatmap_min_count: 3,
            webhook_targets: webhook_target::TargetPolicy::default(),
            map_tiles: None,
            vapid_public_key: None,
        }
    }
}

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub pool: PgPool,
    pub tokens: Tokens,
    pub config: Arc<ApiConfig>,
    pub throttle: throttle::LoginThrottle,
    /// Self-registrations per client address (and other shared windows).
    pub windows: throttle::RateLimiter,
    /// Bounds concurrent argon2id work.
    pub passwords: auth::PasswordJobs,
    /// Anonymous `POST /crimes` per client address.
    pub anonymous_reports: Arc<throttle::RateLimit>,
    /// Commands per account.
    pub commands: Arc<throttle::CommandLimits>,
    /// Log reads of one report (`as_of`, history) per caller.
    pub log_reads: Arc<throttle::LogReadLimits>,
    /// CSV exports per caller.
    pub exports: Arc<throttle::LogReadLimits>,
    pub requests: RequestLogWriter,
    /// Patrol directory and, in a process with the `live` role, the hub.
    pub live: live::Live,
    /// Every account's current role, station and standing (start it with
    /// [`access::AccountDirectory::start`]; until then it reads the log per request).
    pub accounts: access::AccountDirectory,
    /// The highest log position this process has seen every event projection include:
    /// reads that need no more answer without asking the database.
    pub projected: Arc<std::sync::atomic::AtomicU64>,
    /// The admission limit of commands (ADR 0021).
    pub admission: admission::Admission,
    /// The stations routing decides on, kept by the position of the last station
    /// change (ADR 0022).
    pub station_facts: Arc<ports::StationFactsCache>,
    /// The background roles of this process (projectors, SLA worker) that the
    /// operations listener's probes watch (ADR 0025); none unless registered.
    pub workers: ops::Workers,
}

impl AppState {
    pub fn new(app: App, pool: PgPool, config: ApiConfig, requests: RequestLogWriter) -> Self {
        // The account view learns of this process's own changes to accounts at once
        // (ADR 0011).
        let accounts = access::AccountDirectory::new(app.log(), config.access);
        let app = {
            let accounts = accounts.clone();
            app.on_account_change(move |id, position| accounts.changed_here(id, position))
        };
        let tokens = Tokens::new(&config.secret, config.token_ttl);
        let throttle = throttle::LoginThrottle::new(pool.clone(), config.login.clone());
        let windows = throttle::RateLimiter::new(pool.clone());
        let passwords = auth::PasswordJobs::new(config.password_jobs);
        let live = live::Live {
            directory: Arc::new(live::PatrolDirectory::new(
                app.clone(),
                config.live.patrol_cache_ttl,
            )),
            positions: app.log().positions(),
            hub: None,
        };
        let anonymous_reports = Arc::new(throttle::RateLimit::new(
            config.anonymous_reports_per_minute,
            Duration::from_secs(60),
        ));
        let commands = Arc::new(throttle::CommandLimits::new(config.command_rates));
        let log_reads = Arc::new(throttle::LogReadLimits::new(config.log_read_rates));
        let exports = Arc::new(throttle::LogReadLimits::new(config.export_rates));
        let admission = admission::Admission::new(config.admission);
        Self {
            admission,
            station_facts: Default::default(),
            anonymous_reports,
            commands,
            log_reads,
            exports,
            app,
            pool,
            tokens,
            config: Arc::new(config),
            throttle,
            windows,
            passwords,
            requests,
            live,
            accounts,
            projected: Default::default(),
            workers: Default::default(),
        }
    }

    /// Whether the read models include `position`, waiting up to `timeout`; remembers
    /// what it learnt, so the next read at or below it costs no query. (Checkpoints only
    /// move forward, except in `precinct rebuild`: while one runs the read models are
    /// incomplete for every reader, and this process does not wait again for positions
    /// it saw reached before.)
    pub async fn read_models_reach(
        &self,
        position: u64,
        timeout: Duration,
    ) -> Result<bool, precinct_readmodel::QueryError> {
        use std::sync::atomic::Ordering;
        if self.projected.load(Ordering::Relaxed) >= position {
            return Ok(true);
        }
        let reached = precinct_readmodel::wait_for_position(&self.pool, position, timeout).await?;
        if reached {
            self.projected.fetch_max(position, Ordering::Relaxed);
        }
        Ok(reached)
    }

    /// Every projection's progress against its source (`/health/ready`, `/metrics`): the
    /// event projections against the event log, then `request_log` against the request
    /// stream and `patrol_positions` against the positions stream.
    pub async fn projection_status(&self) -> Result<Vec<ProjectionStatus>, StatusError> {
        use precinct_readmodel::names;
        let log = self.app.log();
        let head = log.head().await?;
        let mut all = precinct_readmodel::status(&self.pool, head, |p| log.occurred_at(p)).await?;
        let requests = log.requests_head().await?;
        all.extend(
            precinct_readmodel::status_of(&self.pool, &[names::REQUEST_LOG], requests, |s| {
                log.request_time(s)
            })
            .await?,
        );
        let positions = log.positions();
        let fixes = positions.head().await?;
        all.extend(
            precinct_readmodel::status_of(&self.pool, &[names::PATROL_POSITIONS], fixes, |s| {
                let positions = positions.clone();
                async move { positions.stored_at(s).await.ok().flatten() }
            })
            .await?,
        );
        Ok(all)
    }

    /// Serves the SSE endpoints from `hub` (started with [`live::LiveHub::start`] on
    /// this state's directory).
    pub fn with_live_hub(mut self, hub: live::LiveHub) -> Self {
        self.live.hub = Some(hub);
        self
    }
}

/// Why [`AppState::projection_status`] could not tell.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("event log: {0}")]
    Log(#[from] precinct_eventlog::ReadError),
    #[error("read models: {0}")]
    ReadModel(#[from] precinct_readmodel::QueryError),
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    // The process-wide metrics recorder, before the first request is recorded.
    crate::metrics::handle();
    let router = routes::router()
        .merge(openapi::router())
        .merge(crate::metrics::router())
        .fallback(|| async { problem::ApiError::NotFound })
        .method_not_allowed_fallback(|| async { problem::ApiError::MethodNotAllowed })
        // Inside the request log (a refused request is recorded too), before any
        // handler authenticates or parses anything.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admission::admit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::request_log,
        ))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(cors(&state.config.cors_origins));
    hsts(router, state.config.hsts).with_state(state)
}

/// `Strict-Transport-Security` on every answer when every client connection is HTTPS
/// (served with TLS, or behind a TLS-terminating proxy): browsers then never try plain
/// HTTP for this host for two years.
fn hsts<S: Clone + Send + Sync + 'static>(router: Router<S>, on: bool) -> Router<S> {
    if !on {
        return router;
    }
    router.layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static("max-age=63072000; includeSubDomains"),
    ))
}

/// CORS for the configured origins only; with none configured, no CORS headers are
/// sent and browsers keep other origins out.
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if allowed.is_empty() {
        return tower_http::cors::CorsLayer::new();
    }
    tower_http::cors::CorsLayer::new()
        .allow_origin(allowed)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-min-position"),
            HeaderName::from_static("x-tracking-token"),
            HeaderName::from_static("x-correlation-id"),
            HeaderName::from_static("last-event-id"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

/// Only the live endpoints (and health), for a process with the `live` role and
/// without the `api` role.
pub fn live_router(state: AppState) -> Router {
    crate::metrics::handle();
    let router = routes::health::router()
        .merge(routes::live::router())
        .merge(crate::metrics::router())
        .fallback(|| async { problem::ApiError::NotFound })
        .method_not_allowed_fallback(|| async { problem::ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::request_log,
        ))
        .layer(axum::middleware::from_fn(middleware::security_headers));
    hsts(router, state.config.hsts).with_state(state)
}
