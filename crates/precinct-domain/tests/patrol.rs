//! Patrol aggregate: registration, updates, manual status and the workload that
//! drives BUSY/AVAILABLE.

mod common;

use common::{given, given_nothing, t, uuid};
use precinct_domain::ids::*;
use precinct_domain::patrol::*;
use precinct_domain::values::*;
use precinct_domain::{Aggregate, DomainError, ErrorKind};

fn patrol_id() -> PatrolId {
    PatrolId::new(uuid(20))
}
fn station() -> StationId {
    StationId::new(uuid(10))
}
fn officer(n: u128) -> AccountId {
    AccountId::new(uuid(30 + n))
}
fn report(n: u128) -> ReportId {
    ReportId::new(uuid(n))
}

fn registered() -> PatrolEvent {
    PatrolRegistered {
        patrol_id: patrol_id(),
        call_sign: "Alpha-1".into(),
        station_id: station(),
        officer_ids: vec![officer(1), officer(2)],
        at: t(0),
    }
    .into()
}
fn status_changed(status: PatrolStatus, cause: StatusCause, minute: i64) -> PatrolEvent {
    PatrolStatusChanged {
        status,
        cause,
        at: t(minute),
    }
    .into()
}
fn opened(n: u128, minute: i64) -> PatrolEvent {
    PatrolAssignmentOpened {
        report_id: report(n),
        at: t(minute),
    }
    .into()
}
fn closed(n: u128, outcome: AssignmentOutcome, minute: i64) -> PatrolEvent {
    PatrolAssignmentClosed {
        report_id: report(n),
        outcome,
        at: t(minute),
    }
    .into()
}
/// Registered and dispatched to report 1.
fn busy_with_one() -> Vec<PatrolEvent> {
    vec![
        registered(),
        opened(1, 5),
        status_changed(PatrolStatus::Busy, StatusCause::Dispatched, 5),
    ]
}

fn invalid(field: &'static str, e: ValueError) -> PatrolError {
    PatrolError::Invalid {
        field,
        reason: e.to_string(),
    }
}

// ----- register ---------------------------------------------------------------------

#[test]
fn register_creates_an_available_patrol() {
    let patrol = given_nothing::<Patrol>()
        .when(PatrolCommand::Register {
            patrol_id: patrol_id(),
            call_sign: " Alpha-1 ".into(),
            station_id: station(),
            officer_ids: vec![officer(1), officer(2), officer(1)],
            at: t(0),
        })
        .then_events(vec![registered()]);
    assert!(patrol.version_exists());
    assert_eq!(patrol.status, PatrolStatus::Available);
    assert_eq!(patrol.officer_ids, vec![officer(1), officer(2)]);
    assert!(patrol.is_member(officer(2)));
    assert!(!patrol.is_member(officer(3)));
}

#[test]
fn register_twice_is_refused() {
    given::<Patrol>([registered()])
        .when(PatrolCommand::Register {
            patrol_id: patrol_id(),
            call_sign: "Bravo".into(),
            station_id: station(),
            officer_ids: vec![],
            at: t(1),
        })
        .then_err(PatrolError::AlreadyExists);
}

#[test]
fn register_refuses_bad_call_signs_and_too_many_officers() {
    let register = |call_sign: &str, officers: u128| PatrolCommand::Register {
        patrol_id: patrol_id(),
        call_sign: call_sign.into(),
        station_id: station(),
        officer_ids: (0..officers).map(officer).collect(),
        at: t(0),
    };
    given_nothing::<Patrol>()
        .when(register("  ", 1))
        .then_err(invalid("call_sign", ValueError::Blank));
    given_nothing::<Patrol>()
        .when(register(&"A".repeat(33), 1))
        .then_err(invalid(
            "call_sign",
            ValueError::TooLong { max: 32, len: 33 },
        ));
    given_nothing::<Patrol>()
        .when(register("Alpha", 51))
        .then_err(invalid(
            "officer_ids",
            ValueError::TooMany { max: 50, len: 51 },
        ));
}

#[test]
fn commands_on_a_missing_patrol_are_not_found() {
    let commands = [
        PatrolCommand::Update {
            call_sign: Some("B".into()),
            officer_ids: None,
            at: t(1),
        },
        PatrolCommand::SetStatus {
            status: PatrolStatus::OffDuty,
            at: t(1),
        },
        PatrolCommand::OpenAssignment {
            report_id: report(1),
            at: t(1),
        },
        PatrolCommand::CloseAssignment {
            report_id: report(1),
            outcome: AssignmentOutcome::Finished,
            at: t(1),
        },
        PatrolCommand::RemoveOfficer {
            officer_id: officer(1),
            at: t(1),
        },
    ];
    for cmd in commands {
        given_nothing::<Patrol>()
            .when(cmd)
            .then_err(PatrolError::NotFound);
    }
}

// ----- update -----------------------------------------------------------------------

#[test]
fn update_replaces_the_given_fields() {
    let patrol = given::<Patrol>([registered()])
        .when(PatrolCommand::Update {
            call_sign: None,
            officer_ids: Some(vec![officer(3), officer(3)]),
            at: t(1),
        })
        .then_events(vec![PatrolUpdated {
            call_sign: None,
            officer_ids: Some(vec![officer(3)]),
            at: t(1),
        }
        .into()]);
    assert_eq!(patrol.officer_ids, vec![officer(3)]);
    assert_eq!(patrol.call_sign, "Alpha-1");

    let patrol = given::<Patrol>([registered()])
        .when(PatrolCommand::Update {
            call_sign: Some("Bravo-2".into()),
            officer_ids: None,
            at: t(1),
        })
        .then_events(vec![PatrolUpdated {
            call_sign: Some("Bravo-2".into()),
            officer_ids: None,
            at: t(1),
        }
        .into()]);
    assert_eq!(patrol.call_sign, "Bravo-2");
}

// ----- remove an officer -----------------------------------------------------------

#[test]
fn removing_an_officer_keeps_the_rest_of_the_crew() {
    let patrol = given::<Patrol>([registered()])
        .when(PatrolCommand::RemoveOfficer {
            officer_id: officer(1),
            at: t(1),
        })
        .then_events(vec![PatrolUpdated {
            call_sign: None,
            officer_ids: Some(vec![officer(2)]),
            at: t(1),
        }
        .into()]);
    assert_eq!(patrol.officer_ids, vec![officer(2)]);
    assert!(!patrol.is_member(officer(1)));
    // The last officer too: the patrol stays, with an empty crew (its open assignments
    // are the desk's to reassign).
    let only_two: PatrolEvent = PatrolUpdated {
        call_sign: None,
        officer_ids: Some(vec![officer(2)]),
        at: t(1),
    }
    .into();
    let patrol = given::<Patrol>([registered(), only_two, opened(1, 2)])
        .when(PatrolCommand::RemoveOfficer {
            officer_id: officer(2),
            at: t(3),
        })
        .then_events(vec![PatrolUpdated {
            call_sign: None,
            officer_ids: Some(vec![]),
            at: t(3),
        }
        .into()]);
    assert!(patrol.officer_ids.is_empty());
    assert_eq!(patrol.open_assignments.len(), 1);
}

#[test]
fn removing_someone_who_is_not_in_the_crew_is_a_no_op() {
    given::<Patrol>([registered()])
        .when(PatrolCommand::RemoveOfficer {
            officer_id: officer(9),
            at: t(1),
        })
        .then_events(vec![]);
}

#[test]
fn only_a_patrol_officer_of_the_patrols_station_serves_in_it() {
    let given = given::<Patrol>([registered()]);
    let patrol = given.state();
    let other = StationId::new(uuid(11));
    assert!(patrol.is_serving_member(officer(1), Role::Patrol, Some(station())));
    // Listed, but moved to another station, or no longer a PATROL.
    assert!(!patrol.is_serving_member(officer(1), Role::Patrol, Some(other)));
    for role in [
        Role::Dispatcher,
        Role::Supervisor,
        Role::Admin,
        Role::Citizen,
    ] {
        assert!(!patrol.is_serving_member(officer(1), role, Some(station())));
    }
    assert!(!patrol.is_serving_member(officer(1), Role::Citizen, None));
    // A PATROL of the station who is not in the crew.
    assert!(!patrol.is_serving_member(officer(9), Role::Patrol, Some(station())));
}

#[test]
fn update_refuses_an_empty_change_and_bad_call_signs() {
    given::<Patrol>([registered()])
        .when(PatrolCommand::Update {
            call_sign: None,
            officer_ids: None,
            at: t(1),
        })
        .then_err(PatrolError::NothingToChange);
    given::<Patrol>([registered()])
        .when(PatrolCommand::Update {
            call_sign: Some("".into()),
            officer_ids: None,
            at: t(1),
        })
        .then_err(invalid("call_sign", ValueError::Blank));
}

// ----- manual status ----------------------------------------------------------------

#[test]
fn set_status_changes_it_manually() {
    let patrol = given::<Patrol>([registered()])
        .when(PatrolCommand::SetStatus {
            status: PatrolStatus::OffDuty,
            at: t(1),
        })
        .then_events(vec![status_changed(
            PatrolStatus::OffDuty,
            StatusCause::Manual,
            1,
        )]);
    assert_eq!(patrol.status, PatrolStatus::OffDuty);

    given::<Patrol>([
        registered(),
        status_changed(PatrolStatus::OffDuty, StatusCause::Manual, 1),
    ])
    .when(PatrolCommand::SetStatus {
        status: PatrolStatus::Available,
        at: t(2),
    })
    .then_events(vec![status_changed(
        PatrolStatus::Available,
        StatusCause::Manual,
        2,
    )]);
}

#[test]
fn set_status_to_the_current_status_is_a_no_op() {
    given::<Patrol>([registered()])
        .when(PatrolCommand::SetStatus {
            status: PatrolStatus::Available,
            at: t(1),
        })
        .then_no_events();
    given::<Patrol>(busy_with_one())
        .when(PatrolCommand::SetStatus {
            status: PatrolStatus::Busy,
            at: t(6),
        })
        .then_no_events();
}

#[test]
fn set_status_available_or_off_duty_with_open_assignments_is_refused() {
    for status in [PatrolStatus::Available, PatrolStatus::OffDuty] {
        given::<Patrol>(busy_with_one())
            .when(PatrolCommand::SetStatus { status, at: t(6) })
            .then_err(PatrolError::HasOpenAssignments);
    }
}

#[test]
fn set_status_busy_by_hand_is_allowed_without_assignments() {
    given::<Patrol>([registered()])
        .when(PatrolCommand::SetStatus {
            status: PatrolStatus::Busy,
            at: t(1),
        })
        .then_events(vec![status_changed(
            PatrolStatus::Busy,
            StatusCause::Manual,
            1,
        )]);
}

// ----- workload ---------------------------------------------------------------------

#[test]
fn opening_an_assignment_makes_an_available_patrol_busy() {
    let patrol = given::<Patrol>([registered()])
        .when(PatrolCommand::OpenAssignment {
            report_id: report(1),
            at: t(5),
        })
        .then_events(vec![
            opened(1, 5),
            status_changed(PatrolStatus::Busy, StatusCause::Dispatched, 5),
        ]);
    assert_eq!(patrol.status, PatrolStatus::Busy);
    assert_eq!(patrol.last_assigned_at, Some(t(5)));
    assert!(patrol.open_assignments.contains(&report(1)));
}

#[test]
fn opening_another_assignment_while_busy_only_adds_workload() {
    let patrol = given::<Patrol>(busy_with_one())
        .when(PatrolCommand::OpenAssignment {
            report_id: report(2),
            at: t(6),
        })
        .then_events(vec![opened(2, 6)]);
    assert_eq!(patrol.open_assignments.len(), 2);
    assert_eq!(patrol.snapshot(None).open_assignments, 2);
}

#[test]
fn opening_an_assignment_off_duty_is_refused() {
    given::<Patrol>([
        registered(),
        status_changed(PatrolStatus::OffDuty, StatusCause::Manual, 1),
    ])
    .when(PatrolCommand::OpenAssignment {
        report_id: report(1),
        at: t(5),
    })
    .then_err(PatrolError::OffDuty);
}

#[test]
fn opening_the_same_assignment_twice_is_refused() {
    given::<Patrol>(busy_with_one())
        .when(PatrolCommand::OpenAssignment {
            report_id: report(1),
            at: t(6),
        })
        .then_err(PatrolError::AlreadyAssigned);
}

#[test]
fn closing_the_last_assignment_releases_the_patrol() {
    let patrol = given::<Patrol>(busy_with_one())
        .when(PatrolCommand::CloseAssignment {
            report_id: report(1),
            outcome: AssignmentOutcome::Finished,
            at: t(9),
        })
        .then_events(vec![
            closed(1, AssignmentOutcome::Finished, 9),
            status_changed(PatrolStatus::Available, StatusCause::Released, 9),
        ]);
    assert_eq!(patrol.status, PatrolStatus::Available);
    assert!(patrol.open_assignments.is_empty());
    assert_eq!(patrol.declines, 0);
}

#[test]
fn closing_one_of_several_assignments_keeps_the_patrol_busy() {
    let mut events = busy_with_one();
    events.push(opened(2, 6));
    given::<Patrol>(events)
        .when(PatrolCommand::CloseAssignment {
            report_id: report(1),
            outcome: AssignmentOutcome::Cancelled,
            at: t(9),
        })
        .then_events(vec![closed(1, AssignmentOutcome::Cancelled, 9)]);
}

#[test]
fn a_declined_assignment_counts_as_a_decline() {
    let patrol = given::<Patrol>(busy_with_one())
        .when(PatrolCommand::CloseAssignment {
            report_id: report(1),
            outcome: AssignmentOutcome::Declined,
            at: t(6),
        })
        .then_events(vec![
            closed(1, AssignmentOutcome::Declined, 6),
            status_changed(PatrolStatus::Available, StatusCause::Released, 6),
        ]);
    assert_eq!(patrol.declines, 1);
    let snapshot = patrol.snapshot(Some(GeoPoint::parse(7.0, 125.0).expect("valid")));
    assert_eq!(
        (
            snapshot.patrol_id,
            snapshot.station_id,
            snapshot.declines,
            snapshot.open_assignments
        ),
        (patrol_id(), station(), 1, 0)
    );
    assert_eq!(snapshot.last_assigned_at, Some(t(5)));
}

#[test]
fn closing_an_assignment_that_is_not_open_is_a_no_op() {
    given::<Patrol>([registered()])
        .when(PatrolCommand::CloseAssignment {
            report_id: report(9),
            outcome: AssignmentOutcome::Finished,
            at: t(9),
        })
        .then_no_events();
}

#[test]
fn errors_sort_into_kinds() {
    assert_eq!(PatrolError::NotFound.kind(), ErrorKind::NotFound);
    for e in [
        PatrolError::AlreadyExists,
        PatrolError::HasOpenAssignments,
        PatrolError::OffDuty,
        PatrolError::AlreadyAssigned,
    ] {
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e:?}");
    }
    assert_eq!(PatrolError::NothingToChange.kind(), ErrorKind::Invalid);
    assert_eq!(
        invalid("call_sign", ValueError::Blank).field(),
        Some("call_sign")
    );
    assert_eq!(Patrol::TYPE, "patrol");
}

// ----- boundaries found by mutation testing (docs/reliability.md) -------------------

#[test]
fn a_patrol_that_was_never_registered_does_not_exist() {
    // Given no history, when asking whether the patrol exists, then it does not: the
    // live directory and the API rely on this to answer 404.
    assert!(!Patrol::default().version_exists());
    let patrol = given::<Patrol>([registered()]).state().clone();
    assert!(patrol.version_exists());
}

#[test]
fn registration_records_when_the_patrol_was_registered() {
    let patrol = given_nothing::<Patrol>()
        .when(PatrolCommand::Register {
            patrol_id: patrol_id(),
            call_sign: "Alpha-1".into(),
            station_id: station(),
            officer_ids: vec![officer(1), officer(2)],
            at: t(0),
        })
        .then_events(vec![registered()]);
    assert_eq!(patrol.registered_at, t(0));
    assert_eq!(patrol.updated_at, t(0));
    assert_eq!(patrol.id, patrol_id());
    assert_eq!(patrol.station_id, station());
}

#[test]
fn a_crew_of_exactly_fifty_officers_is_accepted() {
    let officers: Vec<AccountId> = (0..50).map(officer).collect();
    let patrol = given_nothing::<Patrol>()
        .when(PatrolCommand::Register {
            patrol_id: patrol_id(),
            call_sign: "Alpha".into(),
            station_id: station(),
            officer_ids: officers.clone(),
            at: t(0),
        })
        .then_events(vec![PatrolRegistered {
            patrol_id: patrol_id(),
            call_sign: "Alpha".into(),
            station_id: station(),
            officer_ids: officers.clone(),
            at: t(0),
        }
        .into()]);
    assert_eq!(patrol.officer_ids.len(), 50);
}
