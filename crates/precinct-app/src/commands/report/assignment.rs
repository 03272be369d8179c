//! The assigned patrol's steps on a report: accept (`ASSIGNED` → `ACCEPTED`), decline
//! (back to `NEW`, closing the patrol's assignment), respond (`ACCEPTED` →
//! `RESPONDING`), resolve (`RESPONDING` → `RESOLVED`, closing the assignment, pending a
//! supervisor's review). Only a serving member of the assigned patrol: in its crew and,
//! as their account is now, a PATROL of its station.

use precinct_domain::ids::ReportId;
use precinct_domain::patrol::AssignmentOutcome;
use precinct_domain::report::ReportCommand;
use precinct_eventlog::{CommandMeta, EventStore};

use super::{change, Change, Changed, Decision, OnReport};
use crate::policy::Principal;
use crate::{App, AppError};

pub async fn accept<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
) -> Result<Changed, AppError> {
    change(app, by, meta, id, vec![Change::Accept]).await
}

pub async fn decline<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    reason: String,
) -> Result<Changed, AppError> {
    let changed = change(app, by, meta, id, vec![Change::Decline(reason)]).await?;
    metrics::counter!("precinct_assignment_declines_total").increment(1);
    Ok(changed)
}

pub async fn respond<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
) -> Result<Changed, AppError> {
    change(app, by, meta, id, vec![Change::Respond]).await
}

pub async fn resolve<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    resolution_notes: String,
) -> Result<Changed, AppError> {
    change(app, by, meta, id, vec![Change::Resolve(resolution_notes)]).await
}

pub(super) fn decide_accept(on: &OnReport<'_>) -> Result<Decision, AppError> {
    on.member()?;
    Ok(Decision::report(ReportCommand::Accept { at: on.at }))
}

pub(super) fn decide_decline(on: &OnReport<'_>, reason: String) -> Result<Decision, AppError> {
    on.member()?;
    Ok(Decision::closing(
        ReportCommand::Decline { reason, at: on.at },
        AssignmentOutcome::Declined,
    ))
}

pub(super) fn decide_respond(on: &OnReport<'_>) -> Result<Decision, AppError> {
    on.member()?;
    Ok(Decision::report(ReportCommand::Respond { at: on.at }))
}

pub(super) fn decide_resolve(
    on: &OnReport<'_>,
    resolution_notes: String,
) -> Result<Decision, AppError> {
    on.member()?;
    Ok(Decision::closing(
        ReportCommand::Resolve {
            resolution_notes,
            at: on.at,
        },
        AssignmentOutcome::Finished,
    ))
}
