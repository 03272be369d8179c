//! The desk's control over where a report is worked (issue 16), each one atomic append
//! over every aggregate it touches:
//!
//! - unassign: the open assignment (`ASSIGNED`, `ACCEPTED`, `RESPONDING`) goes back to
//!   the queue (`NEW`), the patrol's assignment closes (`WITHDRAWN`, not a decline);
//! - reassign: the same, and the report is assigned to another patrol of its station
//!   (not `OFF_DUTY`) whose assignment opens — report, old patrol and new patrol in one
//!   append;
//! - transfer: the report moves to another station that takes reports; an open
//!   assignment is withdrawn first, in the same append.
//!
//! The caller names the patrol it saw on the report (`from`): when another patrol holds
//! it by the time the command runs (a concurrent reassignment won), the command is
//! refused (409) instead of undoing the other desk's decision. DISPATCHER, SUPERVISOR of
//! the report's station; ADMIN.

use precinct_domain::ids::{PatrolId, ReportId, StationId};
use precinct_domain::patrol::{AssignmentOutcome, Patrol, PatrolCommand};
use precinct_domain::report::{Report, ReportCommand};
use precinct_domain::station::Station;
use precinct_domain::values::PatrolStatus;
use precinct_domain::Aggregate;
use precinct_eventlog::{CommandMeta, EventStore};

use super::{change, Change, Changed, Decision, OnReport};
use crate::error::{Refusal, Unavailable};
use crate::policy::{require_desk_of, require_visible, Principal, DESK};
use crate::ports::StationMap;
use crate::{App, AppError};

/// Only the desk controls assignments and stations (checked before the request's fields
/// are parsed).
pub fn may_control(by: &Principal) -> Result<(), AppError> {
    by.require(DESK)
}

/// Takes the open assignment back from `from`: the report returns to the queue.
pub async fn unassign<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    from: PatrolId,
    reason: String,
) -> Result<Changed, AppError> {
    may_control(by)?;
    change(app, by, meta, id, vec![Change::Unassign { from, reason }]).await
}

pub(super) fn decide_unassign(
    on: &OnReport<'_>,
    from: PatrolId,
    reason: String,
) -> Result<Decision, AppError> {
    on.desk()?;
    Ok(Decision::closing(
        ReportCommand::Unassign {
            from,
            reason,
            by: on.by.id,
            at: on.at,
        },
        AssignmentOutcome::Withdrawn,
    ))
}

/// Moves the open assignment from `from` to `to`.
pub async fn reassign<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    from: PatrolId,
    to: PatrolId,
    reason: String,
) -> Result<Changed, AppError> {
    may_control(by)?;
    let rid = id.as_uuid();
    let by = *by;
    let out = app
        .run::<Report>(meta, rid, async move |uow| {
            let at = uow.now();
            let report: Report = uow.load(rid).await?;
            require_visible(Some(&by), None, &report)?;
            require_desk_of(&by, report.station_id)?;
            // The report's own refusals first (not assigned, another patrol on it, the
            // same patrol): they say the most about the request.
            let cmd = ReportCommand::Reassign {
                from,
                to,
                reason: reason.clone(),
                by: by.id,
                at,
            };
            uow.execute::<Report>(rid, cmd).await?;
            let target: Patrol = uow.load(to.as_uuid()).await?;
            if !target.version_exists() || target.station_id != report.station_id {
                return Err(Refusal::NoSuchPatrol.into());
            }
            if target.status == PatrolStatus::OffDuty {
                return Err(Refusal::PatrolOffDuty.into());
            }
            uow.execute::<Patrol>(
                from.as_uuid(),
                PatrolCommand::CloseAssignment {
                    report_id: id,
                    outcome: AssignmentOutcome::Withdrawn,
                    at,
                },
            )
            .await?;
            uow.execute::<Patrol>(
                to.as_uuid(),
                PatrolCommand::OpenAssignment { report_id: id, at },
            )
            .await?;
            Ok(())
        })
        .await?;
    let report = out
        .state::<Report>(rid)
        .filter(|r| r.version_exists())
        .ok_or(AppError::NotFound)?;
    Ok(Changed {
        report: report.clone(),
        position: out.position,
    })
}

/// A report moved to another station.
#[derive(Debug)]
pub struct Transferred {
    /// The report's station after the command (for an idempotent retry: after the
    /// original command).
    pub station: StationId,
    /// Log position of the command's last event.
    pub position: u64,
}

/// Moves the report to station `to` (which must exist and take reports: be on the
/// station map routing decides on).
pub async fn transfer<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    to: StationId,
    reason: String,
    stations: &impl StationMap,
) -> Result<Transferred, AppError> {
    may_control(by)?;
    let Some(map) = stations.current().await? else {
        return Err(Unavailable::StationMap.into());
    };
    let takes_reports = map.iter().any(|s| s.station_id == to);
    let rid = id.as_uuid();
    let by = *by;
    let out = app
        .run::<Report>(meta, rid, async move |uow| {
            let at = uow.now();
            let report: Report = uow.load(rid).await?;
            require_visible(Some(&by), None, &report)?;
            require_desk_of(&by, report.station_id)?;
            let station: Station = uow.load(to.as_uuid()).await?;
            if !station.version_exists() {
                return Err(Refusal::NoSuchStation.into());
            }
            if !takes_reports {
                return Err(Refusal::StationTakesNoReports.into());
            }
            let cmd = ReportCommand::Transfer {
                station_id: to,
                reason: reason.clone(),
                by: by.id,
                at,
            };
            uow.execute::<Report>(rid, cmd).await?;
            if let (true, Some(patrol)) = (report.status.is_active_assignment(), report.patrol_id) {
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
            Ok(())
        })
        .await?;
    let report = out
        .state::<Report>(rid)
        .filter(|r| r.version_exists())
        .ok_or(AppError::NotFound)?;
    Ok(Transferred {
        station: report.station_id,
        position: out.position,
    })
}
