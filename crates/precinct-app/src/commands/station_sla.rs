//! A station's SLA policy (`PUT /stations/{id}/sla-policy`, ADR 0035): deadlines per
//! priority, the warning level, supervisor notification and the escalation of
//! unaccepted assignments, set whole in one event on the station's stream. ADMIN (any
//! station) or the station's own SUPERVISOR; the same policy again appends nothing.

use precinct_domain::ids::StationId;
use precinct_domain::sla::SlaPolicy;
use precinct_domain::station::{Station, StationCommand};
use precinct_domain::values::Role;
use precinct_domain::Aggregate;
use precinct_eventlog::{CommandMeta, EventStore};

use crate::commands::station::StationWritten;
use crate::policy::Principal;
use crate::{App, AppError};

/// ADMIN, or a SUPERVISOR (of the station: checked with the station, as a 404).
pub fn may_set(by: &Principal) -> Result<(), AppError> {
    by.require(&[Role::Admin, Role::Supervisor])
}

/// Sets station `id`'s SLA policy (404 when there is none, or when a supervisor of
/// another station asks).
pub async fn set<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: StationId,
    policy: SlaPolicy,
) -> Result<StationWritten, AppError> {
    may_set(by)?;
    if !by.is_staff_of(id) {
        return Err(AppError::NotFound);
    }
    let stream = id.as_uuid();
    let out = app
        .run::<Station>(meta, stream, async move |uow| {
            let at = uow.now();
            let station: Station = uow.load(stream).await?;
            if !station.version_exists() {
                return Err(AppError::NotFound);
            }
            uow.execute::<Station>(
                stream,
                StationCommand::SetSlaPolicy {
                    policy: policy.clone(),
                    at,
                },
            )
            .await?;
            Ok(())
        })
        .await?;
    let station = out
        .state::<Station>(stream)
        .cloned()
        .ok_or(AppError::NotFound)?;
    Ok(StationWritten {
        id,
        station,
        position: out.position,
    })
}
