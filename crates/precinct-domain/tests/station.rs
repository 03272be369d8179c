//! Station aggregate: precincts need a place, divisions need keywords.

mod common;

use common::{given, given_nothing, t, uuid};
use precinct_domain::ids::{ReportId, StationId};
use precinct_domain::routing::StationFacts;
use precinct_domain::station::*;
use precinct_domain::values::*;
use precinct_domain::{fold, Aggregate, DomainError, ErrorKind};

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

// --- Editing, deactivating and reactivating (issue 16 item 7) ---

fn other_square() -> Polygon {
    Polygon::parse(vec![vec![
        [125.70, 7.16],
        [125.72, 7.16],
        [125.72, 7.18],
        [125.70, 7.18],
        [125.70, 7.16],
    ]])
    .expect("valid polygon")
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).expect("valid phone")
}

fn a_precinct() -> Vec<StationEvent> {
    vec![created(
        StationKind::Precinct,
        Some(point()),
        Some(square()),
        &[],
    )]
}

fn a_division() -> Vec<StationEvent> {
    vec![created(StationKind::Division, None, None, &["cybercrime"])]
}

fn update(changes: StationChanges) -> StationCommand {
    StationCommand::Update { changes, at: t(5) }
}

fn report(n: u128) -> ReportId {
    ReportId::new(uuid(n))
}

#[test]
fn a_precinct_gets_a_new_area_and_contact_number() {
    let station = given::<Station>(a_precinct())
        .when(update(StationChanges {
            area: Edit::Set(other_square()),
            contact_phone: Edit::Set(phone(" +63 82 227-1234 ")),
            ..Default::default()
        }))
        .then_events(vec![StationUpdated {
            station_id: station_id(),
            name: "Sta. Ana".into(),
            latitude: Some(point().parts().0),
            longitude: Some(point().parts().1),
            area: Some(other_square()),
            crime_types: vec![],
            contact_phone: Some(phone("+63 82 227-1234")),
            changed: vec![StationField::Area, StationField::ContactPhone],
            at: t(5),
        }
        .into()]);
    assert_eq!(station.area, Some(other_square()));
    assert_eq!(station.facts().area, Some(other_square()));
    assert_eq!(station.contact_phone, Some(phone("+63 82 227-1234")));
    assert!(station.active);
    // The edit kept the point, and the state after it still has it.
    assert_eq!(station.point, Some(point()));
}

#[test]
fn an_edit_that_changes_nothing_emits_nothing() {
    given::<Station>(a_precinct())
        .when(update(StationChanges {
            name: Some("  Sta. Ana ".into()),
            area: Edit::Set(square()),
            ..Default::default()
        }))
        .then_no_events();
    given::<Station>(a_precinct())
        .when(update(StationChanges::default()))
        .then_no_events();
}

#[test]
fn a_precinct_may_drop_its_point_while_it_keeps_an_area() {
    let station = given::<Station>(a_precinct())
        .when(update(StationChanges {
            point: Edit::Clear,
            name: Some("Sta. Ana Precinct".into()),
            ..Default::default()
        }))
        .then_events(vec![StationUpdated {
            station_id: station_id(),
            name: "Sta. Ana Precinct".into(),
            latitude: None,
            longitude: None,
            area: Some(square()),
            crime_types: vec![],
            contact_phone: None,
            changed: vec![StationField::Name, StationField::Point],
            at: t(5),
        }
        .into()]);
    assert_eq!(station.point, None);
}

#[test]
fn a_precinct_left_without_point_and_area_is_refused() {
    given::<Station>(a_precinct())
        .when(update(StationChanges {
            point: Edit::Clear,
            area: Edit::Clear,
            ..Default::default()
        }))
        .then_err(StationError::MissingLocation);
}

#[test]
fn an_edit_to_a_self_intersecting_area_is_refused() {
    let bow_tie = Polygon::parse(vec![vec![
        [125.60, 7.06],
        [125.62, 7.08],
        [125.62, 7.06],
        [125.60, 7.08],
        [125.60, 7.06],
    ]])
    .expect("well-formed");
    given::<Station>(a_precinct())
        .when(update(StationChanges {
            area: Edit::Set(bow_tie),
            ..Default::default()
        }))
        .then_err(StationError::Invalid {
            field: "area",
            reason: ValueError::Polygon("ring 0 crosses or touches itself".into()).to_string(),
        });
}

#[test]
fn keywords_on_a_precinct_and_none_on_a_division_are_refused() {
    given::<Station>(a_precinct())
        .when(update(StationChanges {
            crime_types: Some(vec!["theft".into()]),
            ..Default::default()
        }))
        .then_err(StationError::Invalid {
            field: "crime_types",
            reason: "only a DIVISION routes by crime type".into(),
        });
    given::<Station>(a_division())
        .when(update(StationChanges {
            crime_types: Some(vec![]),
            ..Default::default()
        }))
        .then_err(StationError::MissingCrimeTypes);
    given::<Station>(a_division())
        .when(update(StationChanges {
            name: Some("\u{200b}".into()),
            ..Default::default()
        }))
        .then_err(StationError::Invalid {
            field: "name",
            reason: ValueError::Invisible.to_string(),
        });
}

#[test]
fn a_division_gets_new_keywords_normalised() {
    given::<Station>(a_division())
        .when(update(StationChanges {
            crime_types: Some(vec![" Phishing ".into(), "CYBERCRIME".into()]),
            ..Default::default()
        }))
        .then_events(vec![StationUpdated {
            station_id: station_id(),
            name: "Sta. Ana".into(),
            latitude: None,
            longitude: None,
            area: None,
            crime_types: vec!["phishing".into(), "cybercrime".into()],
            contact_phone: None,
            changed: vec![StationField::CrimeTypes],
            at: t(5),
        }
        .into()]);
}

#[test]
fn editing_deactivating_or_reactivating_an_unknown_station_is_refused() {
    given_nothing::<Station>()
        .when(update(StationChanges {
            name: Some("Nowhere".into()),
            ..Default::default()
        }))
        .then_err(StationError::NotFound);
    given_nothing::<Station>()
        .when(StationCommand::Deactivate {
            open_reports: OpenReports::default(),
            at: t(5),
        })
        .then_err(StationError::NotFound);
    given_nothing::<Station>()
        .when(StationCommand::Reactivate { at: t(5) })
        .then_err(StationError::NotFound);
    assert_eq!(StationError::NotFound.kind(), ErrorKind::NotFound);
}

#[test]
fn a_station_without_open_reports_is_deactivated_and_reactivated() {
    let station = given::<Station>(a_precinct())
        .when(StationCommand::Deactivate {
            open_reports: OpenReports::default(),
            at: t(5),
        })
        .then_events(vec![StationDeactivated {
            station_id: station_id(),
            at: t(5),
        }
        .into()]);
    assert!(!station.active);

    let mut history = a_precinct();
    history.push(
        StationDeactivated {
            station_id: station_id(),
            at: t(5),
        }
        .into(),
    );
    given::<Station>(history.clone())
        .when(StationCommand::Deactivate {
            open_reports: OpenReports::default(),
            at: t(6),
        })
        .then_no_events();
    let station = given::<Station>(history)
        .when(StationCommand::Reactivate { at: t(7) })
        .then_events(vec![StationReactivated {
            station_id: station_id(),
            at: t(7),
        }
        .into()]);
    assert!(station.active);
    given::<Station>(a_precinct())
        .when(StationCommand::Reactivate { at: t(7) })
        .then_no_events();
}

#[test]
fn deactivating_a_station_with_open_reports_is_refused_naming_them() {
    let open = OpenReports {
        ids: vec![report(1), report(2)],
        total: 2,
    };
    given::<Station>(a_precinct())
        .when(StationCommand::Deactivate {
            open_reports: open.clone(),
            at: t(5),
        })
        .then_err(StationError::HasOpenReports(open));
    let many = OpenReports {
        ids: (1..=25).map(report).collect(),
        total: 30,
    };
    let message = StationError::HasOpenReports(many).to_string();
    assert!(message.contains(&uuid(1).to_string()), "{message}");
    assert!(message.contains(&uuid(20).to_string()), "{message}");
    assert!(!message.contains(&uuid(21).to_string()), "{message}");
    assert!(message.contains("and 10 more"), "{message}");
    let all_named = StationError::HasOpenReports(OpenReports {
        ids: vec![report(1), report(2)],
        total: 2,
    })
    .to_string();
    assert!(all_named.contains(&uuid(2).to_string()), "{all_named}");
    assert!(!all_named.contains("more"), "{all_named}");
    assert_eq!(
        StationError::HasOpenReports(OpenReports::default()).kind(),
        ErrorKind::Conflict
    );
    // A count with no ids named (the read model's list was cut), or ids with a count
    // that trails them: either refuses, and the total is never below the ids named.
    for (open, total) in [
        (
            OpenReports {
                ids: vec![],
                total: 3,
            },
            3,
        ),
        (
            OpenReports {
                ids: vec![report(1), report(2)],
                total: 0,
            },
            2,
        ),
    ] {
        given::<Station>(a_precinct())
            .when(StationCommand::Deactivate {
                open_reports: open.clone(),
                at: t(5),
            })
            .then_err(StationError::HasOpenReports(OpenReports { total, ..open }));
    }
}

#[test]
fn a_station_exists_only_once_created() {
    assert!(!Station::default().version_exists());
    assert!(given::<Station>(a_precinct()).state().version_exists());
}

#[test]
fn telephone_numbers_parse() {
    assert_eq!(phone(" 117 ").as_str(), "117");
    assert_eq!(phone("(082) 227.1234").as_str(), "(082) 227.1234");
    for bad in ["12", "call 911", "++63 82", "63+82", "", &"1".repeat(33)] {
        assert!(PhoneNumber::parse(bad).is_err(), "{bad:?} accepted");
    }
}

// ----- SLA policy (ADR 0035) ------------------------------------------------------

fn policy(accept_critical: u32) -> precinct_domain::sla::SlaPolicy {
    serde_json::from_value(serde_json::json!({
        "deadlines": { "CRITICAL": { "accept_secs": accept_critical } },
        "warn_at_percent": 75,
        "unaccepted": { "action": "REASSIGN", "after_secs": 120 }
    }))
    .expect("a policy")
}

#[test]
fn a_station_takes_an_sla_policy_once_and_the_same_again_changes_nothing() {
    let history = vec![created(StationKind::Precinct, Some(point()), None, &[])];
    let station = given::<Station>(history.clone())
        .when(StationCommand::SetSlaPolicy {
            policy: policy(60),
            at: t(5),
        })
        .then_events(vec![StationSlaPolicySet {
            station_id: station_id(),
            policy: policy(60),
            at: t(5),
        }
        .into()]);
    assert_eq!(station.sla_policy, Some(policy(60)));
    let mut history = history;
    history.push(
        StationSlaPolicySet {
            station_id: station_id(),
            policy: policy(60),
            at: t(5),
        }
        .into(),
    );
    given::<Station>(history.clone())
        .when(StationCommand::SetSlaPolicy {
            policy: policy(60),
            at: t(6),
        })
        .then_no_events();
    given::<Station>(history)
        .when(StationCommand::SetSlaPolicy {
            policy: policy(90),
            at: t(6),
        })
        .then_events(vec![StationSlaPolicySet {
            station_id: station_id(),
            policy: policy(90),
            at: t(6),
        }
        .into()]);
}

#[test]
fn an_sla_policy_out_of_range_or_for_no_station_is_refused() {
    let err = given::<Station>(vec![created(
        StationKind::Precinct,
        Some(point()),
        None,
        &[],
    )])
    .when(StationCommand::SetSlaPolicy {
        policy: policy(0),
        at: t(5),
    })
    .err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(
        err.to_string().contains("deadlines.CRITICAL.accept_secs"),
        "{err}"
    );
    given_nothing::<Station>()
        .when(StationCommand::SetSlaPolicy {
            policy: policy(60),
            at: t(5),
        })
        .then_err(StationError::NotFound);
}

#[test]
fn a_division_takes_up_to_keywords_max_distinct_keywords() {
    let words: Vec<String> = (0..=KEYWORDS_MAX).map(|i| format!("kind {i}")).collect();
    let at_most: Vec<&str> = words[..KEYWORDS_MAX].iter().map(String::as_str).collect();
    let events = given_nothing::<Station>()
        .when(create(StationKind::Division, None, None, &at_most))
        .events();
    let station = fold::<Station>(&events);
    assert_eq!(station.crime_types.len(), KEYWORDS_MAX);
    let one_more: Vec<&str> = words.iter().map(String::as_str).collect();
    let err = given_nothing::<Station>()
        .when(create(StationKind::Division, None, None, &one_more))
        .err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
}
