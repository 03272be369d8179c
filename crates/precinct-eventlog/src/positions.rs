//! Live patrol positions: the high-rate path, on a JetStream stream of its own.
//!
//! A GPS ping is not an event of the patrol aggregate: it decides nothing, no command
//! depends on it, and there are orders of magnitude more of them than of anything else.
//! So positions live in their own stream (`POSITIONS` by default) with one subject per
//! patrol, `<positions_subject_prefix>.<patrol_id>`, and the body of each message is a
//! [`PatrolMoved`] (JSON, schema `schemas/positions/PatrolMoved.v1.json`).
//!
//! How this stream differs from the event log (see ADR 0005):
//! - **Plain publish-and-ack.** No expected version, no atomic batch, no de-duplication
//!   id: [`PositionLog::publish`] answers the stream sequence once JetStream acknowledged.
//! - **Retention by age** (`max_age`, 7 days by default): old pings expire; the
//!   down-sampled track in PostgreSQL is what is kept longer.
//! - **Asynchronous persistence** on a single replica (`persist_mode: async`): an
//!   acknowledged ping may be lost if the server loses power within about a second.
//!   A lost second of pings is acceptable; a lost report is not, which is why the event
//!   log keeps `sync_interval: always` semantics.
//!
//! Reads: the last position of one patrol by direct get (`last_by_subj`), one patrol's
//! pings from a time or sequence on (batched direct get, `next_by_subj`), and ordered
//! consumers over every patrol from a sequence, from now, from a time, or starting with
//! the last position of every patrol ([`Start`]).
//!
//! Main types: [`PositionLog`] (from [`EventLog::positions`]), [`PatrolMoved`],
//! [`RecordedMove`], [`Start`], [`WindowStart`], [`TailCheck`] (what a follower
//! consumed, checked after a reconnect).

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_nats::{Client, HeaderMap};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AppendError, ReadError};
use crate::log::{LogConfig, HDR_EVENT_TYPE};
use crate::EventLog;

/// The type name of a position message (header `Precinct-Event-Type`).
pub const EVENT_TYPE: &str = "PatrolMoved";
/// Schema version of [`PatrolMoved`] (header `Precinct-Schema-Version`).
pub const SCHEMA_VERSION: u32 = 1;
/// Header naming the schema version of a position message.
pub const HDR_SCHEMA_VERSION: &str = "Precinct-Schema-Version";

/// Most messages asked of the server in one batched direct get.
const MAX_DIRECT_BATCH: usize = 1000;

/// One GPS fix of a patrol, as accepted by the API: the body of a position message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatrolMoved {
    pub patrol_id: Uuid,
    /// The patrol's station (patrols never change station), so that subscribers can
    /// filter by station without a lookup.
    pub station_id: Uuid,
    /// The member officer who sent it.
    pub officer_id: Uuid,
    pub latitude: f64,
    pub longitude: f64,
    /// Degrees clockwise from true north, `[0, 360)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<f64>,
    /// Metres per second, `[0, 150]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_mps: Option<f64>,
    /// When the device took the fix.
    pub recorded_at: DateTime<Utc>,
    /// When the API accepted it.
    pub received_at: DateTime<Utc>,
}

/// A position read back, with its stream sequence and the time JetStream stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedMove {
    pub seq: u64,
    pub stored_at: DateTime<Utc>,
    pub moved: PatrolMoved,
}

/// A position someone consumed: its sequence and when the stream stored it — enough to
/// tell later whether the stream still holds that very position
/// ([`PositionLog::kept_through`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumed {
    pub seq: u64,
    pub stored_at: DateTime<Utc>,
}

impl From<&RecordedMove> for Consumed {
    fn from(m: &RecordedMove) -> Self {
        Self {
            seq: m.seq,
            stored_at: m.stored_at,
        }
    }
}

/// Where a subscription over every patrol's positions starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At this stream sequence (inclusive; 0 or 1: the oldest retained).
    Seq(u64),
    /// With what is stored after the subscription was created.
    New,
    /// With the last retained position of every patrol (in sequence order), then live.
    LastPerPatrol,
    /// With the first position stored at or after this time.
    Time(DateTime<Utc>),
}

/// Where a read of one patrol's positions starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowStart {
    /// The first position stored at or after this time.
    Time(DateTime<Utc>),
    /// The first position after this stream sequence.
    After(u64),
}

/// The positions stream. Cheap to clone.
#[derive(Clone)]
pub struct PositionLog {
    client: Client,
    js: jetstream::Context,
    stream: String,
    prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for PositionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PositionLog")
            .field("stream", &self.stream)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// The stream's settings (created or updated by [`EventLog::open`]).
pub(crate) fn stream_config(cfg: &LogConfig) -> stream::Config {
    let max_age = cfg.positions_max_age;
    stream::Config {
        name: cfg.positions_stream.clone(),
        subjects: vec![format!("{}.>", cfg.positions_subject_prefix)],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age,
        // Nothing is de-duplicated, but the window may not exceed the retention.
        duplicate_window: max_age.min(Duration::from_secs(120)),
        num_replicas: cfg.replicas,
        allow_direct: true,
        // Only a single-replica stream may acknowledge before the disk write.
        persist_mode: (cfg.positions_async_persist && cfg.replicas <= 1)
            .then_some(stream::PersistenceMode::Async),
        ..Default::default()
    }
}

impl EventLog {
    /// The positions stream on the same connection.
    pub fn positions(&self) -> PositionLog {
        let cfg = self.config();
        PositionLog {
            client: self.client().clone(),
            js: self.jetstream().clone(),
            stream: cfg.positions_stream.clone(),
            prefix: cfg.positions_subject_prefix.clone(),
            timeout: cfg.ack_timeout,
        }
    }

    /// When the event at `position` was stored; `None` if there is no such event.
    /// (With [`EventLog::first_position_since`], this lines the log up in time with the
    /// positions stream, e.g. to resume a live feed that mixes both.)
    pub async fn stored_at(&self, position: u64) -> Result<Option<DateTime<Utc>>, ReadError> {
        stored_at(self.jetstream(), &self.config().stream, position).await
    }

    /// The first log position stored at or after `at`; `None` if there is none yet.
    pub async fn first_position_since(&self, at: DateTime<Utc>) -> Result<Option<u64>, ReadError> {
        let cfg = self.config();
        let request = serde_json::json!({
            "start_time": rfc3339(at),
            "next_by_subj": format!("{}.>", cfg.subject_prefix),
            "batch": 1,
        });
        let found = direct_batch(self.client(), &cfg.stream, request, cfg.ack_timeout).await?;
        Ok(found.first().map(|m| m.seq))
    }
}

impl PositionLog {
    /// The JetStream stream's name.
    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    /// The subject of one patrol's positions: `<prefix>.<patrol_id>`.
    pub fn subject(&self, patrol: Uuid) -> String {
        format!("{}.{}", self.prefix, patrol)
    }

    /// The subject filter of every patrol's positions: `<prefix>.>`.
    pub fn all_subjects(&self) -> String {
        format!("{}.>", self.prefix)
    }

    /// Stores one position and answers its stream sequence once JetStream acknowledged
    /// it. An error leaves the outcome unknown; publishing the same fix again is
    /// harmless (a repeated ping).
    pub async fn publish(&self, moved: &PatrolMoved) -> Result<u64, AppendError> {
        let sequences = self.publish_many(std::slice::from_ref(moved)).await?;
        sequences
            .first()
            .copied()
            .ok_or_else(|| AppendError::Unknown("no acknowledgement".into()))
    }

    /// Stores several positions in the order given and answers their stream sequences
    /// once JetStream acknowledged every one. The publishes are pipelined (all sent,
    /// then every acknowledgement awaited), so a device uploading what it buffered costs
    /// one round trip, not one per fix. An error leaves the outcome of each fix unknown;
    /// sending the same fixes again is harmless (repeated pings).
    pub async fn publish_many(&self, moves: &[PatrolMoved]) -> Result<Vec<u64>, AppendError> {
        let mut acks = Vec::with_capacity(moves.len());
        for moved in moves {
            let payload = Bytes::from(serde_json::to_vec(moved)?);
            let mut headers = HeaderMap::new();
            headers.insert(HDR_EVENT_TYPE, EVENT_TYPE);
            headers.insert(HDR_SCHEMA_VERSION, "1");
            acks.push(
                self.js
                    .publish_with_headers(self.subject(moved.patrol_id), headers, payload)
                    .await
                    .map_err(|e| AppendError::Unknown(e.to_string()))?,
            );
        }
        let mut sequences = Vec::with_capacity(acks.len());
        for ack in acks {
            let ack = ack.await.map_err(|e| AppendError::Unknown(e.to_string()))?;
            sequences.push(ack.sequence);
        }
        Ok(sequences)
    }

    /// The last retained position of one patrol (direct get `last_by_subj`).
    pub async fn latest(&self, patrol: Uuid) -> Result<Option<RecordedMove>, ReadError> {
        let stream = self
            .js
            .get_stream_no_info(&self.stream)
            .await
            .map_err(transport)?;
        match stream
            .direct_get_last_for_subject(self.subject(patrol))
            .await
        {
            Ok(msg) => Ok(Some(decode(
                msg.sequence,
                from_nats_time(msg.time),
                &msg.payload,
            )?)),
            Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(transport(e)),
        }
    }

    /// Up to `max` (at most 1,000) of one patrol's positions in sequence order, from
    /// `start` on (batched direct get `next_by_subj`).
    pub async fn read_patrol(
        &self,
        patrol: Uuid,
        start: WindowStart,
        max: usize,
    ) -> Result<Vec<RecordedMove>, ReadError> {
        let batch = max.clamp(1, MAX_DIRECT_BATCH);
        let mut request = serde_json::json!({
            "next_by_subj": self.subject(patrol),
            "batch": batch,
        });
        match start {
            WindowStart::Time(at) => request["start_time"] = rfc3339(at).into(),
            // Saturating: a cursor at u64::MAX is past everything, not the start again.
            WindowStart::After(seq) => request["seq"] = seq.saturating_add(1).into(),
        }
        direct_batch(&self.client, &self.stream, request, self.timeout)
            .await?
            .into_iter()
            .map(|m| decode(m.seq, m.stored_at, &m.payload))
            .collect()
    }

    /// How many times this process's NATS connection has been established (the first
    /// connect included): a change means a reconnect since the last look, after which
    /// a single-node stream persisted asynchronously may have lost its tail and will
    /// give the lost sequences to new positions (ADR 0005).
    pub fn connects(&self) -> u64 {
        self.client
            .statistics()
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The last of `consumed` (oldest first) that the stream still holds as it was:
    /// `None` when it still holds the newest (nothing lost), else the sequence after
    /// which it lost everything. A single node persisting this stream asynchronously
    /// (ADR 0005) can come back from a `kill -9` without its last positions and give
    /// their sequences to new ones; a consumer that resumes after what it consumed
    /// would skip those. One direct get when nothing was lost, a binary search (a
    /// stream loses a tail) when something was.
    ///
    /// A position below the stream's first sequence aged out (retention): it counts as
    /// kept.
    pub async fn kept_through(&self, consumed: &[Consumed]) -> Result<Option<u64>, ReadError> {
        if consumed.is_empty() {
            return Ok(None);
        }
        let stream = self.js.get_stream(&self.stream).await.map_err(transport)?;
        let first = stream.cached_info().state.first_sequence;
        let holds = |c: Consumed| async move {
            Ok(c.seq < first || self.stored_at(c.seq).await? == Some(c.stored_at))
        };
        kept_through(consumed, holds).await
    }

    /// The sequence of the last stored position (0: none yet).
    pub async fn head(&self) -> Result<u64, ReadError> {
        let stream = self.js.get_stream(&self.stream).await.map_err(transport)?;
        Ok(stream.cached_info().state.last_sequence)
    }

    /// When the position at `seq` was stored; `None` if it does not exist (any more).
    pub async fn stored_at(&self, seq: u64) -> Result<Option<DateTime<Utc>>, ReadError> {
        stored_at(&self.js, &self.stream, seq).await
    }

    /// The first sequence stored at or after `at`; `None` if there is none yet.
    pub async fn first_since(&self, at: DateTime<Utc>) -> Result<Option<u64>, ReadError> {
        let request = serde_json::json!({
            "start_time": rfc3339(at),
            "next_by_subj": self.all_subjects(),
            "batch": 1,
        });
        let found = direct_batch(&self.client, &self.stream, request, self.timeout).await?;
        Ok(found.first().map(|m| m.seq))
    }

    /// Every patrol's positions in sequence order from `start`, live and never-ending:
    /// one ordered JetStream consumer. A message that does not decode is an
    /// `Err(ReadError::Corrupt)` item; the stream goes on after it.
    pub async fn subscribe(
        &self,
        start: Start,
    ) -> Result<BoxStream<'static, Result<RecordedMove, ReadError>>, ReadError> {
        let stream = self
            .js
            .get_stream_no_info(&self.stream)
            .await
            .map_err(transport)?;
        let deliver_policy = match start {
            Start::Seq(seq) if seq <= 1 => consumer::DeliverPolicy::All,
            Start::Seq(seq) => consumer::DeliverPolicy::ByStartSequence {
                start_sequence: seq,
            },
            Start::New => consumer::DeliverPolicy::New,
            Start::LastPerPatrol => consumer::DeliverPolicy::LastPerSubject,
            Start::Time(at) => consumer::DeliverPolicy::ByStartTime {
                start_time: to_nats_time(at)?,
            },
        };
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: self.all_subjects(),
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(transport)?;
        let messages = consumer.messages().await.map_err(transport)?;
        Ok(messages
            .map(|item| {
                let msg = item.map_err(transport)?;
                let info = msg.info().map_err(transport)?;
                decode(
                    info.stream_sequence,
                    from_nats_time(info.published),
                    &msg.payload,
                )
            })
            .boxed())
    }
}

/// What a follower of the positions stream consumed (its newest `remember` positions),
/// to check after every reconnect to NATS that the stream still holds it: a single node
/// persisting asynchronously (ADR 0005) may come back from a `kill -9` without its last
/// positions and give their sequences to new ones, which a consumer resuming after the
/// old ones would skip. The hub and the roster follow the stream this way.
#[derive(Debug)]
pub struct TailCheck {
    /// The connection count when the stream was last checked.
    connects: u64,
    /// Oldest first.
    consumed: VecDeque<Consumed>,
    remember: usize,
}

impl TailCheck {
    /// Nothing consumed yet; the connection as it is now counts as checked.
    pub fn new(log: &PositionLog, remember: usize) -> Self {
        Self {
            connects: log.connects(),
            consumed: VecDeque::new(),
            remember: remember.max(1),
        }
    }

    /// Whether this process connected to NATS again since the last check: what is
    /// read from here on waits for [`check`](Self::check).
    pub fn reconnected(&self, log: &PositionLog) -> bool {
        log.connects() != self.connects
    }

    /// Remembers a consumed position (forgetting the oldest beyond `remember`).
    pub fn push(&mut self, consumed: Consumed) {
        self.consumed.push_back(consumed);
        if self.consumed.len() > self.remember {
            self.consumed.pop_front();
        }
    }

    /// The newest position remembered.
    pub fn newest(&self) -> Option<u64> {
        self.consumed.back().map(|c| c.seq)
    }

    /// Forgets what was consumed after `seq` (it will be read again).
    pub fn forget_after(&mut self, seq: u64) {
        self.consumed.retain(|c| c.seq <= seq);
    }

    /// Checks the stream against what was consumed ([`PositionLog::kept_through`]):
    /// `None` when it still holds it all, `Some(to)` when it lost what came after `to`
    /// (forgotten here; the follower reads again from there). Either way the check is
    /// done until the next reconnect; an error leaves it to do.
    pub async fn check(&mut self, log: &PositionLog) -> Result<Option<u64>, ReadError> {
        let now = log.connects();
        let kept = log.kept_through(self.consumed.make_contiguous()).await?;
        if let Some(to) = kept {
            self.forget_after(to);
        }
        self.connects = now;
        Ok(kept)
    }
}

/// [`PositionLog::kept_through`] over any `holds` (does the stream hold this position
/// as it was?); when it lost all of `consumed`, the sequence before the oldest.
async fn kept_through<Fut>(
    consumed: &[Consumed],
    holds: impl Fn(Consumed) -> Fut,
) -> Result<Option<u64>, ReadError>
where
    Fut: std::future::Future<Output = Result<bool, ReadError>>,
{
    let Some(&newest) = consumed.last() else {
        return Ok(None);
    };
    if holds(newest).await? {
        return Ok(None);
    }
    // consumed[..lo] are held, consumed[hi] is lost.
    let (mut lo, mut hi) = (0, consumed.len() - 1);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if holds(consumed[mid]).await? {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(Some(match lo {
        0 => consumed[0].seq.saturating_sub(1),
        _ => consumed[lo - 1].seq,
    }))
}

fn transport(e: impl std::fmt::Display) -> ReadError {
    ReadError::Transport(e.to_string())
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn from_nats_time(t: async_nats::datetime::DateTime) -> DateTime<Utc> {
    let nanos = i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX);
    DateTime::from_timestamp_nanos(nanos)
}

fn to_nats_time(at: DateTime<Utc>) -> Result<async_nats::datetime::DateTime, ReadError> {
    let nanos = i128::from(at.timestamp_nanos_opt().unwrap_or(0));
    async_nats::datetime::from_nanos(nanos)
        .map_err(|e| ReadError::Transport(format!("start time out of range: {e}")))
}

fn decode(seq: u64, stored_at: DateTime<Utc>, payload: &[u8]) -> Result<RecordedMove, ReadError> {
    let moved = serde_json::from_slice(payload).map_err(|e| ReadError::Corrupt {
        position: seq,
        reason: e.to_string(),
    })?;
    Ok(RecordedMove {
        seq,
        stored_at,
        moved,
    })
}

async fn stored_at(
    js: &jetstream::Context,
    stream: &str,
    seq: u64,
) -> Result<Option<DateTime<Utc>>, ReadError> {
    if seq == 0 {
        return Ok(None);
    }
    let stream = js.get_stream_no_info(stream).await.map_err(transport)?;
    match stream.direct_get(seq).await {
        Ok(msg) => Ok(Some(from_nats_time(msg.time))),
        Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => Ok(None),
        Err(e) => Err(transport(e)),
    }
}

/// One message of a batched direct get.
struct RawMsg {
    seq: u64,
    stored_at: DateTime<Utc>,
    payload: Bytes,
}

/// A batched direct get (`$JS.API.DIRECT.GET.<stream>` with `batch`): the messages up
/// to the end-of-batch marker, or none when nothing matches.
async fn direct_batch(
    client: &Client,
    stream: &str,
    request: serde_json::Value,
    timeout: Duration,
) -> Result<Vec<RawMsg>, ReadError> {
    let api = format!("$JS.API.DIRECT.GET.{stream}");
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.map_err(transport)?;
    client
        .publish_with_reply(api, inbox, request.to_string().into())
        .await
        .map_err(transport)?;
    let mut out = Vec::new();
    loop {
        let msg = tokio::time::timeout(timeout, sub.next())
            .await
            .map_err(|_| ReadError::Transport("direct get timed out".into()))?
            .ok_or_else(|| ReadError::Transport("direct get subscription closed".into()))?;
        if let Some(status) = msg.status {
            match status.as_u16() {
                204 | 404 => break, // end of batch; nothing (more) matches
                other => {
                    let _ = sub.unsubscribe().await;
                    return Err(ReadError::Transport(format!(
                        "direct get status {other}: {}",
                        msg.description.unwrap_or_default()
                    )));
                }
            }
        }
        let headers = msg.headers.unwrap_or_default();
        let seq = headers
            .get("Nats-Sequence")
            .and_then(|v| v.as_str().parse::<u64>().ok())
            .ok_or_else(|| ReadError::Corrupt {
                position: 0,
                reason: "direct get reply without Nats-Sequence".into(),
            })?;
        let stored_at = headers
            .get("Nats-Time-Stamp")
            .and_then(|v| DateTime::parse_from_rfc3339(v.as_str()).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        out.push(RawMsg {
            seq,
            stored_at,
            payload: msg.payload,
        });
    }
    let _ = sub.unsubscribe().await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn consumed_of(seqs: std::ops::RangeInclusive<u64>) -> Vec<Consumed> {
        seqs.map(|seq| Consumed {
            seq,
            stored_at: DateTime::from_timestamp(1_800_000_000 + seq as i64, 0).expect("a time"),
        })
        .collect()
    }

    /// What the stream holds: `kept` as fanned out, then `reused` sequences with
    /// other (later) times.
    async fn after_loss(consumed: &[Consumed], kept: u64, reused: u64) -> Option<u64> {
        let mut stream: HashMap<u64, DateTime<Utc>> = HashMap::new();
        for f in consumed.iter().filter(|f| f.seq <= kept) {
            stream.insert(f.seq, f.stored_at);
        }
        for seq in kept + 1..=reused {
            let later = DateTime::from_timestamp(1_900_000_000 + seq as i64, 0).expect("a time");
            stream.insert(seq, later);
        }
        let stream = &stream;
        let holds = |f: Consumed| async move { Ok(stream.get(&f.seq) == Some(&f.stored_at)) };
        kept_through(consumed, holds).await.expect("no read fails")
    }

    #[tokio::test]
    async fn a_stream_that_kept_everything_consumed_is_not_rewound() {
        let out = consumed_of(1..=100);
        assert_eq!(after_loss(&out, 100, 100).await, None);
        assert_eq!(
            after_loss(&out, 100, 140).await,
            None,
            "new positions since"
        );
        assert_eq!(after_loss(&[], 0, 5).await, None, "nothing fanned out");
    }

    #[tokio::test]
    async fn a_lost_tail_is_found_whether_its_sequences_were_reused_or_not() {
        let out = consumed_of(41..=100);
        for kept in [41, 42, 70, 98, 99] {
            assert_eq!(
                after_loss(&out, kept, kept).await,
                Some(kept),
                "lost after {kept}, none reused"
            );
            assert_eq!(
                after_loss(&out, kept, 100).await,
                Some(kept),
                "lost after {kept}, all reused"
            );
            assert_eq!(
                after_loss(&out, kept, 130).await,
                Some(kept),
                "lost after {kept}, reused and beyond"
            );
        }
        assert_eq!(
            after_loss(&out, 20, 60).await,
            Some(40),
            "lost all it remembers: before the oldest"
        );
    }

    #[test]
    fn a_tail_check_remembers_the_newest_and_forgets_what_is_read_again() {
        let mut tail = TailCheck {
            connects: 1,
            consumed: VecDeque::new(),
            remember: 3,
        };
        assert_eq!(tail.newest(), None);
        consumed_of(1..=5).into_iter().for_each(|c| tail.push(c));
        let seqs = |t: &TailCheck| t.consumed.iter().map(|c| c.seq).collect::<Vec<_>>();
        assert_eq!(seqs(&tail), vec![3, 4, 5], "the oldest are forgotten");
        assert_eq!(tail.newest(), Some(5));
        tail.forget_after(3);
        assert_eq!(seqs(&tail), vec![3]);
        assert_eq!(tail.newest(), Some(3));
    }

    #[tokio::test]
    async fn a_failed_read_is_an_error_not_a_verdict() {
        let out = consumed_of(1..=3);
        let fails = |_| async { Err(ReadError::Transport("down".into())) };
        assert!(kept_through(&out, fails).await.is_err());
    }
}
