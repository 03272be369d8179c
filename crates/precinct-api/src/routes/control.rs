//! The desk's control over reports (issue 16): `POST /crimes/{id}/unassign`,
//! `/reassign`, `/transfer`, `/reopen`, "Notify officer" `POST /crimes/{id}/notify`
//! (ADR 0032), and bulk automatic assignment `POST /dispatch/auto`. Each handler parses its body, calls its command of
//! [`precinct_app::commands`] (which holds who may do it and its effect on every
//! aggregate it touches) and renders the answer.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use precinct_app::commands::bulk_dispatch::{self, BulkOrder, LeftReason, BULK_MAX};
use precinct_app::commands::report::{control, notify as notifying, reopen as reopening};
use precinct_domain::dispatch::AssignmentDecision;
use precinct_domain::ids::{PatrolId, ReportId, StationId};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::crimes::written;
use crate::auth::Caller;
use crate::extract::{Cmd, Path};
use crate::openapi::{CommandErrors, CommandHeaders, WrittenReport};
use crate::ports::Facts;
use crate::problem::{ApiError, ApiResult};
use crate::views::{ReportAnswer, Written};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/crimes/{id}/unassign", post(unassign))
        .route("/crimes/{id}/reassign", post(reassign))
        .route("/crimes/{id}/transfer", post(transfer))
        .route("/crimes/{id}/reopen", post(reopen))
        .route("/crimes/{id}/notify", post(notify))
        .route("/dispatch/auto", post(auto_assign))
}

#[derive(OpenApi)]
#[openapi(paths(unassign, reassign, transfer, reopen, notify, auto_assign))]
pub struct Api;

/// A notification requested: the patrol whose crew is notified, and the log position of
/// the request.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotifyAnswer {
    pub report_id: Uuid,
    pub patrol_id: Uuid,
    pub position: u64,
}

/// Notify the officers of the patrol assigned to a report ("Notify officer").
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped). Every member of the patrol is
/// notified on every device they registered (`POST /me/devices`); the request is an
/// event (`PatrolNotified`), delivery follows it. 409 when the report has no assigned
/// patrol (not `ASSIGNED`, `ACCEPTED` or `RESPONDING`).
#[utoipa::path(
    post,
    path = "/crimes/{id}/notify",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = Option<crate::routes::crimes::NoBody>,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Recorded; the crew is notified", body = NotifyAnswer),
        CommandErrors,
    )
)]
async fn notify(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<crate::routes::crimes::NoBody>,
) -> ApiResult<(axum::http::StatusCode, Json<NotifyAnswer>)> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let out = notifying::notify(&state.app, &by, &meta, ReportId::new(id)).await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(NotifyAnswer {
            report_id: id,
            patrol_id: out.patrol_id.as_uuid(),
            position: out.position,
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnassignBody {
    /// The patrol the caller saw on the report: if another patrol holds it now (a
    /// concurrent reassignment won), the request is refused with 409.
    from_patrol_id: Uuid,
    reason: String,
}

/// Take an open assignment back from its patrol: the report returns to the queue
/// (`NEW`), the patrol's assignment closes (`WITHDRAWN`, not a decline), all in one
/// append.
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped). 409 when the report is not
/// `ASSIGNED`, `ACCEPTED` or `RESPONDING`, or another patrol holds it now.
#[utoipa::path(
    post,
    path = "/crimes/{id}/unassign",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = UnassignBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        CommandErrors,
    )
)]
async fn unassign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<UnassignBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let from = PatrolId::new(cmd.body.from_patrol_id);
    let changed = control::unassign(
        &state.app,
        &by,
        &meta,
        ReportId::new(id),
        from,
        cmd.body.reason,
    )
    .await?;
    Ok(written(&caller, changed))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignBody {
    /// The patrol the caller saw on the report: if another patrol holds it now (a
    /// concurrent reassignment won), the request is refused with 409.
    from_patrol_id: Uuid,
    /// The new patrol: of the report's station, not `OFF_DUTY`, not the current one.
    patrol_id: Uuid,
    reason: String,
}

/// Move an open assignment to another patrol of the report's station: the report is
/// `ASSIGNED` to the new patrol; the old patrol's assignment closes (`WITHDRAWN`) and
/// the new one's opens, in one append.
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped). 409 when the report is not
/// assigned, another patrol holds it now, the new patrol is the current one or is
/// `OFF_DUTY`; 422 when the new patrol is not of the report's station.
#[utoipa::path(
    post,
    path = "/crimes/{id}/reassign",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = ReassignBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        CommandErrors,
    )
)]
async fn reassign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<ReassignBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let body = cmd.body;
    let changed = control::reassign(
        &state.app,
        &by,
        &meta,
        ReportId::new(id),
        PatrolId::new(body.from_patrol_id),
        PatrolId::new(body.patrol_id),
        body.reason,
    )
    .await?;
    Ok(written(&caller, changed))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// The station that takes the report over.
    station_id: Uuid,
    reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Transferred {
    crime_id: Uuid,
    /// The report's station now.
    station_id: Uuid,
    /// Log position of the command's last event.
    position: u64,
}

/// Transfer a report to another station: an open assignment is withdrawn first (in the
/// same append); the report arrives `NEW`, and from then on the new station's staff see
/// and work it (the old station's no longer do).
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped: the report's current station).
/// 422 for an unknown station; 409 for a station that takes no reports, the report's own
/// station, or a report that is `RESOLVED` or final.
#[utoipa::path(
    post,
    path = "/crimes/{id}/transfer",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = TransferBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Where the report is now", body = Transferred),
        CommandErrors,
    )
)]
async fn transfer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<TransferBody>,
) -> ApiResult<Json<Transferred>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let body = cmd.body;
    let out = control::transfer(
        &state.app,
        &by,
        &meta,
        ReportId::new(id),
        StationId::new(body.station_id),
        body.reason,
        &Facts(&state),
    )
    .await?;
    Ok(Json(Transferred {
        crime_id: id,
        station_id: out.station.as_uuid(),
        position: out.position,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenBody {
    reason: String,
}

/// Reopen a `CLOSED` or `REJECTED` report: back to `NEW`, without a patrol; the SLA
/// clocks start again with its next assignment.
///
/// Roles: SUPERVISOR, ADMIN (station-scoped). 409 when the report is not `CLOSED` or
/// `REJECTED`.
#[utoipa::path(
    post,
    path = "/crimes/{id}/reopen",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = ReopenBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        CommandErrors,
    )
)]
async fn reopen(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<ReopenBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let changed =
        reopening::reopen(&state.app, &by, &meta, ReportId::new(id), cmd.body.reason).await?;
    Ok(written(&caller, changed))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoBody {
    station_id: Uuid,
    /// The reports to assign (at most 100; assigned in queue order whatever order they
    /// are listed in). Leave out to take the station's queue.
    #[serde(default)]
    #[schema(max_items = 100)]
    crime_ids: Option<Vec<Uuid>>,
    /// Without `crime_ids`: how many `NEW` reports to take from the queue (1..=100,
    /// default 20).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AutoAssigned {
    crime_id: Uuid,
    patrol_id: Uuid,
    /// The ranking and the excluded patrols (absent when answering a retried request).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::openapi::AssignmentDecision>)]
    decision: Option<AssignmentDecision>,
    /// Log position of this assignment.
    position: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AutoLeft {
    crime_id: Uuid,
    /// `NO_AVAILABLE_PATROL` (the run stopped there), `NOT_NEW`, `NOT_AT_STATION`.
    reason: &'static str,
    /// `NOT_NEW`: the report's status now.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AutoAnswer {
    assigned: Vec<AutoAssigned>,
    left: Vec<AutoLeft>,
    /// Log position of the run's last assignment (0: none).
    position: u64,
}

/// Assign a station's `NEW` reports automatically, in queue order (highest priority,
/// then oldest), each by the policy of `POST /dispatch` without a patrol and recorded
/// with its ranked candidates; the run stops at the first report no patrol is
/// `AVAILABLE` for. Each report is its own atomic append; concurrent runs never assign a
/// report twice nor give a patrol more than the policy does.
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped). 422 for an unknown station or
/// more than 100 reports.
#[utoipa::path(
    post,
    path = "/dispatch/auto",
    tag = "dispatch",
    params(CommandHeaders),
    request_body = AutoBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What was assigned and what was left, and why", body = AutoAnswer),
        CommandErrors,
    )
)]
async fn auto_assign(
    State(state): State<AppState>,
    caller: Caller,
    cmd: Cmd<AutoBody>,
) -> ApiResult<Json<AutoAnswer>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    bulk_dispatch::may_dispatch(&by)?;
    let body = cmd.body;
    if let Some(ids) = &body.crime_ids {
        if ids.len() > BULK_MAX as usize {
            return Err(ApiError::invalid(
                "crime_ids",
                format!("at most {BULK_MAX} reports"),
            ));
        }
    }
    if let Some(limit) = body.limit {
        if !(1..=BULK_MAX).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("between 1 and {BULK_MAX}"),
            ));
        }
    }
    let order = BulkOrder {
        station: StationId::new(body.station_id),
        reports: body
            .crime_ids
            .map(|ids| ids.into_iter().map(ReportId::new).collect()),
        limit: body.limit,
    };
    let facts = Facts(&state);
    let out = bulk_dispatch::auto_assign(&state.app, &by, &meta, order, &facts, &facts).await?;
    Ok(Json(AutoAnswer {
        assigned: out
            .assigned
            .into_iter()
            .map(|a| AutoAssigned {
                crime_id: a.report.as_uuid(),
                patrol_id: a.patrol.as_uuid(),
                decision: a.decision,
                position: a.position,
            })
            .collect(),
        left: out
            .left
            .into_iter()
            .map(|l| {
                let (reason, status) = match l.reason {
                    LeftReason::NoAvailablePatrol => ("NO_AVAILABLE_PATROL", None),
                    LeftReason::NotNew(s) => ("NOT_NEW", Some(s.to_string())),
                    LeftReason::NotAtStation => ("NOT_AT_STATION", None),
                };
                AutoLeft {
                    crime_id: l.report.as_uuid(),
                    reason,
                    status,
                }
            })
            .collect(),
        position: out.position,
    }))
}
