//! Amending a report (`PUT`/`PATCH /crimes/{id}`): its reporter while it is `NEW`, or the
//! dispatch desk of its station at any time. Status and priority moves in the same
//! request are the matching transitions, made in the same command. New crime types
//! resolve to catalogue codes on a catalogue at least as new as its last change, as at
//! submission (ADR 0026).

use precinct_domain::ids::ReportId;
use precinct_domain::report::{AmendedBy, PersonalChanges, ReportChanges, ReportCommand};
use precinct_eventlog::{CommandMeta, EventStore};

use super::{change, Change, Changed, Decision, OnReport};
use crate::error::{Denied, Refusal, Unavailable};
use crate::policy::Principal;
use crate::ports::CrimeTypes;
use crate::{App, AppError};

/// Makes `changes` (details, and status or priority moves) as one command; crime types
/// it names resolve on the catalogue of `types`.
pub async fn amend<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    mut changes: Vec<Change>,
    types: &impl CrimeTypes,
) -> Result<Changed, AppError> {
    if changes.iter().any(|c| !matches!(c, Change::Amend { .. })) {
        may_move_status(by)?;
    }
    let retyped = changes
        .iter()
        .any(|c| matches!(c, Change::Amend { changes, .. } if changes.crime_types.is_some()));
    if retyped {
        let current = types.catalogue().await?.ok_or(Unavailable::Catalogue)?;
        for c in &mut changes {
            if let Change::Amend { catalogue, .. } = c {
                catalogue.clone_from(&current);
            }
        }
    }
    change(app, by, meta, id, changes).await
}

/// Only staff move a report's status or priority through an amendment (checked before
/// the request's fields are even parsed).
pub fn may_move_status(by: &Principal) -> Result<(), AppError> {
    if by.role.is_staff() {
        Ok(())
    } else {
        Err(Denied::StatusOrPriority.into())
    }
}

pub(super) fn decide(
    on: &OnReport<'_>,
    changes: ReportChanges,
    personal: Option<PersonalChanges>,
    catalogue: Vec<precinct_domain::crime_type::CrimeTypeFacts>,
) -> Result<Decision, AppError> {
    // The desk amends as staff, also a report it made itself; the reporter's own
    // amendments are the ones the report caps.
    let by = match on.desk() {
        Ok(()) => AmendedBy::Staff,
        Err(_) if on.reporter_while_new() => AmendedBy::Reporter,
        Err(_) if on.reported_by_principal() && !on.by.role.is_staff() => {
            return Err(Refusal::AmendAfterNew.into())
        }
        Err(e) => return Err(e),
    };
    Ok(Decision::report(ReportCommand::Amend {
        changes,
        personal,
        by,
        catalogue,
        at: on.at,
    }))
}
