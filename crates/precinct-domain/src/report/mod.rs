//! The report aggregate (a "crime" in the HTTP API): its lifecycle from submission to
//! closure, rejection or withdrawal.
//!
//! ```text
//! NEW ─assign─▶ ASSIGNED ─accept─▶ ACCEPTED ─respond─▶ RESPONDING ─resolve─▶ RESOLVED ─approve─▶ CLOSED
//!  ▲               │                                        ▲                      │
//!  └───decline─────┘                                        └───reject closure─────┘
//! NEW | ASSIGNED ─reject as invalid─▶ REJECTED      any open ─withdraw─▶ WITHDRAWN
//! ASSIGNED | ACCEPTED | RESPONDING ─unassign─▶ NEW   (reassign: unassign + assign, one append)
//! NEW | ASSIGNED | ACCEPTED | RESPONDING ─transfer─▶ NEW at another station
//! CLOSED | REJECTED ─reopen─▶ NEW                  (not a duplicate: unlink it instead)
//! NEW | ASSIGNED | ACCEPTED | RESPONDING ─mark duplicate─▶ CLOSED (duplicate_of set)
//! CLOSED as a duplicate ─unlink─▶ NEW
//! ```
//!
//! Links (issue 16 item 4) are one level deep: a duplicate has no duplicates of its own
//! and is never a primary, so no chain or cycle of duplicates can form. `RELATED` links
//! are symmetric and change no status. Each link has a side on both reports' streams;
//! the caller appends both in one append.
//!
//! The report knows its assigned patrol but not the patrol's side of the bargain:
//! keeping the patrol's workload in step (`PatrolAssignmentOpened/Closed`) is the
//! caller's job, in the same atomic append.

mod command;
mod events;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

pub use command::ReportCommand;
pub use events::{
    AmendedBy, AssignmentAccepted, AssignmentDeclined, ClosureApproved, ClosureRejected,
    EvidenceAttached, NoteAdded, PersonalChanges, PersonalDetails, PublicUpdatePosted,
    ReportAmended, ReportAssigned, ReportChanges, ReportEvent, ReportLocation, ReportRejected,
    ReportResolved, ReportResponding, ReportSubmitted, ReportTriaged, ReportWithdrawn, Reporter,
    SlaBreached,
};
pub use events::{
    AssignmentWithdrawn, PatrolNotified, ReportReopened, ReportTransferred, SlaEscalated, SlaWarned,
};
pub use events::{
    DuplicateAttached, DuplicateDetached, DuplicateUnmarked, ReportLinked, ReportMarkedDuplicate,
    ReportUnlinked,
};

use crate::aggregate::{Aggregate, DomainError, ErrorKind};
use crate::ids::{AccountId, PatrolId, ReportId, StationId};
use crate::routing::RoutingDecision;
use crate::values::{Priority, ReportStatus, SlaKind, TokenHash};

/// Most amendments one report takes from its reporter. Each one is read again by every
/// `as_of` and history read of the report. Staff amendments are not counted here (a
/// reporter who used up their amendments must not block the desk's corrections); like
/// every addition they stop at [`MAX_REPORT_EVENTS`].
pub const MAX_AMENDMENTS: u32 = 50;

/// Most events one report's stream holds before it refuses what only adds to it
/// (notes, evidence, amendments, triage, assignments, rejected closures); what moves it
/// to its end (accept, respond, resolve, approve, reject, withdraw, decline, SLA
/// breaches) is never refused, and adds at most a handful more. Every read of one
/// report is bounded by it.
pub const MAX_REPORT_EVENTS: u32 = 1_000;

/// Why the report refused a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("report not found")]
    NotFound,
    #[error("report already exists")]
    AlreadyExists,
    #[error("cannot {action} a report that is {from}")]
    IllegalTransition {
        from: ReportStatus,
        action: &'static str,
    },
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("the amendment changes nothing")]
    NothingToChange,
    #[error("the service-level deadline has not passed (or the report is not waiting on it)")]
    SlaNotBreached,
    #[error("this breach is already recorded for the current assignment")]
    SlaAlreadyRecorded,
    #[error("this {kind} id is already used on the report")]
    DuplicateId { kind: &'static str },
    #[error("the report was amended {max} times by its reporter, the most they may; staff may still correct it")]
    TooManyAmendments { max: u32 },
    #[error("the report's history holds {max} events, the most it may; it can still be moved to its end")]
    HistoryFull { max: u32 },
    #[error("the report is already assigned to this patrol")]
    SamePatrol,
    #[error("the report is no longer assigned to the patrol named as its current one")]
    AssignmentChanged,
    #[error("the report is already at this station")]
    SameStation,
    #[error("the report is already linked to report {other}")]
    AlreadyLinked { other: ReportId },
    #[error("the report is not linked to report {other}")]
    NotLinked { other: ReportId },
    #[error("the report has duplicates of its own ({}); unlink them first", id_list(.duplicates))]
    HasDuplicates { duplicates: Vec<ReportId> },
    #[error("the report is a duplicate of report {primary}; link to {primary} instead, or unlink it first")]
    IsDuplicate { primary: ReportId },
    #[error("the report has no assigned patrol to notify")]
    NoPatrol,
}

/// At most the first 20 ids, then how many more.
fn id_list(ids: &[ReportId]) -> String {
    let mut out: Vec<String> = ids.iter().take(20).map(ToString::to_string).collect();
    if ids.len() > 20 {
        out.push(format!("and {} more", ids.len() - 20));
    }
    out.join(", ")
}

impl ReportError {
    /// A state conflict (HTTP 409): illegal transition, already exists, SLA refusals,
    /// duplicate ids, a report at its limits.
    pub fn is_conflict(&self) -> bool {
        self.kind() == ErrorKind::Conflict
    }

    /// A field problem (HTTP 422): `Invalid` or `NothingToChange`.
    pub fn is_validation(&self) -> bool {
        self.kind() == ErrorKind::Invalid
    }

    pub(crate) fn invalid(field: &'static str, reason: impl ToString) -> Self {
        Self::Invalid {
            field,
            reason: reason.to_string(),
        }
    }
}

impl DomainError for ReportError {
    fn kind(&self) -> ErrorKind {
        match self {
            ReportError::NotFound => ErrorKind::NotFound,
            ReportError::Invalid { .. } | ReportError::NothingToChange => ErrorKind::Invalid,
            ReportError::AlreadyExists
            | ReportError::IllegalTransition { .. }
            | ReportError::SlaNotBreached
            | ReportError::SlaAlreadyRecorded
            | ReportError::DuplicateId { .. }
            | ReportError::TooManyAmendments { .. }
            | ReportError::HistoryFull { .. }
            | ReportError::SamePatrol
            | ReportError::AssignmentChanged
            | ReportError::SameStation
            | ReportError::AlreadyLinked { .. }
            | ReportError::NotLinked { .. }
            | ReportError::HasDuplicates { .. }
            | ReportError::IsDuplicate { .. }
            | ReportError::NoPatrol => ErrorKind::Conflict,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            ReportError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// A report's state, folded from its events. Read it freely; change it only through
/// [`Aggregate::apply`]. It serializes for the snapshots `as_of` starts from (ADR 0022):
/// a snapshot that no longer deserializes (the state changed shape) is ignored and
/// written again from the log.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    exists: bool,
    pub id: ReportId,
    pub status: ReportStatus,
    pub station_id: StationId,
    pub routing: Option<RoutingDecision>,
    pub priority: Priority,
    pub title: String,
    pub crime_types: Vec<String>,
    /// Catalogue codes of `crime_types` as resolved at submission (ADR 0026).
    #[serde(default)]
    pub crime_type_codes: Vec<crate::crime_type::CrimeTypeCode>,
    pub location: ReportLocation,
    pub occurred_at: Option<DateTime<Utc>>,
    pub media_urls: Vec<String>,
    /// `None` only before submission.
    pub reporter: Option<Reporter>,
    pub personal: PersonalDetails,
    /// The patrol of the current (or, once closed/rejected/withdrawn, the last)
    /// assignment; cleared by a decline.
    pub patrol_id: Option<PatrolId>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub responding_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution_notes: Option<String>,
    pub evidence: Vec<EvidenceAttached>,
    /// Internal notes (staff only).
    pub notes: Vec<NoteAdded>,
    /// Updates written for the reporter, oldest first.
    pub public_updates: Vec<PublicUpdatePosted>,
    /// What the reporter is told about a rejection (None: not rejected, or no public
    /// reason was given).
    pub rejection_public_reason: Option<String>,
    /// How many times this report was declined.
    pub declines: u32,
    /// SLA breaches recorded for the current assignment, and when.
    pub sla_breaches: BTreeMap<SlaKind, DateTime<Utc>>,
    /// SLA warnings recorded for the current assignment.
    pub sla_warnings: BTreeSet<SlaKind>,
    /// How many times the report was amended, by anyone.
    pub amendments: u32,
    /// How many of those amendments were its reporter's (see [`MAX_AMENDMENTS`]).
    pub reporter_amendments: u32,
    /// How many events the report's stream holds (see [`MAX_REPORT_EVENTS`]).
    pub events: u32,
    /// How many times the report was moved to another station by a person.
    pub transfers: u32,
    /// How many times the report was reopened.
    pub reopens: u32,
    /// The primary this report was closed into as a duplicate.
    pub duplicate_of: Option<ReportId>,
    /// Reports closed into this one as its duplicates, in the order they were attached.
    pub duplicates: Vec<ReportId>,
    /// Reports linked to this one as `RELATED`, in the order they were linked.
    pub related: Vec<ReportId>,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Report {
    /// Whether `account` is the signed-in user who submitted the report.
    pub fn is_reported_by(&self, account: AccountId) -> bool {
        matches!(self.reporter, Some(Reporter::User { account_id }) if account_id == account)
    }

    /// Whether `hash` is the digest of this anonymous report's tracking token.
    pub fn has_tracking_token_hash(&self, hash: &TokenHash) -> bool {
        matches!(&self.reporter, Some(Reporter::Anonymous { tracking_token_hash }) if tracking_token_hash == hash)
    }

    /// Whether the report has a link of any kind to `other`.
    pub fn is_linked_to(&self, other: ReportId) -> bool {
        self.duplicate_of == Some(other)
            || self.duplicates.contains(&other)
            || self.related.contains(&other)
    }

    /// When the running SLA clock of `kind` started, if the report is waiting on it.
    pub fn sla_since(&self, kind: SlaKind) -> Option<DateTime<Utc>> {
        match (kind, self.status) {
            (SlaKind::Accept, ReportStatus::Assigned) => self.assigned_at,
            (SlaKind::Respond, ReportStatus::Accepted) => self.accepted_at,
            (SlaKind::Resolve, ReportStatus::Accepted | ReportStatus::Responding) => {
                self.accepted_at
            }
            _ => None,
        }
    }
}

impl Report {
    /// No patrol and no running clock: the report waits in the queue.
    fn clear_assignment(&mut self) {
        self.patrol_id = None;
        self.assigned_at = None;
        self.accepted_at = None;
        self.responding_at = None;
        self.resolved_at = None;
        self.resolution_notes = None;
        self.sla_breaches.clear();
        self.sla_warnings.clear();
    }
}

impl Aggregate for Report {
    const TYPE: &'static str = "report";
    type Command = ReportCommand;
    type Event = ReportEvent;
    type Error = ReportError;

    fn handle(&self, cmd: ReportCommand) -> Result<Vec<ReportEvent>, ReportError> {
        command::handle(self, cmd)
    }

    fn apply(&mut self, event: &ReportEvent) {
        match event {
            ReportEvent::ReportSubmitted(e) => {
                *self = Report {
                    exists: true,
                    id: e.report_id,
                    status: ReportStatus::New,
                    station_id: e.station_id,
                    routing: Some(e.routing.clone()),
                    priority: e.priority,
                    title: e.title.clone(),
                    crime_types: e.crime_types.clone(),
                    crime_type_codes: e.resolved_codes(),
                    location: e.location.clone(),
                    occurred_at: e.occurred_at,
                    media_urls: e.media_urls.clone(),
                    reporter: Some(e.reporter.clone()),
                    personal: e.personal.clone(),
                    submitted_at: e.at,
                    updated_at: e.at,
                    ..Report::default()
                };
            }
            ReportEvent::ReportAmended(e) => {
                let c = &e.changes;
                if let Some(title) = &c.title {
                    self.title.clone_from(title);
                }
                if let Some(crime_types) = &c.crime_types {
                    self.crime_types.clone_from(crime_types);
                }
                if let Some(codes) = &e.crime_type_codes {
                    self.crime_type_codes.clone_from(codes);
                }
                if let Some(location) = &c.location {
                    self.location = location.clone();
                }
                if let Some(occurred_at) = c.occurred_at {
                    self.occurred_at = Some(occurred_at);
                }
                if let Some(media_urls) = &c.media_urls {
                    self.media_urls.clone_from(media_urls);
                }
                self.amendments = self.amendments.saturating_add(1);
                if e.by != Some(AmendedBy::Staff) {
                    self.reporter_amendments = self.reporter_amendments.saturating_add(1);
                }
                if let Some(p) = &e.personal {
                    if let Some(description) = &p.description {
                        self.personal.description.clone_from(description);
                    }
                    if let Some(street) = &p.street {
                        self.personal.street = Some(street.clone());
                    }
                    if let Some(contact) = &p.contact {
                        self.personal.contact = Some(contact.clone());
                    }
                }
                self.updated_at = e.at;
            }
            ReportEvent::ReportTriaged(e) => {
                self.priority = e.priority;
                self.updated_at = e.at;
            }
            ReportEvent::ReportAssigned(e) => {
                self.status = ReportStatus::Assigned;
                self.patrol_id = Some(e.patrol_id);
                self.assigned_at = Some(e.at);
                self.accepted_at = None;
                self.responding_at = None;
                self.resolved_at = None;
                self.resolution_notes = None;
                self.sla_breaches.clear();
                self.sla_warnings.clear();
                self.updated_at = e.at;
            }
            ReportEvent::AssignmentAccepted(e) => {
                self.status = ReportStatus::Accepted;
                self.accepted_at = Some(e.at);
                self.updated_at = e.at;
            }
            ReportEvent::AssignmentDeclined(e) => {
                self.status = ReportStatus::New;
                self.patrol_id = None;
                self.assigned_at = None;
                self.sla_breaches.clear();
                self.sla_warnings.clear();
                self.declines += 1;
                self.updated_at = e.at;
            }
            ReportEvent::ReportResponding(e) => {
                self.status = ReportStatus::Responding;
                self.responding_at = Some(e.at);
                self.updated_at = e.at;
            }
            ReportEvent::NoteAdded(e) => {
                self.notes.push(e.clone());
                self.updated_at = e.at;
            }
            ReportEvent::PublicUpdatePosted(e) => {
                self.public_updates.push(e.clone());
                self.updated_at = e.at;
            }
            ReportEvent::EvidenceAttached(e) => {
                self.evidence.push(e.clone());
                self.updated_at = e.at;
            }
            ReportEvent::ReportResolved(e) => {
                self.status = ReportStatus::Resolved;
                self.resolved_at = Some(e.at);
                self.resolution_notes = Some(e.resolution_notes.clone());
                self.updated_at = e.at;
            }
            ReportEvent::ClosureApproved(e) => {
                self.status = ReportStatus::Closed;
                self.updated_at = e.at;
            }
            ReportEvent::ClosureRejected(e) => {
                self.status = ReportStatus::Responding;
                self.resolved_at = None;
                self.resolution_notes = None;
                self.updated_at = e.at;
            }
            ReportEvent::ReportRejected(e) => {
                self.status = ReportStatus::Rejected;
                self.rejection_public_reason.clone_from(&e.public_reason);
                self.updated_at = e.at;
            }
            ReportEvent::ReportWithdrawn(e) => {
                self.status = ReportStatus::Withdrawn;
                self.updated_at = e.at;
            }
            ReportEvent::SlaBreached(e) => {
                // A breach is a fact about the clock, not a change to the report:
                // `updated_at` stays.
                self.sla_breaches.insert(e.kind, e.at);
            }
            ReportEvent::AssignmentWithdrawn(e) => {
                self.status = ReportStatus::New;
                self.clear_assignment();
                self.updated_at = e.at;
            }
            ReportEvent::ReportTransferred(e) => {
                self.station_id = e.station_id;
                self.transfers = self.transfers.saturating_add(1);
                self.updated_at = e.at;
            }
            ReportEvent::ReportReopened(e) => {
                self.status = ReportStatus::New;
                self.clear_assignment();
                self.rejection_public_reason = None;
                self.reopens = self.reopens.saturating_add(1);
                self.updated_at = e.at;
            }
            ReportEvent::ReportMarkedDuplicate(e) => {
                self.status = ReportStatus::Closed;
                self.duplicate_of = Some(e.primary_id);
                self.updated_at = e.at;
            }
            ReportEvent::DuplicateAttached(e) => {
                if !self.duplicates.contains(&e.duplicate_id) {
                    self.duplicates.push(e.duplicate_id);
                }
                self.updated_at = e.at;
            }
            ReportEvent::DuplicateUnmarked(e) => {
                self.status = ReportStatus::New;
                self.duplicate_of = None;
                self.clear_assignment();
                self.updated_at = e.at;
            }
            ReportEvent::DuplicateDetached(e) => {
                self.duplicates.retain(|d| *d != e.duplicate_id);
                self.updated_at = e.at;
            }
            ReportEvent::ReportLinked(e) => {
                if !self.related.contains(&e.other_id) {
                    self.related.push(e.other_id);
                }
                self.updated_at = e.at;
            }
            ReportEvent::ReportUnlinked(e) => {
                self.related.retain(|r| *r != e.other_id);
                self.updated_at = e.at;
            }
            // A request to notify the crew: the report does not change.
            ReportEvent::PatrolNotified(_) => {}
            ReportEvent::SlaWarned(e) => {
                self.sla_warnings.insert(e.kind);
            }
            // The AssignmentWithdrawn (and ReportAssigned) after it do the work.
            ReportEvent::SlaEscalated(_) => {}
        }
        // After the match: a submission starts from a fresh state.
        self.events = self.events.saturating_add(1);
    }

    fn version_exists(&self) -> bool {
        self.exists
    }

    /// The reporter's account, or the report itself when anonymous.
    fn data_subject(&self) -> Option<uuid::Uuid> {
        match &self.reporter {
            Some(Reporter::User { account_id }) => Some(account_id.as_uuid()),
            Some(Reporter::Anonymous { .. }) => Some(self.id.as_uuid()),
            None => None,
        }
    }
}
