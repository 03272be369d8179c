//! What the live streams send ([`Frame`]) and how a position or an event of the log
//! becomes one, with its [`Audience`].
//!
//! An event is decoded once, at the edge ([`Decoded::from_recorded`]), into its
//! aggregate's typed event ([`PatrolEvent`], [`ReportEvent`]); the [`Translator`]
//! matches on those enums. What it needs beyond the event — a patrol's station, who in
//! its crew serves in it now, the patrol a report is assigned to — it asks through
//! [`Facts`], so that the translation is tested without servers (see the tests below).
//!
//! | event | frame | audience |
//! |---|---|---|
//! | `PatrolMoved` (positions stream) | `position` | the patrol's station |
//! | `PatrolStatusChanged` | `status` | the patrol's station |
//! | `PatrolAssignmentOpened` / `Closed` | `assignment` | the patrol's serving crew |
//! | any report event, while the report is assigned | `assignment` | that patrol's serving crew |
//! | any report event | `report` | the desks of the report's station (a transfer: of both stations) |
//! | a report event that changes its status | `report_status` (reporter view) | the report's reporter and its tracking-token holder |
//! | `PublicUpdatePosted` | `public_update` (reporter view) | the report's reporter and its tracking-token holder |
//! | `PatrolRegistered` / `PatrolUpdated` | none (the cached crew is forgotten) | |
//!
//! A report event can make three frames: the crew's, the reporter's and the desks'. The
//! reporter's frame carries only fields of the reporter view
//! ([`crate::views::ReporterReportView`]): the status, the time, the public reason of a
//! rejection, the report a duplicate was closed into, and a public update's id, message
//! and time — never a note, a patrol, an officer or an author ([`REPORTER_FIELDS`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use axum::response::sse::Event;
use chrono::{DateTime, Utc};
use precinct_domain::patrol::{Patrol, PatrolEvent, PatrolStatusChanged};
use precinct_domain::report::{Report, ReportEvent, Reporter};
use precinct_domain::values::ReportStatus;
use precinct_domain::{Aggregate, DomainEvent};
use precinct_eventlog::positions::RecordedMove;
use precinct_eventlog::RecordedEvent;
use serde_json::json;
use uuid::Uuid;

/// Which stream a frame comes from (and which sequence its id names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The positions stream; ids `p<seq>`.
    Positions = 0,
    /// The event log; ids `e<position>`.
    Events = 1,
}

/// Who may receive a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Staff watching this station (and ADMINs watching every station).
    Station(Uuid),
    /// These officers' inboxes.
    Officers(Vec<Uuid>),
    /// The report desks of this station (and ADMINs watching every station's).
    Desk(Uuid),
    /// A report's reporter: the signed-in account that submitted it (`None`: anonymous,
    /// or not known now) and whoever follows the report itself with its tracking token.
    Reporter { report: Uuid, account: Option<Uuid> },
}

/// One SSE message, serialized once.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub source: Source,
    pub seq: u64,
    pub audience: Audience,
    /// For a position: its patrol (the snapshot keeps the last one per patrol).
    pub patrol_id: Option<Uuid>,
    /// The SSE `event` name: `position`, `status`, `assignment`, `report` (desks),
    /// `report_status` or `public_update` (reporters).
    pub event: &'static str,
    /// The SSE `data` (JSON).
    pub data: String,
}

impl Frame {
    /// The SSE id: `p<positions seq>` or `e<log position>`.
    pub fn id(&self) -> String {
        match self.source {
            Source::Positions => format!("p{}", self.seq),
            Source::Events => format!("e{}", self.seq),
        }
    }

    pub fn to_sse(&self) -> Event {
        Event::default()
            .id(self.id())
            .event(self.event)
            .data(&self.data)
    }
}

/// The frame of one position: for the patrol's station.
pub fn position_frame(m: &RecordedMove) -> Frame {
    let p = &m.moved;
    let mut data = json!({
        "position": m.seq,
        "patrol_id": p.patrol_id,
        "station_id": p.station_id,
        "latitude": p.latitude,
        "longitude": p.longitude,
        "recorded_at": p.recorded_at,
    });
    if let Some(h) = p.heading {
        data["heading"] = json!(h);
    }
    if let Some(s) = p.speed_mps {
        data["speed_mps"] = json!(s);
    }
    Frame {
        source: Source::Positions,
        seq: m.seq,
        audience: Audience::Station(p.station_id),
        patrol_id: Some(p.patrol_id),
        event: "position",
        data: data.to_string(),
    }
}

/// An event of the log the live streams care about, decoded into its type.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    Patrol {
        patrol: Uuid,
        event: PatrolEvent,
    },
    /// Boxed: a report event is far larger than a patrol event.
    Report {
        report: Uuid,
        event: Box<ReportEvent>,
    },
}

/// A decoded event with what every frame of it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub position: u64,
    pub occurred_at: DateTime<Utc>,
    pub event: LiveEvent,
}

impl Decoded {
    /// Decodes a recorded event. `Ok(None)`: an aggregate the live streams ignore;
    /// `Err`: a payload that does not decode as the type it claims (no frame).
    pub fn from_recorded(e: &RecordedEvent) -> Result<Option<Self>, serde_json::Error> {
        let env = &e.envelope;
        let event = if env.aggregate_type == Patrol::TYPE {
            LiveEvent::Patrol {
                patrol: env.aggregate_id,
                event: PatrolEvent::from_parts_ref(&env.event_type, &e.data)?,
            }
        } else if env.aggregate_type == Report::TYPE {
            LiveEvent::Report {
                report: env.aggregate_id,
                event: Box::new(ReportEvent::from_parts_ref(&env.event_type, &e.data)?),
            }
        } else {
            return Ok(None);
        };
        Ok(Some(Self {
            position: e.position(),
            occurred_at: env.occurred_at,
            event,
        }))
    }

    fn event_type(&self) -> &'static str {
        match &self.event {
            LiveEvent::Patrol { event, .. } => event.event_type(),
            LiveEvent::Report { event, .. } => event.event_type(),
        }
    }
}

/// What the translation needs to know beyond the event itself.
pub trait Facts: Sync {
    /// A patrol's station (`None`: no such patrol, or it cannot be told now).
    fn station_of(&self, patrol: Uuid) -> impl Future<Output = Option<Uuid>> + Send;
    /// The members of a patrol's crew who serve in it now (empty: none, or unknown).
    fn serving_crew(&self, patrol: Uuid) -> impl Future<Output = Vec<Uuid>> + Send;
    /// The patrol a report is assigned to by the read model (for a report assigned
    /// before the hub started following the log).
    fn assigned_patrol(&self, report: Uuid) -> impl Future<Output = Option<Uuid>> + Send;
    /// A patrol's crew changed: forget what is cached about it.
    fn crew_changed(&self, patrol: Uuid);
    /// A report's station by the read model (for a report submitted before the hub
    /// started following the log, or forgotten since it closed).
    fn report_station(&self, report: Uuid) -> impl Future<Output = Option<Uuid>> + Send;
    /// Who submitted a report: `Some(Some(account))` a signed-in user, `Some(None)`
    /// anonymously, `None` cannot be told now.
    fn reporter_of(&self, report: Uuid) -> impl Future<Output = Option<Option<Uuid>>> + Send;
}

/// Most reports whose station the translator remembers; beyond, it forgets them all
/// and asks the read model again (a bound on memory, not a limit on service).
const MAX_REMEMBERED_STATIONS: usize = 100_000;

/// Who reads the event being translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The hub's own consumer, in log order: it also keeps the crew cache and the
    /// report → patrol links current.
    Live,
    /// A client catching up on older events: it only reads what the live reader learnt.
    Replay,
}

/// Most reports whose reporter the translator remembers before it forgets them all.
const REPORTERS_MAX: usize = 100_000;

/// Turns decoded events into frames. Remembers, from the log, which patrol each report
/// is assigned to (report events other than the assignment's do not name it), and who
/// submitted each report (bounded: [`REPORTERS_MAX`]).
#[derive(Debug, Default)]
pub struct Translator {
    assignments: Mutex<HashMap<Uuid, Uuid>>,
    /// The station of each open report the live reader has seen (report → station).
    stations: Mutex<HashMap<Uuid, Uuid>>,
    reporters: Mutex<HashMap<Uuid, Option<Uuid>>>,
}

impl Translator {
    /// The frames an event makes (see the module's table): none, one, or, for a report
    /// event, one for the crew and one for the reporter.
    pub async fn frames(&self, e: &Decoded, reader: Reader, facts: &impl Facts) -> Vec<Frame> {
        let mut frames = Vec::new();
        if let LiveEvent::Report { report, event } = &e.event {
            if let Some(f) = self.reporter_frame(e, *report, event, facts).await {
                frames.push(f);
            }
        }
        frames.extend(self.frame(e, reader, facts).await);
        frames
    }

    /// The reporter's frame of a report event, if it changes what the reporter sees of
    /// its status or brings a public update.
    async fn reporter_frame(
        &self,
        e: &Decoded,
        report: Uuid,
        event: &ReportEvent,
        facts: &impl Facts,
    ) -> Option<Frame> {
        let data = reporter_data(e, report, event)?;
        let account = match event {
            ReportEvent::ReportSubmitted(s) => {
                let account = match &s.reporter {
                    Reporter::User { account_id } => Some(account_id.as_uuid()),
                    Reporter::Anonymous { .. } => None,
                };
                self.remember_reporter(report, account);
                account
            }
            _ => match self.reporter(report) {
                Some(known) => known,
                None => match facts.reporter_of(report).await {
                    Some(known) => {
                        self.remember_reporter(report, known);
                        known
                    }
                    None => {
                        tracing::warn!(%report, "live: the report's reporter is unknown now; only its tracking-token holder gets this change");
                        None
                    }
                },
            },
        };
        Some(Frame {
            source: Source::Events,
            seq: e.position,
            audience: Audience::Reporter { report, account },
            patrol_id: None,
            event: data.0,
            data: data.1.to_string(),
        })
    }

    fn reporters(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Option<Uuid>>> {
        self.reporters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn reporter(&self, report: Uuid) -> Option<Option<Uuid>> {
        self.reporters().get(&report).copied()
    }

    fn remember_reporter(&self, report: Uuid, account: Option<Uuid>) {
        let mut known = self.reporters();
        if known.len() >= REPORTERS_MAX {
            known.clear();
        }
        known.insert(report, account);
    }

    /// The crew's frame of an event, if any (see the module's table).
    pub async fn frame(&self, e: &Decoded, reader: Reader, facts: &impl Facts) -> Option<Frame> {
        let live = reader == Reader::Live;
        match &e.event {
            LiveEvent::Patrol { patrol, event } => match event {
                PatrolEvent::PatrolRegistered(_) | PatrolEvent::PatrolUpdated(_) => {
                    if live {
                        facts.crew_changed(*patrol);
                    }
                    None
                }
                PatrolEvent::PatrolStatusChanged(change) => {
                    let station = facts.station_of(*patrol).await?;
                    Some(status_frame(e, *patrol, station, change))
                }
                PatrolEvent::PatrolAssignmentOpened(opened) => {
                    let report = opened.report_id.as_uuid();
                    if live {
                        self.link(report, *patrol);
                    }
                    assignment_frame(e, report, *patrol, facts.serving_crew(*patrol).await)
                }
                PatrolEvent::PatrolAssignmentClosed(closed) => {
                    let report = closed.report_id.as_uuid();
                    if live {
                        self.unlink(report, *patrol);
                    }
                    assignment_frame(e, report, *patrol, facts.serving_crew(*patrol).await)
                }
            },
            LiveEvent::Report { report, event } => {
                // No patrol holds a report that moves station, is reopened, closed as a
                // duplicate or unlinked from its primary (a transfer or a duplicate's
                // closure withdrew its assignment first, in the same append): no inbox
                // hears of it. Links between reports change nothing of a patrol's work.
                if matches!(
                    **event,
                    ReportEvent::ReportTransferred(_)
                        | ReportEvent::ReportReopened(_)
                        | ReportEvent::ReportMarkedDuplicate(_)
                        | ReportEvent::DuplicateAttached(_)
                        | ReportEvent::DuplicateUnmarked(_)
                        | ReportEvent::DuplicateDetached(_)
                        | ReportEvent::ReportLinked(_)
                        | ReportEvent::ReportUnlinked(_)
                        | ReportEvent::PatrolNotified(_)
                        // The withdrawal (and assignment) of the same append tell the
                        // patrols.
                        | ReportEvent::SlaEscalated(_)
                ) {
                    return None;
                }
                let patrol = match named_patrol(event).or_else(|| self.linked(*report)) {
                    Some(p) => p,
                    None => facts.assigned_patrol(*report).await?,
                };
                if live {
                    match **event {
                        // The last frame of that patrol's hold on the report.
                        ReportEvent::AssignmentWithdrawn(_) => self.unlink(*report, patrol),
                        _ => self.link(*report, patrol),
                    }
                }
                assignment_frame(e, *report, patrol, facts.serving_crew(patrol).await)
            }
        }
    }

    /// The `report` frames a report event makes for the desks of its station: the
    /// station the report is at after the event and, for a transfer, also the one it
    /// left (its queue loses the report). A replay names the station the live reader
    /// knows now (or the read model's). None for other events, or a report whose
    /// station cannot be told.
    pub async fn desk_frames(&self, e: &Decoded, reader: Reader, facts: &impl Facts) -> Vec<Frame> {
        let LiveEvent::Report { report, event } = &e.event else {
            return Vec::new();
        };
        let (left, station) = match &**event {
            ReportEvent::ReportSubmitted(s) => (None, s.station_id.as_uuid()),
            ReportEvent::ReportTransferred(t) => {
                (Some(t.from_station_id.as_uuid()), t.station_id.as_uuid())
            }
            _ => {
                let known = lock(&self.stations).get(report).copied();
                match known {
                    Some(s) => (None, s),
                    None => match facts.report_station(*report).await {
                        Some(s) => (None, s),
                        None => return Vec::new(),
                    },
                }
            }
        };
        if reader == Reader::Live {
            let mut stations = lock(&self.stations);
            if closes(event) {
                stations.remove(report);
            } else {
                if stations.len() >= MAX_REMEMBERED_STATIONS && !stations.contains_key(report) {
                    stations.clear();
                }
                stations.insert(*report, station);
            }
        }
        left.into_iter()
            .chain([station])
            .map(|desk| desk_frame(e, *report, station, desk))
            .collect()
    }

    fn assignments(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Uuid>> {
        // A panic while holding the lock leaves a plain map behind; keep using it.
        self.assignments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn link(&self, report: Uuid, patrol: Uuid) {
        self.assignments().insert(report, patrol);
    }

    /// Forgets `report`'s link to `patrol` (a link to another patrol stays: in a
    /// reassignment the new patrol's link is made before the old one's closes).
    fn unlink(&self, report: Uuid, patrol: Uuid) {
        let mut links = self.assignments();
        if links.get(&report) == Some(&patrol) {
            links.remove(&report);
        }
    }

    fn linked(&self, report: Uuid) -> Option<Uuid> {
        self.assignments().get(&report).copied()
    }
}

/// A map behind a mutex; a panic while holding the lock leaves a plain map behind.
fn lock<K, V>(m: &Mutex<HashMap<K, V>>) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether the event leaves the report in a final status (its station need not be
/// remembered: a reopening asks the read model again).
fn closes(event: &ReportEvent) -> bool {
    matches!(
        event,
        ReportEvent::ClosureApproved(_)
            | ReportEvent::ReportRejected(_)
            | ReportEvent::ReportWithdrawn(_)
            | ReportEvent::ReportMarkedDuplicate(_)
    )
}

/// A change of `report` (now at `station`), for the desks of `desk`.
fn desk_frame(e: &Decoded, report: Uuid, station: Uuid, desk: Uuid) -> Frame {
    let data = json!({
        "position": e.position,
        "type": e.event_type(),
        "report_id": report,
        "station_id": station,
        "occurred_at": e.occurred_at,
    });
    Frame {
        source: Source::Events,
        seq: e.position,
        audience: Audience::Desk(desk),
        patrol_id: None,
        event: "report",
        data: data.to_string(),
    }
}

/// The patrol a report event names, if it names one.
fn named_patrol(event: &ReportEvent) -> Option<Uuid> {
    let patrol = match event {
        ReportEvent::ReportAssigned(e) => e.patrol_id,
        ReportEvent::AssignmentAccepted(e) => e.patrol_id,
        ReportEvent::AssignmentDeclined(e) => e.patrol_id,
        ReportEvent::ReportResponding(e) => e.patrol_id,
        ReportEvent::ReportResolved(e) => e.patrol_id,
        ReportEvent::SlaBreached(e) => e.patrol_id,
        ReportEvent::SlaWarned(e) => e.patrol_id,
        ReportEvent::SlaEscalated(e) => e.patrol_id,
        ReportEvent::AssignmentWithdrawn(e) => e.patrol_id,
        ReportEvent::ReportSubmitted(_)
        | ReportEvent::ReportAmended(_)
        | ReportEvent::ReportTriaged(_)
        | ReportEvent::NoteAdded(_)
        | ReportEvent::PublicUpdatePosted(_)
        | ReportEvent::EvidenceAttached(_)
        | ReportEvent::ClosureApproved(_)
        | ReportEvent::ClosureRejected(_)
        | ReportEvent::ReportRejected(_)
        | ReportEvent::ReportWithdrawn(_)
        | ReportEvent::ReportTransferred(_)
        | ReportEvent::ReportReopened(_)
        | ReportEvent::ReportMarkedDuplicate(_)
        | ReportEvent::DuplicateAttached(_)
        | ReportEvent::DuplicateUnmarked(_)
        | ReportEvent::DuplicateDetached(_)
        | ReportEvent::ReportLinked(_)
        | ReportEvent::ReportUnlinked(_)
        | ReportEvent::PatrolNotified(_) => return None,
    };
    Some(patrol.as_uuid())
}

/// Every key a reporter's frame may carry (its `data`, and a public update's object):
/// fields of the reporter view, nothing else.
pub const REPORTER_FIELDS: &[&str] = &[
    "position",
    "report_id",
    "status",
    "at",
    "rejection_reason",
    "duplicate_of",
    "public_update",
    "id",
    "message",
];

/// The SSE event name and data of the reporter's frame of a report event:
/// `report_status` for a change of status (with the public reason of a rejection, or the report a
/// duplicate was closed into), `public_update` for an update written for the reporter;
/// `None` for anything else (notes, evidence, triage, SLA, transfers, links, amendments
/// and a desk's "notify officer" change nothing the reporter is told live).
fn reporter_data(
    e: &Decoded,
    report: Uuid,
    event: &ReportEvent,
) -> Option<(&'static str, serde_json::Value)> {
    let status = match event {
        ReportEvent::PublicUpdatePosted(u) => {
            let data = json!({
                "position": e.position,
                "report_id": report,
                "public_update": {"id": u.update_id, "message": u.message, "at": u.at},
            });
            return Some(("public_update", data));
        }
        ReportEvent::ReportSubmitted(_)
        | ReportEvent::AssignmentDeclined(_)
        | ReportEvent::AssignmentWithdrawn(_)
        | ReportEvent::ReportReopened(_)
        | ReportEvent::DuplicateUnmarked(_) => ReportStatus::New,
        ReportEvent::ReportAssigned(_) => ReportStatus::Assigned,
        ReportEvent::AssignmentAccepted(_) => ReportStatus::Accepted,
        ReportEvent::ReportResponding(_) | ReportEvent::ClosureRejected(_) => {
            ReportStatus::Responding
        }
        ReportEvent::ReportResolved(_) => ReportStatus::Resolved,
        ReportEvent::ClosureApproved(_) | ReportEvent::ReportMarkedDuplicate(_) => {
            ReportStatus::Closed
        }
        ReportEvent::ReportRejected(_) => ReportStatus::Rejected,
        ReportEvent::ReportWithdrawn(_) => ReportStatus::Withdrawn,
        ReportEvent::ReportAmended(_)
        | ReportEvent::ReportTriaged(_)
        | ReportEvent::NoteAdded(_)
        | ReportEvent::EvidenceAttached(_)
        | ReportEvent::SlaBreached(_)
        | ReportEvent::SlaWarned(_)
        | ReportEvent::SlaEscalated(_)
        | ReportEvent::ReportTransferred(_)
        | ReportEvent::DuplicateAttached(_)
        | ReportEvent::DuplicateDetached(_)
        | ReportEvent::ReportLinked(_)
        | ReportEvent::ReportUnlinked(_)
        | ReportEvent::PatrolNotified(_) => return None,
    };
    let mut data = json!({
        "position": e.position,
        "report_id": report,
        "status": status.as_str(),
        "at": e.occurred_at,
    });
    match event {
        ReportEvent::ReportRejected(r) => {
            data["rejection_reason"] = json!(r
                .public_reason
                .as_deref()
                .unwrap_or(crate::views::DEFAULT_REJECTION_REASON));
        }
        ReportEvent::ReportMarkedDuplicate(d) => data["duplicate_of"] = json!(d.primary_id),
        _ => {}
    }
    Some(("report_status", data))
}

/// A patrol's status change, for its station.
fn status_frame(e: &Decoded, patrol: Uuid, station: Uuid, change: &PatrolStatusChanged) -> Frame {
    let data = json!({
        "position": e.position,
        "patrol_id": patrol,
        "station_id": station,
        "status": change.status,
        "cause": change.cause,
        "at": change.at,
    });
    Frame {
        source: Source::Events,
        seq: e.position,
        audience: Audience::Station(station),
        patrol_id: None,
        event: "status",
        data: data.to_string(),
    }
}

/// A change of `report`'s assignment to `patrol`, for the crew members who serve in the
/// patrol now (none: no frame).
fn assignment_frame(e: &Decoded, report: Uuid, patrol: Uuid, crew: Vec<Uuid>) -> Option<Frame> {
    if crew.is_empty() {
        return None;
    }
    let data = json!({
        "position": e.position,
        "type": e.event_type(),
        "report_id": report,
        "patrol_id": patrol,
        "occurred_at": e.occurred_at,
    });
    Some(Frame {
        source: Source::Events,
        seq: e.position,
        audience: Audience::Officers(crew),
        patrol_id: None,
        event: "assignment",
        data: data.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;
    use precinct_domain::ids::{AccountId, PatrolId, ReportId, StationId};
    use precinct_domain::patrol::{
        AssignmentOutcome, PatrolAssignmentClosed, PatrolAssignmentOpened, PatrolUpdated,
        StatusCause,
    };
    use precinct_domain::report::{
        AssignmentAccepted, ClosureApproved, NoteAdded, PublicUpdatePosted, ReportAssigned,
        ReportRejected, ReportResolved, ReportTransferred,
    };
    use precinct_domain::values::PatrolStatus;
    use precinct_eventlog::{Actor, Envelope};
    use serde_json::Value;

    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-11-01T08:30:00.250Z".parse().expect("a time")
    }

    fn recorded(
        aggregate_type: &str,
        id: Uuid,
        position: u64,
        event: &impl DomainEvent,
    ) -> RecordedEvent {
        RecordedEvent {
            envelope: Envelope {
                event_id: Uuid::new_v4(),
                event_type: event.event_type().into(),
                schema_version: 1,
                aggregate_type: aggregate_type.into(),
                aggregate_id: id,
                position,
                occurred_at: at(),
                actor: Actor::System,
                command_id: Uuid::new_v4(),
                correlation_id: Uuid::new_v4(),
                causation_id: None,
                command_size: None,
                request_hash: None,
            },
            data: event.to_data(),
        }
    }

    fn decoded(aggregate_type: &str, id: Uuid, position: u64, event: &impl DomainEvent) -> Decoded {
        Decoded::from_recorded(&recorded(aggregate_type, id, position, event))
            .expect("decodes")
            .expect("followed")
    }

    /// A world of two patrols at one station: `crewed` with two serving officers,
    /// `empty` with nobody serving; `assigned_in_db` is a report the read model has
    /// assigned to `crewed`.
    struct World {
        station: Uuid,
        crewed: Uuid,
        empty: Uuid,
        officers: Vec<Uuid>,
        assigned_in_db: Uuid,
        /// The signed-in reporter of `assigned_in_db`.
        citizen: Uuid,
        forgotten: Mutex<Vec<Uuid>>,
    }

    impl World {
        fn new() -> Self {
            Self {
                station: Uuid::new_v4(),
                crewed: Uuid::new_v4(),
                empty: Uuid::new_v4(),
                officers: vec![Uuid::new_v4(), Uuid::new_v4()],
                assigned_in_db: Uuid::new_v4(),
                citizen: Uuid::new_v4(),
                forgotten: Mutex::new(Vec::new()),
            }
        }

        fn frame(&self, t: &Translator, e: &Decoded, reader: Reader) -> Option<Frame> {
            t.frame(e, reader, self).now_or_never().expect("no waiting")
        }
    }

    impl Facts for World {
        async fn station_of(&self, patrol: Uuid) -> Option<Uuid> {
            [self.crewed, self.empty]
                .contains(&patrol)
                .then_some(self.station)
        }

        async fn serving_crew(&self, patrol: Uuid) -> Vec<Uuid> {
            if patrol == self.crewed {
                self.officers.clone()
            } else {
                Vec::new()
            }
        }

        async fn assigned_patrol(&self, report: Uuid) -> Option<Uuid> {
            (report == self.assigned_in_db).then_some(self.crewed)
        }

        fn crew_changed(&self, patrol: Uuid) {
            self.forgotten.lock().expect("lock").push(patrol);
        }

        async fn report_station(&self, report: Uuid) -> Option<Uuid> {
            (report == self.assigned_in_db).then_some(self.station)
        }

        async fn reporter_of(&self, report: Uuid) -> Option<Option<Uuid>> {
            (report == self.assigned_in_db).then_some(Some(self.citizen))
        }
    }

    impl World {
        fn desk(&self, t: &Translator, e: &Decoded, reader: Reader) -> Vec<Frame> {
            t.desk_frames(e, reader, self)
                .now_or_never()
                .expect("no waiting")
        }
    }

    fn data(f: &Frame) -> Value {
        serde_json::from_str(&f.data).expect("JSON")
    }

    fn opened(report: Uuid) -> PatrolEvent {
        PatrolAssignmentOpened {
            report_id: ReportId::new(report),
            at: at(),
        }
        .into()
    }

    fn note() -> ReportEvent {
        NoteAdded {
            note_id: Uuid::new_v4().into(),
            note: "seen near the market".into(),
            author_id: AccountId::new(Uuid::new_v4()),
            at: at(),
        }
        .into()
    }

    #[test]
    fn a_status_change_goes_to_the_patrols_station() {
        let w = World::new();
        let t = Translator::default();
        let change: PatrolEvent = PatrolStatusChanged {
            status: PatrolStatus::Busy,
            cause: StatusCause::Dispatched,
            at: at(),
        }
        .into();
        let f = w
            .frame(&t, &decoded("patrol", w.crewed, 42, &change), Reader::Live)
            .expect("a frame");
        assert_eq!((f.event, f.id()), ("status", "e42".to_string()));
        assert_eq!(f.audience, Audience::Station(w.station));
        assert_eq!(
            data(&f),
            json!({
                "position": 42,
                "patrol_id": w.crewed,
                "station_id": w.station,
                "status": "BUSY",
                "cause": "DISPATCHED",
                "at": "2026-11-01T08:30:00.250Z",
            })
        );
        let unknown = decoded("patrol", Uuid::new_v4(), 43, &change);
        assert_eq!(
            w.frame(&t, &unknown, Reader::Live),
            None,
            "no station, no frame"
        );
    }

    #[test]
    fn an_assignment_goes_to_the_serving_crew_and_later_report_events_follow_it() {
        let w = World::new();
        let t = Translator::default();
        let report = Uuid::new_v4();
        let f = w
            .frame(
                &t,
                &decoded("patrol", w.crewed, 10, &opened(report)),
                Reader::Live,
            )
            .expect("a frame");
        assert_eq!(f.event, "assignment");
        assert_eq!(f.audience, Audience::Officers(w.officers.clone()));
        assert_eq!(
            data(&f),
            json!({
                "position": 10,
                "type": "PatrolAssignmentOpened",
                "report_id": report,
                "patrol_id": w.crewed,
                "occurred_at": "2026-11-01T08:30:00.250Z",
            })
        );
        // A note names no patrol: the link learnt from the assignment says whose it is.
        let f = w
            .frame(&t, &decoded("report", report, 11, &note()), Reader::Live)
            .expect("the note reaches the crew");
        assert_eq!(f.audience, Audience::Officers(w.officers.clone()));
        assert_eq!(data(&f)["type"], "NoteAdded");
        assert_eq!(data(&f)["patrol_id"], json!(w.crewed));
        // Closed: the link is gone, and the read model does not know the report either.
        let closed: PatrolEvent = PatrolAssignmentClosed {
            report_id: ReportId::new(report),
            outcome: AssignmentOutcome::Declined,
            at: at(),
        }
        .into();
        let f = w.frame(&t, &decoded("patrol", w.crewed, 12, &closed), Reader::Live);
        assert_eq!(
            f.map(|f| f.audience),
            Some(Audience::Officers(w.officers.clone()))
        );
        assert_eq!(
            w.frame(&t, &decoded("report", report, 13, &note()), Reader::Live),
            None
        );
    }

    #[test]
    fn a_report_event_that_names_its_patrol_needs_no_link() {
        let w = World::new();
        let t = Translator::default();
        let report = Uuid::new_v4();
        let accepted: ReportEvent = AssignmentAccepted {
            patrol_id: PatrolId::new(w.crewed),
            at: at(),
        }
        .into();
        let f = w
            .frame(&t, &decoded("report", report, 5, &accepted), Reader::Replay)
            .expect("a frame");
        assert_eq!(data(&f)["type"], "AssignmentAccepted");
        assert_eq!(data(&f)["patrol_id"], json!(w.crewed));
        // A replay learns nothing: the next note of that report finds no link.
        assert_eq!(
            w.frame(&t, &decoded("report", report, 6, &note()), Reader::Replay),
            None
        );
        // The live reader links it.
        let assigned: ReportEvent = ReportAssigned {
            patrol_id: PatrolId::new(w.crewed),
            auto: None,
            at: at(),
        }
        .into();
        assert!(w
            .frame(&t, &decoded("report", report, 7, &assigned), Reader::Live)
            .is_some());
        assert!(w
            .frame(&t, &decoded("report", report, 8, &note()), Reader::Replay)
            .is_some());
    }

    #[test]
    fn a_report_assigned_before_the_hub_started_is_found_in_the_read_model() {
        let w = World::new();
        let t = Translator::default();
        let f = w
            .frame(
                &t,
                &decoded("report", w.assigned_in_db, 3, &note()),
                Reader::Live,
            )
            .expect("a frame");
        assert_eq!(f.audience, Audience::Officers(w.officers.clone()));
        assert_eq!(t.linked(w.assigned_in_db), Some(w.crewed), "and remembered");
    }

    #[test]
    fn a_report_event_goes_to_the_desks_of_its_station_and_a_transfer_to_both() {
        let w = World::new();
        let t = Translator::default();
        // Known to the read model only: asked there, then remembered.
        let f = w.desk(
            &t,
            &decoded("report", w.assigned_in_db, 30, &note()),
            Reader::Live,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].event, f[0].id(), &f[0].audience),
            ("report", "e30".to_string(), &Audience::Desk(w.station))
        );
        assert_eq!(
            data(&f[0]),
            json!({
                "position": 30,
                "type": "NoteAdded",
                "report_id": w.assigned_in_db,
                "station_id": w.station,
                "occurred_at": "2026-11-01T08:30:00.250Z",
            })
        );
        // A transfer: the desks of the station it left and of the one it is at now.
        let other = Uuid::new_v4();
        let moved: ReportEvent = ReportTransferred {
            from_station_id: StationId::new(w.station),
            station_id: StationId::new(other),
            reason: "their area".into(),
            by: AccountId::new(Uuid::new_v4()),
            at: at(),
        }
        .into();
        let f = w.desk(
            &t,
            &decoded("report", w.assigned_in_db, 31, &moved),
            Reader::Live,
        );
        let audiences: Vec<_> = f.iter().map(|f| f.audience.clone()).collect();
        assert_eq!(
            audiences,
            [Audience::Desk(w.station), Audience::Desk(other)]
        );
        assert!(f.iter().all(|f| data(f)["station_id"] == json!(other)));
        // Remembered from the transfer (the read model still says the old station).
        let f = w.desk(
            &t,
            &decoded("report", w.assigned_in_db, 32, &note()),
            Reader::Live,
        );
        assert_eq!(f[0].audience, Audience::Desk(other));
        // Closed: forgotten; the read model is asked again.
        let closed: ReportEvent = ClosureApproved {
            reviewer_id: AccountId::new(Uuid::new_v4()),
            at: at(),
        }
        .into();
        let f = w.desk(
            &t,
            &decoded("report", w.assigned_in_db, 33, &closed),
            Reader::Live,
        );
        assert_eq!(f[0].audience, Audience::Desk(other));
        let f = w.desk(
            &t,
            &decoded("report", w.assigned_in_db, 34, &note()),
            Reader::Live,
        );
        assert_eq!(f[0].audience, Audience::Desk(w.station));
    }

    #[test]
    fn a_report_whose_station_cannot_be_told_and_patrol_events_make_no_desk_frame() {
        let w = World::new();
        let t = Translator::default();
        let unknown = decoded("report", Uuid::new_v4(), 40, &note());
        assert!(w.desk(&t, &unknown, Reader::Live).is_empty());
        let patrol = decoded("patrol", w.crewed, 41, &opened(Uuid::new_v4()));
        assert!(w.desk(&t, &patrol, Reader::Live).is_empty());
        // A replay remembers nothing.
        let f = w.desk(
            &t,
            &decoded("report", w.assigned_in_db, 42, &note()),
            Reader::Replay,
        );
        assert_eq!(f.len(), 1);
        assert!(lock(&t.stations).is_empty());
    }

    #[test]
    fn nobody_serving_means_no_frame() {
        let w = World::new();
        let t = Translator::default();
        let f = w.frame(
            &t,
            &decoded("patrol", w.empty, 9, &opened(Uuid::new_v4())),
            Reader::Live,
        );
        assert_eq!(f, None);
    }

    #[test]
    fn a_crew_change_forgets_the_cached_crew_when_read_live() {
        let w = World::new();
        let t = Translator::default();
        let updated: PatrolEvent = PatrolUpdated {
            call_sign: None,
            officer_ids: Some(vec![AccountId::new(w.officers[0])]),
            at: at(),
        }
        .into();
        let e = decoded("patrol", w.crewed, 20, &updated);
        assert_eq!(w.frame(&t, &e, Reader::Replay), None);
        assert!(
            w.forgotten.lock().expect("lock").is_empty(),
            "a replay changes nothing"
        );
        assert_eq!(w.frame(&t, &e, Reader::Live), None);
        assert_eq!(*w.forgotten.lock().expect("lock"), vec![w.crewed]);
    }

    #[test]
    fn only_patrol_and_report_events_are_followed_and_bad_payloads_are_refused() {
        // The aggregate type decides: any other aggregate's event makes no frame.
        let other = recorded("station", Uuid::new_v4(), 1, &opened(Uuid::new_v4()));
        assert_eq!(Decoded::from_recorded(&other).ok(), Some(None));
        let mut bad = recorded("patrol", Uuid::new_v4(), 2, &opened(Uuid::new_v4()));
        bad.data = json!({"report_id": "not a uuid"});
        assert!(Decoded::from_recorded(&bad).is_err());
        bad.envelope.event_type = "PatrolExploded".into();
        assert!(Decoded::from_recorded(&bad).is_err());
    }

    #[test]
    fn a_position_goes_to_its_station_with_optional_fields_only_when_set() {
        let patrol = Uuid::new_v4();
        let station = StationId::new(Uuid::new_v4()).as_uuid();
        let mut m = RecordedMove {
            seq: 7,
            stored_at: at(),
            moved: precinct_eventlog::PatrolMoved {
                patrol_id: patrol,
                station_id: station,
                officer_id: Uuid::new_v4(),
                latitude: 7.07,
                longitude: 125.61,
                heading: None,
                speed_mps: Some(3.5),
                recorded_at: at(),
                received_at: at(),
            },
        };
        let f = position_frame(&m);
        assert_eq!(
            (f.event, f.id(), f.patrol_id),
            ("position", "p7".to_string(), Some(patrol))
        );
        assert_eq!(f.audience, Audience::Station(station));
        assert_eq!(
            data(&f),
            json!({
                "position": 7,
                "patrol_id": patrol,
                "station_id": station,
                "latitude": 7.07,
                "longitude": 125.61,
                "recorded_at": "2026-11-01T08:30:00.250Z",
                "speed_mps": 3.5,
            })
        );
        m.moved.heading = Some(90.0);
        assert_eq!(data(&position_frame(&m))["heading"], 90.0);
    }

    /// Every key of a JSON value, nested objects included.
    fn keys(v: &Value, out: &mut Vec<String>) {
        if let Value::Object(m) = v {
            for (k, v) in m {
                out.push(k.clone());
                keys(v, out);
            }
        }
    }

    #[test]
    fn the_reporter_gets_status_changes_and_public_updates_with_reporter_fields_only() {
        let w = World::new();
        let t = Translator::default();
        let report = w.assigned_in_db;
        let author = Uuid::new_v4();
        let secret = "INTERNAL: suspect is the neighbour";
        let events: Vec<ReportEvent> = vec![
            ReportAssigned {
                patrol_id: PatrolId::new(w.crewed),
                auto: None,
                at: at(),
            }
            .into(),
            NoteAdded {
                note_id: Uuid::new_v4().into(),
                note: secret.into(),
                author_id: AccountId::new(author),
                at: at(),
            }
            .into(),
            PublicUpdatePosted {
                update_id: Uuid::new_v4().into(),
                message: "An officer is on the way.".into(),
                author_id: AccountId::new(author),
                at: at(),
            }
            .into(),
            ReportResolved {
                patrol_id: PatrolId::new(w.crewed),
                resolution_notes: secret.into(),
                at: at(),
            }
            .into(),
            ClosureApproved {
                reviewer_id: AccountId::new(author),
                at: at(),
            }
            .into(),
        ];
        let mut reporter_frames = Vec::new();
        for (i, event) in events.iter().enumerate() {
            let d = decoded("report", report, 100 + i as u64, event);
            let frames = t
                .frames(&d, Reader::Live, &w)
                .now_or_never()
                .expect("no waiting");
            reporter_frames.extend(
                frames
                    .into_iter()
                    .filter(|f| matches!(f.audience, Audience::Reporter { .. })),
            );
        }
        let got: Vec<(&str, String)> = reporter_frames.iter().map(|f| (f.event, f.id())).collect();
        assert_eq!(
            got,
            [
                ("report_status", "e100".to_string()),
                ("public_update", "e102".to_string()),
                ("report_status", "e103".to_string()),
                ("report_status", "e104".to_string()),
            ],
            "no frame of the note"
        );
        for f in &reporter_frames {
            assert_eq!(
                f.audience,
                Audience::Reporter {
                    report,
                    account: Some(w.citizen)
                }
            );
            let mut k = Vec::new();
            keys(&data(f), &mut k);
            for key in k {
                assert!(
                    REPORTER_FIELDS.contains(&key.as_str()),
                    "{key} in {}",
                    f.data
                );
            }
            for leak in [secret.to_string(), author.to_string(), w.crewed.to_string()] {
                assert!(!f.data.contains(&leak), "{leak} in {}", f.data);
            }
        }
        assert_eq!(
            data(&reporter_frames[0]),
            json!({"position": 100, "report_id": report, "status": "ASSIGNED", "at": "2026-11-01T08:30:00.250Z"})
        );
        assert_eq!(
            data(&reporter_frames[1])["public_update"]["message"],
            "An officer is on the way."
        );
        assert_eq!(data(&reporter_frames[3])["status"], "CLOSED");
    }

    #[test]
    fn a_rejection_tells_the_public_reason_or_the_default_never_the_justification() {
        let w = World::new();
        let t = Translator::default();
        let anonymous = Uuid::new_v4();
        for (reason, told) in [
            (Some("Not a police matter."), "Not a police matter."),
            (None, crate::views::DEFAULT_REJECTION_REASON),
        ] {
            let rejected: ReportEvent = ReportRejected {
                justification: "prank caller, internal".into(),
                by: AccountId::new(Uuid::new_v4()),
                at: at(),
                public_reason: reason.map(str::to_string),
            }
            .into();
            let frames = t
                .frames(
                    &decoded("report", anonymous, 7, &rejected),
                    Reader::Live,
                    &w,
                )
                .now_or_never()
                .expect("no waiting");
            let [f] = frames.as_slice() else {
                panic!("one frame: {frames:?}");
            };
            // The reporter cannot be told: only the report's own stream gets it.
            assert_eq!(
                f.audience,
                Audience::Reporter {
                    report: anonymous,
                    account: None
                }
            );
            assert_eq!(data(f)["status"], "REJECTED");
            assert_eq!(data(f)["rejection_reason"], told);
            assert!(!f.data.contains("prank"), "{}", f.data);
        }
    }
}
