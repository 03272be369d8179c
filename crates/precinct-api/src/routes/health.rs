//! `GET /health` (process up) and `GET /health/ready` (NATS and PostgreSQL reachable,
//! projections caught up within bounds).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;

/// Projections further behind than this many positions make the service not ready.
const MAX_READY_LAG: u64 = 10_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/health/ready", get(ready))
}

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
