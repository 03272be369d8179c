//! Links between reports (issue 16 item 4, ADR 0020), each one atomic append over both
//! reports (and the patrol of a duplicate that was assigned):
//!
//! - `DUPLICATE`: report `id` is closed into its primary `other` (`CLOSED`,
//!   `duplicate_of`); an open assignment is withdrawn in the same append, exactly as
//!   the desk's unassign does (the patrol's assignment closes `WITHDRAWN`), so the
//!   patrol's workload counts the incident once, on the primary. The primary records
//!   the duplicate.
//! - `RELATED`: a symmetric link, the same event on both streams; no status changes.
//! - unlink: removes whichever link the two have, on both streams; a duplicate goes back
//!   to the queue (`NEW`, clocks cleared).
//!
//! DISPATCHER, SUPERVISOR of the stations of both reports; ADMIN anywhere. A report the
//! caller may not see is answered as an unknown one: `{id}` as 404, `other_id` as 422.
//! Links are one level deep (a duplicate has no duplicates and is never a primary), so
//! no cycle can form; the domain refuses the rest on fresh state, so two desks closing
//! one report into two primaries at once get one success and one 409.

use precinct_domain::ids::ReportId;
use precinct_domain::patrol::{AssignmentOutcome, Patrol, PatrolCommand};
use precinct_domain::report::{Report, ReportCommand};
use precinct_domain::Aggregate;
use precinct_eventlog::{CommandMeta, EventStore};

use super::Changed;
use crate::error::Refusal;
use crate::policy::{require_desk_of, require_visible, Principal, DESK};
use crate::{App, AppError, UnitOfWork};

/// The kind of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// The report is a duplicate of the other, its primary.
    Duplicate,
    /// The two reports are about related incidents.
    Related,
}

/// Only the desk links reports (checked before the request's fields are parsed).
pub fn may_link(by: &Principal) -> Result<(), AppError> {
    by.require(DESK)
}

/// Links report `id` to `other` as `kind`.
pub async fn link<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    other: ReportId,
    kind: LinkKind,
) -> Result<Changed, AppError> {
    may_link(by)?;
    let by = *by;
    run(app, meta, id, async move |uow| {
        let at = uow.now();
        let report = load_for_desk(uow, &by, id).await?;
        // The report's own refusals first (itself, already linked, has duplicates, not
        // open): they hold whatever the other report is.
        match kind {
            LinkKind::Duplicate => {
                let cmd = ReportCommand::MarkDuplicate {
                    primary_id: other,
                    by: by.id,
                    at,
                };
                uow.execute::<Report>(id.as_uuid(), cmd).await?;
            }
            LinkKind::Related => {
                let cmd = ReportCommand::Link {
                    other_id: other,
                    by: by.id,
                    at,
                };
                uow.execute::<Report>(id.as_uuid(), cmd).await?;
            }
        }
        load_other(uow, &by, other).await?;
        match kind {
            LinkKind::Duplicate => {
                let cmd = ReportCommand::AttachDuplicate {
                    duplicate_id: id,
                    by: by.id,
                    at,
                };
                uow.execute::<Report>(other.as_uuid(), cmd).await?;
                if let (true, Some(patrol)) =
                    (report.status.is_active_assignment(), report.patrol_id)
                {
                    uow.execute::<Patrol>(
                        patrol.as_uuid(),
                        PatrolCommand::CloseAssignment {
                            report_id: id,
                            outcome: AssignmentOutcome::Withdrawn,
                            at,
                        },
                    )
                    .await?;
                }
            }
            LinkKind::Related => {
                let cmd = ReportCommand::Link {
                    other_id: id,
                    by: by.id,
                    at,
                };
                uow.execute::<Report>(other.as_uuid(), cmd).await?;
            }
        }
        Ok(())
    })
    .await
}

/// Removes the link between `id` and `other`, whichever it is.
pub async fn unlink<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    other: ReportId,
) -> Result<Changed, AppError> {
    may_link(by)?;
    let by = *by;
    run(app, meta, id, async move |uow| {
        let at = uow.now();
        load_for_desk(uow, &by, id).await?;
        let cmd = ReportCommand::Unlink {
            other_id: other,
            by: by.id,
            at,
        };
        uow.execute::<Report>(id.as_uuid(), cmd).await?;
        load_other(uow, &by, other).await?;
        let cmd = ReportCommand::Unlink {
            other_id: id,
            by: by.id,
            at,
        };
        uow.execute::<Report>(other.as_uuid(), cmd).await?;
        Ok(())
    })
    .await
}

/// Runs the command with report `id` as its primary stream and answers that report.
async fn run<S: EventStore>(
    app: &App<S>,
    meta: &CommandMeta,
    id: ReportId,
    decide: impl AsyncFnMut(&mut UnitOfWork<'_, S>) -> Result<(), AppError>,
) -> Result<Changed, AppError> {
    let rid = id.as_uuid();
    let out = app.run::<Report>(meta, rid, decide).await?;
    let report = out
        .state::<Report>(rid)
        .filter(|r| r.version_exists())
        .ok_or(AppError::NotFound)?;
    Ok(Changed {
        report: report.clone(),
        position: out.position,
    })
}

/// Report `id`, which the caller works as the desk of its station (404 otherwise).
async fn load_for_desk<S: EventStore>(
    uow: &mut UnitOfWork<'_, S>,
    by: &Principal,
    id: ReportId,
) -> Result<Report, AppError> {
    let report: Report = uow.load(id.as_uuid()).await?;
    require_visible(Some(by), None, &report)?;
    require_desk_of(by, report.station_id)?;
    Ok(report)
}

/// The other report of a link: one the caller works as the desk of its station; an
/// unknown one and one of another station are the same 422 on `other_id`.
async fn load_other<S: EventStore>(
    uow: &mut UnitOfWork<'_, S>,
    by: &Principal,
    other: ReportId,
) -> Result<Report, AppError> {
    let report: Report = uow.load(other.as_uuid()).await?;
    if !report.version_exists() || !by.is_staff_of(report.station_id) {
        return Err(Refusal::NoSuchReport.into());
    }
    Ok(report)
}
