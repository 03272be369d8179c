//! `DELETE /admin/data-subjects/{id}`: erase a data subject's personal data by
//! destroying its key (crypto-shredding), and record `DataSubjectErased`.

use axum::extract::State;
use axum::routing::delete;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use precinct_app::commands::subject;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::Cmd;
use crate::extract::Path;
use crate::openapi::{CommandErrors, CommandHeaders};
use crate::ports::Facts;
use crate::problem::ApiResult;
use crate::routes::crimes::NoBody;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/data-subjects/{id}", delete(erase))
}

#[derive(OpenApi)]
#[openapi(paths(erase))]
pub struct Api;

#[derive(Debug, Serialize, ToSchema)]
pub struct Erased {
    subject_id: Uuid,
    erased_at: Option<DateTime<Utc>>,
    position: u64,
}

/// Erase a data subject's personal data (its key is destroyed) and record
/// `DataSubjectErased`.
///
/// Roles: ADMIN. The subject is an account id (a reporter, or any account: its e-mail
/// address and name, and the invitation's address for an invited account) or the id
/// of an anonymous report. The key is destroyed first, then the erasure is recorded; a
/// retry completes both. An erased account can no longer sign in, and its tokens are
/// refused. An active ADMIN account is 409 (nothing destroyed): deactivate it first,
/// which keeps another ADMIN in office.
#[utoipa::path(
    delete,
    path = "/admin/data-subjects/{id}",
    operation_id = "erase_data_subject",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "An account, or an anonymous report"), CommandHeaders),
    request_body = Option<NoBody>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The erasure", body = Erased),
        CommandErrors,
    )
)]
async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<NoBody>,
) -> ApiResult<Json<Erased>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let out = subject::erase(
        &state.app,
        &by,
        &meta,
        id,
        state.app.vault(),
        &Facts(&state),
    )
    .await?;
    Ok(Json(Erased {
        subject_id: id,
        erased_at: out.erased_at,
        position: out.position,
    }))
}
