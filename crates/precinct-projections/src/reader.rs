//! The shared reader: one ordered subscription to the event log per process, read
//! once, decoded and opened once, and handed as shared batches to every event
//! projection (ADR "one reader per process").
//!
//! ```text
//!                        ┌─▶ queue ─▶ reports  (own transaction + checkpoint)
//! log ─▶ reader ─batch──┼─▶ queue ─▶ patrols
//!   (decode, open once)  └─▶ …
//! ```
//!
//! - Each projection attaches from its own checkpoint and gets the batches from there
//!   through its own bounded queue; it commits batch and checkpoint in one transaction
//!   as before ([`crate::worker`]), skipping what it already applied.
//! - [`Pace::Live`]: a projection whose queue is full (slow, or stuck retrying) is
//!   detached instead of waited for; it drains its queue, then catches up alone on a
//!   private subscription from its checkpoint up to where the reader was, and attaches
//!   again from the reader's recent batches ([`RING`]). One slow or poisoned
//!   projection never stalls the others. A projection far behind at start (further
//!   than [`NEAR`] from the most advanced) catches up the same way.
//! - [`Pace::Lockstep`] (rebuild): the reader waits for every projection to attach, then
//!   for the slowest queue; it reads the next batch while the previous ones commit.
//! - The reader reads only while a projection is attached: a process whose projectors
//!   all stand by (ADR 0006) reads nothing.

use std::collections::VecDeque;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use precinct_eventlog::{EventLog, ReadError, RecordedEvent};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::checkpoint::to_u64;
use crate::worker::{batched, split, Deliveries, Delivery, Subscribe};

/// Batches a projection may have queued before the live reader detaches it.
pub const QUEUE: usize = 16;
/// Recent deliveries the reader keeps, so that a projection that caught up on its own
/// attaches again without a gap.
pub const RING: usize = 64;
/// At start, projections whose checkpoints lie within this many events of the most
/// advanced one share the reader from the least advanced of them; the others catch
/// up on their own first (the default of [`crate::RunOptions::share_within`]).
pub const NEAR: u64 = 100_000;

/// How the reader treats a projection that does not keep up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pace {
    /// Detach it (it catches up on its own).
    Live,
    /// Wait for it; read nothing before `subscribers` projections attached (rebuild).
    Lockstep { subscribers: usize },
}

type Tx = mpsc::Sender<Result<Delivery<RecordedEvent>, ReadError>>;
type Rx = mpsc::Receiver<Result<Delivery<RecordedEvent>, ReadError>>;

enum Attached {
    /// Batches from the requested position on.
    Shared(Rx),
    /// The reader's recent batches do not reach back that far: read alone up to `upto`
    /// first.
    Behind { upto: u64 },
}

struct Attach {
    projection: &'static str,
    from: u64,
    reply: oneshot::Sender<Result<Attached, ReadError>>,
}

struct Sub {
    projection: &'static str,
    tx: Tx,
}

/// A handle on the process's shared reader; cheap to clone.
#[derive(Clone)]
pub(crate) struct Reader {
    requests: mpsc::Sender<Attach>,
    log: EventLog,
    batch_max: usize,
    /// The reader task ends when the last handle goes (a projector aborted, not shut
    /// down, does not leave it reading).
    _task: std::sync::Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Reader {
    /// Starts the reader task for the event projections `names`; it ends with
    /// `shutdown` (or when the last handle is dropped). When the first of them
    /// attaches, it starts from the least advanced of their checkpoints within `near`
    /// of the most advanced one.
    pub(crate) fn spawn(
        log: EventLog,
        pool: PgPool,
        pace: Pace,
        batch_max: usize,
        names: Vec<&'static str>,
        near: u64,
        shutdown: CancellationToken,
    ) -> Reader {
        let (requests, rx) = mpsc::channel(64);
        let task = Task {
            log: log.clone(),
            pool,
            names,
            near,
            pace,
            batch_max: batch_max.max(1),
            stream: None,
            cursor: 0,
            ring: VecDeque::new(),
            subs: Vec::new(),
            started: false,
        };
        let task = tokio::spawn(task.run(rx, shutdown));
        Reader {
            requests,
            log,
            batch_max,
            _task: std::sync::Arc::new(AbortOnDrop(task.abort_handle())),
        }
    }

    /// The worker source of one projection: the shared batches from its checkpoint,
    /// or a private catch-up up to the reader first.
    pub(crate) fn subscriber(&self, projection: &'static str) -> Subscribe<RecordedEvent> {
        let me = self.clone();
        std::sync::Arc::new(move |from| {
            let me = me.clone();
            async move { me.attach(projection, from).await }.boxed()
        })
    }

    async fn attach(
        &self,
        projection: &'static str,
        from: u64,
    ) -> Result<Deliveries<RecordedEvent>, ReadError> {
        let gone = || ReadError::Transport("the shared reader stopped".into());
        let (reply, answer) = oneshot::channel();
        let request = Attach {
            projection,
            from,
            reply,
        };
        self.requests.send(request).await.map_err(|_| gone())?;
        match answer.await.map_err(|_| gone())?? {
            Attached::Shared(rx) => Ok(futures::stream::unfold(rx, |mut rx| async move {
                // The reader dropped this queue (detached, or stopped): rejoin.
                let next = rx.recv().await.unwrap_or(Ok(Delivery::Rejoin));
                Some((next, rx))
            })
            .boxed()),
            Attached::Behind { upto } => {
                tracing::info!(
                    projection,
                    from,
                    upto,
                    "projection behind the shared reader; catching up on its own"
                );
                let own = self.log.subscribe(from).await?;
                let until = until(own, upto);
                let rejoin = futures::stream::once(async { Ok(Delivery::Rejoin) });
                Ok(batched(until, self.batch_max).chain(rejoin).boxed())
            }
        }
    }
}

/// Ends an ordered stream once the item at `upto` (or after it) was yielded.
fn until(
    stream: BoxStream<'static, Result<RecordedEvent, ReadError>>,
    upto: u64,
) -> BoxStream<'static, Result<RecordedEvent, ReadError>> {
    futures::stream::unfold((stream, false), move |(mut inner, done)| async move {
        if done {
            return None;
        }
        let item = inner.next().await?;
        let reached = match &item {
            Ok(e) => e.position() >= upto,
            Err(ReadError::Corrupt { position, .. }) => *position >= upto,
            Err(_) => true,
        };
        Some((item, (inner, reached)))
    })
    .boxed()
}

type Chunks = BoxStream<'static, Vec<Result<RecordedEvent, ReadError>>>;

struct Task {
    log: EventLog,
    pool: PgPool,
    names: Vec<&'static str>,
    near: u64,
    pace: Pace,
    batch_max: usize,
    /// The log subscription (None: idle, nobody attached).
    stream: Option<Chunks>,
    /// The last position read.
    cursor: u64,
    /// The most recent deliveries, oldest first.
    ring: VecDeque<Delivery<RecordedEvent>>,
    subs: Vec<Sub>,
    /// Lockstep: every expected projection attached once.
    started: bool,
}

fn last_position(d: &Delivery<RecordedEvent>) -> u64 {
    match d {
        Delivery::Items(items) => items.last().map_or(0, RecordedEvent::position),
        Delivery::Corrupt { position, .. } => *position,
        Delivery::Rejoin => 0,
    }
}

fn first_position(d: &Delivery<RecordedEvent>) -> u64 {
    match d {
        Delivery::Items(items) => items.first().map_or(0, RecordedEvent::position),
        Delivery::Corrupt { position, .. } => *position,
        Delivery::Rejoin => 0,
    }
}

impl Task {
    async fn run(mut self, mut requests: mpsc::Receiver<Attach>, shutdown: CancellationToken) {
        loop {
            let reading = self.stream.is_some() && !self.subs.is_empty() && self.may_read();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                request = requests.recv() => match request {
                    Some(request) => self.attach(request).await,
                    None => return,
                },
                chunk = next_chunk(&mut self.stream), if reading => match chunk {
                    Some(chunk) => self.deliver(chunk).await,
                    None => self.stop("the log subscription ended"),
                },
            }
            if self.subs.is_empty() && self.stream.is_some() && self.started_or_live() {
                // Nobody to read for: stop reading until someone attaches.
                self.stop("no projection attached");
            }
        }
    }

    fn may_read(&self) -> bool {
        match self.pace {
            Pace::Live => true,
            Pace::Lockstep { subscribers } => self.started || self.subs.len() >= subscribers,
        }
    }

    fn started_or_live(&self) -> bool {
        matches!(self.pace, Pace::Live) || self.started
    }

    fn stop(&mut self, why: &str) {
        tracing::debug!(why, cursor = self.cursor, "shared reader idle");
        self.stream = None;
        self.ring.clear();
        self.subs.clear();
    }

    async fn attach(&mut self, request: Attach) {
        let Attach {
            projection,
            from,
            reply,
        } = request;
        let from = from.max(1);
        if self.stream.is_none() {
            // Where the projections are now (they may have moved while idle, or while
            // another process led them); unknown: where this one is.
            let start = start_from(&positions(&self.pool, &self.names).await, self.near)
                .unwrap_or(from)
                .max(1);
            match self.log.subscribe(start).await {
                Ok(stream) => {
                    self.stream = Some(stream.ready_chunks(self.batch_max).boxed());
                    self.cursor = start - 1;
                    self.ring.clear();
                    tracing::info!(from = start, "shared reader subscribed to the log");
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                    return;
                }
            }
        }
        let oldest = self.ring.front().map_or(self.cursor + 1, first_position);
        if from < oldest {
            let _ = reply.send(Ok(Attached::Behind { upto: self.cursor }));
            return;
        }
        let replay: Vec<_> = self
            .ring
            .iter()
            .filter(|d| last_position(d) >= from)
            .cloned()
            .collect();
        let (tx, rx) = mpsc::channel(QUEUE + replay.len());
        for delivery in replay {
            // Room for all of them: cannot fail.
            let _ = tx.try_send(Ok(delivery));
        }
        if reply.send(Ok(Attached::Shared(rx))).is_err() {
            return;
        }
        tracing::debug!(projection, from, "projection attached to the shared reader");
        self.subs.push(Sub { projection, tx });
        if let Pace::Lockstep { subscribers } = self.pace {
            if self.subs.len() >= subscribers {
                self.started = true;
            }
        }
    }

    async fn deliver(&mut self, chunk: Vec<Result<RecordedEvent, ReadError>>) {
        let (deliveries, failed) = split(chunk);
        for delivery in deliveries {
            let delivery = match delivery {
                Ok(delivery) => delivery,
                Err(e) => {
                    tracing::warn!(error = %e, "shared reader: log read failed; projections resubscribe");
                    // Tell every attached projection, so that it pauses (its back-off)
                    // before it attaches again. Dropping the queues alone made them
                    // rejoin at once, and a read that keeps failing (a sealed event
                    // whose key is not there yet) subscribed again and again, each time
                    // leaving a JetStream consumer, until the server refused new ones
                    // to every follower of the log.
                    let reason = e.to_string();
                    for sub in &self.subs {
                        let _ = sub.tx.try_send(Err(ReadError::Transport(reason.clone())));
                    }
                    self.stop("log read failed");
                    return;
                }
            };
            self.cursor = self.cursor.max(last_position(&delivery));
            let mut kept = Vec::with_capacity(self.subs.len());
            for sub in self.subs.drain(..) {
                let sent = match self.pace {
                    Pace::Live => match sub.tx.try_send(Ok(delivery.clone())) {
                        Ok(()) => true,
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            tracing::info!(
                                projection = sub.projection,
                                position = self.cursor,
                                "projection fell behind the shared reader; detached (it catches up on its own)"
                            );
                            false
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => false,
                    },
                    Pace::Lockstep { .. } => sub.tx.send(Ok(delivery.clone())).await.is_ok(),
                };
                if sent {
                    kept.push(sub);
                }
            }
            self.subs = kept;
            self.ring.push_back(delivery);
            if self.ring.len() > RING {
                self.ring.pop_front();
            }
        }
        if failed {
            self.stop("log read failed");
        }
    }
}

async fn next_chunk(stream: &mut Option<Chunks>) -> Option<Vec<Result<RecordedEvent, ReadError>>> {
    match stream {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// The checkpoints of these projections (none if unreadable).
async fn positions(pool: &PgPool, names: &[&'static str]) -> Vec<u64> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let rows: Result<Vec<i64>, _> =
        sqlx::query_scalar("SELECT position FROM checkpoints WHERE projection = ANY($1)")
            .bind(&names)
            .fetch_all(pool)
            .await;
    rows.map(|r| r.into_iter().map(to_u64).collect())
        .unwrap_or_default()
}

/// Where the shared reader starts: the least advanced of the checkpoints within `near`
/// of the most advanced one, plus one.
pub(crate) fn start_from(checkpoints: &[u64], near: u64) -> Option<u64> {
    let max = *checkpoints.iter().max()?;
    checkpoints
        .iter()
        .filter(|p| max - **p <= near)
        .min()
        .map(|p| p + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: u64) -> RecordedEvent {
        crate::projection::tests::event(position, "test", "Test", serde_json::Value::Null)
    }

    fn corrupt(position: u64) -> ReadError {
        ReadError::Corrupt {
            position,
            reason: "unreadable".into(),
        }
    }

    /// What a stream yields, as positions (`Err(position)` for a corrupt entry, `Err(0)`
    /// for any other failure).
    async fn positions_of(
        stream: BoxStream<'static, Result<RecordedEvent, ReadError>>,
    ) -> Vec<Result<u64, u64>> {
        stream
            .map(|item| match item {
                Ok(e) => Ok(e.position()),
                Err(ReadError::Corrupt { position, .. }) => Err(position),
                Err(_) => Err(0),
            })
            .collect()
            .await
    }

    #[test]
    fn the_reader_starts_after_the_least_advanced_checkpoint_near_the_most_advanced() {
        // Given no checkpoint, there is nothing to start from.
        assert_eq!(start_from(&[], 100), None);
        // Given checkpoints all within `near` of the most advanced one, the least
        // advanced decides (the others skip what they applied).
        assert_eq!(start_from(&[500, 450, 400], 100), Some(401));
        // A checkpoint exactly `near` behind still shares the reader.
        assert_eq!(start_from(&[500, 400], 100), Some(401));
        // One further behind catches up on its own: the reader does not wait for it.
        assert_eq!(start_from(&[500, 399, 450], 100), Some(451));
        // A fresh database (every checkpoint 0) starts at the first position.
        assert_eq!(start_from(&[0, 0], 100), Some(1));
        assert_eq!(start_from(&[7], 0), Some(8));
    }

    #[tokio::test]
    async fn a_catch_up_ends_once_it_reached_the_readers_position() {
        let log = || futures::stream::iter((1..=10).map(|p| Ok(event(p)))).boxed();
        // Given a log of ten events, a catch-up up to 4 yields 1..=4 and ends.
        assert_eq!(
            positions_of(until(log(), 4)).await,
            (1..=4).map(Ok).collect::<Vec<_>>()
        );
        // The position itself may be missing (the reader's last event was read past):
        // the first one after it ends the catch-up too.
        let gappy = futures::stream::iter([1, 2, 6, 7].map(|p| Ok(event(p)))).boxed();
        assert_eq!(
            positions_of(until(gappy, 4)).await,
            vec![Ok(1), Ok(2), Ok(6)]
        );
        // A corrupt entry is passed on (to be quarantined) and ends it when it is at or
        // past the position; before it, the catch-up goes on.
        let with_corrupt = futures::stream::iter([
            Ok(event(1)),
            Err(corrupt(2)),
            Ok(event(3)),
            Err(corrupt(4)),
            Ok(event(5)),
        ])
        .boxed();
        assert_eq!(
            positions_of(until(with_corrupt, 4)).await,
            vec![Ok(1), Err(2), Ok(3), Err(4)]
        );
        // Any other failure is passed on and ends it (the worker resubscribes).
        let failing = futures::stream::iter([
            Ok(event(1)),
            Err(ReadError::Transport("gone".into())),
            Ok(event(2)),
        ])
        .boxed();
        assert_eq!(positions_of(until(failing, 9)).await, vec![Ok(1), Err(0)]);
        // A log that ends before the position ends the catch-up with it.
        assert_eq!(positions_of(until(log(), 99)).await.len(), 10);
    }

    #[test]
    fn a_delivery_spans_from_its_first_to_its_last_position() {
        let items = Delivery::Items(vec![event(3), event(4), event(9)].into());
        assert_eq!((first_position(&items), last_position(&items)), (3, 9));
        let corrupt = Delivery::Corrupt {
            position: 12,
            reason: "unreadable".into(),
        };
        assert_eq!(
            (first_position(&corrupt), last_position(&corrupt)),
            (12, 12)
        );
        let rejoin = Delivery::<RecordedEvent>::Rejoin;
        assert_eq!((first_position(&rejoin), last_position(&rejoin)), (0, 0));
    }
}
