//! `GET /health` (process up) and `GET /health/ready` (NATS and PostgreSQL reachable,
//! projections caught up within bounds).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use crate::AppState;

/// Projections further behind than this many positions make the service not ready.
const MAX_READY_LAG: u64 = 10_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(live))
        .route("/health/ready", get(ready))
}

#[derive(OpenApi)]
#[openapi(paths(live, ready))]
pub struct Api;

/// The answer of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    #[schema(example = "ok")]
    status: &'static str,
}

/// The process is up.
///
/// Roles: anyone.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "operations",
    responses((status = 200, description = "The process answers", body = Live))
)]
async fn live() -> Json<Live> {
    Json(Live { status: "ok" })
}

/// The answer of `GET /health/ready` (also with 503).
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    #[schema(example = "ready")]
    status: String,
    /// `{"ok": bool, "head": <last log position>}`.
    #[schema(value_type = Object)]
    nats: serde_json::Value,
    /// `{"ok": bool}`.
    #[schema(value_type = Object)]
    postgres: serde_json::Value,
    /// Each projection's position, head, lag and failure (null when NATS or PostgreSQL is
    /// down).
    #[schema(value_type = Option<Vec<Object>>)]
    projections: Option<serde_json::Value>,
}

/// Ready to serve: NATS and PostgreSQL reachable, no projection failed or more than
/// 10 000 positions behind.
///
/// Roles: anyone.
#[utoipa::path(
    get,
    path = "/health/ready",
    operation_id = "health_ready",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready (same body, `status: not_ready`)", body = Readiness),
    )
)]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let nats = state.app.log().head().await;
    let pg = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&state.pool)
        .await;
    let projections = match (&nats, &pg) {
        (Ok(_), Ok(_)) => precinct_projections::status(&state.pool, state.app.log())
            .await
            .ok(),
        _ => None,
    };
    let projections_ok = projections.as_ref().is_some_and(|ps| {
        ps.iter()
            .all(|p| p.failed.is_none() && p.lag_positions <= MAX_READY_LAG)
    });
    let ok = nats.is_ok() && pg.is_ok() && projections_ok;
    let body = json!({
        "status": if ok { "ready" } else { "not_ready" },
        "nats": match &nats { Ok(head) => json!({"ok": true, "head": head}), Err(_) => json!({"ok": false}) },
        "postgres": {"ok": pg.is_ok()},
        "projections": projections,
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}
