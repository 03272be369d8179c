//! The batch loop every projector runs.
//!
//! ```text
//! checkpoint ──subscribe(checkpoint + 1)──▶ take what is ready (≤ batch_max)
//!     ▲                                          │
//!     └── commit: lock row, check, apply all, advance row, notify ◀┘
//! ```
//!
//! - One transaction per batch holds the read-model changes and the new checkpoint,
//!   so an abort anywhere (even mid-commit) replays exactly what did not commit.
//! - A poison item: the batch is rolled back, the items before it are committed on
//!   their own, the failure is recorded in the checkpoint row and the worker stops.
//! - A transient failure (database or log unreachable): back off, re-read the
//!   checkpoint, subscribe again.
//! - Shutdown is checked between batches: a batch in flight finishes (commits or
//!   rolls back) first.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use precinct_eventlog::{ReadError, RecordedEvent};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::checkpoint;
use crate::error::ProjectionError;
use crate::projection::Projection;

/// How a projector's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Shutdown was requested; everything up to `position` is committed.
    Stopped { position: u64 },
    /// It applied everything up to at least the target position (rebuild).
    ReachedHead { position: u64 },
    /// It stopped at a poison item at `position`; everything before is committed.
    Failed { position: u64, error: String },
}

/// Something a worker folds into PostgreSQL, item by item, in source order.
pub(crate) trait Consumer: Send + Sync + 'static {
    type Item: Send + Sync + 'static;
    const NAME: &'static str;
    fn position(item: &Self::Item) -> u64;
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        item: &'a Self::Item,
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send + 'a;
    /// Many items at once (same rows as [`Consumer::apply`] one by one); a failure does
    /// not say which item, so the worker replays the batch item by item to find out.
    fn apply_many<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        items: &'a [Self::Item],
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send + 'a {
        async move {
            for item in items {
                self.apply(conn, item).await?;
            }
            Ok(())
        }
    }
}

impl<P: Projection> Consumer for P {
    type Item = RecordedEvent;
    const NAME: &'static str = P::NAME;

    fn position(item: &RecordedEvent) -> u64 {
        item.position()
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        item: &'a RecordedEvent,
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send + 'a {
        Projection::apply(self, conn, item)
    }

    fn apply_many<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        items: &'a [RecordedEvent],
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send + 'a {
        Projection::apply_batch(self, conn, items)
    }
}

/// An ordered source subscription from a position (inclusive).
pub(crate) type ItemStream<T> = BoxStream<'static, Result<T, ReadError>>;
pub(crate) type Subscribe<T> =
    Arc<dyn Fn(u64) -> BoxFuture<'static, Result<ItemStream<T>, ReadError>> + Send + Sync>;

/// Settings of one worker.
#[derive(Clone)]
pub(crate) struct WorkerConfig {
    /// Most items per transaction.
    pub batch_max: usize,
    /// Stop once this position is applied (rebuild); `None`: run until shutdown.
    pub until: Option<u64>,
    /// Longest pause between retries after a transient failure.
    pub max_backoff: Duration,
}

pub(crate) struct Worker<C: Consumer> {
    pub consumer: C,
    pub pool: PgPool,
    pub subscribe: Subscribe<C::Item>,
    pub config: WorkerConfig,
    pub shutdown: CancellationToken,
}

/// How a batch's items are written: all at once (a consumer may write many rows per
/// statement), or one by one (to find which item is poison).
#[derive(Debug, Clone, Copy)]
enum Mode {
    Many,
    OneByOne,
}

enum BatchError {
    /// The checkpoint row is not where this worker left it (another worker, a rebuild).
    Moved,
    Transient(ProjectionError),
    Poison {
        index: usize,
        error: ProjectionError,
    },
}

struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);

    fn new(max: Duration) -> Self {
        Self {
            next: Self::FIRST,
            max,
        }
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    fn take(&mut self) -> Duration {
        let d = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        d
    }
}

impl<C: Consumer> Worker<C> {
    /// Runs until shutdown, the target position, or a poison item.
    #[tracing::instrument(name = "projector", skip_all, fields(projection = C::NAME))]
    pub(crate) async fn run(self) -> Outcome {
        let name = C::NAME;
        let mut backoff = Backoff::new(self.config.max_backoff);
        let mut last = 0u64;
        // One active worker per projection across processes: a session advisory lock,
        // held on a dedicated connection for the worker's lifetime; a second process
        // waits as a hot standby (ADR 0006). A rebuild (`until`) does not wait for it.
        let _leadership = if self.config.until.is_none() {
            match lead(&self.pool, C::NAME, &self.shutdown).await {
                Some(conn) => Some(conn),
                None => return Outcome::Stopped { position: last },
            }
        } else {
            None
        };
        'subscribe: loop {
            if self.shutdown.is_cancelled() {
                return Outcome::Stopped { position: last };
            }
            let row = match checkpoint::ensure(&self.pool, name).await {
                Ok(row) => row,
                Err(e) => {
                    tracing::warn!(projection = name, error = %e, "cannot read checkpoint; retrying");
                    if !self.pause(&mut backoff).await {
                        return Outcome::Stopped { position: last };
                    }
                    continue;
                }
            };
            last = row.position();
            if self.reached(last) {
                return Outcome::ReachedHead { position: last };
            }
            let stream = match (self.subscribe)(last + 1).await {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(projection = name, error = %e, "cannot subscribe; retrying");
                    if !self.pause(&mut backoff).await {
                        return Outcome::Stopped { position: last };
                    }
                    continue;
                }
            };
            tracing::info!(projection = name, from = last + 1, "projector subscribed");
            let mut chunks = stream.ready_chunks(self.config.batch_max.max(1));
            loop {
                let chunk = tokio::select! {
                    biased;
                    _ = self.shutdown.cancelled() => return Outcome::Stopped { position: last },
                    chunk = chunks.next() => chunk,
                };
                let Some(chunk) = chunk else {
                    tracing::warn!(projection = name, "log subscription ended; resubscribing");
                    if !self.pause(&mut backoff).await {
                        return Outcome::Stopped { position: last };
                    }
                    continue 'subscribe;
                };
                let mut items = Vec::with_capacity(chunk.len());
                let mut read_error = None;
                for item in chunk {
                    match item {
                        // Already applied (a redelivery after a consumer reset).
                        Ok(item) if C::position(&item) <= last => {}
                        Ok(item) => items.push(item),
                        Err(e) => {
                            read_error = Some(e);
                            break;
                        }
                    }
                }
                if !items.is_empty() {
                    match self.commit(last, &items).await {
                        Ok(position) => {
                            last = position;
                            backoff.reset();
                        }
                        Err(BatchError::Moved) => {
                            tracing::warn!(
                                projection = name,
                                "checkpoint moved under us; re-reading it"
                            );
                            continue 'subscribe;
                        }
                        Err(BatchError::Transient(e)) => {
                            tracing::warn!(projection = name, error = %e, "batch failed; retrying");
                            if !self.pause(&mut backoff).await {
                                return Outcome::Stopped { position: last };
                            }
                            continue 'subscribe;
                        }
                        Err(BatchError::Poison { index, error }) => {
                            return self
                                .poisoned(last, &items, index, error, &mut backoff)
                                .await;
                        }
                    }
                }
                match read_error {
                    None => {}
                    Some(ReadError::Corrupt { position, reason }) => {
                        let error = format!("undecodable log entry: {reason}");
                        return self.fail(last, position, error).await;
                    }
                    Some(e @ ReadError::Transport(_)) => {
                        tracing::warn!(projection = name, error = %e, "log read failed; resubscribing");
                        if !self.pause(&mut backoff).await {
                            return Outcome::Stopped { position: last };
                        }
                        continue 'subscribe;
                    }
                }
                if self.reached(last) {
                    return Outcome::ReachedHead { position: last };
                }
            }
        }
    }

    fn reached(&self, position: u64) -> bool {
        matches!(self.config.until, Some(target) if position >= target)
    }

    /// Sleeps for the next backoff step; false if shutdown came first.
    async fn pause(&self, backoff: &mut Backoff) -> bool {
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = tokio::time::sleep(backoff.take()) => true,
        }
    }

    /// One batch in one transaction; returns the new checkpoint.
    #[tracing::instrument(
        name = "projector_batch",
        skip_all,
        fields(
            projection = C::NAME,
            from = items.first().map(C::position),
            to = items.last().map(C::position),
            events = items.len(),
        )
    )]
    async fn commit(&self, expected: u64, items: &[C::Item]) -> Result<u64, BatchError> {
        match self.commit_with(expected, items, Mode::Many).await {
            // The bulk write does not say which item failed: find it one by one.
            Err(BatchError::Poison { .. }) if items.len() > 1 => {
                self.commit_with(expected, items, Mode::OneByOne).await
            }
            other => other,
        }
    }

    async fn commit_with(
        &self,
        expected: u64,
        items: &[C::Item],
        mode: Mode,
    ) -> Result<u64, BatchError> {
        let transient = |e: sqlx::Error| BatchError::Transient(e.into());
        let mut tx = self.pool.begin().await.map_err(transient)?;
        let current = checkpoint::lock(&mut tx, C::NAME)
            .await
            .map_err(transient)?;
        if current != expected {
            let _ = tx.rollback().await;
            return Err(BatchError::Moved);
        }
        let failed = match mode {
            Mode::Many => self
                .consumer
                .apply_many(&mut tx, items)
                .await
                .err()
                .map(|e| (0, e)),
            Mode::OneByOne => {
                let mut failed = None;
                for (index, item) in items.iter().enumerate() {
                    if let Err(error) = self.consumer.apply(&mut tx, item).await {
                        failed = Some((index, error));
                        break;
                    }
                }
                failed
            }
        };
        if let Some((index, error)) = failed {
            let _ = tx.rollback().await;
            return Err(if error.is_transient() {
                BatchError::Transient(error)
            } else {
                BatchError::Poison { index, error }
            });
        }
        let position = items.last().map(C::position).unwrap_or(expected);
        checkpoint::advance(&mut tx, C::NAME, position)
            .await
            .map_err(transient)?;
        // If the commit's outcome is unknown, the retry re-reads the checkpoint: either
        // the batch is there (and is skipped) or it is not (and is applied again).
        tx.commit().await.map_err(transient)?;
        Ok(position)
    }

    /// Commits what came before the poison item, records the failure, stops.
    async fn poisoned(
        &self,
        mut last: u64,
        items: &[C::Item],
        index: usize,
        error: ProjectionError,
        backoff: &mut Backoff,
    ) -> Outcome {
        if index > 0 {
            loop {
                match self.commit(last, &items[..index]).await {
                    Ok(position) => {
                        last = position;
                        break;
                    }
                    // The prefix applied cleanly a moment ago inside the failed batch;
                    // anything else now is the database, or someone else's progress.
                    Err(BatchError::Transient(e)) => {
                        tracing::warn!(projection = C::NAME, error = %e, "retrying the batch before a poison event");
                        if !self.pause(backoff).await {
                            return Outcome::Stopped { position: last };
                        }
                    }
                    Err(BatchError::Moved) | Err(BatchError::Poison { .. }) => break,
                }
            }
        }
        self.fail(last, C::position(&items[index]), error.to_string())
            .await
    }

    async fn fail(&self, last: u64, position: u64, error: String) -> Outcome {
        tracing::error!(
            projection = C::NAME,
            position,
            checkpoint = last,
            error = %error,
            "poison event: projection stopped"
        );
        if let Err(e) =
            checkpoint::record_failure(&self.pool, C::NAME, last, position, &error).await
        {
            tracing::error!(projection = C::NAME, error = %e, "cannot record the failure");
        }
        Outcome::Failed { position, error }
    }
}

/// Waits until this process holds projection `name`'s advisory lock (None: shutdown).
/// The lock lives on the returned connection, detached from the pool: dropping it
/// releases the lock (a pooled connection would keep holding it).
pub(crate) async fn lead(
    pool: &PgPool,
    name: &str,
    shutdown: &CancellationToken,
) -> Option<sqlx::PgConnection> {
    let mut waiting_logged = false;
    loop {
        if shutdown.is_cancelled() {
            return None;
        }
        if let Ok(mut conn) = pool.acquire().await {
            let got: Result<bool, _> = sqlx::query_scalar(
                "SELECT pg_try_advisory_lock(hashtext('precinct.projection.' || $1))",
            )
            .bind(name)
            .fetch_one(&mut *conn)
            .await;
            if let Ok(true) = got {
                tracing::info!(projection = name, "projector is the active one");
                return Some(conn.detach());
            }
        }
        if !waiting_logged {
            tracing::info!(
                projection = name,
                "another process runs this projector; standing by"
            );
            waiting_logged = true;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
