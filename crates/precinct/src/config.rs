//! Configuration from the environment (and flags): one place, secrets never printed.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use precinct_api::auth::Secret;
use precinct_api::live::LiveConfig;
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
}

impl Roles {
    pub const ALL: Roles = Roles {
        api: true,
        projector: true,
        sla: true,
        live: true,
    };

    /// Parses `api,projector,sla,live` (any subset).
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let mut r = Roles {
            api: false,
            projector: false,
            sla: false,
            live: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "api" => r.api = true,
                "projector" => r.projector = true,
                "sla" => r.sla = true,
                "live" => r.live = true,
                "all" => r = Roles::ALL,
                other => bail!("unknown role {other:?} (expected api, projector, sla, live)"),
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
    /// `PRECINCT_ANON_REPORTS_PER_MINUTE` per client address (default 20).
    pub anonymous_reports_per_minute: u32,
    /// `PRECINCT_HEALTH_DETAILS`: `admin` (default: only ADMIN tokens see the details
    /// of `/health/ready`) or `loopback` (also token-less monitors on loopback).
    pub health_details: precinct_api::routes::health::HealthDetails,
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

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
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
        let live_default = LiveConfig::default();
        let live = LiveConfig {
            max_connections: number(
                "PRECINCT_LIVE_MAX_CONNECTIONS",
                live_default.max_connections,
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
        Ok(Config {
            http_addr,
            nats_url: env("NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:14222".into()),
            database_url: env("DATABASE_URL")
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            secret,
            sla_accept: secs("PRECINCT_SLA_ACCEPT_SECS", 900)?,
            sla_respond: secs("PRECINCT_SLA_RESPOND_SECS", 1800)?,
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
            health_details: match env("PRECINCT_HEALTH_DETAILS") {
                Some(v) => v
                    .parse()
                    .map_err(|e| anyhow::anyhow!("PRECINCT_HEALTH_DETAILS: {e}"))?,
                None => Default::default(),
            },
        })
    }
}
