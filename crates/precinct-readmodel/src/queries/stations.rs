//! What station management reads of the reports: a station's open reports (a
//! deactivation is refused while there are any) and the latest reports with what
//! routing decided on (the area preview reroutes them).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::reports::OPEN_STATUSES;
use crate::error::QueryError;

/// Up to `limit` open reports of `station` (oldest first), and how many there are.
#[tracing::instrument(skip(pool))]
pub async fn open_reports_of_station(
    pool: &PgPool,
    station: Uuid,
    limit: u32,
) -> Result<(Vec<Uuid>, u64), QueryError> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM reports WHERE station_id = $1 AND status = ANY($2)
         ORDER BY submitted_at, id LIMIT $3",
    )
    .bind(station)
    .bind(OPEN_STATUSES)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM reports WHERE station_id = $1 AND status = ANY($2)",
    )
    .bind(station)
    .bind(OPEN_STATUSES)
    .fetch_one(pool)
    .await?;
    Ok((ids, u64::try_from(total).unwrap_or(0)))
}

/// A report as routing saw it: its crime types and point, and the station it is in.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RoutedReport {
    pub id: Uuid,
    pub crime_types: Vec<String>,
    pub latitude: f64,
    pub longitude: f64,
    pub station_id: Uuid,
    pub submitted_at: DateTime<Utc>,
}

/// The `limit` most recently submitted reports, newest first.
#[tracing::instrument(skip(pool))]
pub async fn latest_routed_reports(
    pool: &PgPool,
    limit: u32,
) -> Result<Vec<RoutedReport>, QueryError> {
    Ok(sqlx::query_as(
        "SELECT id, crime_types, latitude, longitude, station_id, submitted_at FROM reports
         ORDER BY submitted_at DESC, id DESC LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?)
}
