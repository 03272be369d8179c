//! The world builder the e2e suite, the chaos campaign and the bench share: precincts,
//! staff accounts (registered by the ADMIN, then logged in), citizens, and patrols with
//! their officers, all created over HTTP as a client would.
//!
//! A [`Builder`] has one step per kind of thing (compose them for an unusual world, as the
//! bench does); [`Spec`] → [`World`] is the usual shape. The steps send their commands
//! through a [`Driver`]: a plain [`Client`], or the chaos campaign's clients, which add
//! idempotency keys, retry and record every command's outcome.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

use crate::client::{Call, Client, NewAccount, Role, Session};

/// The password of every account the builder registers.
pub const PASSWORD: &str = "s3cret-passw0rd";

/// How long a builder waits for a new station to reach the read models (report routing
/// reads stations from there).
const PROJECTED_BOUND: Duration = Duration::from_secs(30);

/// How the builder's commands reach the server.
pub trait Driver: Sync {
    /// The plain client underneath (reads and waits).
    fn client(&self) -> &Client;

    /// Sends a command that must succeed; answers its 2xx body.
    fn command(
        &self,
        call: Call,
        token: Option<&str>,
    ) -> impl Future<Output = anyhow::Result<Value>> + Send;

    /// Logs in.
    fn login(
        &self,
        email: &str,
        password: &str,
    ) -> impl Future<Output = anyhow::Result<Session>> + Send {
        self.client().login(email, password)
    }
}

impl Driver for Client {
    fn client(&self) -> &Client {
        self
    }

    async fn command(&self, call: Call, token: Option<&str>) -> anyhow::Result<Value> {
        self.run(&call, token).await
    }
}

/// A fresh address for an account of `role` (`domain`: the part after `@`).
pub fn email(role: Role, domain: &str) -> String {
    format!(
        "{}-{}@{domain}",
        role.as_str().to_lowercase(),
        crate::unique_prefix()
    )
}

/// Registers an account (staff by `admin`, with a role and station; a citizen by itself)
/// and logs it in.
pub async fn account(
    driver: &impl Driver,
    admin: &str,
    role: Role,
    station: Option<&str>,
    domain: &str,
) -> anyhow::Result<Session> {
    let email = email(role, domain);
    let staff = role != Role::Citizen;
    let call = Call::register(&NewAccount {
        email: &email,
        password: PASSWORD,
        name: format!("{} user", role.as_str()),
        role: staff.then_some(role.as_str()),
        station_id: station.filter(|_| staff),
    });
    let token = staff.then_some(admin);
    driver
        .command(call, token)
        .await
        .with_context(|| format!("register {}", role.as_str()))?;
    driver.login(&email, PASSWORD).await
}

/// Runs `f(0..n)` with up to `concurrency` in flight; the results in order.
pub async fn many<T, F, Fut>(concurrency: usize, n: usize, f: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    futures::stream::iter((0..n).map(f))
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}

/// A precinct: its id and centre.
#[derive(Debug, Clone)]
pub struct Station {
    pub id: String,
    pub lat: f64,
    pub lon: f64,
}

/// A patrol of one officer.
#[derive(Debug, Clone)]
pub struct Crew {
    pub patrol: String,
    pub station: String,
    pub officer: Session,
}

/// Builds a world step by step, as the ADMIN.
pub struct Builder<'d, D> {
    driver: &'d D,
    admin: Session,
    domain: String,
    concurrency: usize,
}

impl<'d, D: Driver> Builder<'d, D> {
    /// Logs the ADMIN in; accounts get addresses `@domain`; one request at a time.
    pub async fn new(
        driver: &'d D,
        admin_email: &str,
        admin_password: &str,
        domain: &str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            admin: driver.login(admin_email, admin_password).await?,
            driver,
            domain: domain.to_string(),
            concurrency: 1,
        })
    }

    /// Up to `n` requests in flight in the steps that create many things.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    pub fn admin(&self) -> &Session {
        &self.admin
    }

    /// A precinct around (lat, lon); answers once it is in the read models.
    pub async fn precinct(&self, name: &str, lat: f64, lon: f64) -> anyhow::Result<Station> {
        let call = Call::precinct(name, lat, lon);
        let r = self.driver.command(call, Some(&self.admin.token)).await?;
        let id = r["id"].as_str().context("station id")?.to_string();
        let position = r["position"].as_u64().unwrap_or(0);
        self.driver
            .client()
            .caught_up(position, PROJECTED_BOUND)
            .await?;
        Ok(Station { id, lat, lon })
    }

    pub async fn account(&self, role: Role, station: Option<&str>) -> anyhow::Result<Session> {
        account(self.driver, &self.admin.token, role, station, &self.domain).await
    }

    /// `n` accounts of `role`.
    pub async fn accounts(
        &self,
        role: Role,
        station: Option<&str>,
        n: usize,
    ) -> anyhow::Result<Vec<Session>> {
        many(self.concurrency, n, |_| self.account(role, station)).await
    }

    /// A patrol of `station`, registered by `desk`.
    pub async fn patrol(
        &self,
        desk: &str,
        station: &str,
        call_sign: &str,
        officers: &[&str],
    ) -> anyhow::Result<String> {
        let call = Call::register_patrol(call_sign, station, officers);
        let r = self.driver.command(call, Some(desk)).await?;
        Ok(r["id"].as_str().context("patrol id")?.to_string())
    }

    /// One patrol per call sign, each with an officer of its own: the officers first,
    /// then the patrols (registered by `desk`).
    pub async fn crews(
        &self,
        desk: &str,
        station: &str,
        call_signs: &[String],
    ) -> anyhow::Result<Vec<Crew>> {
        let officers = self
            .accounts(Role::Patrol, Some(station), call_signs.len())
            .await?;
        many(self.concurrency, call_signs.len(), |i| {
            let officer = officers[i].clone();
            async move {
                let patrol = self
                    .patrol(desk, station, &call_signs[i], &[&officer.id])
                    .await?;
                Ok(Crew {
                    patrol,
                    station: station.to_string(),
                    officer,
                })
            }
        })
        .await
    }
}

/// A precinct to build, and who works there.
#[derive(Debug, Clone)]
pub struct StationSpec {
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub dispatchers: usize,
    pub supervisors: usize,
    /// One crew (a patrol of one officer) per call sign.
    pub crews: Vec<String>,
}

impl StationSpec {
    pub fn new(name: &str, lat: f64, lon: f64) -> Self {
        Self {
            name: name.to_string(),
            lat,
            lon,
            dispatchers: 0,
            supervisors: 0,
            crews: Vec::new(),
        }
    }
    pub fn dispatchers(mut self, n: usize) -> Self {
        self.dispatchers = n;
        self
    }
    pub fn supervisors(mut self, n: usize) -> Self {
        self.supervisors = n;
        self
    }
    pub fn crews(mut self, call_signs: &[&str]) -> Self {
        self.crews = call_signs.iter().map(|c| c.to_string()).collect();
        self
    }
}

/// The usual world: precincts with their staff and crews, and citizens.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub stations: Vec<StationSpec>,
    pub citizens: usize,
}

/// A precinct as built.
#[derive(Debug, Clone)]
pub struct Precinct {
    pub station: Station,
    pub dispatchers: Vec<Session>,
    pub supervisors: Vec<Session>,
    pub crews: Vec<Crew>,
}

impl Precinct {
    pub fn id(&self) -> &str {
        &self.station.id
    }
}

#[derive(Debug, Clone)]
pub struct World {
    pub admin: Session,
    pub stations: Vec<Precinct>,
    pub citizens: Vec<Session>,
}

impl World {
    /// Builds `spec` in this order: every precinct; then per precinct its dispatchers,
    /// supervisors, officers and patrols (registered by its first dispatcher, or the
    /// ADMIN); then the citizens.
    pub async fn build<D: Driver>(b: &Builder<'_, D>, spec: &Spec) -> anyhow::Result<Self> {
        let mut made = Vec::new();
        for s in &spec.stations {
            made.push(b.precinct(&s.name, s.lat, s.lon).await?);
        }
        let mut stations = Vec::new();
        for (s, station) in spec.stations.iter().zip(made) {
            let id = Some(station.id.as_str());
            let dispatchers = b.accounts(Role::Dispatcher, id, s.dispatchers).await?;
            let supervisors = b.accounts(Role::Supervisor, id, s.supervisors).await?;
            let desk = dispatchers.first().unwrap_or(b.admin()).token.clone();
            let crews = b.crews(&desk, &station.id, &s.crews).await?;
            stations.push(Precinct {
                station,
                dispatchers,
                supervisors,
                crews,
            });
        }
        Ok(Self {
            admin: b.admin().clone(),
            stations,
            citizens: b.accounts(Role::Citizen, None, spec.citizens).await?,
        })
    }
}
