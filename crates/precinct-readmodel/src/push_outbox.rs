//! The push deliverer's cursor and outbox (migration `0033_push_outbox.sql`, ADR 0032):
//! the last log position turned into notifications (`push_cursor`), and one row per
//! (device, triggering position) with what to send and how it went (`push_outbox`). Not
//! a read model: written by the active push deliverer only, never rebuilt. It holds no
//! personal data (devices by id; their endpoints stay sealed in the log).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::QueryError;

/// One notification to send to one device.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    pub device_id: Uuid,
    pub position: i64,
    pub account_id: Uuid,
    pub report_id: Uuid,
    pub kind: String,
    pub priority: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub last_status: Option<i32>,
    pub occurred_at: DateTime<Utc>,
}

/// A notification to queue (status `PENDING`).
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub device_id: Uuid,
    pub account_id: Uuid,
    pub report_id: Uuid,
    pub kind: &'static str,
    pub priority: String,
}

/// The last log position handled (0: none yet).
pub async fn cursor(pool: &PgPool) -> Result<i64, QueryError> {
    Ok(
        sqlx::query_scalar("SELECT position FROM push_cursor WHERE id = 1")
            .fetch_optional(pool)
            .await?
            .unwrap_or(0),
    )
}

/// Queues `rows` for the event at `position` (occurred at `occurred_at`) and moves the
/// cursor past it, in one transaction: a restart neither loses nor doubles a row.
pub async fn enqueue(
    pool: &PgPool,
    position: i64,
    occurred_at: DateTime<Utc>,
    rows: &[NewNotification],
) -> Result<(), QueryError> {
    let mut tx = pool.begin().await?;
    for r in rows {
        sqlx::query(
            "INSERT INTO push_outbox (device_id, position, account_id, report_id, kind, priority,
                occurred_at, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now())
             ON CONFLICT (device_id, position) DO NOTHING",
        )
        .bind(r.device_id)
        .bind(position)
        .bind(r.account_id)
        .bind(r.report_id)
        .bind(r.kind)
        .bind(&r.priority)
        .bind(occurred_at)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO push_cursor (id, position) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET position = GREATEST(push_cursor.position, $1),
            updated_at = now()",
    )
    .bind(position)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Devices with a pending notification due now, at most `limit`.
pub async fn due_devices(pool: &PgPool, limit: i64) -> Result<Vec<Uuid>, QueryError> {
    Ok(sqlx::query_scalar(
        "SELECT device_id FROM push_outbox
         WHERE status = 'PENDING' AND next_attempt_at <= now()
         GROUP BY device_id ORDER BY min(next_attempt_at) LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The oldest pending notification of `device` if it is due now (a device's
/// notifications go out in log order).
pub async fn next_due(pool: &PgPool, device: Uuid) -> Result<Option<OutboxRow>, QueryError> {
    Ok(sqlx::query_as(
        "SELECT device_id, position, account_id, report_id, kind, priority, status, attempts,
            last_error, last_status, occurred_at
         FROM push_outbox
         WHERE device_id = $1 AND status = 'PENDING' AND next_attempt_at <= now()
         ORDER BY position LIMIT 1",
    )
    .bind(device)
    .fetch_optional(pool)
    .await?)
}

/// Ends notification (`device`, `position`) with `status` (`DELIVERED`, `GONE`,
/// `DROPPED`, `EXPIRED`, `DEAD`), counting the attempt when `attempted`.
pub async fn finish(
    pool: &PgPool,
    device: Uuid,
    position: i64,
    status: &str,
    attempted: bool,
    error: Option<&str>,
    http_status: Option<i32>,
) -> Result<(), QueryError> {
    sqlx::query(
        "UPDATE push_outbox SET status = $3, attempts = attempts + $4::int, last_error = $5,
            last_status = $6, done_at = now()
         WHERE device_id = $1 AND position = $2",
    )
    .bind(device)
    .bind(position)
    .bind(status)
    .bind(i32::from(attempted))
    .bind(error)
    .bind(http_status)
    .execute(pool)
    .await?;
    Ok(())
}

/// A failed attempt: tried again after `retry_at`; the attempts so far.
pub async fn retry_later(
    pool: &PgPool,
    device: Uuid,
    position: i64,
    retry_at: DateTime<Utc>,
    error: &str,
    http_status: Option<i32>,
) -> Result<i32, QueryError> {
    Ok(sqlx::query_scalar(
        "UPDATE push_outbox SET attempts = attempts + 1, last_error = $4, last_status = $5,
            next_attempt_at = $3
         WHERE device_id = $1 AND position = $2 RETURNING attempts",
    )
    .bind(device)
    .bind(position)
    .bind(retry_at)
    .bind(error)
    .bind(http_status)
    .fetch_one(pool)
    .await?)
}

/// Drops every pending notification of `device` (it was removed, or its push service
/// said it is gone).
pub async fn drop_device(pool: &PgPool, device: Uuid) -> Result<u64, QueryError> {
    Ok(sqlx::query(
        "UPDATE push_outbox SET status = 'DROPPED', done_at = now()
         WHERE device_id = $1 AND status = 'PENDING'",
    )
    .bind(device)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Every notification of `device`, by position (for tests and operators).
pub async fn of_device(pool: &PgPool, device: Uuid) -> Result<Vec<OutboxRow>, QueryError> {
    Ok(sqlx::query_as(
        "SELECT device_id, position, account_id, report_id, kind, priority, status, attempts,
            last_error, last_status, occurred_at
         FROM push_outbox WHERE device_id = $1 ORDER BY position",
    )
    .bind(device)
    .fetch_all(pool)
    .await?)
}
