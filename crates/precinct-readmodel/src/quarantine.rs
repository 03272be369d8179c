//! Reading the `quarantine` table (ADR 0009): the events each projection could not
//! apply and the later events of their aggregates it holds back. Written, and repaired,
//! by `precinct-projections::quarantine`; read here for the API (is this report held
//! back?), readiness and the operator's `projections status`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::checkpoint::{to_i64, to_u64};
use crate::error::QueryError;

/// One quarantine entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Quarantined {
    pub projection: String,
    pub position: i64,
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<Uuid>,
    pub event_type: String,
    /// `poison`, `held` or `skipped`.
    pub reason: String,
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub quarantined_at: DateTime<Utc>,
    /// `None` while it holds its aggregate back; `retried` or `skipped` after a repair.
    pub resolution: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "projection, position, aggregate_type, aggregate_id, event_type, reason,
    error_class, error, quarantined_at, resolution, resolved_by, resolved_at";

/// Every entry still holding something back (of one projection, or all), in order.
pub async fn held(
    pool: &PgPool,
    projection: Option<&str>,
) -> Result<Vec<Quarantined>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM quarantine
         WHERE resolution IS NULL AND ($1::text IS NULL OR projection = $1)
         ORDER BY projection, position"
    ))
    .bind(projection)
    .fetch_all(pool)
    .await
}

/// Every entry, resolved or not (of one projection, or all), in order.
pub async fn entries(
    pool: &PgPool,
    projection: Option<&str>,
) -> Result<Vec<Quarantined>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM quarantine
         WHERE $1::text IS NULL OR projection = $1
         ORDER BY projection, position"
    ))
    .bind(projection)
    .fetch_all(pool)
    .await
}

/// The entry at `position` of `projection`, in the caller's transaction (a repair's).
pub async fn entry_at(
    conn: &mut PgConnection,
    projection: &str,
    position: u64,
) -> Result<Option<Quarantined>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM quarantine WHERE projection = $1 AND position = $2"
    ))
    .bind(projection)
    .bind(to_i64(position))
    .fetch_optional(&mut *conn)
    .await
}

/// The entries of one aggregate that `projection` still holds back, in log order, in
/// the caller's transaction (a repair's).
pub async fn held_of(
    conn: &mut PgConnection,
    projection: &str,
    aggregate_type: &str,
    aggregate_id: Uuid,
) -> Result<Vec<Quarantined>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM quarantine
         WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3
           AND resolution IS NULL
         ORDER BY position"
    ))
    .bind(projection)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_all(&mut *conn)
    .await
}

/// How many entries each projection holds back right now (projections with none are
/// absent).
pub async fn held_counts(pool: &PgPool) -> Result<HashMap<String, u64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT projection, count(*) FROM quarantine WHERE resolution IS NULL
         GROUP BY projection",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(p, n)| (p, to_u64(n))).collect())
}

/// Whether `projection` holds back aggregate `aggregate_type`/`id` (its rows there are
/// missing or stale until it is repaired).
pub async fn is_held(
    pool: &PgPool,
    projection: &str,
    aggregate_type: &str,
    id: Uuid,
) -> Result<bool, QueryError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM quarantine
            WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3
              AND resolution IS NULL)",
    )
    .bind(projection)
    .bind(aggregate_type)
    .bind(id)
    .fetch_one(pool)
    .await?)
}
