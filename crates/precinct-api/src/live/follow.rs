//! The hub's JetStream side: the two followers that feed the [`Registry`] (positions,
//! the event log), and the replays a reconnecting client catches up with when the ring
//! no longer holds what it missed. Thin loops: frames come from [`super::frames`], the
//! fan-out is the registry's, pauses after failures are the shared
//! [`Backoff`](precinct_retry::Backoff).
//!
//! [`Registry`]: super::registry::Registry

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use precinct_eventlog::positions::{Consumed, RecordedMove, Start, TailCheck};
use precinct_eventlog::{ReadError, RecordedEvent};
use precinct_retry::Backoff;
use tokio::sync::mpsc;

use super::frames::{position_frame, Frame, Reader, Source};
use super::hub::LiveHub;
use super::registry::{Delivery, Scope};

/// How often the positions follower looks for a reconnect to NATS while idle.
const RECONNECT_CHECK: Duration = Duration::from_secs(1);
/// How many failed or idle reads in a row a replay tries (the first and three more)
/// before skipping ahead.
const REPLAY_ATTEMPTS: u32 = 4;
/// How long a step of catching up may wait for JetStream before giving up on it.
const REPLAY_IDLE: Duration = Duration::from_secs(5);
/// How long the hub may take to load the last positions at start before serving.
const WARM_UP: Duration = Duration::from_secs(5);
/// Pauses after a failed read or subscription: doubling from this…
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// …up to this.
const MAX_PAUSE: Duration = Duration::from_secs(5);

impl LiveHub {
    fn backoff(&self) -> Backoff {
        Backoff::new(FIRST_PAUSE, MAX_PAUSE).until(&self.inner.shutdown)
    }

    /// Follows the positions stream: the last position of every patrol first (the
    /// snapshot), then everything new. After every reconnect to NATS, before fanning
    /// out anything more, it checks that the stream still holds the last positions it
    /// fanned out: a single node persisting asynchronously (ADR 0005) may come back
    /// from a `kill -9` without its last second, and then gives those sequences to new
    /// positions, which a consumer resuming after the old ones would skip. If so, the
    /// hub rewinds to what the stream kept ([`Registry::rewind_positions`]) and
    /// follows again from there.
    ///
    /// [`Registry::rewind_positions`]: super::registry::Registry::rewind_positions
    pub(super) async fn follow_positions(self) {
        let shutdown = self.inner.shutdown.clone();
        let registry = self.inner.registry.clone();
        let positions = &self.inner.positions;
        let mut backoff = self.backoff();
        let read = || positions.head();
        let Some(mut start_head) = retry(&mut backoff, "read the positions stream", read).await
        else {
            return;
        };
        let mut warming = start_head > 0;
        if !warming {
            self.set_ready(Source::Positions);
        }
        let warm_deadline = tokio::time::Instant::now() + WARM_UP;
        let mut start = Start::LastPerPatrol;
        // What was fanned out, checked after every reconnect.
        let mut fanned = TailCheck::new(positions, self.inner.config.recent);
        let mut check = tokio::time::interval(RECONNECT_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let subscribe = || positions.subscribe(start);
            let Some(stream) = retry(&mut backoff, "subscribe to positions", subscribe).await
            else {
                return;
            };
            // Frames of one chunk go out under one lock, back to back: keep a chunk well
            // below a client's buffer so a burst alone never drops a healthy client.
            let chunk = (self.inner.config.client_buffer / 4).clamp(1, 256);
            let mut chunks = stream.ready_chunks(chunk);
            // Follow again at once (no pause): after a reconnect, rather than wait for
            // the consumer to notice its server went away (missed heartbeats: seconds).
            let mut again = false;
            loop {
                let chunk = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(warm_deadline), if warming => {
                        tracing::warn!("live: last positions not loaded in time; serving anyway");
                        registry.dispatch(Source::Positions, 0, Vec::new(), Delivery::Seed);
                        warming = false;
                        self.set_ready(Source::Positions);
                        continue;
                    }
                    _ = check.tick() => {
                        if !fanned.reconnected(positions) {
                            continue;
                        }
                        Vec::new()
                    }
                    chunk = chunks.next() => match chunk {
                        Some(chunk) => chunk,
                        None => break,
                    },
                };
                let mut frames = Vec::with_capacity(chunk.len());
                let mut moves = Vec::with_capacity(chunk.len());
                let mut through = 0;
                let mut broken = false;
                for item in chunk {
                    match item {
                        Ok(m) => {
                            through = m.seq;
                            moves.push(Consumed::from(&m));
                            frames.push(Arc::new(position_frame(&m)));
                        }
                        Err(ReadError::Corrupt { position, reason }) => {
                            tracing::error!(seq = position, %reason, "live: undecodable position skipped");
                            through = position;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "live: positions read failed; resubscribing");
                            broken = true;
                            break;
                        }
                    }
                }
                if fanned.reconnected(positions) {
                    // Check what was fanned out before the reconnect only, and fan out
                    // nothing read since (it is read again): a position read after it
                    // may sit above a lost range and hide it.
                    let newest = fanned.newest();
                    match fanned.check(positions).await {
                        Ok(None) => {
                            tracing::info!(
                                newest = newest.unwrap_or(0),
                                "live: reconnected; the positions stream still holds what was fanned out"
                            );
                            again = true;
                            break;
                        }
                        Ok(Some(to)) => {
                            let let_go = registry.rewind_positions(to);
                            start_head = start_head.min(to);
                            tracing::warn!(
                                kept_through = to,
                                lost_through = newest.unwrap_or(to),
                                watchers_let_go = let_go,
                                "live: the positions stream came back without its last positions; following again after what it kept"
                            );
                            again = true;
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "live: cannot check the positions stream after a reconnect; resubscribing");
                            break;
                        }
                    }
                }
                if through > 0 || !frames.is_empty() {
                    let delivery = if warming {
                        Delivery::Seed
                    } else {
                        Delivery::Live
                    };
                    registry.dispatch(Source::Positions, through, frames, delivery);
                    moves.into_iter().for_each(|m| fanned.push(m));
                    backoff.reset();
                }
                if warming && through >= start_head {
                    warming = false;
                    self.set_ready(Source::Positions);
                }
                if broken || again {
                    break;
                }
            }
            if !again && !backoff.pause().await {
                return;
            }
            let (head, _) = registry.heads();
            start = Start::Seq(head[Source::Positions as usize] + 1);
        }
    }

    /// Follows the event log from its head at start.
    pub(super) async fn follow_events(self) {
        let registry = &self.inner.registry;
        let mut backoff = self.backoff();
        let read = || self.inner.log.head();
        let Some(start_head) = retry(&mut backoff, "read the log head", read).await else {
            return;
        };
        registry.dispatch(Source::Events, start_head, Vec::new(), Delivery::Seed);
        self.set_ready(Source::Events);
        loop {
            let (head, _) = registry.heads();
            let from = head[Source::Events as usize] + 1;
            let subscribe = || self.inner.log.subscribe(from);
            let Some(mut events) = retry(&mut backoff, "subscribe to the log", subscribe).await
            else {
                return;
            };
            loop {
                let item = tokio::select! {
                    biased;
                    _ = self.inner.shutdown.cancelled() => return,
                    item = events.next() => item,
                };
                match item {
                    None => break,
                    Some(Ok(event)) => {
                        let frames = self.event_frames(&event, Reader::Live).await;
                        registry.dispatch(
                            Source::Events,
                            event.position(),
                            frames.into_iter().map(Arc::new).collect(),
                            Delivery::Live,
                        );
                        backoff.reset();
                    }
                    Some(Err(ReadError::Corrupt { position, reason })) => {
                        tracing::error!(position, %reason, "live: undecodable event skipped");
                        registry.dispatch(Source::Events, position, Vec::new(), Delivery::Live);
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "live: log read failed; resubscribing");
                        break;
                    }
                }
            }
            if !backoff.pause().await {
                return;
            }
        }
    }

    /// Sends the position frames after `after` that the replay wants; returns the cursor
    /// reached (`None`: the client left).
    pub(super) async fn replay_positions(&self, after: u64, to: Replay<'_>) -> Option<u64> {
        let positions = &self.inner.positions;
        let subscribe = |cursor: u64| positions.subscribe(Start::Seq(cursor + 1));
        let frame = |m: RecordedMove| async move { vec![position_frame(&m)] };
        replay(subscribe, "positions", after, to, |m| m.seq, frame).await
    }

    /// Sends the event frames after `after` that the replay wants; returns the cursor
    /// reached (`None`: the client left).
    pub(super) async fn replay_events(&self, after: u64, to: Replay<'_>) -> Option<u64> {
        let log = &self.inner.log;
        let subscribe = |cursor: u64| log.subscribe(cursor + 1);
        let frame = |e: RecordedEvent| async move { self.event_frames(&e, Reader::Replay).await };
        replay(
            subscribe,
            "the log",
            after,
            to,
            RecordedEvent::position,
            frame,
        )
        .await
    }
}

/// Runs `attempt` until it succeeds, logging each failure; `None`: shutdown came first.
async fn retry<T, E: std::fmt::Display, Fut>(
    backoff: &mut Backoff,
    what: &str,
    attempt: impl FnMut() -> Fut,
) -> Option<T>
where
    Fut: Future<Output = Result<T, E>>,
{
    let failed = |e: &E| tracing::warn!(error = %e, "live: cannot {what}; retrying");
    backoff.retry(attempt, failed).await.ok()
}

/// Where a replay goes: the frames up to `through` that `scope` wants, into `tx`.
pub(super) struct Replay<'a> {
    pub scope: Scope,
    pub through: u64,
    pub tx: &'a mpsc::Sender<Arc<Frame>>,
}

/// Sends the frames of the items after `after` up to `to.through` that `to.scope` wants,
/// from `subscribe(cursor)` (a stream of the items after `cursor`); returns the cursor
/// reached (`None`: the client left). A read that fails or stays idle (NATS restarting
/// under the replay) is taken up again after a pause from where it stopped, up to
/// [`REPLAY_ATTEMPTS`] times in a row; only then does the replay skip ahead, and the
/// client misses what it could not be sent.
async fn replay<T, S, Fut>(
    subscribe: impl Fn(u64) -> S,
    what: &str,
    after: u64,
    to: Replay<'_>,
    seq: impl Fn(&T) -> u64,
    mut frame: impl FnMut(T) -> Fut,
) -> Option<u64>
where
    S: Future<Output = Result<BoxStream<'static, Result<T, ReadError>>, ReadError>>,
    Fut: Future<Output = Vec<Frame>>,
{
    let mut cursor = after;
    let mut failures = 0;
    let mut pause = FIRST_PAUSE;
    'subscribe: while cursor < to.through {
        if failures > 0 {
            if failures >= REPLAY_ATTEMPTS {
                tracing::warn!(
                    cursor,
                    through = to.through,
                    "live: cannot replay {what}; skipping ahead"
                );
                break;
            }
            if to.tx.is_closed() {
                return None;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
        let mut stream = match subscribe(cursor).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "live: replay of {what} cannot subscribe; retrying");
                failures += 1;
                continue;
            }
        };
        while cursor < to.through {
            match tokio::time::timeout(REPLAY_IDLE, stream.next()).await {
                Ok(Some(Ok(item))) => {
                    if seq(&item) > to.through {
                        break 'subscribe;
                    }
                    cursor = seq(&item);
                    failures = 0;
                    for f in frame(item).await {
                        if to.scope.wants(&f) {
                            to.tx.send(Arc::new(f)).await.ok()?;
                        }
                    }
                }
                Ok(Some(Err(ReadError::Corrupt { position, .. }))) => cursor = position,
                Ok(Some(Err(_)) | None) | Err(_) => {
                    failures += 1;
                    continue 'subscribe;
                }
            }
        }
    }
    Some(to.through)
}
