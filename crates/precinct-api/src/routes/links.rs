//! Links between reports (issue 16 item 4, ADR 0020): `POST /crimes/{id}/link`,
//! `POST /crimes/{id}/unlink`, and the staff's list of a report's possible duplicates,
//! `GET /crimes/{id}/possible-duplicates`. The commands' rules are in
//! [`precinct_app::commands::report::link`]; the search is
//! [`precinct_readmodel::queries::possible_duplicates`].

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use precinct_app::commands::report::link::{self, LinkKind};
use precinct_domain::ids::{ReportId, StationId};
use precinct_readmodel::queries::duplicates::{
    incident_time, MAX_CANDIDATES, MAX_RADIUS_M, MAX_WINDOW_MINUTES,
};
use precinct_readmodel::queries::{self, DuplicateSearch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::crimes::written;
use super::queries::Q;
use crate::auth::Caller;
use crate::extract::{Cmd, MinPosition, Path};
use crate::openapi::{CommandErrors, QueryHeaders, ReadErrors, ValidationFailed, WrittenReport};
use crate::problem::{ApiError, ApiResult};
use crate::views::{ReportAnswer, Written};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/crimes/{id}/link", post(link_reports))
        .route("/crimes/{id}/unlink", post(unlink_reports))
        .route("/crimes/{id}/possible-duplicates", get(possible_duplicates))
}

#[derive(OpenApi)]
#[openapi(paths(link_reports, unlink_reports, possible_duplicates))]
pub struct Api;

/// How near a possible duplicate is when the request names no radius or window
/// (`PRECINCT_DUPLICATE_RADIUS_M`, `PRECINCT_DUPLICATE_WINDOW_MINUTES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateDefaults {
    /// Metres, 1..=1000.
    pub radius_m: u32,
    /// Minutes either side, 1..=1440.
    pub window_minutes: u32,
}

impl Default for DuplicateDefaults {
    fn default() -> Self {
        Self {
            radius_m: 250,
            window_minutes: 120,
        }
    }
}

impl DuplicateDefaults {
    /// Refuses a radius or window beyond what a request may ask for.
    pub fn new(radius_m: u32, window_minutes: u32) -> Result<Self, String> {
        if !(1..=MAX_RADIUS_M as u32).contains(&radius_m) {
            return Err(format!("the radius must be 1 to {MAX_RADIUS_M} metres"));
        }
        if !(1..=MAX_WINDOW_MINUTES).contains(&window_minutes) {
            return Err(format!(
                "the window must be 1 to {MAX_WINDOW_MINUTES} minutes"
            ));
        }
        Ok(Self {
            radius_m,
            window_minutes,
        })
    }
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LinkKindBody {
    /// The report in the path is a duplicate of `other_id`, its primary: it is closed
    /// into it.
    Duplicate,
    /// The two reports are about related incidents (a symmetric link).
    Related,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// The other report: with `DUPLICATE`, the primary.
    other_id: Uuid,
    kind: LinkKindBody,
}

/// Link two reports. `DUPLICATE`: the report in the path is closed into `other_id`, its
/// primary (`CLOSED`, `duplicate_of`); an open assignment is withdrawn in the same
/// append (its patrol's assignment closes `WITHDRAWN`), so a patrol's workload counts
/// the incident once; its reporter follows the primary's status from then on.
/// `RELATED`: a symmetric link, no status changes. Both reports change in one append.
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped: both reports). 422 on
/// `other_id` for the report itself and for a report that does not exist or is of
/// another station (the two are not told apart); 409 when the two are already linked,
/// the duplicate is not open (`NEW` to `RESPONDING`) or has duplicates of its own, or
/// the primary is itself a duplicate (links are one level deep: no cycle can form).
#[utoipa::path(
    post,
    path = "/crimes/{id}/link",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report (with DUPLICATE: the duplicate)"), crate::openapi::CommandHeaders),
    request_body = LinkBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report in the path after the change", body = WrittenReport),
        CommandErrors,
    )
)]
async fn link_reports(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<LinkBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let kind = match cmd.body.kind {
        LinkKindBody::Duplicate => LinkKind::Duplicate,
        LinkKindBody::Related => LinkKind::Related,
    };
    let changed = link::link(
        &state.app,
        &by,
        &meta,
        ReportId::new(id),
        ReportId::new(cmd.body.other_id),
        kind,
    )
    .await?;
    Ok(written(&caller, changed))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlinkBody {
    /// The report linked to the one in the path (either way).
    other_id: Uuid,
}

/// Remove the link between two reports, on both. A duplicate unlinked from its primary
/// goes back to the queue (`NEW`, without a patrol; the SLA clocks start again with its
/// next assignment).
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped: both reports). 409 when the
/// two are not linked; 422 on `other_id` for a report that does not exist or is of
/// another station.
#[utoipa::path(
    post,
    path = "/crimes/{id}/unlink",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), crate::openapi::CommandHeaders),
    request_body = UnlinkBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report in the path after the change", body = WrittenReport),
        CommandErrors,
    )
)]
async fn unlink_reports(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<UnlinkBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let changed = link::unlink(
        &state.app,
        &by,
        &meta,
        ReportId::new(id),
        ReportId::new(cmd.body.other_id),
    )
    .await?;
    Ok(written(&caller, changed))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DuplicateParams {
    /// Metres, 1 to 1000 (default: the server's, 250 unless configured).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    radius_m: Option<u32>,
    /// Minutes either side of the report's time, 1 to 1440 (default: the server's, 120
    /// unless configured).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1440)]
    window_minutes: Option<u32>,
    /// 1 to 50 candidates; default 20.
    #[serde(default)]
    #[param(minimum = 1, maximum = 50)]
    limit: Option<u32>,
}

/// A report that may be a duplicate of the one asked about.
#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicateCandidate {
    pub id: Uuid,
    #[schema(value_type = crate::openapi::ReportStatus)]
    pub status: String,
    pub station_id: Uuid,
    pub title: String,
    pub crime_types: Vec<String>,
    pub latitude: f64,
    pub longitude: f64,
    pub occurred_at: Option<DateTime<Utc>>,
    pub submitted_at: DateTime<Utc>,
    /// Metres from the report (great-circle).
    pub distance_m: f64,
    /// Minutes between the two incidents' times (`occurred_at`, else the submission).
    pub minutes_apart: i64,
    /// The candidate has duplicates of its own (it is a primary).
    pub duplicates: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PossibleDuplicates {
    pub crime_id: Uuid,
    /// The radius searched, in metres.
    pub radius_m: u32,
    /// The window searched, in minutes either side.
    pub window_minutes: u32,
    /// Nearest first, then closest in time.
    pub candidates: Vec<DuplicateCandidate>,
}

/// Reports that may be duplicates of this one: of its station (ADMIN: of any station),
/// sharing a crime type with it (ignoring case), within `radius_m` of its location and
/// `window_minutes` of its time; not withdrawn, not closed as a duplicate themselves and
/// not linked to it already. Nearest first. An indexed search (the `near=` grid cells).
///
/// Roles: PATROL, DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    get,
    path = "/crimes/{id}/possible-duplicates",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), DuplicateParams, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The candidates", body = PossibleDuplicates),
        ReadErrors,
        (status = 422, response = ValidationFailed),
    )
)]
async fn possible_duplicates(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    Path(id): Path<Uuid>,
    Q(p): Q<DuplicateParams>,
) -> ApiResult<Json<PossibleDuplicates>> {
    if !caller.role.is_staff() {
        return Err(ApiError::forbidden());
    }
    let defaults = state.config.duplicates;
    let radius_m = p.radius_m.unwrap_or(defaults.radius_m);
    if !(1..=MAX_RADIUS_M as u32).contains(&radius_m) {
        return Err(ApiError::invalid(
            "radius_m",
            format!("between 1 and {MAX_RADIUS_M}"),
        ));
    }
    let window_minutes = p.window_minutes.unwrap_or(defaults.window_minutes);
    if !(1..=MAX_WINDOW_MINUTES).contains(&window_minutes) {
        return Err(ApiError::invalid(
            "window_minutes",
            format!("between 1 and {MAX_WINDOW_MINUTES}"),
        ));
    }
    let limit = p.limit.unwrap_or(20);
    if !(1..=MAX_CANDIDATES).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("between 1 and {MAX_CANDIDATES}"),
        ));
    }
    let row = queries::get_report(&state.pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !caller.is_staff_of(StationId::new(row.station_id)) {
        return Err(ApiError::NotFound);
    }
    let mut linked = row.duplicates.clone();
    linked.extend(row.related.iter().copied());
    linked.extend(row.duplicate_of);
    let search = DuplicateSearch {
        report_id: row.id,
        station_id: (!caller.is_admin()).then_some(row.station_id),
        crime_types: row.crime_types.clone(),
        latitude: row.latitude,
        longitude: row.longitude,
        at: incident_time(&row),
        window: chrono::Duration::minutes(i64::from(window_minutes)),
        radius_m: f64::from(radius_m),
        linked,
        limit,
    };
    let found = queries::possible_duplicates(&state.pool, &search).await?;
    Ok(Json(PossibleDuplicates {
        crime_id: id,
        radius_m,
        window_minutes,
        candidates: found
            .into_iter()
            .map(|c| DuplicateCandidate {
                id: c.report.id,
                status: c.report.status,
                station_id: c.report.station_id,
                title: c.report.title,
                crime_types: c.report.crime_types,
                latitude: c.report.latitude,
                longitude: c.report.longitude,
                occurred_at: c.report.occurred_at,
                submitted_at: c.report.submitted_at,
                distance_m: (c.distance_m * 10.0).round() / 10.0,
                minutes_apart: c.minutes_apart,
                duplicates: c.report.duplicates.len(),
            })
            .collect(),
    }))
}
