//! `POST /dispatch`: assigning a report to a patrol, chosen by the desk or automatic.
//! The handler parses the order and calls [`precinct_app::commands::dispatch`], which
//! holds who may dispatch, the choice of patrol and the patrol's side of the
//! assignment.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use precinct_app::commands::dispatch::{dispatch as dispatch_report, Dispatch};
use precinct_domain::dispatch::AssignmentDecision;
use precinct_domain::ids::{PatrolId, ReportId};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::Cmd;
use crate::openapi::{CommandErrors, CommandHeaders};
use crate::ports::Facts;
use crate::problem::ApiResult;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/dispatch", post(dispatch))
}

#[derive(OpenApi)]
#[openapi(paths(dispatch))]
pub struct Api;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchBody {
    crime_id: Uuid,
    /// Leave out for automatic assignment (the least busy `AVAILABLE` patrol of the
    /// report's station).
    #[serde(default)]
    patrol_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dispatched {
    crime_id: Uuid,
    patrol_id: Uuid,
    /// The patrol was chosen automatically.
    auto: bool,
    /// Automatic assignment only: the ranking and the excluded patrols.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::openapi::AssignmentDecision>)]
    decision: Option<AssignmentDecision>,
    /// Log position of the command's last event.
    position: u64,
}

/// Assign a report to a patrol (`NEW` → `ASSIGNED`), chosen or automatic.
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped). 409 when the patrol is
/// `OFF_DUTY` or no patrol is `AVAILABLE`; 503 when workloads are behind the report.
#[utoipa::path(
    post,
    path = "/dispatch",
    tag = "dispatch",
    params(CommandHeaders),
    request_body = DispatchBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The assignment", body = Dispatched),
        CommandErrors,
    )
)]
async fn dispatch(
    State(state): State<AppState>,
    caller: Caller,
    cmd: Cmd<DispatchBody>,
) -> ApiResult<Json<Dispatched>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let order = Dispatch {
        report: ReportId::new(cmd.body.crime_id),
        patrol: cmd.body.patrol_id.map(PatrolId::new),
    };
    let out = dispatch_report(&state.app, &by, &meta, order, &Facts(&state)).await?;
    Ok(Json(Dispatched {
        crime_id: cmd.body.crime_id,
        patrol_id: out.patrol.as_uuid(),
        auto: out.decision.is_some(),
        decision: out.decision,
        position: out.position,
    }))
}
