//! The batch loop every projector runs.
//!
//! ```text
//! checkpoint ──subscribe(checkpoint + 1)──▶ next delivered batch, minus what the
//!     ▲                                     checkpoint covers (shared reader, or a
//!     │                                     source's ready items)  │
//!     └── commit: lock row, check, apply all, advance row, notify ◀┘
//! ```
//!
//! - One transaction per batch holds the read-model changes, the quarantine entries
//!   and the new checkpoint, so an abort anywhere (even mid-commit) replays exactly
//!   what did not commit.
//! - A poison item (ADR 0009): the batch is rolled back and applied again item by
//!   item, each under a savepoint; the one that fails is quarantined and its aggregate
//!   held back (its later items are quarantined too, in order), everything else is
//!   applied, and the checkpoint moves past all of it. Items of held aggregates, and
//!   items an operator decided to skip, are never applied. One bad event stops one
//!   aggregate in one projection, never the projection.
//! - A transient failure (database or log unreachable): back off, re-read the
//!   checkpoint, subscribe again.
//! - Shutdown is checked between batches: a batch in flight finishes (commits or
//!   rolls back) first.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use precinct_eventlog::{ReadError, RecordedEvent};
use precinct_retry::Backoff;
use sqlx::{Acquire, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::checkpoint;
use crate::error::ProjectionError;
use crate::leadership::while_leading;
use crate::projection::Projection;
use crate::quarantine::{self, AggregateKey, Entry, Held, Reason};

/// The first pause after a failure (they double up to [`WorkerConfig::max_backoff`]).
const FIRST_PAUSE: Duration = Duration::from_millis(100);

/// How a projector's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Shutdown was requested; everything up to `position` is committed.
    Stopped { position: u64 },
    /// It applied (or quarantined) everything up to at least the target position
    /// (rebuild).
    ReachedHead { position: u64 },
}

/// Something a worker folds into PostgreSQL, item by item, in source order.
pub(crate) trait Consumer: Send + Sync + 'static {
    type Item: Clone + Send + Sync + 'static;
    const NAME: &'static str;
    fn position(item: &Self::Item) -> u64;
    /// What the quarantine records of the item, and which aggregate it belongs to.
    fn entry(item: &Self::Item) -> Entry;
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

    fn entry(item: &RecordedEvent) -> Entry {
        quarantine::event_entry(item)
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

/// An ordered source subscription, item by item.
pub(crate) type ItemStream<T> = BoxStream<'static, Result<T, ReadError>>;

/// What a worker's source delivers, in source order.
#[derive(Debug)]
pub(crate) enum Delivery<T> {
    /// Consecutive items, decoded once and shared (the shared reader hands the same
    /// batch to every projection).
    Items(Arc<[T]>),
    /// An entry whose envelope cannot be read: quarantined alone, then read on.
    Corrupt { position: u64, reason: String },
    /// This subscription is over by design (the projection fell behind the shared
    /// reader, or its catch-up reached it): subscribe again from the checkpoint, now.
    Rejoin,
}

impl<T> Clone for Delivery<T> {
    fn clone(&self) -> Self {
        match self {
            Delivery::Items(items) => Delivery::Items(items.clone()),
            Delivery::Corrupt { position, reason } => Delivery::Corrupt {
                position: *position,
                reason: reason.clone(),
            },
            Delivery::Rejoin => Delivery::Rejoin,
        }
    }
}

/// An ordered source subscription, batch by batch.
pub(crate) type Deliveries<T> = BoxStream<'static, Result<Delivery<T>, ReadError>>;
/// Subscribes to a source from a position (inclusive).
pub(crate) type Subscribe<T> =
    Arc<dyn Fn(u64) -> BoxFuture<'static, Result<Deliveries<T>, ReadError>> + Send + Sync>;

/// Splits what an item stream has ready (at most `max` items) into deliveries: runs of
/// items, a corrupt entry on its own; a transport failure ends the chunk (and the
/// stream: `true`).
pub(crate) fn split<T>(
    chunk: Vec<Result<T, ReadError>>,
) -> (Vec<Result<Delivery<T>, ReadError>>, bool) {
    let mut out = Vec::new();
    let mut items = Vec::with_capacity(chunk.len());
    for item in chunk {
        match item {
            Ok(item) => items.push(item),
            Err(e) => {
                if !items.is_empty() {
                    out.push(Ok(Delivery::Items(std::mem::take(&mut items).into())));
                }
                match e {
                    ReadError::Corrupt { position, reason } => {
                        out.push(Ok(Delivery::Corrupt { position, reason }));
                    }
                    e => {
                        out.push(Err(e));
                        return (out, true);
                    }
                }
            }
        }
    }
    if !items.is_empty() {
        out.push(Ok(Delivery::Items(items.into())));
    }
    (out, false)
}

/// An item stream as deliveries of what is ready (at most `max` items per batch).
pub(crate) fn batched<T: Send + Sync + 'static>(
    stream: ItemStream<T>,
    max: usize,
) -> Deliveries<T> {
    stream
        .ready_chunks(max.max(1))
        .scan(false, |ended, chunk| {
            if *ended {
                return futures::future::ready(None);
            }
            let (out, end) = split(chunk);
            *ended = end;
            futures::future::ready(Some(futures::stream::iter(out)))
        })
        .flatten()
        .boxed()
}

/// Settings of one worker.
#[derive(Clone)]
pub(crate) struct WorkerConfig {
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
/// statement), or one by one under savepoints (to quarantine the poison ones).
#[derive(Debug, Clone, Copy)]
enum Mode {
    Many,
    OneByOne,
}

enum BatchError {
    /// The checkpoint row is not where this worker left it (another worker, a rebuild).
    Moved,
    Transient(ProjectionError),
    /// `Mode::Many` failed on some item: replay the batch one by one.
    Poison,
}

impl From<sqlx::Error> for BatchError {
    fn from(e: sqlx::Error) -> Self {
        BatchError::Transient(e.into())
    }
}

/// What to do with one item of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Apply,
    /// Its aggregate is held back.
    Hold,
    /// An operator dropped its effect.
    Skip,
}

impl<C: Consumer> Worker<C> {
    /// Runs until shutdown or the target position.
    ///
    /// One active worker per projection across processes: while this one leads
    /// ([`while_leading`]: a session advisory lock); a second process waits as a hot
    /// standby (ADR 0006), and this one stands by again if its lock's session ends. A
    /// rebuild (`until`) does not wait for it.
    #[tracing::instrument(name = "projector", skip_all, fields(projection = C::NAME))]
    pub(crate) async fn run(self) -> Outcome {
        if self.config.until.is_some() {
            return self.project(self.shutdown.clone()).await;
        }
        while_leading(&self.pool, C::NAME, &self.shutdown, |stop| {
            self.project(stop)
        })
        .await
        .unwrap_or(Outcome::Stopped { position: 0 })
    }

    /// Projects from the checkpoint until `shutdown` or the target position.
    async fn project(&self, shutdown: CancellationToken) -> Outcome {
        let name = C::NAME;
        let mut backoff = Backoff::new(FIRST_PAUSE, self.config.max_backoff).until(&shutdown);
        let mut last = 0u64;
        // What this projection holds back: cached, re-read whenever the checkpoint
        // row's quarantine version moves (a repair by an operator, a rebuild).
        let mut held = Held::unknown();
        'subscribe: loop {
            if shutdown.is_cancelled() {
                return Outcome::Stopped { position: last };
            }
            let read = || checkpoint::ensure(&self.pool, name);
            let failed = |e: &sqlx::Error| tracing::warn!(projection = name, error = %e, "cannot read checkpoint; retrying");
            let Ok(row) = backoff.retry(read, failed).await else {
                return Outcome::Stopped { position: last };
            };
            last = row.position();
            if self.reached(last) {
                return Outcome::ReachedHead { position: last };
            }
            let mut stream = match (self.subscribe)(last + 1).await {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(projection = name, error = %e, "cannot subscribe; retrying");
                    if !backoff.pause().await {
                        return Outcome::Stopped { position: last };
                    }
                    continue;
                }
            };
            tracing::debug!(projection = name, from = last + 1, "projector subscribed");
            loop {
                let delivery = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return Outcome::Stopped { position: last },
                    delivery = stream.next() => delivery,
                };
                match delivery {
                    None => {
                        tracing::warn!(projection = name, "log subscription ended; resubscribing");
                        if !backoff.pause().await {
                            return Outcome::Stopped { position: last };
                        }
                        continue 'subscribe;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(projection = name, error = %e, "log read failed; resubscribing");
                        if !backoff.pause().await {
                            return Outcome::Stopped { position: last };
                        }
                        continue 'subscribe;
                    }
                    // Fell behind the shared reader, or caught up with it: from the
                    // checkpoint again, at once.
                    Some(Ok(Delivery::Rejoin)) => continue 'subscribe,
                    Some(Ok(Delivery::Corrupt { position, reason })) => {
                        // The entry's envelope does not decode: nothing says which
                        // aggregate it is. Quarantine it alone and read on after it.
                        match self.unreadable(last, position, &reason).await {
                            Ok(position) => last = position,
                            Err(BatchError::Transient(e)) => {
                                tracing::warn!(projection = name, error = %e, "cannot quarantine an unreadable entry; retrying");
                                if !backoff.pause().await {
                                    return Outcome::Stopped { position: last };
                                }
                                continue 'subscribe;
                            }
                            Err(_) => continue 'subscribe,
                        }
                    }
                    Some(Ok(Delivery::Items(batch))) => {
                        // Items in source order; those already applied (a redelivery,
                        // or a shared batch that started before this checkpoint) are
                        // left out.
                        let fresh = batch.partition_point(|item| C::position(item) <= last);
                        let items = &batch[fresh..];
                        if !items.is_empty() {
                            match self.commit(last, items, &mut held).await {
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
                                    if !backoff.pause().await {
                                        return Outcome::Stopped { position: last };
                                    }
                                    continue 'subscribe;
                                }
                                // The one-by-one replay quarantines instead: not reached.
                                Err(BatchError::Poison) => {
                                    tracing::warn!(projection = name, "batch failed; retrying");
                                    if !backoff.pause().await {
                                        return Outcome::Stopped { position: last };
                                    }
                                    continue 'subscribe;
                                }
                            }
                        }
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
    async fn commit(
        &self,
        expected: u64,
        items: &[C::Item],
        held: &mut Held,
    ) -> Result<u64, BatchError> {
        match self.commit_with(expected, items, held, Mode::Many).await {
            // The bulk write does not say which item failed: find it one by one.
            Err(BatchError::Poison) => {
                self.commit_with(expected, items, held, Mode::OneByOne)
                    .await
            }
            other => other,
        }
    }

    async fn commit_with(
        &self,
        expected: u64,
        items: &[C::Item],
        held: &mut Held,
        mode: Mode,
    ) -> Result<u64, BatchError> {
        let mut tx = self.pool.begin().await?;
        let (current, version) = checkpoint::lock(&mut tx, C::NAME).await?;
        if current != expected {
            let _ = tx.rollback().await;
            return Err(BatchError::Moved);
        }
        if version != held.version {
            *held = quarantine::load(&mut tx, C::NAME, version).await?;
        }
        // The common case (nothing held, nothing skipped, no poison) describes no item.
        let quiet = held.aggregates.is_empty() && held.skips.is_empty();
        let entries: Vec<Entry> = match mode {
            Mode::Many if quiet => Vec::new(),
            _ => items.iter().map(C::entry).collect(),
        };
        let plans: Vec<Plan> = if entries.is_empty() {
            vec![Plan::Apply; items.len()]
        } else {
            entries
                .iter()
                .map(|e| {
                    if held.skips.contains_key(&e.position) {
                        Plan::Skip
                    } else if held.holds(e) {
                        Plan::Hold
                    } else {
                        Plan::Apply
                    }
                })
                .collect()
        };
        // Aggregates this batch quarantines (held from their poison item on).
        let mut poisoned: HashSet<AggregateKey> = HashSet::new();
        let mut done: Vec<Plan> = plans.clone();
        match mode {
            Mode::Many => {
                let result = if plans.iter().all(|p| *p == Plan::Apply) {
                    self.consumer.apply_many(&mut tx, items).await
                } else {
                    let applied: Vec<C::Item> = items
                        .iter()
                        .zip(&plans)
                        .filter(|(_, p)| **p == Plan::Apply)
                        .map(|(i, _)| i.clone())
                        .collect();
                    self.consumer.apply_many(&mut tx, &applied).await
                };
                if let Err(error) = result {
                    let _ = tx.rollback().await;
                    return Err(if error.is_transient() {
                        BatchError::Transient(error)
                    } else {
                        BatchError::Poison
                    });
                }
            }
            Mode::OneByOne => {
                for ((item, entry), done) in items.iter().zip(&entries).zip(done.iter_mut()) {
                    if *done != Plan::Apply {
                        continue;
                    }
                    if entry
                        .aggregate
                        .as_ref()
                        .is_some_and(|a| poisoned.contains(a))
                    {
                        *done = Plan::Hold;
                        continue;
                    }
                    let mut savepoint = tx.begin().await?;
                    match self.consumer.apply(&mut savepoint, item).await {
                        Ok(()) => savepoint.commit().await?,
                        Err(error) if error.is_transient() => {
                            drop(savepoint);
                            let _ = tx.rollback().await;
                            return Err(BatchError::Transient(error));
                        }
                        Err(error) => {
                            savepoint.rollback().await?;
                            tracing::error!(
                                projection = C::NAME,
                                position = entry.position,
                                aggregate = ?entry.aggregate,
                                event_type = %entry.event_type,
                                error = %error,
                                "poison event quarantined: its aggregate is held back in this projection"
                            );
                            let class = quarantine::class(&error);
                            let text = error.to_string();
                            quarantine::record(
                                &mut tx,
                                C::NAME,
                                entry,
                                Reason::Poison,
                                Some((class, &text)),
                            )
                            .await?;
                            if let Some(a) = &entry.aggregate {
                                poisoned.insert(a.clone());
                            }
                        }
                    }
                }
            }
        }
        // What was held back or skipped is recorded too.
        for (entry, done) in entries.iter().zip(&done) {
            match done {
                Plan::Apply => {}
                Plan::Hold => {
                    quarantine::record(&mut tx, C::NAME, entry, Reason::Held, None).await?;
                }
                Plan::Skip => {
                    if let Some(decision) = held.skips.get(&entry.position) {
                        tracing::warn!(
                            projection = C::NAME,
                            position = entry.position,
                            "event skipped by an operator's decision"
                        );
                        quarantine::record_skipped(&mut tx, C::NAME, entry, decision).await?;
                    }
                }
            }
        }
        let position = items.last().map(C::position).unwrap_or(expected);
        checkpoint::advance(&mut tx, C::NAME, position).await?;
        let version = if poisoned.is_empty() {
            None
        } else {
            Some(checkpoint::bump_quarantine(&mut tx, C::NAME).await?)
        };
        // If the commit's outcome is unknown, the retry re-reads the checkpoint: either
        // the batch is there (and is skipped) or it is not (and is applied again).
        tx.commit().await?;
        if let Some(version) = version {
            held.aggregates.extend(poisoned);
            held.version = version;
        }
        Ok(position)
    }

    /// Quarantines an entry whose envelope cannot be read, moving the checkpoint to it.
    async fn unreadable(&self, last: u64, position: u64, reason: &str) -> Result<u64, BatchError> {
        if position <= last {
            return Ok(last);
        }
        let mut tx = self.pool.begin().await?;
        let (current, _) = checkpoint::lock(&mut tx, C::NAME).await?;
        if current != last {
            let _ = tx.rollback().await;
            return Err(BatchError::Moved);
        }
        tracing::error!(
            projection = C::NAME,
            position,
            error = %reason,
            "unreadable log entry quarantined"
        );
        let entry = Entry {
            position,
            aggregate: None,
            event_type: "?".into(),
        };
        let error = format!("undecodable log entry: {reason}");
        quarantine::record(
            &mut tx,
            C::NAME,
            &entry,
            Reason::Poison,
            Some(("unreadable", &error)),
        )
        .await?;
        checkpoint::advance(&mut tx, C::NAME, position).await?;
        tx.commit().await?;
        Ok(position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What deliveries say, in short: `items 1 2`, `corrupt 3`, `rejoin`, `failed`.
    fn shape(out: Vec<Result<Delivery<u64>, ReadError>>) -> Vec<String> {
        out.into_iter()
            .map(|d| match d {
                Ok(Delivery::Items(items)) => {
                    let mut s = "items".to_string();
                    for i in items.iter() {
                        s.push_str(&format!(" {i}"));
                    }
                    s
                }
                Ok(Delivery::Corrupt { position, .. }) => format!("corrupt {position}"),
                Ok(Delivery::Rejoin) => "rejoin".into(),
                Err(_) => "failed".into(),
            })
            .collect()
    }

    fn corrupt(position: u64) -> ReadError {
        ReadError::Corrupt {
            position,
            reason: "unreadable".into(),
        }
    }

    fn down() -> ReadError {
        ReadError::Transport("down".into())
    }

    #[test]
    fn what_is_ready_is_one_batch_and_nothing_ready_is_no_batch() {
        let (out, ended) = split(vec![Ok(1), Ok(2), Ok(3)]);
        assert_eq!(
            (shape(out), ended),
            (vec!["items 1 2 3".to_string()], false)
        );
        let (out, ended) = split(Vec::<Result<u64, ReadError>>::new());
        assert_eq!((shape(out), ended), (Vec::<String>::new(), false));
    }

    #[test]
    fn a_corrupt_entry_is_delivered_alone_in_its_place_and_never_as_an_empty_batch() {
        let (out, ended) = split(vec![Ok(1), Err(corrupt(2)), Ok(3), Ok(4)]);
        assert_eq!(
            (shape(out), ended),
            (
                vec!["items 1".into(), "corrupt 2".into(), "items 3 4".into()],
                false
            )
        );
        // First, and twice in a row: no batch of nothing before or between them.
        let (out, ended) = split(vec![Err(corrupt(1)), Err(corrupt(2)), Ok(3)]);
        assert_eq!(
            (shape(out), ended),
            (
                vec!["corrupt 1".into(), "corrupt 2".into(), "items 3".into()],
                false
            )
        );
    }

    #[test]
    fn a_failed_read_ends_the_chunk_after_what_came_before_it() {
        let (out, ended) = split(vec![Ok(1), Ok(2), Err(down()), Ok(3)]);
        assert_eq!(
            (shape(out), ended),
            (vec!["items 1 2".into(), "failed".into()], true)
        );
        let (out, ended) = split(vec![Err(down()), Ok(1)]);
        assert_eq!((shape(out), ended), (vec!["failed".into()], true));
    }

    #[tokio::test]
    async fn batched_deliveries_hold_at_most_max_items_and_end_at_a_failed_read() {
        let items: Vec<Result<u64, ReadError>> = vec![
            Ok(1),
            Ok(2),
            Ok(3),
            Err(corrupt(4)),
            Ok(5),
            Err(down()),
            Ok(6),
        ];
        let out: Vec<_> = batched(futures::stream::iter(items).boxed(), 2)
            .collect()
            .await;
        assert_eq!(
            shape(out),
            ["items 1 2", "items 3", "corrupt 4", "items 5", "failed"]
        );
        // A batch size of 0 is taken as 1 (never a batch that waits for nothing).
        let out: Vec<_> = batched(futures::stream::iter(vec![Ok(1u64), Ok(2)]).boxed(), 0)
            .collect()
            .await;
        assert_eq!(shape(out), ["items 1", "items 2"]);
    }
}
