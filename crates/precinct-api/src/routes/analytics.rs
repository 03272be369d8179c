//! Analytics endpoints (issue 17 item 2, ADR 0027): parse the range and filters,
//! scope them to the caller's station (DISPATCHER, SUPERVISOR; ADMIN any or all),
//! call one query of `precinct_readmodel::queries::analytics`, render its rows.
//!
//! Every endpoint answers the range it used (`from`, `to`), the station it counted
//! (`station_id`, none: all) and flat rows (`items`); the heatmaps answer a GeoJSON
//! `FeatureCollection`. Bad values answer 422 problem+json naming the parameter.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use precinct_app::policy::DESK;
use precinct_domain::crime_type::CrimeTypeCode;
use precinct_domain::values::Priority;
use precinct_readmodel::queries::analytics::{
    self as q, Bbox, Bucket, HeatCellRow, KpiRow, Scope, SlaDeadlines, SlaMetricRow,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::export::{self, Format, FormatParam};
use crate::extract::{ClientAddr, MinPosition};
use crate::openapi::{ListErrors, QueryHeaders};
use crate::problem::{ApiError, ApiResult};
use crate::routes::queries::ListQ;
use crate::AppState;

/// The longest range one request may count over.
pub const MAX_SPAN_DAYS: i64 = 366;
/// The range when a request names none: the 30 days before `to` (default: now).
pub const DEFAULT_SPAN_DAYS: i64 = 30;
/// Most buckets of one volume answer.
pub const MAX_BUCKETS: i64 = 1000;
/// Most grid cells a heatmap's bbox may cover at its precision.
pub const MAX_CELLS: f64 = 4096.0;
/// Finest geohash precision of the staff heatmap (about 38 m × 19 m).
pub const MAX_PRECISION: usize = q::CELL_PRECISION;
/// Finest geohash precision of the public heatmap (about 4.9 km × 4.9 km).
pub const MAX_PUBLIC_PRECISION: usize = 5;
/// Most type codes of one filter.
pub const MAX_TYPES: usize = 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/analytics/funnel", get(funnel))
        .route("/analytics/sla", get(sla))
        .route("/analytics/officers", get(officers))
        .route("/analytics/patrols", get(patrols))
        .route("/analytics/volume", get(volume))
        .route("/analytics/heatmap", get(heatmap))
        .route("/analytics/heatmap/public", get(public_heatmap))
}

#[derive(OpenApi)]
#[openapi(paths(funnel, sla, officers, patrols, volume, heatmap, public_heatmap))]
pub struct Api;

/// The range and filters every analytics endpoint takes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// RFC 3339, inclusive; default: 30 days before `to`. At most 366 days before `to`.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// RFC 3339, exclusive; default: now. After `from`.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// A station id. DISPATCHER and SUPERVISOR: their own (the default; another is
    /// 403). ADMIN: any; none counts every station.
    #[serde(default)]
    station: Option<String>,
    /// Comma-separated crime-type codes of the catalogue (`GET /crime-types`): reports
    /// with any of them.
    #[serde(default, rename = "type")]
    #[param(rename = "type", example = "THEFT,ROBBERY")]
    types: Option<String>,
    /// The report's priority (now; for assignments: when assigned).
    #[serde(default)]
    #[param(value_type = Option<crate::openapi::Priority>)]
    priority: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VolumeParams {
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    #[serde(default)]
    station: Option<String>,
    #[serde(default, rename = "type")]
    #[param(rename = "type")]
    types: Option<String>,
    #[serde(default)]
    #[param(value_type = Option<crate::openapi::Priority>)]
    priority: Option<String>,
    /// `hour`, `day` (default), `week` (from Monday) or `month`, in UTC; at most 1000
    /// buckets in the range.
    #[serde(default)]
    #[param(example = "day")]
    bucket: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HeatmapParams {
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    #[serde(default)]
    station: Option<String>,
    #[serde(default, rename = "type")]
    #[param(rename = "type")]
    types: Option<String>,
    #[serde(default)]
    #[param(value_type = Option<crate::openapi::Priority>)]
    priority: Option<String>,
    /// Required: `min_lon,min_lat,max_lon,max_lat` (degrees, GeoJSON order), not
    /// crossing the antimeridian (split such a box in two), covering at most 4096
    /// cells of the precision.
    #[param(example = "125.5,7.0,125.7,7.2")]
    bbox: Option<String>,
    /// Geohash length, 1 to 8 (default 6, about 1.2 km × 0.6 km).
    #[serde(default)]
    precision: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PublicHeatmapParams {
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    #[serde(default, rename = "type")]
    #[param(rename = "type")]
    types: Option<String>,
    #[serde(default)]
    #[param(value_type = Option<crate::openapi::Priority>)]
    priority: Option<String>,
    /// Required, as for `GET /analytics/heatmap`.
    #[param(example = "125.5,7.0,125.7,7.2")]
    bbox: Option<String>,
    /// Geohash length, 1 to 5 (default 5, about 4.9 km × 4.9 km).
    #[serde(default)]
    precision: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Answers. The rows are the read model's (`precinct_readmodel::queries::analytics`); the
// schemas below describe them for the OpenAPI document.

/// An analytics answer: the range and station counted, and the rows.
#[derive(Debug, Serialize)]
pub struct Answer<T> {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// None: every station.
    pub station_id: Option<Uuid>,
    pub items: Vec<T>,
}

/// `GET /analytics/sla`: the duration metrics and the KPIs.
#[derive(Debug, Serialize)]
pub struct SlaAnswer {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub station_id: Option<Uuid>,
    pub items: Vec<SlaMetricRow>,
    pub kpis: Vec<KpiRow>,
}

/// The report funnel over the reports submitted in the range (one item). Each count is
/// of reports that reached the milestone at least once, whatever happened later.
#[derive(Debug, ToSchema)]
pub struct FunnelCounts {
    /// Reports submitted in `[from, to)` (the cohort).
    pub submitted: i64,
    /// … assigned to a patrol at least once.
    pub assigned: i64,
    /// … whose assignment a patrol accepted at least once.
    pub accepted: i64,
    /// … a patrol marked responding at least once.
    pub responding: i64,
    /// … resolved by a patrol at least once (a rejected closure does not undo it).
    pub resolved: i64,
    /// … whose closure a supervisor approved.
    pub closed: i64,
    /// Drop-out: reports declined by a patrol at least once.
    pub declined: i64,
    /// Every decline of the cohort (a report may be declined several times).
    pub declines: i64,
    /// Drop-out: reports rejected as not valid.
    pub rejected: i64,
    /// Drop-out: reports withdrawn by their reporter.
    pub withdrawn: i64,
    /// Drop-out: reports closed as a duplicate of another.
    pub duplicates: i64,
}

/// A funnel answer.
#[derive(Debug, ToSchema)]
pub struct FunnelAnswer {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub station_id: Option<Uuid>,
    pub items: Vec<FunnelCounts>,
}

/// One duration metric over the reports submitted in the range.
///
/// `time_to_assign`: submission → first assignment, per report assigned.
/// `time_to_accept`: assignment → its acceptance, per accepted assignment (SLA:
/// `PRECINCT_SLA_ACCEPT_SECS`). `time_to_respond`: acceptance → responding, per
/// assignment that responded (SLA: `PRECINCT_SLA_RESPOND_SECS`). `time_to_resolve`:
/// submission → first resolution. `time_to_close`: submission → closure approved.
#[derive(Debug, ToSchema)]
pub struct SlaMetric {
    #[schema(example = "time_to_accept")]
    pub metric: String,
    /// Durations measured.
    pub count: i64,
    /// Percentiles (PostgreSQL `percentile_cont`: linear interpolation) in seconds;
    /// none when nothing was measured.
    pub p50_secs: Option<f64>,
    pub p90_secs: Option<f64>,
    pub p99_secs: Option<f64>,
    /// The configured deadline (accept and respond only).
    pub sla_secs: Option<i64>,
    /// Durations at or under the deadline (accept and respond only).
    pub within_sla: Option<i64>,
    /// `within_sla / count`.
    pub within_sla_share: Option<f64>,
    /// Breaches the SLA worker recorded on the cohort's assignments (accept: not
    /// accepted in time; respond: not responding in time; resolve: not resolved in
    /// time after acceptance, under the station's policy — ADR 0035); none for
    /// `time_to_assign` and `time_to_close`.
    pub breaches: Option<i64>,
}

/// One of the PRD's success metrics (§17), over the reports submitted in the range.
///
/// `assignments_accepted_within_sla` (≥ 0.95): assignments accepted within the accept
/// SLA / assignments whose answer is known (accepted, ended, or breached).
/// `resolved_with_complete_closure` (≥ 0.90): reports resolved whose closure a
/// supervisor approved (reviewer and time recorded, resolution notes required) /
/// reports resolved. `assignment_failures` (≤ 0.02): assignments that ended unaccepted
/// (declined or taken back by the desk) / assignments. (Refused commands are not in the
/// log and not counted.)
#[derive(Debug, ToSchema)]
pub struct Kpi {
    #[schema(example = "assignments_accepted_within_sla")]
    pub kpi: String,
    pub numerator: i64,
    pub denominator: i64,
    /// `numerator / denominator`; none when the denominator is 0.
    pub value: Option<f64>,
    pub target: f64,
    /// `AT_LEAST` or `AT_MOST`.
    pub direction: String,
    pub met: Option<bool>,
}

/// An SLA answer.
#[derive(Debug, ToSchema)]
pub struct SlaAnalytics {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub station_id: Option<Uuid>,
    /// The five durations, in the order above.
    pub items: Vec<SlaMetric>,
    /// The three KPIs.
    pub kpis: Vec<Kpi>,
}

/// Workload over the assignments made in the range (at the station they were made
/// for), per patrol or per officer (the account that accepted, declined or resolved).
#[derive(Debug, ToSchema)]
pub struct WorkloadFigures {
    /// The patrol, or the officer's account.
    pub id: Uuid,
    /// Assignments to the patrol; per officer: those the officer answered or resolved.
    pub assignments: i64,
    /// Assignments not ended (declined, taken back, closed, or the report rejected or
    /// withdrawn end one); per officer: accepted by the officer and not ended.
    pub open: i64,
    /// Accepted (per officer: by the officer).
    pub accepted: i64,
    /// Declined (per officer: by the officer).
    pub declined: i64,
    /// `declined / (accepted + declined)`.
    pub decline_rate: Option<f64>,
    /// Resolved and not sent back by a supervisor since (per officer: by the officer).
    pub resolved: i64,
    /// Median seconds from acceptance to resolution over `resolved`.
    pub median_resolve_secs: Option<f64>,
    /// Closures a supervisor rejected (per officer: of assignments the officer resolved).
    pub closures_rejected: i64,
}

/// A workload answer.
#[derive(Debug, ToSchema)]
pub struct WorkloadAnswer {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub station_id: Option<Uuid>,
    /// By id; at most 1000.
    pub items: Vec<WorkloadFigures>,
}

/// Reports submitted in a bucket with a value of a dimension: `type` (a catalogue
/// code; a report with several counts once per code), `priority` (now), `station` (its
/// station now) or `status` (now).
#[derive(Debug, ToSchema)]
pub struct VolumeCount {
    /// The bucket's start (UTC).
    pub bucket: DateTime<Utc>,
    #[schema(example = "priority")]
    pub dimension: String,
    #[schema(example = "HIGH")]
    pub value: String,
    pub count: i64,
}

/// A volume answer, by bucket, dimension and value; buckets without reports are left
/// out.
#[derive(Debug, ToSchema)]
pub struct VolumeAnswer {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub station_id: Option<Uuid>,
    pub items: Vec<VolumeCount>,
}

/// A heatmap: one `Feature` per geohash cell with reports, its `Polygon` the cell's
/// bounds, its `properties` the cell and the count of reports submitted in the range
/// and located in the bbox and the cell.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeatmapCollection {
    /// `FeatureCollection`.
    #[serde(rename = "type")]
    #[schema(example = "FeatureCollection")]
    pub kind: &'static str,
    pub features: Vec<HeatFeature>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub station_id: Option<Uuid>,
    /// The geohash length of the cells.
    pub precision: usize,
    /// Cells with fewer reports are left out (1 for staff; the public heatmap's k).
    pub min_count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeatFeature {
    /// `Feature`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub geometry: CellPolygon,
    pub properties: HeatCell,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CellPolygon {
    /// `Polygon`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// One ring of five `[lon, lat]` positions, counter-clockwise.
    pub coordinates: Vec<Vec<[f64; 2]>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeatCell {
    /// The geohash.
    pub cell: String,
    pub count: i64,
}

// ---------------------------------------------------------------------------------------
// Parsing and scoping.

fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::invalid(field, reason)
}

fn parse_time(field: &str, s: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| invalid(field, format!("not an RFC 3339 date-time: {e}")))
}

/// The range: `to` defaults to now, `from` to 30 days before `to`; `from < to`, at most
/// 366 days apart.
fn range(from: Option<&str>, to: Option<&str>) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
    let to = match to {
        Some(t) => parse_time("to", t)?,
        None => Utc::now(),
    };
    let from = match from {
        Some(f) => parse_time("from", f)?,
        None => to - Duration::days(DEFAULT_SPAN_DAYS),
    };
    if from >= to {
        return Err(invalid("to", "must be after from"));
    }
    if to - from > Duration::days(MAX_SPAN_DAYS) {
        return Err(invalid(
            "from",
            format!("the range may span at most {MAX_SPAN_DAYS} days"),
        ));
    }
    Ok((from, to))
}

/// The station the caller may count: staff their own (another is 403), ADMIN any or
/// none (every station).
fn station(caller: &Caller, requested: Option<&str>) -> ApiResult<Option<Uuid>> {
    caller.require(DESK)?;
    let requested = requested
        .map(|s| Uuid::parse_str(s).map_err(|_| invalid("station", "not a station id")))
        .transpose()?;
    if caller.is_admin() {
        return Ok(requested);
    }
    let own = caller.station_id.map(|s| s.as_uuid());
    match (requested, own) {
        (_, None) => Err(ApiError::Forbidden("you belong to no station".into())),
        (Some(r), Some(own)) if r != own => Err(ApiError::Forbidden(
            "you may count your own station's reports only".into(),
        )),
        (_, own) => Ok(own),
    }
}

async fn types(state: &AppState, types: Option<&str>) -> ApiResult<Vec<String>> {
    let Some(types) = types else {
        return Ok(Vec::new());
    };
    let codes: Vec<String> = types
        .split(',')
        .map(|c| {
            CrimeTypeCode::parse(c.trim())
                .map(|c| c.as_str().to_owned())
                .map_err(|_| invalid("type", format!("{c:?} is not a crime-type code")))
        })
        .collect::<ApiResult<_>>()?;
    if codes.len() > MAX_TYPES {
        return Err(invalid("type", format!("at most {MAX_TYPES} codes")));
    }
    let unknown = q::unknown_crime_types(&state.pool, &codes).await?;
    if !unknown.is_empty() {
        return Err(invalid(
            "type",
            format!("not in the catalogue: {}", unknown.join(", ")),
        ));
    }
    Ok(codes)
}

fn priority(p: Option<&str>) -> ApiResult<Option<String>> {
    p.map(|p| {
        p.parse::<Priority>()
            .map(|p| p.as_str().to_owned())
            .map_err(|e| invalid("priority", e.to_string()))
    })
    .transpose()
}

struct Filters<'a> {
    from: Option<&'a str>,
    to: Option<&'a str>,
    types: Option<&'a str>,
    priority: Option<&'a str>,
}

/// The range and filters of any of the parameter structs (they share these fields).
macro_rules! filters {
    ($p:expr) => {
        Filters {
            from: $p.from.as_deref(),
            to: $p.to.as_deref(),
            types: $p.types.as_deref(),
            priority: $p.priority.as_deref(),
        }
    };
}

/// The scope of a staff caller's request: their station (ADMIN: the one asked, or
/// every one), the range and filters. An export spends the caller's export budget
/// first: a caller over it costs no aggregation.
async fn staff_scope(
    state: &AppState,
    caller: &Caller,
    format: Format,
    station_id: Option<&str>,
    f: Filters<'_>,
) -> ApiResult<Scope> {
    let st = station(caller, station_id)?;
    if format == Format::Csv {
        state.exports.take(Some(caller), None)?;
    }
    scope(state, st, f).await
}

/// Rows as the JSON answer, or as CSV (`export::rows`, the columns of `schema`).
fn render<T: Serialize>(
    format: Format,
    name: &str,
    schema: &str,
    s: &Scope,
    rows: Vec<T>,
) -> ApiResult<Response> {
    if format == Format::Csv {
        return export::rows(name, schema, &rows);
    }
    Ok(Json(answer(s, rows)).into_response())
}

async fn scope(state: &AppState, station_id: Option<Uuid>, f: Filters<'_>) -> ApiResult<Scope> {
    let (from, to) = range(f.from, f.to)?;
    let priority = priority(f.priority)?;
    let types = types(state, f.types).await?;
    Ok(Scope {
        from,
        to,
        station_id,
        types,
        priority,
    })
}

fn answer<T>(s: &Scope, items: Vec<T>) -> Answer<T> {
    Answer {
        from: s.from,
        to: s.to,
        station_id: s.station_id,
        items,
    }
}

fn bbox(s: Option<&str>) -> ApiResult<Bbox> {
    let s = s.ok_or_else(|| invalid("bbox", "required: min_lon,min_lat,max_lon,max_lat"))?;
    let v: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| invalid("bbox", "four numbers: min_lon,min_lat,max_lon,max_lat"))?;
    let [min_lon, min_lat, max_lon, max_lat] = v[..] else {
        return Err(invalid(
            "bbox",
            "four numbers: min_lon,min_lat,max_lon,max_lat",
        ));
    };
    if v.iter().any(|x| !x.is_finite()) {
        return Err(invalid("bbox", "must be finite numbers"));
    }
    if ![min_lon, max_lon]
        .iter()
        .all(|x| (-180.0..=180.0).contains(x))
        || ![min_lat, max_lat]
            .iter()
            .all(|x| (-90.0..=90.0).contains(x))
    {
        return Err(invalid(
            "bbox",
            "longitudes in [-180, 180], latitudes in [-90, 90]",
        ));
    }
    if min_lon > max_lon {
        return Err(invalid(
            "bbox",
            "crosses the antimeridian (min_lon > max_lon): ask for each side separately",
        ));
    }
    if min_lat >= max_lat || min_lon == max_lon {
        return Err(invalid("bbox", "must have min < max on both axes"));
    }
    Ok(Bbox {
        min_lon,
        min_lat,
        max_lon,
        max_lat,
    })
}

fn precision(s: Option<&str>, default: usize, max: usize) -> ApiResult<usize> {
    let Some(s) = s else { return Ok(default) };
    match s.trim().parse::<usize>() {
        Ok(p) if (1..=max).contains(&p) => Ok(p),
        _ => Err(invalid("precision", format!("an integer from 1 to {max}"))),
    }
}

/// Refuses a bbox that covers more than [`MAX_CELLS`] cells of `precision`.
fn fits(b: &Bbox, precision: usize) -> ApiResult<()> {
    let (w, h) = q::cell_size(precision);
    let cells = ((b.max_lon - b.min_lon) / w).ceil().max(1.0)
        * ((b.max_lat - b.min_lat) / h).ceil().max(1.0);
    if cells > MAX_CELLS {
        return Err(invalid(
            "bbox",
            format!(
                "too large for precision {precision}: about {cells:.0} cells, at most {MAX_CELLS}; \
                 shrink the box or lower the precision"
            ),
        ));
    }
    Ok(())
}

fn collection(
    s: &Scope,
    rows: Vec<HeatCellRow>,
    precision: usize,
    min_count: i64,
) -> HeatmapCollection {
    let features = rows
        .into_iter()
        .filter_map(|r| {
            let [x0, y0, x1, y1] = q::cell_bounds(&r.cell)?;
            Some(HeatFeature {
                kind: "Feature",
                geometry: CellPolygon {
                    kind: "Polygon",
                    coordinates: vec![vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
                },
                properties: HeatCell {
                    cell: r.cell,
                    count: r.count,
                },
            })
        })
        .collect();
    HeatmapCollection {
        kind: "FeatureCollection",
        features,
        from: s.from,
        to: s.to,
        station_id: s.station_id,
        precision,
        min_count,
    }
}

// ---------------------------------------------------------------------------------------
// Handlers.

/// The report funnel.
///
/// Roles: DISPATCHER, SUPERVISOR (their station), ADMIN (any station, or all).
///
/// Over the reports submitted in `[from, to)`: how many reached each step of the
/// lifecycle at least once (submitted → assigned → accepted → responding → resolved →
/// closed by a supervisor) and how many dropped out (declined at least once, rejected,
/// withdrawn, closed as a duplicate). One item.
#[utoipa::path(
    get,
    path = "/analytics/funnel",
    operation_id = "analytics_funnel",
    tag = "analytics",
    params(RangeParams, FormatParam, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The funnel", body = FunnelAnswer),
        ListErrors,
    )
)]
async fn funnel(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    format: Format,
    ListQ(p): ListQ<RangeParams>,
) -> ApiResult<Response> {
    let s = staff_scope(&state, &caller, format, p.station.as_deref(), filters!(p)).await?;
    let row = q::funnel(&state.pool, &s).await?;
    render(format, "funnel", "FunnelCounts", &s, vec![row])
}

/// Service levels and the PRD's success metrics.
///
/// Roles: DISPATCHER, SUPERVISOR (their station), ADMIN (any station, or all).
///
/// Over the reports submitted in `[from, to)` and their assignments: time to assign,
/// accept, respond, resolve and close as p50/p90/p99 seconds, the share within the
/// configured SLA (accept: `PRECINCT_SLA_ACCEPT_SECS`, respond:
/// `PRECINCT_SLA_RESPOND_SECS`), the breaches the SLA worker recorded, and three KPIs
/// (see `Kpi`).
#[utoipa::path(
    get,
    path = "/analytics/sla",
    operation_id = "analytics_sla",
    tag = "analytics",
    params(RangeParams, FormatParam, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Durations and KPIs", body = SlaAnalytics),
        ListErrors,
    )
)]
async fn sla(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    format: Format,
    ListQ(p): ListQ<RangeParams>,
) -> ApiResult<Response> {
    let s = staff_scope(&state, &caller, format, p.station.as_deref(), filters!(p)).await?;
    let deadlines = SlaDeadlines {
        accept_secs: state.config.sla_accept.as_secs() as i64,
        respond_secs: state.config.sla_respond.as_secs() as i64,
    };
    let (items, kpis) = q::sla(&state.pool, &s, deadlines).await?;
    if format == Format::Csv {
        // The duration metrics are the rows; the KPIs are JSON only (other columns).
        return export::rows("sla", "SlaMetric", &items);
    }
    Ok(Json(SlaAnswer {
        from: s.from,
        to: s.to,
        station_id: s.station_id,
        items,
        kpis,
    })
    .into_response())
}

/// Workload per officer.
///
/// Roles: DISPATCHER, SUPERVISOR (their station), ADMIN (any station, or all).
///
/// Over the assignments made in `[from, to)` for the station: per account that
/// accepted, declined or resolved one, its open assignments, acceptances, declines
/// (and decline rate), resolutions, median time to resolve, and closures a supervisor
/// rejected. See `WorkloadFigures`.
#[utoipa::path(
    get,
    path = "/analytics/officers",
    operation_id = "analytics_officers",
    tag = "analytics",
    params(RangeParams, FormatParam, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Per officer", body = WorkloadAnswer),
        ListErrors,
    )
)]
async fn officers(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    format: Format,
    ListQ(p): ListQ<RangeParams>,
) -> ApiResult<Response> {
    let s = staff_scope(&state, &caller, format, p.station.as_deref(), filters!(p)).await?;
    let rows = q::officer_workload(&state.pool, &s).await?;
    render(format, "officers", "WorkloadFigures", &s, rows)
}

/// Workload per patrol.
///
/// Roles: DISPATCHER, SUPERVISOR (their station), ADMIN (any station, or all).
///
/// As `GET /analytics/officers`, per patrol assigned.
#[utoipa::path(
    get,
    path = "/analytics/patrols",
    operation_id = "analytics_patrols",
    tag = "analytics",
    params(RangeParams, FormatParam, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Per patrol", body = WorkloadAnswer),
        ListErrors,
    )
)]
async fn patrols(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    format: Format,
    ListQ(p): ListQ<RangeParams>,
) -> ApiResult<Response> {
    let s = staff_scope(&state, &caller, format, p.station.as_deref(), filters!(p)).await?;
    let rows = q::patrol_workload(&state.pool, &s).await?;
    render(format, "patrols", "WorkloadFigures", &s, rows)
}

/// Report volume per time bucket.
///
/// Roles: DISPATCHER, SUPERVISOR (their station), ADMIN (any station, or all).
///
/// Reports submitted in `[from, to)`, counted per bucket of their submission time by
/// type, priority, station and status. See `VolumeCount`.
#[utoipa::path(
    get,
    path = "/analytics/volume",
    operation_id = "analytics_volume",
    tag = "analytics",
    params(VolumeParams, FormatParam, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Counts per bucket", body = VolumeAnswer),
        ListErrors,
    )
)]
async fn volume(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    format: Format,
    ListQ(p): ListQ<VolumeParams>,
) -> ApiResult<Response> {
    let s = staff_scope(&state, &caller, format, p.station.as_deref(), filters!(p)).await?;
    let bucket = match p.bucket.as_deref() {
        None => Bucket::Day,
        Some(b) => Bucket::parse(b).ok_or_else(|| invalid("bucket", "hour, day, week or month"))?,
    };
    let buckets = (s.to - s.from).num_seconds() / bucket.min_len().num_seconds();
    if buckets > MAX_BUCKETS {
        return Err(invalid(
            "bucket",
            format!("about {buckets} buckets in the range, at most {MAX_BUCKETS}"),
        ));
    }
    let rows = q::volume(&state.pool, &s, bucket).await?;
    render(format, "volume", "VolumeCount", &s, rows)
}

/// Reports per grid cell, as GeoJSON.
///
/// Roles: DISPATCHER, SUPERVISOR (their station), ADMIN (any station, or all).
///
/// Reports submitted in `[from, to)` and located in `bbox`, counted per geohash cell of
/// `precision` characters.
#[utoipa::path(
    get,
    path = "/analytics/heatmap",
    operation_id = "analytics_heatmap",
    tag = "analytics",
    params(HeatmapParams, FormatParam, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A GeoJSON FeatureCollection", body = HeatmapCollection,
            content_type = "application/geo+json"),
        ListErrors,
    )
)]
async fn heatmap(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    format: Format,
    ListQ(p): ListQ<HeatmapParams>,
) -> ApiResult<Response> {
    let s = staff_scope(&state, &caller, format, p.station.as_deref(), filters!(p)).await?;
    let b = bbox(p.bbox.as_deref())?;
    let precision = precision(p.precision.as_deref(), 6, MAX_PRECISION)?;
    fits(&b, precision)?;
    let rows = q::heatmap(&state.pool, &s, b, precision, 1, false).await?;
    if format == Format::Csv {
        return export::rows("heatmap", "HeatCell", &rows);
    }
    Ok(GeoJson(collection(&s, rows, precision, 1)).into_response())
}

/// Reports per coarse grid cell, for the public, as GeoJSON.
///
/// Roles: anyone (no token needed).
///
/// As `GET /analytics/heatmap` over every station, without rejected or withdrawn
/// reports, with cells of at most 5 geohash characters (about 4.9 km × 4.9 km), and
/// without any cell of fewer than k reports (k: `PRECINCT_PUBLIC_HEATMAP_MIN_COUNT`,
/// default 3; `min_count` in the answer). Nothing but the cell and its count.
#[utoipa::path(
    get,
    path = "/analytics/heatmap/public",
    operation_id = "analytics_public_heatmap",
    tag = "analytics",
    params(PublicHeatmapParams, FormatParam, QueryHeaders),
    responses(
        (status = 200, description = "A GeoJSON FeatureCollection", body = HeatmapCollection,
            content_type = "application/geo+json"),
        ListErrors,
    )
)]
async fn public_heatmap(
    State(state): State<AppState>,
    _min: MinPosition,
    ClientAddr(addr): ClientAddr,
    format: Format,
    ListQ(p): ListQ<PublicHeatmapParams>,
) -> ApiResult<Response> {
    let b = bbox(p.bbox.as_deref())?;
    let precision = precision(
        p.precision.as_deref(),
        MAX_PUBLIC_PRECISION,
        MAX_PUBLIC_PRECISION,
    )?;
    fits(&b, precision)?;
    if format == Format::Csv {
        state.exports.take(None, addr)?;
    }
    let mut s = scope(&state, None, filters!(p)).await?;
    // Whole cells and whole days only: no answer may differ from another by a part of
    // a cell or of a day, so differences between answers never narrow a report down
    // below a cell and a day (k-anonymity holds against differencing; ADR 0027).
    let b = b.snapped(precision);
    s.from = whole_day(s.from, false);
    s.to = whole_day(s.to, true);
    let k = i64::from(state.config.public_heatmap_min_count.max(1));
    let mut rows = q::heatmap(&state.pool, &s, b, precision, k, true).await?;
    // A report on the box's outer edge belongs to the cell beyond it: such a cell is
    // only partly counted, and left out.
    rows.retain(|r| b.holds_cell(&r.cell));
    if format == Format::Csv {
        return export::rows("heatmap", "HeatCell", &rows);
    }
    Ok(GeoJson(collection(&s, rows, precision, k)).into_response())
}

/// The start of `t`'s UTC day, or (`up`) the start of the next unless `t` is one.
fn whole_day(t: DateTime<Utc>, up: bool) -> DateTime<Utc> {
    let start = t
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(t, |d| d.and_utc());
    if up && start < t {
        start + Duration::days(1)
    } else {
        start
    }
}

/// A GeoJSON answer (`application/geo+json`, RFC 7946).
pub struct GeoJson(HeatmapCollection);

impl axum::response::IntoResponse for GeoJson {
    fn into_response(self) -> axum::response::Response {
        let mut r = Json(self.0).into_response();
        r.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/geo+json"),
        );
        r
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use precinct_readmodel::queries::analytics::{FunnelRow, VolumeRow, WorkloadRow};

    use super::*;

    fn keys<T: Serialize>(row: &T) -> BTreeSet<String> {
        serde_json::to_value(row)
            .expect("row")
            .as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect()
    }

    fn documented(name: &str) -> BTreeSet<String> {
        let spec = serde_json::to_value(crate::openapi::spec()).expect("spec");
        spec["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .cloned()
            .collect()
    }

    /// Each row the endpoints render is described, field for field, by its schema (where
    /// the metric's definition is written).
    #[test]
    fn every_rendered_row_field_is_documented() {
        let t = Utc::now();
        let funnel = FunnelRow {
            submitted: 0,
            assigned: 0,
            accepted: 0,
            responding: 0,
            resolved: 0,
            closed: 0,
            declined: 0,
            declines: 0,
            rejected: 0,
            withdrawn: 0,
            duplicates: 0,
        };
        assert_eq!(keys(&funnel), documented("FunnelCounts"));
        let metric = SlaMetricRow {
            metric: "time_to_accept".into(),
            count: 0,
            p50_secs: None,
            p90_secs: None,
            p99_secs: None,
            sla_secs: None,
            within_sla: None,
            within_sla_share: None,
            breaches: None,
        };
        assert_eq!(keys(&metric), documented("SlaMetric"));
        let kpi = KpiRow {
            kpi: "assignment_failures".into(),
            numerator: 0,
            denominator: 0,
            value: None,
            target: 0.02,
            direction: "AT_MOST".into(),
            met: None,
        };
        assert_eq!(keys(&kpi), documented("Kpi"));
        let workload = WorkloadRow {
            id: Uuid::nil(),
            assignments: 0,
            open: 0,
            accepted: 0,
            declined: 0,
            decline_rate: None,
            resolved: 0,
            median_resolve_secs: None,
            closures_rejected: 0,
        };
        assert_eq!(keys(&workload), documented("WorkloadFigures"));
        let volume = VolumeRow {
            bucket: t,
            dimension: "status".into(),
            value: "NEW".into(),
            count: 1,
        };
        assert_eq!(keys(&volume), documented("VolumeCount"));
        let answer = answer(
            &Scope {
                from: t,
                to: t,
                station_id: None,
                types: vec![],
                priority: None,
            },
            vec![funnel],
        );
        assert_eq!(keys(&answer), documented("FunnelAnswer"));
        let sla = SlaAnswer {
            from: t,
            to: t,
            station_id: None,
            items: vec![],
            kpis: vec![],
        };
        assert_eq!(keys(&sla), documented("SlaAnalytics"));
    }

    #[test]
    fn bad_ranges_boxes_and_precisions_are_refused() {
        assert!(range(Some("2026-01-02T00:00:00Z"), Some("2026-01-01T00:00:00Z")).is_err());
        assert!(range(Some("2024-01-01T00:00:00Z"), Some("2026-01-01T00:00:00Z")).is_err());
        assert!(range(Some("2025-06-01T00:00:00Z"), Some("2026-01-01T00:00:00Z")).is_ok());
        assert!(bbox(Some("170,0,-170,10")).is_err());
        assert!(bbox(Some("0,0,1,NaN")).is_err());
        assert!(bbox(Some("0,0,1,1")).is_ok());
        let world = bbox(Some("-180,-90,180,90")).expect("world");
        assert!(fits(&world, 2).is_ok(), "32 × 32 cells");
        assert!(fits(&world, 3).is_err(), "256 × 128 cells");
        assert!(precision(Some("0"), 5, 5).is_err());
        assert!(precision(Some("6"), 5, 5).is_err());
        assert_eq!(precision(None, 5, 5).expect("default"), 5);
    }
}
