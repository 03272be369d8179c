//! Editing a station (`PATCH /stations/{id}`): an ADMIN changes its name, point, area,
//! division keywords or contact number, and deactivates or reactivates it — all in one
//! atomic append on the station's stream. A deactivation is refused while the station
//! has open reports (found in a reports read model caught up with the log as it is
//! now), naming them. An edit applies to reports routed after its position: routing
//! waits for the station map to reach the last station change; a routing decision
//! already recorded is never rewritten.

use precinct_domain::ids::StationId;
use precinct_domain::station::{OpenReports, Station, StationChanges, StationCommand};
use precinct_domain::values::Role;
use precinct_eventlog::{CommandMeta, EventStore};

use crate::commands::station::StationWritten;
use crate::error::Unavailable;
use crate::policy::Principal;
use crate::ports::StationReports;
use crate::{App, AppError};

/// At most this many of a station's open reports are looked up (and named) when a
/// deactivation is refused.
pub const OPEN_REPORTS_LOOKED_UP: u32 = 20;

/// Whether an edit changes if the station takes new reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Activation {
    /// As it is.
    #[default]
    Keep,
    /// Takes new reports again.
    Activate,
    /// Takes no new report (refused while it has open reports).
    Deactivate,
}

/// One edit of a station.
#[derive(Debug, Clone, Default)]
pub struct StationEdit {
    pub changes: StationChanges,
    pub activation: Activation,
}

/// Only an ADMIN edits stations (checked before the request's fields are parsed).
pub fn may_edit(by: &Principal) -> Result<(), AppError> {
    by.require(&[Role::Admin])
}

/// Edits station `id` (404 when there is none). An edit that changes nothing appends
/// nothing and answers the station as it is.
pub async fn edit<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    reports: &impl StationReports,
    id: StationId,
    edit: StationEdit,
) -> Result<StationWritten, AppError> {
    may_edit(by)?;
    // Looked up before deciding (a port is not called inside the decision, which reruns
    // on a concurrent change); a report routed here after this look-up and before the
    // deactivation's append stays open in the inactive station (ADR "station
    // management": its staff keep it, a transfer moves it).
    let open_reports = match edit.activation {
        Activation::Deactivate => reports
            .open_reports(id, OPEN_REPORTS_LOOKED_UP)
            .await?
            .ok_or(Unavailable::Reports)?,
        Activation::Keep | Activation::Activate => OpenReports::default(),
    };
    let stream = id.as_uuid();
    let out = app
        .run::<Station>(meta, stream, async move |uow| {
            let at = uow.now();
            uow.execute::<Station>(
                stream,
                StationCommand::Update {
                    changes: edit.changes.clone(),
                    at,
                },
            )
            .await?;
            match edit.activation {
                Activation::Keep => {}
                Activation::Activate => {
                    uow.execute::<Station>(stream, StationCommand::Reactivate { at })
                        .await?;
                }
                Activation::Deactivate => {
                    uow.execute::<Station>(
                        stream,
                        StationCommand::Deactivate {
                            open_reports: open_reports.clone(),
                            at,
                        },
                    )
                    .await?;
                }
            }
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
