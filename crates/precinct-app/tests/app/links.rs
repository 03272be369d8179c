//! Links between reports (issue 16 item 4), without servers: a duplicate closes into its
//! primary with its patrol's assignment withdrawn, in one append; the other report of a
//! link is one the caller works (an unknown one and another station's are the same
//! refusal); unlinking; refusals append nothing.

use crate::common::World;
use precinct_app::commands::report::link::{self, LinkKind};
use precinct_app::{AppError, Denied, Refusal};
use precinct_domain::ids::ReportId;
use precinct_domain::patrol::Patrol;
use precinct_domain::report::{Report, ReportCommand, ReportError};
use precinct_domain::values::{PatrolStatus, ReportStatus};
use uuid::Uuid;

#[tokio::test]
async fn an_assigned_duplicate_closes_with_its_patrol_and_primary_in_one_append() {
    let w = World::new().await;
    let primary = w.given_report().await;
    let dup = w.given_assigned(w.patrol).await;
    let mark = w.mark();
    let out = link::link(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        dup,
        primary,
        LinkKind::Duplicate,
    )
    .await
    .expect("link");
    assert_eq!(out.report.status, ReportStatus::Closed);
    assert_eq!(out.report.duplicate_of, Some(primary));
    let commands: std::collections::BTreeSet<_> = w
        .log
        .after(mark)
        .iter()
        .map(|e| e.envelope.command_id)
        .collect();
    assert_eq!(commands.len(), 1, "one command, one append");
    let types = w.appended_since(mark);
    for expected in [
        ("report", "AssignmentWithdrawn"),
        ("report", "ReportMarkedDuplicate"),
        ("report", "DuplicateAttached"),
        ("patrol", "PatrolAssignmentClosed"),
    ] {
        assert!(
            types.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{types:?}"
        );
    }
    let patrol: Patrol = w.state(w.patrol.as_uuid()).await;
    assert_eq!(
        (
            patrol.status,
            patrol.open_assignments.len(),
            patrol.declines
        ),
        (PatrolStatus::Available, 0, 0),
        "the patrol let go of it; not a decline"
    );
    let primary: Report = w.state(primary.as_uuid()).await;
    assert_eq!(primary.duplicates, vec![dup]);
}

#[tokio::test]
async fn the_other_report_must_be_one_the_caller_works_and_refusals_append_nothing() {
    let w = World::new().await;
    let report = w.given_report().await;
    let theirs = w.given_report().await;
    w.given_steps(
        theirs,
        vec![ReportCommand::Transfer {
            station_id: w.other_station,
            reason: "their area".into(),
            by: w.admin.id,
            at: chrono::Utc::now(),
        }],
    )
    .await;
    let mark = w.mark();
    let attempt = |by, id, other, kind| {
        let w = &w;
        async move {
            link::link(&w.app, by, &w.meta(by), id, other, kind)
                .await
                .expect_err("refused")
        }
    };
    let unknown = ReportId::new(Uuid::new_v4());
    for other in [theirs, unknown] {
        let e = attempt(&w.dispatcher, report, other, LinkKind::Related).await;
        assert!(
            matches!(e, AppError::Refused(Refusal::NoSuchReport)),
            "{e:?}"
        );
    }
    let e = attempt(&w.dispatcher, report, report, LinkKind::Duplicate).await;
    assert_eq!(
        e.domain_error::<ReportError>(),
        Some(&ReportError::Invalid {
            field: "other_id",
            reason: "a report cannot be linked to itself".into()
        })
    );
    let e = attempt(&w.officer, report, theirs, LinkKind::Related).await;
    assert!(matches!(e, AppError::Forbidden(Denied::Role)), "{e:?}");
    let e = attempt(&w.other_dispatcher, report, theirs, LinkKind::Related).await;
    assert!(matches!(e, AppError::NotFound), "{e:?}");
    assert_eq!(w.mark(), mark, "nothing appended");
    // The ADMIN works every station.
    let out = link::link(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        report,
        theirs,
        LinkKind::Related,
    )
    .await
    .expect("admin links across stations");
    assert_eq!(out.report.related, vec![theirs]);
    let other: Report = w.state(theirs.as_uuid()).await;
    assert_eq!(other.related, vec![report]);
}

#[tokio::test]
async fn unlinking_a_duplicate_puts_it_back_in_the_queue_and_the_primary_forgets_it() {
    let w = World::new().await;
    let primary = w.given_report().await;
    let dup = w.given_assigned(w.patrol).await;
    let meta = w.meta(&w.dispatcher);
    link::link(
        &w.app,
        &w.dispatcher,
        &meta,
        dup,
        primary,
        LinkKind::Duplicate,
    )
    .await
    .expect("link");
    // Unlinked from the primary's side: both change.
    let out = link::unlink(&w.app, &w.dispatcher, &w.meta(&w.dispatcher), primary, dup)
        .await
        .expect("unlink");
    assert!(out.report.duplicates.is_empty());
    let report: Report = w.state(dup.as_uuid()).await;
    assert_eq!(report.status, ReportStatus::New);
    assert_eq!((report.duplicate_of, report.patrol_id), (None, None));
    let e = link::unlink(&w.app, &w.dispatcher, &w.meta(&w.dispatcher), primary, dup)
        .await
        .expect_err("not linked");
    assert_eq!(
        e.domain_error::<ReportError>(),
        Some(&ReportError::NotLinked { other: dup })
    );
}
