//! Stations: precincts (by area or point) and specialised divisions (by crime type).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use precinct_app::commands::station::{self, NewStation};
use precinct_domain::values::{GeoPoint, Polygon, StationKind};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{Cmd, Validator};
use crate::openapi::{CommandHeaders, CreationErrors};
use crate::problem::{ApiError, ApiResult};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/stations", post(create).get(super::queries::list_stations))
}

#[derive(OpenApi)]
#[openapi(paths(create))]
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
    /// Log position of the command's event.
    pub position: u64,
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
    let s = &out.station;
    Ok((
        StatusCode::CREATED,
        Json(StationView {
            id: out.id.as_uuid(),
            name: s.name.clone(),
            kind: s.kind,
            latitude: s.point.map(|p| p.latitude()),
            longitude: s.point.map(|p| p.longitude()),
            area: s.area.as_ref().map(|a| a.to_geojson()),
            crime_types: s.crime_types.clone(),
            position: out.position,
        }),
    ))
}
