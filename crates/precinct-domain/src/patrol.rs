//! The patrol aggregate: a unit's identity, members, availability and open workload.
//!
//! Availability follows the workload: opening an assignment makes an `AVAILABLE`
//! patrol `BUSY` (cause `DISPATCHED`), closing its last one makes a `BUSY` patrol
//! `AVAILABLE` again (cause `RELEASED`). Officers may set the status by hand
//! (`MANUAL`), but not to `AVAILABLE` or `OFF_DUTY` while reports are still theirs.
//! Live positions are not events of this aggregate (they are the high-rate path).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{event_enum, Aggregate, DomainError, ErrorKind};
use crate::dispatch::PatrolSnapshot;
use crate::ids::{AccountId, PatrolId, ReportId, StationId};
use crate::values::{limits, GeoPoint, NonEmptyText, PatrolStatus, Role, ValueError};

event_enum!(
    /// Everything that can happen to a patrol.
    PatrolEvent {
        PatrolRegistered,
        PatrolUpdated,
        PatrolStatusChanged,
        PatrolAssignmentOpened,
        PatrolAssignmentClosed,
    }
);

/// Why a patrol's status changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatusCause {
    /// Set by a person.
    Manual,
    /// Became `BUSY` because a report was assigned to it.
    Dispatched,
    /// Became `AVAILABLE` because its last open assignment closed.
    Released,
}

/// How an assignment ended, from the patrol's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AssignmentOutcome {
    /// The patrol declined it (counts toward its declines).
    Declined,
    /// The report was resolved.
    Finished,
    /// The report was rejected or withdrawn while assigned.
    Cancelled,
    /// The desk took it back: unassigned, reassigned to another patrol, or transferred
    /// to another station (not the patrol's decline).
    Withdrawn,
}

/// A new patrol, `AVAILABLE`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatrolRegistered {
    pub patrol_id: PatrolId,
    pub call_sign: String,
    pub station_id: StationId,
    pub officer_ids: Vec<AccountId>,
    pub at: DateTime<Utc>,
}

/// Replaced fields; absent ones stay as they were.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatrolUpdated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_sign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer_ids: Option<Vec<AccountId>>,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatrolStatusChanged {
    pub status: PatrolStatus,
    pub cause: StatusCause,
    pub at: DateTime<Utc>,
}

/// A report was assigned to this patrol (counts as workload until closed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatrolAssignmentOpened {
    pub report_id: ReportId,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatrolAssignmentClosed {
    pub report_id: ReportId,
    pub outcome: AssignmentOutcome,
    pub at: DateTime<Utc>,
}

/// Everything a caller may ask of a patrol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatrolCommand {
    /// Creates the patrol; call sign 1..=32 characters, officers de-duplicated.
    Register {
        patrol_id: PatrolId,
        call_sign: String,
        station_id: StationId,
        officer_ids: Vec<AccountId>,
        at: DateTime<Utc>,
    },
    /// Replaces the given fields; refuses an empty change.
    Update {
        call_sign: Option<String>,
        officer_ids: Option<Vec<AccountId>>,
        at: DateTime<Utc>,
    },
    /// Takes one officer off the crew (their role or station changed: they can no
    /// longer serve in it). Not a member: a no-op (no events).
    RemoveOfficer {
        officer_id: AccountId,
        at: DateTime<Utc>,
    },
    /// Manual status change. The current status again is a no-op (no events).
    SetStatus {
        status: PatrolStatus,
        at: DateTime<Utc>,
    },
    /// A report was assigned to the patrol (same append as `ReportAssigned`).
    OpenAssignment {
        report_id: ReportId,
        at: DateTime<Utc>,
    },
    /// An assignment ended. Closing one that is not open is a no-op (no events).
    CloseAssignment {
        report_id: ReportId,
        outcome: AssignmentOutcome,
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatrolError {
    #[error("patrol not found")]
    NotFound,
    #[error("patrol already exists")]
    AlreadyExists,
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("the update changes nothing")]
    NothingToChange,
    #[error("the patrol still has open assignments")]
    HasOpenAssignments,
    #[error("the patrol is off duty")]
    OffDuty,
    #[error("the report is already assigned to this patrol")]
    AlreadyAssigned,
}

impl DomainError for PatrolError {
    fn kind(&self) -> ErrorKind {
        match self {
            PatrolError::NotFound => ErrorKind::NotFound,
            PatrolError::Invalid { .. } | PatrolError::NothingToChange => ErrorKind::Invalid,
            PatrolError::AlreadyExists
            | PatrolError::HasOpenAssignments
            | PatrolError::OffDuty
            | PatrolError::AlreadyAssigned => ErrorKind::Conflict,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            PatrolError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// A patrol's state, folded from its events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Patrol {
    exists: bool,
    pub id: PatrolId,
    pub call_sign: String,
    pub station_id: StationId,
    pub officer_ids: Vec<AccountId>,
    pub status: PatrolStatus,
    /// Reports assigned and not yet declined, resolved or cancelled.
    pub open_assignments: BTreeSet<ReportId>,
    pub declines: u32,
    pub last_assigned_at: Option<DateTime<Utc>>,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Patrol {
    /// Whether the officer is listed in this patrol's crew.
    pub fn is_member(&self, officer: AccountId) -> bool {
        self.officer_ids.contains(&officer)
    }

    /// Whether the officer may act for this patrol: listed in its crew **and**, as their
    /// account is now, a `PATROL` of the patrol's station. A crew list can trail a role
    /// or station change (see [`serves_in`]); the account's current role decides.
    pub fn is_serving_member(
        &self,
        officer: AccountId,
        role: Role,
        station: Option<StationId>,
    ) -> bool {
        self.is_member(officer) && serves_in(self.station_id, role, station)
    }

    /// The patrol as automatic assignment sees it, with its last known position.
    pub fn snapshot(&self, location: Option<GeoPoint>) -> PatrolSnapshot {
        PatrolSnapshot {
            patrol_id: self.id,
            station_id: self.station_id,
            status: self.status,
            open_assignments: u32::try_from(self.open_assignments.len()).unwrap_or(u32::MAX),
            declines: self.declines,
            last_assigned_at: self.last_assigned_at,
            location,
        }
    }
}

impl Aggregate for Patrol {
    const TYPE: &'static str = "patrol";
    type Command = PatrolCommand;
    type Event = PatrolEvent;
    type Error = PatrolError;

    fn handle(&self, cmd: PatrolCommand) -> Result<Vec<PatrolEvent>, PatrolError> {
        use PatrolCommand as C;
        match (matches!(cmd, C::Register { .. }), self.exists) {
            (true, true) => return Err(PatrolError::AlreadyExists),
            (false, false) => return Err(PatrolError::NotFound),
            _ => {}
        }
        let events = match cmd {
            C::Register {
                patrol_id,
                call_sign,
                station_id,
                officer_ids,
                at,
            } => vec![PatrolRegistered {
                patrol_id,
                call_sign: call_sign_text(&call_sign)?,
                station_id,
                officer_ids: officer_list(officer_ids)?,
                at,
            }
            .into()],
            C::Update {
                call_sign,
                officer_ids,
                at,
            } => {
                if call_sign.is_none() && officer_ids.is_none() {
                    return Err(PatrolError::NothingToChange);
                }
                vec![PatrolUpdated {
                    call_sign: call_sign.as_deref().map(call_sign_text).transpose()?,
                    officer_ids: officer_ids.map(officer_list).transpose()?,
                    at,
                }
                .into()]
            }
            C::RemoveOfficer { officer_id, at } => {
                if !self.is_member(officer_id) {
                    return Ok(Vec::new());
                }
                let officer_ids = self
                    .officer_ids
                    .iter()
                    .copied()
                    .filter(|o| *o != officer_id)
                    .collect();
                vec![PatrolUpdated {
                    call_sign: None,
                    officer_ids: Some(officer_ids),
                    at,
                }
                .into()]
            }
            C::SetStatus { status, at } => {
                if status == self.status {
                    return Ok(Vec::new());
                }
                if status != PatrolStatus::Busy && !self.open_assignments.is_empty() {
                    return Err(PatrolError::HasOpenAssignments);
                }
                vec![PatrolStatusChanged {
                    status,
                    cause: StatusCause::Manual,
                    at,
                }
                .into()]
            }
            C::OpenAssignment { report_id, at } => {
                if self.status == PatrolStatus::OffDuty {
                    return Err(PatrolError::OffDuty);
                }
                if self.open_assignments.contains(&report_id) {
                    return Err(PatrolError::AlreadyAssigned);
                }
                let mut events = vec![PatrolAssignmentOpened { report_id, at }.into()];
                if self.status != PatrolStatus::Busy {
                    events.push(
                        PatrolStatusChanged {
                            status: PatrolStatus::Busy,
                            cause: StatusCause::Dispatched,
                            at,
                        }
                        .into(),
                    );
                }
                events
            }
            C::CloseAssignment {
                report_id,
                outcome,
                at,
            } => {
                if !self.open_assignments.contains(&report_id) {
                    return Ok(Vec::new());
                }
                let mut events = vec![PatrolAssignmentClosed {
                    report_id,
                    outcome,
                    at,
                }
                .into()];
                if self.open_assignments.len() == 1 && self.status == PatrolStatus::Busy {
                    events.push(
                        PatrolStatusChanged {
                            status: PatrolStatus::Available,
                            cause: StatusCause::Released,
                            at,
                        }
                        .into(),
                    );
                }
                events
            }
        };
        Ok(events)
    }

    fn apply(&mut self, event: &PatrolEvent) {
        match event {
            PatrolEvent::PatrolRegistered(e) => {
                *self = Patrol {
                    exists: true,
                    id: e.patrol_id,
                    call_sign: e.call_sign.clone(),
                    station_id: e.station_id,
                    officer_ids: e.officer_ids.clone(),
                    status: PatrolStatus::Available,
                    registered_at: e.at,
                    updated_at: e.at,
                    ..Patrol::default()
                };
            }
            PatrolEvent::PatrolUpdated(e) => {
                if let Some(call_sign) = &e.call_sign {
                    self.call_sign.clone_from(call_sign);
                }
                if let Some(officer_ids) = &e.officer_ids {
                    self.officer_ids.clone_from(officer_ids);
                }
                self.updated_at = e.at;
            }
            PatrolEvent::PatrolStatusChanged(e) => {
                self.status = e.status;
                self.updated_at = e.at;
            }
            PatrolEvent::PatrolAssignmentOpened(e) => {
                self.open_assignments.insert(e.report_id);
                self.last_assigned_at = Some(e.at);
                self.updated_at = e.at;
            }
            PatrolEvent::PatrolAssignmentClosed(e) => {
                self.open_assignments.remove(&e.report_id);
                if e.outcome == AssignmentOutcome::Declined {
                    self.declines += 1;
                }
                self.updated_at = e.at;
            }
        }
    }

    fn version_exists(&self) -> bool {
        self.exists
    }
}

/// Whether an account with `role` at `station` may serve in a patrol of
/// `patrol_station`: only a `PATROL` of that very station.
pub fn serves_in(patrol_station: StationId, role: Role, station: Option<StationId>) -> bool {
    role == Role::Patrol && station == Some(patrol_station)
}

fn call_sign_text(call_sign: &str) -> Result<String, PatrolError> {
    NonEmptyText::parse(call_sign, limits::CALL_SIGN_MAX)
        .map(NonEmptyText::into_string)
        .map_err(|e| PatrolError::Invalid {
            field: "call_sign",
            reason: e.to_string(),
        })
}

/// At most 50 officers; duplicates dropped, first occurrence kept.
fn officer_list(officer_ids: Vec<AccountId>) -> Result<Vec<AccountId>, PatrolError> {
    let mut seen = BTreeSet::new();
    let officers: Vec<AccountId> = officer_ids
        .into_iter()
        .filter(|id| seen.insert(*id))
        .collect();
    if officers.len() > limits::OFFICERS_MAX {
        return Err(PatrolError::Invalid {
            field: "officer_ids",
            reason: ValueError::TooMany {
                max: limits::OFFICERS_MAX,
                len: officers.len(),
            }
            .to_string(),
        });
    }
    Ok(officers)
}
