//! Routing policy: division keyword, then precinct area, then nearest precinct.

mod common;

use common::uuid;
use precinct_domain::ids::StationId;
use precinct_domain::routing::*;
use precinct_domain::values::*;

fn id(n: u128) -> StationId {
    StationId::new(uuid(n))
}
fn pt(lat: f64, lon: f64) -> GeoPoint {
    GeoPoint::parse(lat, lon).expect("valid point")
}
/// A square polygon `half` degrees around a centre.
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
fn division(n: u128, keywords: &[&str]) -> StationFacts {
    StationFacts {
        station_id: id(n),
        kind: StationKind::Division,
        point: Some(pt(0.0, 0.0)),
        area: None,
        crime_types: keywords.iter().map(|k| k.to_string()).collect(),
    }
}
fn precinct(n: u128, point: Option<GeoPoint>, area: Option<Polygon>) -> StationFacts {
    StationFacts {
        station_id: id(n),
        kind: StationKind::Precinct,
        point,
        area,
        crime_types: vec![],
    }
}
fn crimes(list: &[&str]) -> Vec<String> {
    list.iter().map(|c| c.to_string()).collect()
}

const DAVAO: (f64, f64) = (7.07, 125.61);

fn city() -> Vec<StationFacts> {
    vec![
        division(21, &["cybercrime", "online fraud", "phishing"]),
        precinct(1, Some(pt(7.07, 125.61)), Some(square(7.07, 125.61, 0.05))),
        precinct(2, Some(pt(7.20, 125.50)), Some(square(7.20, 125.50, 0.05))),
        precinct(3, Some(pt(7.40, 125.40)), None),
    ]
}

#[test]
fn a_division_keyword_in_a_crime_type_routes_to_the_division() {
    let decision = route(
        &city(),
        &crimes(&["Theft", "Online Fraud scheme"]),
        pt(DAVAO.0, DAVAO.1),
    )
    .expect("routed");
    assert_eq!(
        decision,
        RoutingDecision {
            station_id: id(21),
            rule: RoutingRule::DivisionKeyword,
            matched_keyword: Some("online fraud".into()),
            distance_m: None,
        }
    );
}

#[test]
fn the_longest_matching_keyword_wins_then_the_lowest_station_id() {
    let stations = vec![
        division(30, &["fraud"]),
        division(31, &["online fraud"]),
        division(32, &["online fraud"]),
    ];
    let decision = route(&stations, &crimes(&["ONLINE FRAUD"]), pt(0.0, 0.0)).expect("routed");
    assert_eq!(decision.station_id, id(31));
    assert_eq!(decision.matched_keyword.as_deref(), Some("online fraud"));
}

#[test]
fn division_keywords_do_not_match_the_other_way_round() {
    // "fraud" (the report) does not contain "online fraud" (the keyword).
    let decision = route(&city(), &crimes(&["fraud"]), pt(DAVAO.0, DAVAO.1)).expect("routed");
    assert_eq!(decision.rule, RoutingRule::PrecinctArea);
}

#[test]
fn a_point_inside_a_precinct_area_routes_there() {
    let decision = route(&city(), &crimes(&["Theft"]), pt(7.21, 125.49)).expect("routed");
    assert_eq!(
        decision,
        RoutingDecision {
            station_id: id(2),
            rule: RoutingRule::PrecinctArea,
            matched_keyword: None,
            distance_m: None,
        }
    );
}

#[test]
fn overlapping_areas_prefer_the_smallest_then_the_lowest_id() {
    let stations = vec![
        precinct(5, None, Some(square(7.0, 125.0, 1.0))),
        precinct(6, None, Some(square(7.0, 125.0, 0.1))),
        precinct(4, None, Some(square(7.0, 125.0, 0.1))),
    ];
    let decision = route(&stations, &crimes(&["Theft"]), pt(7.0, 125.0)).expect("routed");
    assert_eq!(decision.station_id, id(4));
}

#[test]
fn holes_are_not_covered() {
    let with_hole = Polygon::parse(vec![
        vec![
            [124.0, 6.0],
            [126.0, 6.0],
            [126.0, 8.0],
            [124.0, 8.0],
            [124.0, 6.0],
        ],
        vec![
            [124.9, 6.9],
            [125.1, 6.9],
            [125.1, 7.1],
            [124.9, 7.1],
            [124.9, 6.9],
        ],
    ])
    .expect("valid polygon");
    let stations = vec![
        precinct(1, None, Some(with_hole)),
        precinct(2, Some(pt(7.0, 125.0)), None),
    ];
    let decision = route(&stations, &crimes(&["Theft"]), pt(7.0, 125.0)).expect("routed");
    assert_eq!(decision.station_id, id(2));
    assert_eq!(decision.rule, RoutingRule::NearestPrecinct);
}

#[test]
fn outside_every_area_the_nearest_precinct_wins() {
    // North of precinct 3's point, far from the areas of 1 and 2.
    let decision = route(&city(), &crimes(&["Theft"]), pt(7.50, 125.40)).expect("routed");
    assert_eq!(decision.station_id, id(3));
    assert_eq!(decision.rule, RoutingRule::NearestPrecinct);
    let d = decision.distance_m.expect("distance");
    assert!(
        (d - 11_119.5).abs() < 5.0,
        "0.1 degree of latitude is about 11.1 km, got {d}"
    );
}

#[test]
fn the_nearest_rule_uses_the_area_centroid_when_there_is_no_point() {
    let stations = vec![
        precinct(1, None, Some(square(10.0, 120.0, 0.1))),
        precinct(2, Some(pt(0.0, 0.0)), None),
    ];
    let decision = route(&stations, &crimes(&["Theft"]), pt(10.5, 120.0)).expect("routed");
    assert_eq!(decision.station_id, id(1));
    assert!(decision.distance_m.expect("distance") > 50_000.0);
}

#[test]
fn equally_near_precincts_tie_on_the_lowest_id() {
    let stations = vec![
        precinct(9, Some(pt(1.0, 0.0)), None),
        precinct(8, Some(pt(-1.0, 0.0)), None),
    ];
    let decision = route(&stations, &crimes(&["Theft"]), pt(0.0, 0.0)).expect("routed");
    assert_eq!(decision.station_id, id(8));
}

#[test]
fn divisions_never_receive_reports_by_location() {
    let stations = vec![division(21, &["cybercrime"])];
    assert_eq!(
        route(&stations, &crimes(&["Theft"]), pt(0.0, 0.0)),
        Err(RoutingError::NoStation)
    );
}

#[test]
fn no_station_at_all_is_an_error() {
    assert_eq!(
        route(&[], &crimes(&["Theft"]), pt(0.0, 0.0)),
        Err(RoutingError::NoStation)
    );
}

#[test]
fn the_decision_serialises_with_its_documented_shape() {
    let decision = route(&city(), &crimes(&["phishing"]), pt(0.0, 0.0)).expect("routed");
    let json = serde_json::to_value(&decision).expect("serialises");
    assert_eq!(json["rule"], "DIVISION_KEYWORD");
    assert_eq!(json["matched_keyword"], "phishing");
    assert_eq!(json["distance_m"], serde_json::Value::Null);
    assert_eq!(json["station_id"], id(21).to_string());
}
