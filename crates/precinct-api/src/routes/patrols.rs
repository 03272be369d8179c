//! Patrols: registration, updates, status (commands). Positions are a later issue's
//! high-rate path.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{post, put};
use axum::{Json, Router};
use precinct_domain::ids::{AccountId, PatrolId, StationId};
use precinct_domain::patrol::{serves_in, Patrol, PatrolCommand};
use precinct_domain::values::PatrolStatus;
use precinct_domain::Aggregate;
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::accounts::derived_id;
use crate::auth::Caller;
use crate::extract::Cmd;
use crate::extract::Path;
use crate::openapi::{
    BadRequest, CommandHeaders, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized,
    Unavailable, ValidationFailed, WrittenPatrol,
};
use crate::policy::{require_patrol_visible, DESK};
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

/// Every officer must be an active PATROL account of the patrol's station, as the
/// account is now (the account view: no key lookups for the sealed e-mail and name).
async fn check_officers(state: &AppState, station: StationId, ids: &[Uuid]) -> ApiResult<()> {
    for id in ids {
        let serving = state
            .accounts
            .current(AccountId::new(*id), 0)
            .await?
            .is_some_and(|a| a.active && !a.erased && serves_in(station, a.role, a.station_id));
        if !serving {
            return Err(ApiError::invalid(
                "officer_ids",
                format!("{id} is not an active PATROL officer of station {station}"),
            ));
        }
    }
    Ok(())
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
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn register(
    State(state): State<AppState>,
    caller: Caller,
    cmd: Cmd<RegisterBody>,
) -> ApiResult<(StatusCode, Json<Written<PatrolView>>)> {
    caller.require(DESK)?;
    let station = StationId::new(cmd.body.station_id);
    if !caller.is_staff_of(station) {
        return Err(ApiError::Forbidden(
            "you may register patrols of your own station only".into(),
        ));
    }
    let (st, _) = state
        .app
        .load::<precinct_domain::station::Station>(cmd.body.station_id)
        .await?;
    if !st.version_exists() {
        return Err(ApiError::invalid("station_id", "no such station"));
    }
    check_officers(&state, station, &cmd.body.officer_ids).await?;
    let meta = cmd.ctx.meta(caller.actor());
    let id = derived_id(meta.command_id, "patrol");
    let out = precinct_app::run!(state.app, &meta, Patrol, ApiError, id, |uow| {
        let at = uow.now();
        uow.execute::<Patrol>(
            id,
            PatrolCommand::Register {
                patrol_id: PatrolId::new(id),
                call_sign: cmd.body.call_sign.clone(),
                station_id: station,
                officer_ids: cmd
                    .body
                    .officer_ids
                    .iter()
                    .map(|o| AccountId::new(*o))
                    .collect(),
                at,
            },
        )
        .await?;
        Ok(())
    })?;
    let p = out
        .state::<Patrol>(id)
        .ok_or_else(|| ApiError::Internal("patrol state missing".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(Written {
            view: PatrolView::from(p),
            position: out.position,
        }),
    ))
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
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
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
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<UpdateBody>,
) -> ApiResult<Json<Written<PatrolView>>> {
    caller.require(DESK)?;
    let (current, _) = state.app.load::<Patrol>(id).await?;
    require_patrol_visible(&caller, &current)?;
    if let Some(officers) = &cmd.body.officer_ids {
        check_officers(&state, current.station_id, officers).await?;
    }
    let meta = cmd.ctx.meta(caller.actor());
    let out = precinct_app::run!(state.app, &meta, Patrol, ApiError, id, |uow| {
        let at = uow.now();
        let p: Patrol = uow.load(id).await?;
        require_patrol_visible(&caller, &p)?;
        uow.execute::<Patrol>(
            id,
            PatrolCommand::Update {
                call_sign: cmd.body.call_sign.clone(),
                officer_ids: cmd
                    .body
                    .officer_ids
                    .as_ref()
                    .map(|v| v.iter().map(|o| AccountId::new(*o)).collect()),
                at,
            },
        )
        .await?;
        Ok(())
    })?;
    written(&out, id)
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
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
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
    let meta = cmd.ctx.meta(caller.actor());
    let out = precinct_app::run!(state.app, &meta, Patrol, ApiError, id, |uow| {
        let at = uow.now();
        let p: Patrol = uow.load(id).await?;
        require_patrol_visible(&caller, &p)?;
        if !(p.is_serving_member(caller.id, caller.role, caller.station_id) || caller.is(DESK)) {
            return Err(ApiError::Forbidden(
                "only a member of the patrol or the dispatch desk may set its status".into(),
            ));
        }
        uow.execute::<Patrol>(id, PatrolCommand::SetStatus { status, at })
            .await?;
        Ok(())
    })?;
    written(&out, id)
}

fn written(out: &precinct_app::Outcome, id: Uuid) -> ApiResult<Json<Written<PatrolView>>> {
    let p = out
        .state::<Patrol>(id)
        .ok_or_else(|| ApiError::Internal("patrol state missing".into()))?;
    Ok(Json(Written {
        view: PatrolView::from(p),
        position: out.position,
    }))
}
