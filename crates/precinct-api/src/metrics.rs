//! Prometheus metrics: the process-wide recorder, what the HTTP layer records, and
//! `GET /metrics` (text exposition format, rendered in-process — no listener of its own).
//!
//! # Metrics
//! - `precinct_http_requests_total{method,route,status}` and
//!   `precinct_http_request_duration_seconds{method,route}` (histogram): every request,
//!   labelled by its route *template* (`/crimes/{id}`; `unmatched` for no route), never by
//!   the raw path.
//! - `precinct_commands_total{method,route,outcome}` and
//!   `precinct_command_duration_seconds{method,route,outcome}`: command endpoints
//!   (`POST`/`PUT`/`PATCH`/`DELETE`, except login), `outcome` from the status: 2xx
//!   `accepted`, 409 `conflict`, other 4xx `refused`, 5xx `error`. The duration covers
//!   the whole command (authorization, decision, atomic append, answer).
//! - `precinct_projection_position{projection}`, `precinct_projection_lag_positions`,
//!   `precinct_projection_lag_seconds`, `precinct_projection_quarantined` (events held
//!   in quarantine, ADR 0009) and `precinct_log_head`: refreshed from the checkpoints at
//!   every scrape.
//! - `precinct_sse_subscribers` (gauge) and `precinct_location_updates_total`: recorded by
//!   the live stream through [`sse_connected`] / [`SseSubscriber`] and [`location_update`].
//! - `precinct_login_throttled_total{reason}` (`pair`, `account`, `address`,
//!   `account_logins`, `address_logins`), `precinct_password_jobs_total`,
//!   `precinct_password_jobs_refused_total` and
//!   `precinct_password_jobs_over_share_total{owner}` (`address`, `account`): login
//!   throttling and the argon2id limiter (ADR 0010). Alert on a rising `account` or
//!   `address` rate: someone is guessing passwords; `*_logins` and over-share refusals:
//!   someone is flooding logins.
//!
//! - `precinct_account_view_fresh` (0/1) and `precinct_account_view_log_reads_total`: the
//!   account view ([`crate::access`]) is current within its bound, and how many
//!   authorizations had to read the account from the log instead.
//!
//! Scrapers authenticate with `PRECINCT_METRICS_TOKEN` as a bearer token; an account
//! that is an ADMIN *now* (not merely when its token was issued) may read them too.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sha2::{Digest, Sha256};
use utoipa::OpenApi;

use crate::auth::Secret;
use crate::problem::{ApiError, ApiResult};
use crate::AppState;

/// Histogram buckets (seconds) of every `*_seconds` histogram.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Routes with a non-safe method that are not commands (nothing is decided or appended
/// to the event log): login, and the high-rate position updates.
const NOT_COMMANDS: &[&str] = &["/users/login", "/patrols/{id}/location"];

/// How long a scrape waits for the projection status before answering without it.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// The process's recorder, installed on first use (once per process: every router of the
/// process shares it). Histogram samples are folded into buckets by a small upkeep thread
/// every 5 s and at every scrape, so memory stays bounded when nobody scrapes.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if ::metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics will be empty");
        }
        describe();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
        }
        handle
    })
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "precinct_http_requests_total",
        "HTTP requests by method, route template and status."
    );
    describe_histogram!(
        "precinct_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by method and route template."
    );
    describe_counter!(
        "precinct_commands_total",
        "Commands by route and outcome (accepted, conflict, refused, error)."
    );
    describe_histogram!(
        "precinct_command_duration_seconds",
        Unit::Seconds,
        "Command latency (authorization, decision, append, answer) by route and outcome."
    );
    describe_gauge!(
        "precinct_projection_position",
        "Last log position applied by each projection."
    );
    describe_gauge!(
        "precinct_projection_lag_positions",
        "Log positions each projection is behind the head."
    );
    describe_gauge!(
        "precinct_projection_lag_seconds",
        "Age of the oldest event each projection has not applied yet (0 when caught up)."
    );
    describe_gauge!(
        "precinct_projection_quarantined",
        "Events each projection holds in quarantine (poison events and those held back behind them; ADR 0009). Alert on > 0."
    );
    describe_gauge!("precinct_log_head", "The event log's last position.");
    describe_gauge!(
        "precinct_sse_subscribers",
        "Connected live-stream (SSE) subscribers."
    );
    describe_counter!(
        "precinct_location_updates_total",
        "Patrol location updates received."
    );
    describe_counter!(
        "precinct_login_throttled_total",
        "Login attempts refused by throttling, by reason (pair, account, address, account_logins, address_logins)."
    );
    describe_counter!(
        "precinct_password_jobs_total",
        "Password hashes and verifications run (argon2id)."
    );
    describe_counter!(
        "precinct_password_jobs_refused_total",
        "Password jobs refused with 503 because every slot and queue place was taken."
    );
    describe_counter!(
        "precinct_password_jobs_over_share_total",
        "Password jobs refused with 429 because their client address or account already held its share of the places."
    );
    describe_gauge!(
        "precinct_account_view_fresh",
        "1 while the in-memory account view is known current within its staleness bound."
    );
    describe_counter!(
        "precinct_account_view_log_reads_total",
        "Authorizations that read the account from the log (view not fresh, or older than the token)."
    );
}

/// What a command's status says about it.
pub fn outcome(status: u16) -> &'static str {
    match status {
        409 => "conflict",
        400..=499 => "refused",
        500..=599 => "error",
        _ => "accepted",
    }
}

/// Is a request to this route with this method a command?
pub fn is_command(method: &Method, route: &str) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && !NOT_COMMANDS.contains(&route)
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Records one answered request. `route` is the matched route template (`None`: no route
/// matched).
pub fn record_request(method: &Method, route: Option<&str>, status: u16, elapsed: Duration) {
    let m = method_label(method);
    let r = route.unwrap_or("unmatched").to_string();
    let secs = elapsed.as_secs_f64();
    ::metrics::counter!(
        "precinct_http_requests_total",
        "method" => m, "route" => r.clone(), "status" => status.to_string()
    )
    .increment(1);
    ::metrics::histogram!(
        "precinct_http_request_duration_seconds",
        "method" => m, "route" => r.clone()
    )
    .record(secs);
    if route.is_some_and(|route| is_command(method, route)) {
        let o = outcome(status);
        ::metrics::counter!(
            "precinct_commands_total",
            "method" => m, "route" => r.clone(), "outcome" => o
        )
        .increment(1);
        ::metrics::histogram!(
            "precinct_command_duration_seconds",
            "method" => m, "route" => r, "outcome" => o
        )
        .record(secs);
    }
}

/// A live-stream subscriber connected (`+1`) or left (`-1`). Prefer [`SseSubscriber`],
/// which cannot forget the `-1`.
pub fn sse_connected(delta: i64) {
    ::metrics::gauge!("precinct_sse_subscribers").increment(delta as f64);
}

/// Counts one subscriber for as long as it lives (keep it in the stream's state).
#[derive(Debug)]
pub struct SseSubscriber(());

impl SseSubscriber {
    pub fn new() -> Self {
        sse_connected(1);
        SseSubscriber(())
    }
}

impl Default for SseSubscriber {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SseSubscriber {
    fn drop(&mut self) {
        sse_connected(-1);
    }
}

/// One patrol location update was received.
pub fn location_update() {
    ::metrics::counter!("precinct_location_updates_total").increment(1);
}

/// Whether the account view is current within its bound (set by its probe).
pub fn account_view_fresh(fresh: bool) {
    ::metrics::gauge!("precinct_account_view_fresh").set(if fresh { 1.0 } else { 0.0 });
}

/// One authorization read the account from the log instead of the view.
pub fn account_view_log_read() {
    ::metrics::counter!("precinct_account_view_log_reads_total").increment(1);
}

/// Who asks for `/metrics`, from its bearer token.
#[derive(Debug, PartialEq, Eq)]
pub enum ScrapeAuth {
    /// The scrapers' token (`PRECINCT_METRICS_TOKEN`).
    Scraper,
    /// Any other token: an account's, to be checked as it is now (ADMIN only).
    Account,
}

/// Sorts the bearer token of a `/metrics` request: no token is 401 from every address
/// (a reverse proxy on the same host makes every client look local, so the address
/// proves nothing).
pub fn scrape_auth(bearer: Option<&str>, metrics_token: Option<&Secret>) -> ApiResult<ScrapeAuth> {
    let Some(bearer) = bearer else {
        return Err(ApiError::Unauthorized(
            "metrics need the scrapers' token or an ADMIN token".into(),
        ));
    };
    match metrics_token {
        // Compare digests: the time taken says nothing about the token's bytes.
        Some(expected)
            if Sha256::digest(bearer.as_bytes()) == Sha256::digest(expected.expose()) =>
        {
            Ok(ScrapeAuth::Scraper)
        }
        _ => Ok(ScrapeAuth::Account),
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// Prometheus metrics (text exposition format 0.0.4).
///
/// Roles: ADMIN; or a scraper sending the metrics token (`PRECINCT_METRICS_TOKEN`) as
/// `Authorization: Bearer <token>` (Prometheus: `authorization: {credentials_file: …}`).
/// Any other token gets 403; no or an invalid token 401, from any address.
///
/// Projection gauges are read from the checkpoints when scraped.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Metrics in the Prometheus text format",
            content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
    )
)]
async fn scrape(State(state): State<AppState>, parts: Parts) -> ApiResult<Response> {
    let bearer = match parts.headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
            match v.split_once(' ') {
                Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => Some(t.trim()),
                _ => {
                    return Err(ApiError::Unauthorized(
                        "expected `Authorization: Bearer <token>`".into(),
                    ))
                }
            }
        }
    };
    if scrape_auth(bearer, state.config.metrics_token.as_ref())? == ScrapeAuth::Account {
        // The account as it is now: a token issued before a demotion no longer reads.
        let caller = crate::auth::authenticate(&parts, &state)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("authentication required".into()))?;
        if !caller.is_admin() {
            return Err(ApiError::Forbidden(
                "metrics are for scrapers and ADMIN tokens only".into(),
            ));
        }
    }
    refresh_projections(&state).await;
    let handle = handle();
    handle.run_upkeep();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response())
}

async fn refresh_projections(state: &AppState) {
    let status = tokio::time::timeout(STATUS_TIMEOUT, state.projection_status()).await;
    let projections = match status {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "projection status unavailable for /metrics");
            return;
        }
        Err(_) => {
            tracing::warn!("projection status timed out for /metrics");
            return;
        }
    };
    for p in projections {
        let name = p.name.clone();
        ::metrics::gauge!("precinct_projection_position", "projection" => name.clone())
            .set(p.position as f64);
        ::metrics::gauge!("precinct_projection_lag_positions", "projection" => name.clone())
            .set(p.lag_positions as f64);
        ::metrics::gauge!("precinct_projection_lag_seconds", "projection" => name.clone())
            .set(p.lag_seconds);
        ::metrics::gauge!("precinct_projection_quarantined", "projection" => name)
            .set(p.quarantined as f64);
        ::metrics::gauge!("precinct_log_head").set(p.head as f64);
    }
}

#[derive(OpenApi)]
#[openapi(paths(scrape))]
pub struct Api;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scraping_needs_the_metrics_token_or_an_account_token_from_anywhere() {
        let scraper = Secret::new(b"scraper-token-0123456789".to_vec());
        // No token: refused, whatever the address (there is no address to trust).
        assert!(matches!(
            scrape_auth(None, Some(&scraper)),
            Err(ApiError::Unauthorized(_))
        ));
        assert_eq!(
            scrape_auth(Some("scraper-token-0123456789"), Some(&scraper)).ok(),
            Some(ScrapeAuth::Scraper)
        );
        // Anything else is an account token, checked as the account is now (ADMIN only).
        assert_eq!(
            scrape_auth(Some("scraper-token-0123456789x"), Some(&scraper)).ok(),
            Some(ScrapeAuth::Account)
        );
        assert_eq!(
            scrape_auth(Some("scraper-token-0123456789"), None).ok(),
            Some(ScrapeAuth::Account)
        );
    }

    #[test]
    fn command_outcomes() {
        assert_eq!(outcome(200), "accepted");
        assert_eq!(outcome(201), "accepted");
        assert_eq!(outcome(409), "conflict");
        assert_eq!(outcome(401), "refused");
        assert_eq!(outcome(422), "refused");
        assert_eq!(outcome(503), "error");
        assert!(is_command(&Method::POST, "/crimes/{id}/accept"));
        assert!(is_command(&Method::DELETE, "/crimes/{id}"));
        assert!(!is_command(&Method::POST, "/users/login"));
        assert!(!is_command(&Method::PUT, "/patrols/{id}/location"));
        assert!(!is_command(&Method::GET, "/crimes"));
    }
}
