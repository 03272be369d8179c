//! A supervisor's review of a resolution: approve (`RESOLVED` → `CLOSED`) or reject
//! (back to `RESPONDING`, reopening the patrol's assignment). SUPERVISOR, ADMIN of the
//! report's station.

use precinct_domain::ids::ReportId;
use precinct_domain::report::ReportCommand;
use precinct_eventlog::{CommandMeta, EventStore};

use super::{change, Change, Changed, Decision, OnReport, PatrolEffect};
use crate::policy::{Principal, REVIEWERS};
use crate::{App, AppError};

pub async fn approve<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
) -> Result<Changed, AppError> {
    by.require(REVIEWERS)?;
    change(app, by, meta, id, vec![Change::ApproveClosure]).await
}

pub async fn reject<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    reason: String,
) -> Result<Changed, AppError> {
    by.require(REVIEWERS)?;
    change(app, by, meta, id, vec![Change::RejectClosure(reason)]).await
}

pub(super) fn decide_approve(on: &OnReport<'_>) -> Result<Decision, AppError> {
    on.reviewer()?;
    Ok(Decision::report(ReportCommand::ApproveClosure {
        reviewer_id: on.by.id,
        at: on.at,
    }))
}

pub(super) fn decide_reject(on: &OnReport<'_>, reason: String) -> Result<Decision, AppError> {
    on.reviewer()?;
    Ok(Decision {
        report: ReportCommand::RejectClosure {
            reviewer_id: on.by.id,
            reason,
            at: on.at,
        },
        patrol: Some(PatrolEffect::Reopen),
    })
}
