//! What an operator's dashboard counts (`GET /metrics`): reports and patrols by status,
//! and reports overdue to accept or to respond right now. Whole-system counts, for the
//! scrapers' token and ADMIN only; no row leaves this module.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use precinct_domain::values::SlaKind;
use sqlx::PgPool;

use crate::error::QueryError;

/// Counts over every station.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorCounts {
    /// Reports by status (`NEW`, `ASSIGNED`, …); a status with no report is absent.
    pub reports_by_status: BTreeMap<String, i64>,
    /// Patrols by status (`AVAILABLE`, `BUSY`, `OFF_DUTY`).
    pub patrols_by_status: BTreeMap<String, i64>,
    /// Reports past their deadline to be accepted (`ASSIGNED` for longer than the
    /// accept SLA), whether or not the breach is recorded yet.
    pub overdue_accept: i64,
    /// Reports past their deadline to be responded to (`ACCEPTED` for longer than the
    /// respond SLA).
    pub overdue_respond: i64,
}

/// The counts at `now` with the given service levels (seconds).
#[tracing::instrument(skip(pool))]
pub async fn operator_counts(
    pool: &PgPool,
    now: DateTime<Utc>,
    accept_secs: i64,
    respond_secs: i64,
) -> Result<OperatorCounts, QueryError> {
    let reports_by_status = by_status(pool, "reports").await?;
    let patrols_by_status = by_status(pool, "patrols").await?;
    let overdue = |kind: SlaKind, secs: i64| async move {
        let (status, since) = match kind {
            SlaKind::Accept => ("ASSIGNED", "assigned_at"),
            SlaKind::Respond => ("ACCEPTED", "accepted_at"),
        };
        let cutoff = now - chrono::Duration::seconds(secs.clamp(0, 100 * 365 * 24 * 3600));
        sqlx::query_scalar::<_, i64>(&format!(
            "SELECT count(*) FROM reports WHERE status = '{status}' AND {since} < $1"
        ))
        .bind(cutoff)
        .fetch_one(pool)
        .await
    };
    Ok(OperatorCounts {
        reports_by_status,
        patrols_by_status,
        overdue_accept: overdue(SlaKind::Accept, accept_secs).await?,
        overdue_respond: overdue(SlaKind::Respond, respond_secs).await?,
    })
}

async fn by_status(pool: &PgPool, table: &str) -> Result<BTreeMap<String, i64>, QueryError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT status, count(*) FROM {table} GROUP BY status"
    ))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}
