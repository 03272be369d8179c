//! A Precinct process per test: `precinct::server::start` on 127.0.0.1:0 against the
//! shared NATS (fresh stream prefix) and a fresh PostgreSQL database, driven over HTTP
//! through the shared [`Client`] (the methods here panic where a test would fail).

use std::time::Duration;

use anyhow::Context;
use precinct::{server, Config, Roles};
use precinct_api::auth::Secret;
use precinct_eventlog::{EventLog, LogConfig};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use crate::client::Res;
use crate::client::{Call, Client, NewReport, Role};
pub use crate::world::PASSWORD;
use crate::world::{Builder, Spec, World};

pub const ADMIN_EMAIL: &str = "admin@precinct.test";
pub const ADMIN_PASSWORD: &str = "correct horse battery";
/// The metrics scrapers' bearer token of every test process.
pub const METRICS_TOKEN: &str = "test-metrics-scraper-token";

/// The VAPID private key of every test process (base64url of a raw P-256 key; the
/// `web-push` crate's documented example key, never a production one).
pub const TEST_VAPID_KEY: &str = "IQ9Ur0ykXoHS9gzfYX0aBjy9lvdrjx_PFUXmie9YRcY";
/// The VAPID subject of every test process.
pub const TEST_VAPID_SUBJECT: &str = "mailto:ops@precinct.test";

/// Knobs a test may turn before spawning.
#[derive(Debug, Clone)]
pub struct Options {
    pub sla_accept: Duration,
    pub sla_respond: Duration,
    /// `PRECINCT_SLA_RESOLVE_SECS` (default unset).
    pub sla_resolve: Option<Duration>,
    /// `PRECINCT_SLA_WARN_PERCENT` (default 80).
    pub sla_warn_percent: u8,
    pub roles: Roles,
    pub nats_url: String,
    pub live: precinct_api::live::LiveConfig,
    pub roster: precinct_projections::RosterOptions,
    pub anonymous_reports_per_minute: u32,
    pub health_details: precinct_api::routes::health::HealthDetails,
    /// `<id>:<64 hex>` (as `PRECINCT_MASTER_KEY`), for a test that runs the `precinct`
    /// binary on the same log; `None`: a random key.
    pub master_key: Option<String>,
    /// Commands per account; the default here is far above any test's pace (a test of
    /// the limit sets the production sizes, `CommandRates::default()`).
    pub command_rates: precinct_api::CommandRates,
    /// Reads of one report from the log (`as_of`, history) per caller; far above any
    /// test's pace by default too (a test of the limit sets
    /// `CommandRates::log_reads()`).
    pub log_read_rates: precinct_api::CommandRates,
    /// CSV exports per caller; far above any test's pace by default too (a test of the
    /// limit sets `CommandRates::exports()`).
    pub export_rates: precinct_api::CommandRates,
    pub registrations_per_hour: u32,
    pub invite_accepts_per_hour: u32,
    /// Login failures per client address per hour (at accounts it never logged in to).
    pub login_failures_per_address: u32,
    /// Logins per account, and per client address, per 10 minutes (tests log in often;
    /// a test of the limits sets the production sizes, `LoginPolicy::default()`).
    pub logins_per_account: u32,
    pub logins_per_address: u32,
    /// Concurrent argon2id jobs, and how many may wait.
    pub password_workers: usize,
    pub password_queue: usize,
    /// Networks whose `X-Forwarded-For` is believed (comma-separated; tests send it from
    /// loopback to act as several clients: [`Options::behind_loopback_proxy`]).
    pub trusted_proxies: &'static str,
    pub tls: Option<precinct::TlsFiles>,
    /// Commands handled at once and the queue wait (ADR 0021); production sizes by
    /// default.
    pub admission: precinct_api::admission::AdmissionConfig,
    /// The webhook deliverer: plain HTTP and 127.0.0.1 allowed (the tests' receivers),
    /// short pauses between attempts.
    pub webhooks: precinct::webhooks::WebhookConfig,
    /// The reporter mailer (`None`: no SMTP, nothing mailed).
    pub mail: Option<precinct::mailer::MailConfig>,
    /// The push deliverer: a test VAPID key ([`TEST_VAPID_KEY`]), plain HTTP and
    /// 127.0.0.1 allowed, short pauses between attempts.
    pub push: precinct::push::PushConfig,
}

impl Options {
    /// Loopback is a trusted proxy: `X-Forwarded-For` says which client a request is from.
    pub fn behind_loopback_proxy() -> Self {
        Self {
            trusted_proxies: "127.0.0.1/32, ::1/128",
            ..Self::default()
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sla_accept: Duration::from_secs(900),
            sla_respond: Duration::from_secs(1800),
            sla_resolve: None,
            sla_warn_percent: 80,
            roles: Roles::ALL,
            nats_url: crate::nats::shared_url(),
            live: Default::default(),
            roster: Default::default(),
            anonymous_reports_per_minute: 1000,
            health_details: Default::default(),
            master_key: None,
            command_rates: precinct_api::CommandRates {
                citizen: precinct_api::CommandRate {
                    burst: 1_000_000,
                    per_minute: 1_000_000,
                },
                staff: precinct_api::CommandRate {
                    burst: 1_000_000,
                    per_minute: 1_000_000,
                },
            },
            log_read_rates: precinct_api::CommandRates {
                citizen: precinct_api::CommandRate {
                    burst: 1_000_000,
                    per_minute: 1_000_000,
                },
                staff: precinct_api::CommandRate {
                    burst: 1_000_000,
                    per_minute: 1_000_000,
                },
            },
            export_rates: precinct_api::CommandRates {
                citizen: precinct_api::CommandRate {
                    burst: 1_000_000,
                    per_minute: 1_000_000,
                },
                staff: precinct_api::CommandRate {
                    burst: 1_000_000,
                    per_minute: 1_000_000,
                },
            },
            // Tests register many citizens from 127.0.0.1.
            registrations_per_hour: 100_000,
            invite_accepts_per_hour: 100_000,
            login_failures_per_address: precinct_api::throttle::LoginPolicy::default()
                .address_max_failures,
            logins_per_account: 100_000,
            logins_per_address: 100_000,
            password_workers: precinct_api::auth::PasswordJobsConfig::default().workers,
            password_queue: precinct_api::auth::PasswordJobsConfig::default().queue,
            trusted_proxies: "",
            tls: None,
            admission: Default::default(),
            webhooks: precinct::webhooks::WebhookConfig {
                targets: precinct_api::webhook_target::TargetPolicy {
                    allow_http: true,
                    allow: vec!["127.0.0.1".into()],
                },
                timeout: Duration::from_secs(2),
                max_failures: 10,
                retry_first: Duration::from_millis(50),
                retry_max: Duration::from_millis(200),
            },
            mail: None,
            push: precinct::push::PushConfig {
                vapid: Some(
                    precinct::push::Vapid::parse(TEST_VAPID_KEY, TEST_VAPID_SUBJECT)
                        .expect("the test VAPID key parses"),
                ),
                targets: precinct_api::webhook_target::TargetPolicy {
                    allow_http: true,
                    allow: vec!["127.0.0.1".into()],
                },
                timeout: Duration::from_secs(2),
                max_attempts: 5,
                retry_first: Duration::from_millis(50),
                retry_max: Duration::from_millis(200),
                ttl: Duration::from_secs(3600),
            },
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub pool: PgPool,
    pub log: EventLog,
    pub database_url: String,
    pub prefix: String,
    pub config: Config,
    shutdown: CancellationToken,
    running: Option<server::Running>,
}

impl TestApp {
    pub async fn spawn() -> anyhow::Result<Self> {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(opts: Options) -> anyhow::Result<Self> {
        let (_, database_url) = crate::pg::fresh_database().await?;
        let prefix = crate::unique_prefix();
        let mut log = LogConfig::isolated(&prefix);
        // The cluster suite runs the same tests with the streams at 3 replicas.
        if let Some(r) = std::env::var("PRECINCT_TEST_NATS_REPLICAS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            log.replicas = r;
        }
        let config = Config {
            http_addr: "127.0.0.1:0".parse()?,
            nats_url: opts.nats_url.clone(),
            database_url: database_url.clone(),
            secret: Secret::new(format!("test-secret-{prefix}-0123456789abcdef").into_bytes()),
            sla_accept: opts.sla_accept,
            sla_respond: opts.sla_respond,
            sla_resolve: opts.sla_resolve,
            sla_warn_percent: opts.sla_warn_percent,
            webhooks: opts.webhooks,
            mail: opts.mail,
            push: opts.push,
            admin: Some((ADMIN_EMAIL.into(), ADMIN_PASSWORD.into())),
            log,
            roles: opts.roles,
            token_ttl: Duration::from_secs(900),
            live: opts.live,
            roster: opts.roster,
            master_keys: Some(match &opts.master_key {
                Some(key) => precinct_vault::MasterKeys::parse(key, "")
                    .map_err(|e| anyhow::anyhow!("master key: {e}"))?,
                None => precinct_vault::MasterKeys::random("test-k1"),
            }),
            cors_origins: vec!["https://dispatch.precinct.test".into()],
            map_tiles: None,
            anonymous_reports_per_minute: opts.anonymous_reports_per_minute,
            health_details: opts.health_details,
            command_rates: opts.command_rates,
            log_read_rates: opts.log_read_rates,
            export_rates: opts.export_rates,
            registrations_per_hour: opts.registrations_per_hour,
            invite_accepts_per_hour: opts.invite_accepts_per_hour,
            login: precinct_api::throttle::LoginPolicy {
                address_max_failures: opts.login_failures_per_address,
                account_max_logins: opts.logins_per_account,
                address_max_logins: opts.logins_per_address,
                ..Default::default()
            },
            password_jobs: precinct_api::auth::PasswordJobsConfig::new(
                opts.password_workers,
                opts.password_queue,
            ),
            trusted_proxies: precinct_api::proxy::TrustedProxies::new(
                precinct_api::proxy::TrustedProxies::parse_nets(opts.trusted_proxies)
                    .map_err(anyhow::Error::msg)?,
                precinct_api::proxy::ForwardedHeader::XForwardedFor,
            ),
            tls: opts.tls,
            tls_handshakes: Default::default(),
            behind_tls_proxy: false,
            duplicates: Default::default(),
            metrics_token: Some(Secret::new(METRICS_TOKEN.as_bytes().to_vec())),
            admission: opts.admission,
            // The in-process tests probe the API listener; the operations listener is
            // tested through the binary (tests/e2e/ops.rs).
            ops_addr: precinct::OpsAddr::Off,
            public_heatmap_min_count: 3,
        };
        Self::start(config, prefix, database_url).await
    }

    /// Starts (or restarts) a process with `config`.
    pub async fn start(
        config: Config,
        prefix: String,
        database_url: String,
    ) -> anyhow::Result<Self> {
        let shutdown = CancellationToken::new();
        let running = server::start(config.clone(), shutdown.clone())
            .await
            .context("start precinct")?;
        let base = running
            .addr
            .map(|a| format!("http://{a}"))
            .unwrap_or_default();
        Ok(Self {
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()?,
            pool: running.pool.clone(),
            log: running.log.clone(),
            database_url,
            prefix,
            config,
            shutdown,
            running: Some(running),
        })
    }

    /// Graceful stop; waits for every role to finish.
    pub async fn stop(mut self) -> anyhow::Result<(Config, String, String)> {
        self.shutdown.cancel();
        if let Some(r) = self.running.take() {
            r.wait().await?;
        }
        Ok((
            self.config.clone(),
            self.prefix.clone(),
            self.database_url.clone(),
        ))
    }

    /// The typed client of this process.
    pub fn client(&self) -> Client {
        Client::new(self.base.clone(), self.http.clone())
    }

    /// Sends `call`; panics only when no answer arrived.
    pub async fn send(&self, call: &Call, token: Option<&str>) -> Res {
        self.client().send(call, token).await.expect("HTTP request")
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Res {
        let call = headers
            .iter()
            .fold(Call::new(method, path, body), |c, (k, v)| c.header(k, *v));
        self.send(&call, token).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Res {
        self.call(Method::POST, path, token, Some(body), &[]).await
    }
    pub async fn get(&self, path: &str, token: Option<&str>) -> Res {
        self.call(Method::GET, path, token, None, &[]).await
    }
    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Res {
        self.call(Method::PATCH, path, token, Some(body), &[]).await
    }
    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Res {
        self.call(Method::PUT, path, token, Some(body), &[]).await
    }
    pub async fn delete(&self, path: &str, token: Option<&str>) -> Res {
        self.call(Method::DELETE, path, token, None, &[]).await
    }

    /// A GET that waits for the read models to include `position`.
    pub async fn get_at(&self, path: &str, token: Option<&str>, position: u64) -> Res {
        self.send(&Call::get(path).min_position(position), token)
            .await
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        match self.client().login(email, password).await {
            Ok(session) => session.token,
            Err(e) => panic!("{e:#}"),
        }
    }

    pub async fn admin(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Builds `spec` (see [`World::build`]) as the ADMIN.
    pub async fn world(&self, spec: &Spec) -> World {
        let client = self.client();
        let built = async {
            let b = Builder::new(&client, ADMIN_EMAIL, ADMIN_PASSWORD, "precinct.test").await?;
            World::build(&b, spec).await
        };
        built.await.unwrap_or_else(|e| panic!("world: {e:#}"))
    }

    /// Sends a call that must answer 201 Created; its answer.
    async fn created(&self, call: Call, token: Option<&str>) -> Res {
        let r = self.send(&call, token).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r
    }

    /// A precinct covering a square around (lat, lon) of ±0.05°.
    pub async fn precinct(&self, admin: &str, name: &str, lat: f64, lon: f64) -> String {
        let r = self
            .created(Call::precinct(name, lat, lon), Some(admin))
            .await;
        // Routing reads stations from the read model.
        self.caught_up(r.position()).await;
        r.id()
    }

    pub async fn division(&self, admin: &str, name: &str, keywords: &[&str]) -> String {
        let r = self
            .created(Call::division(name, keywords), Some(admin))
            .await;
        self.caught_up(r.position()).await;
        r.id()
    }

    /// Registers an account (as ADMIN when a role/station is given) and logs in.
    pub async fn account(
        &self,
        admin: &str,
        role: &str,
        station: Option<&str>,
    ) -> (String, String) {
        let role: Role = role.parse().unwrap_or_else(|e| panic!("{e}"));
        let session = crate::world::account(&self.client(), admin, role, station, "precinct.test")
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        (session.id, session.token)
    }

    /// A patrol of `station` with the given officers.
    pub async fn patrol(
        &self,
        desk: &str,
        station: &str,
        call_sign: &str,
        officers: &[&str],
    ) -> String {
        let call = Call::register_patrol(call_sign, station, officers);
        self.created(call, Some(desk)).await.id()
    }

    /// A report at (lat, lon) by `token` (None: anonymous).
    pub async fn report(&self, token: Option<&str>, lat: f64, lon: f64, types: &[&str]) -> Res {
        let report = NewReport {
            crime_types: types,
            ..NewReport::bike(lat, lon)
        };
        self.created(Call::submit(&report), token).await
    }

    /// Waits until the read models reach `position` (bounded).
    pub async fn caught_up(&self, position: u64) {
        let ok =
            precinct_readmodel::wait_for_position(&self.pool, position, Duration::from_secs(10))
                .await
                .unwrap_or(false);
        assert!(ok, "read models did not reach position {position}");
    }
}

impl From<&TestApp> for Client {
    fn from(app: &TestApp) -> Self {
        app.client()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
