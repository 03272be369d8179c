//! `DELETE /admin/data-subjects/{id}`: erase a data subject's personal data by
//! destroying its key (crypto-shredding), and record `DataSubjectErased`.

use axum::extract::{Path, State};
use axum::routing::delete;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use precinct_domain::account::Account;
use precinct_domain::report::{Report, Reporter};
use precinct_domain::subject::{DataSubject, SubjectCommand};
use precinct_domain::values::Role;
use precinct_domain::Aggregate;
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::Cmd;
use crate::problem::{ApiError, ApiResult};
use crate::routes::crimes::NoBody;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/data-subjects/{id}", delete(erase))
}

#[derive(Debug, Serialize)]
pub struct Erased {
    subject_id: Uuid,
    erased_at: Option<DateTime<Utc>>,
    position: u64,
}

/// ADMIN. The subject is an account id (a reporter) or the id of an anonymous report.
/// The key is destroyed first, then the erasure is recorded; a retry completes both.
async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<NoBody>,
) -> ApiResult<Json<Erased>> {
    caller.require(&[Role::Admin])?;
    let (account, _) = state.app.load::<Account>(id).await?;
    let is_subject = account.version_exists() || {
        let (report, _) = state.app.load::<Report>(id).await?;
        matches!(report.reporter, Some(Reporter::Anonymous { .. }))
    };
    if !is_subject {
        return Err(ApiError::NotFound);
    }
    let vault = state
        .app
        .vault()
        .ok_or_else(|| ApiError::Unavailable("no key store is configured".into()))?;
    vault
        .erase(id)
        .await
        .map_err(|e| ApiError::Unavailable(format!("key store: {e}")))?;
    let meta = cmd.ctx.meta(caller.actor());
    let out = precinct_app::run!(state.app, &meta, DataSubject, ApiError, id, |uow| {
        let at = uow.now();
        uow.execute::<DataSubject>(
            id,
            SubjectCommand::Erase {
                subject_id: id,
                erased_by: caller.id,
                at,
            },
        )
        .await?;
        Ok(())
    })?;
    let subject = out.state::<DataSubject>(id);
    Ok(Json(Erased {
        subject_id: id,
        erased_at: subject.and_then(|s| s.erased_at),
        position: out.position,
    }))
}
