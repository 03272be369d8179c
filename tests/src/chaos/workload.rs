//! The workload: concurrent clients sending commands over real HTTP, each recording
//! every command's outcome.
//!
//! Every command carries its own `Idempotency-Key` and `X-Correlation-Id` (the log
//! stores the correlation id in every envelope, which is how the checker finds a
//! command's effect). An outcome is *acknowledged* (2xx), *refused* (a definite 4xx) or
//! *unknown* (timeout, connection lost, 5xx, 429): unknown ones are retried with the same
//! key and body until they become definite or the campaign ends.
//!
//! Two kinds of client: intake clients submit reports (signed-in or anonymous; every
//! fourth acknowledged one is sent once more on purpose), and crews drive reports through
//! dispatch → accept → note → respond → resolve → approve, plus one command that must be
//! refused (respond before dispatch).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

pub const ADMIN_EMAIL: &str = "admin@chaos.precinct.test";
pub const ADMIN_PASSWORD: &str = "chaos admin password";
const PASSWORD: &str = "s3cret-passw0rd";
const LAT: f64 = 7.07;
const LON: f64 = 125.61;

/// What a command was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    Setup,
    Submit,
    Dispatch,
    Accept,
    Note,
    Respond,
    Resolve,
    Approve,
    /// Respond before dispatch: must be refused.
    RespondTooEarly,
}

/// What its client knows of it in the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Acknowledged,
    Refused(u16),
    Unknown,
}

/// One command and its fate.
#[derive(Debug, Clone)]
pub struct Op {
    pub kind: OpKind,
    pub correlation: Uuid,
    /// The report it is about (for a submission: the id the answer gave, if any).
    pub report: Option<Uuid>,
    pub outcome: Outcome,
    pub attempts: u32,
    /// Indefinite answers along the way: "503", "500 <title>", "timeout", …
    pub indefinite: Vec<String>,
    /// Something the client saw that must not happen (checked by the checker).
    pub anomaly: Option<String>,
    /// When the outcome became final (since the campaign started).
    pub done_at: Duration,
}

/// What the client checks beyond recording the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Plain,
    /// Once acknowledged, send the same request again: it must answer the same.
    Resend,
    /// A refusal is an anomaly (every earlier step of the lifecycle was acknowledged).
    NoRefusal,
}

/// When clients stop starting commands, and when they stop retrying.
#[derive(Debug)]
pub struct Phase {
    started: Instant,
    /// Milliseconds since `started` at which new commands stop (u64::MAX: not yet).
    stop_ms: AtomicU64,
    /// How long unknown commands keep being retried after that.
    pub settle: Duration,
}

impl Phase {
    pub fn new(started: Instant, settle: Duration) -> Self {
        Self {
            started,
            stop_ms: AtomicU64::new(u64::MAX),
            settle,
        }
    }
    pub fn stop(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        let _ = self
            .stop_ms
            .compare_exchange(u64::MAX, now, Ordering::SeqCst, Ordering::SeqCst);
    }
    pub fn stopping(&self) -> bool {
        self.stop_ms.load(Ordering::SeqCst) != u64::MAX
    }
    fn give_up(&self) -> bool {
        let stop = self.stop_ms.load(Ordering::SeqCst);
        stop != u64::MAX && self.started.elapsed() > Duration::from_millis(stop) + self.settle
    }
}

/// The clients' shared context.
#[derive(Clone)]
pub struct Clients {
    base: String,
    http: reqwest::Client,
    pub phase: Arc<Phase>,
    pub ops: Arc<Mutex<Vec<Op>>>,
}

impl Clients {
    pub fn new(port: u16, phase: Arc<Phase>) -> anyhow::Result<Self> {
        Ok(Self {
            base: format!("http://127.0.0.1:{port}"),
            // Short: a paused server must turn into an unknown outcome quickly.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(1))
                .build()?,
            phase,
            ops: Arc::new(Mutex::new(Vec::new())),
        })
    }

    async fn send(
        &self,
        method: &Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
        headers: &[(&str, String)],
    ) -> Result<(u16, Value), String> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let res = req.send().await.map_err(|e| {
            if e.is_timeout() {
                "timeout".to_string()
            } else {
                "connection".to_string()
            }
        })?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await.map_err(|_| "body lost".to_string())?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// Sends one command until its outcome is definite or the campaign gives up, and
    /// records it. Returns the outcome and the body of the 2xx answer.
    pub async fn command(
        &self,
        kind: OpKind,
        path: &str,
        token: Option<&str>,
        body: Value,
        report: Option<Uuid>,
        check: Check,
    ) -> (Outcome, Value) {
        let correlation = Uuid::new_v4();
        let headers = [
            ("Idempotency-Key", format!("chaos-{}", Uuid::new_v4())),
            ("X-Correlation-Id", correlation.to_string()),
        ];
        let mut op = Op {
            kind,
            correlation,
            report,
            outcome: Outcome::Unknown,
            attempts: 0,
            indefinite: Vec::new(),
            anomaly: None,
            done_at: Duration::ZERO,
        };
        let mut backoff = Duration::from_millis(100);
        let mut answer = Value::Null;
        loop {
            op.attempts += 1;
            match self.send(&Method::POST, path, token, &body, &headers).await {
                Ok((s, b)) if (200..300).contains(&s) => {
                    op.outcome = Outcome::Acknowledged;
                    answer = b;
                    break;
                }
                Ok((s, _)) if (400..500).contains(&s) && s != 408 && s != 429 => {
                    op.outcome = Outcome::Refused(s);
                    break;
                }
                Ok((s, b)) => op.indefinite.push(match b["title"].as_str() {
                    Some(t) if s == 500 => format!("{s} {t}"),
                    _ => s.to_string(),
                }),
                Err(e) => op.indefinite.push(e),
            }
            if self.phase.give_up() {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
        if op.outcome == Outcome::Acknowledged {
            if kind == OpKind::Submit {
                op.report = answer["id"].as_str().and_then(|s| s.parse().ok());
            }
            if check == Check::Resend {
                // The same request again: the original outcome, nothing new.
                if let Ok((s, b)) = self.send(&Method::POST, path, token, &body, &headers).await {
                    if (400..500).contains(&s)
                        || ((200..300).contains(&s) && b["id"] != answer["id"])
                    {
                        op.anomaly = Some(format!(
                            "the same request sent again answered {s} {} (first: {})",
                            b["id"], answer["id"]
                        ));
                    }
                }
            }
        }
        if let (Outcome::Refused(s), Check::NoRefusal) = (op.outcome, check) {
            op.anomaly = Some(format!(
                "{kind:?} {path} refused ({s}) although every earlier step was acknowledged"
            ));
        }
        op.done_at = self.phase.started.elapsed();
        let outcome = op.outcome;
        self.ops.lock().expect("ops").push(op);
        (outcome, answer)
    }

    /// A definite 2xx or an error (used while setting up, before any fault).
    async fn must(&self, path: &str, token: Option<&str>, body: Value) -> anyhow::Result<Value> {
        let (outcome, answer) = self
            .command(OpKind::Setup, path, token, body, None, Check::NoRefusal)
            .await;
        if outcome != Outcome::Acknowledged {
            bail!("setup command {path} ended {outcome:?}");
        }
        Ok(answer)
    }

    async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let body = json!({"email": email, "password": password});
        for _ in 0..50 {
            if let Ok((200, b)) = self
                .send(&Method::POST, "/users/login", None, &body, &[])
                .await
            {
                return b["access_token"]
                    .as_str()
                    .map(str::to_string)
                    .context("login without a token");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("cannot log in as {email}")
    }

    async fn account(
        &self,
        admin: &str,
        role: &str,
        station: &str,
    ) -> anyhow::Result<(String, String)> {
        let email = format!(
            "{}-{}@chaos.precinct.test",
            role.to_lowercase(),
            Uuid::new_v4().simple()
        );
        let mut body =
            json!({"email": email, "password": PASSWORD, "name": format!("{role} user")});
        let token = if role == "CITIZEN" {
            None
        } else {
            body["role"] = json!(role);
            body["station_id"] = json!(station);
            Some(admin)
        };
        let r = self.must("/users/register", token, body).await?;
        let id = r["id"].as_str().context("account id")?.to_string();
        Ok((id, self.login(&email, PASSWORD).await?))
    }
}

/// A patrol of one officer.
#[derive(Debug, Clone)]
pub struct Crew {
    pub officer: String,
    pub patrol: String,
}

/// The accounts and places the workload uses.
#[derive(Debug, Clone)]
pub struct World {
    pub dispatcher: String,
    pub supervisor: String,
    pub citizens: Vec<String>,
    pub crews: Vec<Crew>,
}

/// Creates a precinct, its desk, `crews` patrols and `citizens` citizens through the
/// API, before any fault; waits until the station is projected (routing reads it).
pub async fn setup(
    c: &Clients,
    pool: &PgPool,
    crews: usize,
    citizens: usize,
) -> anyhow::Result<World> {
    let admin = c.login(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
    let d = 0.05;
    let ring = json!([
        [LON - d, LAT - d],
        [LON + d, LAT - d],
        [LON + d, LAT + d],
        [LON - d, LAT + d],
        [LON - d, LAT - d]
    ]);
    let st = c
        .must(
            "/stations",
            Some(&admin),
            json!({"name": "Chaos Precinct", "kind": "PRECINCT", "latitude": LAT, "longitude": LON,
                   "area": {"type": "Polygon", "coordinates": [ring]}}),
        )
        .await?;
    let station = st["id"].as_str().context("station id")?.to_string();
    let position = st["position"].as_u64().unwrap_or(0);
    if !precinct_projections::wait_for_position(pool, position, Duration::from_secs(30)).await? {
        bail!("the station was not projected within 30 s");
    }
    let (_, dispatcher) = c.account(&admin, "DISPATCHER", &station).await?;
    let (_, supervisor) = c.account(&admin, "SUPERVISOR", &station).await?;
    let mut crew_list = Vec::new();
    for i in 0..crews {
        let (officer_id, officer) = c.account(&admin, "PATROL", &station).await?;
        let p = c
            .must(
                "/patrols/register",
                Some(&dispatcher),
                json!({"call_sign": format!("CHAOS-{i}"), "station_id": station, "officer_ids": [officer_id]}),
            )
            .await?;
        let patrol = p["id"].as_str().context("patrol id")?.to_string();
        crew_list.push(Crew { officer, patrol });
    }
    let mut citizen_list = Vec::new();
    for _ in 0..citizens {
        citizen_list.push(c.account(&admin, "CITIZEN", &station).await?.1);
    }
    Ok(World {
        dispatcher,
        supervisor,
        citizens: citizen_list,
        crews: crew_list,
    })
}

fn report_body(title: String) -> Value {
    json!({"title": title, "description": "Chaos campaign report: a bike was taken",
           "crime_types": ["Theft"],
           "location": {"latitude": LAT, "longitude": LON, "street": "1 Main St", "city": "Davao"},
           "contact": "+63 900 000 0000"})
}

/// Submits reports until the campaign stops.
pub async fn intake(c: Clients, world: Arc<World>, client: usize) {
    let mut i = 0usize;
    while !c.phase.stopping() {
        i += 1;
        let token = if i.is_multiple_of(3) {
            None
        } else {
            Some(world.citizens[(client + i) % world.citizens.len()].as_str())
        };
        let body = report_body(format!("Intake {client}-{i}"));
        let check = if i.is_multiple_of(4) {
            Check::Resend
        } else {
            Check::Plain
        };
        c.command(OpKind::Submit, "/crimes", token, body, None, check)
            .await;
    }
}

/// Drives reports through their lifecycle with one crew until the campaign stops, or
/// until a step stays unknown or is refused (recorded as an anomaly: with every earlier
/// step acknowledged, each step is allowed).
pub async fn crew(c: Clients, world: Arc<World>, n: usize) {
    let Crew { officer, patrol } = world.crews[n].clone();
    let citizen = world.citizens[n % world.citizens.len()].clone();
    let mut i = 0usize;
    while !c.phase.stopping() {
        i += 1;
        let (outcome, answer) = c
            .command(
                OpKind::Submit,
                "/crimes",
                Some(&citizen),
                report_body(format!("Crew {n}-{i}")),
                None,
                Check::Plain,
            )
            .await;
        let Some(id) = answer["id"].as_str().and_then(|s| s.parse::<Uuid>().ok()) else {
            if outcome == Outcome::Unknown {
                return;
            }
            continue;
        };
        let early = c
            .command(
                OpKind::RespondTooEarly,
                &format!("/crimes/{id}/respond"),
                Some(&officer),
                json!({}),
                Some(id),
                Check::Plain,
            )
            .await
            .0;
        if early == Outcome::Unknown {
            return;
        }
        let steps: [(OpKind, String, &str, Value); 6] = [
            (
                OpKind::Dispatch,
                "/dispatch".into(),
                &world.dispatcher,
                json!({"crime_id": id, "patrol_id": patrol}),
            ),
            (
                OpKind::Accept,
                format!("/crimes/{id}/accept"),
                &officer,
                json!({}),
            ),
            (
                OpKind::Note,
                format!("/crimes/{id}/notes"),
                &officer,
                json!({"note": format!("on scene {n}-{i}")}),
            ),
            (
                OpKind::Respond,
                format!("/crimes/{id}/respond"),
                &officer,
                json!({}),
            ),
            (
                OpKind::Resolve,
                format!("/crimes/{id}/resolve"),
                &officer,
                json!({"resolution_notes": "Recovered"}),
            ),
            (
                OpKind::Approve,
                format!("/crimes/{id}/closure/approve"),
                &world.supervisor,
                json!({}),
            ),
        ];
        for (kind, path, token, body) in steps {
            if c.phase.stopping() {
                return;
            }
            let check = Check::NoRefusal;
            if c.command(kind, &path, Some(token), body, Some(id), check)
                .await
                .0
                != Outcome::Acknowledged
            {
                return;
            }
        }
    }
}
