//! Response shapes, chosen per audience in this one place.
//!
//! - [`ReportView`]: the full report, for its station's staff and ADMIN.
//! - [`ReporterReportView`]: what its reporter (or the holder of its tracking token)
//!   sees — their own submission, status and times, the public updates written for them
//!   and the public reason of a rejection; never internal notes, evidence, the patrol,
//!   officer or author ids, resolution notes or the internal justification.
//!   [`ReportAnswer::for_caller`] picks between the two. Of a report's links (ADR 0020)
//!   staff see all (`duplicate_of`, `duplicates`, `related`); a reporter sees only that
//!   their report was closed as a duplicate, and the primary's id and status
//!   ([`PrimaryView`]) — nothing else of the primary.
//! - [`PublicReportView`]: what anyone may see — crime types, status, a location coarsened
//!   to about 100 m, times. No title, description, address, contact or reporter.

use chrono::{DateTime, Utc};
use precinct_domain::patrol::Patrol;
use precinct_domain::report::{PublicUpdatePosted, Report, Reporter};
use precinct_domain::values::ReportStatus;
use precinct_readmodel::queries::{PublicReport, ReportRow};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Caller;

/// What a reporter reads about a rejection that was given no public reason.
pub const DEFAULT_REJECTION_REASON: &str =
    "Your report was reviewed and will not be taken further. You may submit a new report if you have more information.";

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LocationView {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReportView {
    pub id: Uuid,
    #[schema(value_type = crate::openapi::ReportStatus)]
    pub status: String,
    /// The station routing chose.
    pub station_id: Uuid,
    #[schema(value_type = crate::openapi::Priority)]
    pub priority: String,
    pub title: String,
    pub description: String,
    pub crime_types: Vec<String>,
    /// The catalogue codes `crime_types` resolved to at submission (`GET /crime-types`).
    pub crime_type_codes: Vec<String>,
    pub location: LocationView,
    pub contact: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub media_urls: Vec<String>,
    pub reporter_id: Option<Uuid>,
    pub anonymous: bool,
    pub patrol_id: Option<Uuid>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub responding_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution_notes: Option<String>,
    /// How many times the report was declined.
    pub declines: u32,
    /// Evidence attached by the assigned patrol (`EvidenceAttached` payloads), oldest first.
    #[schema(value_type = Vec<Object>)]
    pub evidence: serde_json::Value,
    /// Internal notes (`NoteAdded` payloads), oldest first. Never shown to the reporter.
    #[schema(value_type = Vec<Object>)]
    pub notes: serde_json::Value,
    /// Updates written for the reporter (`PublicUpdatePosted` payloads, with their
    /// author), oldest first.
    #[schema(value_type = Vec<Object>)]
    pub public_updates: serde_json::Value,
    /// What the reporter was told about a rejection (null: not rejected, or the neutral
    /// default text).
    pub rejection_public_reason: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The reporter's personal data was erased (crypto-shredded).
    pub personal_data_erased: bool,
    /// The primary this report was closed into as a duplicate.
    #[schema(required = true)]
    pub duplicate_of: Option<Uuid>,
    /// Reports closed into this one as its duplicates, in the order they were attached.
    pub duplicates: Vec<Uuid>,
    /// Reports linked to this one as `RELATED`.
    pub related: Vec<Uuid>,
}

impl From<&ReportRow> for ReportView {
    fn from(r: &ReportRow) -> Self {
        ReportView {
            id: r.id,
            status: r.status.clone(),
            station_id: r.station_id,
            priority: r.priority.clone(),
            title: r.title.clone(),
            description: r.description.clone(),
            crime_types: r.crime_types.clone(),
            crime_type_codes: r.crime_type_codes.clone(),
            location: LocationView {
                latitude: r.latitude,
                longitude: r.longitude,
                street: r.street.clone(),
                city: r.city.clone(),
                state: r.state.clone(),
            },
            contact: r.contact.clone(),
            occurred_at: r.occurred_at,
            media_urls: r.media_urls.clone(),
            reporter_id: r.reporter_id,
            anonymous: r.anonymous,
            patrol_id: r.patrol_id,
            assigned_at: r.assigned_at,
            accepted_at: r.accepted_at,
            responding_at: r.responding_at,
            resolved_at: r.resolved_at,
            resolution_notes: r.resolution_notes.clone(),
            declines: u32::try_from(r.declines).unwrap_or(0),
            evidence: r.evidence.clone(),
            notes: r.notes.clone(),
            public_updates: r.public_updates.clone(),
            rejection_public_reason: r.rejection_public_reason.clone(),
            submitted_at: r.submitted_at,
            updated_at: r.updated_at,
            personal_data_erased: r.personal_erased,
            duplicate_of: r.duplicate_of,
            duplicates: r.duplicates.clone(),
            related: r.related.clone(),
        }
    }
}

impl From<&Report> for ReportView {
    fn from(r: &Report) -> Self {
        let (reporter_id, anonymous) = match &r.reporter {
            Some(Reporter::User { account_id }) => (Some(account_id.as_uuid()), false),
            _ => (None, true),
        };
        ReportView {
            id: r.id.as_uuid(),
            status: r.status.as_str().to_string(),
            station_id: r.station_id.as_uuid(),
            priority: r.priority.as_str().to_string(),
            title: r.title.clone(),
            description: r.personal.description.clone(),
            crime_types: r.crime_types.clone(),
            crime_type_codes: r
                .crime_type_codes
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            location: LocationView {
                latitude: r.location.latitude.value(),
                longitude: r.location.longitude.value(),
                street: r.personal.street.clone(),
                city: r.location.city.clone(),
                state: r.location.state.clone(),
            },
            contact: r.personal.contact.clone(),
            occurred_at: r.occurred_at,
            media_urls: r.media_urls.clone(),
            reporter_id,
            anonymous,
            patrol_id: r.patrol_id.map(|p| p.as_uuid()),
            assigned_at: r.assigned_at,
            accepted_at: r.accepted_at,
            responding_at: r.responding_at,
            resolved_at: r.resolved_at,
            resolution_notes: r.resolution_notes.clone(),
            declines: r.declines,
            evidence: serde_json::to_value(&r.evidence).unwrap_or_default(),
            notes: serde_json::to_value(&r.notes).unwrap_or_default(),
            public_updates: serde_json::to_value(&r.public_updates).unwrap_or_default(),
            rejection_public_reason: r.rejection_public_reason.clone(),
            submitted_at: r.submitted_at,
            updated_at: r.updated_at,
            personal_data_erased: r.personal.erased,
            duplicate_of: r.duplicate_of.map(|p| p.as_uuid()),
            duplicates: r.duplicates.iter().map(|d| d.as_uuid()).collect(),
            related: r.related.iter().map(|d| d.as_uuid()).collect(),
        }
    }
}

/// The report a reporter's report was closed into as a duplicate: its id and its status
/// now — what the reporter follows from then on. Nothing else of it (its reporter,
/// notes, location or updates are not theirs).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PrimaryView {
    pub id: Uuid,
    #[schema(value_type = crate::openapi::ReportStatus)]
    pub status: String,
}

/// One update written for the reporter: what it says and when, not who wrote it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublicUpdateView {
    pub id: Uuid,
    pub message: String,
    pub at: DateTime<Utc>,
}

impl From<&PublicUpdatePosted> for PublicUpdateView {
    fn from(u: &PublicUpdatePosted) -> Self {
        PublicUpdateView {
            id: u.update_id.as_uuid(),
            message: u.message.clone(),
            at: u.at,
        }
    }
}

/// A report as its reporter (or the holder of its tracking token) sees it: their own
/// submission, its status and times, the updates written for them and, once rejected,
/// the public reason. Nothing of the officers' work: no internal notes, evidence,
/// patrol, officer or author ids, priority, resolution notes or internal justification.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReporterReportView {
    pub id: Uuid,
    #[schema(value_type = crate::openapi::ReportStatus)]
    pub status: String,
    /// The station handling the report (stations are public: `GET /stations`).
    pub station_id: Uuid,
    pub title: String,
    pub description: String,
    pub crime_types: Vec<String>,
    /// The catalogue codes `crime_types` resolved to at submission (`GET /crime-types`).
    pub crime_type_codes: Vec<String>,
    pub location: LocationView,
    pub contact: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub media_urls: Vec<String>,
    /// Submitted without an account (followed with its tracking token).
    pub anonymous: bool,
    pub assigned_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub responding_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Updates written for the reporter, oldest first.
    pub public_updates: Vec<PublicUpdateView>,
    /// Why the report was rejected, as the reporter is told (null unless `REJECTED`).
    #[schema(required = true)]
    pub rejection_reason: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The reporter's personal data was erased (crypto-shredded).
    pub personal_data_erased: bool,
    /// Set when the report was closed as a duplicate: the report it was closed into, and
    /// that report's status now.
    #[schema(required = true)]
    pub duplicate_of: Option<PrimaryView>,
}

impl ReporterReportView {
    /// Shows `primary` (the report this one was closed into) as the report followed.
    pub fn following(mut self, primary: &Report) -> Self {
        self.duplicate_of = Some(PrimaryView {
            id: primary.id.as_uuid(),
            status: primary.status.as_str().to_string(),
        });
        self
    }
}

/// The reason a reporter reads: the public reason given, else the neutral default;
/// none unless the report is rejected.
fn rejection_reason(status: &str, public_reason: Option<&str>) -> Option<String> {
    (status == ReportStatus::Rejected.as_str()).then(|| {
        public_reason
            .unwrap_or(DEFAULT_REJECTION_REASON)
            .to_string()
    })
}

impl From<&Report> for ReporterReportView {
    fn from(r: &Report) -> Self {
        let status = r.status.as_str();
        ReporterReportView {
            id: r.id.as_uuid(),
            status: status.to_string(),
            station_id: r.station_id.as_uuid(),
            title: r.title.clone(),
            description: r.personal.description.clone(),
            crime_types: r.crime_types.clone(),
            crime_type_codes: r
                .crime_type_codes
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            location: LocationView {
                latitude: r.location.latitude.value(),
                longitude: r.location.longitude.value(),
                street: r.personal.street.clone(),
                city: r.location.city.clone(),
                state: r.location.state.clone(),
            },
            contact: r.personal.contact.clone(),
            occurred_at: r.occurred_at,
            media_urls: r.media_urls.clone(),
            anonymous: !matches!(r.reporter, Some(Reporter::User { .. })),
            assigned_at: r.assigned_at,
            accepted_at: r.accepted_at,
            responding_at: r.responding_at,
            resolved_at: r.resolved_at,
            public_updates: r
                .public_updates
                .iter()
                .map(PublicUpdateView::from)
                .collect(),
            rejection_reason: rejection_reason(status, r.rejection_public_reason.as_deref()),
            submitted_at: r.submitted_at,
            updated_at: r.updated_at,
            personal_data_erased: r.personal.erased,
            // The state of one report does not hold its primary's status: the caller
            // adds it with `following` (a reporter's own commands never reach a
            // duplicate, which is closed).
            duplicate_of: None,
        }
    }
}

impl From<&ReportRow> for ReporterReportView {
    fn from(r: &ReportRow) -> Self {
        // The column holds `PublicUpdatePosted` payloads; the reporter gets message and
        // time only.
        let updates: Vec<PublicUpdatePosted> = serde_json::from_value(r.public_updates.clone())
            .unwrap_or_else(|e| {
                tracing::warn!(report = %r.id, error = %e, "unreadable public updates in the read model");
                Vec::new()
            });
        ReporterReportView {
            id: r.id,
            status: r.status.clone(),
            station_id: r.station_id,
            title: r.title.clone(),
            description: r.description.clone(),
            crime_types: r.crime_types.clone(),
            crime_type_codes: r.crime_type_codes.clone(),
            location: LocationView {
                latitude: r.latitude,
                longitude: r.longitude,
                street: r.street.clone(),
                city: r.city.clone(),
                state: r.state.clone(),
            },
            contact: r.contact.clone(),
            occurred_at: r.occurred_at,
            media_urls: r.media_urls.clone(),
            anonymous: r.anonymous,
            assigned_at: r.assigned_at,
            accepted_at: r.accepted_at,
            responding_at: r.responding_at,
            resolved_at: r.resolved_at,
            public_updates: updates.iter().map(PublicUpdateView::from).collect(),
            rejection_reason: rejection_reason(&r.status, r.rejection_public_reason.as_deref()),
            submitted_at: r.submitted_at,
            updated_at: r.updated_at,
            personal_data_erased: r.personal_erased,
            duplicate_of: r
                .duplicate_of
                .zip(r.primary_status.clone())
                .map(|(id, status)| PrimaryView { id, status }),
        }
    }
}

/// A report in the caller's view: the staff view (`ReportView`) for staff of its
/// station and ADMIN, the reporter view (`ReporterReportView`) for its reporter and the
/// holder of its tracking token.
// Built once per answer and serialized: the size difference between the variants
// costs nothing worth a box (and a box would show in the schema).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ReportAnswer {
    Staff(ReportView),
    Reporter(ReporterReportView),
}

impl ReportAnswer {
    /// `report` for `caller` (None: a tracking-token holder), who has already been found
    /// allowed to see it.
    pub fn for_caller(caller: Option<&Caller>, report: &Report) -> Self {
        if caller.is_some_and(|c| c.is_staff_of(report.station_id)) {
            ReportAnswer::Staff(ReportView::from(report))
        } else {
            ReportAnswer::Reporter(ReporterReportView::from(report))
        }
    }

    /// `row` for `caller`, who has already been found allowed to see it.
    pub fn for_caller_from_row(caller: Option<&Caller>, row: &ReportRow) -> Self {
        let station = precinct_domain::ids::StationId::new(row.station_id);
        if caller.is_some_and(|c| c.is_staff_of(station)) {
            ReportAnswer::Staff(ReportView::from(row))
        } else {
            ReportAnswer::Reporter(ReporterReportView::from(row))
        }
    }
}

/// Rounds a coordinate to 3 decimals (about 110 m of latitude).
pub fn coarse(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublicLocationView {
    /// Rounded to 3 decimals (about 100 m).
    pub latitude: f64,
    pub longitude: f64,
    pub city: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublicReportView {
    pub id: Uuid,
    #[schema(value_type = crate::openapi::ReportStatus)]
    pub status: String,
    pub crime_types: Vec<String>,
    /// The catalogue codes `crime_types` resolved to at submission (`GET /crime-types`).
    pub crime_type_codes: Vec<String>,
    pub location: PublicLocationView,
    pub occurred_at: Option<DateTime<Utc>>,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Report> for PublicReportView {
    fn from(r: &Report) -> Self {
        PublicReportView {
            id: r.id.as_uuid(),
            status: r.status.as_str().to_string(),
            crime_types: r.crime_types.clone(),
            crime_type_codes: r
                .crime_type_codes
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            location: PublicLocationView {
                latitude: coarse(r.location.latitude.value()),
                longitude: coarse(r.location.longitude.value()),
                city: r.location.city.clone(),
            },
            occurred_at: r.occurred_at,
            submitted_at: r.submitted_at,
            updated_at: r.updated_at,
        }
    }
}

impl From<&PublicReport> for PublicReportView {
    fn from(r: &PublicReport) -> Self {
        PublicReportView {
            id: r.id,
            status: r.status.clone(),
            crime_types: r.crime_types.clone(),
            crime_type_codes: r.crime_type_codes.clone(),
            location: PublicLocationView {
                latitude: r.latitude,
                longitude: r.longitude,
                city: r.city.clone(),
            },
            occurred_at: r.occurred_at,
            submitted_at: r.submitted_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PatrolView {
    pub id: Uuid,
    pub call_sign: String,
    pub station_id: Uuid,
    pub officer_ids: Vec<Uuid>,
    #[schema(value_type = crate::openapi::PatrolStatus)]
    pub status: precinct_domain::values::PatrolStatus,
    /// Reports `ASSIGNED`, `ACCEPTED` or `RESPONDING` to this patrol.
    pub open_assignments: usize,
    pub updated_at: DateTime<Utc>,
}

impl From<&Patrol> for PatrolView {
    fn from(p: &Patrol) -> Self {
        PatrolView {
            id: p.id.as_uuid(),
            call_sign: p.call_sign.clone(),
            station_id: p.station_id.as_uuid(),
            officer_ids: p.officer_ids.iter().map(|o| o.as_uuid()).collect(),
            status: p.status,
            open_assignments: p.open_assignments.len(),
            updated_at: p.updated_at,
        }
    }
}

/// A command's response: the new state as the write side knows it, and the log position
/// of the last event the command appended.
#[derive(Debug, Serialize)]
pub struct Written<T: Serialize> {
    #[serde(flatten)]
    pub view: T,
    pub position: u64,
}
