//! Service levels: reports overdue to accept or to respond (`GET /sla`), and the
//! reports whose breach the SLA worker should record.

use chrono::{DateTime, Utc};
use precinct_domain::values::{SlaKind, Timestamp};
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{Page, PageRequest};
use crate::error::QueryError;

/// (status waiting on the clock, clock column, breach column)
fn columns(kind: SlaKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        SlaKind::Accept => ("ASSIGNED", "assigned_at", "sla_accept_breached_at"),
        SlaKind::Respond => ("ACCEPTED", "accepted_at", "sla_respond_breached_at"),
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
    /// Seconds past the deadline at `now`.
    pub overdue_by_secs: i64,
    /// When the clock started (sort key).
    #[serde(skip_serializing)]
    pub since: DateTime<Utc>,
}

fn deadline_cutoff(now: DateTime<Utc>, sla_secs: i64) -> DateTime<Utc> {
    now - chrono::Duration::seconds(sla_secs.clamp(0, 100 * 365 * 24 * 3600))
}

/// Reports whose clock of `kind` started more than `sla_secs` before `now`, most overdue
/// first (then id). `station_id`: `None` for every station.
#[tracing::instrument(skip(pool))]
pub async fn sla_overdue(
    pool: &PgPool,
    kind: SlaKind,
    sla_secs: i64,
    station_id: Option<Uuid>,
    now: DateTime<Utc>,
    page: &PageRequest,
) -> Result<Page<OverdueReport>, QueryError> {
    let (status, since, _) = columns(kind);
    let cutoff = deadline_cutoff(now, sla_secs);
    let mut qb = QueryBuilder::<Postgres>::new(format!(
        "SELECT id, status, station_id, patrol_id, assigned_at, accepted_at, \
         {since} AS since, \
         floor(extract(epoch FROM ("
    ));
    qb.push_bind(cutoff)
        .push(format!(
            " - {since})))::bigint AS overdue_by_secs FROM reports WHERE status = '{status}' AND {since} < "
        ))
        .push_bind(cutoff);
    if let Some(station) = station_id {
        qb.push(" AND station_id = ").push_bind(station);
    }
    if let Some((at, id)) = page.key::<(Timestamp, Uuid)>()? {
        qb.push(format!(" AND ({since}, id) > ("))
            .push_bind(at.get())
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    qb.push(format!(" ORDER BY {since}, id LIMIT "))
        .push_bind(page.fetch());
    let rows: Vec<OverdueReport> = qb.build_query_as().fetch_all(pool).await?;
    Ok(Page::from_rows(rows, page, |r| (r.since, r.id)))
}

/// Up to `limit` overdue reports whose breach of `kind` is not yet recorded for the
/// current assignment (most overdue first): the SLA worker appends `SlaBreached` for
/// each.
#[tracing::instrument(skip(pool))]
pub async fn sla_breach_candidates(
    pool: &PgPool,
    kind: SlaKind,
    sla_secs: i64,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<Uuid>, QueryError> {
    let (status, since, breached) = columns(kind);
    let cutoff = deadline_cutoff(now, sla_secs);
    Ok(sqlx::query_scalar(&format!(
        "SELECT id FROM reports
         WHERE status = '{status}' AND {since} < $1
           AND ({breached} IS NULL OR {breached} < {since})
         ORDER BY {since}, id LIMIT $2"
    ))
    .bind(cutoff)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?)
}
