//! Poison events (ADR 0009): what a projector does with an event it cannot apply, and
//! how an operator repairs it.
//!
//! A projector that cannot decode or apply an event (a non-transient error) records it
//! in the `quarantine` table as `poison` and from then on *holds back* that event's
//! aggregate in that projection: the aggregate's later events are recorded as `held`,
//! in order, and not applied, so nothing of it is ever applied out of order. The
//! checkpoint moves past them in the same transaction, and every other aggregate goes
//! on as before. An entry that cannot even be read (its envelope does not decode) is
//! recorded alone, `unreadable`.
//!
//! Repairs take the projection's checkpoint lock, so they never interleave with a
//! batch:
//! - [`retry`]: after a code fix, applies the aggregate's quarantined events in order;
//!   if they all apply the aggregate is released, otherwise it stays held from the first
//!   that still fails.
//! - [`skip`]: drops the poison event's effect (an operator decision, recorded in
//!   `quarantine_decisions`, which no rebuild ever empties and every rebuild honours),
//!   then retries the rest of the aggregate.
//!
//! The log is never changed: every quarantined event stays in it, and every entry stays
//! in `quarantine` with who retried or skipped it and when (until a rebuild recomputes
//! the table; the decisions themselves are kept for good).
//!
//! Reading the table (`held`, `entries`, `is_held`, the [`Quarantined`] row) is
//! [`precinct_readmodel::quarantine`]'s.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use chrono::{DateTime, Utc};
use precinct_eventlog::{EventLog, RecordedEvent};
use serde::Serialize;
use sqlx::{Acquire, PgConnection, PgPool};
use uuid::Uuid;

use crate::checkpoint::{self, to_i64, to_u64};
use crate::error::ProjectionError;
use crate::projection::Projection;
use crate::projections::analytics::Analytics;
use crate::projections::crime_types::CrimeTypes;
use crate::projections::webhooks::Webhooks;
use crate::projections::{accounts::Accounts, audit::Audit, patrols::Patrols};
use crate::projections::{reports::Reports, stations::Stations};
use crate::request_log::{self, RequestLog};
use crate::worker::Consumer;
use precinct_eventlog::StoredRequest;
use precinct_readmodel::quarantine::{self as read, Quarantined};

/// An aggregate: its type name and id.
pub type AggregateKey = (String, Uuid);

/// What the quarantine records about one item of a projector's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub position: u64,
    /// The aggregate a failure holds back; `None`: the item stands alone.
    pub aggregate: Option<AggregateKey>,
    pub event_type: String,
}

/// An operator's decision to drop an event's effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SkipDecision {
    pub by: String,
    pub at: DateTime<Utc>,
    pub error_class: Option<String>,
    pub error: Option<String>,
}

/// What one projector holds back and skips, as of `version` of its checkpoint row.
#[derive(Debug, Clone, Default)]
pub(crate) struct Held {
    pub version: i64,
    pub aggregates: HashSet<AggregateKey>,
    pub skips: HashMap<u64, SkipDecision>,
}

impl Held {
    /// A version no row has: the first batch loads the real state.
    pub fn unknown() -> Self {
        Self {
            version: -1,
            ..Self::default()
        }
    }

    /// Whether `entry`'s aggregate is held back.
    pub fn holds(&self, entry: &Entry) -> bool {
        entry
            .aggregate
            .as_ref()
            .is_some_and(|a| self.aggregates.contains(a))
    }
}

/// Reads what `projection` holds back and skips (inside the batch's transaction).
pub(crate) async fn load(
    conn: &mut PgConnection,
    projection: &str,
    version: i64,
) -> Result<Held, sqlx::Error> {
    let held: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT DISTINCT aggregate_type, aggregate_id FROM quarantine
         WHERE projection = $1 AND resolution IS NULL
           AND aggregate_type IS NOT NULL AND aggregate_id IS NOT NULL",
    )
    .bind(projection)
    .fetch_all(&mut *conn)
    .await?;
    type SkipRow = (i64, String, DateTime<Utc>, Option<String>, Option<String>);
    let skips: Vec<SkipRow> = sqlx::query_as(
        "SELECT DISTINCT ON (position) position, decided_by, decided_at, error_class, error
         FROM quarantine_decisions WHERE projection = $1 AND decision = 'skip'
         ORDER BY position, id",
    )
    .bind(projection)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Held {
        version,
        aggregates: held.into_iter().collect(),
        skips: skips
            .into_iter()
            .map(|(position, by, at, error_class, error)| {
                (
                    to_u64(position),
                    SkipDecision {
                        by,
                        at,
                        error_class,
                        error,
                    },
                )
            })
            .collect(),
    })
}

/// Why an entry is in quarantine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Poison,
    Held,
}

/// A short, stable class of a failure (the full text goes to `error`).
pub(crate) fn class(e: &ProjectionError) -> &'static str {
    match e {
        ProjectionError::Decode { .. } => "decode",
        ProjectionError::MissingRow { .. } => "missing_row",
        ProjectionError::Log(precinct_eventlog::ReadError::Corrupt { .. }) => "unreadable",
        ProjectionError::Db(sqlx::Error::Database(db)) => {
            match db.code().as_deref().map(|c| c.get(..2).unwrap_or(c)) {
                Some("22") => "data",
                Some("23") => "integrity",
                _ => "other",
            }
        }
        ProjectionError::Db(_) => "data",
        _ => "other",
    }
}

/// Error text as it may be stored: no control characters (PostgreSQL refuses U+0000)
/// and at most 2,000 characters.
fn printable(error: &str) -> String {
    error
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .take(2000)
        .collect()
}

/// Records an entry (in the batch's transaction). Recording it twice keeps the first.
pub(crate) async fn record(
    conn: &mut PgConnection,
    projection: &str,
    entry: &Entry,
    reason: Reason,
    failure: Option<(&str, &str)>,
) -> Result<(), sqlx::Error> {
    let (aggregate_type, aggregate_id) = entry.aggregate.clone().unzip();
    sqlx::query(
        "INSERT INTO quarantine (projection, position, aggregate_type, aggregate_id,
            event_type, reason, error_class, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (projection, position) DO NOTHING",
    )
    .bind(projection)
    .bind(to_i64(entry.position))
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(&entry.event_type)
    .bind(match reason {
        Reason::Poison => "poison",
        Reason::Held => "held",
    })
    .bind(failure.map(|(class, _)| class))
    .bind(failure.map(|(_, error)| printable(error)))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records an entry whose effect an operator dropped (a rebuild meeting a `skip`
/// decision): as the live `skip` left it.
pub(crate) async fn record_skipped(
    conn: &mut PgConnection,
    projection: &str,
    entry: &Entry,
    decision: &SkipDecision,
) -> Result<(), sqlx::Error> {
    let (aggregate_type, aggregate_id) = entry.aggregate.clone().unzip();
    sqlx::query(
        "INSERT INTO quarantine (projection, position, aggregate_type, aggregate_id,
            event_type, reason, error_class, error, resolution, resolved_by, resolved_at)
         VALUES ($1, $2, $3, $4, $5, 'skipped', $6, $7, 'skipped', $8, $9)
         ON CONFLICT (projection, position) DO NOTHING",
    )
    .bind(projection)
    .bind(to_i64(entry.position))
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(&entry.event_type)
    .bind(&decision.error_class)
    .bind(&decision.error)
    .bind(&decision.by)
    .bind(decision.at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Empties the quarantine of `projections` (a rebuild recomputes it); the decisions
/// stay.
pub(crate) async fn reset(
    conn: &mut PgConnection,
    projections: &[&str],
) -> Result<(), sqlx::Error> {
    let names: Vec<String> = projections.iter().map(|s| (*s).to_owned()).collect();
    sqlx::query("DELETE FROM quarantine WHERE projection = ANY($1)")
        .bind(&names)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Why a repair could not be done.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error("unknown projection `{0}`")]
    UnknownProjection(String),
    #[error("nothing is quarantined at position {position} of {projection}")]
    NotQuarantined { projection: String, position: u64 },
    #[error("position {position} of {projection} was already {resolution}")]
    AlreadyResolved {
        projection: String,
        position: u64,
        resolution: String,
    },
    #[error("only the poison event of an aggregate can be skipped; {position} is held behind it")]
    NotPoison { position: u64 },
    #[error("the entry at position {0} is no longer in its source")]
    Gone(u64),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

impl From<sqlx::Error> for RepairError {
    fn from(e: sqlx::Error) -> Self {
        RepairError::Projection(e.into())
    }
}

/// What a repair did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repair {
    pub projection: String,
    /// The aggregate concerned (`None`: a standalone entry).
    pub aggregate: Option<AggregateKey>,
    /// Skipped by this repair.
    pub skipped: Option<u64>,
    /// Applied now, in order.
    pub applied: Vec<u64>,
    /// The entry that still fails, with its error (the aggregate stays held from it).
    pub failed: Option<(u64, String)>,
    /// Still held back (the failed one and those after it).
    pub still_held: Vec<u64>,
}

impl Repair {
    /// Whether nothing of the aggregate is held back any more.
    pub fn released(&self) -> bool {
        self.still_held.is_empty()
    }

    fn outcome(&self) -> String {
        match &self.failed {
            None => format!("released; applied {:?}", self.applied),
            Some((p, _)) => format!(
                "still held: {p} failed; applied {:?}, held {:?}",
                self.applied, self.still_held
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Retry,
    Skip,
}

/// Applies `projection`'s quarantined events of the aggregate of the entry at
/// `position` again, in order (after a fix), and releases the aggregate if they all
/// apply. `by` names the operator (kept with the decision).
pub async fn retry(
    pool: &PgPool,
    log: &EventLog,
    projection: &str,
    position: u64,
    by: &str,
) -> Result<Repair, RepairError> {
    repair(pool, log, projection, position, by, None, Decision::Retry).await
}

/// Drops the effect of the poison entry at `position` of `projection` (for good: a
/// rebuild honours it), then retries the rest of its aggregate as [`retry`] does.
pub async fn skip(
    pool: &PgPool,
    log: &EventLog,
    projection: &str,
    position: u64,
    by: &str,
    note: Option<&str>,
) -> Result<Repair, RepairError> {
    repair(pool, log, projection, position, by, note, Decision::Skip).await
}

async fn repair(
    pool: &PgPool,
    log: &EventLog,
    projection: &str,
    position: u64,
    by: &str,
    note: Option<&str>,
    decision: Decision,
) -> Result<Repair, RepairError> {
    let events = |log: EventLog| {
        move |p: u64| {
            let log = log.clone();
            async move { log.read_at(p).await.map_err(ProjectionError::from) }
        }
    };
    let r = (pool, projection, position, by, note, decision);
    match projection {
        <Reports as Projection>::NAME => repair_with(Reports, r, events(log.clone())).await,
        <Patrols as Projection>::NAME => repair_with(Patrols, r, events(log.clone())).await,
        <Stations as Projection>::NAME => repair_with(Stations, r, events(log.clone())).await,
        <CrimeTypes as Projection>::NAME => repair_with(CrimeTypes, r, events(log.clone())).await,
        <Webhooks as Projection>::NAME => repair_with(Webhooks, r, events(log.clone())).await,
        <Accounts as Projection>::NAME => repair_with(Accounts, r, events(log.clone())).await,
        <Audit as Projection>::NAME => repair_with(Audit, r, events(log.clone())).await,
        <Analytics as Projection>::NAME => repair_with(Analytics, r, events(log.clone())).await,
        request_log::NAME => {
            let fetch = move |p: u64| {
                let log = log.clone();
                async move { request_log::read_at(&log, p).await }
            };
            repair_with(RequestLog, r, fetch).await
        }
        other => Err(RepairError::UnknownProjection(other.to_owned())),
    }
}

type RepairArgs<'a> = (&'a PgPool, &'a str, u64, &'a str, Option<&'a str>, Decision);

async fn repair_with<C, F, Fut>(
    consumer: C,
    (pool, projection, position, by, note, decision): RepairArgs<'_>,
    fetch: F,
) -> Result<Repair, RepairError>
where
    C: Consumer,
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<Option<C::Item>, ProjectionError>>,
{
    let mut tx = pool.begin().await?;
    checkpoint::lock(&mut tx, projection).await?;
    let target = read::entry_at(&mut tx, projection, position).await?;
    let Some(target) = target else {
        return Err(RepairError::NotQuarantined {
            projection: projection.to_owned(),
            position,
        });
    };
    if let Some(resolution) = target.resolution.clone() {
        return Err(RepairError::AlreadyResolved {
            projection: projection.to_owned(),
            position,
            resolution,
        });
    }
    if decision == Decision::Skip && target.reason != "poison" {
        return Err(RepairError::NotPoison { position });
    }
    let aggregate = target.aggregate_type.clone().zip(target.aggregate_id);
    let pending: Vec<Quarantined> = match &aggregate {
        Some((kind, id)) => read::held_of(&mut tx, projection, kind, *id).await?,
        None => vec![target.clone()],
    };
    let mut out = Repair {
        projection: projection.to_owned(),
        aggregate: aggregate.clone(),
        skipped: None,
        applied: Vec::new(),
        failed: None,
        still_held: Vec::new(),
    };
    let resolve = |resolution: &'static str, at: i64| {
        sqlx::query(
            "UPDATE quarantine SET resolution = $3, resolved_by = $4, resolved_at = now()
             WHERE projection = $1 AND position = $2",
        )
        .bind(projection)
        .bind(at)
        .bind(resolution)
        .bind(by)
    };
    for entry in pending {
        let at = to_u64(entry.position);
        if out.failed.is_some() {
            out.still_held.push(at);
            continue;
        }
        if decision == Decision::Skip && at == position {
            sqlx::query(
                "UPDATE quarantine SET reason = 'skipped' WHERE projection = $1 AND position = $2",
            )
            .bind(projection)
            .bind(entry.position)
            .execute(&mut *tx)
            .await?;
            resolve("skipped", entry.position).execute(&mut *tx).await?;
            out.skipped = Some(at);
            continue;
        }
        let item = fetch(at).await?.ok_or(RepairError::Gone(at))?;
        let mut savepoint = tx.begin().await?;
        match consumer.apply(&mut savepoint, &item).await {
            Ok(()) => {
                savepoint.commit().await?;
                resolve("retried", entry.position).execute(&mut *tx).await?;
                out.applied.push(at);
            }
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                savepoint.rollback().await?;
                let error = e.to_string();
                sqlx::query(
                    "UPDATE quarantine SET reason = 'poison', error_class = $3, error = $4
                     WHERE projection = $1 AND position = $2",
                )
                .bind(projection)
                .bind(entry.position)
                .bind(class(&e))
                .bind(printable(&error))
                .execute(&mut *tx)
                .await?;
                tracing::error!(projection, position = at, error = %error, "quarantined event still fails");
                out.failed = Some((at, error));
                out.still_held.push(at);
            }
        }
    }
    sqlx::query(
        "INSERT INTO quarantine_decisions (projection, position, aggregate_type, aggregate_id,
            event_type, decision, decided_by, decided_at, note, error_class, error, outcome)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8, $9, $10, $11)",
    )
    .bind(projection)
    .bind(to_i64(position))
    .bind(&target.aggregate_type)
    .bind(target.aggregate_id)
    .bind(&target.event_type)
    .bind(match decision {
        Decision::Retry => "retry",
        Decision::Skip => "skip",
    })
    .bind(by)
    .bind(note)
    .bind(&target.error_class)
    .bind(&target.error)
    .bind(out.outcome())
    .execute(&mut *tx)
    .await?;
    checkpoint::bump_quarantine(&mut tx, projection).await?;
    tx.commit().await?;
    tracing::warn!(
        projection,
        position,
        by,
        decision = ?decision,
        outcome = %out.outcome(),
        "quarantine repaired"
    );
    Ok(out)
}

/// The quarantine entry of an item, as a projector of events sees it.
pub(crate) fn event_entry(event: &RecordedEvent) -> Entry {
    Entry {
        position: event.position(),
        aggregate: Some((
            event.envelope.aggregate_type.clone(),
            event.envelope.aggregate_id,
        )),
        event_type: event.envelope.event_type.clone(),
    }
}

/// The quarantine entry of a request record (each stands alone).
pub(crate) fn request_entry(item: &StoredRequest) -> Entry {
    Entry {
        position: item.seq(),
        aggregate: None,
        event_type: "RequestRecord".into(),
    }
}
