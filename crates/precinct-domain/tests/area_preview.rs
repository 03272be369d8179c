//! The area preview: which reports a proposed precinct area would route elsewhere.

mod common;

use common::uuid;
use precinct_domain::area_preview::*;
use precinct_domain::ids::{ReportId, StationId};
use precinct_domain::routing::*;
use precinct_domain::values::*;

fn id(n: u128) -> StationId {
    StationId::new(uuid(n))
}
fn pt(lat: f64, lon: f64) -> GeoPoint {
    GeoPoint::parse(lat, lon).expect("valid point")
}
fn square(lat: f64, lon: f64, half: f64) -> Polygon {
    Polygon::parse(vec![vec![
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]])
    .expect("valid polygon")
}
fn precinct(n: u128, point: GeoPoint, area: Option<Polygon>) -> StationFacts {
    StationFacts {
        station_id: id(n),
        kind: StationKind::Precinct,
        point: Some(point),
        area,
        crime_types: vec![],
    }
}
fn report(n: u128, crime: &str, point: GeoPoint) -> ReportToRoute {
    ReportToRoute {
        report_id: ReportId::new(uuid(n)),
        crime_types: vec![crime.to_string()],
        point,
    }
}

/// Precinct 1 covers a small square around (7.0, 125.0); precinct 2 sits at (7.2, 125.0)
/// without an area; a division takes phishing.
fn city() -> Vec<StationFacts> {
    vec![
        precinct(1, pt(7.0, 125.0), Some(square(7.0, 125.0, 0.02))),
        precinct(2, pt(7.2, 125.0), None),
        StationFacts {
            station_id: id(21),
            kind: StationKind::Division,
            point: None,
            area: None,
            crime_types: vec!["phishing".into()],
        },
    ]
}

#[test]
fn a_wider_area_takes_the_reports_it_now_covers_and_only_those() {
    let reports = vec![
        report(100, "Theft", pt(7.0, 125.0)),  // inside both: no change
        report(101, "Theft", pt(7.15, 125.0)), // nearest is 2 now; inside the new area
        report(102, "Theft", pt(7.5, 125.0)),  // outside both: stays with 2
        report(103, "Phishing", pt(7.15, 125.0)), // the division wins either way
    ];
    let rerouted = area_preview(&city(), id(1), &square(7.1, 125.0, 0.08), &reports);
    assert_eq!(rerouted.len(), 1, "{rerouted:?}");
    let r = &rerouted[0];
    assert_eq!(r.report_id, ReportId::new(uuid(101)));
    let now = r.now.as_ref().expect("routed now");
    assert_eq!(now.station_id, id(2));
    assert_eq!(now.rule, RoutingRule::NearestPrecinct);
    let proposed = r.proposed.as_ref().expect("routed with the proposal");
    assert_eq!(proposed.station_id, id(1));
    assert_eq!(proposed.rule, RoutingRule::PrecinctArea);
}

#[test]
fn a_narrower_area_gives_reports_back_to_the_nearest_precinct() {
    // Report at (7.13, 125.0): inside precinct 1's wide area now, nearer to precinct 2.
    let mut stations = city();
    stations[0].area = Some(square(7.1, 125.0, 0.08));
    let reports = vec![report(100, "Theft", pt(7.13, 125.0))];
    let rerouted = area_preview(&stations, id(1), &square(7.0, 125.0, 0.02), &reports);
    assert_eq!(rerouted.len(), 1);
    assert_eq!(rerouted[0].now.as_ref().map(|d| d.station_id), Some(id(1)));
    assert_eq!(
        rerouted[0].proposed.as_ref().map(|d| d.station_id),
        Some(id(2))
    );
}

#[test]
fn a_station_not_on_the_map_changes_nothing() {
    let reports = vec![report(101, "Theft", pt(7.15, 125.0))];
    assert!(area_preview(&city(), id(9), &square(7.15, 125.0, 0.5), &reports).is_empty());
    assert!(area_preview(&city(), id(1), &square(7.0, 125.0, 0.02), &[]).is_empty());
}
