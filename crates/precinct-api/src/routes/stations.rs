//! Stations: precincts (by area or point) and specialised divisions (by crime type);
//! creating (`POST /stations`), reading one (`GET /stations/{id}`), editing
//! (`PATCH /stations/{id}`) and previewing a new area (`POST /stations/{id}/area-preview`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use precinct_app::commands::station::{self, NewStation, StationWritten};
use precinct_app::commands::station_edit::{self, Activation, StationEdit};
use precinct_domain::area_preview::{area_preview, ReportToRoute};
use precinct_domain::ids::{ReportId, StationId};
use precinct_domain::routing::RoutingDecision;
use precinct_domain::station::{Edit, StationChanges};
use precinct_domain::values::{GeoPoint, PhoneNumber, Polygon, Role, StationKind};
use precinct_readmodel::queries;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{Cmd, JsonBody, MinPosition, Path, Validator};
use crate::openapi::{CommandErrors, CommandHeaders, CreationErrors, QueryHeaders, ReadErrors};
use crate::ports::Facts;
use crate::problem::{ApiError, ApiResult};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stations", post(create).get(super::queries::list_stations))
        .route("/stations/{id}", get(get_station).patch(edit))
        .route("/stations/{id}/area-preview", post(preview_area))
}

#[derive(OpenApi)]
#[openapi(paths(create, get_station, edit, preview_area))]
pub struct Api;

/// A new station: a `PRECINCT` with a point and/or an area, or a `DIVISION` with the crime
/// types it receives.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StationBody {
    name: String,
    #[schema(value_type = crate::openapi::StationKind)]
    kind: String,
    /// With `longitude`.
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    /// A GeoJSON `Polygon` geometry: the precinct's area.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    area: Option<serde_json::Value>,
    /// A division's routing keywords.
    #[serde(default)]
    crime_types: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StationView {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = crate::openapi::StationKind)]
    pub kind: StationKind,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// GeoJSON `Polygon` geometry.
    #[schema(value_type = Option<Object>)]
    pub area: Option<serde_json::Value>,
    pub crime_types: Vec<String>,
    /// The station's public contact number.
    pub contact_phone: Option<String>,
    /// Takes new reports.
    pub active: bool,
    /// Log position of the command's event.
    pub position: u64,
}

impl StationView {
    fn of(out: StationWritten) -> Self {
        let s = &out.station;
        StationView {
            id: out.id.as_uuid(),
            name: s.name.clone(),
            kind: s.kind,
            latitude: s.point.map(|p| p.latitude()),
            longitude: s.point.map(|p| p.longitude()),
            area: s.area.as_ref().map(|a| a.to_geojson()),
            crime_types: s.crime_types.clone(),
            contact_phone: s.contact_phone.as_ref().map(|p| p.as_str().to_owned()),
            active: s.active,
            position: out.position,
        }
    }
}

/// Create a station.
///
/// Roles: ADMIN.
#[utoipa::path(
    post,
    path = "/stations",
    operation_id = "create_station",
    tag = "stations",
    params(CommandHeaders),
    request_body = StationBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new station", body = StationView),
        CreationErrors,
    )
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    cmd: Cmd<StationBody>,
) -> ApiResult<(StatusCode, Json<StationView>)> {
    let by = caller.principal();
    station::may_create(&by)?;
    let b = cmd.body;
    let mut v = Validator::new();
    let kind = v.check("kind", b.kind.parse::<StationKind>());
    let point = match (b.latitude, b.longitude) {
        (Some(la), Some(lo)) => v.check("latitude", GeoPoint::parse(la, lo)),
        (None, None) => None,
        _ => {
            v.fail("latitude", "latitude and longitude go together");
            None
        }
    };
    let area = match &b.area {
        Some(a) => v.check("area", Polygon::parse_geojson(a)),
        None => None,
    };
    v.finish()?;
    let kind = kind.ok_or_else(|| ApiError::invalid("kind", "invalid"))?;
    let meta = cmd.ctx.meta(by.actor());
    let new = NewStation {
        name: b.name,
        kind,
        point,
        area,
        crime_types: b.crime_types,
    };
    let out = station::create(&state.app, &by, &meta, new).await?;
    Ok((StatusCode::CREATED, Json(StationView::of(out))))
}

/// One station (as `GET /stations` lists them).
///
/// Roles: anyone.
#[utoipa::path(
    get,
    path = "/stations/{id}",
    operation_id = "get_station",
    tag = "stations",
    params(("id" = Uuid, Path, description = "The station"), QueryHeaders),
    responses(
        (status = 200, description = "The station", body = crate::openapi::StationRow),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 404, response = crate::openapi::NotFound),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
async fn get_station(
    State(state): State<AppState>,
    _min: MinPosition,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<queries::StationRow>> {
    let row = queries::get_station(&state.pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(row))
}

/// A field of a partial update: absent (kept), `null` (removed) or a value (set).
#[derive(Debug, Default)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Called only for a field that is present (`#[serde(default)]` gives `Absent`).
        Ok(match Option::<T>::deserialize(d)? {
            Some(v) => Patch::Value(v),
            None => Patch::Null,
        })
    }
}

/// The changes to a station; a field left out is kept, `null` removes an optional one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EditStationBody)]
pub struct EditBody {
    #[serde(default)]
    name: Option<String>,
    /// With `longitude`; both `null` remove the point (a precinct keeps a point or an
    /// area).
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    latitude: Patch<f64>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    longitude: Patch<f64>,
    /// A GeoJSON `Polygon` geometry, or `null` to remove the area. Applies to reports
    /// submitted after this change; reports already routed stay where they are.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    area: Patch<serde_json::Value>,
    /// A division's whole new keyword list.
    #[serde(default)]
    crime_types: Option<Vec<String>>,
    /// The station's public contact number (digits, spaces, `+ - ( ) .`), or `null`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    contact_phone: Patch<String>,
    /// `false` stops routing new reports to the station (refused with 409, naming them,
    /// while it has open reports); `true` starts again.
    #[serde(default)]
    active: Option<bool>,
}

/// Edit a station: name, point, area, division keywords, contact number, active.
///
/// Roles: ADMIN.
///
/// An edit applies to reports submitted after its position; routing decisions already
/// recorded are never rewritten. Deactivating a station that has open reports is 409,
/// naming up to 20 of them. An edit that changes nothing appends nothing.
#[utoipa::path(
    patch,
    path = "/stations/{id}",
    operation_id = "edit_station",
    tag = "stations",
    params(("id" = Uuid, Path, description = "The station"), CommandHeaders),
    request_body = EditBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The station after the edit", body = StationView),
        CommandErrors,
    )
)]
async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<EditBody>,
) -> ApiResult<Json<StationView>> {
    let by = caller.principal();
    station_edit::may_edit(&by)?;
    let b = cmd.body;
    let mut v = Validator::new();
    let point = match (b.latitude, b.longitude) {
        (Patch::Absent, Patch::Absent) => Edit::Keep,
        (Patch::Null, Patch::Null) => Edit::Clear,
        (Patch::Value(la), Patch::Value(lo)) => {
            match v.check("latitude", GeoPoint::parse(la, lo)) {
                Some(p) => Edit::Set(p),
                None => Edit::Keep,
            }
        }
        _ => {
            v.fail("latitude", "latitude and longitude go together");
            Edit::Keep
        }
    };
    let area = match &b.area {
        Patch::Absent => Edit::Keep,
        Patch::Null => Edit::Clear,
        Patch::Value(a) => match v.check("area", Polygon::parse_geojson(a)) {
            Some(p) => Edit::Set(p),
            None => Edit::Keep,
        },
    };
    let contact_phone = match &b.contact_phone {
        Patch::Absent => Edit::Keep,
        Patch::Null => Edit::Clear,
        Patch::Value(p) => match v.check("contact_phone", PhoneNumber::parse(p)) {
            Some(p) => Edit::Set(p),
            None => Edit::Keep,
        },
    };
    v.finish()?;
    let activation = match b.active {
        None => Activation::Keep,
        Some(true) => Activation::Activate,
        Some(false) => Activation::Deactivate,
    };
    let meta = cmd.ctx.meta(by.actor());
    let changes = StationChanges {
        name: b.name,
        point,
        area,
        crime_types: b.crime_types,
        contact_phone,
    };
    let out = station_edit::edit(
        &state.app,
        &by,
        &meta,
        &Facts(&state),
        StationId::new(id),
        StationEdit {
            changes,
            activation,
        },
    )
    .await?;
    Ok(Json(StationView::of(out)))
}

/// How many of the latest reports an area preview reroutes, unless told.
const PREVIEW_DEFAULT: u32 = 200;
/// At most this many.
const PREVIEW_MAX: u32 = 1_000;

/// A proposed area for a station.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AreaPreviewBody {
    /// A GeoJSON `Polygon` geometry.
    #[schema(value_type = Object)]
    area: serde_json::Value,
    /// How many of the latest reports to reroute (1 to 1000, default 200).
    #[serde(default)]
    limit: Option<u32>,
}

/// A report the proposed area would route to another station.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReroutedReport {
    pub report_id: Uuid,
    pub submitted_at: chrono::DateTime<chrono::Utc>,
    /// The station the report is in now.
    pub station_id: Uuid,
    /// Where routing would send it on the stations as they are (null: nowhere).
    pub routed_now: Option<Uuid>,
    /// `DIVISION_KEYWORD`, `PRECINCT_AREA` or `NEAREST_PRECINCT`.
    pub rule_now: Option<String>,
    /// Where routing would send it with the proposed area.
    pub routed_proposed: Option<Uuid>,
    pub rule_proposed: Option<String>,
}

/// What a proposed area would change.
#[derive(Debug, Serialize, ToSchema)]
pub struct AreaPreview {
    pub station_id: Uuid,
    /// How many of the latest reports were rerouted.
    pub considered: usize,
    /// Those routing would send elsewhere with the proposed area, newest first.
    pub rerouted: Vec<ReroutedReport>,
}

/// Preview a station's new area: which of the latest reports it would route elsewhere.
///
/// Roles: ADMIN.
///
/// Each of the latest `limit` reports is routed on the active stations as they are,
/// and again with the station's area replaced by the proposal; the answer lists those
/// whose station differs. Nothing is appended. An inactive station receives nothing,
/// whatever its area.
#[utoipa::path(
    post,
    path = "/stations/{id}/area-preview",
    operation_id = "preview_station_area",
    tag = "stations",
    params(("id" = Uuid, Path, description = "The station"), QueryHeaders),
    request_body = AreaPreviewBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The reports the area would route elsewhere", body = AreaPreview),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 422, response = crate::openapi::ValidationFailed),
        ReadErrors,
    )
)]
async fn preview_area(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    Path(id): Path<Uuid>,
    JsonBody(b): JsonBody<AreaPreviewBody>,
) -> ApiResult<Json<AreaPreview>> {
    caller.require(&[Role::Admin])?;
    let mut v = Validator::new();
    let area = v
        .check("area", Polygon::parse_geojson(&b.area))
        .and_then(|a| v.check("area", a.check_simple().map(|()| a)));
    let limit = b.limit.unwrap_or(PREVIEW_DEFAULT);
    if !(1..=PREVIEW_MAX).contains(&limit) {
        v.fail("limit", format!("must be between 1 and {PREVIEW_MAX}"));
    }
    v.finish()?;
    let area = area.ok_or_else(|| ApiError::invalid("area", "invalid"))?;
    queries::get_station(&state.pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let stations = queries::station_facts(&state.pool).await?;
    let reports = queries::latest_routed_reports(&state.pool, limit).await?;
    let mut to_route = Vec::with_capacity(reports.len());
    for r in &reports {
        let point = GeoPoint::parse(r.latitude, r.longitude)
            .map_err(|e| ApiError::Internal(format!("report {}: {e}", r.id)))?;
        to_route.push(ReportToRoute {
            report_id: ReportId::new(r.id),
            crime_types: r.crime_types.clone(),
            point,
        });
    }
    let rerouted = area_preview(&stations, StationId::new(id), &area, &to_route);
    let station_of = |d: &Option<RoutingDecision>| d.as_ref().map(|d| d.station_id.as_uuid());
    let rule_of = |d: &Option<RoutingDecision>| {
        d.as_ref().and_then(|d| {
            serde_json::to_value(d.rule)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
        })
    };
    let rerouted = rerouted
        .iter()
        .filter_map(|r| {
            let row = reports.iter().find(|row| row.id == r.report_id.as_uuid())?;
            Some(ReroutedReport {
                report_id: row.id,
                submitted_at: row.submitted_at,
                station_id: row.station_id,
                routed_now: station_of(&r.now),
                rule_now: rule_of(&r.now),
                routed_proposed: station_of(&r.proposed),
                rule_proposed: rule_of(&r.proposed),
            })
        })
        .collect();
    Ok(Json(AreaPreview {
        station_id: id,
        considered: reports.len(),
        rerouted,
    }))
}
