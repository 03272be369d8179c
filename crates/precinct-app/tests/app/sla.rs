//! The SLA worker's commands at the application layer (ADR 0035): a warning recorded
//! once per clock; an unaccepted assignment escalated after its breach — requeued, or
//! reassigned to another patrol (never the one it leaves, never one that went off duty
//! since the workload snapshot was taken) — in one append over the report and both
//! patrols, and not before it is due.

use std::time::Duration;

use crate::common::World;
use chrono::Utc;
use precinct_app::commands::sla::{escalate_unaccepted, record_breach, record_warning, Escalated};
use precinct_domain::dispatch::PatrolSnapshot;
use precinct_domain::ids::{PatrolId, ReportId};
use precinct_domain::patrol::{Patrol, PatrolCommand};
use precinct_domain::report::{Report, ReportCommand};
use precinct_domain::values::{EscalationAction, PatrolStatus, ReportStatus, SlaKind};
use uuid::Uuid;

const DUE: Duration = Duration::from_millis(1);
const LATER: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_warning_is_recorded_once_per_clock_and_not_once_the_clock_stopped() {
    let w = World::new().await;
    let report = w.given_assigned(w.patrol).await.as_uuid();
    // Not yet at 80 % of an hour: nothing to record.
    let mark = w.mark();
    assert!(!record_warning(&w.app, report, SlaKind::Accept, LATER, 80)
        .await
        .expect("not due"));
    assert_eq!(w.mark(), mark);
    // Past 80 % of 10 ms: recorded, once.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let sla = Duration::from_millis(10);
    assert!(record_warning(&w.app, report, SlaKind::Accept, sla, 80)
        .await
        .expect("warn"));
    assert!(!record_warning(&w.app, report, SlaKind::Accept, sla, 80)
        .await
        .expect("again"));
    assert_eq!(
        w.appended_since(mark),
        crate::common::events(&[("report", "SlaWarned")])
    );
    // Accepted: the accept clock stopped, there is nothing to warn about.
    let accepted = w.given_assigned(w.patrol).await;
    w.given::<Report>(accepted.as_uuid(), ReportCommand::Accept { at: Utc::now() })
        .await;
    let mark = w.mark();
    assert!(
        !record_warning(&w.app, accepted.as_uuid(), SlaKind::Accept, DUE, 80)
            .await
            .expect("stopped")
    );
    assert_eq!(w.mark(), mark);
}

/// A second patrol of the station, and the workload snapshot of the station's patrols.
async fn second_patrol(w: &World) -> (PatrolId, Vec<PatrolSnapshot>) {
    let other = PatrolId::new(Uuid::new_v4());
    w.given_patrol(other, w.station, &[w.other_officer.id])
        .await;
    let mut snapshot = Vec::new();
    for p in [w.patrol, other] {
        snapshot.push(w.state::<Patrol>(p.as_uuid()).await.snapshot(None));
    }
    (other, snapshot)
}

/// A report assigned to the world's patrol whose accept breach is recorded.
async fn breached(w: &World) -> ReportId {
    let report = w.given_assigned(w.patrol).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(
        record_breach(&w.app, report.as_uuid(), SlaKind::Accept, DUE)
            .await
            .expect("breach")
    );
    report
}

#[tokio::test]
async fn an_unaccepted_assignment_is_reassigned_to_another_patrol_once_it_is_due() {
    let w = World::new().await;
    let (other, snapshot) = second_patrol(&w).await;
    let report = breached(&w).await;
    let id = report.as_uuid();
    // Not yet due: nothing happens.
    let mark = w.mark();
    let early = escalate_unaccepted(&w.app, id, EscalationAction::Reassign, LATER, &snapshot)
        .await
        .expect("early");
    assert_eq!(early, Escalated::Nothing);
    assert_eq!(w.mark(), mark);
    // Due: to the other patrol (the one it had is a candidate too, and the least
    // recently assigned: it is still left out), in one append.
    let out = escalate_unaccepted(
        &w.app,
        id,
        EscalationAction::Reassign,
        Duration::ZERO,
        &snapshot,
    )
    .await
    .expect("escalate");
    assert_eq!(out, Escalated::Reassigned(other));
    assert_eq!(
        w.appended_since(mark),
        crate::common::events(&[
            ("report", "SlaEscalated"),
            ("report", "AssignmentWithdrawn"),
            ("report", "ReportAssigned"),
            ("patrol", "PatrolAssignmentClosed"),
            ("patrol", "PatrolStatusChanged"),
            ("patrol", "PatrolAssignmentOpened"),
            ("patrol", "PatrolStatusChanged"),
        ])
    );
    let state = w.state::<Report>(id).await;
    assert_eq!(state.patrol_id, Some(other));
    assert!(!w
        .state::<Patrol>(w.patrol.as_uuid())
        .await
        .open_assignments
        .contains(&report));
    assert!(w
        .state::<Patrol>(other.as_uuid())
        .await
        .open_assignments
        .contains(&report));
    // The new assignment's clock has not breached: a second scan does nothing.
    let mark = w.mark();
    let again = escalate_unaccepted(
        &w.app,
        id,
        EscalationAction::Reassign,
        Duration::ZERO,
        &snapshot,
    )
    .await
    .expect("again");
    assert_eq!(again, Escalated::Nothing);
    assert_eq!(w.mark(), mark);
}

#[tokio::test]
async fn a_patrol_that_went_off_duty_since_the_snapshot_is_not_given_the_assignment() {
    let w = World::new().await;
    let (other, snapshot) = second_patrol(&w).await;
    let report = breached(&w).await;
    w.given::<Patrol>(
        other.as_uuid(),
        PatrolCommand::SetStatus {
            status: PatrolStatus::OffDuty,
            at: Utc::now(),
        },
    )
    .await;
    let mark = w.mark();
    let out = escalate_unaccepted(
        &w.app,
        report.as_uuid(),
        EscalationAction::Reassign,
        Duration::ZERO,
        &snapshot,
    )
    .await
    .expect("escalate");
    assert_eq!(out, Escalated::Nothing, "the next scan decides again");
    assert_eq!(w.mark(), mark);
    assert_eq!(
        w.state::<Report>(report.as_uuid()).await.patrol_id,
        Some(w.patrol)
    );
}

#[tokio::test]
async fn requeued_the_report_waits_for_the_desk_and_the_patrol_is_freed() {
    let w = World::new().await;
    let report = breached(&w).await;
    let out = escalate_unaccepted(
        &w.app,
        report.as_uuid(),
        EscalationAction::Requeue,
        Duration::ZERO,
        &[],
    )
    .await
    .expect("escalate");
    assert_eq!(out, Escalated::Requeued);
    let state = w.state::<Report>(report.as_uuid()).await;
    assert_eq!((state.status, state.patrol_id), (ReportStatus::New, None));
    assert!(w
        .state::<Patrol>(w.patrol.as_uuid())
        .await
        .open_assignments
        .is_empty());
}
