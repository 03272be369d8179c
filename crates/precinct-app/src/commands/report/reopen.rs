//! Reopening: a `CLOSED` or `REJECTED` report goes back to the queue (`NEW`, no patrol)
//! with a reason; the SLA clocks start again with its next assignment. SUPERVISOR,
//! ADMIN of the report's station. No patrol holds a closed or rejected report, so no
//! patrol's workload changes.

use precinct_domain::ids::ReportId;
use precinct_domain::report::ReportCommand;
use precinct_eventlog::{CommandMeta, EventStore};

use super::{change, Change, Changed, Decision, OnReport};
use crate::policy::{Principal, REVIEWERS};
use crate::{App, AppError};

/// Only a reviewer reopens (checked before the request's fields are parsed).
pub fn may_reopen(by: &Principal) -> Result<(), AppError> {
    by.require(REVIEWERS)
}

pub async fn reopen<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    reason: String,
) -> Result<Changed, AppError> {
    may_reopen(by)?;
    change(app, by, meta, id, vec![Change::Reopen(reason)]).await
}

pub(super) fn decide(on: &OnReport<'_>, reason: String) -> Result<Decision, AppError> {
    on.reviewer()?;
    Ok(Decision::report(ReportCommand::Reopen {
        reason,
        by: on.by.id,
        at: on.at,
    }))
}
