//! Workload 3, second half: a log of N events, and how fast the read models are built
//! from it.
//!
//! - **Seed**: `ReportSubmitted` events are appended straight to the server's log with
//!   `EventLog::append_multi`, `seed_batch` new report streams per atomic batch
//!   (expected version: no stream), a few appenders at once. Each event is a copy of a
//!   real one the server wrote during intake (same reporter, same sealed personal data,
//!   so the projections open it with the vault as they would any other), with a new
//!   report id, place (spread over the city by a hash: `world::city_point`) and
//!   submission time (spread over the last `BENCH_SEED_DAYS` days by a hash: a history,
//!   so that analytics over 30 days read a realistic share of it). The server's projectors project them as they come
//!   (**catch-up**), which is also what fills the read models for the query workload.
//! - **Rebuild**: `precinct_projections::rebuild_with` into a scratch database, from the
//!   whole log (seeded events, everything the other workloads wrote), timed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use precinct_eventlog::{
    CommandMeta, EventLog, ExpectedVersion, NewEvent, RecordedEvent, StreamId, StreamWrite,
};
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;

use crate::world::city_point;

#[derive(Debug, Default, Serialize)]
pub struct SeedOut {
    pub events: u64,
    pub secs: f64,
    pub errors: u64,
    /// Log head once seeding ended.
    pub head: u64,
    /// Seconds from the first seeded append until every event projection reached the head.
    pub catch_up_secs: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct RebuildOut {
    pub events: u64,
    pub secs: f64,
    /// False when the time bound ended it first (`events` is then what was applied).
    pub finished: bool,
    pub reports_rows: i64,
    pub reports_rows_live: i64,
}

/// Real `ReportSubmitted` events (as stored: personal data sealed) to copy.
pub async fn templates(
    raw_log: &EventLog,
    report_ids: &[String],
    n: usize,
) -> anyhow::Result<Vec<RecordedEvent>> {
    let mut out = Vec::new();
    for id in report_ids
        .iter()
        .step_by((report_ids.len() / n.max(1)).max(1))
        .take(n)
    {
        let uuid: uuid::Uuid = id.parse().context("report id")?;
        let events = raw_log.read(&StreamId::new("report", uuid)).await?;
        if let Some(e) = events
            .into_iter()
            .find(|e| e.envelope.event_type == "ReportSubmitted")
        {
            out.push(e);
        }
    }
    anyhow::ensure!(!out.is_empty(), "no ReportSubmitted template found");
    Ok(out)
}

fn seeded(template: &RecordedEvent, n: u64, days: u32) -> (StreamId, NewEvent) {
    let id = uuid::Uuid::new_v4();
    let mut data = template.data.clone();
    let (lat, lon) = city_point(n);
    let now = Utc::now();
    // The age: uniform over `days`, by a hash of `n`.
    let age_ms = crate::world::spread(n) * f64::from(days) * 86_400_000.0;
    let at = now - chrono::Duration::milliseconds(age_ms as i64);
    data["report_id"] = json!(id);
    data["location"]["latitude"] = json!(lat);
    data["location"]["longitude"] = json!(lon);
    data["at"] = json!(at);
    (
        StreamId::new(template.envelope.aggregate_type.clone(), id),
        NewEvent {
            event_type: template.envelope.event_type.clone(),
            schema_version: template.envelope.schema_version,
            occurred_at: now,
            data,
        },
    )
}

/// Appends `total` events (bounded by `bound`), `batch` streams per atomic append.
pub async fn seed(
    log: &EventLog,
    templates: Vec<RecordedEvent>,
    total: u64,
    batch: usize,
    appenders: usize,
    days: u32,
    bound: Duration,
) -> SeedOut {
    let templates = Arc::new(templates);
    let next = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let deadline = t0 + bound;
    let batch = batch.clamp(1, precinct_eventlog::log::MAX_BATCH) as u64;
    let mut tasks = Vec::new();
    for _ in 0..appenders.max(1) {
        let (log, templates, next) = (log.clone(), templates.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= total {
                    break;
                }
                let n = batch.min(total - first);
                let mut writes = Vec::with_capacity(n as usize);
                let mut actor = None;
                for k in first..first + n {
                    let t = &templates[(k % templates.len() as u64) as usize];
                    actor.get_or_insert_with(|| t.envelope.actor.clone());
                    let (stream, event) = seeded(t, k, days);
                    writes.push(StreamWrite {
                        stream,
                        expected: ExpectedVersion::NoStream,
                        events: vec![event],
                    });
                }
                let meta = CommandMeta::new(
                    uuid::Uuid::new_v4(),
                    actor.unwrap_or(precinct_eventlog::Actor::System),
                );
                match log.append_multi(writes, &meta).await {
                    Ok(_) => ok += n,
                    Err(e) => {
                        errors += 1;
                        if errors <= 3 {
                            eprintln!("  seed: append failed: {e}");
                        }
                    }
                }
            }
            (ok, errors)
        }));
    }
    let mut out = SeedOut::default();
    for t in tasks {
        if let Ok((ok, errors)) = t.await {
            out.events += ok;
            out.errors += errors;
        }
    }
    out.secs = t0.elapsed().as_secs_f64();
    out.head = log.head().await.unwrap_or(0);
    out
}

/// The lowest checkpoint of the event projections.
pub async fn lowest_checkpoint(pool: &PgPool) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>(
        "SELECT min(position) FROM checkpoints WHERE projection = ANY($1)",
    )
    .bind(
        precinct_readmodel::EVENT_PROJECTIONS
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    )
    .fetch_one(pool)
    .await
    .ok()
    .flatten()
    .unwrap_or(0)
}

/// Waits (bounded) until every event projection of `pool` reached `head`.
pub async fn wait_caught_up(pool: &PgPool, head: u64, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if lowest_checkpoint(pool).await >= head as i64 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Rebuilds every read model of `pool` (a fresh, migrated database) from `log`.
pub async fn rebuild(pool: &PgPool, log: &EventLog, bound: Duration) -> anyhow::Result<RebuildOut> {
    let t0 = Instant::now();
    let run = precinct_projections::rebuild_with(
        pool,
        log,
        precinct_projections::RosterOptions::default(),
    );
    let mut out = RebuildOut::default();
    match tokio::time::timeout(bound, run).await {
        Ok(Ok(summary)) => {
            out.events = summary.head;
            out.secs = summary.elapsed.as_secs_f64();
            out.finished = true;
        }
        Ok(Err(e)) => anyhow::bail!("rebuild failed: {e}"),
        Err(_) => {
            // Dropping the future aborted the projectors; count what they committed.
            out.secs = t0.elapsed().as_secs_f64();
            out.events = lowest_checkpoint(pool).await.max(0) as u64;
            out.finished = false;
        }
    }
    out.reports_rows = sqlx::query_scalar("SELECT count(*) FROM reports")
        .fetch_one(pool)
        .await
        .unwrap_or(0);
    Ok(out)
}

/// Tables that are not rebuilt from the event log as it stood: checkpoints (their
/// `updated_at` is the wall clock), the request log (it follows the `REQUESTS` stream,
/// which the bench keeps writing to), the patrol track (down-sampled from positions by
/// time), throttling windows and the quarantine (operational state), the snapshots
/// `as_of` writes as it reads (ADR 0022), the migrations, and the outbound deliverers'
/// ledgers — webhook, push and mail cursors and deliveries record what was sent, which
/// a rebuild does not redo (ADR 0028, 0032, 0033).
const NOT_FROM_THE_LOG: [&str; 17] = [
    "report_snapshots",
    "webhook_cursors",
    "webhook_deliveries",
    "push_cursor",
    "push_outbox",
    "mail_cursor",
    "mail_deliveries",
    "mail_alert_deliveries",
    "_sqlx_migrations",
    "checkpoints",
    "request_log",
    "patrol_track",
    "login_pairs",
    "login_accounts",
    "rate_windows",
    "quarantine",
    "quarantine_decisions",
];

/// Each read-model table's row count and a hash of all its rows: the hashes of the rows'
/// text, sorted (a total order, so no key is needed), hashed together. Two tables hash
/// alike exactly when they hold the same rows (up to an MD5 collision).
pub async fn table_hashes(
    pool: &PgPool,
) -> anyhow::Result<std::collections::BTreeMap<String, (i64, String)>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    let mut out = std::collections::BTreeMap::new();
    for t in tables {
        if NOT_FROM_THE_LOG.contains(&t.as_str()) {
            continue;
        }
        // `t` is a table name PostgreSQL just listed; quoted as an identifier.
        let quoted = format!("\"{}\"", t.replace('"', "\"\""));
        let (rows, hash): (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT count(*), md5(string_agg(h, '' ORDER BY h COLLATE \"C\")) \
             FROM (SELECT md5(x::text) AS h FROM {quoted} x) s"
        ))
        .fetch_one(pool)
        .await?;
        out.insert(t, (rows, hash.unwrap_or_default()));
    }
    Ok(out)
}
