//! Configuration from the environment (and flags): one place, secrets never printed.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use precinct_api::auth::Secret;
use precinct_eventlog::LogConfig;

/// Which parts of the process run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub api: bool,
    pub projector: bool,
    pub sla: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        api: true,
        projector: true,
        sla: true,
    };

    /// Parses `api,projector,sla` (any subset).
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let mut r = Roles {
            api: false,
            projector: false,
            sla: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "api" => r.api = true,
                "projector" => r.projector = true,
                "sla" => r.sla = true,
                "all" => r = Roles::ALL,
                other => bail!("unknown role {other:?} (expected api, projector, sla)"),
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
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
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
        })
    }
}
