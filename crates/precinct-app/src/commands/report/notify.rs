//! "Notify officer" (`POST /crimes/{id}/notify`, ADR 0032): the desk asks for the crew of
//! the patrol assigned to a report to be notified on every device they registered. It
//! records `PatrolNotified` on the report; the push deliverer does the notifying. A
//! report without an open assignment is refused (409). DISPATCHER, SUPERVISOR of the
//! report's station; ADMIN.

use precinct_domain::ids::{PatrolId, ReportId};
use precinct_domain::report::{Report, ReportCommand};
use precinct_domain::Aggregate;
use precinct_eventlog::{CommandMeta, EventStore};

use crate::policy::{require_desk_of, require_visible, Principal, DESK};
use crate::{App, AppError};

/// A notification requested.
#[derive(Debug)]
pub struct Notified {
    pub patrol_id: PatrolId,
    pub position: u64,
}

/// Asks for the crew of the patrol assigned to report `id` to be notified.
pub async fn notify<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
) -> Result<Notified, AppError> {
    by.require(DESK)?;
    let rid = id.as_uuid();
    let by = *by;
    let out = app
        .run::<Report>(meta, rid, async move |uow| {
            let at = uow.now();
            let report: Report = uow.load(rid).await?;
            require_visible(Some(&by), None, &report)?;
            require_desk_of(&by, report.station_id)?;
            uow.execute::<Report>(rid, ReportCommand::NotifyPatrol { by: by.id, at })
                .await?;
            Ok(())
        })
        .await?;
    let patrol_id = out
        .state::<Report>(rid)
        .filter(|r| r.version_exists())
        .and_then(|r| r.patrol_id)
        .ok_or(AppError::NotFound)?;
    Ok(Notified {
        patrol_id,
        position: out.position,
    })
}
