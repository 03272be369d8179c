//! The report's events and the value types they carry.
//!
//! Personal data of the reporter (description, street, contact) lives only in the
//! `personal` sub-object of the events that carry it, so the log can encrypt that
//! object per data subject without touching anything else.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::event_enum;
use crate::dispatch::AssignmentDecision;
use crate::ids::{AccountId, EvidenceId, NoteId, PatrolId, ReportId, StationId, UpdateId};
use crate::routing::RoutingDecision;
use crate::values::{
    EscalationAction, GeoPoint, Latitude, Longitude, MediaType, Priority, SlaKind, TokenHash,
};

event_enum!(
    /// Everything that can happen to a report.
    ReportEvent {
        ReportSubmitted,
        ReportAmended,
        ReportTriaged,
        ReportAssigned,
        AssignmentAccepted,
        AssignmentDeclined,
        ReportResponding,
        NoteAdded,
        PublicUpdatePosted,
        EvidenceAttached,
        ReportResolved,
        ClosureApproved,
        ClosureRejected,
        ReportRejected,
        ReportWithdrawn,
        SlaBreached,
        AssignmentWithdrawn,
        ReportTransferred,
        ReportReopened,
        ReportMarkedDuplicate,
        DuplicateAttached,
        DuplicateUnmarked,
        DuplicateDetached,
        ReportLinked,
        ReportUnlinked,
        PatrolNotified,
        SlaWarned,
        SlaEscalated,
    }
);

/// Where the crime happened. The street is personal data and lives in
/// [`PersonalDetails`] instead.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportLocation {
    pub latitude: Latitude,
    pub longitude: Longitude,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
}

impl ReportLocation {
    pub fn new(point: GeoPoint, city: Option<String>, state: Option<String>) -> Self {
        let (latitude, longitude) = point.parts();
        Self {
            latitude,
            longitude,
            city,
            state,
        }
    }

    pub fn point(&self) -> GeoPoint {
        GeoPoint::new(self.latitude, self.longitude)
    }
}

/// Who reported: a signed-in user, or an anonymous holder of a tracking token (of
/// which only the SHA-256 digest is kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reporter {
    User { account_id: AccountId },
    Anonymous { tracking_token_hash: TokenHash },
}

/// The reporter's personal data. Always travels as one sub-object (`personal`), which
/// is sealed with the data subject's key in the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalDetails {
    pub description: String,
    #[serde(default)]
    pub street: Option<String>,
    #[serde(default)]
    pub contact: Option<String>,
    /// Set when the subject was erased: the fields above are empty for good.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub erased: bool,
}

impl PersonalDetails {
    /// What remains of personal details whose key was destroyed.
    pub fn erased() -> Self {
        Self {
            erased: true,
            ..Self::default()
        }
    }
}

/// Reads `personal`; an erased (unsealable) value reads as `null`.
fn personal_or_erased<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PersonalDetails, D::Error> {
    Ok(Option::<PersonalDetails>::deserialize(d)?.unwrap_or_else(PersonalDetails::erased))
}

/// A new report, routed to a station. Status `NEW`, priority as given (`MEDIUM`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportSubmitted {
    pub report_id: ReportId,
    pub title: String,
    pub crime_types: Vec<String>,
    /// The catalogue codes `crime_types` resolved to at submission (ADR 0026); empty in
    /// reports submitted before the catalogue (they resolve to `OTHER`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crime_type_codes: Vec<crate::crime_type::CrimeTypeCode>,
    pub location: ReportLocation,
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub media_urls: Vec<String>,
    pub reporter: Reporter,
    pub station_id: StationId,
    pub routing: RoutingDecision,
    pub priority: Priority,
    #[serde(deserialize_with = "personal_or_erased")]
    pub personal: PersonalDetails,
    pub at: DateTime<Utc>,
}

impl ReportSubmitted {
    /// The codes the report's crime types resolved to: those recorded, or, for a report
    /// submitted before the catalogue (none recorded), `OTHER` — the catalogue as of
    /// its position held nothing else (ADR 0026).
    pub fn resolved_codes(&self) -> Vec<crate::crime_type::CrimeTypeCode> {
        if self.crime_type_codes.is_empty() {
            vec![crate::crime_type::CrimeTypeCode::other()]
        } else {
            self.crime_type_codes.clone()
        }
    }
}

/// Non-personal fields an amendment replaces; absent fields stay as they were.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crime_types: Option<Vec<String>>,
    /// Replaces the whole location (coordinates, city and state). The routed station
    /// does not change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<ReportLocation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_urls: Option<Vec<String>>,
}

impl ReportChanges {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.crime_types.is_none()
            && self.location.is_none()
            && self.occurred_at.is_none()
            && self.media_urls.is_none()
    }
}

/// Personal fields an amendment replaces; absent fields stay as they were.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

impl PersonalChanges {
    pub fn is_empty(&self) -> bool {
        self.description.is_none() && self.street.is_none() && self.contact.is_none()
    }
}

/// Who amended a report: its reporter (whose amendments are capped), or staff (the
/// station's desk, an ADMIN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AmendedBy {
    Reporter,
    Staff,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportAmended {
    pub changes: ReportChanges,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<PersonalChanges>,
    /// `None` in amendments recorded before it was (they count as the reporter's, as
    /// every amendment counted against the one shared cap then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<AmendedBy>,
    /// The catalogue codes the amended `changes.crime_types` resolved to (ADR 0026);
    /// `None` when the amendment left the crime types alone, and in amendments recorded
    /// before amendments resolved (their report keeps the codes it had).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crime_type_codes: Option<Vec<crate::crime_type::CrimeTypeCode>>,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportTriaged {
    pub priority: Priority,
    pub at: DateTime<Utc>,
}

/// `NEW → ASSIGNED`. `auto` records the automatic-assignment decision, if any.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportAssigned {
    pub patrol_id: PatrolId,
    #[serde(default)]
    pub auto: Option<AssignmentDecision>,
    pub at: DateTime<Utc>,
}

/// `ASSIGNED → ACCEPTED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentAccepted {
    pub patrol_id: PatrolId,
    pub at: DateTime<Utc>,
}

/// `ASSIGNED → NEW`: back to the queue; the patrol's decline count grows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentDeclined {
    pub patrol_id: PatrolId,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// `ACCEPTED → RESPONDING`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportResponding {
    pub patrol_id: PatrolId,
    pub at: DateTime<Utc>,
}

/// An internal note: for staff only, never shown to the reporter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteAdded {
    pub note_id: NoteId,
    pub note: String,
    pub author_id: AccountId,
    pub at: DateTime<Utc>,
}

/// An update written for the reporter (who sees `message` and `at`, never the author).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicUpdatePosted {
    pub update_id: UpdateId,
    pub message: String,
    pub author_id: AccountId,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceAttached {
    pub evidence_id: EvidenceId,
    pub url: String,
    pub media_type: MediaType,
    #[serde(default)]
    pub captured_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub description: Option<String>,
    pub author_id: AccountId,
    pub at: DateTime<Utc>,
}

/// `RESPONDING → RESOLVED`, awaiting a supervisor's closure review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportResolved {
    pub patrol_id: PatrolId,
    pub resolution_notes: String,
    pub at: DateTime<Utc>,
}

/// `RESOLVED → CLOSED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosureApproved {
    pub reviewer_id: AccountId,
    pub at: DateTime<Utc>,
}

/// `RESOLVED → RESPONDING`: the patrol has more to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosureRejected {
    pub reviewer_id: AccountId,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// `NEW | ASSIGNED → REJECTED` (not a valid report). `justification` is internal;
/// `public_reason` is what the reporter is told (absent: a neutral default text, and in
/// every event before it existed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRejected {
    pub justification: String,
    pub by: AccountId,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_reason: Option<String>,
}

/// Any open status `→ WITHDRAWN` (hidden from queues, history kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportWithdrawn {
    #[serde(default)]
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// A service-level deadline passed: recorded once per assignment and kind. Does not
/// change the status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaBreached {
    pub kind: SlaKind,
    pub patrol_id: PatrolId,
    /// When the clock started: `assigned_at` (ACCEPT) or `accepted_at` (RESPOND).
    pub since: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

/// `ASSIGNED | ACCEPTED | RESPONDING → NEW`: the desk took the assignment back from
/// `patrol_id` (an unassignment; the first half of a reassignment, followed in the same
/// append by `ReportAssigned` to the new patrol; or the first step of a transfer). Not
/// the patrol's decline: its decline count stays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentWithdrawn {
    pub patrol_id: PatrolId,
    pub reason: String,
    /// Who took it back; `None`: Precinct itself (an SLA escalation, ADR 0035).
    pub by: Option<AccountId>,
    pub at: DateTime<Utc>,
}

/// The warning level of a running SLA clock was reached (ADR 0035): recorded once per
/// assignment and kind, before the breach. Does not change the status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaWarned {
    pub kind: SlaKind,
    pub patrol_id: PatrolId,
    /// When the clock started.
    pub since: DateTime<Utc>,
    /// When it will be breached.
    pub deadline: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

/// The SLA worker escalated an assignment still not accepted after its accept breach
/// (ADR 0035): `REQUEUE` (back to the queue) or `REASSIGN` to `to_patrol_id`. Followed in
/// the same append by `AssignmentWithdrawn` from `patrol_id` (and, for `REASSIGN`,
/// `ReportAssigned` to `to_patrol_id`); a reassignment that found no other available
/// patrol is recorded as the `REQUEUE` it became.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaEscalated {
    pub kind: SlaKind,
    pub action: EscalationAction,
    pub patrol_id: PatrolId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_patrol_id: Option<PatrolId>,
    /// When the clock started (the assignment's `assigned_at`).
    pub since: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

/// The report moved from `from_station_id` to `station_id` (by a person, not by
/// routing): from this event on, the new station's staff see and work it. Status stays
/// (`NEW`: any open assignment was withdrawn first, in the same append).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportTransferred {
    pub from_station_id: StationId,
    pub station_id: StationId,
    pub reason: String,
    pub by: AccountId,
    pub at: DateTime<Utc>,
}

/// `CLOSED | REJECTED → NEW`: back in the queue, without a patrol; the SLA clocks start
/// again with the next assignment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportReopened {
    pub reason: String,
    pub by: AccountId,
    pub at: DateTime<Utc>,
}

/// `NEW | ASSIGNED | ACCEPTED | RESPONDING → CLOSED` as a duplicate of `primary_id` (an
/// open assignment was withdrawn first, in the same append). Appended with
/// [`DuplicateAttached`] on the primary's stream. The reporter follows the primary's
/// public status from then on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportMarkedDuplicate {
    pub primary_id: ReportId,
    pub by: AccountId,
    pub at: DateTime<Utc>,
}

/// The primary's side of [`ReportMarkedDuplicate`]: `duplicate_id` was closed into this
/// report. Status stays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateAttached {
    pub duplicate_id: ReportId,
    pub by: AccountId,
    pub at: DateTime<Utc>,
}

/// `CLOSED → NEW`: the report is no longer a duplicate of `primary_id`; back in the
/// queue without a patrol, the SLA clocks start again with its next assignment. Appended
/// with [`DuplicateDetached`] on the primary's stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateUnmarked {
    pub primary_id: ReportId,
    pub by: AccountId,
    pub at: DateTime<Utc>,
}

/// The primary's side of [`DuplicateUnmarked`]. Status stays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateDetached {
    pub duplicate_id: ReportId,
    pub by: AccountId,
    pub at: DateTime<Utc>,
}

/// A `RELATED` link to `other_id`, symmetric: the same event is appended on both
/// reports' streams, each naming the other. Status stays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportLinked {
    pub other_id: ReportId,
    pub by: AccountId,
    pub at: DateTime<Utc>,
}

/// The `RELATED` link to `other_id` removed, on both streams. Status stays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportUnlinked {
    pub other_id: ReportId,
    pub by: AccountId,
    pub at: DateTime<Utc>,
}

/// The desk asked for the assigned patrol's crew to be notified ("Notify officer"): the
/// push deliverer notifies every member on every registered device (ADR 0032). The
/// report itself does not change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatrolNotified {
    pub patrol_id: PatrolId,
    pub by: AccountId,
    pub at: DateTime<Utc>,
}
