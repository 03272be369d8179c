//! The station aggregate: a `PRECINCT` that covers an area (a point and/or a
//! polygon), or a `DIVISION` that receives reports by crime-type keyword wherever they
//! happen. Routing rules are this data; [`crate::routing`] applies them.
//!
//! An ADMIN edits a station after its creation (name, point, area, keywords, contact
//! number) and deactivates or reactivates it. An edit applies to reports routed after
//! it; a routing decision already recorded is never rewritten (ADR "station
//! management"). An inactive station receives no new report.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{event_enum, Aggregate, DomainError, ErrorKind};
use crate::ids::{ReportId, StationId};
use crate::routing::StationFacts;
use crate::sla::SlaPolicy;
use crate::values::{
    limits, GeoPoint, Latitude, Longitude, NonEmptyText, PhoneNumber, Polygon, StationKind,
    ValueError,
};

/// Most routing keywords one division may have.
pub const KEYWORDS_MAX: usize = 100;

event_enum!(
    /// Everything that can happen to a station.
    StationEvent {
        StationCreated,
        StationUpdated,
        StationDeactivated,
        StationReactivated,
        StationSlaPolicySet,
    }
);

/// The station's SLA policy (ADR 0035), whole: it replaces the previous one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StationSlaPolicySet {
    pub station_id: StationId,
    pub policy: SlaPolicy,
    pub at: DateTime<Utc>,
}

/// A new station. `latitude`/`longitude` are both set or both absent; `area` is the
/// GeoJSON polygon's coordinates; `crime_types` are a division's keywords
/// (lower-case, unique; empty for a precinct).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StationCreated {
    pub station_id: StationId,
    pub name: String,
    pub kind: StationKind,
    #[serde(default)]
    pub latitude: Option<Latitude>,
    #[serde(default)]
    pub longitude: Option<Longitude>,
    #[serde(default)]
    pub area: Option<Polygon>,
    #[serde(default)]
    pub crime_types: Vec<String>,
    pub at: DateTime<Utc>,
}

/// A station's editable fields after an edit — all of them, so that a reader needs no
/// earlier event — and which of them the edit changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StationUpdated {
    pub station_id: StationId,
    pub name: String,
    pub latitude: Option<Latitude>,
    pub longitude: Option<Longitude>,
    pub area: Option<Polygon>,
    pub crime_types: Vec<String>,
    pub contact_phone: Option<PhoneNumber>,
    /// The fields whose value differs from before the edit (never empty).
    pub changed: Vec<StationField>,
    pub at: DateTime<Utc>,
}

impl StationUpdated {
    pub fn point(&self) -> Option<GeoPoint> {
        Some(GeoPoint::new(self.latitude?, self.longitude?))
    }
}

/// The station takes no new report from now on (routing skips it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StationDeactivated {
    pub station_id: StationId,
    pub at: DateTime<Utc>,
}

/// The station takes new reports again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StationReactivated {
    pub station_id: StationId,
    pub at: DateTime<Utc>,
}

/// An editable field of a station.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StationField {
    Name,
    Point,
    Area,
    CrimeTypes,
    ContactPhone,
}

/// What an edit does to one optional field.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Edit<T> {
    /// Left as it is.
    #[default]
    Keep,
    /// Set to this value.
    Set(T),
    /// Removed.
    Clear,
}

impl<T: Clone> Edit<T> {
    /// The field's value after the edit, from its value before.
    pub fn applied_to(&self, before: Option<&T>) -> Option<T> {
        match self {
            Edit::Keep => before.cloned(),
            Edit::Set(v) => Some(v.clone()),
            Edit::Clear => None,
        }
    }
}

/// The changes of one edit; what is not named is kept.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StationChanges {
    pub name: Option<String>,
    pub point: Edit<GeoPoint>,
    pub area: Edit<Polygon>,
    /// A division's whole new keyword list.
    pub crime_types: Option<Vec<String>>,
    pub contact_phone: Edit<PhoneNumber>,
}

/// The open reports of a station, as the application layer found them: up to a bound
/// of their ids, and how many there are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReports {
    pub ids: Vec<ReportId>,
    pub total: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StationCommand {
    /// Creates the station. Name 1..=200 characters. A precinct needs a point or an
    /// area and takes no keywords; a division needs at least one keyword.
    Create {
        station_id: StationId,
        name: String,
        kind: StationKind,
        point: Option<GeoPoint>,
        area: Option<Polygon>,
        crime_types: Vec<String>,
        at: DateTime<Utc>,
    },
    /// Edits the station. The result must still be a valid station (as `Create`); an
    /// edit that changes nothing emits nothing.
    Update {
        changes: StationChanges,
        at: DateTime<Utc>,
    },
    /// Stops routing new reports to the station; refused while it has open reports
    /// (`open_reports`: what the caller found). Already inactive: nothing happens.
    Deactivate {
        open_reports: OpenReports,
        at: DateTime<Utc>,
    },
    /// Routes new reports to the station again. Already active: nothing happens.
    Reactivate { at: DateTime<Utc> },
    /// Sets the station's SLA policy (checked: [`SlaPolicy::check`]); the same policy
    /// again emits nothing.
    SetSlaPolicy {
        policy: SlaPolicy,
        at: DateTime<Utc>,
    },
}

/// At most this many open reports are named in a refused deactivation.
pub const OPEN_REPORTS_NAMED: usize = 20;

fn name_reports(open: &OpenReports) -> String {
    let ids: Vec<String> = open
        .ids
        .iter()
        .take(OPEN_REPORTS_NAMED)
        .map(|id| id.as_uuid().to_string())
        .collect();
    let named = ids.len() as u64;
    let more = open.total.saturating_sub(named);
    if more > 0 {
        format!("{} and {more} more", ids.join(", "))
    } else {
        ids.join(", ")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StationError {
    #[error("station already exists")]
    AlreadyExists,
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// An SLA policy out of range (the message names the field).
    #[error("{0}")]
    Policy(String),
    #[error("a precinct needs a point (latitude and longitude) or an area")]
    MissingLocation,
    #[error("a division needs at least one crime-type keyword")]
    MissingCrimeTypes,
    #[error("no such station")]
    NotFound,
    #[error("the station has {} open report(s); transfer, resolve or close them before deactivating it: {}", .0.total, name_reports(.0))]
    HasOpenReports(OpenReports),
}

impl DomainError for StationError {
    fn kind(&self) -> ErrorKind {
        match self {
            StationError::AlreadyExists | StationError::HasOpenReports(_) => ErrorKind::Conflict,
            StationError::NotFound => ErrorKind::NotFound,
            StationError::Invalid { .. }
            | StationError::Policy(_)
            | StationError::MissingLocation
            | StationError::MissingCrimeTypes => ErrorKind::Invalid,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            StationError::Invalid { field, .. } => Some(field),
            StationError::MissingLocation => Some("area"),
            StationError::MissingCrimeTypes => Some("crime_types"),
            StationError::Policy(_) => Some("policy"),
            StationError::AlreadyExists
            | StationError::NotFound
            | StationError::HasOpenReports(_) => None,
        }
    }
}

/// A station's state, folded from its events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Station {
    exists: bool,
    pub id: StationId,
    pub name: String,
    pub kind: StationKind,
    pub point: Option<GeoPoint>,
    pub area: Option<Polygon>,
    pub crime_types: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Receives new reports (false once deactivated).
    pub active: bool,
    pub contact_phone: Option<PhoneNumber>,
    /// `None`: the server's defaults throughout.
    pub sla_policy: Option<SlaPolicy>,
}

impl Station {
    /// What routing needs to know about this station.
    pub fn facts(&self) -> StationFacts {
        StationFacts {
            station_id: self.id,
            kind: self.kind,
            point: self.point,
            area: self.area.clone(),
            crime_types: self.crime_types.clone(),
        }
    }
}

impl StationCreated {
    /// What routing needs to know about the created station.
    pub fn facts(&self) -> StationFacts {
        StationFacts {
            station_id: self.station_id,
            kind: self.kind,
            point: self.point(),
            area: self.area.clone(),
            crime_types: self.crime_types.clone(),
        }
    }

    pub fn point(&self) -> Option<GeoPoint> {
        Some(GeoPoint::new(self.latitude?, self.longitude?))
    }
}

impl Aggregate for Station {
    const TYPE: &'static str = "station";
    type Command = StationCommand;
    type Event = StationEvent;
    type Error = StationError;

    fn handle(&self, cmd: StationCommand) -> Result<Vec<StationEvent>, StationError> {
        match cmd {
            StationCommand::Create {
                station_id,
                name,
                kind,
                point,
                area,
                crime_types,
                at,
            } => {
                if self.exists {
                    return Err(StationError::AlreadyExists);
                }
                let name = station_name(&name)?;
                if let Some(area) = &area {
                    check_area(area)?;
                }
                let keywords = keyword_list(&crime_types)?;
                check_shape(kind, point.as_ref(), area.as_ref(), &keywords)?;
                let (latitude, longitude) = point.map(|p| p.parts()).unzip();
                Ok(vec![StationCreated {
                    station_id,
                    name,
                    kind,
                    latitude,
                    longitude,
                    area,
                    crime_types: keywords,
                    at,
                }
                .into()])
            }
            StationCommand::Update { changes, at } => self.update(changes, at),
            StationCommand::Deactivate { open_reports, at } => {
                if !self.exists {
                    return Err(StationError::NotFound);
                }
                if !self.active {
                    return Ok(vec![]);
                }
                if open_reports.total > 0 || !open_reports.ids.is_empty() {
                    let total = open_reports.total.max(open_reports.ids.len() as u64);
                    return Err(StationError::HasOpenReports(OpenReports {
                        total,
                        ..open_reports
                    }));
                }
                Ok(vec![StationDeactivated {
                    station_id: self.id,
                    at,
                }
                .into()])
            }
            StationCommand::SetSlaPolicy { policy, at } => {
                if !self.exists {
                    return Err(StationError::NotFound);
                }
                policy
                    .check()
                    .map_err(|e| StationError::Policy(e.to_string()))?;
                if self.sla_policy.as_ref() == Some(&policy) {
                    return Ok(vec![]);
                }
                Ok(vec![StationSlaPolicySet {
                    station_id: self.id,
                    policy,
                    at,
                }
                .into()])
            }
            StationCommand::Reactivate { at } => {
                if !self.exists {
                    return Err(StationError::NotFound);
                }
                if self.active {
                    return Ok(vec![]);
                }
                Ok(vec![StationReactivated {
                    station_id: self.id,
                    at,
                }
                .into()])
            }
        }
    }

    fn apply(&mut self, event: &StationEvent) {
        match event {
            StationEvent::StationCreated(e) => {
                *self = Station {
                    exists: true,
                    id: e.station_id,
                    name: e.name.clone(),
                    kind: e.kind,
                    point: e.point(),
                    area: e.area.clone(),
                    crime_types: e.crime_types.clone(),
                    created_at: e.at,
                    active: true,
                    contact_phone: None,
                    sla_policy: None,
                };
            }
            StationEvent::StationUpdated(e) => {
                self.name = e.name.clone();
                self.point = e.point();
                self.area = e.area.clone();
                self.crime_types = e.crime_types.clone();
                self.contact_phone = e.contact_phone.clone();
            }
            StationEvent::StationDeactivated(_) => self.active = false,
            StationEvent::StationReactivated(_) => self.active = true,
            StationEvent::StationSlaPolicySet(e) => self.sla_policy = Some(e.policy.clone()),
        }
    }

    fn version_exists(&self) -> bool {
        self.exists
    }
}

impl Station {
    fn update(
        &self,
        changes: StationChanges,
        at: DateTime<Utc>,
    ) -> Result<Vec<StationEvent>, StationError> {
        if !self.exists {
            return Err(StationError::NotFound);
        }
        let name = match &changes.name {
            Some(name) => station_name(name)?,
            None => self.name.clone(),
        };
        if let Edit::Set(area) = &changes.area {
            check_area(area)?;
        }
        let point = changes.point.applied_to(self.point.as_ref());
        let area = changes.area.applied_to(self.area.as_ref());
        let crime_types = match &changes.crime_types {
            Some(keywords) => keyword_list(keywords)?,
            None => self.crime_types.clone(),
        };
        let contact_phone = changes
            .contact_phone
            .applied_to(self.contact_phone.as_ref());
        check_shape(self.kind, point.as_ref(), area.as_ref(), &crime_types)?;

        let mut changed = Vec::new();
        if name != self.name {
            changed.push(StationField::Name);
        }
        if point != self.point {
            changed.push(StationField::Point);
        }
        if area != self.area {
            changed.push(StationField::Area);
        }
        if crime_types != self.crime_types {
            changed.push(StationField::CrimeTypes);
        }
        if contact_phone != self.contact_phone {
            changed.push(StationField::ContactPhone);
        }
        if changed.is_empty() {
            return Ok(vec![]);
        }
        let (latitude, longitude) = point.map(|p| p.parts()).unzip();
        Ok(vec![StationUpdated {
            station_id: self.id,
            name,
            latitude,
            longitude,
            area,
            crime_types,
            contact_phone,
            changed,
            at,
        }
        .into()])
    }
}

/// A station's name: 1..=200 visible characters, trimmed.
fn station_name(name: &str) -> Result<String, StationError> {
    NonEmptyText::parse(name, limits::NAME_MAX)
        .map(NonEmptyText::into_string)
        .map_err(|e| StationError::Invalid {
            field: "name",
            reason: e.to_string(),
        })
}

/// An area must be a simple polygon (no ring crossing itself).
fn check_area(area: &Polygon) -> Result<(), StationError> {
    area.check_simple().map_err(|e| StationError::Invalid {
        field: "area",
        reason: e.to_string(),
    })
}

/// A precinct has a point or an area and no keywords; a division has keywords.
fn check_shape(
    kind: StationKind,
    point: Option<&GeoPoint>,
    area: Option<&Polygon>,
    keywords: &[String],
) -> Result<(), StationError> {
    match kind {
        StationKind::Precinct if point.is_none() && area.is_none() => {
            Err(StationError::MissingLocation)
        }
        StationKind::Precinct if !keywords.is_empty() => Err(StationError::Invalid {
            field: "crime_types",
            reason: "only a DIVISION routes by crime type".to_owned(),
        }),
        StationKind::Division if keywords.is_empty() => Err(StationError::MissingCrimeTypes),
        _ => Ok(()),
    }
}

/// Trimmed, lower-cased, non-blank, at most 100 characters each, duplicates dropped
/// (first occurrence kept), at most [`KEYWORDS_MAX`].
fn keyword_list(crime_types: &[String]) -> Result<Vec<String>, StationError> {
    let invalid = |e: ValueError| StationError::Invalid {
        field: "crime_types",
        reason: e.to_string(),
    };
    let mut seen = BTreeSet::new();
    let mut keywords = Vec::new();
    for keyword in crime_types {
        let keyword = NonEmptyText::parse(keyword, limits::CRIME_TYPE_MAX).map_err(invalid)?;
        let keyword = keyword.as_str().to_lowercase();
        if seen.insert(keyword.clone()) {
            keywords.push(keyword);
        }
    }
    if keywords.len() > KEYWORDS_MAX {
        return Err(invalid(ValueError::TooMany {
            max: KEYWORDS_MAX,
            len: keywords.len(),
        }));
    }
    Ok(keywords)
}
