//! The `report_snapshots` table (ADR 0022): sealed states of a report every N events,
//! from which `as_of` folds only the tail. Not a projection — the API writes a snapshot
//! when an `as_of` folds past a boundary — but a cache of the log the reports
//! projection clears on erasure.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::QueryError;

/// One stored snapshot.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SnapshotRow {
    pub events: i32,
    pub position: i64,
    pub max_occurred_at: DateTime<Utc>,
    pub subject: Uuid,
    pub state: Value,
}

/// What `as_of` at `at` starts from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Around {
    pub latest: Option<SnapshotRow>,
    /// The newest snapshot whose events all occurred by `at`.
    pub base: Option<SnapshotRow>,
    /// `events` of the first snapshot after `base` (or the first one, without a base).
    pub next_events: Option<i32>,
}

#[derive(sqlx::FromRow)]
struct AroundRow {
    #[sqlx(flatten)]
    row: SnapshotRow,
    is_latest: bool,
    is_base: bool,
    next_events: Option<i32>,
}

/// The newest snapshot of `report`, the newest whose events all occurred by `at`, and
/// where the next one starts: one query.
pub async fn around(pool: &PgPool, report: Uuid, at: DateTime<Utc>) -> Result<Around, QueryError> {
    let rows: Vec<AroundRow> = sqlx::query_as(
        "WITH s AS (SELECT events, position, max_occurred_at, subject, state
                      FROM report_snapshots WHERE report_id = $1),
              b AS (SELECT max(events) AS events FROM s WHERE max_occurred_at <= $2),
              l AS (SELECT max(events) AS events FROM s)
         SELECT s.events, s.position, s.max_occurred_at, s.subject, s.state,
                s.events = (SELECT events FROM l) AS is_latest,
                s.events IS NOT DISTINCT FROM (SELECT events FROM b) AS is_base,
                (SELECT min(events) FROM s
                  WHERE events > coalesce((SELECT events FROM b), 0)) AS next_events
           FROM s
          WHERE s.events = (SELECT events FROM l) OR s.events = (SELECT events FROM b)",
    )
    .bind(report)
    .bind(at)
    .fetch_all(pool)
    .await?;
    let mut out = Around::default();
    for r in rows {
        out.next_events = r.next_events;
        if r.is_base {
            out.base = Some(r.row.clone());
        }
        if r.is_latest {
            out.latest = Some(r.row);
        }
    }
    Ok(out)
}

/// Stores `rows` for `report` (replacing any with the same `events`) — unless the
/// report's personal data was erased, or its row is not projected yet. The report's
/// row is locked while checking, so an erasure projected at the same time either comes
/// first (and nothing is stored) or waits and then deletes what was stored. Answers how
/// many were stored.
pub async fn save(pool: &PgPool, report: Uuid, rows: &[SnapshotRow]) -> Result<u64, QueryError> {
    let mut tx = pool.begin().await?;
    let erased: Option<bool> =
        sqlx::query_scalar("SELECT personal_erased FROM reports WHERE id = $1 FOR SHARE")
            .bind(report)
            .fetch_optional(&mut *tx)
            .await?;
    if erased != Some(false) {
        return Ok(0);
    }
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "events": r.events, "position": r.position,
                "max_occurred_at": r.max_occurred_at, "subject": r.subject, "state": r.state,
            })
        })
        .collect();
    let stored = sqlx::query(
        "INSERT INTO report_snapshots (report_id, events, position, max_occurred_at, subject, state)
         SELECT $1, x.events, x.position, x.max_occurred_at, x.subject, x.state
           FROM jsonb_to_recordset($2) AS x(events integer, position bigint,
                max_occurred_at timestamptz, subject uuid, state jsonb)
         ON CONFLICT (report_id, events) DO UPDATE
            SET position = EXCLUDED.position, max_occurred_at = EXCLUDED.max_occurred_at,
                subject = EXCLUDED.subject, state = EXCLUDED.state",
    )
    .bind(report)
    .bind(Value::Array(rows))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(stored)
}
