//! How far behind each projection is, how many events it holds in quarantine, and
//! waiting until the read models include a position (`X-Min-Position`, routing).
//!
//! The log's side of the lag (its head, the time of an event) comes from the caller:
//! this crate reads PostgreSQL only.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use precinct_retry::Backoff;

use crate::checkpoint::{self, NOTIFY_CHANNEL};
use crate::error::QueryError;
use crate::EVENT_PROJECTIONS;

/// One projection's progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectionStatus {
    pub name: String,
    /// Last applied position.
    pub position: u64,
    /// The source's last position.
    pub head: u64,
    pub lag_positions: u64,
    /// How long the oldest not-yet-applied item has been waiting (now minus its time);
    /// 0 when caught up.
    pub lag_seconds: f64,
    /// Events quarantined and not yet repaired (poison events and those held back
    /// behind them, ADR 0009). More than 0: the projection is *degraded* — some
    /// aggregates' rows are missing or stale — but everything else is current.
    pub quarantined: u64,
}

impl ProjectionStatus {
    /// Caught up within the given bounds (for `/health/ready`).
    pub fn is_ready(&self, max_lag_positions: u64, max_lag_seconds: f64) -> bool {
        self.lag_positions <= max_lag_positions || self.lag_seconds <= max_lag_seconds
    }

    /// Holds events in quarantine.
    pub fn is_degraded(&self) -> bool {
        self.quarantined > 0
    }
}

fn lag_since(at: Option<DateTime<Utc>>) -> f64 {
    at.map(|at| ((Utc::now() - at).num_milliseconds().max(0) as f64) / 1000.0)
        .unwrap_or(0.0)
}

/// The status of every event projection (in [`EVENT_PROJECTIONS`] order) against a
/// log whose last position is `head`; `time_at(p)` is the time of the event at position
/// `p` (asked only of a projection that is behind, for the one after its checkpoint).
pub async fn status<F, Fut>(
    pool: &PgPool,
    head: u64,
    time_at: F,
) -> Result<Vec<ProjectionStatus>, QueryError>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Option<DateTime<Utc>>>,
{
    status_of(pool, EVENT_PROJECTIONS, head, time_at).await
}

/// The status of the projections `names` (in that order) against a source whose last
/// position is `head` (e.g. the request log against its own stream).
pub async fn status_of<F, Fut>(
    pool: &PgPool,
    names: &[&str],
    head: u64,
    time_at: F,
) -> Result<Vec<ProjectionStatus>, QueryError>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Option<DateTime<Utc>>>,
{
    let rows: HashMap<String, checkpoint::Checkpoint> = checkpoint::all(pool)
        .await?
        .into_iter()
        .map(|c| (c.projection.clone(), c))
        .collect();
    let quarantined = crate::quarantine::held_counts(pool).await?;
    let mut times: HashMap<u64, Option<DateTime<Utc>>> = HashMap::new();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let row = rows.get(*name);
        let position = row.map_or(0, |r| r.position());
        let lag_positions = head.saturating_sub(position);
        let lag_seconds = if lag_positions > 0 {
            let next = position + 1;
            let at = match times.get(&next) {
                Some(at) => *at,
                None => {
                    let at = time_at(next).await;
                    times.insert(next, at);
                    at
                }
            };
            lag_since(at)
        } else {
            0.0
        };
        out.push(ProjectionStatus {
            name: (*name).to_owned(),
            position,
            head,
            lag_positions,
            lag_seconds,
            quarantined: quarantined.get(*name).copied().unwrap_or(0),
        });
    }
    Ok(out)
}

/// `Ok(true)` once every event projection has applied `position`; `Ok(false)` after
/// `timeout`. Polls the checkpoints table (2 ms, doubling to 50 ms); for many waiters
/// prefer one [`PositionWatcher`].
pub async fn wait_for_position(
    pool: &PgPool,
    position: u64,
    timeout: Duration,
) -> Result<bool, QueryError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut backoff = Backoff::new(Duration::from_millis(2), Duration::from_millis(50));
    loop {
        if checkpoint::min_position(pool).await? >= position {
            return Ok(true);
        }
        if !backoff.pause_until(deadline).await {
            return Ok(false);
        }
    }
}

/// `Ok(true)` once the projection `name` alone has applied `position` (e.g. routing
/// needs only the stations read model to include the last station change); `Ok(false)`
/// after `timeout`. Polls its checkpoint row (1 ms, doubling to 20 ms).
pub async fn wait_for_projection(
    pool: &PgPool,
    name: &str,
    position: u64,
    timeout: Duration,
) -> Result<bool, QueryError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(20));
    loop {
        if checkpoint::position_of(pool, name).await? >= position {
            return Ok(true);
        }
        if !backoff.pause_until(deadline).await {
            return Ok(false);
        }
    }
}

/// Follows the event projections' checkpoints with one `LISTEN` connection (each batch
/// notifies in its own transaction) and answers [`PositionWatcher::wait_for`] without
/// touching the database. Re-reads the table every second as a safety net (missed
/// notifications while reconnecting, a rebuild resetting the rows). Cheap to clone.
#[derive(Debug, Clone)]
pub struct PositionWatcher {
    rx: watch::Receiver<u64>,
}

impl PositionWatcher {
    /// Connects, loads the current checkpoints and follows them until `shutdown`.
    pub async fn start(pool: PgPool, shutdown: CancellationToken) -> Result<Self, sqlx::Error> {
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        let mut positions = load(&pool).await?;
        let (tx, rx) = watch::channel(lowest(&positions));
        // The listener gets a task of its own so that no `select!` ever cancels a
        // half-read notification; `None` means the connection dropped (and will be
        // re-established by the next `try_recv`).
        let (notes_tx, mut notes) = tokio::sync::mpsc::channel::<Option<String>>(1024);
        let listening = tokio::spawn(async move {
            loop {
                let note = match listener.try_recv().await {
                    Ok(n) => n.map(|n| n.payload().to_owned()),
                    Err(e) => {
                        tracing::warn!(error = %e, "checkpoint listener failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        None
                    }
                };
                if notes_tx.send(note).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let mut refresh = tokio::time::interval(Duration::from_secs(1));
            loop {
                let reload = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tx.closed() => break,
                    _ = refresh.tick() => true,
                    note = notes.recv() => match note {
                        None => break,
                        Some(None) => true,
                        Some(Some(payload)) => {
                            if let Some((name, pos)) = payload.rsplit_once(':') {
                                if let (Some(slot), Ok(pos)) = (positions.get_mut(name), pos.parse()) {
                                    *slot = pos;
                                }
                            }
                            false
                        }
                    },
                };
                if reload {
                    if let Ok(p) = load(&pool).await {
                        positions = p;
                    }
                }
                tx.send_if_modified(|current| {
                    let low = lowest(&positions);
                    let changed = *current != low;
                    *current = low;
                    changed
                });
            }
            listening.abort();
        });
        Ok(Self { rx })
    }

    /// The lowest checkpoint over every event projection, as last seen.
    pub fn current(&self) -> u64 {
        *self.rx.borrow()
    }

    /// True once every event projection has applied `position`; false after `timeout`.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.rx.clone();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position))
            .await
            .is_ok_and(|r| r.is_ok());
        reached
    }
}

async fn load(pool: &PgPool) -> Result<HashMap<String, u64>, sqlx::Error> {
    let rows: HashMap<String, u64> = checkpoint::all(pool)
        .await?
        .into_iter()
        .map(|c| (c.projection.clone(), c.position()))
        .collect();
    Ok(EVENT_PROJECTIONS
        .iter()
        .map(|n| ((*n).to_owned(), rows.get(*n).copied().unwrap_or(0)))
        .collect())
}

fn lowest(positions: &HashMap<String, u64>) -> u64 {
    positions.values().copied().min().unwrap_or(0)
}
