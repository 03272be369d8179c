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
use precinct_eventlog::positions::{RecordedMove, Start};
use precinct_eventlog::{ReadError, RecordedEvent};
use precinct_retry::Backoff;
use tokio::sync::mpsc;

use super::frames::{position_frame, Frame, Reader, Source};
use super::hub::LiveHub;
use super::registry::{Delivery, Scope};

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
    /// snapshot), then everything new.
    pub(super) async fn follow_positions(self) {
        let shutdown = self.inner.shutdown.clone();
        let registry = self.inner.registry.clone();
        let mut backoff = self.backoff();
        let read = || self.inner.positions.head();
        let Some(start_head) = retry(&mut backoff, "read the positions stream", read).await else {
            return;
        };
        let mut warming = start_head > 0;
        if !warming {
            self.set_ready(Source::Positions);
        }
        let warm_deadline = tokio::time::Instant::now() + WARM_UP;
        let mut start = Start::LastPerPatrol;
        loop {
            let subscribe = || self.inner.positions.subscribe(start);
            let Some(stream) = retry(&mut backoff, "subscribe to positions", subscribe).await
            else {
                return;
            };
            // Frames of one chunk go out under one lock, back to back: keep a chunk well
            // below a client's buffer so a burst alone never drops a healthy client.
            let chunk = (self.inner.config.client_buffer / 4).clamp(1, 256);
            let mut chunks = stream.ready_chunks(chunk);
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
                    chunk = chunks.next() => chunk,
                };
                let Some(chunk) = chunk else { break };
                let mut frames = Vec::with_capacity(chunk.len());
                let mut through = 0;
                let mut broken = false;
                for item in chunk {
                    match item {
                        Ok(m) => {
                            through = m.seq;
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
                if through > 0 || !frames.is_empty() {
                    let delivery = if warming {
                        Delivery::Seed
                    } else {
                        Delivery::Live
                    };
                    registry.dispatch(Source::Positions, through, frames, delivery);
                    backoff.reset();
                }
                if warming && through >= start_head {
                    warming = false;
                    self.set_ready(Source::Positions);
                }
                if broken {
                    break;
                }
            }
            if !backoff.pause().await {
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
        let stream = self.inner.positions.subscribe(Start::Seq(after + 1)).await;
        let frame = |m: RecordedMove| async move { vec![position_frame(&m)] };
        replay(stream, "positions", after, to, |m| m.seq, frame).await
    }

    /// Sends the event frames after `after` that the replay wants; returns the cursor
    /// reached (`None`: the client left).
    pub(super) async fn replay_events(&self, after: u64, to: Replay<'_>) -> Option<u64> {
        let stream = self.inner.log.subscribe(after + 1).await;
        let frame = |e: RecordedEvent| async move { self.event_frames(&e, Reader::Replay).await };
        replay(stream, "the log", after, to, RecordedEvent::position, frame).await
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

/// Sends the frames of `stream`'s items up to `to.through` that `to.scope` wants;
/// returns the cursor reached (`None`: the client left). A stream that cannot be read,
/// or stays idle, skips ahead: the client misses what it could not be sent.
async fn replay<T, Fut>(
    stream: Result<BoxStream<'static, Result<T, ReadError>>, ReadError>,
    what: &str,
    after: u64,
    to: Replay<'_>,
    seq: impl Fn(&T) -> u64,
    mut frame: impl FnMut(T) -> Fut,
) -> Option<u64>
where
    Fut: Future<Output = Vec<Frame>>,
{
    let mut stream = match stream {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "live: cannot replay {what}; skipping ahead");
            return Some(to.through);
        }
    };
    let mut cursor = after;
    while cursor < to.through {
        match tokio::time::timeout(REPLAY_IDLE, stream.next()).await {
            Ok(Some(Ok(item))) => {
                if seq(&item) > to.through {
                    break;
                }
                cursor = seq(&item);
                for f in frame(item).await {
                    if to.scope.wants(&f) {
                        to.tx.send(Arc::new(f)).await.ok()?;
                    }
                }
            }
            Ok(Some(Err(ReadError::Corrupt { position, .. }))) => cursor = position,
            _ => break,
        }
    }
    Some(to.through)
}
