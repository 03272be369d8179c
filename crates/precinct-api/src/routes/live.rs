//! Live patrol positions over HTTP (the high-rate path, see ADR 0005).
//!
//! - `PUT /patrols/{id}/location` (a member of the patrol): validate, publish one
//!   `PatrolMoved` to the positions stream, answer 202 with its sequence.
//! - `POST /patrols/{id}/locations` (a member of the patrol): 1 to 100 fixes in one
//!   request (a device uploading what it buffered), validated together, published
//!   pipelined, answered 202 with their sequences.
//! - `GET /patrols/{id}/location` (staff of its station): the last position, from
//!   JetStream (no PostgreSQL).
//! - `GET /patrols/{id}/track?from=&to=` (staff of its station): the retained positions
//!   recorded in a window, in order, paged.
//! - `GET /patrols/stream` (staff; `?station_id=`): Server-Sent Events of positions and
//!   status changes, with a snapshot, keep-alives and `Last-Event-ID` resume.
//! - `GET /me/assignments/stream` (PATROL): Server-Sent Events of the officer's
//!   assignments and their changes.
//! - `GET /queues/reports/stream` (staff; `?station_id=`): Server-Sent Events of the
//!   changes of the station's reports (the live queue of a desk).
//! - `GET /me/crimes/stream` (any signed-in account) and `GET /crimes/{id}/stream` (the
//!   report's reporter, or the holder of its tracking token): Server-Sent Events of the
//!   status changes and public updates of the reporter's reports, in the reporter view.
//! - `GET /admin/live` (ADMIN): the hub's numbers.
//!
//! Membership and station come from the [`PatrolDirectory`](crate::live::PatrolDirectory)
//! (memory, short TTL), never from the patrol's stream per request.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use precinct_domain::values::{Latitude, Longitude, Role, Timestamp};
use precinct_eventlog::positions::{RecordedMove, WindowStart};
use precinct_eventlog::PatrolMoved;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::queries::Q;
use crate::auth::Caller;
use crate::extract::Path;
use crate::extract::{JsonBody, Validator};
use crate::live::hub::{ConnectError, Resume, Scope};
use crate::live::{LiveStats, PatrolInfo};
use crate::openapi::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, ReadErrors, TooManyRequests, Unauthorized,
    Unavailable, ValidationFailed,
};
use crate::problem::{ApiError, ApiResult};
use crate::AppState;

/// A fix may be this far ahead of the server's clock (device clock skew).
const MAX_FUTURE: chrono::Duration = chrono::Duration::seconds(30);
/// A fix may be this old (a device uploading what it buffered while offline).
const MAX_AGE: chrono::Duration = chrono::Duration::hours(24);
/// Fastest plausible patrol (540 km/h covers helicopters), in m/s.
const MAX_SPEED_MPS: f64 = 150.0;
/// Most fixes one `POST /patrols/{id}/locations` may carry.
const MAX_FIXES_PER_REQUEST: usize = 100;
/// Track pages: default and largest `limit`.
const TRACK_DEFAULT_LIMIT: u32 = 100;
const TRACK_MAX_LIMIT: u32 = 1000;
/// Most positions a track request looks at before answering with a cursor.
const TRACK_SCAN_BUDGET: usize = 10_000;
/// How long an SSE request waits for the hub to start.
const READY_WAIT: Duration = Duration::from_secs(5);

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/patrols/{id}/location",
            put(put_location).get(get_location),
        )
        .route("/patrols/{id}/locations", post(post_locations))
        .route("/patrols/{id}/track", get(track))
        .route("/patrols/stream", get(patrol_stream))
        .route("/me/assignments/stream", get(inbox_stream))
        .route("/queues/reports/stream", get(report_stream))
        .route("/me/crimes/stream", get(my_crimes_stream))
        .route("/crimes/{id}/stream", get(crime_stream))
        .route("/admin/live", get(stats))
}

#[derive(OpenApi)]
#[openapi(paths(
    put_location,
    post_locations,
    get_location,
    track,
    patrol_stream,
    inbox_stream,
    report_stream,
    my_crimes_stream,
    crime_stream,
    stats
))]
pub struct Api;

/// Where the patrol is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PatrolLocationBody)]
pub struct LocationBody {
    #[schema(minimum = -90, maximum = 90)]
    latitude: f64,
    #[schema(minimum = -180, maximum = 180)]
    longitude: f64,
    /// Degrees, at least 0 and below 360.
    #[serde(default)]
    heading: Option<f64>,
    /// Metres per second, 0 to 150.
    #[serde(default)]
    speed_mps: Option<f64>,
    /// When the device took the fix (default: now); at most 30 s ahead of the server's
    /// clock and 24 h behind it.
    #[serde(default)]
    recorded_at: Option<DateTime<Utc>>,
}

/// Several fixes at once, oldest first (a device uploading what it buffered).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PatrolLocationsBody)]
pub struct LocationsBody {
    /// 1 to 100 fixes, stored in the order given.
    #[schema(min_items = 1, max_items = 100)]
    fixes: Vec<LocationBody>,
}

/// A location update that passed every rule.
#[derive(Debug, Clone, Copy)]
struct Fix {
    latitude: Latitude,
    longitude: Longitude,
    heading: Option<f64>,
    speed_mps: Option<f64>,
    recorded_at: DateTime<Utc>,
}

impl Fix {
    /// Parses a body against the server clock `now`; 422 names every bad field.
    fn parse(b: &LocationBody, now: DateTime<Utc>) -> Result<Self, ApiError> {
        let mut v = Validator::new();
        let latitude = v.check("latitude", Latitude::parse(b.latitude));
        let longitude = v.check("longitude", Longitude::parse(b.longitude));
        if let Some(h) = b.heading {
            if !(h.is_finite() && (0.0..360.0).contains(&h)) {
                v.fail("heading", "must be in degrees, at least 0 and below 360");
            }
        }
        if let Some(s) = b.speed_mps {
            if !(s.is_finite() && (0.0..=MAX_SPEED_MPS).contains(&s)) {
                v.fail("speed_mps", "must be between 0 and 150 metres per second");
            }
        }
        let recorded_at = b.recorded_at.unwrap_or(now);
        if let Err(e) = Timestamp::parse(recorded_at) {
            v.fail("recorded_at", e.to_string());
        } else if recorded_at > now + MAX_FUTURE {
            v.fail("recorded_at", "must not be more than 30 s in the future");
        } else if recorded_at < now - MAX_AGE {
            v.fail("recorded_at", "must not be more than 24 h in the past");
        }
        v.finish()?;
        match (latitude, longitude) {
            (Some(latitude), Some(longitude)) => Ok(Fix {
                latitude,
                longitude,
                heading: b.heading,
                speed_mps: b.speed_mps,
                recorded_at,
            }),
            _ => Err(ApiError::invalid("body", "invalid coordinates")),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LocationAccepted {
    /// The positions-stream sequence of this fix.
    position: u64,
    patrol_id: Uuid,
    recorded_at: DateTime<Utc>,
}

/// Several fixes recorded in the positions stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocationsAccepted {
    patrol_id: Uuid,
    /// The positions-stream sequence of each fix, in the order sent.
    positions: Vec<u64>,
}

/// Parses every fix of a batch; 422 names every bad field as `fixes[i].field`.
fn parse_fixes(b: &LocationsBody, now: DateTime<Utc>) -> Result<Vec<Fix>, ApiError> {
    let n = b.fixes.len();
    if n == 0 || n > MAX_FIXES_PER_REQUEST {
        return Err(ApiError::invalid(
            "fixes",
            format!("must hold 1 to {MAX_FIXES_PER_REQUEST} fixes"),
        ));
    }
    let mut fixes = Vec::with_capacity(n);
    let mut errors = Vec::new();
    for (i, body) in b.fixes.iter().enumerate() {
        match Fix::parse(body, now) {
            Ok(fix) => fixes.push(fix),
            Err(ApiError::Invalid(bad)) => errors.extend(bad.into_iter().map(|mut e| {
                e.field = format!("fixes[{i}].{}", e.field);
                e
            })),
            Err(other) => return Err(other),
        }
    }
    if errors.is_empty() {
        Ok(fixes)
    } else {
        Err(ApiError::Invalid(errors))
    }
}

/// Publishes `caller`'s fixes for patrol `p` in order; their sequences once every one
/// is acknowledged, else 503 (each fix's outcome unknown: sending again is harmless).
async fn store(
    state: &AppState,
    p: &PatrolInfo,
    id: Uuid,
    caller: &Caller,
    fixes: &[Fix],
    now: DateTime<Utc>,
) -> ApiResult<Vec<u64>> {
    let moves: Vec<PatrolMoved> = fixes
        .iter()
        .map(|fix| moved(p, id, caller, fix, now))
        .collect();
    let positions = state
        .live
        .positions
        .publish_many(&moves)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "positions not confirmed");
            ApiError::Unavailable("the positions stream did not confirm the update; retry".into())
        })?;
    crate::metrics::location_updates(positions.len());
    Ok(positions)
}

/// The event a fix of `caller`'s for patrol `p` becomes.
fn moved(p: &PatrolInfo, id: Uuid, caller: &Caller, fix: &Fix, now: DateTime<Utc>) -> PatrolMoved {
    PatrolMoved {
        patrol_id: id,
        station_id: p.station_id.as_uuid(),
        officer_id: caller.id.as_uuid(),
        latitude: fix.latitude.value(),
        longitude: fix.longitude.value(),
        heading: fix.heading,
        speed_mps: fix.speed_mps,
        recorded_at: fix.recorded_at,
        received_at: now,
    }
}

/// A member of the patrol, or 403 (staff of its station) / 404 (anyone else).
fn require_member(caller: &Caller, p: &PatrolInfo) -> ApiResult<()> {
    if p.is_serving_member(caller.id, caller.role, caller.station_id) {
        Ok(())
    } else if caller.is_staff_of(p.station_id) {
        Err(ApiError::Forbidden(
            "only a member of the patrol may report its location".into(),
        ))
    } else {
        Err(ApiError::NotFound)
    }
}

/// The patrol, or 404 when it does not exist.
async fn patrol(state: &AppState, id: Uuid) -> ApiResult<std::sync::Arc<PatrolInfo>> {
    state
        .live
        .directory
        .get(id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Staff of the patrol's station (ADMIN: any): others get 403 (not staff) or 404.
fn require_staff_of(caller: &Caller, p: &PatrolInfo) -> ApiResult<()> {
    if !caller.role.is_staff() {
        return Err(ApiError::forbidden());
    }
    if !caller.is_staff_of(p.station_id) {
        return Err(ApiError::NotFound);
    }
    Ok(())
}

/// Report a patrol's position (the high-rate path: not an event of the log).
///
/// Roles: PATROL, a member of the patrol.
#[utoipa::path(
    put,
    path = "/patrols/{id}/location",
    operation_id = "put_patrol_location",
    tag = "patrols",
    params(("id" = Uuid, Path, description = "The patrol")),
    request_body = LocationBody,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Recorded in the positions stream", body = LocationAccepted),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(patrol = %id))]
async fn put_location(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    // Not a command: a position is not an event, and patrols report often.
    JsonBody(body): JsonBody<LocationBody>,
) -> ApiResult<(StatusCode, Json<LocationAccepted>)> {
    let p = patrol(&state, id).await?;
    require_member(&caller, &p)?;
    let now = Utc::now();
    let fix = Fix::parse(&body, now)?;
    let [position] = store(&state, &p, id, &caller, &[fix], now).await?[..] else {
        return Err(ApiError::Internal("one fix, not one sequence".into()));
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(LocationAccepted {
            position,
            patrol_id: id,
            recorded_at: fix.recorded_at,
        }),
    ))
}

/// Report several positions of a patrol at once, oldest first (a device uploading what
/// it buffered, or sending a few fixes per request to save round trips).
///
/// All fixes are validated before any is stored (422 names `fixes[i].field`); then
/// they are published in order and the answer carries each one's sequence. A 503
/// leaves the outcome of each fix unknown: sending the batch again is harmless.
///
/// Roles: PATROL, a member of the patrol.
#[utoipa::path(
    post,
    path = "/patrols/{id}/locations",
    operation_id = "post_patrol_locations",
    tag = "patrols",
    params(("id" = Uuid, Path, description = "The patrol")),
    request_body = LocationsBody,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Every fix recorded in the positions stream", body = LocationsAccepted),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(patrol = %id))]
async fn post_locations(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<LocationsBody>,
) -> ApiResult<(StatusCode, Json<LocationsAccepted>)> {
    let p = patrol(&state, id).await?;
    require_member(&caller, &p)?;
    let now = Utc::now();
    let fixes = parse_fixes(&body, now)?;
    let positions = store(&state, &p, id, &caller, &fixes, now).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(LocationsAccepted {
            patrol_id: id,
            positions,
        }),
    ))
}

/// One retained position.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionView {
    /// The positions-stream sequence.
    position: u64,
    patrol_id: Uuid,
    station_id: Uuid,
    officer_id: Uuid,
    latitude: f64,
    longitude: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    heading: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    speed_mps: Option<f64>,
    recorded_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
}

impl From<RecordedMove> for PositionView {
    fn from(m: RecordedMove) -> Self {
        let p = m.moved;
        Self {
            position: m.seq,
            patrol_id: p.patrol_id,
            station_id: p.station_id,
            officer_id: p.officer_id,
            latitude: p.latitude,
            longitude: p.longitude,
            heading: p.heading,
            speed_mps: p.speed_mps,
            recorded_at: p.recorded_at,
            received_at: p.received_at,
        }
    }
}

fn log_unavailable(e: precinct_eventlog::ReadError) -> ApiError {
    tracing::warn!(error = %e, "positions stream read failed");
    ApiError::Unavailable("the positions stream is unavailable; retry later".into())
}

/// A patrol's last retained position (404 if none).
///
/// Roles: PATROL, DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    get,
    path = "/patrols/{id}/location",
    operation_id = "get_patrol_location",
    tag = "patrols",
    params(("id" = Uuid, Path, description = "The patrol")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The last position", body = PositionView),
        ReadErrors,
    )
)]
async fn get_location(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<PositionView>> {
    let p = patrol(&state, id).await?;
    require_staff_of(&caller, &p)?;
    let last = state
        .live
        .positions
        .latest(id)
        .await
        .map_err(log_unavailable)?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(last.into()))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrackParams {
    /// Default: an hour before `to`. RFC 3339, 1900 to 9999.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<Timestamp>,
    /// Default: now. RFC 3339, 1900 to 9999.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
    /// 1 to 1000; default 100.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

/// One page of a track; pass `next_cursor` as `cursor` for the next page.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackPage {
    items: Vec<PositionView>,
    next_cursor: Option<String>,
}

/// A patrol's retained positions recorded in `[from, to]` (default: the last hour), in
/// stream order, `limit` per page (default 100, at most 1000).
///
/// Roles: PATROL, DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
///
/// A fix is accepted up to 30 s ahead of and 24 h behind the server clock, so the
/// positions recorded in the window are among those received from `from − 30 s` to
/// `to + 24 h`; a page stops after looking at 10,000 of them and hands out a cursor.
#[utoipa::path(
    get,
    path = "/patrols/{id}/track",
    tag = "patrols",
    params(("id" = Uuid, Path, description = "The patrol"), TrackParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of positions", body = TrackPage),
        ReadErrors,
        (status = 422, response = ValidationFailed),
    )
)]
async fn track(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Q(params): Q<TrackParams>,
) -> ApiResult<Json<TrackPage>> {
    let p = patrol(&state, id).await?;
    require_staff_of(&caller, &p)?;
    let to = params.to.map_or_else(Utc::now, Timestamp::get);
    let from = params
        .from
        .map_or(to - chrono::Duration::hours(1), Timestamp::get);
    if from > to {
        return Err(ApiError::invalid("from", "must not be after `to`"));
    }
    let limit = params.limit.unwrap_or(TRACK_DEFAULT_LIMIT);
    if !(1..=TRACK_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {TRACK_MAX_LIMIT}"),
        ));
    }
    let limit = limit as usize;
    let mut start = match &params.cursor {
        Some(c) => WindowStart::After(
            c.parse()
                .map_err(|_| ApiError::BadRequest("invalid cursor".into()))?,
        ),
        None => WindowStart::Time(from - MAX_FUTURE),
    };
    let received_by = to + MAX_AGE;
    let positions = &state.live.positions;
    let mut items = Vec::new();
    let mut scanned = 0usize;
    let mut last_seq = None;
    let mut exhausted = false;
    'scan: loop {
        const BATCH: usize = 1000;
        let batch = positions
            .read_patrol(id, start, BATCH)
            .await
            .map_err(log_unavailable)?;
        let full = batch.len() == BATCH;
        for m in batch {
            last_seq = Some(m.seq);
            scanned += 1;
            if m.stored_at > received_by {
                exhausted = true;
                break 'scan;
            }
            let at = m.moved.recorded_at;
            if from <= at && at <= to {
                items.push(PositionView::from(m));
                if items.len() == limit {
                    break 'scan;
                }
            }
        }
        if !full {
            exhausted = true;
            break;
        }
        if scanned >= TRACK_SCAN_BUDGET {
            break;
        }
        if let Some(seq) = last_seq {
            start = WindowStart::After(seq);
        }
    }
    let next_cursor = if exhausted {
        None
    } else {
        last_seq.map(|s| s.to_string())
    };
    Ok(Json(TrackPage { items, next_cursor }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// ADMIN: one station (default: every station). Others: their own station only.
    #[serde(default)]
    station_id: Option<Uuid>,
}

/// How long a client told it has too many streams should wait before trying again.
const ACCOUNT_FULL_RETRY_SECS: u64 = 5;

fn connect_error(e: ConnectError) -> ApiError {
    ApiError::Unavailable(match e {
        ConnectError::Full => "too many live connections; retry later".into(),
        ConnectError::AccountFull => {
            return ApiError::TooManyRequests {
                retry_after_secs: ACCOUNT_FULL_RETRY_SECS,
            }
        }
        ConnectError::NotReady => "the live stream is starting; retry shortly".into(),
        ConnectError::Closed => "the server is shutting down".into(),
    })
}

/// Who holds a stream.
enum Holder<'a> {
    /// A signed-in account: its stream ends when the account's role, station or
    /// standing changes, or its console session ends.
    Account(&'a Caller),
    /// The holder of one report's tracking token: its connection slots are counted
    /// against the report.
    Token(Uuid),
}

/// Opens an SSE response for `scope`, resuming after `Last-Event-ID` if sent. An
/// account's stream ends when the account changes role, station or standing (it was
/// authorized for the account as it was) or its console session ends.
async fn open_stream(
    state: &AppState,
    holder: Holder<'_>,
    scope: Scope,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let hub = state.live.hub()?;
    let key = match &holder {
        Holder::Account(caller) => caller.id.as_uuid(),
        Holder::Token(report) => *report,
    };
    let permit = hub.admit(key).map_err(connect_error)?;
    hub.wait_ready(READY_WAIT).await.map_err(connect_error)?;
    let resume = Resume::parse(headers.get("last-event-id").and_then(|v| v.to_str().ok()));
    let frames = hub
        .connect(scope, resume, permit)
        .await
        .map_err(connect_error)?;
    let ends: futures::future::BoxFuture<'static, ()> = match holder {
        Holder::Account(caller) => {
            let changed = state.accounts.changed(caller.id, caller.access);
            let session = session_ends(state.pool.clone(), caller.session);
            Box::pin(async move {
                tokio::select! {
                    _ = changed => {}
                    _ = session => {}
                }
            })
        }
        Holder::Token(_) => Box::pin(std::future::pending()),
    };
    // A first comment flushes the headers at once; the stream ends on shutdown.
    // The gauge guard lives as long as the response body.
    let gauge = crate::metrics::SseSubscriber::new();
    let events = futures::stream::once(async { Event::default().comment("live") })
        .chain(frames.map(move |f| {
            let _connected = &gauge;
            f.to_sse()
        }))
        .map(Ok::<_, Infallible>)
        .take_until(hub.shutdown().clone().cancelled_owned())
        .take_until(ends);
    let mut res = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(hub.config().keep_alive))
        .into_response();
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

/// How often an open stream of a console session checks that its session still holds.
const SESSION_RECHECK: Duration = Duration::from_secs(10);

/// Resolves when the console session `sid` is revoked (logout) or has ended, checked
/// every [`SESSION_RECHECK`]; never for a bearer token (`None`), whose stream ends with
/// a change of the account as before (ADR 0029). A failed check is retried: only an
/// answer that the session no longer holds ends the stream.
async fn session_ends(pool: precinct_readmodel::PgPool, sid: Option<uuid::Uuid>) {
    let Some(sid) = sid else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(SESSION_RECHECK).await;
        match precinct_readmodel::sessions::get(&pool, sid).await {
            Ok(Some(s)) if !s.revoked && s.expires_at > chrono::Utc::now() => {}
            Ok(_) => return,
            Err(e) => tracing::warn!(error = %e, "a stream's session check failed; retrying"),
        }
    }
}

/// Server-Sent Events: positions and status changes of the caller's station (ADMIN:
/// every station, or `?station_id=`), after a snapshot; `Last-Event-ID` resumes.
///
/// Roles: PATROL, DISPATCHER, SUPERVISOR, ADMIN (station-scoped). At most 5 open
/// streams per account (every SSE endpoint together; beyond: 429 with `Retry-After`).
/// The stream ends when the account's role, station or standing changes.
#[utoipa::path(
    get,
    path = "/patrols/stream",
    tag = "patrols",
    params(
        StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "An event stream (`text/event-stream`)",
            content_type = "text/event-stream", body = String),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all)]
async fn patrol_stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Q(params): Q<StreamParams>,
) -> ApiResult<Response> {
    let scope = station_scope(
        &caller,
        &params,
        "patrols",
        Scope::AllStations,
        Scope::Station,
    )?;
    open_stream(&state, Holder::Account(&caller), scope, &headers).await
}

/// The scope of a station-wide stream: an ADMIN's `?station_id=` (default: `all`);
/// other staff their own station only (403 for another, or for no station).
fn station_scope(
    caller: &Caller,
    params: &StreamParams,
    what: &str,
    all: Scope,
    one: fn(Uuid) -> Scope,
) -> ApiResult<Scope> {
    if !caller.role.is_staff() {
        return Err(ApiError::forbidden());
    }
    if caller.is_admin() {
        return Ok(params.station_id.map_or(all, one));
    }
    let own = caller
        .station_id
        .map(|s| s.as_uuid())
        .ok_or_else(ApiError::forbidden)?;
    if params.station_id.is_some_and(|s| s != own) {
        return Err(ApiError::Forbidden(format!(
            "you may watch your own station's {what} only"
        )));
    }
    Ok(one(own))
}

/// Server-Sent Events: a `report` event for every change of a report of the caller's
/// station (ADMIN: every station, or `?station_id=`) — submitted, triaged, assigned,
/// accepted, transferred away or in, closed… — with its `report_id`, `type`,
/// `station_id` (the report's station after the change) and log `position`: a desk
/// re-reads its queue (`GET /queues/reports` with `X-Min-Position`) on each. No
/// snapshot (read the queue first); `Last-Event-ID` resumes.
///
/// Roles: PATROL, DISPATCHER, SUPERVISOR, ADMIN (station-scoped: those who may read the
/// station's queue). At most 5 open streams per account (every SSE endpoint together;
/// beyond: 429 with `Retry-After`). The stream ends when the account's role, station or
/// standing changes, or its console session ends.
#[utoipa::path(
    get,
    path = "/queues/reports/stream",
    tag = "dispatch",
    params(
        StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "An event stream (`text/event-stream`)",
            content_type = "text/event-stream", body = String),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all)]
async fn report_stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Q(params): Q<StreamParams>,
) -> ApiResult<Response> {
    let scope = station_scope(&caller, &params, "reports", Scope::AllDesks, Scope::Desk)?;
    open_stream(&state, Holder::Account(&caller), scope, &headers).await
}

/// Server-Sent Events: the officer's assignments and their changes; `Last-Event-ID`
/// resumes.
///
/// Roles: PATROL. At most 5 open streams per account (every SSE endpoint together;
/// beyond: 429 with `Retry-After`). The stream ends when the account's role, station or
/// standing changes.
#[utoipa::path(
    get,
    path = "/me/assignments/stream",
    tag = "patrols",
    params(("Last-Event-ID" = Option<String>, Header, description = "Resume after this event")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "An event stream (`text/event-stream`)",
            content_type = "text/event-stream", body = String),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all)]
async fn inbox_stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    caller.require(&[Role::Patrol])?;
    open_stream(
        &state,
        Holder::Account(&caller),
        Scope::Officer(caller.id.as_uuid()),
        &headers,
    )
    .await
}

/// Server-Sent Events: the status changes and public updates of the reports the caller
/// submitted, in the reporter view (no internal notes, patrol, officer or author);
/// `Last-Event-ID` resumes.
///
/// Roles: any signed-in account. At most 5 open streams per account (every SSE endpoint
/// together; beyond: 429 with `Retry-After`). The stream ends when the account's role,
/// station or standing changes, or its console session ends. Open the stream first,
/// then read `GET /me/crimes`: no change falls between the two.
#[utoipa::path(
    get,
    path = "/me/crimes/stream",
    tag = "crimes",
    params(("Last-Event-ID" = Option<String>, Header, description = "Resume after this event")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "An event stream (`text/event-stream`)",
            content_type = "text/event-stream", body = String),
        (status = 401, response = Unauthorized),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all)]
async fn my_crimes_stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    open_stream(
        &state,
        Holder::Account(&caller),
        Scope::Reporter(caller.id.as_uuid()),
        &headers,
    )
    .await
}

/// Server-Sent Events: one report's status changes and public updates, in the reporter
/// view (no internal notes, patrol, officer or author); `Last-Event-ID` resumes.
///
/// Roles: the report's reporter; the holder of its tracking token (`X-Tracking-Token`).
/// Anyone else gets 404. At most 5 open streams per account, or per report for
/// tracking-token holders (beyond: 429 with `Retry-After`). A signed-in reporter's
/// stream ends when the account's role, station or standing changes, or its console
/// session ends.
#[utoipa::path(
    get,
    path = "/crimes/{id}/stream",
    tag = "crimes",
    params(
        ("id" = Uuid, Path, description = "The report"),
        ("X-Tracking-Token" = Option<String>, Header, description = "The tracking token of an anonymous report"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event"),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "An event stream (`text/event-stream`)",
            content_type = "text/event-stream", body = String),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all)]
async fn crime_stream(
    State(state): State<AppState>,
    caller: Option<Caller>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let tracking = headers
        .get("x-tracking-token")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::auth::token_hash);
    // Decided on the report as the log holds it (a report submitted a moment ago is
    // not always in the read model yet).
    let (report, _) = state
        .app
        .for_queries()
        .load::<precinct_domain::report::Report>(id)
        .await?;
    let holder = match (&caller, &tracking) {
        (Some(c), _) if report.is_reported_by(c.id) => Holder::Account(c),
        (_, Some(t)) if report.has_tracking_token_hash(t) => Holder::Token(id),
        _ => return Err(ApiError::NotFound),
    };
    open_stream(&state, holder, Scope::Report(id), &headers).await
}

/// The live hub's numbers: connections, subscribers, dropped slow clients, heads.
///
/// Roles: ADMIN.
#[utoipa::path(
    get,
    path = "/admin/live",
    tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The hub's numbers", body = crate::openapi::LiveStats),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
async fn stats(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<LiveStats>> {
    caller.require(&[Role::Admin])?;
    Ok(Json(state.live.hub()?.stats()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(lat: f64, lon: f64) -> LocationBody {
        LocationBody {
            latitude: lat,
            longitude: lon,
            heading: None,
            speed_mps: None,
            recorded_at: None,
        }
    }

    fn fields(e: ApiError) -> Vec<String> {
        match e {
            ApiError::Invalid(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn a_batch_names_each_bad_fix_by_index_and_is_bounded() {
        let now = Utc::now();
        let mut bad = body(91.0, 125.61);
        bad.heading = Some(400.0);
        let batch = LocationsBody {
            fixes: vec![body(7.07, 125.61), bad, body(7.07, 181.0)],
        };
        let e = parse_fixes(&batch, now).expect_err("two bad fixes");
        assert_eq!(
            fields(e),
            [
                "fixes[1].latitude",
                "fixes[1].heading",
                "fixes[2].longitude"
            ]
        );
        for n in [0, MAX_FIXES_PER_REQUEST + 1] {
            let batch = LocationsBody {
                fixes: (0..n).map(|_| body(7.07, 125.61)).collect(),
            };
            assert_eq!(
                fields(parse_fixes(&batch, now).expect_err("bounds")),
                ["fixes"]
            );
        }
        let batch = LocationsBody {
            fixes: (0..MAX_FIXES_PER_REQUEST)
                .map(|_| body(7.07, 125.61))
                .collect(),
        };
        assert_eq!(
            parse_fixes(&batch, now).map(|f| f.len()).ok(),
            Some(MAX_FIXES_PER_REQUEST)
        );
    }

    #[test]
    fn a_fix_within_bounds_parses() {
        let now = Utc::now();
        let mut b = body(7.07, 125.61);
        b.heading = Some(359.9);
        b.speed_mps = Some(0.0);
        b.recorded_at = Some(now - chrono::Duration::hours(23));
        let fix = Fix::parse(&b, now).expect("valid");
        assert_eq!(fix.latitude.value(), 7.07);
        assert_eq!(
            Fix::parse(&body(7.0, 125.0), now)
                .expect("valid")
                .recorded_at,
            now
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let now = Utc::now();
        let mut b = body(91.0, -180.5);
        b.heading = Some(360.0);
        b.speed_mps = Some(151.0);
        b.recorded_at = Some(now + chrono::Duration::seconds(31));
        let got = fields(Fix::parse(&b, now).expect_err("invalid"));
        assert_eq!(
            got,
            [
                "latitude",
                "longitude",
                "heading",
                "speed_mps",
                "recorded_at"
            ]
        );
        let mut old = body(0.0, 0.0);
        old.recorded_at = Some(now - chrono::Duration::hours(25));
        assert_eq!(
            fields(Fix::parse(&old, now).expect_err("old")),
            ["recorded_at"]
        );
        let mut neg = body(0.0, 0.0);
        neg.speed_mps = Some(-1.0);
        neg.heading = Some(f64::NAN);
        assert_eq!(
            fields(Fix::parse(&neg, now).expect_err("negative")),
            ["heading", "speed_mps"]
        );
    }
}
