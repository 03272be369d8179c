//! The desk's control over reports (issue 16), without servers: reassign, unassign and
//! transfer keep the patrols in step in one append; reopen; bulk automatic assignment;
//! who may do each, and refusals that append nothing.

use crate::common::World;
use precinct_app::commands::bulk_dispatch::{auto_assign, BulkOrder, LeftReason};
use precinct_app::commands::report::{control, reopen};
use precinct_app::{AppError, Denied, Refusal};
use precinct_domain::ids::{PatrolId, StationId};
use precinct_domain::patrol::{Patrol, PatrolCommand};
use precinct_domain::report::{Report, ReportCommand, ReportError};
use precinct_domain::values::{PatrolStatus, ReportStatus};
use uuid::Uuid;

/// A second AVAILABLE patrol of the station.
async fn second_patrol(w: &World) -> PatrolId {
    let second = PatrolId::new(Uuid::new_v4());
    w.given_patrol(second, w.station, &[w.other_officer.id])
        .await;
    second
}

fn refused_as<E: std::error::Error + PartialEq + 'static>(e: &AppError, expected: &E) -> bool {
    e.domain_error::<E>() == Some(expected)
}

#[tokio::test]
async fn reassign_moves_report_old_and_new_patrol_in_one_append() {
    let w = World::new().await;
    let second = second_patrol(&w).await;
    let report = w.given_assigned(w.patrol).await;
    let mark = w.mark();
    let meta = w.meta(&w.dispatcher);
    let out = control::reassign(
        &w.app,
        &w.dispatcher,
        &meta,
        report,
        w.patrol,
        second,
        "nearer".into(),
    )
    .await
    .expect("reassign");
    assert_eq!(out.report.patrol_id, Some(second));
    assert_eq!(out.report.status, ReportStatus::Assigned);
    let appended = w.log.after(mark);
    let commands: std::collections::BTreeSet<_> =
        appended.iter().map(|e| e.envelope.command_id).collect();
    assert_eq!(commands.len(), 1, "one command, one append");
    let types: Vec<_> = w.appended_since(mark);
    for expected in [
        ("report", "AssignmentWithdrawn"),
        ("report", "ReportAssigned"),
        ("patrol", "PatrolAssignmentClosed"),
        ("patrol", "PatrolAssignmentOpened"),
    ] {
        assert!(
            types.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{types:?}"
        );
    }
    let old: Patrol = w.state(w.patrol.as_uuid()).await;
    let new: Patrol = w.state(second.as_uuid()).await;
    assert_eq!(
        (old.status, old.open_assignments.len(), old.declines),
        (PatrolStatus::Available, 0, 0)
    );
    assert_eq!(
        (new.status, new.open_assignments.len()),
        (PatrolStatus::Busy, 1)
    );
}

#[tokio::test]
async fn reassign_refusals_append_nothing() {
    let w = World::new().await;
    let second = second_patrol(&w).await;
    let elsewhere = PatrolId::new(Uuid::new_v4());
    w.given_patrol(elsewhere, w.other_station, &[]).await;
    let report = w.given_assigned(w.patrol).await;
    w.given::<Patrol>(
        second.as_uuid(),
        PatrolCommand::SetStatus {
            status: PatrolStatus::OffDuty,
            at: chrono::Utc::now(),
        },
    )
    .await;
    let mark = w.mark();
    let reassign = |by, from, to| {
        let w = &w;
        async move {
            control::reassign(&w.app, by, &w.meta(by), report, from, to, "r".into())
                .await
                .expect_err("refused")
        }
    };
    let e = reassign(&w.dispatcher, w.patrol, elsewhere).await;
    assert!(
        matches!(e, AppError::Refused(Refusal::NoSuchPatrol)),
        "{e:?}"
    );
    let e = reassign(&w.dispatcher, w.patrol, second).await;
    assert!(
        matches!(e, AppError::Refused(Refusal::PatrolOffDuty)),
        "{e:?}"
    );
    let e = reassign(&w.dispatcher, w.patrol, w.patrol).await;
    assert!(refused_as(&e, &ReportError::SamePatrol), "{e:?}");
    let e = reassign(&w.dispatcher, second, w.patrol).await;
    assert!(refused_as(&e, &ReportError::AssignmentChanged), "{e:?}");
    let e = reassign(&w.officer, w.patrol, second).await;
    assert!(matches!(e, AppError::Forbidden(Denied::Role)), "{e:?}");
    let e = reassign(&w.other_dispatcher, w.patrol, second).await;
    assert!(matches!(e, AppError::NotFound), "{e:?}");
    assert_eq!(w.mark(), mark, "nothing appended");
}

#[tokio::test]
async fn unassign_returns_the_report_to_the_queue_and_releases_the_patrol() {
    let w = World::new().await;
    let report = w.given_assigned(w.patrol).await;
    let out = control::unassign(
        &w.app,
        &w.supervisor,
        &w.meta(&w.supervisor),
        report,
        w.patrol,
        "needed elsewhere".into(),
    )
    .await
    .expect("unassign");
    assert_eq!(
        (out.report.status, out.report.patrol_id),
        (ReportStatus::New, None)
    );
    let patrol: Patrol = w.state(w.patrol.as_uuid()).await;
    assert_eq!(
        (patrol.status, patrol.declines),
        (PatrolStatus::Available, 0)
    );
}

#[tokio::test]
async fn transfer_withdraws_the_assignment_and_moves_the_report() {
    let w = World::new().await;
    let report = w.given_assigned(w.patrol).await;
    let facts = w.facts();
    let mark = w.mark();
    let e = control::transfer(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        report,
        StationId::new(Uuid::new_v4()),
        "r".into(),
        &facts,
    )
    .await
    .expect_err("unknown station");
    assert!(
        matches!(e, AppError::Refused(Refusal::NoSuchStation)),
        "{e:?}"
    );
    let e = control::transfer(
        &w.app,
        &w.other_dispatcher,
        &w.meta(&w.other_dispatcher),
        report,
        w.other_station,
        "r".into(),
        &facts,
    )
    .await
    .expect_err("not theirs");
    assert!(matches!(e, AppError::NotFound), "{e:?}");
    assert_eq!(w.mark(), mark, "nothing appended");

    let out = control::transfer(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        report,
        w.other_station,
        "their area".into(),
        &facts,
    )
    .await
    .expect("transfer");
    assert_eq!(out.station, w.other_station);
    let r: Report = w.state(report.as_uuid()).await;
    assert_eq!(
        (r.status, r.patrol_id, r.station_id),
        (ReportStatus::New, None, w.other_station)
    );
    let patrol: Patrol = w.state(w.patrol.as_uuid()).await;
    assert!(patrol.open_assignments.is_empty());
    // The old desk no longer sees it; the new one works it.
    let e = control::unassign(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        report,
        w.patrol,
        "r".into(),
    )
    .await
    .expect_err("gone");
    assert!(matches!(e, AppError::NotFound), "{e:?}");
}

#[tokio::test]
async fn only_a_reviewer_reopens_and_only_a_closed_or_rejected_report() {
    let w = World::new().await;
    let report = w.given_report().await;
    let e = reopen::reopen(
        &w.app,
        &w.supervisor,
        &w.meta(&w.supervisor),
        report,
        "r".into(),
    )
    .await
    .expect_err("open");
    assert!(
        refused_as(
            &e,
            &ReportError::IllegalTransition {
                from: ReportStatus::New,
                action: "reopen"
            }
        ),
        "{e:?}"
    );
    w.given_steps(
        report,
        vec![ReportCommand::RejectInvalid {
            justification: "prank".into(),
            public_reason: None,
            by: w.dispatcher.id,
            at: chrono::Utc::now(),
        }],
    )
    .await;
    let e = reopen::reopen(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        report,
        "r".into(),
    )
    .await
    .expect_err("a dispatcher");
    assert!(matches!(e, AppError::Forbidden(Denied::Role)), "{e:?}");
    let out = reopen::reopen(
        &w.app,
        &w.supervisor,
        &w.meta(&w.supervisor),
        report,
        "called back".into(),
    )
    .await
    .expect("reopen");
    assert_eq!(out.report.status, ReportStatus::New);
}

#[tokio::test]
async fn bulk_assigns_one_report_per_available_patrol_then_stops() {
    let w = World::new().await;
    second_patrol(&w).await;
    let reports = [
        w.given_report().await,
        w.given_report().await,
        w.given_report().await,
    ];
    let facts = w.facts();
    let order = BulkOrder {
        station: w.station,
        reports: None,
        limit: None,
    };
    let out = auto_assign(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        order.clone(),
        &facts,
        &facts,
    )
    .await
    .expect("bulk");
    assert_eq!(out.assigned.len(), 2, "{out:?}");
    assert_eq!(out.assigned[0].report, reports[0], "oldest first");
    assert!(out.assigned.iter().all(|a| a.decision.is_some()));
    assert_ne!(out.assigned[0].patrol, out.assigned[1].patrol);
    assert_eq!(out.left.len(), 1);
    assert_eq!(out.left[0].reason, LeftReason::NoAvailablePatrol);
    // A second run finds no patrol; a named assigned report is left as not NEW.
    let named = BulkOrder {
        reports: Some(vec![reports[0], reports[2]]),
        ..order
    };
    let again = auto_assign(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        named,
        &facts,
        &facts,
    )
    .await
    .expect("bulk again");
    assert!(again.assigned.is_empty());
    let reasons: Vec<_> = again.left.iter().map(|l| (l.report, l.reason)).collect();
    assert!(
        reasons.contains(&(reports[0], LeftReason::NotNew(ReportStatus::Assigned))),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&(reports[2], LeftReason::NoAvailablePatrol)),
        "{reasons:?}"
    );
    // Another station's desk may not run it.
    let e = auto_assign(
        &w.app,
        &w.other_dispatcher,
        &w.meta(&w.other_dispatcher),
        BulkOrder {
            station: w.station,
            reports: None,
            limit: None,
        },
        &facts,
        &facts,
    )
    .await
    .expect_err("another station");
    assert!(matches!(e, AppError::NotFound), "{e:?}");
}

/// A station that exists but takes no reports (deactivated: off the map routing decides
/// on) is no transfer target (mutation testing: only unknown stations were tried).
#[tokio::test]
async fn no_report_is_transferred_to_a_deactivated_station() {
    use precinct_domain::station::{OpenReports, Station, StationCommand};
    let w = World::new().await;
    let report = w.given_report().await;
    let closed = StationId::new(Uuid::new_v4());
    w.given_station(closed, 7.2, 125.7).await;
    w.given::<Station>(
        closed.as_uuid(),
        StationCommand::Deactivate {
            open_reports: OpenReports {
                ids: vec![],
                total: 0,
            },
            at: chrono::Utc::now(),
        },
    )
    .await;
    let mark = w.mark();
    let e = control::transfer(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        report,
        closed,
        "their area".into(),
        &w.facts(),
    )
    .await
    .expect_err("a station that takes no reports");
    assert!(
        matches!(e, AppError::Refused(Refusal::StationTakesNoReports)),
        "{e:?}"
    );
    assert_eq!(w.mark(), mark, "nothing appended");
}
