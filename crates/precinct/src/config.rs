//! Configuration from the environment (and flags): one place, secrets never printed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use precinct_api::auth::{PasswordJobsConfig, Secret};
use precinct_api::live::LiveConfig;
use precinct_api::proxy::{ForwardedHeader, TrustedProxies};
use precinct_api::throttle::LoginPolicy;
use precinct_eventlog::LogConfig;
use precinct_projections::RosterOptions;

/// Which parts of the process run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub api: bool,
    pub projector: bool,
    pub sla: bool,
    /// The live hub (one positions and one log consumer) behind the SSE endpoints;
    /// without `api`, the process serves only the live endpoints.
    pub live: bool,
    /// The webhook deliverer (ADR 0028); one process at a time is the active one.
    pub webhooks: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        api: true,
        projector: true,
        sla: true,
        live: true,
        webhooks: true,
    };

    /// Parses `api,projector,sla,live,webhooks` (any subset).
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let mut r = Roles {
            api: false,
            projector: false,
            sla: false,
            live: false,
            webhooks: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "api" => r.api = true,
                "projector" => r.projector = true,
                "sla" => r.sla = true,
                "live" => r.live = true,
                "webhooks" => r.webhooks = true,
                "all" => r = Roles::ALL,
                other => {
                    bail!("unknown role {other:?} (expected api, projector, sla, live, webhooks)")
                }
            }
        }
        Ok(r)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub nats_url: String,
    pub database_url: String,
    pub secret: Secret,
    pub sla_accept: Duration,
    pub sla_respond: Duration,
    /// `PRECINCT_SLA_RESOLVE_SECS` (unset: no resolve deadline by default).
    pub sla_resolve: Option<Duration>,
    /// `PRECINCT_SLA_WARN_PERCENT` (default 80; 0: no warnings by default).
    pub sla_warn_percent: u8,
    /// `PRECINCT_WEBHOOK_*`: the webhook deliverer and the targets it may reach.
    pub webhooks: crate::webhooks::WebhookConfig,
    /// `PRECINCT_SMTP_*`: the reporter mailer (ADR 0033); `None` (no
    /// `PRECINCT_SMTP_URL`): nothing is mailed.
    pub mail: Option<crate::mailer::MailConfig>,
    /// `PRECINCT_VAPID_*` and `PRECINCT_PUSH_*`: Web Push of officer notifications
    /// (its endpoints follow the webhooks' target rules).
    pub push: crate::push::PushConfig,
    /// `PRECINCT_ADMIN_EMAIL` + `PRECINCT_ADMIN_PASSWORD`: make sure that ADMIN exists.
    pub admin: Option<(String, String)>,
    pub log: LogConfig,
    pub roles: Roles,
    pub token_ttl: Duration,
    /// `PRECINCT_LIVE_*`, `PRECINCT_PATROL_CACHE_TTL_SECS`.
    pub live: LiveConfig,
    /// `PRECINCT_ROSTER_POSITION_INTERVAL_SECS`, `PRECINCT_ROSTER_TRACK_INTERVAL_SECS`.
    pub roster: RosterOptions,
    /// `PRECINCT_MASTER_KEY` (`<key-id>:<64 hex>`) and `PRECINCT_MASTER_KEYS_PREVIOUS`:
    /// wrap the per-subject data keys that seal personal data.
    pub master_keys: Option<precinct_vault::MasterKeys>,
    /// `PRECINCT_CORS_ORIGINS`: comma-separated browser origins allowed (default none).
    pub cors_origins: Vec<String>,
    /// `PRECINCT_MAP_TILES`: the console map's tile URL template (default none).
    pub map_tiles: Option<precinct_api::routes::console::MapTiles>,
    /// `PRECINCT_ANON_REPORTS_PER_MINUTE` per client address (default 20).
    pub anonymous_reports_per_minute: u32,
    /// `PRECINCT_HEALTH_DETAILS`: `admin` (default: only ADMIN tokens see the details
    /// of `/health/ready`) or `loopback` (also token-less monitors on loopback).
    pub health_details: precinct_api::routes::health::HealthDetails,
    /// Commands per account: `PRECINCT_CITIZEN_COMMAND_BURST` (default 10) and
    /// `PRECINCT_CITIZEN_COMMANDS_PER_MINUTE` (6) for citizens,
    /// `PRECINCT_STAFF_COMMAND_BURST` (60) and `PRECINCT_STAFF_COMMANDS_PER_MINUTE` (120)
    /// for staff.
    pub command_rates: precinct_api::CommandRates,
    /// `PRECINCT_REGISTRATIONS_PER_HOUR` self-registrations per client address (20).
    pub registrations_per_hour: u32,
    /// `PRECINCT_INVITE_ACCEPTS_PER_HOUR` invite acceptances per client address (50).
    pub invite_accepts_per_hour: u32,
    /// Login throttling; `PRECINCT_LOGIN_FAILURES_PER_ADDRESS` (per hour, 100) sets the
    /// per-address limit of failures, `PRECINCT_LOGINS_PER_ACCOUNT` (20) and
    /// `PRECINCT_LOGINS_PER_ADDRESS` (600) the logins per 10 minutes of one account and
    /// of one client address; the rest are the defaults of ADR 0010.
    pub login: LoginPolicy,
    /// `PRECINCT_PASSWORD_WORKERS` (CPUs) and `PRECINCT_PASSWORD_QUEUE` (32); the share of
    /// one client address and of one account, `PRECINCT_PASSWORD_JOBS_PER_ADDRESS` (a
    /// quarter of workers + queue) and `PRECINCT_PASSWORD_JOBS_PER_ACCOUNT` (an eighth).
    pub password_jobs: PasswordJobsConfig,
    /// `PRECINCT_TRUSTED_PROXIES` (networks) and `PRECINCT_FORWARDED_HEADER`
    /// (`x-forwarded-for` or `forwarded`).
    pub trusted_proxies: TrustedProxies,
    /// `PRECINCT_TLS_CERT` + `PRECINCT_TLS_KEY` (PEM files): serve HTTPS.
    pub tls: Option<TlsFiles>,
    /// `PRECINCT_TLS_HANDSHAKE_TIMEOUT_SECS` (5) and `PRECINCT_TLS_HANDSHAKES_PER_ADDRESS`
    /// (8): how long a TLS handshake may take, and how many one client address may have
    /// under way.
    pub tls_handshakes: crate::tls::HandshakeLimits,
    /// Reads of one report from the log (`as_of`, history) per caller:
    /// `PRECINCT_CITIZEN_LOG_READ_BURST` (10) and `PRECINCT_CITIZEN_LOG_READS_PER_MINUTE`
    /// (20) for citizens and anonymous clients, `PRECINCT_STAFF_LOG_READ_BURST` (30) and
    /// `PRECINCT_STAFF_LOG_READS_PER_MINUTE` (120) for staff.
    pub log_read_rates: precinct_api::CommandRates,
    /// CSV exports per caller (ADR 0030).
    pub export_rates: precinct_api::CommandRates,
    /// `PRECINCT_BEHIND_TLS_PROXY=1`: plain HTTP, but every client reaches this process
    /// through a TLS-terminating proxy (needed to listen on a non-loopback address
    /// without TLS).
    pub behind_tls_proxy: bool,
    /// `PRECINCT_METRICS_TOKEN`: the bearer token of metrics scrapers.
    pub metrics_token: Option<Secret>,
    /// `PRECINCT_DUPLICATE_RADIUS_M` (250) and `PRECINCT_DUPLICATE_WINDOW_MINUTES` (120):
    /// how near in space and time a report is to be listed as a possible duplicate,
    /// when the request names no radius or window.
    pub duplicates: precinct_api::routes::links::DuplicateDefaults,
    /// `PRECINCT_COMMANDS_IN_FLIGHT` (64) write requests handled at once, and
    /// `PRECINCT_COMMAND_QUEUE_WAIT_MS` (50) how long one more waits for a place before
    /// it is answered 503 with `Retry-After` (ADR 0021).
    pub admission: precinct_api::admission::AdmissionConfig,
    /// `PRECINCT_PUBLIC_HEATMAP_MIN_COUNT` (3): the public heatmap leaves out cells with
    /// fewer reports (k-anonymity, ADR 0027); at least 1.
    pub public_heatmap_min_count: u32,
    /// `PRECINCT_OPS_ADDR`: where the operations listener (`/metrics`, `/health/live`,
    /// `/health/ready`) binds; `off` for none. Unset: on at [`DEFAULT_OPS_ADDR`] for a
    /// process with neither the `api` nor the `live` role, off otherwise (ADR 0025).
    pub ops_addr: OpsAddr,
}

/// Where the operations listener of a process without an HTTP API binds by default.
pub const DEFAULT_OPS_ADDR: &str = "0.0.0.0:9464";

/// `PRECINCT_OPS_ADDR` (ADR 0025).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpsAddr {
    /// Unset: [`DEFAULT_OPS_ADDR`] for a process without an HTTP listener, none otherwise.
    Auto,
    /// `off`: no operations listener.
    Off,
    /// An address (port 0: any free port).
    At(SocketAddr),
}

impl OpsAddr {
    /// The value of `PRECINCT_OPS_ADDR` (`None`: unset).
    pub fn parse(value: Option<&str>) -> anyhow::Result<Self> {
        match value.map(str::trim) {
            None | Some("") => Ok(Self::Auto),
            Some(v) if v.eq_ignore_ascii_case("off") => Ok(Self::Off),
            Some(v) => v
                .parse()
                .map(Self::At)
                .with_context(|| format!("PRECINCT_OPS_ADDR must be host:port or off (got {v:?})")),
        }
    }

    /// The address to bind, if any, for a process that does (`serves_http`) or does not
    /// have an HTTP API listener of its own.
    pub fn resolve(self, serves_http: bool) -> Option<SocketAddr> {
        match self {
            Self::At(addr) => Some(addr),
            Self::Off => None,
            Self::Auto if serves_http => None,
            Self::Auto => DEFAULT_OPS_ADDR.parse().ok(),
        }
    }
}

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Refuses to serve plain HTTP on a non-loopback address unless the operator said a
/// TLS-terminating proxy is in front: tokens and passwords would cross the network in
/// clear.
pub fn check_transport(
    addr: SocketAddr,
    tls: Option<&TlsFiles>,
    behind_tls_proxy: bool,
) -> anyhow::Result<()> {
    if tls.is_some() || behind_tls_proxy || addr.ip().to_canonical().is_loopback() {
        return Ok(());
    }
    bail!(
        "refusing to serve plain HTTP on {addr}, a non-loopback address: set \
         PRECINCT_TLS_CERT and PRECINCT_TLS_KEY to serve HTTPS, or PRECINCT_BEHIND_TLS_PROXY=1 \
         if a TLS-terminating proxy is the only way clients reach this process"
    )
}

fn flag(name: &str) -> anyhow::Result<bool> {
    match env(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("0") | Some("false") | Some("no") => Ok(false),
        Some("1") | Some("true") | Some("yes") => Ok(true),
        Some(other) => bail!("{name} must be 1 or 0 (got {other:?})"),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn number(name: &str, default: usize) -> anyhow::Result<usize> {
    match env(name) {
        Some(v) => v
            .parse()
            .with_context(|| format!("{name} must be a number")),
        None => Ok(default),
    }
}

fn count(name: &str, default: u32) -> anyhow::Result<u32> {
    match env(name) {
        Some(v) => v
            .parse()
            .with_context(|| format!("{name} must be a whole number")),
        None => Ok(default),
    }
}

fn secs(name: &str, default: u64) -> anyhow::Result<Duration> {
    match env(name) {
        Some(v) => {
            Ok(Duration::from_secs(v.parse().with_context(|| {
                format!("{name} must be a number of seconds")
            })?))
        }
        None => Ok(Duration::from_secs(default)),
    }
}

/// `PRECINCT_SLA_WARN_PERCENT`: 0..=99 (ADR 0035).
fn warn_percent() -> anyhow::Result<u8> {
    let p = count("PRECINCT_SLA_WARN_PERCENT", 80)?;
    match u8::try_from(p) {
        Ok(p) if p <= precinct_domain::sla::MAX_WARN_PERCENT => Ok(p),
        _ => anyhow::bail!("PRECINCT_SLA_WARN_PERCENT must be 0..=99 (0: no warnings)"),
    }
}

impl Config {
    /// The SLA defaults every station's policy falls back on (ADR 0035).
    pub fn sla_defaults(&self) -> precinct_domain::sla::SlaDefaults {
        precinct_domain::sla::SlaDefaults::new(
            self.sla_accept,
            self.sla_respond,
            self.sla_resolve,
            self.sla_warn_percent,
        )
    }
}

fn millis(name: &str, default: u64) -> anyhow::Result<Duration> {
    match env(name) {
        Some(v) => Ok(Duration::from_millis(v.parse().with_context(|| {
            format!("{name} must be a number of milliseconds")
        })?)),
        None => Ok(Duration::from_millis(default)),
    }
}

/// `PRECINCT_WEBHOOK_*` (docs/operations.md).
fn webhook_config() -> anyhow::Result<crate::webhooks::WebhookConfig> {
    let d = crate::webhooks::WebhookConfig::default();
    let config = crate::webhooks::WebhookConfig {
        targets: precinct_api::webhook_target::TargetPolicy {
            allow_http: flag("PRECINCT_WEBHOOK_ALLOW_HTTP")?,
            allow: precinct_api::webhook_target::TargetPolicy::parse_allow(
                &env("PRECINCT_WEBHOOK_ALLOW").unwrap_or_default(),
            ),
        },
        timeout: millis("PRECINCT_WEBHOOK_TIMEOUT_MS", d.timeout.as_millis() as u64)?,
        max_failures: count("PRECINCT_WEBHOOK_MAX_FAILURES", d.max_failures)?,
        retry_first: millis(
            "PRECINCT_WEBHOOK_RETRY_FIRST_MS",
            d.retry_first.as_millis() as u64,
        )?,
        retry_max: millis(
            "PRECINCT_WEBHOOK_RETRY_MAX_MS",
            d.retry_max.as_millis() as u64,
        )?,
    };
    if config.timeout.is_zero() || config.max_failures == 0 || config.retry_first.is_zero() {
        bail!("PRECINCT_WEBHOOK_TIMEOUT_MS, PRECINCT_WEBHOOK_MAX_FAILURES and PRECINCT_WEBHOOK_RETRY_FIRST_MS must be at least 1");
    }
    Ok(config)
}

/// `PRECINCT_SMTP_*` (docs/operations.md): `None` when `PRECINCT_SMTP_URL` is unset.
fn mail_config() -> anyhow::Result<Option<crate::mailer::MailConfig>> {
    let Some(url) = env("PRECINCT_SMTP_URL") else {
        return Ok(None);
    };
    let from = env("PRECINCT_SMTP_FROM")
        .context("PRECINCT_SMTP_FROM must be set with PRECINCT_SMTP_URL")?;
    let d = crate::mailer::MailConfig::new(&url, &from)?;
    let config = crate::mailer::MailConfig {
        timeout: millis("PRECINCT_SMTP_TIMEOUT_MS", d.timeout.as_millis() as u64)?,
        max_attempts: count("PRECINCT_SMTP_MAX_ATTEMPTS", d.max_attempts)?,
        retry_first: millis(
            "PRECINCT_SMTP_RETRY_FIRST_MS",
            d.retry_first.as_millis() as u64,
        )?,
        retry_max: millis("PRECINCT_SMTP_RETRY_MAX_MS", d.retry_max.as_millis() as u64)?,
        ..d
    };
    if config.timeout.is_zero() || config.max_attempts == 0 || config.retry_first.is_zero() {
        bail!("PRECINCT_SMTP_TIMEOUT_MS, PRECINCT_SMTP_MAX_ATTEMPTS and PRECINCT_SMTP_RETRY_FIRST_MS must be at least 1");
    }
    Ok(Some(config))
}

/// `PRECINCT_VAPID_*` and `PRECINCT_PUSH_*` (docs/operations.md); endpoints follow the
/// webhooks' target rules.
fn push_config(
    webhooks: &crate::webhooks::WebhookConfig,
) -> anyhow::Result<crate::push::PushConfig> {
    let d = crate::push::PushConfig::default();
    let vapid = match env("PRECINCT_VAPID_PRIVATE_KEY") {
        Some(key) => Some(crate::push::Vapid::parse(
            &key,
            &env("PRECINCT_VAPID_SUBJECT")
                .unwrap_or_else(|| "mailto:operator@precinct.invalid".into()),
        )?),
        None => {
            tracing::warn!(
                "PRECINCT_VAPID_PRIVATE_KEY is not set: Web Push is off (devices cannot be \
                 registered and officers are not notified)"
            );
            None
        }
    };
    let config = crate::push::PushConfig {
        vapid,
        targets: webhooks.targets.clone(),
        timeout: millis("PRECINCT_PUSH_TIMEOUT_MS", d.timeout.as_millis() as u64)?,
        max_attempts: count("PRECINCT_PUSH_MAX_ATTEMPTS", d.max_attempts)?,
        ttl: secs("PRECINCT_PUSH_TTL_SECS", d.ttl.as_secs())?,
        ..d
    };
    if config.timeout.is_zero() || config.max_attempts == 0 || config.ttl.is_zero() {
        bail!("PRECINCT_PUSH_TIMEOUT_MS, PRECINCT_PUSH_MAX_ATTEMPTS and PRECINCT_PUSH_TTL_SECS must be at least 1");
    }
    Ok(config)
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let webhooks = webhook_config()?;
        let http_addr = env("PRECINCT_HTTP_ADDR")
            .unwrap_or_else(|| "127.0.0.1:8080".into())
            .parse()
            .context("PRECINCT_HTTP_ADDR must be host:port")?;
        let secret = match env("PRECINCT_JWT_SECRET") {
            Some(s) if s.len() >= 32 => Secret::new(s.into_bytes()),
            Some(_) => bail!("PRECINCT_JWT_SECRET must be at least 32 bytes"),
            None => {
                tracing::warn!(
                    "PRECINCT_JWT_SECRET is not set: using a random secret (tokens die with the process)"
                );
                let bytes: [u8; 32] = rand::random();
                Secret::new(hex::encode(bytes).into_bytes())
            }
        };
        let mut log = match env("PRECINCT_STREAM_PREFIX") {
            Some(p) => LogConfig::isolated(&p),
            None => LogConfig::default(),
        };
        if let Some(r) = env("PRECINCT_NATS_REPLICAS") {
            log.replicas = r
                .parse()
                .context("PRECINCT_NATS_REPLICAS must be a number")?;
        }
        log.positions_max_age = secs(
            "PRECINCT_POSITIONS_MAX_AGE_SECS",
            log.positions_max_age.as_secs(),
        )?;
        log.stream_cache_bytes = number(
            "PRECINCT_STREAM_CACHE_BYTES",
            usize::try_from(log.stream_cache_bytes).unwrap_or(usize::MAX),
        )? as u64;
        let live_default = LiveConfig::default();
        let live = LiveConfig {
            max_connections: number(
                "PRECINCT_LIVE_MAX_CONNECTIONS",
                live_default.max_connections,
            )?,
            max_streams_per_account: number(
                "PRECINCT_LIVE_MAX_STREAMS_PER_ACCOUNT",
                live_default.max_streams_per_account,
            )?,
            client_buffer: number("PRECINCT_LIVE_CLIENT_BUFFER", live_default.client_buffer)?,
            keep_alive: secs(
                "PRECINCT_LIVE_KEEPALIVE_SECS",
                live_default.keep_alive.as_secs(),
            )?,
            patrol_cache_ttl: secs(
                "PRECINCT_PATROL_CACHE_TTL_SECS",
                live_default.patrol_cache_ttl.as_secs(),
            )?,
            ..live_default
        };
        let rates = precinct_api::CommandRates::default();
        let command_rates = precinct_api::CommandRates {
            citizen: precinct_api::CommandRate {
                burst: count("PRECINCT_CITIZEN_COMMAND_BURST", rates.citizen.burst)?,
                per_minute: count(
                    "PRECINCT_CITIZEN_COMMANDS_PER_MINUTE",
                    rates.citizen.per_minute,
                )?,
            },
            staff: precinct_api::CommandRate {
                burst: count("PRECINCT_STAFF_COMMAND_BURST", rates.staff.burst)?,
                per_minute: count("PRECINCT_STAFF_COMMANDS_PER_MINUTE", rates.staff.per_minute)?,
            },
        };
        let reads = precinct_api::CommandRates::log_reads();
        let log_read_rates = precinct_api::CommandRates {
            citizen: precinct_api::CommandRate {
                burst: count("PRECINCT_CITIZEN_LOG_READ_BURST", reads.citizen.burst)?,
                per_minute: count(
                    "PRECINCT_CITIZEN_LOG_READS_PER_MINUTE",
                    reads.citizen.per_minute,
                )?,
            },
            staff: precinct_api::CommandRate {
                burst: count("PRECINCT_STAFF_LOG_READ_BURST", reads.staff.burst)?,
                per_minute: count(
                    "PRECINCT_STAFF_LOG_READS_PER_MINUTE",
                    reads.staff.per_minute,
                )?,
            },
        };
        let exports = precinct_api::CommandRates::exports();
        let export_rates = precinct_api::CommandRates {
            citizen: precinct_api::CommandRate {
                burst: count("PRECINCT_CITIZEN_EXPORT_BURST", exports.citizen.burst)?,
                per_minute: count(
                    "PRECINCT_CITIZEN_EXPORTS_PER_MINUTE",
                    exports.citizen.per_minute,
                )?,
            },
            staff: precinct_api::CommandRate {
                burst: count("PRECINCT_STAFF_EXPORT_BURST", exports.staff.burst)?,
                per_minute: count(
                    "PRECINCT_STAFF_EXPORTS_PER_MINUTE",
                    exports.staff.per_minute,
                )?,
            },
        };
        let handshakes = crate::tls::HandshakeLimits::default();
        let tls_handshakes = crate::tls::HandshakeLimits {
            timeout: secs(
                "PRECINCT_TLS_HANDSHAKE_TIMEOUT_SECS",
                handshakes.timeout.as_secs(),
            )?,
            per_address: number(
                "PRECINCT_TLS_HANDSHAKES_PER_ADDRESS",
                handshakes.per_address,
            )?,
        };
        if tls_handshakes.timeout.is_zero() || tls_handshakes.per_address == 0 {
            bail!("PRECINCT_TLS_HANDSHAKE_TIMEOUT_SECS and PRECINCT_TLS_HANDSHAKES_PER_ADDRESS must be at least 1");
        }
        let roster_default = RosterOptions::default();
        let roster = RosterOptions {
            location_interval: secs(
                "PRECINCT_ROSTER_POSITION_INTERVAL_SECS",
                roster_default.location_interval.as_secs(),
            )?,
            track_interval: secs(
                "PRECINCT_ROSTER_TRACK_INTERVAL_SECS",
                roster_default.track_interval.as_secs(),
            )?,
            ..roster_default
        };
        let defaults = precinct_api::routes::links::DuplicateDefaults::default();
        let duplicates = precinct_api::routes::links::DuplicateDefaults::new(
            count("PRECINCT_DUPLICATE_RADIUS_M", defaults.radius_m)?,
            count("PRECINCT_DUPLICATE_WINDOW_MINUTES", defaults.window_minutes)?,
        )
        .map_err(|e| {
            anyhow::anyhow!("PRECINCT_DUPLICATE_RADIUS_M / PRECINCT_DUPLICATE_WINDOW_MINUTES: {e}")
        })?;
        Ok(Config {
            http_addr,
            duplicates,
            nats_url: env("NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:14222".into()),
            database_url: env("DATABASE_URL")
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            secret,
            sla_accept: secs("PRECINCT_SLA_ACCEPT_SECS", 900)?,
            sla_respond: secs("PRECINCT_SLA_RESPOND_SECS", 1800)?,
            sla_resolve: match env("PRECINCT_SLA_RESOLVE_SECS") {
                Some(_) => Some(secs("PRECINCT_SLA_RESOLVE_SECS", 0)?),
                None => None,
            },
            sla_warn_percent: warn_percent()?,
            webhooks: webhooks.clone(),
            mail: mail_config()?,
            push: push_config(&webhooks)?,
            admin: match (env("PRECINCT_ADMIN_EMAIL"), env("PRECINCT_ADMIN_PASSWORD")) {
                (Some(e), Some(p)) => Some((e, p)),
                _ => None,
            },
            log,
            roles: Roles::ALL,
            token_ttl: secs("PRECINCT_TOKEN_TTL_SECS", 900)?,
            live,
            roster,
            master_keys: match env("PRECINCT_MASTER_KEY") {
                Some(current) => Some(
                    precinct_vault::MasterKeys::parse(
                        &current,
                        &env("PRECINCT_MASTER_KEYS_PREVIOUS").unwrap_or_default(),
                    )
                    .context("PRECINCT_MASTER_KEY")?,
                ),
                None => None,
            },
            map_tiles: env("PRECINCT_MAP_TILES")
                .map(|t| precinct_api::routes::console::MapTiles::parse(t.trim()))
                .transpose()
                .map_err(anyhow::Error::msg)?,
            cors_origins: env("PRECINCT_CORS_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|o| o.trim().to_string())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            anonymous_reports_per_minute: match env("PRECINCT_ANON_REPORTS_PER_MINUTE") {
                Some(v) => v
                    .parse()
                    .context("PRECINCT_ANON_REPORTS_PER_MINUTE must be a number")?,
                None => 20,
            },
            command_rates,
            log_read_rates,
            export_rates,
            tls_handshakes,
            registrations_per_hour: number("PRECINCT_REGISTRATIONS_PER_HOUR", 20)?
                .try_into()
                .context("PRECINCT_REGISTRATIONS_PER_HOUR is too large")?,
            invite_accepts_per_hour: number("PRECINCT_INVITE_ACCEPTS_PER_HOUR", 50)?
                .try_into()
                .context("PRECINCT_INVITE_ACCEPTS_PER_HOUR is too large")?,
            login: LoginPolicy {
                address_max_failures: number(
                    "PRECINCT_LOGIN_FAILURES_PER_ADDRESS",
                    LoginPolicy::default().address_max_failures as usize,
                )?
                .try_into()
                .context("PRECINCT_LOGIN_FAILURES_PER_ADDRESS is too large")?,
                account_max_logins: number(
                    "PRECINCT_LOGINS_PER_ACCOUNT",
                    LoginPolicy::default().account_max_logins as usize,
                )?
                .try_into()
                .context("PRECINCT_LOGINS_PER_ACCOUNT is too large")?,
                address_max_logins: number(
                    "PRECINCT_LOGINS_PER_ADDRESS",
                    LoginPolicy::default().address_max_logins as usize,
                )?
                .try_into()
                .context("PRECINCT_LOGINS_PER_ADDRESS is too large")?,
                ..LoginPolicy::default()
            },
            password_jobs: {
                let sized = PasswordJobsConfig::new(
                    number(
                        "PRECINCT_PASSWORD_WORKERS",
                        PasswordJobsConfig::default().workers,
                    )?,
                    number(
                        "PRECINCT_PASSWORD_QUEUE",
                        PasswordJobsConfig::default().queue,
                    )?,
                );
                PasswordJobsConfig {
                    per_address: number("PRECINCT_PASSWORD_JOBS_PER_ADDRESS", sized.per_address)?,
                    per_account: number("PRECINCT_PASSWORD_JOBS_PER_ACCOUNT", sized.per_account)?,
                    ..sized
                }
            },
            trusted_proxies: TrustedProxies::new(
                TrustedProxies::parse_nets(&env("PRECINCT_TRUSTED_PROXIES").unwrap_or_default())
                    .map_err(|e| anyhow::anyhow!("PRECINCT_TRUSTED_PROXIES: {e}"))?,
                match env("PRECINCT_FORWARDED_HEADER") {
                    Some(h) => h
                        .parse::<ForwardedHeader>()
                        .map_err(|e| anyhow::anyhow!("PRECINCT_FORWARDED_HEADER: {e}"))?,
                    None => ForwardedHeader::default(),
                },
            ),
            tls: match (env("PRECINCT_TLS_CERT"), env("PRECINCT_TLS_KEY")) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: cert.into(),
                    key: key.into(),
                }),
                (None, None) => None,
                _ => bail!("set both PRECINCT_TLS_CERT and PRECINCT_TLS_KEY, or neither"),
            },
            behind_tls_proxy: flag("PRECINCT_BEHIND_TLS_PROXY")?,
            metrics_token: match env("PRECINCT_METRICS_TOKEN") {
                Some(t) if t.len() >= 16 => Some(Secret::new(t.into_bytes())),
                Some(_) => bail!("PRECINCT_METRICS_TOKEN must be at least 16 characters"),
                None => None,
            },
            health_details: match env("PRECINCT_HEALTH_DETAILS") {
                Some(v) => v
                    .parse()
                    .map_err(|e| anyhow::anyhow!("PRECINCT_HEALTH_DETAILS: {e}"))?,
                None => Default::default(),
            },
            admission: {
                let d = precinct_api::admission::AdmissionConfig::default();
                precinct_api::admission::AdmissionConfig {
                    in_flight: match number("PRECINCT_COMMANDS_IN_FLIGHT", d.in_flight)? {
                        0 => bail!("PRECINCT_COMMANDS_IN_FLIGHT must be at least 1"),
                        n => n,
                    },
                    queue_wait: Duration::from_millis(number(
                        "PRECINCT_COMMAND_QUEUE_WAIT_MS",
                        d.queue_wait.as_millis() as usize,
                    )? as u64),
                }
            },
            ops_addr: OpsAddr::parse(env("PRECINCT_OPS_ADDR").as_deref())?,
            public_heatmap_min_count: match number("PRECINCT_PUBLIC_HEATMAP_MIN_COUNT", 3)? {
                0 => bail!("PRECINCT_PUBLIC_HEATMAP_MIN_COUNT must be at least 1"),
                n => u32::try_from(n).map_err(|_| {
                    anyhow::anyhow!("PRECINCT_PUBLIC_HEATMAP_MIN_COUNT is too large")
                })?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operations_listener_is_on_by_default_only_without_an_http_api() {
        let default: SocketAddr = DEFAULT_OPS_ADDR.parse().expect("default");
        let auto = OpsAddr::parse(None).expect("unset");
        assert_eq!(auto, OpsAddr::Auto);
        assert_eq!(auto.resolve(false), Some(default));
        assert_eq!(auto.resolve(true), None);
        let off = OpsAddr::parse(Some("OFF")).expect("off");
        assert_eq!(off.resolve(false), None);
        let at = OpsAddr::parse(Some("127.0.0.1:0")).expect("addr");
        let local: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        assert_eq!(at.resolve(true), Some(local));
        assert_eq!(at.resolve(false), Some(local));
        let err = OpsAddr::parse(Some("9464"))
            .expect_err("no host")
            .to_string();
        assert!(err.contains("PRECINCT_OPS_ADDR"), "{err}");
    }

    #[test]
    fn plain_http_is_refused_on_non_loopback_addresses_unless_behind_a_tls_proxy() {
        let tls = TlsFiles {
            cert: "cert.pem".into(),
            key: "key.pem".into(),
        };
        for loopback in ["127.0.0.1:8080", "[::1]:8080", "127.9.9.9:0"] {
            let a: SocketAddr = loopback.parse().expect("addr");
            assert!(check_transport(a, None, false).is_ok(), "{a}");
        }
        for open in ["0.0.0.0:8080", "[::]:8080", "10.1.2.3:443"] {
            let a: SocketAddr = open.parse().expect("addr");
            let err = check_transport(a, None, false).expect_err(open).to_string();
            assert!(
                err.contains("PRECINCT_TLS_CERT") && err.contains("PRECINCT_BEHIND_TLS_PROXY"),
                "{err}"
            );
            assert!(check_transport(a, Some(&tls), false).is_ok());
            assert!(check_transport(a, None, true).is_ok());
        }
    }
}
