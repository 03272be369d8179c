//! The desk's control over a report (issue 16): unassign, reassign, transfer to another
//! station, reopen — every transition and every refusal, as given/when/then.

mod common;

use common::{given, t, uuid};
use precinct_domain::ids::*;
use precinct_domain::report::*;
use precinct_domain::routing::{RoutingDecision, RoutingRule};
use precinct_domain::values::*;
use precinct_domain::{fold, ErrorKind};

use precinct_domain::DomainError;
use ReportStatus as S;

fn station() -> StationId {
    StationId::new(uuid(10))
}
fn other_station() -> StationId {
    StationId::new(uuid(11))
}
fn patrol() -> PatrolId {
    PatrolId::new(uuid(20))
}
fn other_patrol() -> PatrolId {
    PatrolId::new(uuid(21))
}
fn staff() -> AccountId {
    AccountId::new(uuid(30))
}

fn submitted() -> ReportEvent {
    ReportSubmitted {
        report_id: ReportId::new(uuid(1)),
        title: "Shop break-in".into(),
        crime_types: vec!["Burglary".into()],
        crime_type_codes: vec![],
        location: ReportLocation::new(GeoPoint::parse(7.07, 125.61).expect("point"), None, None),
        occurred_at: None,
        media_urls: vec![],
        reporter: Reporter::User {
            account_id: AccountId::new(uuid(31)),
        },
        station_id: station(),
        routing: RoutingDecision {
            station_id: station(),
            rule: RoutingRule::PrecinctArea,
            matched_keyword: None,
            distance_m: None,
        },
        priority: Priority::Medium,
        personal: PersonalDetails {
            description: "Window broken".into(),
            ..PersonalDetails::default()
        },
        at: t(0),
    }
    .into()
}

/// The shortest history that leaves the report in `status` (assigned to `patrol()`).
fn history(status: ReportStatus) -> Vec<ReportEvent> {
    let path: Vec<ReportEvent> = vec![
        submitted(),
        ReportAssigned {
            patrol_id: patrol(),
            auto: None,
            at: t(10),
        }
        .into(),
        AssignmentAccepted {
            patrol_id: patrol(),
            at: t(12),
        }
        .into(),
        ReportResponding {
            patrol_id: patrol(),
            at: t(14),
        }
        .into(),
        ReportResolved {
            patrol_id: patrol(),
            resolution_notes: "Suspects arrested".into(),
            at: t(16),
        }
        .into(),
        ClosureApproved {
            reviewer_id: staff(),
            at: t(18),
        }
        .into(),
    ];
    match status {
        S::New => path[..1].to_vec(),
        S::Assigned => path[..2].to_vec(),
        S::Accepted => path[..3].to_vec(),
        S::Responding => path[..4].to_vec(),
        S::Resolved => path[..5].to_vec(),
        S::Closed => path,
        S::Rejected => vec![
            submitted(),
            ReportRejected {
                justification: "Duplicate".into(),
                by: staff(),
                at: t(5),
                public_reason: Some("Reported twice".into()),
            }
            .into(),
        ],
        S::Withdrawn => vec![
            submitted(),
            ReportWithdrawn {
                reason: None,
                at: t(5),
            }
            .into(),
        ],
    }
}

fn illegal(from: ReportStatus, action: &'static str) -> ReportError {
    ReportError::IllegalTransition { from, action }
}

fn unassign(from: PatrolId) -> ReportCommand {
    ReportCommand::Unassign {
        from,
        reason: "Needed at a collision".into(),
        by: staff(),
        at: t(100),
    }
}

fn reassign(from: PatrolId, to: PatrolId) -> ReportCommand {
    ReportCommand::Reassign {
        from,
        to,
        reason: "Nearer unit".into(),
        by: staff(),
        at: t(100),
    }
}

fn transfer(to: StationId) -> ReportCommand {
    ReportCommand::Transfer {
        station_id: to,
        reason: "Harbour division's area".into(),
        by: staff(),
        at: t(100),
    }
}

fn reopen() -> ReportCommand {
    ReportCommand::Reopen {
        reason: "More damage found".into(),
        by: staff(),
        at: t(100),
    }
}

fn withdrawn(reason: &str) -> ReportEvent {
    AssignmentWithdrawn {
        patrol_id: patrol(),
        reason: reason.into(),
        by: Some(staff()),
        at: t(100),
    }
    .into()
}

const ACTIVE: &[ReportStatus] = &[S::Assigned, S::Accepted, S::Responding];

/// Each new command, the action it names in `IllegalTransition`, and the statuses that
/// allow it.
fn table() -> Vec<(ReportCommand, &'static str, &'static [ReportStatus])> {
    vec![
        (unassign(patrol()), "unassign", ACTIVE),
        (reassign(patrol(), other_patrol()), "reassign", ACTIVE),
        (
            transfer(other_station()),
            "transfer",
            &[S::New, S::Assigned, S::Accepted, S::Responding],
        ),
        (reopen(), "reopen", &[S::Closed, S::Rejected]),
    ]
}

#[test]
fn every_new_command_is_refused_in_every_status_that_does_not_allow_it() {
    for (cmd, action, allowed) in table() {
        for &status in ReportStatus::ALL {
            let outcome = given::<Report>(history(status)).when(cmd.clone());
            if allowed.contains(&status) {
                assert!(!outcome.events().is_empty(), "{action} from {status}");
            } else {
                outcome.then_err(illegal(status, action));
            }
        }
    }
}

#[test]
fn every_new_command_on_a_missing_report_is_not_found() {
    for (cmd, _, _) in table() {
        given::<Report>([])
            .when(cmd)
            .then_err(ReportError::NotFound);
    }
}

// ----- unassign ---------------------------------------------------------------------

#[test]
fn unassign_puts_an_accepted_report_back_in_the_queue_without_a_decline() {
    let report = given::<Report>(history(S::Accepted))
        .when(unassign(patrol()))
        .then_events(vec![withdrawn("Needed at a collision")]);
    assert_eq!(report.status, S::New);
    assert_eq!(report.patrol_id, None);
    assert_eq!(report.assigned_at, None);
    assert_eq!(report.accepted_at, None);
    assert_eq!(
        report.declines, 0,
        "a withdrawal is not the patrol's decline"
    );
}

#[test]
fn unassign_from_a_patrol_that_no_longer_holds_it_is_a_conflict() {
    given::<Report>(history(S::Assigned))
        .when(unassign(other_patrol()))
        .then_err(ReportError::AssignmentChanged);
    assert_eq!(ReportError::AssignmentChanged.kind(), ErrorKind::Conflict);
}

#[test]
fn unassign_needs_a_reason() {
    given::<Report>(history(S::Assigned))
        .when(ReportCommand::Unassign {
            from: patrol(),
            reason: "  ".into(),
            by: staff(),
            at: t(100),
        })
        .then_err(ReportError::Invalid {
            field: "reason",
            reason: ValueError::Blank.to_string(),
        });
}

// ----- reassign ---------------------------------------------------------------------

#[test]
fn reassign_withdraws_and_assigns_in_one_command() {
    let report = given::<Report>(history(S::Responding))
        .when(reassign(patrol(), other_patrol()))
        .then_events(vec![
            withdrawn("Nearer unit"),
            ReportAssigned {
                patrol_id: other_patrol(),
                auto: None,
                at: t(100),
            }
            .into(),
        ]);
    assert_eq!(report.status, S::Assigned);
    assert_eq!(report.patrol_id, Some(other_patrol()));
    assert_eq!(
        report.assigned_at,
        Some(t(100)),
        "the accept clock starts again"
    );
    assert_eq!(report.accepted_at, None);
    assert_eq!(report.responding_at, None);
}

#[test]
fn reassign_to_the_same_patrol_is_a_conflict() {
    given::<Report>(history(S::Assigned))
        .when(reassign(patrol(), patrol()))
        .then_err(ReportError::SamePatrol);
    assert_eq!(ReportError::SamePatrol.kind(), ErrorKind::Conflict);
}

#[test]
fn the_second_of_two_reassignments_from_one_patrol_is_a_conflict() {
    let first = given::<Report>(history(S::Assigned))
        .when(reassign(patrol(), other_patrol()))
        .events();
    let mut after = history(S::Assigned);
    after.extend(first);
    given::<Report>(after)
        .when(reassign(patrol(), PatrolId::new(uuid(22))))
        .then_err(ReportError::AssignmentChanged);
}

// ----- transfer ---------------------------------------------------------------------

#[test]
fn transfer_of_a_new_report_moves_it_to_the_other_station() {
    let report = given::<Report>(history(S::New))
        .when(transfer(other_station()))
        .then_events(vec![ReportTransferred {
            from_station_id: station(),
            station_id: other_station(),
            reason: "Harbour division's area".into(),
            by: staff(),
            at: t(100),
        }
        .into()]);
    assert_eq!(report.station_id, other_station());
    assert_eq!(report.status, S::New);
    assert_eq!(report.transfers, 1);
    // The routing decision as recorded stays: routing is never rewritten.
    assert_eq!(report.routing.map(|r| r.station_id), Some(station()));
}

#[test]
fn transfer_of_an_assigned_report_withdraws_the_assignment_first() {
    let report = given::<Report>(history(S::Accepted))
        .when(transfer(other_station()))
        .then_events(vec![
            withdrawn("Harbour division's area"),
            ReportTransferred {
                from_station_id: station(),
                station_id: other_station(),
                reason: "Harbour division's area".into(),
                by: staff(),
                at: t(100),
            }
            .into(),
        ]);
    assert_eq!(report.status, S::New);
    assert_eq!(report.patrol_id, None);
    assert_eq!(report.station_id, other_station());
}

#[test]
fn transfer_to_the_same_station_is_a_conflict() {
    given::<Report>(history(S::New))
        .when(transfer(station()))
        .then_err(ReportError::SameStation);
    assert_eq!(ReportError::SameStation.kind(), ErrorKind::Conflict);
}

// ----- reopen -----------------------------------------------------------------------

#[test]
fn reopen_puts_a_closed_report_back_in_the_queue_with_its_clocks_cleared() {
    let report = given::<Report>(history(S::Closed))
        .when(reopen())
        .then_events(vec![ReportReopened {
            reason: "More damage found".into(),
            by: staff(),
            at: t(100),
        }
        .into()]);
    assert_eq!(report.status, S::New);
    assert_eq!(report.patrol_id, None);
    assert_eq!(report.assigned_at, None);
    assert_eq!(report.resolved_at, None);
    assert_eq!(report.resolution_notes, None);
    assert_eq!(report.reopens, 1);
    assert_eq!(report.sla_since(SlaKind::Accept), None);
}

#[test]
fn a_reopened_report_can_be_assigned_again_and_its_clock_starts_then() {
    let mut events = history(S::Rejected);
    events.extend(
        given::<Report>(history(S::Rejected))
            .when(reopen())
            .events(),
    );
    let report: Report = fold(&events);
    assert_eq!(report.rejection_public_reason, None);
    let assigned = given::<Report>(events)
        .when(ReportCommand::Assign {
            patrol_id: other_patrol(),
            decision: None,
            at: t(200),
        })
        .events();
    let mut all = history(S::Rejected);
    all.push(
        ReportReopened {
            reason: "More damage found".into(),
            by: staff(),
            at: t(100),
        }
        .into(),
    );
    all.extend(assigned);
    let report: Report = fold(&all);
    assert_eq!(report.sla_since(SlaKind::Accept), Some(t(200)));
}

#[test]
fn reopen_needs_a_reason() {
    given::<Report>(history(S::Closed))
        .when(ReportCommand::Reopen {
            reason: String::new(),
            by: staff(),
            at: t(100),
        })
        .then_err(ReportError::Invalid {
            field: "reason",
            reason: ValueError::Blank.to_string(),
        });
}
