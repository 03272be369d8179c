//! Patrols: the roster (`GET /patrols/register`, `GET /patrols/{id}`), workloads
//! (`GET /workloads`) and the snapshot automatic assignment ranks.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use precinct_domain::dispatch::PatrolSnapshot;
use precinct_domain::ids::{PatrolId, StationId};
use precinct_domain::values::{GeoPoint, PatrolStatus};
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{Page, PageRequest};
use crate::error::QueryError;

const COLUMNS: &str = "id, call_sign, station_id, officer_ids, status, latitude, longitude,
    location_at, open_assignments, declines, last_assigned_at, registered_at, updated_at,
    last_position";

/// One patrol with its workload.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct PatrolRow {
    pub id: Uuid,
    pub call_sign: String,
    pub station_id: Uuid,
    pub officer_ids: Vec<Uuid>,
    /// `AVAILABLE`, `BUSY` or `OFF_DUTY`.
    pub status: String,
    /// Last known position (not filled by event projection yet).
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub location_at: Option<DateTime<Utc>>,
    pub open_assignments: i32,
    pub declines: i32,
    pub last_assigned_at: Option<DateTime<Utc>>,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_position: i64,
}

/// An item of `GET /workloads`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Workload {
    pub patrol_id: Uuid,
    pub call_sign: String,
    pub status: String,
    pub open_assignments: i32,
    pub declines: i32,
    pub last_assigned_at: Option<DateTime<Utc>>,
}

/// What automatic assignment needs of one patrol, as stored (see
/// [`workload_snapshot`] for the domain's `PatrolSnapshot`).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct WorkloadSnapshot {
    pub patrol_id: Uuid,
    pub station_id: Uuid,
    pub status: String,
    pub open_assignments: i32,
    pub declines: i32,
    pub last_assigned_at: Option<DateTime<Utc>>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

type Key = (String, Uuid);

fn page_query<'a>(
    select: &str,
    station_id: Option<Uuid>,
    page: &PageRequest,
) -> Result<QueryBuilder<'a, Postgres>, QueryError> {
    let mut qb = QueryBuilder::<Postgres>::new(format!("{select} FROM patrols WHERE true"));
    if let Some(station) = station_id {
        qb.push(" AND station_id = ").push_bind(station);
    }
    if let Some((call_sign, id)) = page.key::<Key>()? {
        qb.push(" AND (call_sign, id) > (")
            .push_bind(call_sign)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    qb.push(" ORDER BY call_sign, id LIMIT ")
        .push_bind(page.fetch());
    Ok(qb)
}

/// Patrols of a station (`None`: all), by call sign then id.
#[tracing::instrument(skip(pool))]
pub async fn list_patrols(
    pool: &PgPool,
    station_id: Option<Uuid>,
    page: &PageRequest,
) -> Result<Page<PatrolRow>, QueryError> {
    let mut qb = page_query(&format!("SELECT {COLUMNS}"), station_id, page)?;
    let rows: Vec<PatrolRow> = qb.build_query_as().fetch_all(pool).await?;
    Ok(Page::from_rows(rows, page, |r| (r.call_sign.clone(), r.id)))
}

/// The patrols whose crew lists `officer`, at most `limit` (ids, by id).
#[tracing::instrument(skip(pool))]
pub async fn patrols_listing(
    pool: &PgPool,
    officer: Uuid,
    limit: u32,
) -> Result<Vec<Uuid>, QueryError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM patrols WHERE officer_ids @> ARRAY[$1]::uuid[] ORDER BY id LIMIT $2",
    )
    .bind(officer)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?)
}

#[tracing::instrument(skip(pool))]
pub async fn get_patrol(pool: &PgPool, id: Uuid) -> Result<Option<PatrolRow>, QueryError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM patrols WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Workloads of a station's patrols (`None`: all), by call sign then id.
#[tracing::instrument(skip(pool))]
pub async fn workloads(
    pool: &PgPool,
    station_id: Option<Uuid>,
    page: &PageRequest,
) -> Result<Page<Workload>, QueryError> {
    let select = "SELECT id AS patrol_id, call_sign, status, open_assignments, declines, \
                  last_assigned_at";
    let mut qb = page_query(select, station_id, page)?;
    let rows: Vec<Workload> = qb.build_query_as().fetch_all(pool).await?;
    Ok(Page::from_rows(rows, page, |r| {
        (r.call_sign.clone(), r.patrol_id)
    }))
}

/// Every patrol of a station as stored, by patrol id.
#[tracing::instrument(skip(pool))]
pub async fn workload_rows(
    pool: &PgPool,
    station_id: Uuid,
) -> Result<Vec<WorkloadSnapshot>, QueryError> {
    Ok(sqlx::query_as(
        "SELECT id AS patrol_id, station_id, status, open_assignments, declines,
                last_assigned_at, latitude, longitude
         FROM patrols WHERE station_id = $1 ORDER BY id",
    )
    .bind(station_id)
    .fetch_all(pool)
    .await?)
}

/// Every patrol of a station, as automatic assignment
/// (`precinct_domain::dispatch::choose_patrol`) takes them.
pub async fn workload_snapshot(
    pool: &PgPool,
    station_id: Uuid,
) -> Result<Vec<PatrolSnapshot>, QueryError> {
    workload_rows(pool, station_id)
        .await?
        .into_iter()
        .map(WorkloadSnapshot::to_domain)
        .collect()
}

impl WorkloadSnapshot {
    pub fn to_domain(self) -> Result<PatrolSnapshot, QueryError> {
        let status = PatrolStatus::from_str(&self.status).map_err(|e| QueryError::Unreadable {
            what: "patrol status",
            reason: e.to_string(),
        })?;
        let location = match (self.latitude, self.longitude) {
            (Some(lat), Some(lon)) => GeoPoint::parse(lat, lon).ok(),
            _ => None,
        };
        Ok(PatrolSnapshot {
            patrol_id: PatrolId::new(self.patrol_id),
            station_id: StationId::new(self.station_id),
            status,
            open_assignments: u32::try_from(self.open_assignments).unwrap_or(0),
            declines: u32::try_from(self.declines).unwrap_or(0),
            last_assigned_at: self.last_assigned_at,
            location,
        })
    }
}
