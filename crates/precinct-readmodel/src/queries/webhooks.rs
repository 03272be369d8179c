//! Webhook subscriptions (`GET /webhooks`, ADR 0028) and their delivery ledger
//! (`GET /webhooks/{id}/deliveries`). No secret is stored here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{Page, PageRequest};
use crate::error::QueryError;

/// One subscription as its managers read it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub station_id: Option<Uuid>,
    /// GeoJSON polygon coordinates.
    pub area: Option<sqlx::types::Json<serde_json::Value>>,
    pub personal_data: bool,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub replay_from: Option<i64>,
    pub replay_position: Option<i64>,
    pub created_by: Uuid,
    pub created_position: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, url, event_types, station_id, area, personal_data, enabled,
    disabled_reason, replay_from, replay_position, created_by, created_position, version,
    created_at, updated_at";

/// Subscriptions not deleted, by id; only `station`'s when given.
pub async fn list_webhooks(
    pool: &PgPool,
    station: Option<Uuid>,
    page: &PageRequest,
) -> Result<Page<WebhookRow>, QueryError> {
    let mut qb =
        QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM webhooks WHERE NOT deleted"));
    if let Some(s) = station {
        qb.push(" AND station_id = ").push_bind(s);
    }
    if let Some((id,)) = page.key::<(Uuid,)>()? {
        qb.push(" AND id > ").push_bind(id);
    }
    qb.push(" ORDER BY id LIMIT ").push_bind(page.fetch());
    let rows: Vec<WebhookRow> = qb.build_query_as().fetch_all(pool).await?;
    Ok(Page::from_rows(rows, page, |r| (r.id,)))
}

/// One subscription, not deleted.
pub async fn get_webhook(pool: &PgPool, id: Uuid) -> Result<Option<WebhookRow>, QueryError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhooks WHERE id = $1 AND NOT deleted"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Every subscription the deliverer serves: enabled and not deleted (at most `max`).
pub async fn active_webhooks(pool: &PgPool, max: i64) -> Result<Vec<WebhookRow>, QueryError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhooks WHERE enabled AND NOT deleted ORDER BY id LIMIT $1"
    ))
    .bind(max)
    .fetch_all(pool)
    .await?)
}

/// One delivery of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct DeliveryRow {
    pub position: i64,
    pub message_id: String,
    pub event_type: String,
    /// `DELIVERED`, `RETRYING` or `DEAD`.
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub last_status: Option<i32>,
    pub latency_ms: Option<i32>,
    pub first_attempt_at: DateTime<Utc>,
    pub last_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A subscription's deliveries by log position (oldest first), from `from` on.
pub async fn list_deliveries(
    pool: &PgPool,
    webhook: Uuid,
    from: Option<i64>,
    page: &PageRequest,
) -> Result<Page<DeliveryRow>, QueryError> {
    let mut qb = QueryBuilder::<Postgres>::new(
        "SELECT position, message_id, event_type, status, attempts, last_error, last_status,
            latency_ms, first_attempt_at, last_attempt_at, delivered_at
         FROM webhook_deliveries WHERE webhook_id = ",
    );
    qb.push_bind(webhook);
    if let Some(from) = from {
        qb.push(" AND position >= ").push_bind(from);
    }
    if let Some((p,)) = page.key::<(i64,)>()? {
        qb.push(" AND position > ").push_bind(p);
    }
    qb.push(" ORDER BY position LIMIT ").push_bind(page.fetch());
    let rows: Vec<DeliveryRow> = qb.build_query_as().fetch_all(pool).await?;
    Ok(Page::from_rows(rows, page, |r| (r.position,)))
}
