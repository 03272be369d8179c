//! The area preview: which reports a proposed precinct area would route elsewhere.
//!
//! Each report is routed twice by [`crate::routing::route`] — on the stations as they
//! are, and on the same stations with one station's area replaced — and kept when the
//! two choose different stations. Comparing with the map as it is (not with where each
//! report was routed back then) shows what this one change would do, apart from earlier
//! changes and transfers.

use crate::ids::{ReportId, StationId};
use crate::routing::{route, RoutingDecision, StationFacts};
use crate::values::{GeoPoint, Polygon};

/// What routing needs to know about one report.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportToRoute {
    pub report_id: ReportId,
    pub crime_types: Vec<String>,
    pub point: GeoPoint,
}

/// A report the proposed area would route to another station.
#[derive(Clone, Debug, PartialEq)]
pub struct Rerouted {
    pub report_id: ReportId,
    /// Routing on the stations as they are (`None`: no station could take it).
    pub now: Option<RoutingDecision>,
    /// Routing with the proposed area.
    pub proposed: Option<RoutingDecision>,
}

/// The reports of `reports` that routing would send to another station if `station`
/// had `area` (in their order). A station absent from `stations` (inactive, or unknown)
/// changes nothing.
pub fn area_preview(
    stations: &[StationFacts],
    station: StationId,
    area: &Polygon,
    reports: &[ReportToRoute],
) -> Vec<Rerouted> {
    let proposed_map: Vec<StationFacts> = stations
        .iter()
        .map(|s| {
            if s.station_id == station {
                StationFacts {
                    area: Some(area.clone()),
                    ..s.clone()
                }
            } else {
                s.clone()
            }
        })
        .collect();
    reports
        .iter()
        .filter_map(|r| {
            let now = route(stations, &r.crime_types, r.point).ok();
            let proposed = route(&proposed_map, &r.crime_types, r.point).ok();
            let station_of = |d: &Option<RoutingDecision>| d.as_ref().map(|d| d.station_id);
            (station_of(&now) != station_of(&proposed)).then_some(Rerouted {
                report_id: r.report_id,
                now,
                proposed,
            })
        })
        .collect()
}
