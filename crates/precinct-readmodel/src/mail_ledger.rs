//! The reporter mail ledger (ADR 0033): the last log position the mailer handled
//! (`mail_cursor`) and one row per mail sent or tried (`mail_deliveries`). Not a read
//! model: written by the active mailer only, never rebuilt from the log; it holds no
//! address.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::QueryError;

/// The name of the mailer's one cursor row.
const CURSOR: &str = "reporter-mail";

/// The mailer's cursor, created at `start` when there is none.
pub async fn cursor(pool: &PgPool, start: i64) -> Result<i64, QueryError> {
    sqlx::query(
        "INSERT INTO mail_cursor (name, position) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(CURSOR)
    .bind(start)
    .execute(pool)
    .await?;
    Ok(
        sqlx::query_scalar("SELECT position FROM mail_cursor WHERE name = $1")
            .bind(CURSOR)
            .fetch_one(pool)
            .await?,
    )
}

/// Moves the cursor past `position` (never back).
pub async fn advance(pool: &PgPool, position: i64) -> Result<(), QueryError> {
    sqlx::query(
        "UPDATE mail_cursor SET position = GREATEST(position, $2), updated_at = now()
         WHERE name = $1",
    )
    .bind(CURSOR)
    .bind(position)
    .execute(pool)
    .await?;
    Ok(())
}

/// One attempt at a mail.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub report: Uuid,
    pub position: i64,
    pub kind: &'a str,
    /// `SENT`, `RETRYING` or `FAILED`.
    pub status: &'a str,
    pub error: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// Records an attempt; answers how many attempts the mail has had.
pub async fn record(pool: &PgPool, a: &Attempt<'_>) -> Result<i32, QueryError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO mail_deliveries (report_id, position, kind, status, attempts, last_error,
            first_attempt_at, last_attempt_at, sent_at)
         VALUES ($1, $2, $3, $4, 1, $5, $6, $6, CASE WHEN $4 = 'SENT' THEN $6 END)
         ON CONFLICT (report_id, position) DO UPDATE SET
            status = EXCLUDED.status, attempts = mail_deliveries.attempts + 1,
            last_error = EXCLUDED.last_error, last_attempt_at = EXCLUDED.last_attempt_at,
            sent_at = COALESCE(mail_deliveries.sent_at, EXCLUDED.sent_at)
         RETURNING attempts",
    )
    .bind(a.report)
    .bind(a.position)
    .bind(a.kind)
    .bind(a.status)
    .bind(a.error)
    .bind(a.at)
    .fetch_one(pool)
    .await?)
}

/// Gives a mail up after its last attempt: `FAILED`, the attempts as they are.
pub async fn give_up(pool: &PgPool, report: Uuid, position: i64) -> Result<(), QueryError> {
    sqlx::query(
        "UPDATE mail_deliveries SET status = 'FAILED' WHERE report_id = $1 AND position = $2",
    )
    .bind(report)
    .bind(position)
    .execute(pool)
    .await?;
    Ok(())
}

/// A mail's row, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MailRow {
    pub report_id: Uuid,
    pub position: i64,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// The mails of `report`, by position.
pub async fn of_report(pool: &PgPool, report: Uuid) -> Result<Vec<MailRow>, QueryError> {
    Ok(sqlx::query_as(
        "SELECT report_id, position, kind, status, attempts, last_error FROM mail_deliveries
         WHERE report_id = $1 ORDER BY position",
    )
    .bind(report)
    .fetch_all(pool)
    .await?)
}
