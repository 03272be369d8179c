//! The audit trail (`GET /audit`: one row per event, in log order) and the request
//! log (`GET /audit/requests`: one row per HTTP request, newest first).

use chrono::{DateTime, Utc};
use precinct_domain::values::Timestamp;
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{like_prefix, Page, PageRequest};
use crate::error::QueryError;

/// Who did what to which target, when.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AuditRow {
    pub position: i64,
    pub at: DateTime<Utc>,
    /// `USER`, `ANONYMOUS` or `SYSTEM`.
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    /// The event type, e.g. `ReportAssigned`.
    pub action: String,
    /// The aggregate type, e.g. `report`.
    pub target_type: String,
    pub target_id: Uuid,
    pub correlation_id: Uuid,
    pub command_id: Uuid,
    /// The station the target belonged to when the event happened (none: a target
    /// without a station, such as a citizen's account).
    pub station_id: Option<Uuid>,
}

/// Filters of [`audit`]; `from` inclusive, `to` exclusive (on `at`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    /// Only rows whose target belonged to this station (a SUPERVISOR's scope).
    pub station_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// One HTTP request.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RequestRow {
    /// The request stream's sequence number.
    #[serde(skip_serializing)]
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub request_id: String,
    pub actor_id: Option<Uuid>,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub latency_ms: f64,
    pub client_addr: Option<String>,
}

/// Filters of [`request_log`]; `path` is a prefix; `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    pub actor_id: Option<Uuid>,
    pub path: Option<String>,
    pub status: Option<u16>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

fn push_time_range(
    qb: &mut QueryBuilder<'_, Postgres>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) {
    if let Some(from) = from {
        qb.push(" AND at >= ").push_bind(from);
    }
    if let Some(to) = to {
        qb.push(" AND at < ").push_bind(to);
    }
}

/// Audit rows matching `filter`, in log order.
#[tracing::instrument(skip(pool))]
pub async fn audit(
    pool: &PgPool,
    filter: &AuditFilter,
    page: &PageRequest,
) -> Result<Page<AuditRow>, QueryError> {
    let mut qb = QueryBuilder::<Postgres>::new(
        "SELECT position, at, actor_kind, actor_id, actor_role, action, target_type, \
         target_id, correlation_id, command_id, station_id FROM audit WHERE true",
    );
    if let Some(actor) = filter.actor_id {
        qb.push(" AND actor_id = ").push_bind(actor);
    }
    if let Some(target) = filter.target_id {
        qb.push(" AND target_id = ").push_bind(target);
    }
    if let Some(station) = filter.station_id {
        qb.push(" AND station_id = ").push_bind(station);
    }
    push_time_range(&mut qb, filter.from, filter.to);
    if let Some(after) = page.key::<i64>()? {
        qb.push(" AND position > ").push_bind(after);
    }
    qb.push(" ORDER BY position LIMIT ").push_bind(page.fetch());
    let rows: Vec<AuditRow> = qb.build_query_as().fetch_all(pool).await?;
    Ok(Page::from_rows(rows, page, |r| r.position))
}

/// Requests matching `filter`, newest first.
#[tracing::instrument(skip(pool))]
pub async fn request_log(
    pool: &PgPool,
    filter: &RequestFilter,
    page: &PageRequest,
) -> Result<Page<RequestRow>, QueryError> {
    let mut qb = QueryBuilder::<Postgres>::new(
        "SELECT seq, at, request_id, actor_id, method, path, status, latency_ms, client_addr \
         FROM request_log WHERE true",
    );
    if let Some(actor) = filter.actor_id {
        qb.push(" AND actor_id = ").push_bind(actor);
    }
    if let Some(path) = &filter.path {
        qb.push(" AND path LIKE ").push_bind(like_prefix(path));
    }
    if let Some(status) = filter.status {
        qb.push(" AND status = ").push_bind(i32::from(status));
    }
    push_time_range(&mut qb, filter.from, filter.to);
    if let Some((at, seq)) = page.key::<(Timestamp, i64)>()? {
        qb.push(" AND (at, seq) < (")
            .push_bind(at.get())
            .push(", ")
            .push_bind(seq)
            .push(")");
    }
    qb.push(" ORDER BY at DESC, seq DESC LIMIT ")
        .push_bind(page.fetch());
    let rows: Vec<RequestRow> = qb.build_query_as().fetch_all(pool).await?;
    Ok(Page::from_rows(rows, page, |r| (r.at, r.seq)))
}
