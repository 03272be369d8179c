//! Projectors and queries against a real nats-server and PostgreSQL: a report's whole
//! lifecycle, the queue, `near=`, keyset pagination, a poison event, a projector killed
//! mid-batch, rebuild equality, waiting for a position, and the request log.
//!
//! Events are appended straight to the log from domain event structs, as the command
//! side would; each test has its own stream and its own database.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use precinct_domain::account::{Account, AccountRegistered};
use precinct_domain::ids::{
    AccountId, EvidenceId, NoteId, PatrolId, ReportId, StationId, UpdateId,
};
use precinct_domain::patrol::{
    AssignmentOutcome, Patrol, PatrolAssignmentClosed, PatrolAssignmentOpened, PatrolEvent,
    PatrolRegistered, PatrolStatusChanged, StatusCause,
};
use precinct_domain::report::*;
use precinct_domain::routing::{RoutingDecision, RoutingRule};
use precinct_domain::station::{Station, StationCreated, StationEvent};
use precinct_domain::values::*;
use precinct_domain::{Aggregate, DomainEvent};
use precinct_eventlog::{
    Actor, CommandMeta, EventLog, ExpectedVersion, LogConfig, NewEvent, RequestRecord, StreamId,
    StreamWrite,
};
use precinct_projections::{Outcome, RunOptions};
use precinct_readmodel::queries::{self, PageRequest};
use precinct_tests::{nats::shared_url, pg::fresh_database, unique_prefix};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const PW_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

// ---------------------------------------------------------------------------------
// Harness

struct Fixture {
    log: EventLog,
    pool: PgPool,
}

async fn fixture() -> Fixture {
    let log = EventLog::connect(&shared_url(), LogConfig::isolated(&unique_prefix()))
        .await
        .expect("connect to the shared NATS (run `make stack`)");
    let (pool, _) = fresh_database()
        .await
        .expect("fresh database on the shared PostgreSQL (run `make stack`)");
    precinct_readmodel::migrate(&pool).await.expect("migrate");
    Fixture { log, pool }
}

/// Bounds every await a test makes on the system under test.
async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs} s: {what}"))
}

/// A fixed instant plus `secs` (events carry their own times; no clock in tests).
fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0)
        .single()
        .expect("valid time")
        + chrono::Duration::seconds(secs)
}

fn ev(e: impl DomainEvent) -> NewEvent {
    let data = e.to_data();
    let occurred_at = data["at"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| t(0));
    NewEvent {
        event_type: e.event_type().to_string(),
        schema_version: e.schema_version(),
        occurred_at,
        data,
    }
}

fn user(id: AccountId, role: &str) -> Actor {
    Actor::User {
        id: id.as_uuid(),
        role: role.into(),
    }
}

fn stream<A: Aggregate>(id: Uuid) -> StreamId {
    StreamId::new(A::TYPE, id)
}

/// Appends one command's events (to one or several streams); returns its last position.
async fn append(log: &EventLog, actor: Actor, writes: Vec<(StreamId, Vec<NewEvent>)>) -> u64 {
    let writes = writes
        .into_iter()
        .map(|(stream, events)| StreamWrite {
            stream,
            expected: ExpectedVersion::Any,
            events,
        })
        .collect();
    within(
        10,
        "append",
        log.append_multi(writes, &CommandMeta::new(Uuid::new_v4(), actor)),
    )
    .await
    .expect("append")
    .position
}

fn new_id() -> Uuid {
    Uuid::new_v4()
}

/// Builds the domain events of common commands.
mod make {
    use super::*;

    pub fn station(id: StationId, name: &str, lat: f64, lon: f64, at: i64) -> NewEvent {
        ev(StationEvent::from(StationCreated {
            station_id: id,
            name: name.into(),
            kind: StationKind::Precinct,
            latitude: Some(Latitude::parse(lat).expect("lat")),
            longitude: Some(Longitude::parse(lon).expect("lon")),
            area: None,
            crime_types: vec![],
            at: t(at),
        }))
    }

    pub fn account(id: AccountId, email: &str, role: Role, station: Option<StationId>) -> NewEvent {
        ev(precinct_domain::account::AccountEvent::from(
            AccountRegistered {
                account_id: id,
                email: Some(Email::parse(email).expect("email")),
                name: Some("Officer Santos".into()),
                role,
                station_id: station,
                password_hash: PasswordHash::parse(PW_HASH).expect("hash"),
                at: t(0),
                invite_id: None,
            },
        ))
    }

    pub fn patrol(
        id: PatrolId,
        call_sign: &str,
        station: StationId,
        officers: Vec<AccountId>,
    ) -> NewEvent {
        ev(PatrolEvent::from(PatrolRegistered {
            patrol_id: id,
            call_sign: call_sign.into(),
            station_id: station,
            officer_ids: officers,
            at: t(1),
        }))
    }

    pub fn submitted(
        id: ReportId,
        station: StationId,
        (lat, lon): (f64, f64),
        reporter: Option<AccountId>,
        at: i64,
    ) -> NewEvent {
        let reporter = match reporter {
            Some(account_id) => Reporter::User { account_id },
            None => Reporter::Anonymous {
                tracking_token_hash: TokenHash::parse(HASH).expect("hash"),
            },
        };
        ev(ReportEvent::from(ReportSubmitted {
            report_id: id,
            title: format!("Bike stolen {id}"),
            crime_types: vec!["Theft".into()],
            crime_type_codes: vec![],
            location: ReportLocation::new(
                GeoPoint::parse(lat, lon).expect("point"),
                Some("Davao".into()),
                None,
            ),
            occurred_at: Some(t(at - 60)),
            media_urls: vec!["https://example.org/a.jpg".into()],
            reporter,
            station_id: station,
            routing: RoutingDecision {
                station_id: station,
                rule: RoutingRule::NearestPrecinct,
                matched_keyword: None,
                distance_m: Some(120.5),
            },
            priority: Priority::Medium,
            personal: PersonalDetails {
                description: "My blue bike was taken from the rack".into(),
                street: Some("1 Main St".into()),
                contact: Some("+63 900 000 0000".into()),
                erased: false,
            },
            at: t(at),
        }))
    }

    pub fn report(e: impl Into<ReportEvent>) -> NewEvent {
        ev(e.into())
    }

    pub fn patrol_event(e: impl Into<PatrolEvent>) -> NewEvent {
        ev(e.into())
    }
}

/// Appends `ReportAssigned` and the patrol's `PatrolAssignmentOpened` as one command.
async fn assign(log: &EventLog, actor: Actor, report: ReportId, patrol: PatrolId, at: i64) -> u64 {
    append(
        log,
        actor,
        vec![
            (
                stream::<Report>(report.as_uuid()),
                vec![make::report(ReportAssigned {
                    patrol_id: patrol,
                    auto: None,
                    at: t(at),
                })],
            ),
            (
                stream::<Patrol>(patrol.as_uuid()),
                vec![
                    make::patrol_event(PatrolAssignmentOpened {
                        report_id: report,
                        at: t(at),
                    }),
                    make::patrol_event(PatrolStatusChanged {
                        status: PatrolStatus::Busy,
                        cause: StatusCause::Dispatched,
                        at: t(at),
                    }),
                ],
            ),
        ],
    )
    .await
}

/// Closes the patrol's side of an assignment (and releases it).
fn closed(report: ReportId, outcome: AssignmentOutcome, at: i64) -> Vec<NewEvent> {
    vec![
        make::patrol_event(PatrolAssignmentClosed {
            report_id: report,
            outcome,
            at: t(at),
        }),
        make::patrol_event(PatrolStatusChanged {
            status: PatrolStatus::Available,
            cause: StatusCause::Released,
            at: t(at),
        }),
    ]
}

async fn submit(log: &EventLog, station: StationId, at_point: (f64, f64), at: i64) -> ReportId {
    submit_at(log, station, at_point, at).await.0
}

/// Submits a report; returns its id and position.
async fn submit_at(
    log: &EventLog,
    station: StationId,
    at_point: (f64, f64),
    at: i64,
) -> (ReportId, u64) {
    let id = ReportId::new(new_id());
    let position = append(
        log,
        Actor::Anonymous,
        vec![(
            stream::<Report>(id.as_uuid()),
            vec![make::submitted(id, station, at_point, None, at)],
        )],
    )
    .await;
    (id, position)
}

async fn triage(log: &EventLog, report: ReportId, priority: Priority, at: i64) -> u64 {
    append(
        log,
        Actor::System,
        vec![(
            stream::<Report>(report.as_uuid()),
            vec![make::report(ReportTriaged {
                priority,
                at: t(at),
            })],
        )],
    )
    .await
}

/// A running projector (every projection; the request log only when asked).
struct Projector {
    shutdown: CancellationToken,
    handle: JoinHandle<Vec<(&'static str, Outcome)>>,
}

fn start_projector(f: &Fixture, opts: RunOptions) -> Projector {
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(precinct_projections::run_with(
        f.pool.clone(),
        f.log.clone(),
        opts,
        shutdown.clone(),
    ));
    Projector { shutdown, handle }
}

impl Projector {
    /// Graceful stop: every projector finishes its batch and returns.
    async fn stop(self) -> HashMap<&'static str, Outcome> {
        self.shutdown.cancel();
        within(15, "projector shutdown", self.handle)
            .await
            .expect("projector task")
            .into_iter()
            .collect()
    }
}

/// Every event projection (none missing: `all` over an empty map proves nothing) stopped,
/// at `at` when given.
fn assert_all_stopped(outcomes: &HashMap<&'static str, Outcome>, at: Option<u64>) {
    let mut names: Vec<&str> = outcomes.keys().copied().collect();
    names.sort_unstable();
    let mut expected = precinct_readmodel::EVENT_PROJECTIONS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "{outcomes:?}");
    for (name, outcome) in outcomes {
        match (outcome, at) {
            (Outcome::Stopped { position }, Some(at)) => {
                assert_eq!(*position, at, "{name}: {outcomes:?}")
            }
            (Outcome::Stopped { .. }, None) => {}
            (other, _) => panic!("{name} ended with {other:?}"),
        }
    }
}

async fn caught_up(pool: &PgPool, position: u64) {
    let ok = precinct_readmodel::wait_for_position(pool, position, Duration::from_secs(20))
        .await
        .expect("wait_for_position");
    assert!(ok, "read models did not reach position {position}");
}

async fn checkpoint(pool: &PgPool, name: &str) -> (i64, Option<i64>, Option<String>) {
    sqlx::query_as("SELECT position, failed_position, error FROM checkpoints WHERE projection = $1")
        .bind(name)
        .fetch_optional(pool)
        .await
        .expect("checkpoint")
        .unwrap_or((0, None, None))
}

/// Asserts one audit row for every position from 1 to `head`: `position` is the audit
/// table's primary key (no duplicate can exist), so count, min and max together say it.
async fn one_audit_row_per_position(pool: &PgPool, head: u64) {
    let head = i64::try_from(head).expect("head");
    let (n, min, max): (i64, i64, i64) =
        sqlx::query_as("SELECT count(*), min(position), max(position) FROM audit")
            .fetch_one(pool)
            .await
            .expect("audit stats");
    assert_eq!((n, min, max), (head, 1, head), "one audit row per event");
}

/// Locks the audit table until the returned transaction ends: the audit projection's
/// batches wait on it.
async fn lock_audit(pool: &PgPool) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut blocker = pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE audit IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .expect("lock audit");
    blocker
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("count")
}

async fn report_row(pool: &PgPool, id: ReportId) -> queries::ReportRow {
    queries::get_report(pool, id.as_uuid())
        .await
        .expect("get_report")
        .expect("report row exists")
}

// ---------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn a_full_report_lifecycle_is_projected_into_reports_patrols_and_audit() {
    let f = fixture().await;
    let projector = start_projector(&f, RunOptions::default());
    let log = &f.log;

    let station = StationId::new(new_id());
    let officer = AccountId::new(new_id());
    let citizen = AccountId::new(new_id());
    let supervisor = AccountId::new(new_id());
    let patrol = PatrolId::new(new_id());
    let report = ReportId::new(new_id());
    let admin = Actor::System;
    let off = user(officer, "PATROL");
    let sup = user(supervisor, "SUPERVISOR");

    append(
        log,
        admin.clone(),
        vec![(
            stream::<Station>(station.as_uuid()),
            vec![make::station(station, "Central", 7.07, 125.61, 0)],
        )],
    )
    .await;
    append(
        log,
        admin.clone(),
        vec![(
            stream::<Account>(officer.as_uuid()),
            vec![make::account(
                officer,
                "Officer@Example.org",
                Role::Patrol,
                Some(station),
            )],
        )],
    )
    .await;
    append(
        log,
        admin.clone(),
        vec![(
            stream::<Patrol>(patrol.as_uuid()),
            vec![make::patrol(patrol, "ALPHA-1", station, vec![officer])],
        )],
    )
    .await;
    append(
        log,
        user(citizen, "CITIZEN"),
        vec![(
            stream::<Report>(report.as_uuid()),
            vec![make::submitted(
                report,
                station,
                (7.071234, 125.615678),
                Some(citizen),
                100,
            )],
        )],
    )
    .await;
    let rs = |events: Vec<NewEvent>| vec![(stream::<Report>(report.as_uuid()), events)];
    triage(log, report, Priority::High, 110).await;
    assign(log, sup.clone(), report, patrol, 120).await;
    // Declined: back to NEW, the patrol's decline count grows.
    append(
        log,
        off.clone(),
        vec![
            (
                stream::<Report>(report.as_uuid()),
                vec![make::report(AssignmentDeclined {
                    patrol_id: patrol,
                    reason: "Out of area".into(),
                    at: t(130),
                })],
            ),
            (
                stream::<Patrol>(patrol.as_uuid()),
                closed(report, AssignmentOutcome::Declined, 130),
            ),
        ],
    )
    .await;
    let after_decline = assign(log, sup.clone(), report, patrol, 140).await;
    caught_up(&f.pool, after_decline).await;
    let row = report_row(&f.pool, report).await;
    assert_eq!(
        (
            row.status.as_str(),
            row.patrol_id,
            row.assigned_at,
            row.declines
        ),
        ("ASSIGNED", Some(patrol.as_uuid()), Some(t(140)), 1)
    );
    let inbox = queries::officer_inbox(
        &f.pool,
        officer.as_uuid(),
        station.as_uuid(),
        &PageRequest::default(),
    )
    .await
    .expect("inbox");
    assert_eq!(
        inbox.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![report.as_uuid()]
    );
    // Overdue to accept (15 min) at t(140 + 901); the breach is then recorded once.
    let now = t(140 + 901);
    let defaults = precinct_domain::sla::SlaDefaults::new(
        std::time::Duration::from_secs(900),
        std::time::Duration::from_secs(1800),
        None,
        80,
    );
    let overdue = queries::sla_overdue(
        &f.pool,
        SlaKind::Accept,
        &defaults,
        Some(station.as_uuid()),
        now,
        &PageRequest::default(),
    )
    .await
    .expect("sla");
    assert_eq!(overdue.items.len(), 1);
    assert_eq!(
        (overdue.items[0].id, overdue.items[0].overdue_by_secs),
        (report.as_uuid(), 1)
    );
    assert_eq!(
        queries::sla_breach_candidates(&f.pool, SlaKind::Accept, &defaults, now, 10)
            .await
            .expect("candidates")
            .iter()
            .map(|d| (d.id, d.deadline_secs))
            .collect::<Vec<_>>(),
        vec![(report.as_uuid(), 900)]
    );
    let breach = append(
        log,
        admin.clone(),
        rs(vec![make::report(SlaBreached {
            kind: SlaKind::Accept,
            patrol_id: patrol,
            since: t(140),
            deadline: t(1040),
            at: t(1041),
        })]),
    )
    .await;
    caught_up(&f.pool, breach).await;
    assert!(
        queries::sla_breach_candidates(&f.pool, SlaKind::Accept, &defaults, now, 10)
            .await
            .expect("candidates")
            .is_empty()
    );

    append(
        log,
        off.clone(),
        rs(vec![make::report(AssignmentAccepted {
            patrol_id: patrol,
            at: t(1100),
        })]),
    )
    .await;
    append(
        log,
        off.clone(),
        rs(vec![make::report(ReportResponding {
            patrol_id: patrol,
            at: t(1200),
        })]),
    )
    .await;
    let note_id = NoteId::new(new_id());
    append(
        log,
        off.clone(),
        rs(vec![make::report(NoteAdded {
            note_id,
            note: "On scene".into(),
            author_id: officer,
            at: t(1300),
        })]),
    )
    .await;
    append(
        log,
        off.clone(),
        rs(vec![make::report(EvidenceAttached {
            evidence_id: EvidenceId::new(new_id()),
            url: "https://example.org/e.jpg".into(),
            media_type: MediaType::Photo,
            captured_at: None,
            description: Some("Lock".into()),
            author_id: officer,
            at: t(1310),
        })]),
    )
    .await;
    append(
        log,
        off.clone(),
        rs(vec![make::report(ReportResolved {
            patrol_id: patrol,
            resolution_notes: "Bike found".into(),
            at: t(1400),
        })]),
    )
    .await;
    let rejected = append(
        log,
        sup.clone(),
        rs(vec![make::report(ClosureRejected {
            reviewer_id: supervisor,
            reason: "Need a statement".into(),
            at: t(1500),
        })]),
    )
    .await;
    caught_up(&f.pool, rejected).await;
    let row = report_row(&f.pool, report).await;
    assert_eq!(
        (
            row.status.as_str(),
            row.resolved_at,
            row.resolution_notes.as_deref()
        ),
        ("RESPONDING", None, None)
    );

    append(
        log,
        off.clone(),
        rs(vec![make::report(ReportResolved {
            patrol_id: patrol,
            resolution_notes: "Statement taken".into(),
            at: t(1600),
        })]),
    )
    .await;
    let last = append(
        log,
        sup.clone(),
        vec![
            (
                stream::<Report>(report.as_uuid()),
                vec![make::report(ClosureApproved {
                    reviewer_id: supervisor,
                    at: t(1700),
                })],
            ),
            (
                stream::<Patrol>(patrol.as_uuid()),
                closed(report, AssignmentOutcome::Finished, 1700),
            ),
        ],
    )
    .await;
    caught_up(&f.pool, last).await;

    let row = report_row(&f.pool, report).await;
    assert_eq!(row.status, "CLOSED");
    assert_eq!(row.station_id, station.as_uuid());
    assert_eq!(row.priority, "HIGH");
    assert_eq!(row.reporter_id, Some(citizen.as_uuid()));
    assert!(!row.anonymous);
    assert_eq!((row.latitude, row.longitude), (7.071234, 125.615678));
    assert_eq!(
        (row.public_latitude, row.public_longitude),
        (7.071, 125.616)
    );
    assert_eq!(row.description, "My blue bike was taken from the rack");
    assert_eq!(
        (row.street.as_deref(), row.contact.as_deref()),
        (Some("1 Main St"), Some("+63 900 000 0000"))
    );
    assert_eq!(row.routing_rule, "NEAREST_PRECINCT");
    assert_eq!(row.patrol_id, Some(patrol.as_uuid()));
    assert_eq!(
        (row.assigned_at, row.accepted_at, row.responding_at),
        (Some(t(140)), Some(t(1100)), Some(t(1200)))
    );
    assert_eq!(
        (row.resolved_at, row.closed_at),
        (Some(t(1600)), Some(t(1700)))
    );
    assert_eq!(row.resolution_notes.as_deref(), Some("Statement taken"));
    assert_eq!(row.declines, 1);
    assert_eq!(row.sla_accept_breached_at, Some(t(1041)));
    assert_eq!(row.notes.as_array().map(Vec::len), Some(1));
    assert_eq!(row.notes[0]["note"], "On scene");
    assert_eq!(row.evidence[0]["media_type"], "PHOTO");
    assert_eq!((row.submitted_at, row.updated_at), (t(100), t(1700)));
    assert_eq!(
        row.last_position,
        last as i64 - 2,
        "the report's event comes first in the command"
    );
    // The public columns of the same row: what the public list and Open311 read.
    let public = queries::get_public_report(&f.pool, row.id)
        .await
        .expect("public row")
        .expect("exists");
    assert_eq!((public.latitude, public.longitude), (7.071, 125.616));
    assert_eq!(
        (
            &public.status,
            &public.crime_types,
            &public.crime_type_codes
        ),
        (&row.status, &row.crime_types, &row.crime_type_codes)
    );
    assert_eq!(
        (public.occurred_at, public.submitted_at, public.updated_at),
        (row.occurred_at, row.submitted_at, row.updated_at)
    );
    assert_eq!((&public.city, &public.state), (&row.city, &row.state));
    let public_json = serde_json::to_string(&public).expect("json");
    assert!(!public_json.contains("Main St") && !public_json.contains("bike was taken"));
    assert!(!serde_json::to_string(&row).expect("json").contains(HASH));

    let p = queries::get_patrol(&f.pool, patrol.as_uuid())
        .await
        .expect("patrol")
        .expect("exists");
    assert_eq!(
        (
            p.status.as_str(),
            p.open_assignments,
            p.declines,
            p.last_assigned_at
        ),
        ("AVAILABLE", 0, 1, Some(t(140)))
    );
    assert_eq!(p.officer_ids, vec![officer.as_uuid()]);
    let w = queries::workloads(&f.pool, Some(station.as_uuid()), &PageRequest::default())
        .await
        .expect("workloads");
    assert_eq!(
        (
            w.items.len(),
            w.items[0].call_sign.as_str(),
            w.items[0].declines
        ),
        (1, "ALPHA-1", 1)
    );
    let snap = queries::workload_snapshot(&f.pool, station.as_uuid())
        .await
        .expect("snapshot");
    assert_eq!(
        (snap[0].patrol_id, snap[0].status, snap[0].declines),
        (patrol, PatrolStatus::Available, 1)
    );
    assert!(queries::officer_inbox(
        &f.pool,
        officer.as_uuid(),
        station.as_uuid(),
        &PageRequest::default(),
    )
    .await
    .expect("inbox")
    .items
    .is_empty());

    let s = queries::list_stations(&f.pool, &PageRequest::default())
        .await
        .expect("stations");
    assert_eq!(
        (
            s.items.len(),
            s.items[0].name.as_str(),
            s.items[0].kind.as_str()
        ),
        (1, "Central", "PRECINCT")
    );
    let facts = queries::station_facts(&f.pool).await.expect("facts");
    assert_eq!(facts[0].station_id, station);
    let a = queries::get_account(&f.pool, officer.as_uuid())
        .await
        .expect("account")
        .expect("exists");
    assert_eq!(
        (a.email.as_deref(), a.role.as_str(), a.station_id, a.active),
        (
            Some("officer@example.org"),
            "PATROL",
            Some(station.as_uuid()),
            true
        )
    );
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'accounts'",
    )
    .fetch_all(&f.pool)
    .await
    .expect("columns");
    assert!(
        columns
            .iter()
            .all(|c| !c.contains("password") && !c.contains("hash")),
        "{columns:?}"
    );
    let dump: String = sqlx::query_scalar("SELECT json_agg(a)::text FROM accounts a")
        .fetch_one(&f.pool)
        .await
        .expect("dump");
    assert!(!dump.contains("argon2"));

    // Audit: one row per event, with who did it.
    let head = f.log.head().await.expect("head");
    assert_eq!(count(&f.pool, "audit").await, head as i64);
    let trail = queries::audit(
        &f.pool,
        &queries::AuditFilter {
            target_id: Some(report.as_uuid()),
            ..Default::default()
        },
        &PageRequest::first(100),
    )
    .await
    .expect("audit");
    let actions: Vec<&str> = trail.items.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "ReportSubmitted",
            "ReportTriaged",
            "ReportAssigned",
            "AssignmentDeclined",
            "ReportAssigned",
            "SlaBreached",
            "AssignmentAccepted",
            "ReportResponding",
            "NoteAdded",
            "EvidenceAttached",
            "ReportResolved",
            "ClosureRejected",
            "ReportResolved",
            "ClosureApproved"
        ]
    );
    assert_eq!(
        (
            trail.items[0].actor_id,
            trail.items[0].actor_role.as_deref()
        ),
        (Some(citizen.as_uuid()), Some("CITIZEN"))
    );
    assert_eq!(
        (trail.items[5].actor_kind.as_str(), trail.items[5].actor_id),
        ("SYSTEM", None)
    );
    let by_officer = queries::audit(
        &f.pool,
        &queries::AuditFilter {
            actor_id: Some(officer.as_uuid()),
            ..Default::default()
        },
        &PageRequest::first(100),
    )
    .await
    .expect("audit");
    assert!(by_officer
        .items
        .iter()
        .all(|r| r.actor_role.as_deref() == Some("PATROL")));
    assert_eq!(
        by_officer.items.len(),
        3 + 6,
        "decline (3 events) + accept..resolve (6)"
    );

    assert_all_stopped(&projector.stop().await, Some(head));
}

#[tokio::test]
async fn the_queue_lists_open_reports_by_priority_then_age() {
    let f = fixture().await;
    let projector = start_projector(&f, RunOptions::default());
    let log = &f.log;
    let station = StationId::new(new_id());
    let other = StationId::new(new_id());
    let p = (7.0, 125.0);

    let low_old = submit(log, station, p, 10).await;
    let crit_new = submit(log, station, p, 50).await;
    let crit_old = submit(log, station, p, 20).await;
    let med = submit(log, station, p, 30).await;
    let high = submit(log, station, p, 40).await;
    let withdrawn = submit(log, station, p, 5).await;
    let elsewhere = submit(log, other, p, 1).await;
    let same_time_a = submit(log, station, p, 30).await;
    triage(log, low_old, Priority::Low, 60).await;
    triage(log, crit_new, Priority::Critical, 60).await;
    triage(log, crit_old, Priority::Critical, 60).await;
    triage(log, high, Priority::High, 60).await;
    let last = append(
        log,
        Actor::Anonymous,
        vec![(
            stream::<Report>(withdrawn.as_uuid()),
            vec![make::report(ReportWithdrawn {
                reason: None,
                at: t(70),
            })],
        )],
    )
    .await;
    caught_up(&f.pool, last).await;

    let (m1, m2) = if med.as_uuid() < same_time_a.as_uuid() {
        (med, same_time_a)
    } else {
        (same_time_a, med)
    };
    let expected: Vec<Uuid> = [crit_old, crit_new, high, m1, m2, low_old]
        .iter()
        .map(|r| r.as_uuid())
        .collect();
    let filter = queries::QueueFilter {
        station_id: Some(station.as_uuid()),
        ..Default::default()
    };
    let all = queries::report_queue(&f.pool, &filter, &PageRequest::default())
        .await
        .expect("queue");
    assert_eq!(all.items.iter().map(|r| r.id).collect::<Vec<_>>(), expected);
    assert_eq!(all.next_cursor, None);

    // The same order, two at a time (the cursor crosses priorities and equal times).
    let mut paged = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let page = queries::report_queue(&f.pool, &filter, &PageRequest::after(2, cursor.clone()))
            .await
            .expect("page");
        paged.extend(page.items.iter().map(|r| r.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(paged, expected);

    let crit = queries::report_queue(
        &f.pool,
        &queries::QueueFilter {
            priority: Some("CRITICAL".into()),
            ..filter.clone()
        },
        &PageRequest::default(),
    )
    .await
    .expect("queue");
    assert_eq!(crit.items.len(), 2);
    let closed_only = queries::report_queue(
        &f.pool,
        &queries::QueueFilter {
            status: Some(vec!["WITHDRAWN".into()]),
            ..filter.clone()
        },
        &PageRequest::default(),
    )
    .await
    .expect("queue");
    assert!(
        closed_only.items.is_empty(),
        "withdrawn reports are not in the queue"
    );
    let everywhere = queries::report_queue(
        &f.pool,
        &queries::QueueFilter::default(),
        &PageRequest::first(100),
    )
    .await
    .expect("queue");
    assert!(everywhere.items.iter().any(|r| r.id == elsewhere.as_uuid()));
    projector.stop().await;
}

#[tokio::test]
async fn near_keeps_reports_within_the_great_circle_radius() {
    let f = fixture().await;
    let projector = start_projector(&f, RunOptions::default());
    let log = &f.log;
    let station = StationId::new(new_id());
    let (lat, lon): (f64, f64) = (7.07, 125.61);
    let m_per_deg_lat = 111_195.08;
    let m_per_deg_lon = m_per_deg_lat * lat.to_radians().cos();
    let north_500 = submit(log, station, (lat + 500.0 / m_per_deg_lat, lon), 1).await;
    let east_900 = submit(log, station, (lat, lon + 900.0 / m_per_deg_lon), 2).await;
    // Inside the bounding box, outside the circle (about 1131 m away).
    let _corner = submit(
        log,
        station,
        (lat + 800.0 / m_per_deg_lat, lon + 800.0 / m_per_deg_lon),
        3,
    )
    .await;
    let _far = submit(log, station, (lat + 0.05, lon), 4).await;
    // Across the antimeridian: about 222 m apart.
    let west_edge = submit(log, station, (0.0, 179.999), 5).await;
    let east_edge = submit(log, station, (0.0, -179.999), 6).await;
    let last = triage(log, east_edge, Priority::Low, 7).await;
    caught_up(&f.pool, last).await;

    let near = |lat, lon, r| queries::ReportFilter {
        near: Some(queries::Near::new(lat, lon, r)),
        ..Default::default()
    };
    let ids = |page: queries::Page<queries::ReportRow>| {
        page.items.iter().map(|r| r.id).collect::<HashSet<_>>()
    };
    let found = queries::list_reports(&f.pool, &near(lat, lon, 1000.0), &PageRequest::default())
        .await
        .expect("near");
    assert_eq!(
        ids(found),
        HashSet::from([north_500.as_uuid(), east_900.as_uuid()])
    );
    let found = queries::list_reports(&f.pool, &near(lat, lon, 600.0), &PageRequest::default())
        .await
        .expect("near");
    assert_eq!(ids(found), HashSet::from([north_500.as_uuid()]));
    let found = queries::list_reports(
        &f.pool,
        &near(0.0, 179.9995, 500.0),
        &PageRequest::default(),
    )
    .await
    .expect("near");
    assert_eq!(
        ids(found),
        HashSet::from([west_edge.as_uuid(), east_edge.as_uuid()])
    );
    // Combined with other filters.
    let mut filter = near(lat, lon, 1000.0);
    filter.status = Some(vec!["ASSIGNED".into()]);
    assert!(
        queries::list_reports(&f.pool, &filter, &PageRequest::default())
            .await
            .expect("near")
            .items
            .is_empty()
    );
    let bad = queries::list_reports(&f.pool, &near(91.0, 0.0, 10.0), &PageRequest::default()).await;
    assert!(matches!(
        bad,
        Err(precinct_readmodel::QueryError::Invalid { .. })
    ));
    projector.stop().await;
}

#[tokio::test]
async fn keyset_pages_visit_every_row_once_in_order() {
    let f = fixture().await;
    let projector = start_projector(&f, RunOptions::default());
    let station = StationId::new(new_id());
    // 47 reports; groups of five share a submission time, so the id breaks ties.
    let mut writes = Vec::new();
    let mut expected = Vec::new();
    for i in 0..47i64 {
        let id = ReportId::new(new_id());
        writes.push(StreamWrite {
            stream: stream::<Report>(id.as_uuid()),
            expected: ExpectedVersion::NoStream,
            events: vec![make::submitted(id, station, (7.0, 125.0), None, i / 5)],
        });
        expected.push((t(i / 5), id.as_uuid()));
    }
    let last = within(
        10,
        "append",
        f.log
            .append_multi(writes, &CommandMeta::new(Uuid::new_v4(), Actor::System)),
    )
    .await
    .expect("append")
    .position;
    caught_up(&f.pool, last).await;
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<Uuid> = expected.into_iter().map(|(_, id)| id).collect();

    let filter = queries::ReportFilter {
        station_id: Some(station.as_uuid()),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = queries::list_reports(&f.pool, &filter, &PageRequest::after(10, cursor))
            .await
            .expect("page");
        pages += 1;
        assert!(page.items.len() <= 10);
        seen.extend(page.items.iter().map(|r| r.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 5);
    assert_eq!(
        seen, expected,
        "every report once, newest first, ties by id"
    );

    // Audit pages by position; default and capped limits.
    let mut positions = Vec::new();
    let mut cursor = None;
    loop {
        let page = queries::audit(
            &f.pool,
            &queries::AuditFilter::default(),
            &PageRequest::after(7, cursor),
        )
        .await
        .expect("audit");
        positions.extend(page.items.iter().map(|r| r.position));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(positions, (1..=47).collect::<Vec<i64>>());
    let default = queries::list_reports(&f.pool, &filter, &PageRequest::default())
        .await
        .expect("page");
    assert_eq!(default.items.len(), 20);
    let capped = queries::list_reports(&f.pool, &filter, &PageRequest::first(1000))
        .await
        .expect("page");
    assert_eq!((capped.items.len(), capped.next_cursor), (47, None));
    let bad = queries::list_reports(
        &f.pool,
        &filter,
        &PageRequest::after(10, Some("not-a-cursor".into())),
    )
    .await;
    assert!(matches!(
        bad,
        Err(precinct_readmodel::QueryError::BadCursor)
    ));
    projector.stop().await;
}

#[tokio::test]
async fn a_poison_event_quarantines_its_aggregate_and_the_projection_goes_on() {
    let f = fixture().await;
    let log = &f.log;
    let station = StationId::new(new_id());
    let first = submit(log, station, (7.0, 125.0), 1).await;
    // A known type whose payload does not decode.
    let poison = append(
        log,
        Actor::System,
        vec![(stream::<Report>(first.as_uuid()), vec![poison_triage(2)])],
    )
    .await;
    let second = submit(log, station, (7.0, 125.0), 3).await;
    // A valid event of the poisoned report: held back behind the poison one.
    let held = triage(log, first, Priority::High, 4).await;
    let patrol = PatrolId::new(new_id());
    let head = append(
        log,
        Actor::System,
        vec![(
            stream::<Patrol>(patrol.as_uuid()),
            vec![make::patrol(patrol, "B-2", station, vec![])],
        )],
    )
    .await;
    // Started after the appends: the poison event sits mid-batch while catching up.
    let projector = start_projector(&f, RunOptions::default());
    caught_up(&f.pool, head).await;

    assert_eq!(
        checkpoint(&f.pool, "reports").await,
        (head as i64, None, None)
    );
    let entries = precinct_readmodel::quarantine::held(&f.pool, Some("reports"))
        .await
        .expect("quarantine");
    // The analytics projection decodes report events too: it holds the report back
    // the same way, and nothing else.
    let analytics: Vec<(i64, String)> =
        precinct_readmodel::quarantine::held(&f.pool, Some("analytics"))
            .await
            .expect("quarantine")
            .iter()
            .map(|q| (q.position, q.reason.clone()))
            .collect();
    assert_eq!(
        analytics,
        [
            (poison as i64, "poison".to_string()),
            (held as i64, "held".to_string())
        ]
    );
    let summary: Vec<_> = entries
        .iter()
        .map(|q| {
            (
                q.projection.as_str(),
                q.position,
                q.aggregate_id,
                q.event_type.as_str(),
                q.reason.as_str(),
                q.error_class.as_deref(),
            )
        })
        .collect();
    let first_id = Some(first.as_uuid());
    assert_eq!(
        summary,
        [
            (
                "reports",
                poison as i64,
                first_id,
                "ReportTriaged",
                "poison",
                Some("decode")
            ),
            (
                "reports",
                held as i64,
                first_id,
                "ReportTriaged",
                "held",
                None
            ),
        ]
    );
    assert!(entries[0]
        .error
        .as_deref()
        .unwrap_or_default()
        .contains("ReportTriaged"));
    // The poisoned report keeps what came before the poison event; nothing after it
    // is applied out of order; every other aggregate is current.
    assert_eq!(report_row(&f.pool, first).await.priority, "MEDIUM");
    assert!(queries::get_report(&f.pool, second.as_uuid())
        .await
        .expect("get")
        .is_some());
    assert!(queries::get_patrol(&f.pool, patrol.as_uuid())
        .await
        .expect("patrol")
        .is_some());
    assert_eq!(count(&f.pool, "audit").await, head as i64);
    assert!(
        precinct_readmodel::quarantine::is_held(&f.pool, "reports", "report", first.as_uuid())
            .await
            .expect("held")
    );

    let status = precinct_projections::status(&f.pool, &f.log)
        .await
        .expect("status");
    let by_name = |n: &str| status.iter().find(|s| s.name == n).cloned().expect(n);
    let reports = by_name("reports");
    assert_eq!(
        (reports.position, reports.lag_positions, reports.quarantined),
        (head, 0, 2)
    );
    assert!(reports.is_degraded() && reports.is_ready(0, 0.0));
    assert_eq!(by_name("audit").quarantined, 0);

    // Later events of the held report are held too; others' are applied.
    let outcomes = projector.stop().await;
    assert_eq!(outcomes["reports"], Outcome::Stopped { position: head });
    let projector = start_projector(&f, RunOptions::default());
    let late = triage(log, first, Priority::Low, 5).await;
    let other = triage(log, second, Priority::Critical, 6).await;
    caught_up(&f.pool, other).await;
    assert_eq!(report_row(&f.pool, second).await.priority, "CRITICAL");
    assert_eq!(report_row(&f.pool, first).await.priority, "MEDIUM");
    let positions: Vec<i64> = precinct_readmodel::quarantine::held(&f.pool, Some("reports"))
        .await
        .expect("held")
        .iter()
        .map(|q| q.position)
        .collect();
    assert_eq!(positions, [poison as i64, held as i64, late as i64]);
    projector.stop().await;
}

/// Everything the kill test appends, and what the read models must then say.
struct Workload {
    head: u64,
    /// patrol -> (open assignments, declines)
    patrols: BTreeMap<Uuid, (i32, i32)>,
    /// report -> (status, declines)
    reports: BTreeMap<Uuid, (&'static str, i32)>,
    /// Reports whose second event is poison: the reports projection quarantines it and
    /// holds back the rest of the report.
    poisoned: Vec<ReportId>,
}

/// 12 patrols and 500 reports: every report submitted and assigned, every third
/// declined and assigned again, every fifth accepted; every 50th report's second event
/// is poison. About 2,400 events in commands of one to three events, appended in atomic
/// batches of up to 600.
async fn big_workload(log: &EventLog) -> Workload {
    let station = StationId::new(new_id());
    let patrols: Vec<PatrolId> = (0..12).map(|_| PatrolId::new(new_id())).collect();
    let mut expected_patrols: BTreeMap<Uuid, (i32, i32)> =
        patrols.iter().map(|p| (p.as_uuid(), (0, 0))).collect();
    let mut expected_reports = BTreeMap::new();
    let mut poisoned = Vec::new();
    let mut writes: Vec<StreamWrite> = patrols
        .iter()
        .enumerate()
        .map(|(i, p)| StreamWrite {
            stream: stream::<Patrol>(p.as_uuid()),
            expected: ExpectedVersion::Any,
            events: vec![make::patrol(*p, &format!("P-{i:02}"), station, vec![])],
        })
        .collect();
    for i in 0..500usize {
        let report = ReportId::new(new_id());
        let at = i as i64;
        let mut patrol = patrols[i % patrols.len()];
        let mut r = vec![make::submitted(report, station, (7.0, 125.0), None, at)];
        let poison = i % 50 == 7;
        if poison {
            r.push(poison_triage(at));
            poisoned.push(report);
        }
        let mut p: BTreeMap<PatrolId, Vec<NewEvent>> = BTreeMap::new();
        r.push(make::report(ReportAssigned {
            patrol_id: patrol,
            auto: None,
            at: t(at),
        }));
        p.entry(patrol)
            .or_default()
            .push(make::patrol_event(PatrolAssignmentOpened {
                report_id: report,
                at: t(at),
            }));
        let mut status = "ASSIGNED";
        let mut declines = 0;
        if i % 3 == 0 {
            r.push(make::report(AssignmentDeclined {
                patrol_id: patrol,
                reason: "busy".into(),
                at: t(at),
            }));
            p.entry(patrol)
                .or_default()
                .push(make::patrol_event(PatrolAssignmentClosed {
                    report_id: report,
                    outcome: AssignmentOutcome::Declined,
                    at: t(at),
                }));
            expected_patrols.entry(patrol.as_uuid()).or_default().1 += 1;
            declines = 1;
            patrol = patrols[(i + 1) % patrols.len()];
            r.push(make::report(ReportAssigned {
                patrol_id: patrol,
                auto: None,
                at: t(at),
            }));
            p.entry(patrol)
                .or_default()
                .push(make::patrol_event(PatrolAssignmentOpened {
                    report_id: report,
                    at: t(at),
                }));
        }
        expected_patrols.entry(patrol.as_uuid()).or_default().0 += 1;
        if i % 5 == 0 {
            r.push(make::report(AssignmentAccepted {
                patrol_id: patrol,
                at: t(at),
            }));
            status = "ACCEPTED";
        }
        // A poisoned report's row stays as its submission left it.
        let row = if poison {
            ("NEW", 0)
        } else {
            (status, declines)
        };
        expected_reports.insert(report.as_uuid(), row);
        writes.push(StreamWrite {
            stream: stream::<Report>(report.as_uuid()),
            expected: ExpectedVersion::Any,
            events: r,
        });
        for (patrol, events) in p {
            writes.push(StreamWrite {
                stream: stream::<Patrol>(patrol.as_uuid()),
                expected: ExpectedVersion::Any,
                events,
            });
        }
    }
    // Atomic batches of at most 600 events (whole streams' writes kept together).
    let mut head = 0;
    let mut batch: Vec<StreamWrite> = Vec::new();
    let mut size = 0;
    for w in writes {
        if size + w.events.len() > 600 {
            head = within(
                20,
                "append batch",
                log.append_multi(
                    std::mem::take(&mut batch),
                    &CommandMeta::new(Uuid::new_v4(), Actor::System),
                ),
            )
            .await
            .expect("append")
            .position;
            size = 0;
        }
        size += w.events.len();
        batch.push(w);
    }
    if !batch.is_empty() {
        head = within(
            20,
            "append batch",
            log.append_multi(batch, &CommandMeta::new(Uuid::new_v4(), Actor::System)),
        )
        .await
        .expect("append")
        .position;
    }
    Workload {
        head,
        patrols: expected_patrols,
        reports: expected_reports,
        poisoned,
    }
}

/// A `ReportTriaged` whose payload does not decode (a known type, a bad `at`).
fn poison_triage(at: i64) -> NewEvent {
    NewEvent {
        event_type: "ReportTriaged".into(),
        schema_version: 1,
        occurred_at: t(at),
        data: serde_json::json!({"priority": "URGENT", "at": "yesterday"}),
    }
}

/// What the quarantine must hold for the workload, read from the log: in each
/// projection of report events (`reports`, `analytics`), each poisoned report's second
/// event as poison, its later events held, nothing else.
async fn expected_quarantine(log: &EventLog, w: &Workload) -> Vec<(String, i64, String)> {
    let mut out = Vec::new();
    for report in &w.poisoned {
        let events = log
            .read(&stream::<Report>(report.as_uuid()))
            .await
            .expect("read");
        for (i, e) in events.iter().enumerate().skip(1) {
            let reason = if i == 1 { "poison" } else { "held" };
            for projection in ["analytics", "reports"] {
                out.push((projection.into(), e.position() as i64, reason.into()));
            }
        }
    }
    out.sort();
    out
}

async fn assert_workload_projected(pool: &PgPool, log: &EventLog, w: &Workload) {
    let quarantine: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT projection, position, reason FROM quarantine ORDER BY projection, position",
    )
    .fetch_all(pool)
    .await
    .expect("quarantine");
    assert_eq!(
        quarantine,
        expected_quarantine(log, w).await,
        "each poison event quarantined once, and its report's later events held once"
    );
    let head = w.head as i64;
    one_audit_row_per_position(pool, w.head).await;
    let patrols: BTreeMap<Uuid, (i32, i32)> =
        sqlx::query_as::<_, (Uuid, i32, i32)>("SELECT id, open_assignments, declines FROM patrols")
            .fetch_all(pool)
            .await
            .expect("patrols")
            .into_iter()
            .map(|(id, open, declines)| (id, (open, declines)))
            .collect();
    assert_eq!(patrols, w.patrols, "patrol counters");
    let reports: BTreeMap<Uuid, (String, i32)> =
        sqlx::query_as::<_, (Uuid, String, i32)>("SELECT id, status, declines FROM reports")
            .fetch_all(pool)
            .await
            .expect("reports")
            .into_iter()
            .map(|(id, status, declines)| (id, (status, declines)))
            .collect();
    let expected: BTreeMap<Uuid, (String, i32)> = w
        .reports
        .iter()
        .map(|(id, (s, d))| (*id, ((*s).to_string(), *d)))
        .collect();
    assert_eq!(reports, expected, "report rows");
    let checkpoints: Vec<(String, i64)> =
        sqlx::query_as("SELECT projection, position FROM checkpoints WHERE projection = ANY($1)")
            .bind(
                precinct_readmodel::EVENT_PROJECTIONS
                    .iter()
                    .map(|n| (*n).to_owned())
                    .collect::<Vec<_>>(),
            )
            .fetch_all(pool)
            .await
            .expect("checkpoints");
    let mut expected: Vec<(String, i64)> = precinct_readmodel::EVENT_PROJECTIONS
        .iter()
        .map(|n| ((*n).to_owned(), head))
        .collect();
    expected.sort();
    let mut checkpoints = checkpoints;
    checkpoints.sort();
    assert_eq!(checkpoints, expected, "every event projection at the head");
}

#[tokio::test]
async fn a_projector_killed_mid_batch_resumes_without_lost_or_doubled_effects() {
    let f = fixture().await;
    let w = big_workload(&f.log).await;
    assert!(w.head > 2000, "{} events", w.head);

    let mut mid_way_kills = 0;
    for round in 0..4u64 {
        let projector = start_projector(&f, RunOptions::default());
        // Kill it as soon as some batch committed (round 0), or a little later.
        within(30, "first commit after restart", async {
            let before = checkpoint(&f.pool, "audit").await.0;
            loop {
                let now = checkpoint(&f.pool, "audit").await.0;
                if now > before || now == w.head as i64 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(round * 7)).await;
        projector.handle.abort();
        let _ = within(10, "abort", projector.handle).await;
        let positions: Vec<(String, i64)> =
            sqlx::query_as("SELECT projection, position FROM checkpoints ORDER BY 1")
                .fetch_all(&f.pool)
                .await
                .expect("checkpoints");
        if positions.iter().any(|(_, p)| *p > 0 && *p < w.head as i64) {
            mid_way_kills += 1;
        }
        // Whatever committed is consistent with its checkpoint: audit rows = its position.
        let audit_at: i64 = checkpoint(&f.pool, "audit").await.0;
        let pause = Duration::from_millis(200);
        tokio::time::sleep(pause).await; // let aborted transactions roll back
        assert_eq!(
            count(&f.pool, "audit").await,
            checkpoint(&f.pool, "audit").await.0
        );
        assert!(checkpoint(&f.pool, "audit").await.0 >= audit_at);
    }
    assert!(mid_way_kills > 0, "no kill landed while catching up");

    let projector = start_projector(&f, RunOptions::default());
    caught_up(&f.pool, w.head).await;
    assert_all_stopped(&projector.stop().await, None);
    assert_workload_projected(&f.pool, &f.log, &w).await;
}

/// Waits until every projection but `except` has applied `head`.
async fn others_reach(pool: &PgPool, except: &str, head: u64) {
    within(60, "the other projections reach the head", async {
        loop {
            let behind: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM checkpoints
                 WHERE projection = ANY($1) AND projection <> $2 AND position < $3",
            )
            .bind(
                precinct_readmodel::EVENT_PROJECTIONS
                    .iter()
                    .map(|n| (*n).to_owned())
                    .collect::<Vec<_>>(),
            )
            .bind(except)
            .bind(head as i64)
            .fetch_one(pool)
            .await
            .expect("checkpoints");
            if behind == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_stuck_projection_does_not_hold_back_the_others_and_catches_up_alone() {
    let f = fixture().await;
    let log = &f.log;
    let station = StationId::new(new_id());
    let report = submit(log, station, (7.0, 125.0), 1).await;
    let projector = start_projector(&f, RunOptions::default());
    caught_up(&f.pool, f.log.head().await.expect("head")).await;

    // The audit projection cannot write (its table is locked): each of its batches
    // waits. The shared reader must not wait for it.
    let blocker = lock_audit(&f.pool).await;
    let priorities = [Priority::High, Priority::Low, Priority::Critical];
    let mut head = 0;
    // More deliveries, one command at a time, than a projection's queue holds.
    for i in 0..(precinct_projections::reader::QUEUE as i64 * 3) {
        head = triage(log, report, priorities[i as usize % 3], 2 + i).await;
    }
    others_reach(&f.pool, "audit", head).await;
    let (audit_at, ..) = checkpoint(&f.pool, "audit").await;
    assert!(
        audit_at < head as i64,
        "audit was locked, yet at {audit_at}"
    );
    let last = priorities[(precinct_projections::reader::QUEUE * 3 - 1) % 3];
    assert_eq!(report_row(&f.pool, report).await.priority, last.as_str());
    println!("while audit was stuck at {audit_at}, the others reached {head}");

    // Released, it catches up on its own and joins the others again: every event once.
    blocker.rollback().await.expect("release");
    caught_up(&f.pool, head).await;
    let later = triage(log, report, Priority::Medium, 1000).await;
    caught_up(&f.pool, later).await;
    one_audit_row_per_position(&f.pool, later).await;
    assert_all_stopped(&projector.stop().await, Some(later));
}

/// A projection whose database connection is cut in the middle of a batch (a
/// PostgreSQL restart, a failover, a proxy timing out) takes it for a transient
/// failure: it pauses, reads its checkpoint again and applies the batch — every event
/// once — instead of stopping or quarantining anything.
#[tokio::test]
async fn a_projection_whose_connection_is_cut_mid_batch_retries_and_applies_every_event_once() {
    let f = fixture().await;
    let log = &f.log;
    let report = submit(log, StationId::new(new_id()), (7.0, 125.0), 1).await;
    let projector = start_projector(&f, RunOptions::default());
    caught_up(&f.pool, f.log.head().await.expect("head")).await;

    // The audit's next batch waits on a lock; its connection is then terminated.
    let blocker = lock_audit(&f.pool).await;
    let head = triage(log, report, Priority::High, 2).await;
    others_reach(&f.pool, "audit", head).await;
    let pid: i32 = within(20, "the audit's batch waits on the lock", async {
        loop {
            let waiting: Vec<i32> = sqlx::query_scalar(
                "SELECT pid FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND query ILIKE '%audit%'",
            )
            .fetch_all(&f.pool)
            .await
            .expect("activity");
            if let [pid] = waiting[..] {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let done: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&f.pool)
        .await
        .expect("terminate");
    assert!(done, "the backend {pid} was not terminated");
    blocker.rollback().await.expect("release");

    caught_up(&f.pool, head).await;
    one_audit_row_per_position(&f.pool, head).await;
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM quarantine")
        .fetch_one(&f.pool)
        .await
        .expect("quarantine");
    assert_eq!(held, 0, "a cut connection is no poison");
    assert_all_stopped(&projector.stop().await, Some(head));
}

#[tokio::test]
async fn projections_restarted_from_far_apart_checkpoints_apply_every_event_once() {
    let f = fixture().await;
    let w = big_workload(&f.log).await;
    // The audit projection alone, to the head.
    let only = |name: &str| RunOptions {
        only: Some(vec![name.to_owned()]),
        ..RunOptions::default()
    };
    let projector = start_projector(&f, only("audit"));
    caught_up_one(&f.pool, "audit", w.head).await;
    let outcomes = projector.stop().await;
    // Only the audit ran: no other projection applied anything.
    assert_eq!(
        outcomes.keys().copied().collect::<Vec<_>>(),
        ["audit"],
        "{outcomes:?}"
    );
    for name in precinct_readmodel::EVENT_PROJECTIONS {
        if *name != "audit" {
            assert_eq!(checkpoint(&f.pool, name).await.0, 0, "{name} ran");
        }
    }
    // The reports projection alone, killed after its first batches.
    let projector = start_projector(&f, only("reports"));
    within(30, "a first reports batch", async {
        while checkpoint(&f.pool, "reports").await.0 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    projector.handle.abort();
    let _ = within(10, "abort", projector.handle).await;
    println!(
        "checkpoints before the restart: audit {}, reports {}",
        checkpoint(&f.pool, "audit").await.0,
        checkpoint(&f.pool, "reports").await.0
    );

    // All together, sharing the reader only within 100 events of the most advanced:
    // the others first catch up on their own, then share it.
    let projector = start_projector(
        &f,
        RunOptions {
            share_within: 100,
            ..RunOptions::default()
        },
    );
    caught_up(&f.pool, w.head).await;
    assert_workload_projected(&f.pool, &f.log, &w).await;
    let patrol = PatrolId::new(new_id());
    let station = StationId::new(new_id());
    let later = append(
        &f.log,
        Actor::System,
        vec![(
            stream::<Patrol>(patrol.as_uuid()),
            vec![make::patrol(patrol, "C-3", station, vec![])],
        )],
    )
    .await;
    caught_up(&f.pool, later).await;
    assert!(queries::get_patrol(&f.pool, patrol.as_uuid())
        .await
        .expect("patrol")
        .is_some());
    assert_eq!(count(&f.pool, "audit").await, later as i64);
    projector.stop().await;
}

async fn caught_up_one(pool: &PgPool, name: &str, head: u64) {
    within(60, "one projection reaches the head", async {
        while checkpoint(pool, name).await.0 < head as i64 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Every event read model as JSON, rows ordered by primary key.
async fn dump(pool: &PgPool) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (table, pk) in [
        ("reports", "id"),
        ("patrols", "id"),
        ("stations", "id"),
        ("crime_types", "code"),
        ("webhooks", "id"),
        ("accounts", "id"),
        ("audit", "position"),
        ("analytics_reports", "report_id"),
        ("analytics_assignments", "report_id, t.seq"),
        (
            "analytics_hourly",
            "station_id, t.hour, t.priority, t.status, t.crime_type_codes",
        ),
    ] {
        let rows: serde_json::Value = sqlx::query_scalar(&format!(
            "SELECT coalesce(json_agg(t ORDER BY t.{pk}), '[]'::json) FROM {table} t"
        ))
        .fetch_one(pool)
        .await
        .expect("dump");
        out.insert(table.to_string(), rows);
    }
    serde_json::Value::Object(out)
}

/// Puts a row no event made into every table [`dump`] compares: a copy of its first row
/// under a new key, or (`crime_types`, `webhooks`: empty in the rebuild test) one
/// written out.
async fn stray_rows(pool: &PgPool) {
    let copies = [
        ("reports", "id", "gen_random_uuid()"),
        ("patrols", "id", "gen_random_uuid()"),
        ("stations", "id", "gen_random_uuid()"),
        ("accounts", "id", "gen_random_uuid()"),
        (
            "audit",
            "position",
            "(SELECT max(position) + 1000 FROM audit)",
        ),
        ("analytics_reports", "report_id", "gen_random_uuid()"),
        ("analytics_assignments", "report_id", "gen_random_uuid()"),
        ("analytics_hourly", "station_id", "gen_random_uuid()"),
    ];
    for (table, key, value) in copies {
        // Every column a row may be given (not generated ones).
        let columns: String = sqlx::query_scalar(
            "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name = $1 AND is_generated = 'NEVER' \
             AND coalesce(identity_generation, '') <> 'ALWAYS'",
        )
        .bind(table)
        .fetch_one(pool)
        .await
        .expect("columns");
        let copied = sqlx::query(&format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM jsonb_populate_record(\
             NULL::{table}, (SELECT to_jsonb(t) || jsonb_build_object('{key}', {value}) \
             FROM {table} t LIMIT 1))"
        ))
        .execute(pool)
        .await
        .expect("stray row");
        assert_eq!(copied.rows_affected(), 1, "{table} has a row to copy");
    }
    sqlx::query(
        "INSERT INTO crime_types (code, names, default_priority, created_at, updated_at) \
         VALUES ('STRAY', '{\"en\": \"Stray\"}', 'LOW', now(), now())",
    )
    .execute(pool)
    .await
    .expect("stray crime type");
    sqlx::query(
        "INSERT INTO webhooks (id, url, personal_data, enabled, created_by, created_position, \
         version, created_at, updated_at) \
         VALUES (gen_random_uuid(), 'https://stray.invalid/', false, true, gen_random_uuid(), \
         1, 1, now(), now())",
    )
    .execute(pool)
    .await
    .expect("stray webhook");
}

/// Every index of the schema, by name, as `pg_get_indexdef` writes it.
async fn index_definitions(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes \
         WHERE schemaname = current_schema() ORDER BY indexname",
    )
    .fetch_all(pool)
    .await
    .expect("indexes")
}

async fn deferred_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM deferred_indexes")
        .fetch_one(pool)
        .await
        .expect("deferred_indexes")
}

/// A rebuild that dies between dropping the secondary indexes and building them again
/// (here: it stops right after the drop committed) leaves them recorded, and the next
/// start of any process (`migrate`) builds every one as it was.
#[tokio::test]
async fn indexes_a_dead_rebuild_dropped_are_built_at_the_next_start() {
    let f = fixture().await;
    let before = index_definitions(&f.pool).await;

    let mut tx = f.pool.begin().await.expect("begin");
    let dropped = precinct_readmodel::deferred_indexes::defer(
        &mut tx,
        &[
            "reports",
            "audit",
            "analytics_reports",
            "analytics_assignments",
        ],
    )
    .await
    .expect("defer");
    tx.commit().await.expect("commit");

    let names: Vec<&str> = dropped.iter().map(String::as_str).collect();
    for expected in ["reports_queue", "reports_geo_cell", "audit_target"] {
        assert!(names.contains(&expected), "{expected} dropped: {names:?}");
    }
    for kept in ["reports_pkey", "reports_reporter", "audit_pkey"] {
        assert!(!names.contains(&kept), "{kept} kept: {names:?}");
    }
    let during = index_definitions(&f.pool).await;
    assert_eq!(during.len(), before.len() - dropped.len());
    assert_eq!(deferred_count(&f.pool).await, dropped.len() as i64);

    precinct_readmodel::migrate(&f.pool).await.expect("migrate");
    assert_eq!(index_definitions(&f.pool).await, before);
    assert_eq!(deferred_count(&f.pool).await, 0);
    // Nothing left to build: a second start builds nothing.
    assert_eq!(
        precinct_readmodel::deferred_indexes::restore(&f.pool)
            .await
            .expect("restore"),
        0
    );

    // What a rebuild that lives calls: `restore` builds each recorded index once and
    // says how many.
    let mut tx = f.pool.begin().await.expect("begin");
    let again = precinct_readmodel::deferred_indexes::defer(&mut tx, &["reports"])
        .await
        .expect("defer");
    tx.commit().await.expect("commit");
    assert!(again.len() >= 10, "{again:?}");
    assert_eq!(
        precinct_readmodel::deferred_indexes::restore(&f.pool)
            .await
            .expect("restore"),
        again.len()
    );
    assert_eq!(index_definitions(&f.pool).await, before);
}

#[tokio::test]
async fn rebuild_gives_the_same_rows_as_live_projection() {
    let f = fixture().await;
    let projector = start_projector(&f, RunOptions::default());
    let log = &f.log;
    let station = StationId::new(new_id());
    let officer = AccountId::new(new_id());
    let patrol = PatrolId::new(new_id());
    append(
        log,
        Actor::System,
        vec![(
            stream::<Station>(station.as_uuid()),
            vec![make::station(station, "North", 7.1, 125.6, 0)],
        )],
    )
    .await;
    append(
        log,
        Actor::System,
        vec![(
            stream::<Account>(officer.as_uuid()),
            vec![make::account(
                officer,
                "p@example.org",
                Role::Patrol,
                Some(station),
            )],
        )],
    )
    .await;
    append(
        log,
        Actor::System,
        vec![(
            stream::<Patrol>(patrol.as_uuid()),
            vec![make::patrol(patrol, "N-1", station, vec![officer])],
        )],
    )
    .await;
    let mut reports = Vec::new();
    for i in 0..30 {
        let report = submit(
            log,
            station,
            (7.1 + f64::from(i) * 0.001, 125.6),
            i64::from(i),
        )
        .await;
        reports.push(report);
        if i % 2 == 0 {
            assign(
                log,
                user(officer, "DISPATCHER"),
                report,
                patrol,
                100 + i64::from(i),
            )
            .await;
        }
        if i % 4 == 0 {
            append(
                log,
                user(officer, "PATROL"),
                vec![(
                    stream::<Report>(report.as_uuid()),
                    vec![
                        make::report(AssignmentAccepted {
                            patrol_id: patrol,
                            at: t(200),
                        }),
                        make::report(NoteAdded {
                            note_id: NoteId::new(new_id()),
                            note: format!("note {i}"),
                            author_id: officer,
                            at: t(201),
                        }),
                        make::report(PublicUpdatePosted {
                            update_id: UpdateId::new(new_id()),
                            message: format!("update {i}"),
                            author_id: officer,
                            at: t(202),
                        }),
                    ],
                )],
            )
            .await;
        }
        if i % 10 == 3 {
            // Rejected as invalid, with and without a reason for the reporter.
            append(
                log,
                user(officer, "DISPATCHER"),
                vec![(
                    stream::<Report>(report.as_uuid()),
                    vec![make::report(ReportRejected {
                        justification: format!("prank {i}"),
                        by: officer,
                        at: t(250),
                        public_reason: (i % 20 == 3).then(|| format!("reason {i}")),
                    })],
                )],
            )
            .await;
        }
        if i % 7 == 0 {
            append(
                log,
                Actor::System,
                vec![(
                    stream::<Report>(report.as_uuid()),
                    vec![make::report(ReportAmended {
                        crime_type_codes: None,
                        changes: ReportChanges {
                            title: Some(format!("Amended {i}")),
                            location: Some(ReportLocation::new(
                                GeoPoint::parse(7.2, 125.7).expect("point"),
                                None,
                                Some("DVO".into()),
                            )),
                            ..Default::default()
                        },
                        personal: Some(PersonalChanges {
                            street: Some("2 Side St".into()),
                            ..Default::default()
                        }),
                        by: Some(AmendedBy::Staff),
                        at: t(300),
                    })],
                )],
            )
            .await;
        }
    }
    // Links (ADR 0020): a duplicate closed into its primary (1 → 5), one unlinked again
    // (15 → 5), related both ways (6 ↔ 9), and a related link removed (10 ↔ 11).
    let desk = user(officer, "DISPATCHER");
    let pair = |a: ReportId, ea: Vec<ReportEvent>, b: ReportId, eb: Vec<ReportEvent>| {
        vec![
            (
                stream::<Report>(a.as_uuid()),
                ea.into_iter().map(make::report).collect::<Vec<_>>(),
            ),
            (
                stream::<Report>(b.as_uuid()),
                eb.into_iter().map(make::report).collect::<Vec<_>>(),
            ),
        ]
    };
    for (dup, primary) in [(reports[1], reports[5]), (reports[15], reports[5])] {
        let marked = ReportMarkedDuplicate {
            primary_id: primary,
            by: officer,
            at: t(400),
        };
        let attached = DuplicateAttached {
            duplicate_id: dup,
            by: officer,
            at: t(400),
        };
        append(
            log,
            desk.clone(),
            pair(dup, vec![marked.into()], primary, vec![attached.into()]),
        )
        .await;
    }
    let unmarked = DuplicateUnmarked {
        primary_id: reports[5],
        by: officer,
        at: t(410),
    };
    let detached = DuplicateDetached {
        duplicate_id: reports[15],
        by: officer,
        at: t(410),
    };
    append(
        log,
        desk.clone(),
        pair(
            reports[15],
            vec![unmarked.into()],
            reports[5],
            vec![detached.into()],
        ),
    )
    .await;
    for (a, b) in [(reports[6], reports[9]), (reports[10], reports[11])] {
        let ab = ReportLinked {
            other_id: b,
            by: officer,
            at: t(420),
        };
        let ba = ReportLinked {
            other_id: a,
            by: officer,
            at: t(420),
        };
        append(
            log,
            desk.clone(),
            pair(a, vec![ab.into()], b, vec![ba.into()]),
        )
        .await;
    }
    let ab = ReportUnlinked {
        other_id: reports[11],
        by: officer,
        at: t(430),
    };
    let ba = ReportUnlinked {
        other_id: reports[10],
        by: officer,
        at: t(430),
    };
    append(
        log,
        desk,
        pair(reports[10], vec![ab.into()], reports[11], vec![ba.into()]),
    )
    .await;

    let head = f.log.head().await.expect("head");
    caught_up(&f.pool, head).await;
    projector.stop().await;
    let live = dump(&f.pool).await;
    assert_eq!(live["reports"].as_array().map(Vec::len), Some(30));
    let reports = live["reports"].as_array().cloned().unwrap_or_default();
    let with = |column: &str| {
        reports
            .iter()
            .filter(|r| !r[column].is_null() && r[column] != serde_json::json!([]))
            .count()
    };
    assert_eq!(
        (with("public_updates"), with("rejection_public_reason")),
        (8, 2),
        "the rebuild compares public updates and public reasons too"
    );
    assert_eq!(
        (with("duplicate_of"), with("duplicates"), with("related")),
        (1, 1, 2),
        "the rebuild compares links too"
    );

    // Rows no event made (a hand edit, a bug since mended): the rebuild, in place, must
    // not keep them — every projection empties the tables it owns first.
    stray_rows(&f.pool).await;
    assert_ne!(dump(&f.pool).await, live, "the stray rows are there");
    let indexes_before = index_definitions(&f.pool).await;

    let summary = within(
        60,
        "rebuild",
        precinct_projections::rebuild(&f.pool, &f.log),
    )
    .await
    .expect("rebuild");
    assert_eq!(summary.head, head);
    let rebuilt = dump(&f.pool).await;
    assert_eq!(rebuilt, live, "rebuilt read models equal the live ones");
    // The secondary indexes it dropped for the replay are all back, as they were.
    assert_eq!(index_definitions(&f.pool).await, indexes_before);
    assert_eq!(deferred_count(&f.pool).await, 0);
    assert_eq!(
        precinct_readmodel::queries::get_report(&f.pool, Uuid::nil())
            .await
            .expect("get"),
        None
    );
    let status = precinct_projections::status(&f.pool, &f.log)
        .await
        .expect("status");
    assert!(
        status.len() >= precinct_readmodel::EVENT_PROJECTIONS.len()
            && status
                .iter()
                .all(|s| s.position == head && s.quarantined == 0 && s.lag_positions == 0),
        "{status:?}"
    );
}

#[tokio::test]
async fn waiting_for_a_position_answers_once_every_projection_has_it() {
    let f = fixture().await;
    let station = StationId::new(new_id());
    // Nothing is running: nothing is reached.
    let (_, first) = submit_at(&f.log, station, (7.0, 125.0), 1).await;
    assert!(
        !precinct_readmodel::wait_for_position(&f.pool, first, Duration::from_millis(200))
            .await
            .expect("wait")
    );

    let shutdown = CancellationToken::new();
    let watcher = precinct_readmodel::PositionWatcher::start(f.pool.clone(), shutdown.clone())
        .await
        .expect("watcher");
    let projector = start_projector(&f, RunOptions::default());
    assert!(within(
        20,
        "poll",
        precinct_readmodel::wait_for_position(&f.pool, first, Duration::from_secs(15))
    )
    .await
    .expect("wait"));
    for at in 2..12 {
        let (_, position) = submit_at(&f.log, station, (7.0, 125.0), at).await;
        let started = std::time::Instant::now();
        assert!(
            watcher.wait_for(position, Duration::from_secs(15)).await,
            "watcher saw {position}"
        );
        // The watcher answered because the rows are there.
        let row = queries::list_reports(
            &f.pool,
            &queries::ReportFilter::default(),
            &PageRequest::first(1),
        )
        .await
        .expect("list");
        assert_eq!(row.items[0].last_position as u64, position);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let head = f.log.head().await.expect("head");
    assert!(watcher.current() >= head);
    assert!(
        !watcher
            .wait_for(head + 100, Duration::from_millis(200))
            .await
    );
    assert!(!precinct_readmodel::wait_for_position(
        &f.pool,
        head + 100,
        Duration::from_millis(200)
    )
    .await
    .expect("wait"));
    shutdown.cancel();
    projector.stop().await;
}

/// A request record the request log cannot store is quarantined alone (the records
/// around it are stored), and an operator's retry after the fix reads it again from
/// the requests stream and stores it.
#[tokio::test]
async fn a_request_record_the_log_cannot_store_is_quarantined_and_a_retry_stores_it() {
    let f = fixture().await;
    // A "bug": the table refuses one path.
    sqlx::query("ALTER TABLE request_log ADD CONSTRAINT poison_bug CHECK (path <> '/poison')")
        .execute(&f.pool)
        .await
        .expect("add the bug");
    let subject = f.log.config().requests_subject.clone();
    let js = crate::store::jetstream(&shared_url()).await;
    let mut seqs = Vec::new();
    for (i, path) in ["/crimes", "/poison", "/patrols"].into_iter().enumerate() {
        let record = RequestRecord {
            at: t(i as i64),
            request_id: format!("req-{i}"),
            actor_id: None,
            method: "GET".into(),
            path: path.into(),
            status: 200,
            latency_ms: 1.0,
            client_addr: None,
        };
        let payload = serde_json::to_vec(&record).expect("json");
        let ack = within(10, "publish", async {
            js.publish(subject.clone(), payload.into())
                .await
                .expect("publish")
                .await
                .expect("ack")
        })
        .await;
        seqs.push(ack.sequence);
    }
    let projector = start_projector(
        &f,
        RunOptions {
            only: Some(vec!["request_log".into()]),
            request_log: true,
            ..RunOptions::default()
        },
    );
    within(20, "request log caught up", async {
        while checkpoint(&f.pool, "request_log").await.0 < seqs[2] as i64 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let stored = || async {
        sqlx::query_scalar::<_, String>("SELECT path FROM request_log ORDER BY seq")
            .fetch_all(&f.pool)
            .await
            .expect("rows")
    };
    assert_eq!(stored().await, ["/crimes", "/patrols"]);
    let held = precinct_readmodel::quarantine::held(&f.pool, Some("request_log"))
        .await
        .expect("held");
    assert_eq!(
        held.iter()
            .map(|h| (h.position, h.error_class.as_deref()))
            .collect::<Vec<_>>(),
        [(seqs[1] as i64, Some("integrity"))],
        "{held:?}"
    );

    sqlx::query("ALTER TABLE request_log DROP CONSTRAINT poison_bug")
        .execute(&f.pool)
        .await
        .expect("fix the bug");
    let repair =
        precinct_projections::quarantine::retry(&f.pool, &f.log, "request_log", seqs[1], "ops")
            .await
            .expect("retry");
    assert!(repair.released(), "{repair:?}");
    assert_eq!(repair.applied, [seqs[1]]);
    assert_eq!(stored().await, ["/crimes", "/poison", "/patrols"]);
    projector.stop().await;
}

#[tokio::test]
async fn the_request_log_is_projected_from_its_own_stream() {
    let f = fixture().await;
    let subject = f.log.config().requests_subject.clone();
    let js = crate::store::jetstream(&shared_url()).await;
    let actor = Uuid::new_v4();
    let record = |i: i64, path: &str, status: u16, actor_id: Option<Uuid>| RequestRecord {
        at: t(i),
        request_id: format!("req-{i}"),
        actor_id,
        method: "GET".into(),
        path: path.into(),
        status,
        latency_ms: 1.5,
        client_addr: Some("127.0.0.1:5000".into()),
    };
    let records = [
        record(1, "/crimes", 200, None),
        record(2, "/crimes/123", 404, Some(actor)),
        record(3, "/patrols/register", 201, Some(actor)),
        record(4, "/crimes_x", 200, None),
        record(5, "/crimes", 500, Some(actor)),
    ];
    for r in &records {
        let payload = serde_json::to_vec(r).expect("json");
        within(10, "publish", async {
            js.publish(subject.clone(), payload.into())
                .await
                .expect("publish")
                .await
                .expect("ack")
        })
        .await;
    }
    let projector = start_projector(
        &f,
        RunOptions {
            only: Some(vec!["request_log".into()]),
            request_log: true,
            ..RunOptions::default()
        },
    );
    within(20, "request log caught up", async {
        while checkpoint(&f.pool, "request_log").await.0 < 5 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    let all = queries::request_log(
        &f.pool,
        &queries::RequestFilter::default(),
        &PageRequest::default(),
    )
    .await
    .expect("requests");
    assert_eq!(
        all.items
            .iter()
            .map(|r| r.request_id.as_str())
            .collect::<Vec<_>>(),
        ["req-5", "req-4", "req-3", "req-2", "req-1"]
    );
    let crimes = queries::request_log(
        &f.pool,
        &queries::RequestFilter {
            path: Some("/crimes/".into()),
            ..Default::default()
        },
        &PageRequest::default(),
    )
    .await
    .expect("requests");
    assert_eq!(
        crimes
            .items
            .iter()
            .map(|r| r.request_id.as_str())
            .collect::<Vec<_>>(),
        ["req-2"]
    );
    let under = queries::request_log(
        &f.pool,
        &queries::RequestFilter {
            path: Some("/crimes_".into()),
            ..Default::default()
        },
        &PageRequest::default(),
    )
    .await
    .expect("requests");
    assert_eq!(under.items.len(), 1, "`_` matches literally");
    let mine = queries::request_log(
        &f.pool,
        &queries::RequestFilter {
            actor_id: Some(actor),
            status: Some(500),
            ..Default::default()
        },
        &PageRequest::default(),
    )
    .await
    .expect("requests");
    assert_eq!(
        mine.items
            .iter()
            .map(|r| r.request_id.as_str())
            .collect::<Vec<_>>(),
        ["req-5"]
    );
    let window = queries::request_log(
        &f.pool,
        &queries::RequestFilter {
            from: Some(t(2)),
            to: Some(t(4)),
            ..Default::default()
        },
        &PageRequest::first(1),
    )
    .await
    .expect("requests");
    assert_eq!(window.items[0].request_id, "req-3");
    let next = queries::request_log(
        &f.pool,
        &queries::RequestFilter {
            from: Some(t(2)),
            to: Some(t(4)),
            ..Default::default()
        },
        &PageRequest::after(1, window.next_cursor),
    )
    .await
    .expect("requests");
    assert_eq!(
        (next.items[0].request_id.as_str(), next.next_cursor),
        ("req-2", None)
    );
    let json = serde_json::to_value(&all.items[0]).expect("json");
    assert_eq!(json["status"], 500);
    assert_eq!(json["client_addr"], "127.0.0.1:5000");

    // A record that is not a RequestRecord is quarantined alone; the next one is stored.
    within(10, "publish", async {
        js.publish(subject.clone(), "{\"not\": \"a record\"}".into())
            .await
            .expect("publish")
            .await
            .expect("ack")
    })
    .await;
    let after = RequestRecord {
        request_id: "req-after".into(),
        ..records[0].clone()
    };
    within(10, "publish", async {
        js.publish(
            subject.clone(),
            serde_json::to_vec(&after).expect("json").into(),
        )
        .await
        .expect("publish")
        .await
        .expect("ack")
    })
    .await;
    within(20, "the record after it is stored", async {
        while checkpoint(&f.pool, "request_log").await.0 < 7 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let status = precinct_projections::request_log_status(&f.pool, &f.log)
        .await
        .expect("status");
    assert_eq!(
        (status.position, status.head, status.quarantined),
        (7, 7, 1)
    );
    let held = precinct_readmodel::quarantine::held(&f.pool, Some("request_log"))
        .await
        .expect("held");
    assert_eq!(
        held.iter()
            .map(|q| (q.position, q.reason.as_str(), q.error_class.as_deref()))
            .collect::<Vec<_>>(),
        [(6, "poison", Some("decode"))]
    );
    assert_eq!(count(&f.pool, "request_log").await, 6);
    projector.stop().await;
}

/// The `near` grid indexes (`geo_cell` of the exact location, migration 0022, for staff;
/// `public_cell` of the public one, migration 0039, for the public list) give exactly
/// what a brute-force scan of the table gives, in the same order, page after page:
/// reports on, just either side of and across both grids' cell borders (a corner of
/// four cells), circles centred on borders and corners, exact and public coordinates,
/// radii served by the index and one beyond its cell limit (served by the bounding box).
#[tokio::test]
async fn near_through_the_grid_index_equals_a_brute_force_scan_across_cell_borders() {
    let f = fixture().await;
    let projector = start_projector(&f, RunOptions::default());
    let station = StationId::new(new_id());
    // 7.07 and 125.61 are cell borders of the 0.0025° grid (both × 400 are whole) and of
    // the public 0.005° grid (× 200); ± 0.0049 round to public points either side of the
    // public grid's next borders.
    let (lat0, lon0): (f64, f64) = (7.07, 125.61);
    let offsets = [
        -0.0049, -0.003, -0.0024, -0.001, -0.0004, -0.0001, -2e-9, 0.0, 2e-9, 0.0001, 0.0004,
        0.001, 0.0024, 0.0026, 0.003, 0.0049,
    ];
    let mut writes = Vec::new();
    let mut n = 0i64;
    for dy in offsets {
        for dx in offsets {
            n += 1;
            let id = ReportId::new(new_id());
            // Pairs share a time, so the id breaks the tie as in the list order.
            let at = 1_000 + n / 2;
            writes.push((
                stream::<Report>(id.as_uuid()),
                vec![make::submitted(
                    id,
                    station,
                    (lat0 + dy, lon0 + dx),
                    None,
                    at,
                )],
            ));
        }
    }
    let mut last = 0;
    while !writes.is_empty() {
        let rest = writes.split_off(writes.len().min(49));
        let chunk = std::mem::replace(&mut writes, rest);
        last = append(&f.log, Actor::Anonymous, chunk).await;
    }
    caught_up(&f.pool, last).await;

    type Row = (Uuid, f64, f64, f64, f64, DateTime<Utc>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, latitude, longitude, public_latitude, public_longitude, submitted_at \
         FROM reports",
    )
    .fetch_all(&f.pool)
    .await
    .expect("reports");
    assert_eq!(rows.len(), offsets.len() * offsets.len());
    let haversine = |lat1: f64, lon1: f64, lat2: f64, lon2: f64| {
        let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
        let h = ((p2 - p1) / 2.0).sin().powi(2)
            + p1.cos() * p2.cos() * ((lon2 - lon1).to_radians() / 2.0).sin().powi(2);
        2.0 * 6_371_008.8 * h.sqrt().min(1.0).asin()
    };
    let centres = [
        (lat0, lon0),
        (lat0 + 1e-9, lon0 - 1e-9),
        (lat0, lon0 + 0.0012),
        (lat0 + 0.0025, lon0 + 0.0025),
        (lat0 - 0.0013, lon0 + 0.0007),
    ];
    let mut compared = 0;
    for public in [false, true] {
        for (clat, clon) in centres {
            for radius in [15.0, 60.0, 120.0, 230.0, 333.0, 5_000.0] {
                let mut want: Vec<&Row> = rows
                    .iter()
                    .filter(|r| {
                        let (la, lo) = if public { (r.3, r.4) } else { (r.1, r.2) };
                        let d = haversine(clat, clon, la, lo);
                        assert!(
                            (d - radius).abs() > 0.001,
                            "a report on the edge of the circle: the comparison would hang on rounding"
                        );
                        d <= radius
                    })
                    .collect();
                want.sort_by_key(|r| std::cmp::Reverse((r.5, r.0)));
                let want: Vec<Uuid> = want.iter().map(|r| r.0).collect();
                let mut near = queries::Near::new(clat, clon, radius);
                if public {
                    near.coordinates = queries::Coordinates::Public;
                }
                assert_eq!(
                    queries::near_cells(&near).is_some(),
                    radius < 5_000.0,
                    "the index serves the small radii, the bounding box the large one"
                );
                let filter = queries::ReportFilter {
                    near: Some(near),
                    ..Default::default()
                };
                // Small pages, so the cursor is exercised through the index too.
                let mut got = Vec::new();
                let mut cursor = None;
                loop {
                    let page = queries::list_reports(
                        &f.pool,
                        &filter,
                        &PageRequest::after(7, cursor.clone()),
                    )
                    .await
                    .expect("near");
                    got.extend(page.items.iter().map(|r| r.id));
                    match page.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                assert_eq!(
                    got, want,
                    "near ({clat}, {clon}) r={radius} public={public}"
                );
                compared += want.len();
            }
        }
    }
    assert!(compared > 1_000, "the circles held reports ({compared})");
    projector.stop().await;
}
