//! Bulk automatic assignment (`POST /dispatch/auto`): a station's open `NEW` reports, in
//! queue order (highest priority, then oldest, then id), each assigned by the policy of
//! single automatic assignment ([`choose_patrol`]) and recorded with its ranked
//! candidates; the run stops at the first report for which no patrol is `AVAILABLE`.
//!
//! Each report is its own command (its id derived from the run's command id and the
//! report: a retried run has one effect per report) appending the report and the chosen
//! patrol atomically. The ranking is decided on the patrols **as the log has them**
//! (status, open assignments, declines, last assignment), loaded in the command's unit
//! of work, with the last known positions of the workloads read model: two runs that
//! pick the same patrol write the same patrol stream, so one of them decides again on
//! the fresh state, where that patrol is `BUSY`. No report is assigned twice (the second
//! run finds it `ASSIGNED`) and no patrol gets more than the policy gives it.
//! DISPATCHER, SUPERVISOR, ADMIN of the station.

use std::collections::BTreeSet;

use precinct_domain::dispatch::{choose_patrol, AssignmentDecision};
use precinct_domain::ids::{PatrolId, ReportId, StationId};
use precinct_domain::patrol::{Patrol, PatrolCommand};
use precinct_domain::report::{Report, ReportCommand};
use precinct_domain::station::Station;
use precinct_domain::values::{Priority, ReportStatus};
use precinct_domain::Aggregate;
use precinct_eventlog::{CommandMeta, EventStore};

use crate::error::Refusal;
use crate::ids::derived_id;
use crate::policy::{can_view_report, require_desk_of, Principal, DESK};
use crate::ports::{Queue, Workloads};
use crate::{App, AppError};

/// Most reports one run looks at (listed or taken from the queue).
pub const BULK_MAX: u32 = 100;
/// Reports taken from the queue when the order names neither reports nor a limit.
pub const BULK_DEFAULT: u32 = 20;

/// What to assign: the named reports (in queue order, whatever order they are named in)
/// or the first `limit` `NEW` reports of the station's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkOrder {
    pub station: StationId,
    pub reports: Option<Vec<ReportId>>,
    pub limit: Option<u32>,
}

/// A report this run assigned.
#[derive(Debug)]
pub struct BulkAssigned {
    pub report: ReportId,
    pub patrol: PatrolId,
    pub decision: Option<AssignmentDecision>,
    pub position: u64,
}

/// Why a report was left unassigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftReason {
    /// No patrol of the station was `AVAILABLE` (the run stopped here).
    NoAvailablePatrol,
    /// The report is not `NEW` (assigned meanwhile, by another run or the desk; closed).
    NotNew(ReportStatus),
    /// No such report at this station (or the caller may not see it).
    NotAtStation,
}

#[derive(Debug)]
pub struct Left {
    pub report: ReportId,
    pub reason: LeftReason,
}

/// The run's answer.
#[derive(Debug, Default)]
pub struct BulkOutcome {
    pub assigned: Vec<BulkAssigned>,
    pub left: Vec<Left>,
    /// Log position of the run's last event (0: it appended nothing).
    pub position: u64,
}

/// Refuses what no run may do, before the order's fields are looked at.
pub fn may_dispatch(by: &Principal) -> Result<(), AppError> {
    by.require(DESK)
}

pub async fn auto_assign<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    order: BulkOrder,
    queue: &impl Queue,
    workloads: &impl Workloads,
) -> Result<BulkOutcome, AppError> {
    may_dispatch(by)?;
    require_desk_of(by, order.station)?;
    let (station, _) = app.load::<Station>(order.station.as_uuid()).await?;
    if !station.version_exists() {
        return Err(Refusal::NoSuchStation.into());
    }
    let ids = match order.reports {
        Some(ids) => {
            let mut seen = BTreeSet::new();
            ids.into_iter().filter(|id| seen.insert(*id)).collect()
        }
        None => {
            let limit = order.limit.unwrap_or(BULK_DEFAULT).clamp(1, BULK_MAX);
            queue.new_reports(order.station, limit).await?
        }
    };
    let mut out = BulkOutcome::default();
    // The log decides the order and what is still NEW.
    let mut candidates: Vec<(Priority, chrono::DateTime<chrono::Utc>, ReportId)> = Vec::new();
    for id in ids {
        let (report, _) = app.load::<Report>(id.as_uuid()).await?;
        if !can_view_report(Some(by), None, &report) || report.station_id != order.station {
            out.left.push(Left {
                report: id,
                reason: LeftReason::NotAtStation,
            });
        } else if report.status != ReportStatus::New {
            out.left.push(Left {
                report: id,
                reason: LeftReason::NotNew(report.status),
            });
        } else {
            candidates.push((report.priority, report.submitted_at, id));
        }
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));

    // Which patrols the station has and where they were last seen; their state comes
    // from the log in each command.
    let roster = workloads.snapshot(order.station).await?;
    let mut stopped = false;
    for (_, _, id) in candidates {
        if stopped {
            out.left.push(Left {
                report: id,
                reason: LeftReason::NoAvailablePatrol,
            });
            continue;
        }
        let sub = CommandMeta {
            command_id: derived_id(meta.command_id, &format!("auto-assign|{id}")),
            correlation_id: meta.correlation_id,
            causation_id: Some(meta.command_id),
            actor: meta.actor.clone(),
            request_hash: meta.request_hash,
        };
        match assign_one(app, by, &sub, order.station, id, &roster).await {
            Ok(done) => {
                out.position = out.position.max(done.position);
                out.assigned.push(done);
            }
            Err(AppError::Refused(Refusal::NoAvailablePatrol)) => {
                stopped = true;
                out.left.push(Left {
                    report: id,
                    reason: LeftReason::NoAvailablePatrol,
                });
            }
            Err(AppError::NotFound) => out.left.push(Left {
                report: id,
                reason: LeftReason::NotAtStation,
            }),
            Err(e) => {
                // Assigned meanwhile (by another run or the desk), or closed: left, with
                // its status now.
                let (report, _) = app.load::<Report>(id.as_uuid()).await?;
                let conflict = matches!(
                    e,
                    AppError::Domain {
                        kind: precinct_domain::ErrorKind::Conflict,
                        ..
                    }
                );
                if report.status == ReportStatus::New || !conflict {
                    return Err(e);
                }
                out.left.push(Left {
                    report: id,
                    reason: LeftReason::NotNew(report.status),
                });
            }
        }
    }
    Ok(out)
}

/// One report's automatic assignment, decided on the patrols as the log has them.
async fn assign_one<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    station: StationId,
    id: ReportId,
    roster: &[precinct_domain::dispatch::PatrolSnapshot],
) -> Result<BulkAssigned, AppError> {
    let rid = id.as_uuid();
    let by = *by;
    let roster = roster.to_vec();
    // The decision of the attempt that landed (none for an idempotent retry).
    let chosen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let keep = chosen.clone();
    let out = app
        .run::<Report>(meta, rid, async move |uow| {
            let at = uow.now();
            let report: Report = uow.load(rid).await?;
            if !can_view_report(Some(&by), None, &report) || report.station_id != station {
                return Err(AppError::NotFound);
            }
            require_desk_of(&by, report.station_id)?;
            let mut fresh = Vec::with_capacity(roster.len());
            for seen in &roster {
                let patrol: Patrol = uow.load(seen.patrol_id.as_uuid()).await?;
                if patrol.version_exists() {
                    fresh.push(patrol.snapshot(seen.location));
                }
            }
            let decision = choose_patrol(report.station_id, report.location.point(), &fresh)
                .map_err(|_| {
                    metrics::counter!("precinct_dispatch_no_patrol_total").increment(1);
                    AppError::from(Refusal::NoAvailablePatrol)
                })?;
            let patrol_id = decision.patrol_id;
            if let Ok(mut kept) = keep.lock() {
                *kept = Some(decision.clone());
            }
            uow.execute::<Report>(
                rid,
                ReportCommand::Assign {
                    patrol_id,
                    decision: Some(decision),
                    at,
                },
            )
            .await?;
            uow.execute::<Patrol>(
                patrol_id.as_uuid(),
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
    let patrol = report.patrol_id.ok_or(AppError::NotFound)?;
    let decision = chosen
        .lock()
        .ok()
        .and_then(|mut d| d.take())
        .filter(|d| !out.duplicate && d.patrol_id == patrol);
    Ok(BulkAssigned {
        report: id,
        patrol,
        decision,
        position: out.position,
    })
}
