//! Query endpoints: read models in PostgreSQL (with `X-Min-Position` for read-your-
//! writes), except a report's history and `as_of`, which are folded from the log.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use precinct_domain::ids::StationId;
use precinct_domain::report::Report;
use precinct_domain::values::{Role, SlaKind, Timestamp};
use precinct_readmodel::queries::{
    self, AuditFilter, Coordinates, Near, Page, PageRequest, QueueFilter, ReportFilter,
    RequestFilter,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::token_hash;
use crate::auth::Caller;
use crate::export::{self, Format, FormatParam};
use crate::extract::Path;
use crate::extract::{ClientAddr, MinPosition};
use crate::openapi::{
    AuditPage, BadRequest, CrimeListPage, HistoryPage, ListErrors, NotFound, OverdueReportPage,
    PatrolPage, PatrolRow, QueryHeaders, ReadErrors, ReportPage, ReporterReportPage, RequestPage,
    StationPage, Unauthorized, Unavailable, ValidationFailed, WorkloadPage,
};
use crate::problem::{ApiError, ApiResult};
use crate::views::{PublicReportView, ReportAnswer, ReportView, ReporterReportView};
use crate::AppState;
use precinct_app::policy::require_visible;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/crimes", get(list_crimes))
        .route("/crimes/{id}", get(get_crime))
        .route("/crimes/{id}/history", get(history))
        .route("/patrols/register", get(list_patrols))
        .route("/patrols/{id}", get(get_patrol))
        .route("/queues/reports", get(queue))
        .route("/me/crimes", get(my_crimes))
        .route("/me/assignments", get(my_assignments))
        .route("/workloads", get(workloads))
        .route("/sla", get(sla))
        .route("/audit", get(audit))
        .route("/audit/requests", get(request_log))
}

#[derive(OpenApi)]
#[openapi(paths(
    list_crimes,
    get_crime,
    history,
    list_patrols,
    get_patrol,
    queue,
    my_crimes,
    my_assignments,
    workloads,
    sla,
    audit,
    request_log,
    list_stations
))]
pub struct Api;

/// Query-string parameters, refused as problem+json (400) when they do not parse.
#[derive(Debug)]
pub struct Q<T>(pub T);

/// The query-string parameters of a list that exports CSV: as [`Q`], with `format`
/// left to the [`Format`] extractor.
#[derive(Debug)]
pub struct ListQ<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ListQ<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::BadRequest(format!("query string: {e}")))?;
        let kept: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != "format").collect();
        let rest = serde_urlencoded::to_string(&kept)
            .map_err(|e| ApiError::BadRequest(format!("query string: {e}")))?;
        serde_urlencoded::from_str(&rest)
            .map(ListQ)
            .map_err(|e| ApiError::BadRequest(format!("query string: {e}")))
    }
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(Q)
            .map_err(|e| ApiError::BadRequest(format!("query string: {e}")))
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Comma-separated statuses, e.g. `NEW,ASSIGNED`.
    #[serde(default)]
    #[param(example = "NEW,ASSIGNED")]
    status: Option<String>,
    /// Staff: their own station only (ADMIN: any).
    #[serde(default)]
    station_id: Option<Uuid>,
    #[serde(default)]
    #[param(value_type = Option<crate::openapi::Priority>)]
    priority: Option<String>,
    /// `lat,lon`: reports within `radius_m` of this point (`GET /crimes` only).
    #[serde(default)]
    #[param(example = "7.07,125.61")]
    near: Option<String>,
    /// Metres, in (0, 100000]; default 1000 (`GET /crimes` only).
    #[serde(default)]
    radius_m: Option<f64>,
    /// 1 to 100 items; default 20.
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

pub(crate) fn page(limit: Option<u32>, cursor: Option<String>) -> ApiResult<PageRequest> {
    if limit == Some(0) || limit.is_some_and(|l| l > queries::MAX_LIMIT) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {}", queries::MAX_LIMIT),
        ));
    }
    Ok(PageRequest {
        limit,
        cursor,
        export: false,
    })
}

fn statuses(s: &Option<String>) -> ApiResult<Option<Vec<String>>> {
    let Some(s) = s else { return Ok(None) };
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let st = part
            .parse::<precinct_domain::values::ReportStatus>()
            .map_err(|e| ApiError::invalid("status", e.to_string()))?;
        out.push(st.as_str().to_string());
    }
    Ok(Some(out))
}

fn priority(p: &Option<String>) -> ApiResult<Option<String>> {
    p.as_ref()
        .map(|p| {
            p.parse::<precinct_domain::values::Priority>()
                .map(|p| p.as_str().to_string())
                .map_err(|e| ApiError::invalid("priority", e.to_string()))
        })
        .transpose()
}

fn near(p: &ListParams, coordinates: Coordinates) -> ApiResult<Option<Near>> {
    let Some(near) = &p.near else {
        if p.radius_m.is_some() {
            return Err(ApiError::invalid("near", "radius_m needs near=lat,lon"));
        }
        return Ok(None);
    };
    let (lat, lon) = near
        .split_once(',')
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)))
        .ok_or_else(|| ApiError::invalid("near", "expected near=lat,lon"))?;
    precinct_domain::values::GeoPoint::parse(lat, lon)
        .map_err(|e| ApiError::invalid("near", e.to_string()))?;
    let radius = p.radius_m.unwrap_or(1000.0);
    if !(radius.is_finite() && radius > 0.0 && radius <= 100_000.0) {
        return Err(ApiError::invalid("radius_m", "must be in (0, 100000]"));
    }
    Ok(Some(Near {
        latitude: lat,
        longitude: lon,
        radius_m: radius,
        coordinates,
    }))
}

/// The statuses the public list may show: those asked for (default: all), except
/// `WITHDRAWN` — a report its reporter took back is nobody else's business.
fn publicly_listed(asked: Option<Vec<String>>) -> Vec<String> {
    use precinct_domain::values::ReportStatus;
    asked
        .unwrap_or_else(|| {
            ReportStatus::ALL
                .iter()
                .map(|s| s.as_str().to_string())
                .collect()
        })
        .into_iter()
        .filter(|s| s != ReportStatus::Withdrawn.as_str())
        .collect()
}

/// The station a staff caller may list: their own; ADMIN any (or all).
fn scope(c: &Caller, requested: Option<Uuid>) -> ApiResult<Option<Uuid>> {
    if c.is_admin() {
        return Ok(requested);
    }
    let own = c.station_id.map(|s| s.as_uuid());
    match requested {
        Some(r) if Some(r) != own => Err(ApiError::Forbidden(
            "you may list your own station's reports only".into(),
        )),
        _ => own.map(Some).ok_or_else(ApiError::forbidden),
    }
}

/// A report as the caller may see it: the full view for staff of its station, the
/// public view for everyone else.
// A page holds at most 100 of them, built once and serialized: the size difference
// between the variants costs nothing worth a box (and a box would show in the schema).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ListItem {
    Full(ReportView),
    Public(PublicReportView),
}

/// List reports: the public view for everyone (withdrawn reports left out); staff get the
/// full view of their station's reports.
///
/// Roles: anyone (public view); PATROL, DISPATCHER, SUPERVISOR, ADMIN get the full view,
/// station-scoped (ADMIN: every station).
#[utoipa::path(
    get,
    path = "/crimes",
    tag = "crimes",
    params(ListParams, FormatParam, QueryHeaders),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of reports", body = CrimeListPage),
        ListErrors,
    )
)]
async fn list_crimes(
    State(state): State<AppState>,
    caller: Option<Caller>,
    _min: MinPosition,
    ClientAddr(addr): ClientAddr,
    format: Format,
    ListQ(p): ListQ<ListParams>,
) -> ApiResult<Response> {
    if format == Format::Csv {
        state.exports.take(caller.as_ref(), addr)?;
    }
    let staff = caller.filter(|c| c.role.is_staff());
    let coordinates = if staff.is_some() {
        Coordinates::Exact
    } else {
        Coordinates::Public
    };
    let filter = ReportFilter {
        station_id: match &staff {
            Some(c) => scope(c, p.station_id)?,
            None => p.station_id,
        },
        status: match &staff {
            Some(_) => statuses(&p.status)?,
            None => Some(publicly_listed(statuses(&p.status)?)),
        },
        priority: priority(&p.priority)?,
        near: near(&p, coordinates)?,
        reporter_id: None,
        patrol_ids: None,
        ..ReportFilter::default()
    };
    let pg = page(p.limit, p.cursor.clone())?;
    // Anyone but staff is answered from the public columns alone (`list_public_reports`):
    // the personal and internal ones are never read for them.
    if format == Format::Csv {
        return match staff {
            Some(_) => {
                let fetch = export::query(&state.pool, filter, |pool, f, pg| async move {
                    queries::list_reports(&pool, &f, &pg).await
                });
                export::pages("crimes", "ReportView", pg.cursor, pg.limit, fetch, |r| {
                    Ok(ReportView::from(&r))
                })
                .await
            }
            None => {
                let fetch = export::query(&state.pool, filter, |pool, f, pg| async move {
                    queries::list_public_reports(&pool, &f, &pg).await
                });
                export::pages(
                    "crimes",
                    "PublicReportView",
                    pg.cursor,
                    pg.limit,
                    fetch,
                    |r| Ok(PublicReportView::from(&r)),
                )
                .await
            }
        };
    }
    Ok(Json(match staff {
        Some(_) => queries::list_reports(&state.pool, &filter, &pg)
            .await?
            .map(|r| ListItem::Full(ReportView::from(&r))),
        None => queries::list_public_reports(&state.pool, &filter, &pg)
            .await?
            .map(|r| ListItem::Public(PublicReportView::from(&r))),
    })
    .into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetParams {
    /// The report as it was at this time (RFC 3339, 1900 to 9999), folded from the log.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    as_of: Option<Timestamp>,
}

fn tracking(parts: &axum::http::HeaderMap) -> Option<precinct_domain::values::TokenHash> {
    parts
        .get("x-tracking-token")
        .and_then(|v| v.to_str().ok())
        .and_then(token_hash)
}

/// One report: in full (`ReportView`) for staff of its station, as its reporter sees it
/// (`ReporterReportView`: no internal notes, evidence, patrol or author ids) for its
/// reporter and the holder of its tracking token.
///
/// Roles: its reporter; the holder of its tracking token (`X-Tracking-Token`); PATROL,
/// DISPATCHER, SUPERVISOR, ADMIN (station-scoped). Anyone else gets 404. 503 while the
/// report's read model is held in quarantine (ADR 0009). `as_of` reads the report's
/// whole log: they count in a per-caller budget (429 with `Retry-After` beyond it).
#[utoipa::path(
    get,
    path = "/crimes/{id}",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), GetParams, ("X-Tracking-Token" = Option<String>, Header, description = "The tracking token of an anonymous report"), QueryHeaders),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The report, in the caller's view", body = ReportAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
async fn get_crime(
    State(state): State<AppState>,
    caller: Option<Caller>,
    headers: axum::http::HeaderMap,
    _min: MinPosition,
    crate::extract::ClientAddr(addr): crate::extract::ClientAddr,
    Path(id): Path<Uuid>,
    Q(p): Q<GetParams>,
) -> ApiResult<Json<ReportAnswer>> {
    let tracking = tracking(&headers);
    if let Some(at) = p.as_of.map(Timestamp::get) {
        // A read of the whole stream: within the caller's budget, in the queries' lane.
        state.log_reads.take(caller.as_ref(), addr)?;
        // Visibility is decided on the report as it is now; the answer is as it was.
        // One read of the log gives both; a read that fails is a 503, never a 404.
        // From the snapshot before `at` and the events after it (ADR 0022).
        let as_of = state
            .app
            .for_queries()
            .load_as_of_with::<Report>(id, at, &crate::ports::Facts(&state))
            .await?;
        ::metrics::counter!(
            "precinct_as_of_total",
            "start" => if as_of.from_snapshot { "snapshot" } else { "log" }
        )
        .increment(1);
        let ((now, _), (then, version)) = (as_of.now, as_of.then);
        require_visible(
            caller.map(|c| c.principal()).as_ref(),
            tracking.as_ref(),
            &now,
        )?;
        if version == 0 {
            return Err(ApiError::NotFound);
        }
        let answer = match (
            ReportAnswer::for_caller(caller.as_ref(), &then),
            then.duplicate_of,
        ) {
            // A duplicate's reporter follows its primary, as it stood then.
            (ReportAnswer::Reporter(view), Some(primary)) => {
                let (_, (primary, _)) = state
                    .app
                    .for_queries()
                    .load_as_of::<Report>(primary.as_uuid(), at)
                    .await?;
                ReportAnswer::Reporter(view.following(&primary))
            }
            (answer, _) => answer,
        };
        return Ok(Json(answer));
    }
    let (row, held) = tokio::try_join!(
        async { Ok::<_, ApiError>(queries::get_report(&state.pool, id).await?) },
        async {
            Ok::<_, ApiError>(
                precinct_readmodel::quarantine::is_held(&state.pool, "reports", "report", id)
                    .await?,
            )
        },
    )?;
    if held {
        // Its row is missing or stale until an operator repairs it (ADR 0009): not a
        // 404, and not an old state passed off as the current one. Visibility comes
        // from the log, since the row cannot be trusted.
        let (report, _) = state.app.load::<Report>(id).await?;
        require_visible(
            caller.map(|c| c.principal()).as_ref(),
            tracking.as_ref(),
            &report,
        )?;
        return Err(ApiError::Unavailable(
            "this report is being repaired; retry later".into(),
        ));
    }
    let row = row.ok_or(ApiError::NotFound)?;
    let visible = match &caller {
        Some(c) if c.is_staff_of(StationId::new(row.station_id)) => true,
        Some(c) if row.reporter_id == Some(c.id.as_uuid()) => true,
        _ => match (&tracking, &row.tracking_token_hash) {
            (Some(t), Some(h)) => t.as_str() == h,
            _ => false,
        },
    };
    if !visible {
        return Err(ApiError::NotFound);
    }
    Ok(Json(ReportAnswer::for_caller_from_row(
        caller.as_ref(),
        &row,
    )))
}

/// One event of a report's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItem {
    /// The event's log position.
    position: u64,
    /// The event type, e.g. `ReportAssigned` (see `schemas/events/`).
    #[serde(rename = "type")]
    #[schema(example = "ReportAssigned")]
    kind: String,
    occurred_at: DateTime<Utc>,
    actor_id: Option<Uuid>,
    #[schema(value_type = Option<crate::openapi::Role>)]
    actor_role: Option<String>,
    /// The event's payload.
    #[schema(value_type = Object)]
    data: serde_json::Value,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

/// A report's events in order, read from the log (pages count in a per-caller budget:
/// 429 with `Retry-After` beyond it).
///
/// Roles: PATROL, DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    get,
    path = "/crimes/{id}/history",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), HistoryParams, FormatParam),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of events", body = HistoryPage),
        ReadErrors,
        (status = 422, response = ValidationFailed),
        (status = 429, response = crate::openapi::TooManyRequests),
    )
)]
async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    format: Format,
    ListQ(p): ListQ<HistoryParams>,
) -> ApiResult<Response> {
    if !caller.role.is_staff() {
        return Err(ApiError::forbidden());
    }
    let pg = page(p.limit, p.cursor.clone())?;
    let after: u64 = match &pg.cursor {
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::BadRequest("invalid cursor".into()))?,
        None => 0,
    };
    // Reads of the log: within the caller's budget, in the queries' lane.
    state.log_reads.take(Some(&caller), None)?;
    let log = state.app.log().for_queries();
    let stream = precinct_app::uow::stream_of::<Report>(id);
    // Who may see a report is decided on the report as it is now (a transfer moves it
    // to another station's staff), so the whole stream is read — as every command on
    // the report reads it, and bounded the same way (`MAX_REPORT_EVENTS`) — and the page
    // is cut from it.
    let all = log
        .read(&stream)
        .await
        .map_err(precinct_app::AppError::from)?;
    let report: Report = precinct_domain::fold(&precinct_app::uow::decode::<Report>(&all)?);
    require_visible(Some(&caller.principal()), None, &report)?;
    if !caller.is_staff_of(report.station_id) {
        return Err(ApiError::NotFound);
    }
    // An export has every event after the cursor (a report has at most
    // `MAX_REPORT_EVENTS`), or `limit` of them.
    let limit = match format {
        Format::Csv => p.limit.map_or(usize::MAX - 1, |l| l as usize),
        Format::Json => pg.limit() as usize,
    };
    // One page and one more (to know whether another page follows).
    let events: Vec<_> = all
        .into_iter()
        .filter(|e| e.position() > after)
        .take(limit + 1)
        .collect();
    let more = events.len() > limit;
    let items: Vec<HistoryItem> = events
        .into_iter()
        .take(limit)
        .map(|e| HistoryItem {
            position: e.position(),
            kind: e.envelope.event_type.clone(),
            occurred_at: e.envelope.occurred_at,
            actor_id: e.envelope.actor.id(),
            actor_role: e.envelope.actor.role().map(str::to_string),
            data: e.data,
        })
        .collect();
    if format == Format::Csv {
        return export::rows("history", "HistoryItem", &items);
    }
    let next_cursor = if more {
        items.last().map(|i| i.position.to_string())
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }).into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StationParams {
    /// Staff: their own station only (ADMIN: any, default all).
    #[serde(default)]
    station_id: Option<Uuid>,
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

fn staff(c: &Caller) -> ApiResult<()> {
    if c.role.is_staff() {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// List patrols with their workload.
///
/// Roles: PATROL, DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    get,
    path = "/patrols/register",
    tag = "patrols",
    params(StationParams, FormatParam, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of patrols", body = PatrolPage),
        ListErrors,
    )
)]
async fn list_patrols(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    format: Format,
    ListQ(p): ListQ<StationParams>,
) -> ApiResult<Response> {
    staff(&caller)?;
    let station = scope(&caller, p.station_id)?;
    let pg = page(p.limit, p.cursor)?;
    if format == Format::Csv {
        state.exports.take(Some(&caller), None)?;
        let fetch = export::query(&state.pool, station, |pool, station, pg| async move {
            queries::list_patrols(&pool, station, &pg).await
        });
        return export::pages("patrols", "PatrolRow", pg.cursor, pg.limit, fetch, Ok).await;
    }
    Ok(Json(queries::list_patrols(&state.pool, station, &pg).await?).into_response())
}

/// One patrol with its workload.
///
/// Roles: PATROL, DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    get,
    path = "/patrols/{id}",
    tag = "patrols",
    params(("id" = Uuid, Path, description = "The patrol"), QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The patrol", body = PatrolRow),
        ReadErrors,
    )
)]
async fn get_patrol(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<queries::PatrolRow>> {
    staff(&caller)?;
    let row = queries::get_patrol(&state.pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !caller.is_staff_of(StationId::new(row.station_id)) {
        return Err(ApiError::NotFound);
    }
    Ok(Json(row))
}

/// The station's open reports, most urgent and oldest first.
///
/// Roles: PATROL, DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    get,
    path = "/queues/reports",
    tag = "dispatch",
    params(ListParams, FormatParam, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of reports", body = ReportPage),
        ListErrors,
    )
)]
async fn queue(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    format: Format,
    ListQ(p): ListQ<ListParams>,
) -> ApiResult<Response> {
    staff(&caller)?;
    let filter = QueueFilter {
        station_id: scope(&caller, p.station_id)?,
        status: statuses(&p.status)?,
        priority: priority(&p.priority)?,
    };
    let pg = page(p.limit, p.cursor.clone())?;
    if format == Format::Csv {
        state.exports.take(Some(&caller), None)?;
        let fetch = export::query(&state.pool, filter, |pool, f, pg| async move {
            queries::report_queue(&pool, &f, &pg).await
        });
        return export::pages("queue", "ReportView", pg.cursor, pg.limit, fetch, |r| {
            Ok(ReportView::from(&r))
        })
        .await;
    }
    let rows = queries::report_queue(&state.pool, &filter, &pg).await?;
    Ok(Json(rows.map(|r| ReportView::from(&r))).into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

/// The reports the caller submitted, as their reporter sees them (`ReporterReportView`).
///
/// Roles: any signed-in account.
#[utoipa::path(
    get,
    path = "/me/crimes",
    tag = "crimes",
    params(PageParams, FormatParam, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of reports", body = ReporterReportPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn my_crimes(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    format: Format,
    ListQ(p): ListQ<PageParams>,
) -> ApiResult<Response> {
    let filter = ReportFilter {
        reporter_id: Some(caller.id.as_uuid()),
        ..ReportFilter::default()
    };
    let pg = page(p.limit, p.cursor)?;
    if format == Format::Csv {
        state.exports.take(Some(&caller), None)?;
        let fetch = export::query(&state.pool, filter, |pool, f, pg| async move {
            queries::list_reports(&pool, &f, &pg).await
        });
        return export::pages(
            "my-crimes",
            "ReporterReportView",
            pg.cursor,
            pg.limit,
            fetch,
            |r| Ok(ReporterReportView::from(&r)),
        )
        .await;
    }
    let rows = queries::list_reports(&state.pool, &filter, &pg).await?;
    Ok(Json(rows.map(|r| ReporterReportView::from(&r))).into_response())
}

/// The officer's inbox: reports assigned to the caller's patrols.
///
/// Roles: PATROL.
#[utoipa::path(
    get,
    path = "/me/assignments",
    tag = "patrols",
    params(PageParams, FormatParam, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of reports", body = ReportPage),
        ListErrors,
    )
)]
async fn my_assignments(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    format: Format,
    ListQ(p): ListQ<PageParams>,
) -> ApiResult<Response> {
    caller.require(&[Role::Patrol])?;
    let station = caller.station_id.ok_or_else(ApiError::forbidden)?;
    let pg = page(p.limit, p.cursor)?;
    if format == Format::Csv {
        state.exports.take(Some(&caller), None)?;
        let officer = (caller.id.as_uuid(), station.as_uuid());
        let fetch = export::query(&state.pool, officer, |pool, (o, s), pg| async move {
            queries::officer_inbox(&pool, o, s, &pg).await
        });
        return export::pages(
            "assignments",
            "ReportView",
            pg.cursor,
            pg.limit,
            fetch,
            |r| Ok(ReportView::from(&r)),
        )
        .await;
    }
    // Only patrols of the officer's current station: a crew list can trail a move.
    let rows =
        queries::officer_inbox(&state.pool, caller.id.as_uuid(), station.as_uuid(), &pg).await?;
    Ok(Json(rows.map(|r| ReportView::from(&r))).into_response())
}

/// Each patrol's workload.
///
/// Roles: PATROL, DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    get,
    path = "/workloads",
    tag = "dispatch",
    params(StationParams, FormatParam, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of workloads", body = WorkloadPage),
        ListErrors,
    )
)]
async fn workloads(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    format: Format,
    ListQ(p): ListQ<StationParams>,
) -> ApiResult<Response> {
    staff(&caller)?;
    let station = scope(&caller, p.station_id)?;
    let pg = page(p.limit, p.cursor)?;
    if format == Format::Csv {
        state.exports.take(Some(&caller), None)?;
        let fetch = export::query(&state.pool, station, |pool, station, pg| async move {
            queries::workloads(&pool, station, &pg).await
        });
        return export::pages("workloads", "Workload", pg.cursor, pg.limit, fetch, Ok).await;
    }
    Ok(Json(queries::workloads(&state.pool, station, &pg).await?).into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SlaParams {
    /// `accept` (assigned, not accepted in time), `respond` (accepted, not responding in
    /// time) or `resolve` (accepted, not resolved in time). Each report's deadline is its
    /// station's SLA policy for its priority, else the server's default (ADR 0035).
    #[param(example = "accept")]
    overdue: String,
    #[serde(default)]
    station_id: Option<Uuid>,
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

/// Reports past an SLA deadline, most overdue first.
///
/// Roles: PATROL, DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    get,
    path = "/sla",
    tag = "dispatch",
    params(SlaParams, FormatParam, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of overdue reports", body = OverdueReportPage),
        ListErrors,
    )
)]
async fn sla(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    format: Format,
    ListQ(p): ListQ<SlaParams>,
) -> ApiResult<Response> {
    staff(&caller)?;
    let kind = match p.overdue.as_str() {
        "accept" => SlaKind::Accept,
        "respond" => SlaKind::Respond,
        "resolve" => SlaKind::Resolve,
        _ => {
            return Err(ApiError::invalid(
                "overdue",
                "expected accept, respond or resolve",
            ))
        }
    };
    let defaults = state.config.sla_defaults;
    let station = scope(&caller, p.station_id)?;
    let pg = page(p.limit, p.cursor)?;
    // One moment for the whole answer, also for every chunk of an export.
    let now = Utc::now();
    if format == Format::Csv {
        state.exports.take(Some(&caller), None)?;
        let fetch = export::query(&state.pool, station, move |pool, station, pg| async move {
            queries::sla_overdue(&pool, kind, &defaults, station, now, &pg).await
        });
        return export::pages("sla", "OverdueReport", pg.cursor, pg.limit, fetch, Ok).await;
    }
    Ok(
        Json(queries::sla_overdue(&state.pool, kind, &defaults, station, now, &pg).await?)
            .into_response(),
    )
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    #[serde(default)]
    actor_id: Option<Uuid>,
    #[serde(default)]
    target_id: Option<Uuid>,
    /// RFC 3339, 1900 to 9999.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<Timestamp>,
    /// RFC 3339, 1900 to 9999.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

/// The audit trail: one row per event, in log order (`from` inclusive, `to` exclusive).
///
/// Roles: SUPERVISOR (the rows whose target belonged to their station when the event
/// happened: its reports, patrols, staff and invites), ADMIN (every row).
#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    params(AuditParams, FormatParam, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of audit rows", body = AuditPage),
        ListErrors,
    )
)]
async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    format: Format,
    ListQ(p): ListQ<AuditParams>,
) -> ApiResult<Response> {
    caller.require(&[Role::Admin, Role::Supervisor])?;
    // A SUPERVISOR's trail is their station's, whatever the filters name.
    let station_id = if caller.is_admin() {
        None
    } else {
        Some(
            caller
                .station_id
                .map(|s| s.as_uuid())
                .ok_or_else(ApiError::forbidden)?,
        )
    };
    let filter = AuditFilter {
        actor_id: p.actor_id,
        target_id: p.target_id,
        station_id,
        from: p.from.map(Timestamp::get),
        to: p.to.map(Timestamp::get),
    };
    let pg = page(p.limit, p.cursor)?;
    if format == Format::Csv {
        state.exports.take(Some(&caller), None)?;
        let fetch = export::query(&state.pool, filter, |pool, f, pg| async move {
            queries::audit(&pool, &f, &pg).await
        });
        return export::pages("audit", "AuditRow", pg.cursor, pg.limit, fetch, Ok).await;
    }
    Ok(Json(queries::audit(&state.pool, &filter, &pg).await?).into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RequestParams {
    #[serde(default)]
    actor_id: Option<Uuid>,
    /// A path prefix.
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    /// RFC 3339, 1900 to 9999.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<Timestamp>,
    /// RFC 3339, 1900 to 9999.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

/// The request log: one row per HTTP request, newest first.
///
/// Roles: ADMIN.
#[utoipa::path(
    get,
    path = "/audit/requests",
    tag = "audit",
    params(RequestParams, FormatParam),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of requests", body = RequestPage),
        ListErrors,
    )
)]
async fn request_log(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    ListQ(p): ListQ<RequestParams>,
) -> ApiResult<Response> {
    caller.require(&[Role::Admin])?;
    if p.path
        .as_deref()
        .is_some_and(|p| p.chars().any(char::is_control))
    {
        return Err(ApiError::BadRequest(
            "path: must not contain control characters".into(),
        ));
    }
    let filter = RequestFilter {
        actor_id: p.actor_id,
        path: p.path,
        status: p.status,
        from: p.from.map(Timestamp::get),
        to: p.to.map(Timestamp::get),
    };
    let pg = page(p.limit, p.cursor)?;
    if format == Format::Csv {
        state.exports.take(Some(&caller), None)?;
        let fetch = export::query(&state.pool, filter, |pool, f, pg| async move {
            queries::request_log(&pool, &f, &pg).await
        });
        return export::pages("requests", "RequestRow", pg.cursor, pg.limit, fetch, Ok).await;
    }
    Ok(Json(queries::request_log(&state.pool, &filter, &pg).await?).into_response())
}

/// List stations.
///
/// Roles: anyone.
#[utoipa::path(
    get,
    path = "/stations",
    tag = "stations",
    params(PageParams, FormatParam, QueryHeaders),
    responses(
        (status = 200, description = "A page of stations", body = StationPage),
        (status = 400, response = BadRequest),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list_stations(
    State(state): State<AppState>,
    _min: MinPosition,
    ClientAddr(addr): ClientAddr,
    format: Format,
    ListQ(p): ListQ<PageParams>,
) -> ApiResult<Response> {
    let pg = page(p.limit, p.cursor)?;
    if format == Format::Csv {
        // A public list that reads no token: its exports count by client address.
        state.exports.take(None, addr)?;
        let fetch = export::query(&state.pool, (), |pool, (), pg| async move {
            queries::list_stations(&pool, &pg).await
        });
        return export::pages("stations", "StationRow", pg.cursor, pg.limit, fetch, Ok).await;
    }
    Ok(Json(queries::list_stations(&state.pool, &pg).await?).into_response())
}
