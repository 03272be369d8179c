//! Dispatch, given/when/then without servers: assigning a report opens the patrol's
//! assignment in the same append; automatic assignment ranks the station's AVAILABLE
//! patrols on fresh workloads; who may dispatch.

use crate::common::{events, Behind, World};
use precinct_app::commands::dispatch::{dispatch, Dispatch};
use precinct_app::{AppError, Denied, Refusal, Unavailable};
use precinct_domain::ids::PatrolId;
use precinct_domain::patrol::{Patrol, PatrolCommand, PatrolEvent};
use precinct_domain::report::{Report, ReportError, ReportEvent};
use precinct_domain::values::{PatrolStatus, ReportStatus};
use uuid::Uuid;

#[tokio::test]
async fn dispatch_assigns_the_report_and_opens_the_patrols_assignment_in_one_append() {
    let w = World::new().await;
    let report = w.given_report().await;
    let mark = w.mark();

    let out = dispatch(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        Dispatch {
            report,
            patrol: Some(w.patrol),
        },
        &w.facts(),
    )
    .await
    .expect("dispatch");

    assert_eq!(out.patrol, w.patrol);
    assert!(out.decision.is_none());
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("report", "ReportAssigned"),
            ("patrol", "PatrolAssignmentOpened"),
            ("patrol", "PatrolStatusChanged"),
        ])
    );
    assert_eq!(out.position, w.mark(), "the answer names the last event");
    let patrol: Patrol = w.state(w.patrol.as_uuid()).await;
    assert_eq!(patrol.status, PatrolStatus::Busy);
    let r: Report = w.state(report.as_uuid()).await;
    assert_eq!(
        (r.status, r.patrol_id),
        (ReportStatus::Assigned, Some(w.patrol))
    );
}

#[tokio::test]
async fn automatic_assignment_takes_the_least_busy_available_patrol_and_records_the_ranking() {
    let w = World::new().await;
    let second = PatrolId::new(Uuid::new_v4());
    w.given_patrol(second, w.station, &[w.other_officer.id])
        .await;
    // The first patrol already works a report: the second one is less busy.
    w.given_assigned(w.patrol).await;
    let report = w.given_report().await;
    let mark = w.mark();

    let out = dispatch(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        Dispatch {
            report,
            patrol: None,
        },
        &w.facts(),
    )
    .await
    .expect("automatic dispatch");

    assert_eq!(out.patrol, second);
    let decision = out.decision.expect("the ranking");
    assert_eq!(decision.patrol_id, second);
    assert!(
        decision.excluded.iter().any(|e| e.patrol_id == w.patrol),
        "the BUSY patrol is excluded: {decision:?}"
    );
    match w.events_since::<Report>(report.as_uuid(), mark).as_slice() {
        [ReportEvent::ReportAssigned(a)] => {
            assert_eq!(a.patrol_id, second);
            assert_eq!(a.auto.as_ref().map(|d| d.patrol_id), Some(second));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        w.events_since::<Patrol>(second.as_uuid(), mark).as_slice(),
        [PatrolEvent::PatrolAssignmentOpened(o), PatrolEvent::PatrolStatusChanged(_)] if o.report_id == report
    ));
}

#[tokio::test]
async fn automatic_assignment_waits_for_workloads_as_fresh_as_the_report() {
    let w = World::new().await;
    let report = w.given_report().await;
    let mark = w.mark();
    let err = dispatch(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        Dispatch {
            report,
            patrol: None,
        },
        &w.facts().behind(Behind::Workloads),
    )
    .await
    .expect_err("workloads behind");
    assert!(
        matches!(err, AppError::Unavailable(Unavailable::Workloads)),
        "{err:?}"
    );
    assert_eq!(w.mark(), mark, "nothing appended");
}

#[tokio::test]
async fn automatic_assignment_without_an_available_patrol_is_refused() {
    let w = World::new().await;
    w.given::<Patrol>(
        w.patrol.as_uuid(),
        PatrolCommand::SetStatus {
            status: PatrolStatus::OffDuty,
            at: chrono::Utc::now(),
        },
    )
    .await;
    let report = w.given_report().await;
    let err = dispatch(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        Dispatch {
            report,
            patrol: None,
        },
        &w.facts(),
    )
    .await
    .expect_err("nobody available");
    assert!(
        matches!(err, AppError::Refused(Refusal::NoAvailablePatrol)),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_off_duty_patrol_or_one_of_another_station_cannot_be_chosen() {
    let w = World::new().await;
    let report = w.given_report().await;
    let elsewhere = PatrolId::new(Uuid::new_v4());
    w.given_patrol(elsewhere, w.other_station, &[]).await;
    let err = dispatch(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        Dispatch {
            report,
            patrol: Some(elsewhere),
        },
        &w.facts(),
    )
    .await
    .expect_err("another station's patrol");
    assert!(
        matches!(err, AppError::Refused(Refusal::NoSuchPatrol)),
        "{err:?}"
    );

    w.given::<Patrol>(
        w.patrol.as_uuid(),
        PatrolCommand::SetStatus {
            status: PatrolStatus::OffDuty,
            at: chrono::Utc::now(),
        },
    )
    .await;
    let mark = w.mark();
    let err = dispatch(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        Dispatch {
            report,
            patrol: Some(w.patrol),
        },
        &w.facts(),
    )
    .await
    .expect_err("off duty");
    assert!(
        matches!(err, AppError::Refused(Refusal::PatrolOffDuty)),
        "{err:?}"
    );
    assert_eq!(w.mark(), mark);
}

#[tokio::test]
async fn a_busy_patrol_may_be_chosen_by_the_desk() {
    let w = World::new().await;
    w.given_assigned(w.patrol).await;
    let report = w.given_report().await;
    let out = dispatch(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        Dispatch {
            report,
            patrol: Some(w.patrol),
        },
        &w.facts(),
    )
    .await
    .expect("a dispatcher's override");
    assert_eq!(out.patrol, w.patrol);
    let patrol: Patrol = w.state(w.patrol.as_uuid()).await;
    assert_eq!(patrol.open_assignments.len(), 2);
}

#[tokio::test]
async fn only_the_desk_of_the_reports_station_dispatches() {
    let w = World::new().await;
    let report = w.given_report().await;
    let order = Dispatch {
        report,
        patrol: Some(w.patrol),
    };
    for (by, expected) in [
        (w.citizen, "role"),
        (w.officer, "role"),
        (w.other_dispatcher, "not found"),
    ] {
        let err = dispatch(&w.app, &by, &w.meta(&by), order, &w.facts())
            .await
            .expect_err("refused");
        match expected {
            "role" => assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}"),
            _ => assert!(matches!(err, AppError::NotFound), "{err:?}"),
        }
    }
    // Automatic assignment refuses the other station's desk before looking at workloads.
    let err = dispatch(
        &w.app,
        &w.other_dispatcher,
        &w.meta(&w.other_dispatcher),
        Dispatch {
            report,
            patrol: None,
        },
        &w.facts().behind(Behind::Workloads),
    )
    .await
    .expect_err("refused");
    assert!(matches!(err, AppError::NotFound), "{err:?}");
    // A report that does not exist is not found either.
    let err = dispatch(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        Dispatch {
            report: precinct_domain::ids::ReportId::new(Uuid::new_v4()),
            patrol: Some(w.patrol),
        },
        &w.facts(),
    )
    .await
    .expect_err("no such report");
    assert!(matches!(err, AppError::NotFound), "{err:?}");
}

#[tokio::test]
async fn a_second_dispatch_is_the_domains_conflict_and_a_replay_the_original_outcome() {
    let w = World::new().await;
    let report = w.given_report().await;
    let order = Dispatch {
        report,
        patrol: Some(w.patrol),
    };
    let meta = w.meta(&w.dispatcher);
    let first = dispatch(&w.app, &w.dispatcher, &meta, order, &w.facts())
        .await
        .expect("first");
    let head = w.mark();

    // The same command again (an idempotent retry): its original outcome, nothing new.
    let replay = dispatch(&w.app, &w.dispatcher, &meta, order, &w.facts())
        .await
        .expect("replay");
    assert_eq!(
        (replay.patrol, replay.position),
        (first.patrol, first.position)
    );
    assert_eq!(w.mark(), head);

    // Another command: the report is ASSIGNED already.
    let err = dispatch(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        order,
        &w.facts(),
    )
    .await
    .expect_err("second dispatch");
    assert_eq!(
        err.domain_error::<ReportError>(),
        Some(&ReportError::IllegalTransition {
            from: ReportStatus::Assigned,
            action: "assign"
        }),
        "{err:?}"
    );
    assert_eq!(w.mark(), head);
}

/// Mutation testing found the bulk run's own rules untested here (the e2e suite covers
/// them through HTTP): only the desk runs it; a report that is not NEW, or is not one
/// of the station's, is left with its reason; the NEW one is assigned.
#[tokio::test]
async fn a_bulk_run_is_the_desks_and_leaves_what_it_may_not_assign_with_the_reason() {
    use precinct_app::commands::bulk_dispatch::{auto_assign, BulkOrder, LeftReason};
    use precinct_domain::ids::ReportId;
    let w = World::new().await;
    let fresh = w.given_report().await;
    let taken = w.given_assigned(w.patrol).await;
    let unknown = ReportId::new(Uuid::new_v4());
    let second = PatrolId::new(Uuid::new_v4());
    w.given_patrol(second, w.station, &[w.other_officer.id])
        .await;
    let order = || BulkOrder {
        station: w.station,
        reports: Some(vec![taken, unknown, fresh]),
        limit: None,
    };
    for by in [w.citizen, w.officer] {
        let mark = w.mark();
        let err = auto_assign(&w.app, &by, &w.meta(&by), order(), &w.facts(), &w.facts())
            .await
            .expect_err("not the desk");
        assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}");
        assert_eq!(w.mark(), mark, "nothing appended");
    }
    let out = auto_assign(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        order(),
        &w.facts(),
        &w.facts(),
    )
    .await
    .expect("bulk run");
    let assigned: Vec<_> = out.assigned.iter().map(|a| (a.report, a.patrol)).collect();
    assert_eq!(assigned, vec![(fresh, second)], "the idle patrol takes it");
    let left: Vec<_> = out.left.iter().map(|l| (l.report, l.reason)).collect();
    assert_eq!(
        left,
        vec![
            (taken, LeftReason::NotNew(ReportStatus::Assigned)),
            (unknown, LeftReason::NotAtStation),
        ]
    );
}
