//! Dispatch: assign a `NEW` report to a patrol of its station (`ASSIGNED`) and open the
//! assignment on the patrol (`BUSY`) in the same atomic append. The patrol is chosen by
//! the desk (any patrol of the station but an `OFF_DUTY` one: a dispatcher may override
//! a `BUSY` patrol) or automatically: the least busy `AVAILABLE` patrol, ranked on a
//! workload snapshot at least as fresh as the report itself. DISPATCHER, SUPERVISOR,
//! ADMIN of the report's station.

use precinct_domain::dispatch::{choose_patrol, AssignmentDecision};
use precinct_domain::ids::{PatrolId, ReportId};
use precinct_domain::patrol::{Patrol, PatrolCommand};
use precinct_domain::report::{Report, ReportCommand};
use precinct_domain::values::PatrolStatus;
use precinct_domain::Aggregate;
use precinct_eventlog::{CommandMeta, EventStore};

use crate::error::{Refusal, Unavailable};
use crate::policy::{require_desk_of, require_visible, Principal, DESK};
use crate::ports::Workloads;
use crate::{App, AppError};

/// A report to assign, to a chosen patrol or (None) automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dispatch {
    pub report: ReportId,
    pub patrol: Option<PatrolId>,
}

/// An assignment made.
#[derive(Debug)]
pub struct Dispatched {
    /// The patrol the report is assigned to (for an idempotent retry: the original one).
    pub patrol: PatrolId,
    /// Automatic assignment only: the ranking and the excluded patrols.
    pub decision: Option<AssignmentDecision>,
    /// Log position of the command's last event.
    pub position: u64,
}

pub async fn dispatch<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    order: Dispatch,
    workloads: &impl Workloads,
) -> Result<Dispatched, AppError> {
    by.require(DESK)?;
    let rid = order.report.as_uuid();
    let (patrol_id, auto) = match order.patrol {
        Some(chosen) => (chosen, None),
        None => {
            let decision = choose(app, by, order.report, workloads).await?;
            (decision.patrol_id, Some(decision))
        }
    };
    let (by, decision) = (*by, auto.clone());
    let out = app
        .run::<Report>(meta, rid, async move |uow| {
            let at = uow.now();
            let report: Report = uow.load(rid).await?;
            require_visible(Some(&by), None, &report)?;
            require_desk_of(&by, report.station_id)?;
            let patrol: Patrol = uow.load(patrol_id.as_uuid()).await?;
            if !patrol.version_exists() || patrol.station_id != report.station_id {
                return Err(Refusal::NoSuchPatrol.into());
            }
            if patrol.status == PatrolStatus::OffDuty {
                return Err(Refusal::PatrolOffDuty.into());
            }
            uow.execute::<Report>(
                rid,
                ReportCommand::Assign {
                    patrol_id,
                    decision: decision.clone(),
                    at,
                },
            )
            .await?;
            uow.execute::<Patrol>(
                patrol_id.as_uuid(),
                PatrolCommand::OpenAssignment {
                    report_id: order.report,
                    at,
                },
            )
            .await?;
            Ok(())
        })
        .await?;
    let assigned = out
        .state::<Report>(rid)
        .and_then(|r| r.patrol_id)
        .unwrap_or(patrol_id);
    Ok(Dispatched {
        patrol: assigned,
        decision: auto,
        position: out.position,
    })
}

/// Automatic assignment: the report as it is now (visible to the desk of its station),
/// workloads at least as fresh as it, and the domain's ranking of its station's
/// `AVAILABLE` patrols.
async fn choose<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    id: ReportId,
    workloads: &impl Workloads,
) -> Result<AssignmentDecision, AppError> {
    let (report, version) = app.load::<Report>(id.as_uuid()).await?;
    require_visible(Some(by), None, &report)?;
    require_desk_of(by, report.station_id)?;
    if !workloads.caught_up(version).await? {
        return Err(Unavailable::Workloads.into());
    }
    let snapshot = workloads.snapshot(report.station_id).await?;
    choose_patrol(report.station_id, report.location.point(), &snapshot).map_err(|_| {
        metrics::counter!("precinct_dispatch_no_patrol_total").increment(1);
        Refusal::NoAvailablePatrol.into()
    })
}
