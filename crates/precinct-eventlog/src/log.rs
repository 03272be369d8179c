//! [`EventLog`]: append, read and subscribe on the JetStream `EVENTS` stream.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_nats::{Client, HeaderMap};
use futures::{Stream, StreamExt};
use uuid::Uuid;

use crate::envelope::{
    Appended, Body, CommandMeta, ExpectedVersion, NewEvent, RecordedEvent, StreamId,
};
use crate::error::{AppendError, LogError, ReadError};
use precinct_retry::Backoff;

/// Header carrying the command id on every event of a command.
pub const HDR_COMMAND_ID: &str = "Precinct-Command-Id";
/// Header on the first event of a command: how many events the command appended.
pub const HDR_COMMAND_SIZE: &str = "Precinct-Command-Size";
/// Header naming the event type, so NATS-native consumers can filter without parsing.
pub const HDR_EVENT_TYPE: &str = "Precinct-Event-Type";

/// JetStream's limit on messages in one atomic batch.
pub const MAX_BATCH: usize = 1000;

/// Most bytes one direct-get batch of a stream read brings at once. Fifty readers of
/// big reports at once stay far below the server's per-connection limit (64 MiB by
/// default), past which it would cut the connection off as a slow consumer.
pub const READ_BATCH_BYTES: usize = 256 * 1024;

/// Most reads of streams one process runs at once for commands (and everything else
/// that is not a query, see [`QUERY_READS_AT_ONCE`]); more wait their turn. Fifty
/// readers of a long report at once otherwise all slow down together (the replies and
/// the opening of sealed fields compete for the same threads) until their replies time
/// out: each would fail where, taking turns, each succeeds.
pub const READS_AT_ONCE: usize = 16;

/// Most reads of streams one process runs at once for queries answered from the log
/// (`as_of`, history: [`EventLog::for_queries`]). A lane of their own: fifty `as_of`
/// reads of a huge report used to queue in front of every command's read of its own
/// small stream and stall every user's commands (review of issue 13, N2). Queries wait
/// behind queries only; commands keep all of [`READS_AT_ONCE`].
pub const QUERY_READS_AT_ONCE: usize = 8;

/// How a read that lost a reply says so (it is retried).
const LOST: &str = "direct get lost a reply";

/// How the log is laid out on JetStream.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Stream name (default `EVENTS`).
    pub stream: String,
    /// Subject prefix; events go to `<prefix>.<aggregate_type>.<id>` (default `events`).
    pub subject_prefix: String,
    /// How long JetStream remembers command ids for de-duplication. Longer than any
    /// client retry; past it, expected-version checks still catch most retries.
    pub duplicate_window: Duration,
    /// Replicas of the stream (1 locally, 3 in a cluster).
    pub replicas: usize,
    /// How long to wait for an append's acknowledgement before the outcome is unknown.
    pub ack_timeout: Duration,
    /// Coalesce concurrent commands into shared atomic batches (one fsync per batch).
    pub group_commit: bool,
    /// Stream and subject of the HTTP request log (see [`crate::requests`]).
    pub requests_stream: String,
    pub requests_subject: String,
    /// KV bucket of wrapped data keys (see `precinct-vault`).
    pub keys_bucket: String,
    /// Stream and subject prefix of live patrol positions (see [`crate::positions`]);
    /// one subject per patrol: `<positions_subject_prefix>.<patrol_id>`.
    pub positions_stream: String,
    pub positions_subject_prefix: String,
    /// How long positions are kept (default 7 days); they expire by age.
    pub positions_max_age: Duration,
    /// Acknowledge a position before it is flushed to disk (JetStream `persist_mode:
    /// async`; only on a single-replica stream). Default: true. See ADR 0005.
    pub positions_async_persist: bool,
    /// At most about this many bytes (as stored) of recently read streams' events kept
    /// in memory, so that a stream read again costs a direct get of what came after
    /// them only (ADR 0040; 0: no cache). Default 32 MiB.
    pub stream_cache_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            stream: "EVENTS".into(),
            subject_prefix: "events".into(),
            duplicate_window: Duration::from_secs(24 * 3600),
            replicas: 1,
            ack_timeout: Duration::from_secs(5),
            group_commit: true,
            requests_stream: "REQUESTS".into(),
            requests_subject: "requests.log".into(),
            keys_bucket: "PRECINCT_KEYS".into(),
            positions_stream: "POSITIONS".into(),
            positions_subject_prefix: "positions".into(),
            positions_max_age: Duration::from_secs(7 * 24 * 3600),
            positions_async_persist: true,
            stream_cache_bytes: 32 << 20,
        }
    }
}

impl LogConfig {
    /// A config whose stream and subjects are unique to `prefix` (used by tests to isolate).
    pub fn isolated(prefix: &str) -> Self {
        Self {
            stream: format!("{}_EVENTS", prefix.to_uppercase()),
            subject_prefix: format!("{prefix}.events"),
            requests_stream: format!("{}_REQUESTS", prefix.to_uppercase()),
            requests_subject: format!("{prefix}.requests"),
            keys_bucket: format!("{}_KEYS", prefix.to_uppercase()),
            positions_stream: format!("{}_POSITIONS", prefix.to_uppercase()),
            positions_subject_prefix: format!("{prefix}.positions"),
            ..Self::default()
        }
    }
}

/// The events one command appends to one stream, with the version it expects.
#[derive(Debug, Clone)]
pub struct StreamWrite {
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

/// Turns stored payloads back into readable ones on every read path (used to open
/// values sealed by envelope encryption). It must not fail for an erased value: it
/// replaces it with what the reader should see instead.
pub trait Opener: Send + Sync + 'static {
    fn open<'a>(
        &'a self,
        data: &'a mut serde_json::Value,
    ) -> futures::future::BoxFuture<'a, Result<(), ReadError>>;
}

/// Precinct's event store on JetStream. Cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    client: Client,
    js: jetstream::Context,
    cfg: LogConfig,
    opener: Option<std::sync::Arc<dyn Opener>>,
    /// Group commit of concurrent commands (None: one batch per command).
    committer: Option<crate::commit::Committer>,
    /// Stream reads under way in this process (see [`READS_AT_ONCE`]).
    reads: std::sync::Arc<tokio::sync::Semaphore>,
    /// Stream reads of queries under way in this process (see [`QUERY_READS_AT_ONCE`]).
    query_reads: std::sync::Arc<tokio::sync::Semaphore>,
    /// Which of the two this handle's reads take a turn in.
    lane: ReadLane,
    /// Recently read streams' events, as stored (ADR 0040; None: off).
    streams: Option<std::sync::Arc<crate::stream_cache::StreamCache>>,
}

/// The read slots a handle of the log uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadLane {
    Commands,
    Queries,
}

impl std::fmt::Debug for dyn Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opener")
    }
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog").field("cfg", &self.cfg).finish()
    }
}

/// A stretch of CPU work that lets other tasks run every [`SLICE`]: opening a long
/// stream from memory waits for nothing (the vault's keys are cached), so several
/// readers of a huge report would otherwise hold every runtime thread and stall other
/// users' commands (`input_bounds::as_of_floods_of_a_huge_report_…`).
struct Slices(std::time::Instant);

/// See [`Slices`].
const SLICE: Duration = Duration::from_micros(100);

impl Slices {
    fn start() -> Self {
        Self(std::time::Instant::now())
    }

    /// Yields to the runtime if this stretch has run for a slice.
    async fn next(&mut self) {
        if self.0.elapsed() >= SLICE {
            tokio::task::yield_now().await;
            self.0 = std::time::Instant::now();
        }
    }
}

/// The outcome of one append, as `precinct_appends_total{outcome}` and
/// `precinct_append_duration_seconds{outcome}` count it (the recorder is the binary's;
/// without one these are no-ops): `appended`, `duplicate` (a command id seen before),
/// `conflict` (wrong expected version: the command decides again), `timeout` (outcome
/// unknown: ack timeout or connection lost), `rejected` and `error`.
fn append_outcome(result: &Result<Appended, AppendError>) -> &'static str {
    match result {
        Ok(a) if a.duplicate => "duplicate",
        Ok(_) => "appended",
        Err(AppendError::WrongExpectedVersion { .. }) => "conflict",
        Err(AppendError::Unknown(_)) => "timeout",
        Err(AppendError::Rejected { .. }) => "rejected",
        Err(_) => "error",
    }
}

fn record_append(result: &Result<Appended, AppendError>, elapsed: Duration) {
    let outcome = append_outcome(result);
    metrics::counter!("precinct_appends_total", "outcome" => outcome).increment(1);
    metrics::histogram!("precinct_append_duration_seconds", "outcome" => outcome)
        .record(elapsed.as_secs_f64());
}

/// Counts the NATS connection's losses and recoveries (`precinct_nats_disconnects_total`,
/// `precinct_nats_reconnects_total`). `seen` is this
/// connection's: its first `Connected` is the initial connection, not a reconnect.
async fn connection_event(seen: Arc<AtomicBool>, event: async_nats::Event) {
    match event {
        async_nats::Event::Connected => {
            if seen.swap(true, Ordering::Relaxed) {
                metrics::counter!("precinct_nats_reconnects_total").increment(1);
            }
        }
        async_nats::Event::Disconnected => {
            metrics::counter!("precinct_nats_disconnects_total").increment(1);
        }
        other => tracing::debug!(event = %other, "NATS connection event"),
    }
}

/// Splits the credentials off a NATS URL (`nats://user:password@host:4222`): async-nats
/// does not read them from the URL, so they are handed to it as options. Percent-encoded
/// characters of the user and password are decoded. Returns the URL without them.
pub fn split_credentials(url: &str) -> (String, Option<(String, String)>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    (
        format!("{scheme}://{host}{path}"),
        Some((percent_decode(user), percent_decode(password))),
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Connect options for `url`, with its user and password if it names them.
pub(crate) fn options_for(url: &str) -> (async_nats::ConnectOptions, String) {
    match split_credentials(url) {
        (bare, Some((user, password))) => (
            async_nats::ConnectOptions::with_user_and_password(user, password),
            bare,
        ),
        (bare, None) => (async_nats::ConnectOptions::new(), bare),
    }
}

/// How long a process starting while JetStream is not answering (a cluster electing
/// leaders after a node was lost) keeps asking before it gives up on a stream's setup.
const STREAM_SETUP_DEADLINE: Duration = Duration::from_secs(30);

/// Creates or updates one stream; a timed-out request or an unavailable JetStream is
/// asked again (pauses doubling from 250 ms to 2 s) until [`STREAM_SETUP_DEADLINE`].
/// Any other refusal (a setting the server will not change) fails at once.
async fn set_up_stream(js: &jetstream::Context, config: stream::Config) -> Result<(), LogError> {
    use jetstream::context::CreateStreamErrorKind as Kind;
    let deadline = tokio::time::Instant::now() + STREAM_SETUP_DEADLINE;
    let mut pause = Duration::from_millis(250);
    loop {
        match js.create_or_update_stream(config.clone()).await {
            Ok(_) => return Ok(()),
            Err(e)
                if matches!(e.kind(), Kind::TimedOut | Kind::JetStreamUnavailable)
                    && tokio::time::Instant::now() + pause < deadline =>
            {
                tracing::warn!(stream = %config.name, error = %e, "stream setup: retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(LogError::Stream(e.to_string())),
        }
    }
}

impl EventLog {
    /// Connects to NATS and makes sure the stream exists with the right settings. The
    /// URL may name the service's NATS user (`nats://precinct:<password>@host:4222`).
    pub async fn connect(url: &str, cfg: LogConfig) -> Result<Self, LogError> {
        let (options, url) = options_for(url);
        let url = url.as_str();
        let client = options
            .name("precinct")
            .event_callback({
                let seen = Arc::new(AtomicBool::new(false));
                move |event| connection_event(seen.clone(), event)
            })
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(|e| LogError::Connect(e.to_string()))?;
        Self::open(client, cfg).await
    }

    /// Whether the NATS connection is up now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Uses an existing connection; creates or updates the stream idempotently.
    pub(crate) async fn open(client: Client, cfg: LogConfig) -> Result<Self, LogError> {
        let mut js = jetstream::new(client.clone());
        js.set_timeout(cfg.ack_timeout);
        let config = stream::Config {
            name: cfg.stream.clone(),
            subjects: vec![format!("{}.>", cfg.subject_prefix)],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            num_replicas: cfg.replicas,
            duplicate_window: cfg.duplicate_window,
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            allow_atomic_publish: true,
            ..Default::default()
        };
        set_up_stream(&js, config).await?;
        set_up_stream(
            &js,
            stream::Config {
                name: cfg.requests_stream.clone(),
                subjects: vec![cfg.requests_subject.clone()],
                storage: stream::StorageType::File,
                num_replicas: cfg.replicas,
                deny_delete: true,
                deny_purge: true,
                allow_direct: true,
                allow_atomic_publish: true,
                ..Default::default()
            },
        )
        .await?;
        set_up_stream(&js, crate::positions::stream_config(&cfg)).await?;
        let mut log = Self {
            client,
            js,
            cfg,
            opener: None,
            committer: None,
            reads: std::sync::Arc::new(tokio::sync::Semaphore::new(READS_AT_ONCE)),
            query_reads: std::sync::Arc::new(tokio::sync::Semaphore::new(QUERY_READS_AT_ONCE)),
            lane: ReadLane::Commands,
            streams: None,
        };
        log.streams = crate::stream_cache::StreamCache::new(log.cfg.stream_cache_bytes)
            .map(std::sync::Arc::new);
        if log.cfg.group_commit {
            log.committer = Some(crate::commit::Committer::start(log.clone()));
        }
        Ok(log)
    }

    /// The same log, whose reads take turns in the queries' lane
    /// ([`QUERY_READS_AT_ONCE`]) instead of the commands' one: for reads that answer a
    /// query straight from the log (`as_of`, history).
    pub fn for_queries(&self) -> EventLog {
        EventLog {
            lane: ReadLane::Queries,
            ..self.clone()
        }
    }

    /// Installs the [`Opener`] every read path applies to payloads.
    pub fn with_opener(mut self, opener: std::sync::Arc<dyn Opener>) -> Self {
        self.opener = Some(opener);
        self
    }

    async fn opened(&self, mut event: RecordedEvent) -> Result<RecordedEvent, ReadError> {
        if let Some(opener) = &self.opener {
            opener.open(&mut event.data).await?;
        }
        Ok(event)
    }

    pub fn config(&self) -> &LogConfig {
        &self.cfg
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// The JetStream key-value bucket `config.bucket` on this log's connection, created
    /// with `config` if it does not exist yet: the vault's data keys
    /// (`precinct-vault`, the one other crate that knows JetStream).
    pub async fn key_value(
        &self,
        config: jetstream::kv::Config,
    ) -> Result<jetstream::kv::Store, LogError> {
        match self.js.get_key_value(&config.bucket).await {
            Ok(kv) => Ok(kv),
            Err(_) => self
                .js
                .create_key_value(config)
                .await
                .map_err(|e| LogError::Stream(e.to_string())),
        }
    }

    /// The JetStream subject of a stream.
    pub fn subject(&self, id: &StreamId) -> String {
        format!(
            "{}.{}.{}",
            self.cfg.subject_prefix, id.aggregate_type, id.id
        )
    }

    /// Appends `events` to one stream atomically. See [`EventLog::append_multi`].
    pub async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        meta: &CommandMeta,
    ) -> Result<Appended, AppendError> {
        self.append_multi(
            vec![StreamWrite {
                stream: stream.clone(),
                expected,
                events,
            }],
            meta,
        )
        .await
    }

    /// Appends the events of one command, possibly to several streams, as one JetStream
    /// atomic batch: all are stored, at consecutive positions, or none is.
    ///
    /// Each stream's expected version is checked by the server under its lock. A command id
    /// seen before appends nothing and answers the original positions (`duplicate: true`).
    pub async fn append_multi(
        &self,
        writes: Vec<StreamWrite>,
        meta: &CommandMeta,
    ) -> Result<Appended, AppendError> {
        let total: usize = writes.iter().map(|w| w.events.len()).sum();
        if total == 0 {
            return Err(AppendError::Empty);
        }
        if total > MAX_BATCH {
            return Err(AppendError::TooLarge(total));
        }
        let command = crate::commit::Command::build(&self.cfg.subject_prefix, &writes, meta)?;
        let started = std::time::Instant::now();
        let result = match &self.committer {
            Some(committer) => committer.submit(command).await,
            None => self.append_one(command).await,
        };
        record_append(&result, started.elapsed());
        result
    }

    /// Appends one command as its own atomic batch, resolving a conflict or duplicate
    /// into its precise outcome.
    pub(crate) async fn append_one(
        &self,
        command: crate::commit::Command,
    ) -> Result<Appended, AppendError> {
        let result = crate::commit::send_batch(&self.client, &self.cfg, vec![&command]).await;
        match result {
            Ok(ack) => Ok(Appended {
                first_position: ack.first,
                position: ack.last,
                duplicate: false,
                original_request: None,
            }),
            Err(crate::commit::BatchError::Conflict { duplicate, actual }) => {
                // Either a retry of a command that already landed, or a real conflict.
                if let Some(found) = self
                    .find_command(&command.first_stream, command.command_id)
                    .await?
                {
                    return Ok(found);
                }
                if duplicate {
                    Err(AppendError::Rejected {
                        code: crate::commit::ERR_BATCH_DUPLICATE_MSG_ID,
                        description: "duplicate command id outside its stream".into(),
                    })
                } else {
                    Err(AppendError::WrongExpectedVersion { actual })
                }
            }
            Err(crate::commit::BatchError::Other(e)) => Err(e),
        }
    }

    /// Looks for an earlier append of `command_id` whose first event is on `stream`.
    pub async fn find_command(
        &self,
        stream: &StreamId,
        command_id: Uuid,
    ) -> Result<Option<Appended>, ReadError> {
        Ok(find_command_in(&self.read(stream).await?, command_id))
    }

    /// All events of one stream in order, with their positions. Empty if it does not exist.
    ///
    /// On the commands' lane, a stream read before in this process is read from the end
    /// of what was read then (ADR 0040): the log never deletes, so what it held then is
    /// still its beginning. Queries ([`EventLog::for_queries`]) read the whole stream:
    /// the direct gets pace a flood of `as_of` reads of a huge report, which would
    /// otherwise all fold at once and hold every runtime thread.
    pub async fn read(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, ReadError> {
        let cache = match (&self.streams, self.lane) {
            (Some(cache), ReadLane::Commands) => cache,
            _ => return self.read_after(stream, 0).await,
        };
        // Held while reading and opening; released before the caller folds.
        let _turn = self.read_turn().await?;
        let cached = cache.get(stream);
        let from = cached
            .as_ref()
            .and_then(|c| c.events.last())
            .map_or(1, |e| e.position() + 1);
        let (raw, _) = self.read_raw(stream, from, usize::MAX).await?;
        metrics::counter!("precinct_stream_cache_events_total", "source" => "memory")
            .increment(cached.as_ref().map_or(0, |c| c.events.len() as u64));
        metrics::counter!("precinct_stream_cache_events_total", "source" => "log")
            .increment(raw.len() as u64);
        let kept = cache.extend(stream, cached, raw);
        self.open_each(kept.events.iter().map(|e| RecordedEvent::clone(e)))
            .await
    }

    /// Opens `events` in order, yielding to the runtime every [`SLICE`] of work.
    async fn open_each(
        &self,
        events: impl ExactSizeIterator<Item = RecordedEvent>,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        let mut out = Vec::with_capacity(events.len());
        let mut slices = Slices::start();
        for event in events {
            slices.next().await;
            out.push(self.opened(event).await?);
        }
        Ok(out)
    }

    /// How many events of `stream` this process keeps in memory (ADR 0040).
    pub fn kept_events(&self, stream: &StreamId) -> usize {
        self.streams
            .as_ref()
            .and_then(|c| c.peek(stream))
            .map_or(0, |k| k.events.len())
    }

    /// A turn in this handle's lane of stream reads.
    async fn read_turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ReadError> {
        let slots = match self.lane {
            ReadLane::Commands => &self.reads,
            ReadLane::Queries => &self.query_reads,
        };
        slots
            .acquire()
            .await
            .map_err(|_| ReadError::Transport("the log is closing".into()))
    }

    /// The events of one stream after `position`.
    pub async fn read_after(
        &self,
        stream: &StreamId,
        position: u64,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        Ok(self.read_range(stream, position, usize::MAX).await?.0)
    }

    /// At most `max` events of one stream after `position`, and whether more follow.
    /// Reads no more of the stream than that (a history page does not load the whole
    /// report).
    pub async fn read_range(
        &self,
        stream: &StreamId,
        position: u64,
        max: usize,
    ) -> Result<(Vec<RecordedEvent>, bool), ReadError> {
        // After u64::MAX comes nothing, not the start of the stream.
        let Some(from) = position.checked_add(1) else {
            return Ok((Vec::new(), false));
        };
        if max == 0 {
            return Ok((Vec::new(), true));
        }
        // Held while reading and opening; released before the caller folds.
        let _turn = self.read_turn().await?;
        let (raw, more) = self.read_raw(stream, from, max).await?;
        let out = self.open_each(raw.into_iter().map(|(e, _)| e)).await?;
        Ok((out, more))
    }

    /// Direct-get batches of one subject from `from_seq`: at most `max` events, and
    /// whether more follow.
    ///
    /// Every batch is checked whole before it is believed: each reply names the sequence
    /// of the reply before it (`Nats-Last-Sequence`, 0 for the first), and the
    /// end-of-batch reply names the last one sent and how many are left. A reply lost
    /// on the way (a slow consumer cut off, a reconnect) fails the read — retried a
    /// couple of times, then a transport error (HTTP 503) — instead of yielding a
    /// stream with a hole in it, which could fold into "no such report" (a wrong 404).
    /// Batches are capped at [`READ_BATCH_BYTES`], so that many readers at once never
    /// make the server cut this connection off as a slow consumer.
    async fn read_raw(
        &self,
        stream: &StreamId,
        from_seq: u64,
        max: usize,
    ) -> Result<(Vec<(RecordedEvent, usize)>, bool), ReadError> {
        let mut backoff =
            Backoff::new(Duration::from_millis(20), Duration::from_millis(40)).attempts(2);
        loop {
            match self.read_raw_once(stream, from_seq, max).await {
                Err(ReadError::Transport(reason)) if reason.starts_with(LOST) => {
                    let Some(pause) = backoff.next_delay() else {
                        return Err(ReadError::Transport(reason));
                    };
                    tracing::warn!(%stream, reason, "direct get lost a reply; reading again");
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }

    async fn read_raw_once(
        &self,
        stream: &StreamId,
        from_seq: u64,
        max: usize,
    ) -> Result<(Vec<(RecordedEvent, usize)>, bool), ReadError> {
        const BATCH: usize = 256;
        let subject = self.subject(stream);
        let api = format!("$JS.API.DIRECT.GET.{}", self.cfg.stream);
        let mut out = Vec::new();
        let mut next = from_seq.max(1);
        // Direct gets are answered by any replica, which may lag behind the leader. Ask the
        // leader (STREAM.MSG.GET is leader-only) for the subject's last position first, and
        // do not stop before the direct gets have reached it.
        let must_reach = if self.cfg.replicas > 1 {
            match self.last_position_from_leader(&subject).await? {
                None => return Ok((Vec::new(), false)),
                Some(last) => last,
            }
        } else {
            0
        };
        let header = |headers: &HeaderMap, name: &str| {
            headers
                .get(name)
                .and_then(|v| v.as_str().parse::<u64>().ok())
        };
        let mut stale_retries = 0u32;
        loop {
            let batch = BATCH.min(max - out.len());
            let inbox = self.client.new_inbox();
            let mut sub = self
                .client
                .subscribe(inbox.clone())
                .await
                .map_err(|e| ReadError::Transport(e.to_string()))?;
            let request = serde_json::json!({
                "seq": next,
                "next_by_subj": subject,
                "batch": batch,
                "max_bytes": READ_BATCH_BYTES,
            });
            self.client
                .publish_with_reply(api.clone(), inbox, request.to_string().into())
                .await
                .map_err(|e| ReadError::Transport(e.to_string()))?;
            let mut previous = 0u64;
            // What the end of the batch says is left after it (None: nothing matched).
            let left = loop {
                let msg = tokio::time::timeout(self.cfg.ack_timeout, sub.next())
                    .await
                    .map_err(|_| ReadError::Transport("direct get timed out".into()))?
                    .ok_or_else(|| ReadError::Transport("direct get subscription closed".into()))?;
                let headers = msg.headers.clone().unwrap_or_default();
                if let Some(status) = msg.status {
                    match status.as_u16() {
                        204 => {
                            if header(&headers, "Nats-Last-Sequence") != Some(previous) {
                                return Err(ReadError::Transport(format!(
                                    "{LOST}: the batch ended after {:?}, the last received was {previous}",
                                    header(&headers, "Nats-Last-Sequence")
                                )));
                            }
                            break header(&headers, "Nats-Num-Pending");
                        }
                        // Nothing (more) on this subject; only ever the first reply.
                        404 if previous == 0 => break None,
                        other => {
                            return Err(ReadError::Transport(format!(
                                "direct get status {other}: {}",
                                msg.description.unwrap_or_default()
                            )))
                        }
                    }
                }
                let position =
                    header(&headers, "Nats-Sequence").ok_or_else(|| ReadError::Corrupt {
                        position: 0,
                        reason: "direct get reply without Nats-Sequence".into(),
                    })?;
                if header(&headers, "Nats-Last-Sequence") != Some(previous) || position < next {
                    return Err(ReadError::Transport(format!(
                        "{LOST}: {position} came after {previous}, not after {:?}",
                        header(&headers, "Nats-Last-Sequence")
                    )));
                }
                previous = position;
                out.push((decode(&msg.payload, position)?, msg.payload.len()));
            };
            let _ = sub.unsubscribe().await;
            if previous > 0 {
                next = previous + 1;
            }
            let more = matches!(left, Some(left) if left > 0) || next <= must_reach;
            if out.len() >= max {
                return Ok((out, more));
            }
            match left {
                Some(left) if left > 0 => continue,
                _ => {
                    if next > must_reach {
                        return Ok((out, false));
                    }
                    stale_retries += 1;
                    if stale_retries > 100 {
                        return Err(ReadError::Transport(format!(
                            "replicas stay behind position {must_reach} of {subject}"
                        )));
                    }
                    tracing::debug!(
                        subject,
                        next,
                        must_reach,
                        "direct get answered by a lagging replica; retrying"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// The subject's last position as the stream leader knows it (None: no message).
    async fn last_position_from_leader(&self, subject: &str) -> Result<Option<u64>, ReadError> {
        #[derive(serde::Deserialize)]
        struct Stored {
            seq: u64,
        }
        #[derive(serde::Deserialize)]
        struct ApiErr {
            err_code: u32,
            description: String,
        }
        #[derive(serde::Deserialize)]
        struct MsgGet {
            #[serde(default)]
            error: Option<ApiErr>,
            #[serde(default)]
            message: Option<Stored>,
        }
        let api = format!("$JS.API.STREAM.MSG.GET.{}", self.cfg.stream);
        let request = serde_json::json!({ "last_by_subj": subject });
        let response = tokio::time::timeout(
            self.cfg.ack_timeout,
            self.client.request(api, request.to_string().into()),
        )
        .await
        .map_err(|_| ReadError::Transport("msg get timed out".into()))?
        .map_err(|e| ReadError::Transport(e.to_string()))?;
        let r: MsgGet = serde_json::from_slice(&response.payload)
            .map_err(|e| ReadError::Transport(format!("unreadable msg get reply: {e}")))?;
        match (r.message, r.error) {
            (Some(m), _) => Ok(Some(m.seq)),
            (None, Some(e)) if e.err_code == 10037 => Ok(None), // no message on the subject
            (None, Some(e)) => Err(ReadError::Transport(format!(
                "msg get: {} ({})",
                e.description, e.err_code
            ))),
            (None, None) => Err(ReadError::Transport("empty msg get reply".into())),
        }
    }

    /// The position of the last event of any stream of `aggregate_type` (0: there is
    /// none); see [`EventLog::last_position_of`]. One request: a last-by-subject get on the wildcard
    /// `<prefix>.<aggregate_type>.*`, which nats-server answers from its per-subject
    /// index (2.15: direct get and `STREAM.MSG.GET` both accept a wildcard here). On a
    /// replicated stream the leader answers, so an acknowledged append is never missed.
    async fn last_position_of_type(&self, aggregate_type: &str) -> Result<u64, ReadError> {
        let subject = format!("{}.{aggregate_type}.*", self.cfg.subject_prefix);
        if self.cfg.replicas > 1 {
            return Ok(self.last_position_from_leader(&subject).await?.unwrap_or(0));
        }
        let api = format!("$JS.API.DIRECT.GET.{}", self.cfg.stream);
        let request = serde_json::json!({ "last_by_subj": subject });
        let msg = tokio::time::timeout(
            self.cfg.ack_timeout,
            self.client.request(api, request.to_string().into()),
        )
        .await
        .map_err(|_| ReadError::Transport("direct get timed out".into()))?
        .map_err(|e| ReadError::Transport(e.to_string()))?;
        match msg.status.map(|s| s.as_u16()) {
            None | Some(200) => {}
            Some(404) => return Ok(0),
            Some(other) => {
                return Err(ReadError::Transport(format!(
                    "direct get status {other}: {}",
                    msg.description.unwrap_or_default()
                )))
            }
        }
        msg.headers
            .as_ref()
            .and_then(|h| h.get("Nats-Sequence"))
            .and_then(|v| v.as_str().parse::<u64>().ok())
            .ok_or_else(|| ReadError::Corrupt {
                position: 0,
                reason: "direct get reply without Nats-Sequence".into(),
            })
    }

    /// The event at `position`, opened (None: no event there).
    pub async fn read_at(&self, position: u64) -> Result<Option<RecordedEvent>, ReadError> {
        use async_nats::jetstream::stream::DirectGetErrorKind;
        let stream = self
            .js
            .get_stream_no_info(&self.cfg.stream)
            .await
            .map_err(|e| ReadError::Transport(e.to_string()))?;
        match stream.direct_get(position).await {
            Ok(msg) => Ok(Some(self.opened(decode(&msg.payload, position)?).await?)),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(ReadError::Transport(e.to_string())),
        }
    }

    /// When the event at `position` occurred, as its envelope says (`None`: no such
    /// event, or it cannot be read): how long a projection that has not applied it yet
    /// is behind. The payload is not opened.
    pub async fn occurred_at(&self, position: u64) -> Option<chrono::DateTime<chrono::Utc>> {
        let stream = self.js.get_stream_no_info(&self.cfg.stream).await.ok()?;
        let msg = stream.direct_get(position).await.ok()?;
        time_field(&msg.payload, "occurred_at")
    }

    /// The position of the last event in the log (0 when empty).
    pub async fn head(&self) -> Result<u64, ReadError> {
        let mut stream = self
            .js
            .get_stream(&self.cfg.stream)
            .await
            .map_err(|e| ReadError::Transport(e.to_string()))?;
        let info = stream
            .info()
            .await
            .map_err(|e| ReadError::Transport(e.to_string()))?;
        Ok(info.state.last_sequence)
    }

    /// Every event from position `from` (inclusive) up to the head as it was when called.
    pub async fn read_all(
        &self,
        from: u64,
    ) -> Result<impl Stream<Item = Result<RecordedEvent, ReadError>> + Send + 'static, ReadError>
    {
        let head = self.head().await?;
        let live = self.subscribe(from).await?;
        Ok(live.take_until_head(from, head))
    }

    /// A live, never-ending subscription to the whole log in order, from position `from`
    /// (inclusive; 0 or 1 means the beginning). One ordered JetStream consumer.
    pub async fn subscribe(
        &self,
        from: u64,
    ) -> Result<futures::stream::BoxStream<'static, Result<RecordedEvent, ReadError>>, ReadError>
    {
        self.subscribe_filtered(from, vec![format!("{}.>", self.cfg.subject_prefix)])
            .await
    }

    /// Like [`EventLog::subscribe`], for the events of some aggregate types only (e.g.
    /// `["account", "subject"]`), still in log order: the server filters, so a follower
    /// of a few rare streams does not receive the whole log.
    pub async fn subscribe_to(
        &self,
        from: u64,
        aggregate_types: &[&str],
    ) -> Result<futures::stream::BoxStream<'static, Result<RecordedEvent, ReadError>>, ReadError>
    {
        let filters = aggregate_types
            .iter()
            .map(|t| format!("{}.{t}.*", self.cfg.subject_prefix))
            .collect();
        self.subscribe_filtered(from, filters).await
    }

    /// The position of the last event of any of these aggregate types (0: none): how new
    /// the facts of whole kinds of aggregate must be — the station map routing decides
    /// on, or what a follower of [`EventLog::subscribe_to`] must have applied to be
    /// current. Answered by the stream leader when replicated (an acknowledged append is
    /// never missed).
    pub async fn last_position_of(&self, aggregate_types: &[&str]) -> Result<u64, ReadError> {
        let mut last = 0;
        for t in aggregate_types {
            last = last.max(self.last_position_of_type(t).await?);
        }
        Ok(last)
    }

    async fn subscribe_filtered(
        &self,
        from: u64,
        mut filters: Vec<String>,
    ) -> Result<futures::stream::BoxStream<'static, Result<RecordedEvent, ReadError>>, ReadError>
    {
        let stream = self
            .js
            .get_stream(&self.cfg.stream)
            .await
            .map_err(|e| ReadError::Transport(e.to_string()))?;
        let deliver_policy = if from <= 1 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: from,
            }
        };
        let (filter_subject, filter_subjects) = if filters.len() == 1 {
            (filters.remove(0), Vec::new())
        } else {
            (String::new(), filters)
        };
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject,
                filter_subjects,
                deliver_policy,
                // Recreate the consumer quickly when its node goes away (cluster).
                max_expires: Duration::from_secs(4),
                ..Default::default()
            })
            .await
            .map_err(|e| ReadError::Transport(e.to_string()))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| ReadError::Transport(e.to_string()))?;
        let me = self.clone();
        Ok(messages
            .then(move |item| {
                let me = me.clone();
                async move {
                    let msg = item.map_err(|e| ReadError::Transport(e.to_string()))?;
                    let position = msg
                        .info()
                        .map_err(|e| ReadError::Transport(e.to_string()))?
                        .stream_sequence;
                    me.opened(decode(&msg.payload, position)?).await
                }
            })
            .boxed())
    }
}

/// Ends a stream once the event at `head` was yielded (or at once if the log is empty).
trait TakeUntilHead: Stream<Item = Result<RecordedEvent, ReadError>> + Sized {
    fn take_until_head(
        self,
        from: u64,
        head: u64,
    ) -> futures::stream::BoxStream<'static, Result<RecordedEvent, ReadError>>;
}

impl<S> TakeUntilHead for S
where
    S: Stream<Item = Result<RecordedEvent, ReadError>> + Send + 'static,
{
    fn take_until_head(
        self,
        from: u64,
        head: u64,
    ) -> futures::stream::BoxStream<'static, Result<RecordedEvent, ReadError>> {
        if head == 0 || from > head {
            return futures::stream::empty().boxed();
        }
        // Ends right after yielding `head`, without polling the live consumer again.
        futures::stream::unfold((self.boxed(), false), move |(mut inner, done)| async move {
            if done {
                return None;
            }
            let item = inner.next().await?;
            let reached = matches!(&item, Ok(e) if e.position() >= head);
            Some((item, (inner, reached)))
        })
        .boxed()
    }
}

/// Finds the append of `command_id` among one stream's events (its first event carries
/// the command's size and request digest).
pub fn find_command_in(events: &[RecordedEvent], command_id: Uuid) -> Option<Appended> {
    events
        .iter()
        .find(|e| e.envelope.command_id == command_id && e.envelope.command_size.is_some())
        .map(|e| {
            let size = u64::from(e.envelope.command_size.unwrap_or(1)).max(1);
            Appended {
                first_position: e.position(),
                position: e.position() + size - 1,
                duplicate: true,
                original_request: e.envelope.request_hash,
            }
        })
}

/// Decodes a stored message body into an event at `position`.
/// The time in the top-level field `field` of a JSON payload.
pub(crate) fn time_field(payload: &[u8], field: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let body: serde_json::Value = serde_json::from_slice(payload).ok()?;
    body.get(field)?.as_str()?.parse().ok()
}

pub(crate) fn decode(payload: &[u8], position: u64) -> Result<RecordedEvent, ReadError> {
    let body: Body = serde_json::from_slice(payload).map_err(|e| ReadError::Corrupt {
        position,
        reason: e.to_string(),
    })?;
    let mut envelope = body.envelope;
    envelope.position = position;
    Ok(RecordedEvent {
        envelope,
        data: body.data,
    })
}

#[cfg(test)]
mod credentials_tests {
    use super::split_credentials;

    #[test]
    fn credentials_are_split_off_the_url_and_decoded() {
        assert_eq!(
            split_credentials("nats://precinct:s3cr%40t@nats:4222"),
            (
                "nats://nats:4222".to_string(),
                Some(("precinct".to_string(), "s3cr@t".to_string()))
            )
        );
        assert_eq!(
            split_credentials("tls://u:p@a.example:4222/x"),
            (
                "tls://a.example:4222/x".to_string(),
                Some(("u".to_string(), "p".to_string()))
            )
        );
        assert_eq!(
            split_credentials("nats://127.0.0.1:4222"),
            ("nats://127.0.0.1:4222".to_string(), None)
        );
        assert_eq!(
            split_credentials("localhost"),
            ("localhost".to_string(), None)
        );
    }
}
