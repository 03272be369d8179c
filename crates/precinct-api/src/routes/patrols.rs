//! Patrols: registration, updates, status (commands). Positions are a later issue's
//! high-rate path.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{post, put};
use axum::{Json, Router};
use precinct_app::commands::patrol::{self, NewPatrol, PatrolUpdate, PatrolWritten};
use precinct_domain::ids::{AccountId, PatrolId, StationId};
use precinct_domain::values::PatrolStatus;
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::Cmd;
use crate::extract::Path;
use crate::openapi::{CommandErrors, CommandHeaders, CreationErrors, WrittenPatrol};
use crate::ports::Facts;
use crate::problem::{ApiError, ApiResult};
use crate::views::{PatrolView, Written};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/patrols/register", post(register))
        .route("/patrols/{id}", put(replace).patch(update))
        .route("/patrols/{id}/status", put(set_status))
}

#[derive(OpenApi)]
#[openapi(paths(register, replace, update, set_status))]
pub struct Api;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RegisterPatrolBody)]
pub struct RegisterBody {
    #[schema(example = "ALPHA-1")]
    call_sign: String,
    station_id: Uuid,
    /// Active PATROL accounts of the station.
    officer_ids: Vec<Uuid>,
}

/// Register a patrol of a station.
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    post,
    path = "/patrols/register",
    operation_id = "register_patrol",
    tag = "patrols",
    params(CommandHeaders),
    request_body = RegisterBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new patrol", body = WrittenPatrol),
        CreationErrors,
    )
)]
async fn register(
    State(state): State<AppState>,
    caller: Caller,
    cmd: Cmd<RegisterBody>,
) -> ApiResult<(StatusCode, Json<Written<PatrolView>>)> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let b = cmd.body;
    let new = NewPatrol {
        call_sign: b.call_sign,
        station: StationId::new(b.station_id),
        officers: b.officer_ids.into_iter().map(AccountId::new).collect(),
    };
    let out = patrol::register(&state.app, &by, &meta, new, &Facts(&state)).await?;
    Ok((StatusCode::CREATED, written(out)))
}

/// A patrol's new call sign and/or crew (PUT needs both).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdatePatrolBody)]
pub struct UpdateBody {
    #[serde(default)]
    call_sign: Option<String>,
    /// Active PATROL accounts of the patrol's station.
    #[serde(default)]
    officer_ids: Option<Vec<Uuid>>,
}

/// Replace a patrol's call sign and crew.
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    put,
    path = "/patrols/{id}",
    operation_id = "replace_patrol",
    tag = "patrols",
    params(("id" = Uuid, Path, description = "The patrol"), CommandHeaders),
    request_body = UpdateBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The patrol after the change", body = WrittenPatrol),
        CommandErrors,
    )
)]
async fn replace(
    state: State<AppState>,
    caller: Caller,
    path: Path<Uuid>,
    cmd: Cmd<UpdateBody>,
) -> ApiResult<Json<Written<PatrolView>>> {
    if cmd.body.call_sign.is_none() || cmd.body.officer_ids.is_none() {
        return Err(ApiError::invalid(
            "body",
            "PUT needs call_sign and officer_ids (use PATCH for a partial update)",
        ));
    }
    update(state, caller, path, cmd).await
}

/// Change a patrol's call sign and/or crew.
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    patch,
    path = "/patrols/{id}",
    operation_id = "update_patrol",
    tag = "patrols",
    params(("id" = Uuid, Path, description = "The patrol"), CommandHeaders),
    request_body = UpdateBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The patrol after the change", body = WrittenPatrol),
        CommandErrors,
    )
)]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<UpdateBody>,
) -> ApiResult<Json<Written<PatrolView>>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let b = cmd.body;
    let update = PatrolUpdate {
        call_sign: b.call_sign,
        officers: b
            .officer_ids
            .map(|ids| ids.into_iter().map(AccountId::new).collect()),
    };
    let id = PatrolId::new(id);
    let out = patrol::update(&state.app, &by, &meta, id, update, &Facts(&state)).await?;
    Ok(written(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PatrolStatusBody)]
pub struct StatusBody {
    #[schema(value_type = crate::openapi::PatrolStatus)]
    status: String,
}

/// Set a patrol's availability.
///
/// Roles: a PATROL member of the patrol; DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    put,
    path = "/patrols/{id}/status",
    operation_id = "set_patrol_status",
    tag = "patrols",
    params(("id" = Uuid, Path, description = "The patrol"), CommandHeaders),
    request_body = StatusBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The patrol after the change", body = WrittenPatrol),
        CommandErrors,
    )
)]
async fn set_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<StatusBody>,
) -> ApiResult<Json<Written<PatrolView>>> {
    let status = cmd
        .body
        .status
        .parse::<PatrolStatus>()
        .map_err(|e| ApiError::invalid("status", e.to_string()))?;
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let out = patrol::set_status(&state.app, &by, &meta, PatrolId::new(id), status).await?;
    Ok(written(out))
}

fn written(out: PatrolWritten) -> Json<Written<PatrolView>> {
    Json(Written {
        view: PatrolView::from(&out.patrol),
        position: out.position,
    })
}
