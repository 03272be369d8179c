//! Service levels: reports overdue to accept, respond or resolve (`GET /sla`), and the
//! reports whose warning, breach or escalation the SLA worker should record. Every
//! deadline is the report's station's policy for its priority, else the server's default
//! (ADR 0035), decided in SQL row by row.

use chrono::{DateTime, Utc};
use precinct_domain::sla::SlaDefaults;
use precinct_domain::values::{SlaKind, Timestamp};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::{Page, PageRequest};
use crate::error::QueryError;

/// (statuses waiting on the clock, clock column, breach column, warning column)
fn columns(kind: SlaKind) -> (&'static str, &'static str, &'static str, &'static str) {
    match kind {
        SlaKind::Accept => (
            "r.status = 'ASSIGNED'",
            "assigned_at",
            "sla_accept_breached_at",
            "sla_accept_warned_at",
        ),
        SlaKind::Respond => (
            "r.status = 'ACCEPTED'",
            "accepted_at",
            "sla_respond_breached_at",
            "sla_respond_warned_at",
        ),
        SlaKind::Resolve => (
            "r.status IN ('ACCEPTED', 'RESPONDING')",
            "accepted_at",
            "sla_resolve_breached_at",
            "sla_resolve_warned_at",
        ),
    }
}

/// The SQL of a report's `kind` deadline in seconds: its station's policy for its
/// priority, else the server's default in parameter `$1` (NULL: no deadline). Needs `r`
/// (reports) and `s` (stations, left-joined) in scope.
fn deadline_secs(kind: SlaKind) -> String {
    let key = match kind {
        SlaKind::Accept => "accept_secs",
        SlaKind::Respond => "respond_secs",
        SlaKind::Resolve => "resolve_secs",
    };
    format!("COALESCE((s.sla_policy #>> ARRAY['deadlines', r.priority, '{key}'])::bigint, $1)")
}

/// The server's default deadline of `kind` in seconds (None: no deadline).
fn default_secs(kind: SlaKind, d: &SlaDefaults) -> Option<i64> {
    match kind {
        SlaKind::Accept => Some(i64::from(d.accept_secs)),
        SlaKind::Respond => Some(i64::from(d.respond_secs)),
        SlaKind::Resolve => d.resolve_secs.map(i64::from),
    }
}

/// An item of `GET /sla?overdue=..`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct OverdueReport {
    pub id: Uuid,
    pub status: String,
    pub station_id: Uuid,
    pub patrol_id: Option<Uuid>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    /// The deadline that applies (station policy for the priority, else the default).
    pub deadline_secs: i64,
    /// Seconds past the deadline at `now`.
    pub overdue_by_secs: i64,
    /// When the clock started (sort key).
    #[serde(skip_serializing)]
    pub since: DateTime<Utc>,
}

/// Reports whose clock of `kind` started more than their deadline before `now`, oldest
/// clock first (then id). `station_id`: `None` for every station.
#[tracing::instrument(skip(pool))]
pub async fn sla_overdue(
    pool: &PgPool,
    kind: SlaKind,
    defaults: &SlaDefaults,
    station_id: Option<Uuid>,
    now: DateTime<Utc>,
    page: &PageRequest,
) -> Result<Page<OverdueReport>, QueryError> {
    let (waiting, since, _, _) = columns(kind);
    let after = page.key::<(Timestamp, Uuid)>()?;
    let sql = format!(
        "SELECT * FROM (
           SELECT r.id, r.status, r.station_id, r.patrol_id, r.assigned_at, r.accepted_at,
                  r.{since} AS since, {deadline} AS deadline_secs
           FROM reports r LEFT JOIN stations s ON s.id = r.station_id
           WHERE {waiting} AND r.{since} IS NOT NULL
             AND ($3::uuid IS NULL OR r.station_id = $3)
             AND ($4::timestamptz IS NULL OR (r.{since}, r.id) > ($4, $5))
         ) d,
         LATERAL (SELECT floor(extract(epoch FROM ($2 - d.since)))::bigint - d.deadline_secs
                  AS overdue_by_secs) o
         WHERE d.deadline_secs IS NOT NULL
           AND d.since < $2 - make_interval(secs => d.deadline_secs)
         ORDER BY d.since, d.id LIMIT $6",
        deadline = deadline_secs(kind),
    );
    let (at, id) = after.map(|(t, id)| (t.get(), id)).unzip();
    let rows: Vec<OverdueReport> = sqlx::query_as(&sql)
        .bind(default_secs(kind, defaults))
        .bind(now)
        .bind(station_id)
        .bind(at)
        .bind(id)
        .bind(page.fetch())
        .fetch_all(pool)
        .await?;
    Ok(Page::from_rows(rows, page, |r| (r.since, r.id)))
}

/// How many reports are past their `kind` deadline at `now`, breach recorded or not
/// (`precinct_sla_overdue_reports`).
#[tracing::instrument(skip(pool))]
pub async fn sla_overdue_count(
    pool: &PgPool,
    kind: SlaKind,
    defaults: &SlaDefaults,
    now: DateTime<Utc>,
) -> Result<i64, QueryError> {
    let (waiting, since, _, _) = columns(kind);
    Ok(sqlx::query_scalar(&format!(
        "SELECT count(*) FROM (
           SELECT r.{since} AS since, {deadline} AS deadline_secs
           FROM reports r LEFT JOIN stations s ON s.id = r.station_id
           WHERE {waiting} AND r.{since} IS NOT NULL
         ) d
         WHERE deadline_secs IS NOT NULL
           AND since < $2 - make_interval(secs => deadline_secs)",
        deadline = deadline_secs(kind),
    ))
    .bind(default_secs(kind, defaults))
    .bind(now)
    .fetch_one(pool)
    .await?)
}

/// A report whose warning or breach of `kind` is due, with the deadline that applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct SlaDue {
    pub id: Uuid,
    pub deadline_secs: i64,
    /// The warning level in percent (warnings only; 0 for breaches).
    pub percent: i32,
}

/// Up to `limit` overdue reports whose breach of `kind` is not yet recorded for the
/// current clock (oldest clock first): the SLA worker appends `SlaBreached` for each.
#[tracing::instrument(skip(pool))]
pub async fn sla_breach_candidates(
    pool: &PgPool,
    kind: SlaKind,
    defaults: &SlaDefaults,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<SlaDue>, QueryError> {
    let (waiting, since, breached, _) = columns(kind);
    Ok(sqlx::query_as(&format!(
        "SELECT id, deadline_secs, 0 AS percent FROM (
           SELECT r.id, r.{since} AS since, {deadline} AS deadline_secs
           FROM reports r LEFT JOIN stations s ON s.id = r.station_id
           WHERE {waiting} AND r.{since} IS NOT NULL
             AND (r.{breached} IS NULL OR r.{breached} < r.{since})
         ) d
         WHERE deadline_secs IS NOT NULL
           AND since < $2 - make_interval(secs => deadline_secs)
         ORDER BY since, id LIMIT $3",
        deadline = deadline_secs(kind),
    ))
    .bind(default_secs(kind, defaults))
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?)
}

/// Up to `limit` reports past the warning level of their `kind` deadline whose warning
/// and breach are not yet recorded for the current clock: the SLA worker appends
/// `SlaWarned` for each. A station's `warn_at_percent` (else the default) of 0 warns of
/// nothing.
#[tracing::instrument(skip(pool))]
pub async fn sla_warning_candidates(
    pool: &PgPool,
    kind: SlaKind,
    defaults: &SlaDefaults,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<SlaDue>, QueryError> {
    let (waiting, since, breached, warned) = columns(kind);
    Ok(sqlx::query_as(&format!(
        "SELECT id, deadline_secs, percent FROM (
           SELECT r.id, r.{since} AS since, {deadline} AS deadline_secs,
                  COALESCE((s.sla_policy ->> 'warn_at_percent')::int, $4) AS percent
           FROM reports r LEFT JOIN stations s ON s.id = r.station_id
           WHERE {waiting} AND r.{since} IS NOT NULL
             AND (r.{breached} IS NULL OR r.{breached} < r.{since})
             AND (r.{warned} IS NULL OR r.{warned} < r.{since})
         ) d
         WHERE deadline_secs IS NOT NULL AND percent BETWEEN 1 AND 99
           AND since <= $2 - make_interval(secs => deadline_secs * percent / 100.0)
         ORDER BY since, id LIMIT $3",
        deadline = deadline_secs(kind),
    ))
    .bind(default_secs(kind, defaults))
    .bind(now)
    .bind(i64::from(limit))
    .bind(i32::from(defaults.warn_at_percent))
    .fetch_all(pool)
    .await?)
}

/// An assignment due for escalation under its station's policy.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EscalationDue {
    pub id: Uuid,
    pub station_id: Uuid,
    /// `REQUEUE` or `REASSIGN`.
    pub action: String,
    pub after_secs: i64,
}

/// Up to `limit` reports still `ASSIGNED` whose accept breach (for the current
/// assignment) was recorded more than their station's `unaccepted.after_secs` before
/// `now`, oldest assignment first.
#[tracing::instrument(skip(pool))]
pub async fn sla_escalation_candidates(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<EscalationDue>, QueryError> {
    Ok(sqlx::query_as(
        "SELECT id, station_id, action, after_secs FROM (
           SELECT r.id, r.station_id, r.assigned_at, r.sla_accept_breached_at AS breached,
                  s.sla_policy #>> '{unaccepted,action}' AS action,
                  (s.sla_policy #>> '{unaccepted,after_secs}')::bigint AS after_secs
           FROM reports r JOIN stations s ON s.id = r.station_id
           WHERE r.status = 'ASSIGNED' AND r.sla_accept_breached_at >= r.assigned_at
         ) d
         WHERE action IS NOT NULL AND after_secs IS NOT NULL
           AND breached <= $1 - make_interval(secs => after_secs)
         ORDER BY assigned_at, id LIMIT $2",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?)
}

/// The active SUPERVISOR accounts of `station_id` (at most `limit`, by id): who an SLA
/// policy's supervisor notifications go to.
#[tracing::instrument(skip(pool))]
pub async fn station_supervisors(
    pool: &PgPool,
    station_id: Uuid,
    limit: u32,
) -> Result<Vec<Uuid>, QueryError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM accounts
         WHERE station_id = $1 AND role = 'SUPERVISOR' AND active
         ORDER BY id LIMIT $2",
    )
    .bind(station_id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?)
}
