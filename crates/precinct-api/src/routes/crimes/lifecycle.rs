//! The lifecycle of a report over HTTP: `POST /crimes/{id}/<step>` (triage, the
//! assigned patrol's steps, notes, public updates, evidence, the closure review,
//! rejection) and `DELETE /crimes/{id}` (withdrawal). Each handler parses its body,
//! calls the command of [`precinct_app::commands::report`] that holds its rules, and
//! answers the report in the caller's view.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use precinct_app::commands::report::{assignment, closure, desk, notes, withdraw as withdrawal};
use precinct_domain::ids::ReportId;
use precinct_domain::values::MediaType;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{parse_priority, written, NoBody};
use crate::auth::Caller;
use crate::extract::{Cmd, Path};
use crate::openapi::{CommandErrors, CommandHeaders, WrittenReport};
use crate::problem::{ApiError, ApiResult};
use crate::views::{ReportAnswer, Written};
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriageBody {
    #[schema(value_type = crate::openapi::Priority)]
    priority: String,
}

/// Triage a report: set its priority.
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    post,
    path = "/crimes/{id}/triage",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = TriageBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        CommandErrors,
    )
)]
pub(super) async fn triage(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<TriageBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let by = caller.principal();
    desk::may_triage(&by)?;
    let priority = parse_priority(&cmd.body.priority)?;
    let meta = cmd.ctx.meta(by.actor());
    let changed = desk::triage(&state.app, &by, &meta, ReportId::new(id), priority).await?;
    Ok(written(&caller, changed))
}

/// Accept an assignment (`ASSIGNED` → `ACCEPTED`).
///
/// Roles: PATROL, a member of the assigned patrol.
#[utoipa::path(
    post,
    path = "/crimes/{id}/accept",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = Option<NoBody>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        CommandErrors,
    )
)]
pub(super) async fn accept(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<NoBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let changed = assignment::accept(&state.app, &by, &meta, ReportId::new(id)).await?;
    Ok(written(&caller, changed))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    reason: String,
}

/// Decline an assignment: the report goes back to the queue (`NEW`).
///
/// Roles: PATROL, a member of the assigned patrol.
#[utoipa::path(
    post,
    path = "/crimes/{id}/decline",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = ReasonBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        CommandErrors,
    )
)]
pub(super) async fn decline(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<ReasonBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let reason = cmd.body.reason;
    let changed = assignment::decline(&state.app, &by, &meta, ReportId::new(id), reason).await?;
    Ok(written(&caller, changed))
}

/// Report arrival on scene (`ACCEPTED` → `RESPONDING`).
///
/// Roles: PATROL, a member of the assigned patrol.
#[utoipa::path(
    post,
    path = "/crimes/{id}/respond",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = Option<NoBody>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        CommandErrors,
    )
)]
pub(super) async fn respond(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<NoBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let changed = assignment::respond(&state.app, &by, &meta, ReportId::new(id)).await?;
    Ok(written(&caller, changed))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    resolution_notes: String,
}

/// Resolve a report (`RESPONDING` → `RESOLVED`), pending a supervisor's review.
///
/// Roles: PATROL, a member of the assigned patrol.
#[utoipa::path(
    post,
    path = "/crimes/{id}/resolve",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = ResolveBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        CommandErrors,
    )
)]
pub(super) async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<ResolveBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let notes = cmd.body.resolution_notes;
    let changed = assignment::resolve(&state.app, &by, &meta, ReportId::new(id), notes).await?;
    Ok(written(&caller, changed))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    note: String,
}

/// Add a note to a report.
///
/// Roles: PATROL (a member of the assigned patrol); DISPATCHER, SUPERVISOR, ADMIN
/// (station-scoped).
#[utoipa::path(
    post,
    path = "/crimes/{id}/notes",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = NoteBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The report with the note", body = WrittenReport),
        CommandErrors,
    )
)]
pub(super) async fn add_note(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<NoteBody>,
) -> ApiResult<(StatusCode, Json<Written<ReportAnswer>>)> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let note = cmd.body.note;
    let changed = notes::add_note(&state.app, &by, &meta, ReportId::new(id), note).await?;
    Ok((StatusCode::CREATED, written(&caller, changed)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicUpdateBody {
    /// What the reporter reads (with the time it was posted, never who wrote it).
    #[schema(example = "Officers are on their way.")]
    message: String,
}

/// Post an update for the report's reporter (the reporter sees public updates; internal
/// notes stay with staff).
///
/// Roles: PATROL (a member of the assigned patrol); DISPATCHER, SUPERVISOR, ADMIN
/// (station-scoped).
#[utoipa::path(
    post,
    path = "/crimes/{id}/public-updates",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = PublicUpdateBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The report with the update", body = WrittenReport),
        CommandErrors,
    )
)]
pub(super) async fn post_public_update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<PublicUpdateBody>,
) -> ApiResult<(StatusCode, Json<Written<ReportAnswer>>)> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let message = cmd.body.message;
    let changed =
        notes::post_public_update(&state.app, &by, &meta, ReportId::new(id), message).await?;
    Ok((StatusCode::CREATED, written(&caller, changed)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBody {
    /// Where the file is; stored as given, never fetched by Precinct.
    url: String,
    #[schema(value_type = crate::openapi::MediaType)]
    media_type: String,
    #[serde(default)]
    captured_at: Option<DateTime<Utc>>,
    #[serde(default)]
    description: Option<String>,
}

/// Attach evidence (a link to a file) to a report.
///
/// Roles: PATROL, a member of the assigned patrol.
#[utoipa::path(
    post,
    path = "/crimes/{id}/evidence",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = EvidenceBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The report with the evidence", body = WrittenReport),
        CommandErrors,
    )
)]
pub(super) async fn attach_evidence(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<EvidenceBody>,
) -> ApiResult<(StatusCode, Json<Written<ReportAnswer>>)> {
    let b = cmd.body;
    let media_type = b
        .media_type
        .parse::<MediaType>()
        .map_err(|e| ApiError::invalid("media_type", e.to_string()))?;
    let (by, meta) = cmd.ctx.for_caller(&caller);
    // The URL is stored as given; Precinct never fetches it (no server-side requests).
    let evidence = notes::Evidence {
        url: b.url,
        media_type,
        captured_at: b.captured_at,
        description: b.description,
    };
    let changed =
        notes::attach_evidence(&state.app, &by, &meta, ReportId::new(id), evidence).await?;
    Ok((StatusCode::CREATED, written(&caller, changed)))
}

/// Approve a resolution: close the report (`RESOLVED` → `CLOSED`).
///
/// Roles: SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    post,
    path = "/crimes/{id}/closure/approve",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = Option<NoBody>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        CommandErrors,
    )
)]
pub(super) async fn approve_closure(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<NoBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let changed = closure::approve(&state.app, &by, &meta, ReportId::new(id)).await?;
    Ok(written(&caller, changed))
}

/// Reject a resolution: the report goes back to its patrol (`RESOLVED` → `RESPONDING`).
///
/// Roles: SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    post,
    path = "/crimes/{id}/closure/reject",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = ReasonBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        CommandErrors,
    )
)]
pub(super) async fn reject_closure(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<ReasonBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let reason = cmd.body.reason;
    let changed = closure::reject(&state.app, &by, &meta, ReportId::new(id), reason).await?;
    Ok(written(&caller, changed))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JustificationBody {
    /// Internal: why the report is not valid (staff and the audit trail only).
    justification: String,
    /// What the reporter is told; without it they read a neutral default text.
    #[serde(default)]
    public_reason: Option<String>,
}

/// Reject a report as invalid (`REJECTED`, final).
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    post,
    path = "/crimes/{id}/reject",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = JustificationBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        CommandErrors,
    )
)]
pub(super) async fn reject_invalid(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<JustificationBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let b = cmd.body;
    let id = ReportId::new(id);
    let changed =
        desk::reject(&state.app, &by, &meta, id, b.justification, b.public_reason).await?;
    Ok(written(&caller, changed))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawBody {
    #[serde(default)]
    reason: Option<String>,
}

/// Withdraw a report (`WITHDRAWN`, final).
///
/// Roles: the reporter (CITIZEN or staff) while the report is `NEW`; ADMIN at any time.
#[utoipa::path(
    delete,
    path = "/crimes/{id}",
    operation_id = "withdraw_crime",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = Option<WithdrawBody>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        CommandErrors,
    )
)]
pub(super) async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<WithdrawBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let reason = cmd.body.reason;
    let changed = withdrawal::withdraw(&state.app, &by, &meta, ReportId::new(id), reason).await?;
    Ok(written(&caller, changed))
}
