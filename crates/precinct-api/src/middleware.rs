//! Cross-cutting layers: request ids, the compliance request log, security headers.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use precinct_eventlog::RequestRecord;

use crate::auth::caller_from_parts;
use crate::extract::RequestId;
use crate::AppState;

/// Assigns a request id, runs the request, and records it in the request log (time,
/// request id, actor, method, path, status, latency, client address).
pub async fn request_log(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let at = chrono::Utc::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.is_ascii())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let client_addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip().to_string());
    let (parts, body) = req.into_parts();
    let actor_id = caller_from_parts(&parts, &state.tokens)
        .ok()
        .flatten()
        .map(|c| c.id.as_uuid());
    let req = Request::from_parts(parts, body);

    let span = tracing::info_span!("http", %method, %path, request_id = %request_id);
    let _entered = span.enter();
    drop(_entered);
    let mut res = next.run(req).await;
    let status = res.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(%method, %path, status, latency_ms, request_id = %request_id, "request");
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), v);
    }
    state
        .requests
        .record(RequestRecord {
            at,
            request_id,
            actor_id,
            method,
            path,
            status,
            latency_ms,
            client_addr,
        })
        .await;
    res
}

/// Headers every response carries.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    res
}
