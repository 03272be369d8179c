//! Creating a crime type (`POST /crime-types`): an ADMIN adds a type to the catalogue
//! (ADR 0026). Its stream is keyed by its code, so two creations of one code meet on
//! one expected version: one appends, the other is decided again and refused (409).

use precinct_domain::crime_type::{CrimeType, CrimeTypeCode, CrimeTypeCommand, CrimeTypeSpec};
use precinct_domain::values::Role;
use precinct_eventlog::{CommandMeta, EventStore};

use crate::policy::Principal;
use crate::{App, AppError};

/// A crime type after a command.
#[derive(Debug)]
pub struct CrimeTypeWritten {
    pub crime_type: CrimeType,
    pub position: u64,
}

/// Only an ADMIN changes the catalogue (checked before the request's fields are parsed).
pub fn may_change(by: &Principal) -> Result<(), AppError> {
    by.require(&[Role::Admin])
}

pub async fn create<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    code: CrimeTypeCode,
    spec: CrimeTypeSpec,
) -> Result<CrimeTypeWritten, AppError> {
    may_change(by)?;
    let stream = code.stream_id();
    let out = app
        .run::<CrimeType>(meta, stream, async move |uow| {
            let at = uow.now();
            uow.execute::<CrimeType>(
                stream,
                CrimeTypeCommand::Create {
                    code: code.clone(),
                    spec: spec.clone(),
                    at,
                },
            )
            .await?;
            Ok(())
        })
        .await?;
    written(out.state::<CrimeType>(stream).cloned(), out.position)
}

pub(crate) fn written(
    crime_type: Option<CrimeType>,
    position: u64,
) -> Result<CrimeTypeWritten, AppError> {
    let crime_type = crime_type.ok_or(AppError::NotFound)?;
    Ok(CrimeTypeWritten {
        crime_type,
        position,
    })
}
