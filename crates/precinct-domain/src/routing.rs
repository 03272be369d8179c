//! Routing policy: which station receives a new report.
//!
//! Rules are tried in order and the first that yields a station wins:
//! 1. **Division keyword** — a `DIVISION` one of whose keywords occurs in one of the
//!    report's crime types (lower-cased substring match, as the routing seed does:
//!    `"Online Fraud Scheme"` matches keyword `"online fraud"`). Several match: the
//!    longest keyword wins, then the lowest station id.
//! 2. **Precinct area** — a `PRECINCT` whose polygon contains the report's point.
//!    Several: the smallest area wins, then the lowest station id.
//! 3. **Nearest precinct** — the `PRECINCT` nearest by great-circle distance to its
//!    point (or, lacking one, its polygon's centroid). Ties: the lowest station id.
//!
//! Stations are facts the caller read from the read model; the routing rules
//! themselves (keywords, polygons) are data on those stations.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::ids::StationId;
use crate::values::{GeoPoint, Polygon, StationKind};

/// What routing needs to know about one station.
#[derive(Clone, Debug, PartialEq)]
pub struct StationFacts {
    pub station_id: StationId,
    pub kind: StationKind,
    pub point: Option<GeoPoint>,
    pub area: Option<Polygon>,
    /// Division keywords (ignored for precincts).
    pub crime_types: Vec<String>,
}

/// Which rule chose the station.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RoutingRule {
    DivisionKeyword,
    PrecinctArea,
    NearestPrecinct,
}

/// The outcome of [`route`], recorded in `ReportSubmitted` so the choice is auditable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoutingDecision {
    pub station_id: StationId,
    pub rule: RoutingRule,
    /// The division keyword that matched (`DIVISION_KEYWORD` only).
    #[serde(default)]
    pub matched_keyword: Option<String>,
    /// Distance to the chosen precinct in metres (`NEAREST_PRECINCT` only).
    #[serde(default)]
    pub distance_m: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("no station can receive this report: no division matches its crime types and no precinct has a location")]
    NoStation,
}

/// Chooses the station for a report with these crime types at this point.
pub fn route(
    stations: &[StationFacts],
    crime_types: &[String],
    point: GeoPoint,
) -> Result<RoutingDecision, RoutingError> {
    by_division_keyword(stations, crime_types)
        .or_else(|| by_precinct_area(stations, point))
        .or_else(|| by_nearest_precinct(stations, point))
        .ok_or(RoutingError::NoStation)
}

fn by_division_keyword(
    stations: &[StationFacts],
    crime_types: &[String],
) -> Option<RoutingDecision> {
    let crime_types: Vec<String> = crime_types.iter().map(|c| c.to_lowercase()).collect();
    stations
        .iter()
        .filter(|s| s.kind == StationKind::Division)
        .flat_map(|s| {
            s.crime_types.iter().filter_map(|keyword| {
                let keyword = keyword.trim().to_lowercase();
                let matches =
                    !keyword.is_empty() && crime_types.iter().any(|c| c.contains(&keyword));
                matches.then_some((s.station_id, keyword))
            })
        })
        // Longest keyword first, then lowest station id.
        .min_by(|(id_a, kw_a), (id_b, kw_b)| {
            kw_b.chars()
                .count()
                .cmp(&kw_a.chars().count())
                .then(id_a.cmp(id_b))
                .then(kw_a.cmp(kw_b))
        })
        .map(|(station_id, keyword)| RoutingDecision {
            station_id,
            rule: RoutingRule::DivisionKeyword,
            matched_keyword: Some(keyword),
            distance_m: None,
        })
}

fn by_precinct_area(stations: &[StationFacts], point: GeoPoint) -> Option<RoutingDecision> {
    stations
        .iter()
        .filter(|s| s.kind == StationKind::Precinct)
        .filter_map(|s| {
            let area = s.area.as_ref()?;
            area.contains(&point)
                .then(|| (s.station_id, area.area_deg2()))
        })
        .min_by(|(id_a, area_a), (id_b, area_b)| area_a.total_cmp(area_b).then(id_a.cmp(id_b)))
        .map(|(station_id, _)| RoutingDecision {
            station_id,
            rule: RoutingRule::PrecinctArea,
            matched_keyword: None,
            distance_m: None,
        })
}

fn by_nearest_precinct(stations: &[StationFacts], point: GeoPoint) -> Option<RoutingDecision> {
    stations
        .iter()
        .filter(|s| s.kind == StationKind::Precinct)
        .filter_map(|s| {
            let anchor = s
                .point
                .or_else(|| s.area.as_ref().and_then(Polygon::centroid))?;
            Some((s.station_id, anchor.distance_m(&point)))
        })
        .min_by(|(id_a, d_a), (id_b, d_b)| match d_a.total_cmp(d_b) {
            Ordering::Equal => id_a.cmp(id_b),
            other => other,
        })
        .map(|(station_id, distance)| RoutingDecision {
            station_id,
            rule: RoutingRule::NearestPrecinct,
            matched_keyword: None,
            distance_m: Some(distance),
        })
}
