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
//! fourth acknowledged one is sent once more on purpose; every other anonymous one is
//! then erased as a data subject by the ADMIN), and crews drive reports through triage →
//! dispatch → accept → evidence → note → respond → resolve → approve, plus one command
//! that must be refused (respond before dispatch). Every third report is first
//! dispatched and declined, then dispatched again; every fourth is accepted late on
//! purpose ([`LATE_ACCEPT`], past the campaign's accept deadline), so that the SLA
//! workers — two processes run one each — race to record its warning and breach; and
//! every eighth, from the second on, is left unaccepted until the station's SLA policy
//! ([`ESCALATE_AFTER_SECS`], `REQUEUE`) has the workers withdraw it (the crew watches the
//! report's status, up to [`ESCALATION_WAIT`]): the accept is then refused, and the crew
//! dispatches it again and accepts at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use precinct_retry::Backoff;
use serde_json::Value;
use uuid::Uuid;

use crate::client::{Call, Client, NewReport, Res, Session};
use crate::world::{Builder, Crew, Driver, Spec, StationSpec, World};

pub const ADMIN_EMAIL: &str = "admin@chaos.precinct.test";
pub const ADMIN_PASSWORD: &str = "chaos admin password";
const LAT: f64 = 7.07;
const LON: f64 = 125.61;

/// The campaign's SLA deadlines (accept and respond, `PRECINCT_SLA_*_SECS`): short, so
/// that deliberately late accepts breach them within the campaign.
pub const SLA_DEADLINE_SECS: u64 = 2;
/// How long a crew waits before a deliberately late accept: past the deadline with
/// enough margin for several scans of the SLA workers (every 200 ms).
pub const LATE_ACCEPT: Duration = Duration::from_millis(3500);
/// The station's policy: an assignment still unaccepted this long after its accept
/// breach is withdrawn by the SLA workers (an atomic append over the report and its
/// patrol, once however many workers race for it). Long: a crew held up by the faults
/// between its dispatch and its next step must not be overtaken by an escalation (with
/// 2 s, a decline sent 5 s after its dispatch was refused, 1 run in 8).
pub const ESCALATE_AFTER_SECS: u64 = 15;
/// Longest a crew waits for the escalation of a report it leaves unaccepted on purpose:
/// twice the deadline and the delay, so that only SLA workers that do not escalate (or
/// the end of the campaign) leave it waiting that long. (A fixed wait was overtaken by
/// the faults: 7.5 s with a delay of 2 s, 1 run in 9.)
pub const ESCALATION_WAIT: Duration = Duration::from_secs(35);
/// The shortest workload: long enough for the first escalation to fall due (a crew's
/// second report, dispatched within seconds of the start, then the deadline and the
/// delay) with margin, whatever the fault plan (the cluster pass's three faults take
/// 6–18 s).
pub const MIN_WORKLOAD: Duration =
    Duration::from_secs(SLA_DEADLINE_SECS + ESCALATE_AFTER_SECS + 13);

/// What a command was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    Setup,
    Submit,
    /// The ADMIN erases an anonymous report's data subject.
    Erase,
    Triage,
    Dispatch,
    Decline,
    Accept,
    Evidence,
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
    /// Since the campaign started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
    fn give_up(&self) -> bool {
        let stop = self.stop_ms.load(Ordering::SeqCst);
        stop != u64::MAX && self.started.elapsed() > Duration::from_millis(stop) + self.settle
    }
}

/// The clients' shared context.
#[derive(Clone)]
pub struct Clients {
    api: Client,
    pub phase: Arc<Phase>,
    pub ops: Arc<Mutex<Vec<Op>>>,
}

impl Clients {
    pub fn new(port: u16, phase: Arc<Phase>) -> anyhow::Result<Self> {
        // Short: a paused server must turn into an unknown outcome quickly.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(1))
            .build()?;
        Ok(Self {
            api: Client::new(format!("http://127.0.0.1:{port}"), http),
            phase,
            ops: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// One attempt: the answer, or why there is none ("timeout", "connection", …).
    pub(super) async fn send(&self, call: &Call, token: Option<&str>) -> Result<Res, String> {
        self.api.send(call, token).await.map_err(|e| {
            if e.is_body() || e.is_decode() {
                "body lost".to_string()
            } else if e.is_timeout() {
                "timeout".to_string()
            } else {
                "connection".to_string()
            }
        })
    }

    /// Sends one command until its outcome is definite or the campaign gives up, and
    /// records it. Returns the outcome and the body of the 2xx answer.
    pub async fn command(
        &self,
        kind: OpKind,
        call: Call,
        token: Option<&str>,
        report: Option<Uuid>,
        check: Check,
    ) -> (Outcome, Value) {
        let correlation = Uuid::new_v4();
        let call = call
            .header("Idempotency-Key", format!("chaos-{}", Uuid::new_v4()))
            .header("X-Correlation-Id", correlation.to_string());
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
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut answer = Value::Null;
        loop {
            op.attempts += 1;
            match self.send(&call, token).await {
                Ok(r) if r.status.is_success() => {
                    op.outcome = Outcome::Acknowledged;
                    answer = r.body;
                    break;
                }
                Ok(r) if r.status.is_client_error() && !matches!(r.status.as_u16(), 408 | 429) => {
                    op.outcome = Outcome::Refused(r.status.as_u16());
                    break;
                }
                Ok(r) => op.indefinite.push(match r.body["title"].as_str() {
                    Some(t) if r.status.as_u16() == 500 => format!("{} {t}", r.status.as_u16()),
                    _ => r.status.as_u16().to_string(),
                }),
                Err(e) => op.indefinite.push(e),
            }
            if self.phase.give_up() {
                break;
            }
            backoff.pause().await;
        }
        if op.outcome == Outcome::Acknowledged {
            if kind == OpKind::Submit {
                op.report = answer["id"].as_str().and_then(|s| s.parse().ok());
            }
            if check == Check::Resend {
                // The same request again: the original outcome, nothing new.
                if let Ok(r) = self.send(&call, token).await {
                    if r.status.is_client_error()
                        || (r.status.is_success() && r.body["id"] != answer["id"])
                    {
                        op.anomaly = Some(format!(
                            "the same request sent again answered {} {} (first: {})",
                            r.status.as_u16(),
                            r.body["id"],
                            answer["id"]
                        ));
                    }
                }
            }
        }
        if let (Outcome::Refused(s), Check::NoRefusal) = (op.outcome, check) {
            op.anomaly = Some(format!(
                "{kind:?} {} refused ({s}) although every earlier step was acknowledged",
                call.path
            ));
        }
        op.done_at = self.phase.started.elapsed();
        let outcome = op.outcome;
        self.ops.lock().expect("ops").push(op);
        (outcome, answer)
    }
}

/// What a crew waits for before a late accept.
#[derive(Debug, Clone, Copy)]
enum Wait {
    For(Duration),
    /// The SLA workers' withdrawal of the assignment (up to [`ESCALATION_WAIT`]).
    Escalation,
}

impl Clients {
    /// Waits until the desk sees `report` leave `ASSIGNED` after having seen it there
    /// (only the SLA workers' escalation moves it: its crew does not accept), for up to
    /// [`ESCALATION_WAIT`] or until the campaign stops. A read, not a command: nothing is
    /// recorded.
    async fn escalation(&self, report: &str, desk: &str) {
        let deadline = Instant::now() + ESCALATION_WAIT;
        let read = Call::new(reqwest::Method::GET, format!("/crimes/{report}"), None);
        let mut seen_assigned = false;
        while Instant::now() < deadline && !self.phase.stopping() {
            if let Ok(r) = self.send(&read, Some(desk)).await {
                match r.body["status"].as_str() {
                    Some("ASSIGNED") => seen_assigned = true,
                    Some(_) if seen_assigned => return,
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The world builder's commands are recorded like the workload's (as `Setup`), so the
/// checker finds each in the log exactly once too.
impl Driver for Clients {
    fn client(&self) -> &Client {
        &self.api
    }

    /// A definite 2xx or an error (set-up runs before any fault).
    async fn command(&self, call: Call, token: Option<&str>) -> anyhow::Result<Value> {
        let path = call.path.clone();
        // The recording loop (the inherent method, not this one).
        let (outcome, answer) =
            Clients::command(self, OpKind::Setup, call, token, None, Check::NoRefusal).await;
        if outcome != Outcome::Acknowledged {
            bail!("setup command {path} ended {outcome:?}");
        }
        Ok(answer)
    }

    /// Retried: the server may still be starting.
    async fn login(&self, email: &str, password: &str) -> anyhow::Result<Session> {
        for _ in 0..50 {
            if let Ok(s) = self.api.login(email, password).await {
                return Ok(s);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("cannot log in as {email}")
    }
}

/// Creates a precinct, its desk, `crews` patrols of one officer and `citizens` citizens
/// through the API, before any fault; the station is projected before it answers
/// (routing reads it).
pub async fn setup(c: &Clients, crews: usize, citizens: usize) -> anyhow::Result<World> {
    let b = Builder::new(c, ADMIN_EMAIL, ADMIN_PASSWORD, "chaos.precinct.test").await?;
    let call_signs: Vec<String> = (0..crews).map(|i| format!("CHAOS-{i}")).collect();
    let mut station = StationSpec::new("Chaos Precinct", LAT, LON)
        .dispatchers(1)
        .supervisors(1);
    station.crews = call_signs;
    let spec = Spec {
        stations: vec![station],
        citizens,
    };
    let world = World::build(&b, &spec).await?;
    escalations(c, &world, true).await?;
    Ok(world)
}

/// Sets the station's SLA policy, as the ADMIN: unaccepted assignments escalated
/// (`REQUEUE` after [`ESCALATE_AFTER_SECS`]) or not; the deadlines stay the server's.
/// Lifted once the workload ends, before the log is waited on: an escalation of a
/// report a stopped crew left `ASSIGNED` could fall due long after the log looked quiet.
pub async fn escalations(c: &Clients, world: &World, on: bool) -> anyhow::Result<()> {
    let body = if on {
        serde_json::json!({
            "unaccepted": {"action": "REQUEUE", "after_secs": ESCALATE_AFTER_SECS}
        })
    } else {
        serde_json::json!({})
    };
    let policy = Call::new(
        reqwest::Method::PUT,
        format!("/stations/{}/sla-policy", world.stations[0].id()),
        Some(body),
    );
    Driver::command(c, policy, Some(world.admin.token.as_str())).await?;
    Ok(())
}

fn report(title: &str) -> Call {
    Call::submit(&NewReport {
        title,
        description: "Chaos campaign report: a bike was taken",
        ..NewReport::bike(LAT, LON)
    })
}

/// Submits reports until the campaign stops; erases every other acknowledged anonymous
/// one (its data subject is the report itself).
pub async fn intake(c: Clients, world: Arc<World>, client: usize) {
    let admin = world.admin.token.as_str();
    let mut i = 0usize;
    while !c.phase.stopping() {
        i += 1;
        let anonymous = i.is_multiple_of(3);
        let token = if anonymous {
            None
        } else {
            Some(
                world.citizens[(client + i) % world.citizens.len()]
                    .token
                    .as_str(),
            )
        };
        let call = report(&format!("Intake {client}-{i}"));
        let check = if i.is_multiple_of(4) {
            Check::Resend
        } else {
            Check::Plain
        };
        let (outcome, answer) = c.command(OpKind::Submit, call, token, None, check).await;
        let id = answer["id"].as_str().and_then(|s| s.parse::<Uuid>().ok());
        if let (Outcome::Acknowledged, true, Some(id)) = (outcome, i.is_multiple_of(6), id) {
            let erase = Call::new(
                reqwest::Method::DELETE,
                format!("/admin/data-subjects/{id}"),
                None,
            );
            c.command(
                OpKind::Erase,
                erase,
                Some(admin),
                Some(id),
                Check::NoRefusal,
            )
            .await;
        }
    }
}

/// Drives reports through their lifecycle with one crew until the campaign stops, or
/// until a step stays unknown or is refused (recorded as an anomaly: with every earlier
/// step acknowledged, each step is allowed).
pub async fn crew(c: Clients, world: Arc<World>, n: usize) {
    let station = &world.stations[0];
    let (desk, supervisor) = (&station.dispatchers[0].token, &station.supervisors[0].token);
    let Crew {
        officer, patrol, ..
    } = &station.crews[n];
    let officer = &officer.token;
    let citizen = &world.citizens[n % world.citizens.len()].token;
    let mut i = 0usize;
    while !c.phase.stopping() {
        i += 1;
        let (outcome, answer) = c
            .command(
                OpKind::Submit,
                report(&format!("Crew {n}-{i}")),
                Some(citizen),
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
        let r = id.to_string();
        let early = c
            .command(
                OpKind::RespondTooEarly,
                Call::respond(&r),
                Some(officer),
                Some(id),
                Check::Plain,
            )
            .await
            .0;
        if early == Outcome::Unknown {
            return;
        }
        let note = format!("on scene {n}-{i}");
        let evidence = format!("https://evidence.chaos.precinct.test/{n}/{i}.jpg");
        let mut steps = vec![(OpKind::Triage, Call::triage(&r, "HIGH"), desk)];
        if i % 3 == 1 {
            steps.push((OpKind::Dispatch, Call::dispatch(&r, Some(patrol)), desk));
            steps.push((OpKind::Decline, Call::decline(&r, "another call"), officer));
        }
        steps.extend([
            (OpKind::Dispatch, Call::dispatch(&r, Some(patrol)), desk),
            (OpKind::Accept, Call::accept(&r), officer),
            (
                OpKind::Evidence,
                Call::evidence(&r, &evidence, "PHOTO"),
                officer,
            ),
            (OpKind::Note, Call::note(&r, &note), officer),
            (OpKind::Respond, Call::respond(&r), officer),
            (OpKind::Resolve, Call::resolve(&r, "Recovered"), officer),
            (OpKind::Approve, Call::approve_closure(&r), supervisor),
        ]);
        let mut steps = std::collections::VecDeque::from(steps);
        let mut wait = if i % 8 == 2 {
            Some(Wait::Escalation)
        } else if i.is_multiple_of(4) {
            Some(Wait::For(LATE_ACCEPT))
        } else {
            None
        };
        while let Some((kind, call, token)) = steps.pop_front() {
            if c.phase.stopping() {
                return;
            }
            // The report's first accept waits, if it is one of the late ones.
            let held = if kind == OpKind::Accept {
                wait.take()
            } else {
                None
            };
            let late = held.is_some();
            match held {
                Some(Wait::For(d)) => tokio::time::sleep(d).await,
                Some(Wait::Escalation) => c.escalation(&r, desk).await,
                None => {}
            }
            if late && c.phase.stopping() {
                return;
            }
            // A late accept may have been overtaken by the escalation (the checker then
            // requires the escalation in the log); any other refusal is an anomaly.
            let check = if late { Check::Plain } else { Check::NoRefusal };
            match c.command(kind, call, Some(token), Some(id), check).await.0 {
                Outcome::Acknowledged => {}
                // Requeued by the escalation: dispatch it again, accept at once.
                Outcome::Refused(_) if late => {
                    steps.push_front((OpKind::Accept, Call::accept(&r), officer));
                    steps.push_front((OpKind::Dispatch, Call::dispatch(&r, Some(patrol)), desk));
                }
                _ => return,
            }
        }
    }
}
