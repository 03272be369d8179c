//! The mail ledger (ADR 0033, ADR 0035): the last log position the mailer handled
//! (`mail_cursor`) and one row per mail sent or tried: a report's reporter's in
//! `mail_deliveries` (recipient `""`), a supervisor's SLA alert in
//! `mail_alert_deliveries` (recipient: the account id). Not
//! a read model: written by the active mailer only, never rebuilt from the log; it holds
//! no address.

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
    /// `""` for the reporter; a supervisor's account id for an SLA alert.
    pub recipient: &'a str,
    pub kind: &'a str,
    /// `SENT`, `RETRYING` or `FAILED`.
    pub status: &'a str,
    pub error: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// The recipient of a supervisor's alert (`None`: the reporter, `""`).
fn account(recipient: &str) -> Option<Uuid> {
    recipient.parse().ok()
}

/// Records an attempt; answers how many attempts the mail has had. The reporter's mails
/// are rows of `mail_deliveries`, the supervisors' alerts of `mail_alert_deliveries`.
pub async fn record(pool: &PgPool, a: &Attempt<'_>) -> Result<i32, QueryError> {
    let query = match account(a.recipient) {
        None => sqlx::query_scalar(
            "INSERT INTO mail_deliveries (report_id, position, kind, status, attempts,
                last_error, first_attempt_at, last_attempt_at, sent_at)
             VALUES ($1, $2, $3, $4, 1, $5, $6, $6, CASE WHEN $4 = 'SENT' THEN $6 END)
             ON CONFLICT (report_id, position) DO UPDATE SET
                status = EXCLUDED.status, attempts = mail_deliveries.attempts + 1,
                last_error = EXCLUDED.last_error, last_attempt_at = EXCLUDED.last_attempt_at,
                sent_at = COALESCE(mail_deliveries.sent_at, EXCLUDED.sent_at)
             RETURNING attempts",
        ),
        Some(_) => sqlx::query_scalar(
            "INSERT INTO mail_alert_deliveries (report_id, position, kind, status, attempts,
                last_error, first_attempt_at, last_attempt_at, sent_at, recipient)
             VALUES ($1, $2, $3, $4, 1, $5, $6, $6, CASE WHEN $4 = 'SENT' THEN $6 END, $7)
             ON CONFLICT (report_id, position, recipient) DO UPDATE SET
                status = EXCLUDED.status, attempts = mail_alert_deliveries.attempts + 1,
                last_error = EXCLUDED.last_error, last_attempt_at = EXCLUDED.last_attempt_at,
                sent_at = COALESCE(mail_alert_deliveries.sent_at, EXCLUDED.sent_at)
             RETURNING attempts",
        ),
    };
    let query = query
        .bind(a.report)
        .bind(a.position)
        .bind(a.kind)
        .bind(a.status)
        .bind(a.error)
        .bind(a.at);
    // The alert's recipient is `$7` (bound last: binds are positional).
    let query = match account(a.recipient) {
        None => query,
        Some(recipient) => query.bind(recipient),
    };
    Ok(query.fetch_one(pool).await?)
}

/// Gives a mail up after its last attempt: `FAILED`, the attempts as they are.
pub async fn give_up(
    pool: &PgPool,
    report: Uuid,
    position: i64,
    recipient: &str,
) -> Result<(), QueryError> {
    let query = match account(recipient) {
        None => sqlx::query(
            "UPDATE mail_deliveries SET status = 'FAILED' WHERE report_id = $1 AND position = $2
                AND $3::uuid IS NULL",
        ),
        Some(_) => sqlx::query(
            "UPDATE mail_alert_deliveries SET status = 'FAILED'
             WHERE report_id = $1 AND position = $2 AND recipient = $3",
        ),
    };
    query
        .bind(report)
        .bind(position)
        .bind(account(recipient))
        .execute(pool)
        .await?;
    Ok(())
}

/// Gives up the alerts of `position` about `report` still `RETRYING` for accounts not
/// in `recipients` (no longer eligible when a restarted mailer looked again: since
/// deactivated, moved, erased, or the policy turned notifications off).
pub async fn give_up_others(
    pool: &PgPool,
    report: Uuid,
    position: i64,
    recipients: &[Uuid],
) -> Result<(), QueryError> {
    sqlx::query(
        "UPDATE mail_alert_deliveries SET status = 'FAILED',
            last_error = 'the recipient is no longer notified'
         WHERE report_id = $1 AND position = $2 AND status = 'RETRYING'
           AND NOT (recipient = ANY($3))",
    )
    .bind(report)
    .bind(position)
    .bind(recipients)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether the mail of `position` about `report` to `recipient` is done (sent or
/// failed for good): a restart in the middle of an event's recipients resends only
/// the others.
pub async fn done(
    pool: &PgPool,
    report: Uuid,
    position: i64,
    recipient: &str,
) -> Result<bool, QueryError> {
    let query = match account(recipient) {
        None => sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM mail_deliveries WHERE report_id = $1
                AND position = $2 AND $3::uuid IS NULL AND status IN ('SENT', 'FAILED'))",
        ),
        Some(_) => sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM mail_alert_deliveries WHERE report_id = $1
                AND position = $2 AND recipient = $3 AND status IN ('SENT', 'FAILED'))",
        ),
    };
    Ok(query
        .bind(report)
        .bind(position)
        .bind(account(recipient))
        .fetch_one(pool)
        .await?)
}

/// A mail's row, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MailRow {
    pub report_id: Uuid,
    pub position: i64,
    /// `""` for the reporter; a supervisor's account id.
    pub recipient: String,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// The mails of `report`, by position and recipient.
pub async fn of_report(pool: &PgPool, report: Uuid) -> Result<Vec<MailRow>, QueryError> {
    Ok(sqlx::query_as(
        "SELECT report_id, position, '' AS recipient, kind, status, attempts, last_error
           FROM mail_deliveries WHERE report_id = $1
         UNION ALL
         SELECT report_id, position, recipient::text, kind, status, attempts, last_error
           FROM mail_alert_deliveries WHERE report_id = $1
         ORDER BY position, recipient",
    )
    .bind(report)
    .fetch_all(pool)
    .await?)
}
