//! Recording an SLA breach: a report overdue to be accepted or responded to gets one
//! `SlaBreached` per (kind, start of the clock). The command id derives from those, so
//! several workers (or a restarted one) record each breach once. Run by Precinct itself
//! (the SLA worker), not by a person.

use std::time::Duration;

use precinct_domain::report::{Report, ReportCommand};
use precinct_domain::values::SlaKind;
use precinct_eventlog::{Actor, CommandMeta, EventStore};
use uuid::Uuid;

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
    let (state, _) = app.load::<Report>(report).await?;
    let Some(since) = state.sla_since(kind) else {
        return Ok(false);
    };
    let command_id = ids::sla_breach_command(report, kind, since.timestamp_micros());
    let meta = CommandMeta::new(command_id, Actor::System);
    let sla = chrono::Duration::from_std(sla).map_err(|e| AppError::Corrupt {
        position: 0,
        reason: format!("SLA length: {e}"),
    })?;
    let result = app
        .run::<Report>(&meta, report, async move |uow| {
            let at = uow.now();
            uow.execute::<Report>(report, ReportCommand::RecordSlaBreach { kind, sla, at })
                .await?;
            Ok(())
        })
        .await;
    match result {
        Ok(out) => Ok(!out.duplicate),
        // Accepted meanwhile, or already recorded: nothing to do.
        Err(AppError::Domain { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
