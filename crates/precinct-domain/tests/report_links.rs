//! Links between reports (issue 16 item 4, ADR 0020): a duplicate closed into its
//! primary, `RELATED` links, unlinking — every transition and every refusal, as
//! given/when/then on each report's side.

mod common;

use common::{given, t, uuid};
use precinct_domain::ids::*;
use precinct_domain::report::*;
use precinct_domain::routing::{RoutingDecision, RoutingRule};
use precinct_domain::values::*;
use precinct_domain::{fold, DomainError, ErrorKind};

use ReportStatus as S;

fn me() -> ReportId {
    ReportId::new(uuid(1))
}
fn primary() -> ReportId {
    ReportId::new(uuid(2))
}
fn third() -> ReportId {
    ReportId::new(uuid(3))
}
fn patrol() -> PatrolId {
    PatrolId::new(uuid(20))
}
fn staff() -> AccountId {
    AccountId::new(uuid(30))
}

fn submitted() -> ReportEvent {
    let station = StationId::new(uuid(10));
    ReportSubmitted {
        report_id: me(),
        title: "Shop break-in".into(),
        crime_types: vec!["Burglary".into()],
        crime_type_codes: vec![],
        location: ReportLocation::new(GeoPoint::parse(7.07, 125.61).expect("point"), None, None),
        occurred_at: None,
        media_urls: vec![],
        reporter: Reporter::User {
            account_id: AccountId::new(uuid(31)),
        },
        station_id: station,
        routing: RoutingDecision {
            station_id: station,
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
                justification: "Prank".into(),
                by: staff(),
                at: t(5),
                public_reason: None,
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

fn with(
    mut events: Vec<ReportEvent>,
    more: impl IntoIterator<Item = ReportEvent>,
) -> Vec<ReportEvent> {
    events.extend(more);
    events
}

fn mark(primary_id: ReportId) -> ReportCommand {
    ReportCommand::MarkDuplicate {
        primary_id,
        by: staff(),
        at: t(100),
    }
}

fn attach(duplicate_id: ReportId) -> ReportCommand {
    ReportCommand::AttachDuplicate {
        duplicate_id,
        by: staff(),
        at: t(100),
    }
}

fn link(other_id: ReportId) -> ReportCommand {
    ReportCommand::Link {
        other_id,
        by: staff(),
        at: t(100),
    }
}

fn unlink(other_id: ReportId) -> ReportCommand {
    ReportCommand::Unlink {
        other_id,
        by: staff(),
        at: t(100),
    }
}

fn marked(primary_id: ReportId) -> ReportEvent {
    ReportMarkedDuplicate {
        primary_id,
        by: staff(),
        at: t(50),
    }
    .into()
}

fn attached(duplicate_id: ReportId) -> ReportEvent {
    DuplicateAttached {
        duplicate_id,
        by: staff(),
        at: t(50),
    }
    .into()
}

fn linked(other_id: ReportId) -> ReportEvent {
    ReportLinked {
        other_id,
        by: staff(),
        at: t(50),
    }
    .into()
}

fn self_link() -> ReportError {
    ReportError::Invalid {
        field: "other_id",
        reason: "a report cannot be linked to itself".into(),
    }
}

// ----- marking a duplicate ------------------------------------------------------------

#[test]
fn a_new_report_marked_as_a_duplicate_is_closed_into_its_primary() {
    let report = given::<Report>(history(S::New))
        .when(mark(primary()))
        .then_events(vec![ReportMarkedDuplicate {
            primary_id: primary(),
            by: staff(),
            at: t(100),
        }
        .into()]);
    assert_eq!(report.status, S::Closed);
    assert_eq!(report.duplicate_of, Some(primary()));
}

#[test]
fn an_assigned_duplicate_has_its_assignment_withdrawn_first_in_the_same_command() {
    for status in [S::Assigned, S::Accepted, S::Responding] {
        let report = given::<Report>(history(status))
            .when(mark(primary()))
            .then_events(vec![
                AssignmentWithdrawn {
                    patrol_id: patrol(),
                    reason: format!("closed as a duplicate of report {}", primary()),
                    by: Some(staff()),
                    at: t(100),
                }
                .into(),
                ReportMarkedDuplicate {
                    primary_id: primary(),
                    by: staff(),
                    at: t(100),
                }
                .into(),
            ]);
        assert_eq!(report.status, S::Closed, "from {status}");
        assert_eq!(report.sla_since(SlaKind::Accept), None);
        assert_eq!(report.sla_since(SlaKind::Respond), None);
    }
}

#[test]
fn only_an_open_report_is_marked_as_a_duplicate() {
    for status in [S::Resolved, S::Closed, S::Rejected, S::Withdrawn] {
        given::<Report>(history(status))
            .when(mark(primary()))
            .then_err(ReportError::IllegalTransition {
                from: status,
                action: "mark as a duplicate",
            });
    }
}

#[test]
fn a_report_is_not_a_duplicate_of_itself() {
    given::<Report>(history(S::New))
        .when(mark(me()))
        .then_err(self_link());
    assert_eq!(self_link().kind(), ErrorKind::Invalid);
    given::<Report>(history(S::New))
        .when(attach(me()))
        .then_err(self_link());
    given::<Report>(history(S::New))
        .when(link(me()))
        .then_err(self_link());
}

#[test]
fn a_duplicate_marked_again_is_already_linked_or_a_duplicate_of_another() {
    let dup = with(history(S::New), [marked(primary())]);
    given::<Report>(dup.clone())
        .when(mark(primary()))
        .then_err(ReportError::AlreadyLinked { other: primary() });
    given::<Report>(dup)
        .when(mark(third()))
        .then_err(ReportError::IsDuplicate { primary: primary() });
}

#[test]
fn a_report_related_to_the_primary_is_already_linked_to_it() {
    given::<Report>(with(history(S::New), [linked(primary())]))
        .when(mark(primary()))
        .then_err(ReportError::AlreadyLinked { other: primary() });
}

#[test]
fn a_report_with_duplicates_of_its_own_cannot_become_a_duplicate_and_they_are_named() {
    let err = given::<Report>(with(history(S::New), [attached(third())]))
        .when(mark(primary()))
        .err();
    assert_eq!(
        err,
        ReportError::HasDuplicates {
            duplicates: vec![third()]
        }
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains(&third().to_string()), "{err}");
}

#[test]
fn a_duplicate_is_not_reopened_but_unlinked() {
    given::<Report>(with(history(S::New), [marked(primary())]))
        .when(ReportCommand::Reopen {
            reason: "Not the same".into(),
            by: staff(),
            at: t(100),
        })
        .then_err(ReportError::IsDuplicate { primary: primary() });
}

// ----- the primary's side -------------------------------------------------------------

#[test]
fn the_primary_records_its_duplicate_whatever_its_status_but_withdrawn() {
    for &status in ReportStatus::ALL {
        let outcome = given::<Report>(history(status)).when(attach(third()));
        if status == S::Withdrawn {
            outcome.then_err(ReportError::IllegalTransition {
                from: status,
                action: "attach a duplicate to",
            });
        } else {
            let report = outcome.then_events(vec![DuplicateAttached {
                duplicate_id: third(),
                by: staff(),
                at: t(100),
            }
            .into()]);
            assert_eq!(report.duplicates, vec![third()]);
            assert_eq!(report.status, status, "the primary's status stays");
        }
    }
}

#[test]
fn a_duplicate_is_never_a_primary_so_no_cycle_forms() {
    let err = given::<Report>(with(history(S::New), [marked(primary())]))
        .when(attach(third()))
        .err();
    assert_eq!(err, ReportError::IsDuplicate { primary: primary() });
    assert_eq!(err.kind(), ErrorKind::Conflict);
}

#[test]
fn a_duplicate_attached_twice_is_already_linked() {
    given::<Report>(with(history(S::New), [attached(third())]))
        .when(attach(third()))
        .then_err(ReportError::AlreadyLinked { other: third() });
}

// ----- related ------------------------------------------------------------------------

#[test]
fn related_links_change_no_status_and_are_refused_twice() {
    for &status in ReportStatus::ALL {
        let outcome = given::<Report>(history(status)).when(link(third()));
        if status == S::Withdrawn {
            outcome.then_err(ReportError::IllegalTransition {
                from: status,
                action: "link",
            });
            continue;
        }
        let report = outcome.then_events(vec![ReportLinked {
            other_id: third(),
            by: staff(),
            at: t(100),
        }
        .into()]);
        assert_eq!(report.related, vec![third()]);
        assert_eq!(report.status, status);
    }
    given::<Report>(with(history(S::New), [linked(third())]))
        .when(link(third()))
        .then_err(ReportError::AlreadyLinked { other: third() });
    // A duplicate and its primary are linked already.
    given::<Report>(with(history(S::New), [marked(primary())]))
        .when(link(primary()))
        .then_err(ReportError::AlreadyLinked { other: primary() });
    given::<Report>(with(history(S::New), [attached(third())]))
        .when(link(third()))
        .then_err(ReportError::AlreadyLinked { other: third() });
}

// ----- unlinking ----------------------------------------------------------------------

#[test]
fn an_unlinked_duplicate_goes_back_to_the_queue_with_its_clocks_cleared() {
    let dup = with(
        history(S::Accepted),
        given::<Report>(history(S::Accepted))
            .when(mark(primary()))
            .events(),
    );
    let report = given::<Report>(dup.clone())
        .when(unlink(primary()))
        .then_events(vec![DuplicateUnmarked {
            primary_id: primary(),
            by: staff(),
            at: t(100),
        }
        .into()]);
    assert_eq!(report.status, S::New);
    assert_eq!(report.duplicate_of, None);
    assert_eq!(report.patrol_id, None);
    assert_eq!(report.assigned_at, None);
    assert_eq!(report.accepted_at, None);
    // It can be assigned again; the accept clock starts then.
    let assigned = given::<Report>(with(
        dup.clone(),
        given::<Report>(dup).when(unlink(primary())).events(),
    ))
    .when(ReportCommand::Assign {
        patrol_id: patrol(),
        decision: None,
        at: t(200),
    })
    .events();
    assert_eq!(assigned.len(), 1);
}

#[test]
fn the_primary_unlinked_from_its_duplicate_forgets_it() {
    let report = given::<Report>(with(history(S::Responding), [attached(third())]))
        .when(unlink(third()))
        .then_events(vec![DuplicateDetached {
            duplicate_id: third(),
            by: staff(),
            at: t(100),
        }
        .into()]);
    assert!(report.duplicates.is_empty());
    assert_eq!(report.status, S::Responding);
}

#[test]
fn a_related_link_is_removed() {
    let report = given::<Report>(with(history(S::New), [linked(third())]))
        .when(unlink(third()))
        .then_events(vec![ReportUnlinked {
            other_id: third(),
            by: staff(),
            at: t(100),
        }
        .into()]);
    assert!(report.related.is_empty());
}

#[test]
fn unlinking_reports_that_are_not_linked_is_a_conflict() {
    let err = given::<Report>(history(S::New)).when(unlink(third())).err();
    assert_eq!(err, ReportError::NotLinked { other: third() });
    assert_eq!(err.kind(), ErrorKind::Conflict);
}

#[test]
fn every_link_command_on_a_missing_report_is_not_found() {
    for cmd in [
        mark(primary()),
        attach(third()),
        link(third()),
        unlink(third()),
    ] {
        given::<Report>([])
            .when(cmd)
            .then_err(ReportError::NotFound);
    }
}

#[test]
fn a_report_at_its_history_cap_takes_no_new_link() {
    let mut events = history(S::New);
    while fold::<Report>(&events).events < MAX_REPORT_EVENTS {
        events.push(
            ReportTriaged {
                priority: Priority::High,
                at: t(1),
            }
            .into(),
        );
    }
    for cmd in [
        mark(primary()),
        attach(third()),
        link(third()),
        unlink(third()),
    ] {
        given::<Report>(events.clone())
            .when(cmd)
            .then_err(ReportError::HistoryFull {
                max: MAX_REPORT_EVENTS,
            });
    }
}
