//! The SLA worker's commands (ADR 0035), run by Precinct itself, not by a person: a
//! report overdue to be accepted, responded to or resolved gets one `SlaWarned` at the
//! warning level and one `SlaBreached` at the deadline per (kind, start of the clock),
//! and an assignment still unaccepted some time after its breach is escalated once
//! (`SlaEscalated`: requeued or reassigned). The command ids derive from (report, kind,
//! start of the clock), so several workers (or a restarted one) record each once.

use std::time::Duration;

use precinct_domain::dispatch::{choose_patrol, PatrolSnapshot};
use precinct_domain::ids::{PatrolId, ReportId};
use precinct_domain::patrol::{AssignmentOutcome, Patrol, PatrolCommand};
use precinct_domain::report::{Report, ReportCommand};
use precinct_domain::values::{EscalationAction, PatrolStatus, SlaKind};
use precinct_domain::Aggregate;
use precinct_eventlog::{Actor, CommandMeta, EventStore};
use uuid::Uuid;

use crate::error::Refusal;
use crate::{ids, App, AppError};

/// Records that `report` is past its `kind` deadline of `sla`. True when this call
/// recorded it; false when there was nothing to record (accepted or responded to
/// meanwhile, or recorded already).
pub async fn record_breach<S: EventStore>(
    app: &App<S>,
    report: Uuid,
    kind: SlaKind,
    sla: Duration,
) -> Result<bool, AppError> {
    let sla = length(sla)?;
    record_once(app, report, kind, ids::sla_breach_command, move |at| {
        ReportCommand::RecordSlaBreach { kind, sla, at }
    })
    .await
}

/// Records that `report` reached `percent` % of its `kind` deadline of `sla` (the
/// warning before the breach, ADR 0035). True when this call recorded it; false when
/// there was nothing to record (the clock stopped, the warning or the breach is
/// recorded already). One command id per (report, kind, start of the clock).
pub async fn record_warning<S: EventStore>(
    app: &App<S>,
    report: Uuid,
    kind: SlaKind,
    sla: Duration,
    percent: u8,
) -> Result<bool, AppError> {
    let sla = length(sla)?;
    record_once(app, report, kind, ids::sla_warning_command, move |at| {
        ReportCommand::RecordSlaWarning {
            kind,
            sla,
            percent,
            at,
        }
    })
    .await
}

/// Runs the system's `command` on `report` once per start of its `kind` clock (the
/// command id is `command_id(report, kind, start)`, so two SLA workers, or a retry,
/// record it once). True when this call recorded it; false when the clock is not
/// running or the domain refuses (stopped meanwhile, recorded already).
async fn record_once<S: EventStore>(
    app: &App<S>,
    report: Uuid,
    kind: SlaKind,
    command_id: fn(Uuid, SlaKind, i64) -> Uuid,
    command: impl Fn(chrono::DateTime<chrono::Utc>) -> ReportCommand + Send + Sync,
) -> Result<bool, AppError> {
    let (state, _) = app.load::<Report>(report).await?;
    let Some(since) = state.sla_since(kind) else {
        return Ok(false);
    };
    let meta = CommandMeta::new(
        command_id(report, kind, since.timestamp_micros()),
        Actor::System,
    );
    let result = app
        .run::<Report>(&meta, report, async move |uow| {
            let at = uow.now();
            uow.execute::<Report>(report, command(at)).await?;
            Ok(())
        })
        .await;
    match result {
        Ok(out) => Ok(!out.duplicate),
        Err(AppError::Domain { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// What an escalation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escalated {
    /// Nothing to do (accepted meanwhile, not due, or done already).
    Nothing,
    /// Back to the station's queue.
    Requeued,
    /// To another patrol.
    Reassigned(PatrolId),
}

/// Escalates `report`'s assignment, still `ASSIGNED` `after` its accept breach was
/// recorded (ADR 0035): `REQUEUE` withdraws it from its patrol; `REASSIGN` moves it to
/// the patrol automatic assignment would choose among `candidates` (the station's
/// workload snapshot) other than the current one, or requeues it when there is none.
/// One atomic append over the report and both patrols; one command id per (report,
/// start of the clock), so racing workers escalate once.
pub async fn escalate_unaccepted<S: EventStore>(
    app: &App<S>,
    report: Uuid,
    action: EscalationAction,
    after: Duration,
    candidates: &[PatrolSnapshot],
) -> Result<Escalated, AppError> {
    let (state, _) = app.load::<Report>(report).await?;
    let (Some(since), Some(current)) = (state.sla_since(SlaKind::Accept), state.patrol_id) else {
        return Ok(Escalated::Nothing);
    };
    let to = match action {
        EscalationAction::Requeue => None,
        EscalationAction::Reassign => {
            let others: Vec<PatrolSnapshot> = candidates
                .iter()
                .filter(|c| c.patrol_id != current)
                .cloned()
                .collect();
            choose_patrol(state.station_id, state.location.point(), &others)
                .ok()
                .map(|d| d.patrol_id)
        }
    };
    let command_id = ids::sla_escalation_command(report, since.timestamp_micros());
    let meta = CommandMeta::new(command_id, Actor::System);
    let after = length(after)?;
    let rid = ReportId::new(report);
    let result = app
        .run::<Report>(&meta, report, async move |uow| {
            let at = uow.now();
            if let Some(to) = to {
                let target: Patrol = uow.load(to.as_uuid()).await?;
                if !target.version_exists() || target.status == PatrolStatus::OffDuty {
                    return Err(Refusal::PatrolOffDuty.into());
                }
            }
            uow.execute::<Report>(
                report,
                ReportCommand::EscalateUnaccepted {
                    action,
                    after,
                    to,
                    at,
                },
            )
            .await?;
            uow.execute::<Patrol>(
                current.as_uuid(),
                PatrolCommand::CloseAssignment {
                    report_id: rid,
                    outcome: AssignmentOutcome::Withdrawn,
                    at,
                },
            )
            .await?;
            if let Some(to) = to {
                uow.execute::<Patrol>(
                    to.as_uuid(),
                    PatrolCommand::OpenAssignment { report_id: rid, at },
                )
                .await?;
            }
            Ok(())
        })
        .await;
    match result {
        Ok(out) if out.duplicate => Ok(Escalated::Nothing),
        Ok(_) => Ok(to.map_or(Escalated::Requeued, Escalated::Reassigned)),
        // Accepted meanwhile, not yet due, or the chosen patrol went off duty: the next
        // scan decides again.
        Err(AppError::Domain { .. } | AppError::Refused(_)) => Ok(Escalated::Nothing),
        Err(e) => Err(e),
    }
}

fn length(sla: Duration) -> Result<chrono::Duration, AppError> {
    chrono::Duration::from_std(sla).map_err(|e| AppError::Corrupt {
        position: 0,
        reason: format!("SLA length: {e}"),
    })
}
