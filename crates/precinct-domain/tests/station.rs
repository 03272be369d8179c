//! Station aggregate: precincts need a place, divisions need keywords.

mod common;

use common::{given, given_nothing, t, uuid};
use precinct_domain::ids::StationId;
use precinct_domain::routing::StationFacts;
use precinct_domain::station::*;
use precinct_domain::values::*;
use precinct_domain::{Aggregate, DomainError, ErrorKind};

fn station_id() -> StationId {
    StationId::new(uuid(10))
}
fn point() -> GeoPoint {
    GeoPoint::parse(7.07, 125.61).expect("valid")
}
fn square() -> Polygon {
    Polygon::parse(vec![vec![
        [125.60, 7.06],
        [125.62, 7.06],
        [125.62, 7.08],
        [125.60, 7.08],
        [125.60, 7.06],
    ]])
    .expect("valid polygon")
}

fn create(
    kind: StationKind,
    point: Option<GeoPoint>,
    area: Option<Polygon>,
    crime_types: &[&str],
) -> StationCommand {
    StationCommand::Create {
        station_id: station_id(),
        name: " Sta. Ana ".into(),
        kind,
        point,
        area,
        crime_types: crime_types.iter().map(|s| s.to_string()).collect(),
        at: t(0),
    }
}

fn created(
    kind: StationKind,
    point: Option<GeoPoint>,
    area: Option<Polygon>,
    crime_types: &[&str],
) -> StationEvent {
    StationCreated {
        station_id: station_id(),
        name: "Sta. Ana".into(),
        kind,
        latitude: point.map(|p| p.parts().0),
        longitude: point.map(|p| p.parts().1),
        area,
        crime_types: crime_types.iter().map(|s| s.to_string()).collect(),
        at: t(0),
    }
    .into()
}

#[test]
fn a_precinct_with_a_point_is_created() {
    let station = given_nothing::<Station>()
        .when(create(StationKind::Precinct, Some(point()), None, &[]))
        .then_events(vec![created(
            StationKind::Precinct,
            Some(point()),
            None,
            &[],
        )]);
    assert!(station.version_exists());
    assert_eq!(station.name, "Sta. Ana");
    assert_eq!(
        station.facts(),
        StationFacts {
            station_id: station_id(),
            kind: StationKind::Precinct,
            point: Some(point()),
            area: None,
            crime_types: vec![],
        }
    );
}

#[test]
fn a_precinct_with_only_an_area_is_created() {
    let station = given_nothing::<Station>()
        .when(create(StationKind::Precinct, None, Some(square()), &[]))
        .then_events(vec![created(
            StationKind::Precinct,
            None,
            Some(square()),
            &[],
        )]);
    assert_eq!(station.area, Some(square()));
    assert_eq!(station.point, None);
}

#[test]
fn a_precinct_without_point_or_area_is_refused() {
    given_nothing::<Station>()
        .when(create(StationKind::Precinct, None, None, &[]))
        .then_err(StationError::MissingLocation);
}

#[test]
fn a_precinct_with_keywords_is_refused() {
    given_nothing::<Station>()
        .when(create(
            StationKind::Precinct,
            Some(point()),
            None,
            &["theft"],
        ))
        .then_err(StationError::Invalid {
            field: "crime_types",
            reason: "only a DIVISION routes by crime type".into(),
        });
}

#[test]
fn a_division_normalises_its_keywords() {
    let station = given_nothing::<Station>()
        .when(create(
            StationKind::Division,
            None,
            None,
            &[" Cybercrime ", "PHISHING", "cybercrime", "Online Fraud"],
        ))
        .then_events(vec![created(
            StationKind::Division,
            None,
            None,
            &["cybercrime", "phishing", "online fraud"],
        )]);
    assert_eq!(station.kind, StationKind::Division);
}

#[test]
fn a_division_without_keywords_is_refused() {
    given_nothing::<Station>()
        .when(create(StationKind::Division, Some(point()), None, &[]))
        .then_err(StationError::MissingCrimeTypes);
}

#[test]
fn blank_keywords_and_names_are_refused() {
    given_nothing::<Station>()
        .when(create(
            StationKind::Division,
            None,
            None,
            &["hacking", "  "],
        ))
        .then_err(StationError::Invalid {
            field: "crime_types",
            reason: ValueError::Blank.to_string(),
        });
    given_nothing::<Station>()
        .when(StationCommand::Create {
            station_id: station_id(),
            name: "".into(),
            kind: StationKind::Precinct,
            point: Some(point()),
            area: None,
            crime_types: vec![],
            at: t(0),
        })
        .then_err(StationError::Invalid {
            field: "name",
            reason: ValueError::Blank.to_string(),
        });
}

#[test]
fn creating_a_station_twice_is_refused() {
    given::<Station>([created(StationKind::Precinct, Some(point()), None, &[])])
        .when(create(StationKind::Precinct, Some(point()), None, &[]))
        .then_err(StationError::AlreadyExists);
}

#[test]
fn station_errors_sort_into_kinds() {
    assert_eq!(StationError::AlreadyExists.kind(), ErrorKind::Conflict);
    assert_eq!(StationError::MissingLocation.kind(), ErrorKind::Invalid);
    assert_eq!(StationError::MissingCrimeTypes.field(), Some("crime_types"));
    assert_eq!(Station::TYPE, "station");
}

#[test]
fn a_precinct_whose_area_crosses_itself_is_refused() {
    let bow_tie = Polygon::parse(vec![vec![
        [125.60, 7.06],
        [125.62, 7.08],
        [125.62, 7.06],
        [125.60, 7.08],
        [125.60, 7.06],
    ]])
    .expect("well-formed");
    given_nothing::<Station>()
        .when(create(
            StationKind::Precinct,
            Some(point()),
            Some(bow_tie),
            &[],
        ))
        .then_err(StationError::Invalid {
            field: "area",
            reason: ValueError::Polygon("ring 0 crosses or touches itself".into()).to_string(),
        });
}

#[test]
fn a_station_name_of_invisible_characters_is_refused() {
    let cmd = StationCommand::Create {
        station_id: station_id(),
        name: "\u{200b}\u{200b}".into(),
        kind: StationKind::Precinct,
        point: Some(point()),
        area: None,
        crime_types: vec![],
        at: t(0),
    };
    given_nothing::<Station>()
        .when(cmd)
        .then_err(StationError::Invalid {
            field: "name",
            reason: ValueError::Invisible.to_string(),
        });
}
