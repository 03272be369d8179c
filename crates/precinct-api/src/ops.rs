//! The operations listener's routes (ADR 0025): `GET /metrics`, `GET /health/live` and
//! `GET /health/ready` for any process, the ones without an HTTP API (`--roles
//! projector,sla`) included; and [`Workers`], the background roles of this process
//! (projectors, SLA worker) whose end makes it neither live nor ready.
//!
//! It is not: the listener (bound and served by `precinct serve`, in the `precinct`
//! crate), the readiness checks (shared with the API's `/health/ready`:
//! [`crate::routes::health::readiness`]) or the metrics exposition and its token rule
//! ([`crate::metrics`]). It serves no API route: everything else is 404.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::auth::Caller;
use crate::extract::Peer;
use crate::AppState;

/// One registered worker: its name and whether it still runs.
type Entry = (&'static str, Arc<AtomicBool>);

/// The background roles of this process, each running until its [`WorkerGuard`] is
/// dropped (when its task returns, or unwinds from a panic). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Workers(Arc<Mutex<Vec<Entry>>>);

/// Marks one worker running while it lives.
#[derive(Debug)]
pub struct WorkerGuard(Arc<AtomicBool>);

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Workers {
    /// Registers `name` as running; it stops counting as running when the guard drops.
    pub fn register(&self, name: &'static str) -> WorkerGuard {
        let running = Arc::new(AtomicBool::new(true));
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((name, running.clone()));
        WorkerGuard(running)
    }

    /// Each registered worker and whether it still runs, in registration order.
    pub fn states(&self) -> Vec<(&'static str, bool)> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(name, running)| (*name, running.load(Ordering::Acquire)))
            .collect()
    }

    /// Whether every registered worker still runs.
    pub fn all_running(&self) -> bool {
        self.states().iter().all(|(_, running)| *running)
    }
}

/// The operations router: `/metrics` (the API's handler and token rule),
/// `/health/live`, `/health/ready`; nothing else.
pub fn router(state: AppState) -> Router {
    crate::metrics::handle();
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .merge(crate::metrics::router())
        .fallback(|| async { crate::problem::ApiError::NotFound })
        .method_not_allowed_fallback(|| async { crate::problem::ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(
            crate::middleware::security_headers,
        ))
        .with_state(state)
}

/// Live while every background role of the process runs: a projector or SLA task that
/// ended before shutdown does not come back without a restart.
async fn live(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    if state.workers.all_running() {
        (StatusCode::OK, Json(json!({"status": "ok"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "stopped"})),
        )
    }
}

/// The API's readiness, and every background role of this process running.
async fn ready(
    State(state): State<AppState>,
    caller: Option<Caller>,
    peer: Peer,
) -> (StatusCode, Json<serde_json::Value>) {
    let workers = state.workers.clone();
    crate::routes::health::readiness(&state, caller.as_ref(), &peer, Some(&workers)).await
}

#[cfg(test)]
mod tests {
    use super::Workers;

    #[test]
    fn a_worker_counts_as_running_until_its_guard_drops_even_by_a_panic() {
        let workers = Workers::default();
        let projector = workers.register("projector");
        let sla = workers.register("sla");
        assert!(workers.all_running());
        drop(projector);
        assert_eq!(workers.states(), vec![("projector", false), ("sla", true)]);
        assert!(!workers.all_running());
        let unwound = std::thread::spawn(move || {
            let _guard = sla;
            panic!("the SLA worker panicked");
        })
        .join();
        assert!(unwound.is_err());
        assert_eq!(workers.states(), vec![("projector", false), ("sla", false)]);
    }
}
