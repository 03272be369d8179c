//! Withdrawing a report (`WITHDRAWN`, final): its reporter while it is `NEW`, an ADMIN
//! at any time (then an open assignment of the patrol is closed).

use precinct_domain::ids::ReportId;
use precinct_domain::patrol::AssignmentOutcome;
use precinct_domain::report::ReportCommand;
use precinct_eventlog::{CommandMeta, EventStore};

use super::{change, Change, Changed, Decision, OnReport};
use crate::error::{Denied, Refusal};
use crate::policy::Principal;
use crate::{App, AppError};

pub async fn withdraw<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    reason: Option<String>,
) -> Result<Changed, AppError> {
    change(app, by, meta, id, vec![Change::Withdraw(reason)]).await
}

pub(super) fn decide(on: &OnReport<'_>, reason: Option<String>) -> Result<Decision, AppError> {
    if !(on.reporter_while_new() || on.by.is_admin()) {
        return Err(if on.reported_by_principal() {
            Refusal::WithdrawAfterNew.into()
        } else {
            Denied::Withdraw.into()
        });
    }
    Ok(Decision::closing(
        ReportCommand::Withdraw { reason, at: on.at },
        AssignmentOutcome::Cancelled,
    ))
}
