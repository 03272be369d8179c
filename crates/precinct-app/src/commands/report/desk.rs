//! The dispatch desk's decisions on a report: triage (its priority) and rejection as
//! invalid (final; closes the patrol's assignment if one is open). DISPATCHER,
//! SUPERVISOR, ADMIN of the report's station.

use precinct_domain::ids::ReportId;
use precinct_domain::patrol::AssignmentOutcome;
use precinct_domain::report::ReportCommand;
use precinct_domain::values::Priority;
use precinct_eventlog::{CommandMeta, EventStore};

use super::{change, Change, Changed, Decision, OnReport};
use crate::policy::{Principal, DESK};
use crate::{App, AppError};

/// Only the desk triages or rejects (checked before the request's fields are parsed).
pub fn may_triage(by: &Principal) -> Result<(), AppError> {
    by.require(DESK)
}

/// Sets the report's priority.
pub async fn triage<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    priority: Priority,
) -> Result<Changed, AppError> {
    may_triage(by)?;
    change(app, by, meta, id, vec![Change::Triage(priority)]).await
}

/// Rejects the report as invalid: `justification` for staff, `public_reason` for the
/// reporter.
pub async fn reject<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    justification: String,
    public_reason: Option<String>,
) -> Result<Changed, AppError> {
    by.require(DESK)?;
    let reject = Change::Reject {
        justification,
        public_reason,
    };
    change(app, by, meta, id, vec![reject]).await
}

pub(super) fn decide_triage(on: &OnReport<'_>, priority: Priority) -> Result<Decision, AppError> {
    on.desk()?;
    Ok(Decision::report(ReportCommand::Triage {
        priority,
        at: on.at,
    }))
}

pub(super) fn decide_reject(
    on: &OnReport<'_>,
    justification: String,
    public_reason: Option<String>,
) -> Result<Decision, AppError> {
    on.desk()?;
    Ok(Decision::closing(
        ReportCommand::RejectInvalid {
            justification,
            public_reason,
            by: on.by.id,
            at: on.at,
        },
        AssignmentOutcome::Cancelled,
    ))
}
