//! The console's browser sessions (ADR 0029; migration `0032_console_sessions.sql`):
//! operational state of the API shared by its replicas — **not a read model**: no
//! projector writes it, nothing in the log derives it, and a rebuild leaves it alone.
//!
//! A session row is what a cookie's short-lived token is checked against on every
//! request: logout (`revoke`) takes effect on every replica at its next request.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::QueryError;

/// Rows past their end that one new session deletes at most (the table stays bounded
/// by the sessions alive plus this backlog).
const PURGE_BATCH: i64 = 100;

/// A session as a request sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRow {
    pub account_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
}

/// Records a new session of `account` ending at `expires_at` (and deletes up to
/// [`PURGE_BATCH`] sessions already ended).
pub async fn create(
    pool: &PgPool,
    id: Uuid,
    account: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), QueryError> {
    sqlx::query("INSERT INTO console_sessions (id, account_id, expires_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(account)
        .bind(expires_at)
        .execute(pool)
        .await?;
    sqlx::query(
        "DELETE FROM console_sessions WHERE id IN \
         (SELECT id FROM console_sessions WHERE expires_at < now() LIMIT $1)",
    )
    .bind(PURGE_BATCH)
    .execute(pool)
    .await?;
    Ok(())
}

/// The session `id`, if it exists (ended or revoked ones included, until purged).
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<SessionRow>, QueryError> {
    let row: Option<(Uuid, DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT account_id, expires_at, revoked_at FROM console_sessions WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(account_id, expires_at, revoked_at)| SessionRow {
        account_id,
        expires_at,
        revoked: revoked_at.is_some(),
    }))
}

/// Revokes the session `id` (idempotent); whether a live session was revoked.
pub async fn revoke(pool: &PgPool, id: Uuid) -> Result<bool, QueryError> {
    let done = sqlx::query(
        "UPDATE console_sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}
