//! The webhook delivery ledger (ADR 0028): per subscription the last log position
//! handled, the replay request last applied and the current run of failed attempts
//! (`webhook_cursors`), and one row per delivery (`webhook_deliveries`). Not a read
//! model: written by the active deliverer only, never rebuilt from the log.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::QueryError;

/// Where a subscription's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Cursor {
    /// The last log position handled.
    pub position: i64,
    /// The position of the last replay request applied.
    pub replay_seen: i64,
    pub consecutive_failures: i32,
}

/// The cursor of `webhook`, created at `start` (the creating event's position, with
/// the replay requests up to `replay_seen` applied) when it has none.
pub async fn cursor(
    pool: &PgPool,
    webhook: Uuid,
    start: i64,
    replay_seen: i64,
) -> Result<Cursor, QueryError> {
    sqlx::query(
        "INSERT INTO webhook_cursors (webhook_id, position, replay_seen) VALUES ($1, $2, $3)
         ON CONFLICT (webhook_id) DO NOTHING",
    )
    .bind(webhook)
    .bind(start)
    .bind(replay_seen)
    .execute(pool)
    .await?;
    Ok(sqlx::query_as(
        "SELECT position, replay_seen, consecutive_failures FROM webhook_cursors WHERE webhook_id = $1",
    )
    .bind(webhook)
    .fetch_one(pool)
    .await?)
}

/// Applies replay request at `request` (from `from`): the cursor moves back to
/// `from - 1`, once per request.
pub async fn apply_replay(
    pool: &PgPool,
    webhook: Uuid,
    from: i64,
    request: i64,
) -> Result<(), QueryError> {
    sqlx::query(
        "UPDATE webhook_cursors SET position = $2 - 1, replay_seen = $3,
            consecutive_failures = 0, updated_at = now()
         WHERE webhook_id = $1 AND replay_seen < $3",
    )
    .bind(webhook)
    .bind(from)
    .bind(request)
    .execute(pool)
    .await?;
    Ok(())
}

/// Moves the cursor past `position` (events not for this subscription). The run of
/// failures stays: it belongs to the event still being delivered, and only its
/// delivery ([`record_delivered`]) or a replay clears it.
pub async fn advance(pool: &PgPool, webhook: Uuid, position: i64) -> Result<(), QueryError> {
    sqlx::query(
        "UPDATE webhook_cursors SET position = GREATEST(position, $2), updated_at = now()
         WHERE webhook_id = $1",
    )
    .bind(webhook)
    .bind(position)
    .execute(pool)
    .await?;
    Ok(())
}

/// One attempt at delivering `position` to `webhook`.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub webhook: Uuid,
    pub position: i64,
    pub message_id: &'a str,
    pub event_type: &'a str,
    /// `DELIVERED`, `RETRYING` or `DEAD`.
    pub status: &'a str,
    pub error: Option<&'a str>,
    pub http_status: Option<i32>,
    pub latency_ms: i32,
    pub at: DateTime<Utc>,
}

/// Records a successful attempt (`status` `DELIVERED`) and moves the cursor past its
/// position, clearing the run of failures — one statement, one commit, so a delivery
/// costs the ledger one round trip.
pub async fn record_delivered(pool: &PgPool, a: &Attempt<'_>) -> Result<(), QueryError> {
    sqlx::query(
        "WITH delivery AS (
            INSERT INTO webhook_deliveries (webhook_id, position, message_id, event_type,
                status, attempts, last_error, last_status, latency_ms, first_attempt_at,
                last_attempt_at, delivered_at)
            VALUES ($1, $2, $3, $4, 'DELIVERED', 1, NULL, $5, $6, $7, $7, $7)
            ON CONFLICT (webhook_id, position) DO UPDATE SET status = 'DELIVERED',
                attempts = webhook_deliveries.attempts + 1, last_error = NULL,
                last_status = $5, latency_ms = $6, last_attempt_at = $7, delivered_at = $7
         )
         UPDATE webhook_cursors SET position = GREATEST(position, $2),
            consecutive_failures = 0, updated_at = now()
         WHERE webhook_id = $1",
    )
    .bind(a.webhook)
    .bind(a.position)
    .bind(a.message_id)
    .bind(a.event_type)
    .bind(a.http_status)
    .bind(a.latency_ms)
    .bind(a.at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records an attempt (and, when it failed, one more consecutive failure); the run of
/// failures after it.
pub async fn record(pool: &PgPool, a: &Attempt<'_>) -> Result<i32, QueryError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO webhook_deliveries (webhook_id, position, message_id, event_type, status,
            attempts, last_error, last_status, latency_ms, first_attempt_at, last_attempt_at,
            delivered_at)
         VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $9,
            CASE WHEN $5 = 'DELIVERED' THEN $9 END)
         ON CONFLICT (webhook_id, position) DO UPDATE SET status = $5,
            attempts = webhook_deliveries.attempts + 1, last_error = $6, last_status = $7,
            latency_ms = $8, last_attempt_at = $9,
            delivered_at = CASE WHEN $5 = 'DELIVERED' THEN $9
                ELSE webhook_deliveries.delivered_at END",
    )
    .bind(a.webhook)
    .bind(a.position)
    .bind(a.message_id)
    .bind(a.event_type)
    .bind(a.status)
    .bind(a.error)
    .bind(a.http_status)
    .bind(a.latency_ms)
    .bind(a.at)
    .execute(&mut *tx)
    .await?;
    let failures: i32 = if a.status == "DELIVERED" {
        sqlx::query_scalar(
            "UPDATE webhook_cursors SET consecutive_failures = 0, updated_at = now()
             WHERE webhook_id = $1 RETURNING consecutive_failures",
        )
        .bind(a.webhook)
        .fetch_optional(&mut *tx)
        .await?
        .unwrap_or(0)
    } else {
        sqlx::query_scalar(
            "UPDATE webhook_cursors SET consecutive_failures = consecutive_failures + 1,
                updated_at = now()
             WHERE webhook_id = $1 RETURNING consecutive_failures",
        )
        .bind(a.webhook)
        .fetch_optional(&mut *tx)
        .await?
        .unwrap_or(0)
    };
    tx.commit().await?;
    Ok(failures)
}

/// Marks the delivery of `position` dead (the subscription is being disabled).
pub async fn mark_dead(pool: &PgPool, webhook: Uuid, position: i64) -> Result<(), QueryError> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'DEAD' WHERE webhook_id = $1 AND position = $2",
    )
    .bind(webhook)
    .bind(position)
    .execute(pool)
    .await?;
    Ok(())
}
