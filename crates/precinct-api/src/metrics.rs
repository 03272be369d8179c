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
        register_at_zero();
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

/// What kind of series a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A family registered at start, at zero, so that a dashboard or an alert sees it before
/// the first event it counts (an absent series is not a zero to `rate()` or `>`).
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    /// The one label of the family and every value it takes (`None`: no label).
    pub label: Option<(&'static str, &'static [&'static str])>,
}

const fn family(
    name: &'static str,
    kind: Kind,
    help: &'static str,
    label: Option<(&'static str, &'static [&'static str])>,
) -> Family {
    Family {
        name,
        kind,
        help,
        label,
    }
}

/// Report statuses (`precinct_reports`), as the read model stores them.
const REPORT_STATUSES: &[&str] = &[
    "NEW",
    "ASSIGNED",
    "ACCEPTED",
    "RESPONDING",
    "RESOLVED",
    "CLOSED",
    "REJECTED",
    "WITHDRAWN",
];
const PATROL_STATUSES: &[&str] = &["AVAILABLE", "BUSY", "OFF_DUTY"];
const APPEND_OUTCOMES: &[&str] = &[
    "appended",
    "duplicate",
    "conflict",
    "timeout",
    "rejected",
    "error",
];
const WAIT_OUTCOMES: &[&str] = &["immediate", "reached", "timed_out", "failed"];
const OWN_WAIT_OUTCOMES: &[&str] = &["reached", "timed_out", "failed"];
const THROTTLE_REASONS: &[&str] = &[
    "pair",
    "account",
    "address",
    "account_logins",
    "address_logins",
];
/// Every projection with a checkpoint: the event projections, the request log and the
/// patrol positions.
const PROJECTIONS: &[&str] = &[
    precinct_readmodel::names::REPORTS,
    precinct_readmodel::names::PATROLS,
    precinct_readmodel::names::STATIONS,
    precinct_readmodel::names::CRIME_TYPES,
    precinct_readmodel::names::ACCOUNTS,
    precinct_readmodel::names::AUDIT,
    precinct_readmodel::names::ANALYTICS,
    precinct_readmodel::names::REQUEST_LOG,
    precinct_readmodel::names::PATROL_POSITIONS,
];

/// Every family that exists from the start of the process (the per-route HTTP families
/// appear with each route's first request: their labels are the routes). Recorded where
/// it happens: the log (`precinct-eventlog`: appends, NATS connection), the command
/// runner (`precinct-app`: reruns, idempotent replays, declines, dispatch without a
/// patrol), the SLA worker (breaches), this crate (HTTP, login, waits, live stream), and
/// at every scrape ([`refresh`]: projections, counts from the read models, the pool, the
/// process, the live hub, the request-log writer).
pub const FAMILIES: &[Family] = &[
    family("precinct_build_info", Kind::Gauge, "1, labelled with the running version.", None),
    family("precinct_log_head", Kind::Gauge, "The event log's last position.", None),
    family("precinct_projection_position", Kind::Gauge, "Last source position applied by each projection.", Some(("projection", PROJECTIONS))),
    family("precinct_projection_lag_positions", Kind::Gauge, "Source positions each projection is behind its source's head.", Some(("projection", PROJECTIONS))),
    family("precinct_projection_lag_seconds", Kind::Gauge, "Age of the oldest record each projection has not applied yet (0 when caught up).", Some(("projection", PROJECTIONS))),
    family("precinct_projection_quarantined", Kind::Gauge, "Events each projection holds in quarantine (poison events and those held back behind them; ADR 0009). Alert on > 0.", Some(("projection", PROJECTIONS))),
    family("precinct_reports", Kind::Gauge, "Reports by status (read model, at the scrape).", Some(("status", REPORT_STATUSES))),
    family("precinct_patrols", Kind::Gauge, "Patrols by status (read model, at the scrape).", Some(("status", PATROL_STATUSES))),
    family("precinct_sla_overdue_reports", Kind::Gauge, "Reports past their accept or respond deadline now (each station's SLA policy, else the defaults), breach recorded or not.", Some(("kind", &["accept", "respond"]))),
    family("precinct_sla_breaches_total", Kind::Counter, "SLA breaches recorded by this process's SLA worker (one SlaBreached event each).", Some(("kind", &["accept", "respond", "resolve"]))),
    family("precinct_sla_warnings_total", Kind::Counter, "SLA warnings recorded by this process's SLA worker (one SlaWarned event each; ADR 0035).", Some(("kind", &["accept", "respond", "resolve"]))),
    family("precinct_webhook_attempts_total", Kind::Counter, "Webhook delivery attempts of this process's deliverer, by outcome (dead: the delivery was given up and the subscription disabled; ADR 0028).", Some(("outcome", &["delivered", "retrying", "dead"]))),
    family("precinct_push_attempts_total", Kind::Counter, "Web Push notifications handled by this process's deliverer, by outcome (gone: the subscription expired and the device was removed; expired: older than the TTL, not sent; ADR 0032).", Some(("outcome", &["delivered", "retrying", "gone", "dead", "expired"]))),
    family("precinct_mail_attempts_total", Kind::Counter, "Reporter e-mails handled by this process's mailer, by outcome (failed: refused for good; gave_up: too many transient failures; ADR 0033).", Some(("outcome", &["sent", "retrying", "failed", "gave_up"]))),
    family("precinct_sla_escalations_total", Kind::Counter, "Unaccepted assignments escalated by this process's SLA worker (one SlaEscalated event each; ADR 0035).", Some(("action", &["requeue", "reassign"]))),
    family("precinct_dispatch_no_patrol_total", Kind::Counter, "Automatic assignments refused because no patrol was available.", None),
    family("precinct_assignment_declines_total", Kind::Counter, "Assignments declined by their patrol.", None),
    family("precinct_appends_total", Kind::Counter, "Appends to the event log by outcome (appended, duplicate, conflict, timeout = outcome unknown, rejected, error).", Some(("outcome", APPEND_OUTCOMES))),
    family("precinct_append_duration_seconds", Kind::Histogram, "Append latency (one atomic batch, group commit included) by outcome.", Some(("outcome", APPEND_OUTCOMES))),
    family("precinct_commands_in_flight", Kind::Gauge, "Write requests admitted and not finished yet (the admission limit, ADR 0021).", None),
    family("precinct_commands_shed_total", Kind::Counter, "Write requests answered 503 with Retry-After because the admission limit was full (ADR 0021).", None),
    family("precinct_stream_cache_events_total", Kind::Counter, "Events of streams read by this process, by where they came from: memory (kept from an earlier read of the stream, ADR 0040) or log (a direct get).", Some(("source", &["memory", "log"]))),
    family("precinct_command_reruns_total", Kind::Counter, "Command attempts run again after a concurrent change or an unknown append outcome (ADR 0012).", None),
    family("precinct_idempotent_replays_total", Kind::Counter, "Commands answered with their original outcome because their id was already in the log.", None),
    family("precinct_nats_reconnects_total", Kind::Counter, "Reconnections of the event log's NATS connection.", None),
    family("precinct_nats_disconnects_total", Kind::Counter, "Losses of the event log's NATS connection.", None),
    family("precinct_nats_connected", Kind::Gauge, "1 while the event log's NATS connection is up (at the scrape).", None),
    family("precinct_request_log_backlog", Kind::Gauge, "Request-log records queued in this process, not yet handed to NATS.", None),
    family("precinct_min_position_wait_seconds", Kind::Histogram, "Reads waiting for X-Min-Position, by outcome (immediate, reached, timed_out = 503, failed).", Some(("outcome", WAIT_OUTCOMES))),
    family("precinct_own_write_wait_seconds", Kind::Histogram, "Reads waiting for the caller's own last command (ADR 0014), by outcome.", Some(("outcome", OWN_WAIT_OUTCOMES))),
    family("precinct_login_throttled_total", Kind::Counter, "Login attempts refused by throttling, by reason; pair = the (account, address) pair is locked out after consecutive failures.", Some(("reason", THROTTLE_REASONS))),
    family("precinct_password_jobs_total", Kind::Counter, "Password hashes and verifications run (argon2id).", None),
    family("precinct_password_jobs_refused_total", Kind::Counter, "Password jobs refused with 503 because every slot and queue place was taken.", None),
    family("precinct_password_jobs_over_share_total", Kind::Counter, "Password jobs refused with 429 because their client address or account already held its share of the places.", Some(("owner", &["address", "account"]))),
    family("precinct_account_view_fresh", Kind::Gauge, "1 while the in-memory account view is known current within its staleness bound.", None),
    family("precinct_account_view_log_reads_total", Kind::Counter, "Authorizations that read the account from the log (view not fresh, or older than the token).", None),
    family("precinct_db_pool_connections", Kind::Gauge, "PostgreSQL pool connections by state (idle, in_use).", Some(("state", &["idle", "in_use"]))),
    family("precinct_db_pool_max_connections", Kind::Gauge, "The PostgreSQL pool's size limit.", None),
    family("precinct_sse_subscribers", Kind::Gauge, "Connected live-stream (SSE) subscribers in this process.", None),
    family("precinct_location_updates_total", Kind::Counter, "Patrol location updates received.", None),
    family("precinct_live_connections", Kind::Gauge, "Open SSE connections of the live hub (including ones still catching up).", None),
    family("precinct_live_subscribers", Kind::Gauge, "Subscribers registered with the live hub.", None),
    family("precinct_live_dropped_clients_total", Kind::Counter, "Live-stream clients dropped because their buffer was full.", None),
    family("precinct_live_positions_head", Kind::Gauge, "Last positions-stream sequence the live hub fanned out.", None),
    family("precinct_live_events_head", Kind::Gauge, "Last event-log position the live hub fanned out.", None),
    family("precinct_live_patrols_tracked", Kind::Gauge, "Patrols with a last known position in the live hub.", None),
    family("process_cpu_seconds_total", Kind::Counter, "CPU time (user + system) of this process.", None),
    family("process_resident_memory_bytes", Kind::Gauge, "Resident memory of this process.", None),
    family("process_virtual_memory_bytes", Kind::Gauge, "Virtual memory of this process.", None),
    family("process_open_fds", Kind::Gauge, "Open file descriptors of this process.", None),
    family("process_max_fds", Kind::Gauge, "The process's limit on open file descriptors.", None),
    family("process_threads", Kind::Gauge, "Threads of this process.", None),
    family("process_start_time_seconds", Kind::Gauge, "Start time of this process (Unix seconds).", None),
];

/// Registers every series of [`FAMILIES`] at zero (and the build info at 1).
fn register_at_zero() {
    for f in FAMILIES.iter().filter(|f| f.name != "precinct_build_info") {
        let values: &[&str] = match f.label {
            Some((_, values)) => values,
            None => &[""],
        };
        for v in values {
            let labels: Vec<::metrics::Label> = match f.label {
                Some((key, _)) => vec![::metrics::Label::new(key, *v)],
                None => Vec::new(),
            };
            match f.kind {
                Kind::Counter => ::metrics::counter!(f.name, labels).absolute(0),
                Kind::Gauge => ::metrics::gauge!(f.name, labels).set(0.0),
                Kind::Histogram => drop(::metrics::histogram!(f.name, labels)),
            }
        }
    }
    ::metrics::gauge!("precinct_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    for f in FAMILIES {
        match f.kind {
            Kind::Counter => describe_counter!(f.name, f.help),
            Kind::Gauge => describe_gauge!(f.name, f.help),
            Kind::Histogram => describe_histogram!(f.name, Unit::Seconds, f.help),
        }
    }
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

/// `n` patrol location fixes stored (one request may carry several).
pub fn location_updates(n: usize) {
    ::metrics::counter!("precinct_location_updates_total").increment(n as u64);
}

/// One read waited for its `X-Min-Position` (`immediate`: already there).
pub fn min_position_wait(outcome: &'static str, waited: Duration) {
    ::metrics::histogram!("precinct_min_position_wait_seconds", "outcome" => outcome)
        .record(waited.as_secs_f64());
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
    refresh(&state).await;
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

/// Sets the gauges that are read, not counted: projections, read-model counts, the
/// pool, the request-log writer, the live hub, the NATS connection and the process.
async fn refresh(state: &AppState) {
    refresh_projections(state).await;
    refresh_counts(state).await;
    let pool = &state.pool;
    let idle = pool.num_idle() as f64;
    let size = f64::from(pool.size());
    ::metrics::gauge!("precinct_db_pool_connections", "state" => "idle").set(idle);
    ::metrics::gauge!("precinct_db_pool_connections", "state" => "in_use")
        .set((size - idle).max(0.0));
    ::metrics::gauge!("precinct_db_pool_max_connections")
        .set(f64::from(pool.options().get_max_connections()));
    ::metrics::gauge!("precinct_request_log_backlog").set(state.requests.backlog() as f64);
    if let Some(hub) = &state.live.hub {
        let live = hub.stats();
        ::metrics::gauge!("precinct_live_connections").set(live.connections as f64);
        ::metrics::gauge!("precinct_live_subscribers").set(live.subscribers as f64);
        ::metrics::counter!("precinct_live_dropped_clients_total")
            .absolute(live.dropped_slow_clients);
        ::metrics::gauge!("precinct_live_positions_head").set(live.positions_head as f64);
        ::metrics::gauge!("precinct_live_events_head").set(live.events_head as f64);
        ::metrics::gauge!("precinct_live_patrols_tracked").set(live.patrols_tracked as f64);
    }
    ::metrics::gauge!("precinct_nats_connected").set(if state.app.log().is_connected() {
        1.0
    } else {
        0.0
    });
    process::refresh();
}

/// Reports and patrols by status and the reports overdue now (every status is set, so
/// one that empties goes back to 0).
async fn refresh_counts(state: &AppState) {
    let counts = tokio::time::timeout(
        STATUS_TIMEOUT,
        precinct_readmodel::queries::operator_counts(
            &state.pool,
            chrono::Utc::now(),
            &state.config.sla_defaults,
        ),
    )
    .await;
    let counts = match counts {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "read-model counts unavailable for /metrics");
            return;
        }
        Err(_) => {
            tracing::warn!("read-model counts timed out for /metrics");
            return;
        }
    };
    for status in REPORT_STATUSES {
        let n = counts.reports_by_status.get(*status).copied().unwrap_or(0);
        ::metrics::gauge!("precinct_reports", "status" => *status).set(n as f64);
    }
    for status in PATROL_STATUSES {
        let n = counts.patrols_by_status.get(*status).copied().unwrap_or(0);
        ::metrics::gauge!("precinct_patrols", "status" => *status).set(n as f64);
    }
    ::metrics::gauge!("precinct_sla_overdue_reports", "kind" => "accept")
        .set(counts.overdue_accept as f64);
    ::metrics::gauge!("precinct_sla_overdue_reports", "kind" => "respond")
        .set(counts.overdue_respond as f64);
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
        // The event log's head (the side projections' heads are their own streams').
        if precinct_readmodel::EVENT_PROJECTIONS.contains(&p.name.as_str()) {
            ::metrics::gauge!("precinct_log_head").set(p.head as f64);
        }
    }
}

#[derive(OpenApi)]
#[openapi(paths(scrape))]
pub struct Api;

/// The process's own numbers, as the Prometheus client libraries name them, read from
/// `/proc/self` (Linux; elsewhere they stay 0).
mod process {
    /// Clock ticks per second of `/proc/self/stat` (USER_HZ: 100 on every Linux ABI
    /// Precinct ships for).
    const TICKS: f64 = 100.0;

    pub fn refresh() {
        let Some(stat) = Stat::read() else {
            return;
        };
        ::metrics::counter!("process_cpu_seconds_total")
            .absolute(((stat.utime + stat.stime) as f64 / TICKS) as u64);
        ::metrics::gauge!("process_threads").set(stat.threads as f64);
        ::metrics::gauge!("process_virtual_memory_bytes").set(stat.vsize as f64);
        if let Some(rss) = status_kib("VmRSS:") {
            ::metrics::gauge!("process_resident_memory_bytes").set(rss * 1024.0);
        }
        if let Some(boot) = boot_time() {
            ::metrics::gauge!("process_start_time_seconds")
                .set(boot + stat.starttime as f64 / TICKS);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            ::metrics::gauge!("process_open_fds").set(fds.count() as f64);
        }
        if let Some(max) = max_fds() {
            ::metrics::gauge!("process_max_fds").set(max);
        }
    }

    /// The fields of `/proc/self/stat` used here.
    #[derive(Debug, PartialEq)]
    pub(super) struct Stat {
        pub utime: u64,
        pub stime: u64,
        pub threads: u64,
        pub starttime: u64,
        pub vsize: u64,
    }

    impl Stat {
        fn read() -> Option<Self> {
            Self::parse(&std::fs::read_to_string("/proc/self/stat").ok()?)
        }

        /// Parses the line; the command name (field 2) may hold spaces and parentheses,
        /// so fields are counted from the last `)`.
        pub(super) fn parse(line: &str) -> Option<Self> {
            let rest = &line[line.rfind(')')? + 1..];
            // rest[0] is field 3 (state).
            let f: Vec<&str> = rest.split_whitespace().collect();
            let at = |field: usize| f.get(field - 3)?.parse::<u64>().ok();
            Some(Stat {
                utime: at(14)?,
                stime: at(15)?,
                threads: at(20)?,
                starttime: at(22)?,
                vsize: at(23)?,
            })
        }
    }

    fn status_kib(key: &str) -> Option<f64> {
        let text = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = text.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].split_whitespace().next()?.parse().ok()
    }

    fn boot_time() -> Option<f64> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()
    }

    fn max_fds() -> Option<f64> {
        let text = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = text.lines().find(|l| l.starts_with("Max open files"))?;
        line["Max open files".len()..]
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

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
    fn the_process_stat_line_is_read_past_a_command_name_with_spaces() {
        let line = "4242 (precinct (x) y) S 1 4242 4242 0 -1 4194560 2000 0 0 0 \
                    150 50 0 0 20 0 7 0 123456 987654321 3000 18446744073709551615";
        assert_eq!(
            process::Stat::parse(line),
            Some(process::Stat {
                utime: 150,
                stime: 50,
                threads: 7,
                starttime: 123456,
                vsize: 987654321,
            })
        );
        assert_eq!(process::Stat::parse("garbage"), None);
    }

    #[test]
    fn every_family_is_named_once_with_the_precinct_or_process_prefix() {
        let mut seen = std::collections::BTreeSet::new();
        for f in FAMILIES {
            assert!(seen.insert(f.name), "{} listed twice", f.name);
            assert!(
                f.name.starts_with("precinct_") || f.name.starts_with("process_"),
                "{}",
                f.name
            );
            if f.kind == Kind::Counter {
                assert!(
                    f.name.ends_with("_total"),
                    "counter {} without _total",
                    f.name
                );
            }
        }
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
