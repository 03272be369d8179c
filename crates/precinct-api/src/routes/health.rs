//! `GET /health` (process up) and `GET /health/ready` (NATS and PostgreSQL reachable,
//! projections caught up within bounds; details only for ADMIN or configured loopback
//! monitors).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use crate::auth::Caller;
use crate::extract::Peer;
use crate::AppState;

/// Event projections further behind than this many positions make the service not
/// ready.
const MAX_READY_LAG: u64 = 10_000;

/// The side projections (`request_log`, `patrol_positions`) follow streams written by
/// the thousand per second and write in batches (the roster every few seconds): they are
/// judged by age instead — an oldest unapplied record older than this is not ready.
const MAX_SIDE_LAG_SECS: f64 = 120.0;

/// Whether one projection is caught up enough to serve.
fn caught_up(p: &precinct_readmodel::ProjectionStatus) -> bool {
    if precinct_readmodel::EVENT_PROJECTIONS.contains(&p.name.as_str()) {
        p.lag_positions <= MAX_READY_LAG
    } else {
        p.lag_seconds <= MAX_SIDE_LAG_SECS
    }
}

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

/// The answer of `GET /health/ready` (also with 503). Everyone gets `status`; the
/// other fields only an ADMIN token, or a monitor on loopback when the operator allows
/// it (`PRECINCT_HEALTH_DETAILS=loopback`). No field ever carries error text.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `degraded` (serving, but some projection holds events in quarantine:
    /// a few aggregates' rows are missing or stale; see ADR 0009) or `not_ready`.
    #[schema(example = "ready")]
    status: String,
    /// `{"ok": bool, "head": <last log position>}` (details only).
    #[schema(value_type = Option<Object>)]
    nats: Option<serde_json::Value>,
    /// `{"ok": bool}` (details only).
    #[schema(value_type = Option<Object>)]
    postgres: Option<serde_json::Value>,
    /// Each projection's position, head, lag and quarantined events (details only;
    /// null when NATS or PostgreSQL is down).
    #[schema(value_type = Option<Vec<Object>>)]
    projections: Option<serde_json::Value>,
}

/// Who may see the details of `/health/ready` besides ADMIN tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HealthDetails {
    /// Only ADMIN tokens (the default).
    #[default]
    Admin,
    /// Also requests without a token whose TCP peer is loopback and that name no
    /// forwarded client (a monitor on the host; see [`Peer::is_local_monitor`]).
    Loopback,
}

impl std::str::FromStr for HealthDetails {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "admin" => Ok(Self::Admin),
            "loopback" => Ok(Self::Loopback),
            other => Err(format!("expected admin or loopback, got {other:?}")),
        }
    }
}

impl HealthDetails {
    /// Whether this caller may see the details.
    pub fn shown_to(self, caller: Option<&Caller>, peer: &Peer) -> bool {
        match caller {
            Some(c) => c.is_admin(),
            None => self == HealthDetails::Loopback && peer.is_local_monitor(),
        }
    }
}

/// Ready to serve: NATS and PostgreSQL reachable, no event projection more than 10 000
/// positions behind, the request log and the patrol positions no more than 120 s. A projection holding poison events in quarantine makes the
/// service `degraded`, still 200: everything but the few aggregates held back is
/// served, and taking every replica out of a load balancer would serve nothing.
///
/// Roles: anyone (status only); ADMIN, or a loopback monitor when configured, get the
/// details.
#[utoipa::path(
    get,
    path = "/health/ready",
    operation_id = "health_ready",
    tag = "operations",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Ready or degraded", body = Readiness),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 503, description = "Not ready (same body, `status: not_ready`)", body = Readiness),
    )
)]
async fn ready(
    State(state): State<AppState>,
    caller: Option<Caller>,
    peer: Peer,
) -> (StatusCode, Json<serde_json::Value>) {
    readiness(&state, caller.as_ref(), &peer, None).await
}

/// The readiness answer of this process: NATS and PostgreSQL reachable, every
/// projection caught up within bounds (quarantine: `degraded`, still ready), and, when
/// `workers` is given (the operations listener, ADR 0025), every background role of this
/// process still running. Shared by the API's `/health/ready` and the operations
/// listener's, so both judge the same way.
pub async fn readiness(
    state: &AppState,
    caller: Option<&Caller>,
    peer: &Peer,
    workers: Option<&crate::ops::Workers>,
) -> (StatusCode, Json<serde_json::Value>) {
    let nats = state.app.log().head().await;
    let pg = precinct_readmodel::ping(&state.pool).await;
    if let Err(e) = &nats {
        tracing::warn!(error = %e, "readiness: NATS unavailable");
    }
    if let Err(e) = &pg {
        tracing::warn!(error = %e, "readiness: PostgreSQL unavailable");
    }
    let projections = match (&nats, &pg) {
        (Ok(_), Ok(_)) => match state.projection_status().await {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: projection status unavailable");
                None
            }
        },
        _ => None,
    };
    let projections_ok = projections
        .as_ref()
        .is_some_and(|ps| ps.iter().all(caught_up));
    let degraded = projections
        .as_ref()
        .is_some_and(|ps| ps.iter().any(|p| p.is_degraded()));
    let workers = workers.map(crate::ops::Workers::states);
    let workers_ok = workers
        .as_ref()
        .is_none_or(|ws| ws.iter().all(|(_, running)| *running));
    let ok = nats.is_ok() && pg.is_ok() && projections_ok && workers_ok;
    let status = match (ok, degraded) {
        (false, _) => "not_ready",
        (true, true) => "degraded",
        (true, false) => "ready",
    };
    let body = if state.config.health_details.shown_to(caller, peer) {
        let mut body = json!({
            "status": status,
            "nats": match &nats { Ok(head) => json!({"ok": true, "head": head}), Err(_) => json!({"ok": false}) },
            "postgres": {"ok": pg.is_ok()},
            "projections": projections,
        });
        if let Some(ws) = &workers {
            body["workers"] = ws
                .iter()
                .map(|(name, running)| json!({"name": name, "running": running}))
                .collect();
        }
        body
    } else {
        json!({ "status": status })
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}
