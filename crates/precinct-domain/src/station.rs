//! The station aggregate: a `PRECINCT` that covers an area (a point and/or a
//! polygon), or a `DIVISION` that receives reports by crime-type keyword wherever they
//! happen. Routing rules are this data; [`crate::routing`] applies them.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{event_enum, Aggregate, DomainError, ErrorKind};
use crate::ids::StationId;
use crate::routing::StationFacts;
use crate::values::{
    limits, GeoPoint, Latitude, Longitude, NonEmptyText, Polygon, StationKind, ValueError,
};

/// Most routing keywords one division may have.
pub const KEYWORDS_MAX: usize = 100;

event_enum!(
    /// Everything that can happen to a station.
    StationEvent { StationCreated }
);

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
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StationError {
    #[error("station already exists")]
    AlreadyExists,
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("a precinct needs a point (latitude and longitude) or an area")]
    MissingLocation,
    #[error("a division needs at least one crime-type keyword")]
    MissingCrimeTypes,
}

impl DomainError for StationError {
    fn kind(&self) -> ErrorKind {
        match self {
            StationError::AlreadyExists => ErrorKind::Conflict,
            StationError::Invalid { .. }
            | StationError::MissingLocation
            | StationError::MissingCrimeTypes => ErrorKind::Invalid,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            StationError::Invalid { field, .. } => Some(field),
            StationError::MissingLocation => Some("area"),
            StationError::MissingCrimeTypes => Some("crime_types"),
            StationError::AlreadyExists => None,
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
                let name = NonEmptyText::parse(&name, limits::NAME_MAX).map_err(|e| {
                    StationError::Invalid {
                        field: "name",
                        reason: e.to_string(),
                    }
                })?;
                if let Some(area) = &area {
                    area.check_simple().map_err(|e| StationError::Invalid {
                        field: "area",
                        reason: e.to_string(),
                    })?;
                }
                let keywords = keyword_list(&crime_types)?;
                match kind {
                    StationKind::Precinct if point.is_none() && area.is_none() => {
                        return Err(StationError::MissingLocation);
                    }
                    StationKind::Precinct if !keywords.is_empty() => {
                        return Err(StationError::Invalid {
                            field: "crime_types",
                            reason: "only a DIVISION routes by crime type".to_owned(),
                        });
                    }
                    StationKind::Division if keywords.is_empty() => {
                        return Err(StationError::MissingCrimeTypes);
                    }
                    _ => {}
                }
                let (latitude, longitude) = point.map(|p| p.parts()).unzip();
                Ok(vec![StationCreated {
                    station_id,
                    name: name.into_string(),
                    kind,
                    latitude,
                    longitude,
                    area,
                    crime_types: keywords,
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
                };
            }
        }
    }

    fn version_exists(&self) -> bool {
        self.exists
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
