//! What an operator's dashboard counts (`GET /metrics`): reports and patrols by status,
//! and reports overdue to accept or to respond right now. Whole-system counts, for the
//! scrapers' token and ADMIN only; no row leaves this module.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use precinct_domain::sla::SlaDefaults;
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

/// The counts at `now`; overdue by each report's deadline (its station's SLA policy for
/// its priority, else `defaults`: ADR 0035).
#[tracing::instrument(skip(pool))]
pub async fn operator_counts(
    pool: &PgPool,
    now: DateTime<Utc>,
    defaults: &SlaDefaults,
) -> Result<OperatorCounts, QueryError> {
    let reports_by_status = by_status(pool, "reports").await?;
    let patrols_by_status = by_status(pool, "patrols").await?;
    Ok(OperatorCounts {
        reports_by_status,
        patrols_by_status,
        overdue_accept: super::sla::sla_overdue_count(pool, SlaKind::Accept, defaults, now).await?,
        overdue_respond: super::sla::sla_overdue_count(pool, SlaKind::Respond, defaults, now)
            .await?,
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
