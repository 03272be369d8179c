//! [`LiveHub`]: one process-wide fan-out of live positions and patrol changes to the
//! SSE subscribers of this process.
//!
//! ```text
//! POSITIONS ──one ordered consumer──┐                 ┌─▶ bounded channel ─▶ SSE client
//!                                   ├─▶ frames ─▶ hub ┼─▶ bounded channel ─▶ SSE client
//! EVENTS ─────one ordered consumer──┘   (ring,        └─▶ …  (full: client dropped)
//!                                        latest)
//! ```
//!
//! - Two consumers per process, whatever the number of clients: positions (starting
//!   with the last position of every patrol, which seeds the snapshot map) and the
//!   event log from its head at start (patrol status changes, and assignments for
//!   officers' inboxes).
//! - Each message becomes at most one [`Frame`], serialized once and shared (`Arc`)
//!   by every client that wants it. Each client has a bounded channel; a client whose
//!   channel is full is dropped (its stream ends after what was buffered), never
//!   buffered for without bound, and never slows the others.
//! - A ring of recent frames and the last position of every patrol let a client
//!   register atomically with its snapshot (fresh) or with the frames it missed
//!   (resume): no gap and no duplicate between what it catches up on and what comes
//!   live. A client further behind than the ring first catches up from JetStream.
//! - The lock is a plain mutex held only to copy `Arc`s into channels (`try_send`).
//! - A connection holds one of the process's slots and one of its account's
//!   ([`LiveConfig::max_streams_per_account`], over both SSE endpoints): one account
//!   cannot take every slot.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::sse::Event;
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use precinct_eventlog::positions::{PositionLog, RecordedMove, Start};
use precinct_eventlog::{EventLog, ReadError, RecordedEvent};
use precinct_readmodel::PgPool;
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::directory::PatrolDirectory;
use super::LiveConfig;
use crate::access::AccountDirectory;
use precinct_domain::patrol::serves_in;

/// Which stream a frame comes from (and which sequence its id names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The positions stream; ids `p<seq>`.
    Positions = 0,
    /// The event log; ids `e<position>`.
    Events = 1,
}

/// Who may receive a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Staff watching this station (and ADMINs watching every station).
    Station(Uuid),
    /// These officers' inboxes.
    Officers(Vec<Uuid>),
}

/// One SSE message, serialized once.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub source: Source,
    pub seq: u64,
    pub audience: Audience,
    /// For a position: its patrol (the snapshot keeps the last one per patrol).
    pub patrol_id: Option<Uuid>,
    /// The SSE `event` name: `position`, `status` or `assignment`.
    pub event: &'static str,
    /// The SSE `data` (JSON).
    pub data: String,
}

impl Frame {
    /// The SSE id: `p<positions seq>` or `e<log position>`.
    pub fn id(&self) -> String {
        match self.source {
            Source::Positions => format!("p{}", self.seq),
            Source::Events => format!("e{}", self.seq),
        }
    }

    pub fn to_sse(&self) -> Event {
        Event::default()
            .id(self.id())
            .event(self.event)
            .data(&self.data)
    }
}

/// What a connection receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Positions and status changes of every station (ADMIN).
    AllStations,
    /// Positions and status changes of one station.
    Station(Uuid),
    /// One officer's inbox: assignments and changes of the officer's patrols.
    Officer(Uuid),
}

impl Scope {
    fn wants(&self, f: &Frame) -> bool {
        match (self, &f.audience) {
            (Scope::AllStations, Audience::Station(_)) => true,
            (Scope::Station(s), Audience::Station(t)) => s == t,
            (Scope::Officer(o), Audience::Officers(v)) => v.contains(o),
            _ => false,
        }
    }

    fn has_positions(&self) -> bool {
        !matches!(self, Scope::Officer(_))
    }
}

/// Where a connection resumes, from its `Last-Event-ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// No id (or one we do not understand): a snapshot, then live.
    Fresh,
    /// After this positions sequence (`p<seq>`).
    Position(u64),
    /// After this log position (`e<position>`).
    Event(u64),
}

impl Resume {
    /// Parses a `Last-Event-ID` header value.
    pub fn parse(id: Option<&str>) -> Self {
        let Some(id) = id.map(str::trim) else {
            return Resume::Fresh;
        };
        let num = |s: &str| s.parse::<u64>().ok();
        match id.split_at_checked(1) {
            Some(("p", n)) => num(n).map_or(Resume::Fresh, Resume::Position),
            Some(("e", n)) => num(n).map_or(Resume::Fresh, Resume::Event),
            _ => Resume::Fresh,
        }
    }
}

/// Why a connection was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("too many live connections")]
    Full,
    #[error("too many live connections for this account")]
    AccountFull,
    #[error("the live hub is not ready")]
    NotReady,
    #[error("the live hub is shutting down")]
    Closed,
}

/// Numbers for operators (`GET /admin/live`).
#[derive(Debug, Clone, Serialize)]
pub struct LiveStats {
    /// Open SSE connections (including ones still catching up).
    pub connections: usize,
    /// Registered subscribers receiving live frames.
    pub subscribers: usize,
    /// Clients dropped because their buffer was full, since start.
    pub dropped_slow_clients: u64,
    /// Last positions sequence and log position the hub has fanned out.
    pub positions_head: u64,
    pub events_head: u64,
    /// Patrols with a last known position.
    pub patrols_tracked: usize,
}

type Sender = mpsc::Sender<Arc<Frame>>;

#[derive(Default)]
struct State {
    next_id: u64,
    /// Last sequence processed, per [`Source`].
    head: [u64; 2],
    /// Every frame of a source with a sequence above this is in `recent`.
    covered: [u64; 2],
    recent: VecDeque<Arc<Frame>>,
    /// The last position frame of every patrol.
    latest: HashMap<Uuid, Arc<Frame>>,
    all_stations: HashMap<u64, Sender>,
    stations: HashMap<Uuid, HashMap<u64, Sender>>,
    officers: HashMap<Uuid, HashMap<u64, Sender>>,
    closed: bool,
}

impl State {
    fn subscribers(&self) -> usize {
        self.all_stations.len()
            + self.stations.values().map(HashMap::len).sum::<usize>()
            + self.officers.values().map(HashMap::len).sum::<usize>()
    }

    fn remove(&mut self, scope: Scope, id: u64) {
        match scope {
            Scope::AllStations => {
                self.all_stations.remove(&id);
            }
            Scope::Station(s) => {
                if let Some(m) = self.stations.get_mut(&s) {
                    m.remove(&id);
                    if m.is_empty() {
                        self.stations.remove(&s);
                    }
                }
            }
            Scope::Officer(o) => {
                if let Some(m) = self.officers.get_mut(&o) {
                    m.remove(&id);
                    if m.is_empty() {
                        self.officers.remove(&o);
                    }
                }
            }
        }
    }
}

struct Inner {
    state: Mutex<State>,
    config: LiveConfig,
    connections: Arc<Semaphore>,
    /// Open connections per account.
    per_account: Arc<Mutex<HashMap<Uuid, usize>>>,
    ready: watch::Sender<[bool; 2]>,
    shutdown: CancellationToken,
    directory: Arc<PatrolDirectory>,
    /// Who serves in a patrol now: an inbox frame goes to the crew members who do.
    accounts: AccountDirectory,
    log: EventLog,
    positions: PositionLog,
    pool: PgPool,
    /// Report → patrol it is assigned to, learnt from the log (for report events that
    /// do not name the patrol).
    reports: Mutex<HashMap<Uuid, Uuid>>,
    dropped: AtomicU64,
}

/// The live fan-out of this process. Cheap to clone.
#[derive(Clone)]
pub struct LiveHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("config", &self.inner.config)
            .finish()
    }
}

/// How long a step of catching up may wait for JetStream before giving up on it.
const REPLAY_IDLE: Duration = Duration::from_secs(5);
/// How long the hub may take to load the last positions at start before serving.
const WARM_UP: Duration = Duration::from_secs(5);

impl LiveHub {
    /// Starts the two consumers. The returned task ends after `shutdown`, once every
    /// subscriber has been let go (their streams end).
    pub fn start(
        log: EventLog,
        pool: PgPool,
        directory: Arc<PatrolDirectory>,
        accounts: AccountDirectory,
        config: LiveConfig,
        shutdown: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let (ready, _) = watch::channel([false, false]);
        let hub = LiveHub {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                connections: Arc::new(Semaphore::new(config.max_connections)),
                per_account: Arc::new(Mutex::new(HashMap::new())),
                config,
                ready,
                shutdown: shutdown.clone(),
                directory,
                accounts,
                positions: log.positions(),
                log,
                pool,
                reports: Mutex::new(HashMap::new()),
                dropped: AtomicU64::new(0),
            }),
        };
        let positions = tokio::spawn(hub.clone().follow_positions());
        let events = tokio::spawn(hub.clone().follow_events());
        let closer = hub.clone();
        let task = tokio::spawn(async move {
            let _ = positions.await;
            let _ = events.await;
            closer.close();
        });
        (hub, task)
    }

    pub fn config(&self) -> &LiveConfig {
        &self.inner.config
    }

    /// Cancelled when the process shuts down (SSE streams end with it).
    pub fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    pub fn stats(&self) -> LiveStats {
        let st = self.lock();
        LiveStats {
            connections: self
                .inner
                .config
                .max_connections
                .saturating_sub(self.inner.connections.available_permits()),
            subscribers: st.subscribers(),
            dropped_slow_clients: self.inner.dropped.load(Ordering::Relaxed),
            positions_head: st.head[Source::Positions as usize],
            events_head: st.head[Source::Events as usize],
            patrols_tracked: st.latest.len(),
        }
    }

    /// Takes one of `account`'s connection slots and one of the process's (both
    /// released when the stream ends).
    pub fn admit(&self, account: Uuid) -> Result<Admission, ConnectError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(ConnectError::Closed);
        }
        let slot = AccountSlot::take(
            &self.inner.per_account,
            account,
            self.inner.config.max_streams_per_account,
        )
        .ok_or(ConnectError::AccountFull)?;
        let permit = self
            .inner
            .connections
            .clone()
            .try_acquire_owned()
            .map_err(|_| ConnectError::Full)?;
        Ok(Admission {
            _permit: permit,
            _slot: slot,
        })
    }

    /// Waits (bounded) until both consumers have started and the last positions are
    /// loaded.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), ConnectError> {
        let mut rx = self.inner.ready.subscribe();
        let ready = tokio::time::timeout(timeout, rx.wait_for(|r| r[0] && r[1]))
            .await
            .is_ok_and(|r| r.is_ok());
        if ready {
            Ok(())
        } else {
            Err(ConnectError::NotReady)
        }
    }

    /// Opens a live stream for `scope`: a snapshot (fresh) or what was missed (resume),
    /// then live frames until the client is too slow, the process shuts down, or the
    /// stream is dropped.
    pub async fn connect(
        &self,
        scope: Scope,
        resume: Resume,
        permit: Admission,
    ) -> Result<BoxStream<'static, Arc<Frame>>, ConnectError> {
        if resume == Resume::Fresh {
            let cursors = [u64::MAX, u64::MAX];
            let (frames, live) = self
                .register(scope, cursors, scope.has_positions(), permit)
                .map_err(|(e, _)| e)?;
            return Ok(stream::iter(frames).chain(live).boxed());
        }
        let (cursors, snapshot) = self.resume_cursors(scope, resume).await;
        // Catching up runs in a task feeding a small channel (so it goes at the
        // client's pace); the task ends by registering, and hands the live stream over.
        let (tx, rx) = mpsc::channel(64);
        let hub = self.clone();
        let handover =
            tokio::spawn(async move { hub.catch_up(scope, cursors, snapshot, permit, tx).await });
        let caught_up = ChannelStream(rx);
        let live = stream::once(async move { handover.await.ok().flatten() })
            .filter_map(futures::future::ready)
            .flatten();
        Ok(caught_up.chain(live).boxed())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a subscriber under the lock, with the frames it must get first: the
    /// last position of each patrol in scope (`snapshot`), then the recent frames after
    /// its cursors. Fails (handing the permit back) when a cursor is older than what the
    /// ring holds.
    #[allow(clippy::type_complexity)]
    fn register(
        &self,
        scope: Scope,
        mut cursors: [u64; 2],
        snapshot: bool,
        permit: Admission,
    ) -> Result<(Vec<Arc<Frame>>, LiveReceiver), (ConnectError, Admission)> {
        let mut st = self.lock();
        if st.closed {
            return Err((ConnectError::Closed, permit));
        }
        let p = Source::Positions as usize;
        if snapshot || !scope.has_positions() {
            cursors[p] = u64::MAX;
        }
        for (i, cursor) in cursors.iter().enumerate() {
            if *cursor != u64::MAX && *cursor < st.covered[i] {
                return Err((ConnectError::NotReady, permit));
            }
        }
        let mut frames: Vec<Arc<Frame>> = Vec::new();
        if snapshot {
            frames.extend(st.latest.values().filter(|f| scope.wants(f)).cloned());
            frames.sort_by_key(|f| f.seq);
        }
        frames.extend(
            st.recent
                .iter()
                .filter(|f| f.seq > cursors[f.source as usize] && scope.wants(f))
                .cloned(),
        );
        let (tx, rx) = mpsc::channel(self.inner.config.client_buffer.max(1));
        st.next_id += 1;
        let id = st.next_id;
        match scope {
            Scope::AllStations => {
                st.all_stations.insert(id, tx);
            }
            Scope::Station(s) => {
                st.stations.entry(s).or_default().insert(id, tx);
            }
            Scope::Officer(o) => {
                st.officers.entry(o).or_default().insert(id, tx);
            }
        }
        let guard = Registration {
            hub: self.clone(),
            scope,
            id,
            _permit: permit,
        };
        Ok((frames, LiveReceiver { rx, _guard: guard }))
    }

    /// Lets every subscriber go: their streams end once drained.
    fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.all_stations.clear();
        st.stations.clear();
        st.officers.clear();
    }

    /// Fans frames out; `through` is the last sequence of `source` they cover.
    /// `warming`: the initial load of the last positions, which only seeds the
    /// snapshot map.
    fn dispatch(&self, source: Source, through: u64, frames: Vec<Arc<Frame>>, warming: bool) {
        let cap = self.inner.config.recent.max(1);
        let mut st = self.lock();
        let src = source as usize;
        let mut gone: Vec<(Scope, u64, bool)> = Vec::new();
        for f in frames {
            if let Some(patrol) = f.patrol_id {
                st.latest.insert(patrol, f.clone());
            }
            if warming {
                continue;
            }
            st.recent.push_back(f.clone());
            while st.recent.len() > cap {
                if let Some(old) = st.recent.pop_front() {
                    let i = old.source as usize;
                    st.covered[i] = st.covered[i].max(old.seq);
                }
            }
            let mut offer = |scope: Scope, id: u64, tx: &Sender| match tx.try_send(f.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => gone.push((scope, id, true)),
                Err(mpsc::error::TrySendError::Closed(_)) => gone.push((scope, id, false)),
            };
            match &f.audience {
                Audience::Station(s) => {
                    for (id, tx) in &st.all_stations {
                        offer(Scope::AllStations, *id, tx);
                    }
                    if let Some(subs) = st.stations.get(s) {
                        for (id, tx) in subs {
                            offer(Scope::Station(*s), *id, tx);
                        }
                    }
                }
                Audience::Officers(officers) => {
                    for o in officers {
                        if let Some(subs) = st.officers.get(o) {
                            for (id, tx) in subs {
                                offer(Scope::Officer(*o), *id, tx);
                            }
                        }
                    }
                }
            }
            for (scope, id, slow) in gone.drain(..) {
                st.remove(scope, id);
                if slow {
                    self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(?scope, subscriber = id, "slow live client dropped");
                }
            }
        }
        st.head[src] = st.head[src].max(through);
        if warming {
            st.covered[src] = st.head[src];
        }
    }

    fn heads(&self) -> ([u64; 2], [u64; 2]) {
        let st = self.lock();
        (st.head, st.covered)
    }

    fn set_ready(&self, source: Source) {
        self.inner.ready.send_modify(|r| r[source as usize] = true);
    }

    /// Follows the positions stream: the last position of every patrol first (the
    /// snapshot), then everything new.
    async fn follow_positions(self) {
        let shutdown = self.inner.shutdown.clone();
        let mut backoff = Backoff::default();
        let Some(start_head) = backoff
            .retry(&shutdown, "read the positions stream", || {
                self.inner.positions.head()
            })
            .await
        else {
            return;
        };
        let mut warming = start_head > 0;
        if !warming {
            self.set_ready(Source::Positions);
        }
        let warm_deadline = tokio::time::Instant::now() + WARM_UP;
        let mut start = Start::LastPerPatrol;
        loop {
            let Some(stream) = backoff
                .retry(&shutdown, "subscribe to positions", || {
                    self.inner.positions.subscribe(start)
                })
                .await
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
                        self.dispatch(Source::Positions, 0, Vec::new(), true);
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
                    self.dispatch(Source::Positions, through, frames, warming);
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
            if !backoff.pause(&shutdown).await {
                return;
            }
            let (head, _) = self.heads();
            start = Start::Seq(head[Source::Positions as usize] + 1);
        }
    }

    /// Follows the event log from its head at start.
    async fn follow_events(self) {
        let shutdown = self.inner.shutdown.clone();
        let mut backoff = Backoff::default();
        let Some(start_head) = backoff
            .retry(&shutdown, "read the log head", || self.inner.log.head())
            .await
        else {
            return;
        };
        self.dispatch(Source::Events, start_head, Vec::new(), true);
        self.set_ready(Source::Events);
        loop {
            let (head, _) = self.heads();
            let from = head[Source::Events as usize] + 1;
            let Some(mut events) = backoff
                .retry(&shutdown, "subscribe to the log", || {
                    self.inner.log.subscribe(from)
                })
                .await
            else {
                return;
            };
            loop {
                let item = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return,
                    item = events.next() => item,
                };
                match item {
                    None => break,
                    Some(Ok(event)) => {
                        let frame = self.event_frame(&event, true).await;
                        self.dispatch(
                            Source::Events,
                            event.position(),
                            frame.into_iter().map(Arc::new).collect(),
                            false,
                        );
                        backoff.reset();
                    }
                    Some(Err(ReadError::Corrupt { position, reason })) => {
                        tracing::error!(position, %reason, "live: undecodable event skipped");
                        self.dispatch(Source::Events, position, Vec::new(), false);
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "live: log read failed; resubscribing");
                        break;
                    }
                }
            }
            if !backoff.pause(&shutdown).await {
                return;
            }
        }
    }

    /// The frame an event makes, if any: a patrol status change (for its station), or
    /// an assignment change (for the members of the patrol concerned). `live`: the
    /// hub's own consumer, which also keeps the directory and the report map current.
    async fn event_frame(&self, e: &RecordedEvent, live: bool) -> Option<Frame> {
        let env = &e.envelope;
        let kind = env.event_type.as_str();
        let uuid_at = |field: &str| {
            e.data
                .get(field)
                .and_then(|v| v.as_str())
                .and_then(|s| Uuid::parse_str(s).ok())
        };
        match env.aggregate_type.as_str() {
            "patrol" => {
                let patrol = env.aggregate_id;
                match kind {
                    "PatrolRegistered" | "PatrolUpdated" => {
                        if live {
                            self.inner.directory.invalidate(patrol);
                        }
                        None
                    }
                    "PatrolStatusChanged" => {
                        let station = match self.inner.directory.station_of(patrol).await {
                            Ok(Some(s)) => s.as_uuid(),
                            Ok(None) => return None,
                            Err(err) => {
                                tracing::warn!(error = %err, %patrol, "live: patrol station unknown; status change not sent");
                                return None;
                            }
                        };
                        let data = json!({
                            "position": e.position(),
                            "patrol_id": patrol,
                            "station_id": station,
                            "status": e.data.get("status"),
                            "cause": e.data.get("cause"),
                            "at": e.data.get("at"),
                        });
                        Some(Frame {
                            source: Source::Events,
                            seq: e.position(),
                            audience: Audience::Station(station),
                            patrol_id: None,
                            event: "status",
                            data: data.to_string(),
                        })
                    }
                    "PatrolAssignmentOpened" | "PatrolAssignmentClosed" => {
                        let report = uuid_at("report_id")?;
                        if live {
                            if let Ok(mut reports) = self.inner.reports.lock() {
                                if kind == "PatrolAssignmentOpened" {
                                    reports.insert(report, patrol);
                                } else {
                                    reports.remove(&report);
                                }
                            }
                        }
                        self.inbox_frame(e, report, patrol).await
                    }
                    _ => None,
                }
            }
            "report" => {
                let report = env.aggregate_id;
                let named = uuid_at("patrol_id");
                let known = self
                    .inner
                    .reports
                    .lock()
                    .ok()
                    .and_then(|r| r.get(&report).copied());
                let patrol = match named.or(known) {
                    Some(p) => p,
                    None => {
                        // Assigned before this hub started: ask the read model.
                        precinct_readmodel::queries::report_patrol(&self.inner.pool, report)
                            .await
                            .ok()??
                    }
                };
                if live {
                    if let Ok(mut reports) = self.inner.reports.lock() {
                        reports.insert(report, patrol);
                    }
                }
                self.inbox_frame(e, report, patrol).await
            }
            _ => None,
        }
    }

    async fn inbox_frame(&self, e: &RecordedEvent, report: Uuid, patrol: Uuid) -> Option<Frame> {
        let info = self.inner.directory.get(patrol).await.ok()??;
        // A crew list can trail a role or station change: only members who serve in the
        // patrol now get its assignments (one not in the view yet is given the benefit).
        let officers: Vec<Uuid> = info
            .officer_ids
            .iter()
            .filter(|o| {
                self.inner
                    .accounts
                    .peek(**o)
                    .is_none_or(|a| serves_in(info.station_id, a.role, a.station_id))
            })
            .map(|o| o.as_uuid())
            .collect();
        if officers.is_empty() {
            return None;
        }
        let data = json!({
            "position": e.position(),
            "type": e.envelope.event_type,
            "report_id": report,
            "patrol_id": patrol,
            "occurred_at": e.envelope.occurred_at,
        });
        Some(Frame {
            source: Source::Events,
            seq: e.position(),
            audience: Audience::Officers(officers),
            patrol_id: None,
            event: "assignment",
            data: data.to_string(),
        })
    }

    /// Where to resume each source. The one the id names resumes exactly after it; the
    /// other from the same moment less a slack (the two streams interleave on the
    /// wire): at-least-once for it. `true`: positions start from a snapshot instead.
    async fn resume_cursors(&self, scope: Scope, resume: Resume) -> ([u64; 2], bool) {
        let (head, _) = self.heads();
        let [hp, he] = head;
        let slack = chrono::Duration::from_std(self.inner.config.resume_slack)
            .unwrap_or_else(|_| chrono::Duration::seconds(2));
        match resume {
            Resume::Fresh => ([hp, he], scope.has_positions()),
            Resume::Position(seq) => {
                let p = seq.min(hp);
                let at = self.inner.positions.stored_at(p).await.ok().flatten();
                let e = match at {
                    Some(at) => match self.inner.log.first_position_since(at - slack).await {
                        Ok(Some(pos)) => pos.saturating_sub(1).min(he),
                        _ => he,
                    },
                    None => he,
                };
                ([p, e], false)
            }
            Resume::Event(pos) => {
                let e = pos.min(he);
                if !scope.has_positions() {
                    return ([u64::MAX, e], false);
                }
                let at = self.inner.log.stored_at(e).await.ok().flatten();
                match at {
                    Some(at) => match self.inner.positions.first_since(at - slack).await {
                        Ok(Some(seq)) => ([seq.saturating_sub(1).min(hp), e], false),
                        Ok(None) => ([hp, e], false),
                        Err(_) => ([hp, e], true),
                    },
                    None => ([hp, e], true),
                }
            }
        }
    }

    /// Replays from JetStream what the ring no longer holds, then registers (with the
    /// rest from the ring) and hands the live stream over. `None`: the client left or
    /// the process is shutting down.
    async fn catch_up(
        self,
        scope: Scope,
        mut cursors: [u64; 2],
        snapshot: bool,
        permit: Admission,
        tx: mpsc::Sender<Arc<Frame>>,
    ) -> Option<LiveReceiver> {
        let mut permit = permit;
        let max_replay = self.inner.config.max_replay;
        let mut snapshot = snapshot || !scope.has_positions();
        loop {
            if self.inner.shutdown.is_cancelled() || tx.is_closed() {
                return None;
            }
            let (head, covered) = self.heads();
            let p = Source::Positions as usize;
            let e = Source::Events as usize;
            if !snapshot && cursors[p] < covered[p] {
                if covered[p] - cursors[p] > max_replay {
                    tracing::info!(
                        ?scope,
                        "live: client too far behind on positions; sending a snapshot"
                    );
                    snapshot = true;
                } else {
                    cursors[p] = self
                        .replay_positions(scope, cursors[p], covered[p], &tx)
                        .await?;
                }
                continue;
            }
            if cursors[e] < covered[e] {
                if covered[e] - cursors[e] > max_replay {
                    tracing::info!(
                        ?scope,
                        "live: client too far behind on the log; skipping to now"
                    );
                    cursors[e] = head[e];
                } else {
                    cursors[e] = self
                        .replay_events(scope, cursors[e], covered[e], &tx)
                        .await?;
                }
                continue;
            }
            match self.register(scope, cursors, snapshot, permit) {
                Ok((frames, live)) => {
                    for f in frames {
                        tx.send(f).await.ok()?;
                    }
                    return Some(live);
                }
                Err((ConnectError::Closed, _)) => return None,
                Err((_, p)) => permit = p,
            }
        }
    }

    /// Sends the position frames in `(after, through]` that `scope` wants; returns the
    /// cursor reached (`None`: the client left).
    async fn replay_positions(
        &self,
        scope: Scope,
        after: u64,
        through: u64,
        tx: &mpsc::Sender<Arc<Frame>>,
    ) -> Option<u64> {
        let mut stream = match self.inner.positions.subscribe(Start::Seq(after + 1)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "live: cannot replay positions; skipping ahead");
                return Some(through);
            }
        };
        let mut cursor = after;
        while cursor < through {
            match tokio::time::timeout(REPLAY_IDLE, stream.next()).await {
                Ok(Some(Ok(m))) => {
                    if m.seq > through {
                        break;
                    }
                    cursor = m.seq;
                    let f = position_frame(&m);
                    if scope.wants(&f) {
                        tx.send(Arc::new(f)).await.ok()?;
                    }
                }
                Ok(Some(Err(ReadError::Corrupt { position, .. }))) => cursor = position,
                _ => break,
            }
        }
        Some(through)
    }

    /// Sends the event frames in `(after, through]` that `scope` wants; returns the
    /// cursor reached (`None`: the client left).
    async fn replay_events(
        &self,
        scope: Scope,
        after: u64,
        through: u64,
        tx: &mpsc::Sender<Arc<Frame>>,
    ) -> Option<u64> {
        let mut stream = match self.inner.log.subscribe(after + 1).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "live: cannot replay the log; skipping ahead");
                return Some(through);
            }
        };
        let mut cursor = after;
        while cursor < through {
            match tokio::time::timeout(REPLAY_IDLE, stream.next()).await {
                Ok(Some(Ok(event))) => {
                    if event.position() > through {
                        break;
                    }
                    cursor = event.position();
                    if let Some(f) = self.event_frame(&event, false).await {
                        if scope.wants(&f) {
                            tx.send(Arc::new(f)).await.ok()?;
                        }
                    }
                }
                Ok(Some(Err(ReadError::Corrupt { position, .. }))) => cursor = position,
                _ => break,
            }
        }
        Some(through)
    }
}

/// The frame of one position.
fn position_frame(m: &RecordedMove) -> Frame {
    let p = &m.moved;
    let mut data = json!({
        "position": m.seq,
        "patrol_id": p.patrol_id,
        "station_id": p.station_id,
        "latitude": p.latitude,
        "longitude": p.longitude,
        "recorded_at": p.recorded_at,
    });
    if let Some(h) = p.heading {
        data["heading"] = json!(h);
    }
    if let Some(s) = p.speed_mps {
        data["speed_mps"] = json!(s);
    }
    Frame {
        source: Source::Positions,
        seq: m.seq,
        audience: Audience::Station(p.station_id),
        patrol_id: Some(p.patrol_id),
        event: "position",
        data: data.to_string(),
    }
}

/// A connection's slots: one of the process's, one of its account's. Dropped with the
/// stream.
pub struct Admission {
    _permit: OwnedSemaphorePermit,
    _slot: AccountSlot,
}

/// One of an account's connection slots.
struct AccountSlot {
    counts: Arc<Mutex<HashMap<Uuid, usize>>>,
    account: Uuid,
}

impl AccountSlot {
    /// A slot, unless the account already holds `max`.
    fn take(counts: &Arc<Mutex<HashMap<Uuid, usize>>>, account: Uuid, max: usize) -> Option<Self> {
        let mut map = counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(account).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Self {
            counts: counts.clone(),
            account,
        })
    }
}

impl Drop for AccountSlot {
    fn drop(&mut self) {
        let mut map = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.account) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.account);
            }
        }
    }
}

/// Unregisters a subscriber when its stream is dropped, and holds its connection slots.
struct Registration {
    hub: LiveHub,
    scope: Scope,
    id: u64,
    _permit: Admission,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.lock().remove(self.scope, self.id);
    }
}

/// A subscriber's live frames; ends when the hub drops it (too slow, shutdown).
pub struct LiveReceiver {
    rx: mpsc::Receiver<Arc<Frame>>,
    _guard: Registration,
}

impl Stream for LiveReceiver {
    type Item = Arc<Frame>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// A receiver as a stream.
struct ChannelStream(mpsc::Receiver<Arc<Frame>>);

impl Stream for ChannelStream {
    type Item = Arc<Frame>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Doubling pauses (100 ms to 5 s) between retries.
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Duration::from_millis(100))
    }
}

impl Backoff {
    fn reset(&mut self) {
        self.0 = Duration::from_millis(100);
    }

    /// Runs `attempt` until it succeeds, logging each failure and pausing between them;
    /// `None` if shutdown came first.
    async fn retry<T, E, Fut>(
        &mut self,
        shutdown: &CancellationToken,
        what: &str,
        mut attempt: impl FnMut() -> Fut,
    ) -> Option<T>
    where
        E: std::fmt::Display,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        loop {
            match attempt().await {
                Ok(value) => return Some(value),
                Err(e) => {
                    tracing::warn!(error = %e, "live: cannot {what}; retrying");
                    if !self.pause(shutdown).await {
                        return None;
                    }
                }
            }
        }
    }

    /// False if shutdown came first.
    async fn pause(&mut self, shutdown: &CancellationToken) -> bool {
        let d = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_ids_parse() {
        assert_eq!(Resume::parse(None), Resume::Fresh);
        assert_eq!(Resume::parse(Some("p42")), Resume::Position(42));
        assert_eq!(Resume::parse(Some(" e7 ")), Resume::Event(7));
        assert_eq!(Resume::parse(Some("x1")), Resume::Fresh);
        assert_eq!(Resume::parse(Some("p")), Resume::Fresh);
        assert_eq!(Resume::parse(Some("é")), Resume::Fresh);
    }

    #[test]
    fn an_account_holds_at_most_its_share_of_slots() {
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let first = AccountSlot::take(&counts, a, 2).expect("first");
        let second = AccountSlot::take(&counts, a, 2).expect("second");
        assert!(
            AccountSlot::take(&counts, a, 2).is_none(),
            "a third is refused"
        );
        let other = AccountSlot::take(&counts, b, 2).expect("another account");
        drop(first);
        let again = AccountSlot::take(&counts, a, 2).expect("a freed slot is reusable");
        drop((second, again, other));
        assert!(counts.lock().expect("lock").is_empty(), "nothing leaks");
    }

    #[test]
    fn scopes_filter_by_audience() {
        let s = Uuid::new_v4();
        let o = Uuid::new_v4();
        let frame = |audience| Frame {
            source: Source::Positions,
            seq: 1,
            audience,
            patrol_id: None,
            event: "position",
            data: String::new(),
        };
        let at_station = frame(Audience::Station(s));
        assert!(Scope::AllStations.wants(&at_station));
        assert!(Scope::Station(s).wants(&at_station));
        assert!(!Scope::Station(Uuid::new_v4()).wants(&at_station));
        assert!(!Scope::Officer(o).wants(&at_station));
        let inbox = frame(Audience::Officers(vec![o]));
        assert!(Scope::Officer(o).wants(&inbox));
        assert!(!Scope::AllStations.wants(&inbox));
    }
}
