//! Editing and retiring a crime type (`PATCH /crime-types/{code}`,
//! `POST /crime-types/{code}/retire`): an ADMIN, one append on the type's stream. On a
//! concurrent change the command is decided again on the fresh state (last writer
//! wins field by field, as station edits). A retired type stays readable; no new text
//! resolves to it. `OTHER` is built in: editing or retiring it is refused (409).

use precinct_domain::crime_type::{
    CrimeType, CrimeTypeChanges, CrimeTypeCode, CrimeTypeCommand, CrimeTypeError,
};
use precinct_eventlog::{CommandMeta, EventStore};

use crate::commands::crime_type::{may_change, written, CrimeTypeWritten};
use crate::policy::Principal;
use crate::{App, AppError};

/// Edits type `code`; an edit that changes nothing appends nothing.
pub async fn update<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    code: CrimeTypeCode,
    changes: CrimeTypeChanges,
) -> Result<CrimeTypeWritten, AppError> {
    run(app, by, meta, code, Action::Update(changes)).await
}

/// Retires type `code` (already retired: nothing appended).
pub async fn retire<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    code: CrimeTypeCode,
) -> Result<CrimeTypeWritten, AppError> {
    run(app, by, meta, code, Action::Retire).await
}

#[derive(Clone)]
enum Action {
    Update(CrimeTypeChanges),
    Retire,
}

async fn run<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    code: CrimeTypeCode,
    action: Action,
) -> Result<CrimeTypeWritten, AppError> {
    may_change(by)?;
    if code.is_other() {
        return Err(AppError::domain(CrimeTypeError::BuiltIn));
    }
    let stream = code.stream_id();
    let out = app
        .run::<CrimeType>(meta, stream, async move |uow| {
            let at = uow.now();
            let command = match action.clone() {
                Action::Update(changes) => CrimeTypeCommand::Update { changes, at },
                Action::Retire => CrimeTypeCommand::Retire { at },
            };
            uow.execute::<CrimeType>(stream, command).await?;
            Ok(())
        })
        .await?;
    written(out.state::<CrimeType>(stream).cloned(), out.position)
}
