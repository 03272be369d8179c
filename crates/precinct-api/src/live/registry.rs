//! The fan-out of frames to this process's SSE subscribers, without I/O: [`Registry`]
//! (a ring of recent frames, the last position of every patrol, the subscribers by
//! scope) and [`Admissions`] (the process's and each account's connection slots).
//!
//! - Each subscriber has a bounded channel; a frame goes to every subscriber whose
//!   [`Scope`] wants it with `try_send`, and a subscriber whose channel is full is
//!   dropped (its stream ends after what was buffered): never buffered for without
//!   bound, and never slowing the others.
//! - A subscriber registers atomically with what it must get first: the last position
//!   of every patrol in scope (a fresh client's snapshot) and the recent frames after
//!   its cursors (a client resuming with `Last-Event-ID`). No gap and no duplicate
//!   between those and what comes live. A cursor older than the ring is refused
//!   ([`ConnectError::NotReady`]): the caller catches up from JetStream first.
//! - The lock is a plain mutex held only to copy `Arc`s into channels.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::frames::{Audience, Frame, Source};

/// What a connection receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Positions and status changes of every station (ADMIN).
    AllStations,
    /// Positions and status changes of one station.
    Station(Uuid),
    /// One officer's inbox: assignments and changes of the officer's patrols.
    Officer(Uuid),
    /// Report changes of every station (ADMIN).
    AllDesks,
    /// Report changes of one station (its desk).
    Desk(Uuid),
    /// A signed-in reporter: the status changes and public updates of every report the
    /// account submitted (the reporter view).
    Reporter(Uuid),
    /// One report as its reporter sees it (a tracking-token holder, or its reporter).
    Report(Uuid),
}

impl Scope {
    pub(super) fn wants(&self, f: &Frame) -> bool {
        match (self, &f.audience) {
            (Scope::AllStations, Audience::Station(_)) => true,
            (Scope::Station(s), Audience::Station(t)) => s == t,
            (Scope::Officer(o), Audience::Officers(v)) => v.contains(o),
            (Scope::AllDesks, Audience::Desk(_)) => true,
            (Scope::Desk(s), Audience::Desk(t)) => s == t,
            (Scope::Reporter(a), Audience::Reporter { account, .. }) => *account == Some(*a),
            (Scope::Report(r), Audience::Reporter { report, .. }) => r == report,
            _ => false,
        }
    }

    pub(super) fn has_positions(&self) -> bool {
        matches!(self, Scope::AllStations | Scope::Station(_))
    }
}

impl Audience {
    /// The scopes a frame for this audience reaches.
    fn scopes(&self) -> Vec<Scope> {
        match self {
            Audience::Station(s) => vec![Scope::AllStations, Scope::Station(*s)],
            Audience::Officers(v) => v.iter().map(|o| Scope::Officer(*o)).collect(),
            Audience::Desk(s) => vec![Scope::AllDesks, Scope::Desk(*s)],
            Audience::Reporter { report, account } => {
                let mut scopes = vec![Scope::Report(*report)];
                scopes.extend(account.map(Scope::Reporter));
                scopes
            }
        }
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

/// How [`Registry::dispatch`] treats its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// To the subscribers, and into the ring.
    Live,
    /// The initial load of the last positions: only into the snapshot map.
    Seed,
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
    /// The subscribers, by scope.
    subscribers: HashMap<Scope, HashMap<u64, Sender>>,
    /// Positions ranges `(to, high]` the stream lost and gave to new positions since
    /// (newest last, at most [`MAX_REWINDS`]): an id inside one is ambiguous.
    rewinds: VecDeque<(u64, u64)>,
    closed: bool,
}

/// How many positions rewinds the registry remembers.
const MAX_REWINDS: usize = 16;

impl State {
    fn subscribers(&self) -> usize {
        self.subscribers.values().map(HashMap::len).sum()
    }

    /// Where a positions cursor really is: one inside a range the stream lost (and
    /// reused) is moved back to the range's start, so nothing new under a reused
    /// sequence is skipped (what was already received may come again).
    fn unwind(&self, seq: u64) -> u64 {
        self.rewinds
            .iter()
            .filter(|(to, high)| *to < seq && seq <= *high)
            .fold(seq, |s, (to, _)| s.min(*to))
    }

    fn remove(&mut self, scope: Scope, id: u64) {
        if let Some(m) = self.subscribers.get_mut(&scope) {
            m.remove(&id);
            if m.is_empty() {
                self.subscribers.remove(&scope);
            }
        }
    }
}

/// The registry's numbers (for `GET /admin/live`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub subscribers: usize,
    pub dropped_slow_clients: u64,
    /// Last sequence fanned out, per [`Source`].
    pub head: [u64; 2],
    pub patrols_tracked: usize,
}

/// The subscribers of this process, the ring of recent frames and the last position of
/// every patrol.
pub struct Registry {
    state: Mutex<State>,
    /// Most frames in the ring.
    ring: usize,
    /// Frames buffered per subscriber.
    client_buffer: usize,
    dropped: AtomicU64,
}

impl Registry {
    /// A registry keeping `ring` recent frames and buffering `client_buffer` frames per
    /// subscriber (each at least 1).
    pub fn new(ring: usize, client_buffer: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            ring: ring.max(1),
            client_buffer: client_buffer.max(1),
            dropped: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn counts(&self) -> Counts {
        let st = self.lock();
        Counts {
            subscribers: st.subscribers(),
            dropped_slow_clients: self.dropped.load(Ordering::Relaxed),
            head: st.head,
            patrols_tracked: st.latest.len(),
        }
    }

    /// The last sequence fanned out and the oldest one the ring covers, per [`Source`].
    pub fn heads(&self) -> ([u64; 2], [u64; 2]) {
        let st = self.lock();
        (st.head, st.covered)
    }

    /// Registers a subscriber under the lock, with the frames it must get first: the
    /// last position of each patrol in scope (`snapshot`), then the recent frames after
    /// its cursors (`u64::MAX`: none of that source). Fails (handing the permit back)
    /// when a cursor is older than what the ring holds.
    #[allow(clippy::type_complexity)]
    pub fn register(
        self: &Arc<Self>,
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
        let (tx, rx) = mpsc::channel(self.client_buffer);
        st.next_id += 1;
        let id = st.next_id;
        st.subscribers.entry(scope).or_default().insert(id, tx);
        let guard = Registration {
            registry: self.clone(),
            scope,
            id,
            _permit: permit,
        };
        Ok((frames, LiveReceiver { rx, _guard: guard }))
    }

    /// Where a client resuming after positions sequence `seq` resumes from: `seq`, or the
    /// start of a range the stream lost since (see [`Registry::rewind_positions`]).
    pub fn resume_after(&self, seq: u64) -> u64 {
        self.lock().unwind(seq)
    }

    /// The positions stream lost what came after `to` and gives those sequences to new
    /// positions (ADR 0005: a single node persisting asynchronously, killed): forgets
    /// every position frame after `to` (ring and snapshot), lets every subscriber that
    /// receives positions go (each comes back with its `Last-Event-ID`), and remembers
    /// the range, so that a cursor inside it resumes from `to`. Returns how many
    /// subscribers it let go.
    pub fn rewind_positions(&self, to: u64) -> usize {
        let mut st = self.lock();
        let p = Source::Positions as usize;
        let high = st.head[p];
        if to >= high {
            return 0;
        }
        st.recent
            .retain(|f| f.source != Source::Positions || f.seq <= to);
        st.latest.retain(|_, f| f.seq <= to);
        st.head[p] = to;
        st.covered[p] = st.covered[p].min(to);
        if st.rewinds.len() == MAX_REWINDS {
            st.rewinds.pop_front();
        }
        st.rewinds.push_back((to, high));
        let before = st.subscribers();
        st.subscribers.retain(|scope, _| !scope.has_positions());
        before - st.subscribers()
    }

    /// Lets every subscriber go (their streams end once drained) and refuses new ones.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.subscribers.clear();
    }

    /// Fans frames out; `through` is the last sequence of `source` they cover.
    pub fn dispatch(
        &self,
        source: Source,
        through: u64,
        frames: Vec<Arc<Frame>>,
        delivery: Delivery,
    ) {
        let mut st = self.lock();
        let src = source as usize;
        let mut gone: Vec<(Scope, u64, bool)> = Vec::new();
        for f in frames {
            if let Some(patrol) = f.patrol_id {
                st.latest.insert(patrol, f.clone());
            }
            if delivery == Delivery::Seed {
                continue;
            }
            st.recent.push_back(f.clone());
            while st.recent.len() > self.ring {
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
            for scope in f.audience.scopes() {
                if let Some(subs) = st.subscribers.get(&scope) {
                    for (id, tx) in subs {
                        offer(scope, *id, tx);
                    }
                }
            }
            for (scope, id, slow) in gone.drain(..) {
                st.remove(scope, id);
                if slow {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(?scope, subscriber = id, "slow live client dropped");
                }
            }
        }
        st.head[src] = st.head[src].max(through);
        if delivery == Delivery::Seed {
            st.covered[src] = st.head[src];
        }
    }
}

/// The process's connection slots and each account's share of them.
#[derive(Debug)]
pub struct Admissions {
    connections: Arc<Semaphore>,
    max_connections: usize,
    per_account: Arc<Mutex<HashMap<Uuid, usize>>>,
    max_per_account: usize,
}

impl Admissions {
    pub fn new(max_connections: usize, max_per_account: usize) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            per_account: Arc::new(Mutex::new(HashMap::new())),
            max_per_account,
        }
    }

    /// Takes one of `account`'s connection slots and one of the process's (both
    /// released when the [`Admission`] is dropped).
    pub fn admit(&self, account: Uuid) -> Result<Admission, ConnectError> {
        let slot = AccountSlot::take(&self.per_account, account, self.max_per_account)
            .ok_or(ConnectError::AccountFull)?;
        let permit = self
            .connections
            .clone()
            .try_acquire_owned()
            .map_err(|_| ConnectError::Full)?;
        Ok(Admission {
            _permit: permit,
            _slot: slot,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max_connections
            .saturating_sub(self.connections.available_permits())
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
    registry: Arc<Registry>,
    scope: Scope,
    id: u64,
    _permit: Admission,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(self.scope, self.id);
    }
}

/// A subscriber's live frames; ends when the registry drops it (too slow, closed).
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

#[cfg(test)]
mod tests {
    use futures::{FutureExt, StreamExt};

    use super::*;

    const NOBODY: Uuid = Uuid::from_u128(0xff);

    fn frame(source: Source, seq: u64, audience: Audience, patrol: Option<Uuid>) -> Arc<Frame> {
        Arc::new(Frame {
            source,
            seq,
            audience,
            patrol_id: patrol,
            event: "test",
            data: String::new(),
        })
    }

    fn position(seq: u64, station: Uuid, patrol: Uuid) -> Arc<Frame> {
        frame(
            Source::Positions,
            seq,
            Audience::Station(station),
            Some(patrol),
        )
    }

    fn event(seq: u64, station: Uuid) -> Arc<Frame> {
        frame(Source::Events, seq, Audience::Station(station), None)
    }

    fn admission() -> Admission {
        Admissions::new(100, 100).admit(NOBODY).expect("a slot")
    }

    /// What a stream holds now: its frames' ids, and whether it has ended.
    fn drain(rx: &mut LiveReceiver) -> (Vec<String>, bool) {
        let mut ids = Vec::new();
        loop {
            match rx.next().now_or_never() {
                Some(Some(f)) => ids.push(f.id()),
                Some(None) => return (ids, true),
                None => return (ids, false),
            }
        }
    }

    fn ids(frames: &[Arc<Frame>]) -> Vec<String> {
        frames.iter().map(|f| f.id()).collect()
    }

    const FRESH: [u64; 2] = [u64::MAX, u64::MAX];

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
    fn scopes_filter_by_audience() {
        let s = Uuid::new_v4();
        let o = Uuid::new_v4();
        let at_station = frame(Source::Positions, 1, Audience::Station(s), None);
        assert!(Scope::AllStations.wants(&at_station));
        assert!(Scope::Station(s).wants(&at_station));
        assert!(!Scope::Station(Uuid::new_v4()).wants(&at_station));
        assert!(!Scope::Officer(o).wants(&at_station));
        let inbox = frame(Source::Events, 1, Audience::Officers(vec![o]), None);
        assert!(Scope::Officer(o).wants(&inbox));
        assert!(!Scope::AllStations.wants(&inbox));
    }

    #[test]
    fn a_fresh_subscriber_gets_the_last_position_of_each_patrol_in_scope_then_live() {
        let r = Registry::new(16, 16);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let (p1, p2, p3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        // Seeded at start: only the snapshot map, not the ring.
        r.dispatch(
            Source::Positions,
            3,
            vec![position(1, a, p1), position(2, b, p2), position(3, a, p1)],
            Delivery::Seed,
        );
        r.dispatch(
            Source::Positions,
            4,
            vec![position(4, a, p3)],
            Delivery::Live,
        );
        let (first, mut live) = r
            .register(Scope::Station(a), FRESH, true, admission())
            .map_err(|(e, _)| e)
            .expect("registered");
        assert_eq!(
            ids(&first),
            ["p3", "p4"],
            "the last of p1, then p3; not b's"
        );
        let (all, _all_live) = r
            .register(Scope::AllStations, FRESH, true, admission())
            .map_err(|(e, _)| e)
            .expect("registered");
        assert_eq!(ids(&all), ["p2", "p3", "p4"]);
        r.dispatch(
            Source::Positions,
            5,
            vec![position(5, a, p1)],
            Delivery::Live,
        );
        r.dispatch(Source::Events, 9, vec![event(9, b)], Delivery::Live);
        assert_eq!(drain(&mut live), (vec!["p5".to_string()], false));
        assert_eq!(r.counts().head, [5, 9]);
        assert_eq!(r.counts().patrols_tracked, 3);
    }

    #[test]
    fn a_resuming_subscriber_gets_what_it_missed_from_the_ring_once() {
        let r = Registry::new(3, 16);
        let s = Uuid::new_v4();
        for seq in 1..=5 {
            r.dispatch(Source::Events, seq, vec![event(seq, s)], Delivery::Live);
        }
        assert_eq!(r.heads(), ([0, 5], [0, 2]), "the ring holds 3, 4 and 5");
        let (missed, mut live) = r
            .register(Scope::Station(s), [u64::MAX, 3], false, admission())
            .map_err(|(e, _)| e)
            .expect("registered");
        assert_eq!(ids(&missed), ["e4", "e5"]);
        r.dispatch(Source::Events, 6, vec![event(6, s)], Delivery::Live);
        assert_eq!(drain(&mut live), (vec!["e6".to_string()], false));
        // Behind the ring: refused, with the slots handed back to try again.
        let refused = r.register(Scope::Station(s), [u64::MAX, 1], false, admission());
        let Err((ConnectError::NotReady, permit)) = refused else {
            panic!("a cursor older than the ring must catch up first");
        };
        let (missed, _) = r
            .register(Scope::Station(s), [u64::MAX, 3], false, permit)
            .map_err(|(e, _)| e)
            .expect("registered");
        assert_eq!(ids(&missed), ["e4", "e5", "e6"]);
    }

    #[test]
    fn a_rewound_positions_stream_lets_its_watchers_go_and_resumes_them_before_the_loss() {
        // Given positions 1..=5 fanned out to a station's watcher and a desk (no
        // positions), and the stream then lost 4 and 5.
        let r = Registry::new(64, 16);
        let (s, patrol) = (Uuid::new_v4(), Uuid::new_v4());
        let register = |scope| {
            r.register(scope, [0, 0], false, admission())
                .map_err(|(e, _)| e)
                .expect("registered")
                .1
        };
        let mut watcher = register(Scope::Station(s));
        let mut desk = register(Scope::Desk(s));
        // Patrol `a` sent 1..=3, patrol `b` 4 and 5.
        let b = Uuid::new_v4();
        for seq in 1..=5 {
            let moved = if seq <= 3 { patrol } else { b };
            r.dispatch(
                Source::Positions,
                seq,
                vec![position(seq, s, moved)],
                Delivery::Live,
            );
        }
        let desk_frame = frame(Source::Events, 2, Audience::Desk(s), None);
        r.dispatch(Source::Events, 1, vec![event(1, s)], Delivery::Live);
        r.dispatch(Source::Events, 2, vec![desk_frame], Delivery::Live);
        // When the hub rewinds to 3.
        assert_eq!(
            r.rewind_positions(3),
            1,
            "one subscriber receives positions"
        );
        // Then the watcher's stream ends after what it had; the desk's goes on.
        let ended = drain(&mut watcher);
        assert_eq!(ended, (ids_of(&["p1", "p2", "p3", "p4", "p5", "e1"]), true));
        assert_eq!(drain(&mut desk), (vec!["e2".to_string()], false));
        // The ring, the snapshot and the head forget 4 and 5: `b` has no last position
        // until its next one.
        assert_eq!(r.heads().0, [3, 2]);
        let (snapshot, _) = r
            .register(Scope::Station(s), [u64::MAX, u64::MAX], true, admission())
            .map_err(|(e, _)| e)
            .expect("registered");
        assert_eq!(ids(&snapshot), ["p3"]);
        // New positions get the lost sequences: a watcher coming back with p5 (the old
        // one) resumes after 3 and misses neither new 4 nor new 5.
        for seq in 4..=6 {
            r.dispatch(
                Source::Positions,
                seq,
                vec![position(seq, s, patrol)],
                Delivery::Live,
            );
        }
        assert_eq!(r.resume_after(5), 3);
        assert_eq!(r.resume_after(6), 6, "beyond the lost range: exact");
        assert_eq!(r.resume_after(2), 2, "before it: exact");
        let (missed, _) = r
            .register(
                Scope::Station(s),
                [r.resume_after(5), u64::MAX],
                false,
                admission(),
            )
            .map_err(|(e, _)| e)
            .expect("registered");
        assert_eq!(ids(&missed), ["p4", "p5", "p6"]);
        // A rewind to what was never fanned out lets nobody go.
        assert_eq!(r.rewind_positions(6), 0);
    }

    fn ids_of(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_slow_subscriber_is_dropped_and_the_others_get_everything() {
        let r = Registry::new(64, 2);
        let s = Uuid::new_v4();
        let register = || {
            r.register(Scope::Station(s), FRESH, false, admission())
                .map_err(|(e, _)| e)
                .expect("registered")
                .1
        };
        let (mut slow, mut healthy) = (register(), register());
        let mut got = Vec::new();
        for seq in 1..=4 {
            r.dispatch(Source::Events, seq, vec![event(seq, s)], Delivery::Live);
            got.extend(drain(&mut healthy).0);
        }
        assert_eq!(got, ["e1", "e2", "e3", "e4"]);
        assert_eq!(
            drain(&mut slow),
            (vec!["e1".to_string(), "e2".to_string()], true),
            "what was buffered, then the end"
        );
        let counts = r.counts();
        assert_eq!((counts.subscribers, counts.dropped_slow_clients), (1, 1));
    }

    #[test]
    fn an_inbox_gets_only_its_officers_frames() {
        let r = Registry::new(16, 16);
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (_, mut inbox) = r
            .register(Scope::Officer(me), FRESH, true, admission())
            .map_err(|(e, _)| e)
            .expect("registered");
        r.dispatch(
            Source::Positions,
            1,
            vec![position(1, Uuid::new_v4(), Uuid::new_v4())],
            Delivery::Live,
        );
        let mine = frame(Source::Events, 2, Audience::Officers(vec![other, me]), None);
        let theirs = frame(Source::Events, 3, Audience::Officers(vec![other]), None);
        r.dispatch(Source::Events, 3, vec![mine, theirs], Delivery::Live);
        assert_eq!(drain(&mut inbox), (vec!["e2".to_string()], false));
    }

    #[test]
    fn a_desk_gets_its_stations_report_frames_and_no_positions() {
        let r = Registry::new(16, 16);
        let (here, there) = (Uuid::new_v4(), Uuid::new_v4());
        r.dispatch(
            Source::Positions,
            1,
            vec![position(1, here, Uuid::new_v4())],
            Delivery::Seed,
        );
        let register = |scope| {
            r.register(scope, FRESH, true, admission())
                .map_err(|(e, _)| e)
                .expect("registered")
        };
        let (first, mut desk) = register(Scope::Desk(here));
        assert!(first.is_empty(), "no snapshot of positions for a desk");
        let (_, mut all) = register(Scope::AllDesks);
        let (_, mut patrols) = register(Scope::Station(here));
        let ours = frame(Source::Events, 2, Audience::Desk(here), None);
        let theirs = frame(Source::Events, 3, Audience::Desk(there), None);
        r.dispatch(
            Source::Events,
            3,
            vec![ours, theirs, event(3, here)],
            Delivery::Live,
        );
        assert_eq!(drain(&mut desk), (vec!["e2".to_string()], false));
        assert_eq!(
            drain(&mut all),
            (vec!["e2".to_string(), "e3".to_string()], false)
        );
        assert_eq!(drain(&mut patrols), (vec!["e3".to_string()], false));
        assert!(!Scope::Desk(here).wants(&frame(
            Source::Positions,
            4,
            Audience::Station(here),
            None
        )));
        drop(desk);
        r.dispatch(
            Source::Events,
            5,
            vec![frame(Source::Events, 5, Audience::Desk(here), None)],
            Delivery::Live,
        );
        assert_eq!(r.counts().subscribers, 2, "a dropped desk unregisters");
    }

    #[test]
    fn closing_ends_every_stream_and_refuses_new_ones() {
        let r = Registry::new(16, 16);
        let (_, mut live) = r
            .register(Scope::AllStations, FRESH, false, admission())
            .map_err(|(e, _)| e)
            .expect("registered");
        r.close();
        assert_eq!(drain(&mut live), (vec![], true));
        assert!(matches!(
            r.register(Scope::AllStations, FRESH, false, admission()),
            Err((ConnectError::Closed, _))
        ));
    }

    #[test]
    fn a_dropped_stream_unregisters_and_gives_its_slots_back() {
        let r = Registry::new(16, 16);
        let admissions = Admissions::new(1, 1);
        let account = Uuid::new_v4();
        let permit = admissions.admit(account).expect("a slot");
        assert_eq!(
            admissions.admit(account).err(),
            Some(ConnectError::AccountFull)
        );
        assert_eq!(
            admissions.admit(Uuid::new_v4()).err(),
            Some(ConnectError::Full)
        );
        let (_, live) = r
            .register(Scope::Station(Uuid::new_v4()), FRESH, false, permit)
            .map_err(|(e, _)| e)
            .expect("registered");
        assert_eq!((r.counts().subscribers, admissions.open()), (1, 1));
        drop(live);
        assert_eq!((r.counts().subscribers, admissions.open()), (0, 0));
        assert!(
            admissions.admit(account).is_ok(),
            "the account's slot came back"
        );
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
    fn a_reporters_frame_reaches_their_account_and_the_reports_token_holders_only() {
        let r = Registry::new(16, 16);
        let (citizen, other, report) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let register = |scope| {
            r.register(scope, FRESH, false, admission())
                .map_err(|(e, _)| e)
                .expect("registered")
                .1
        };
        let mut mine = register(Scope::Reporter(citizen));
        let mut token = register(Scope::Report(report));
        let mut others = register(Scope::Reporter(other));
        let mut another_report = register(Scope::Report(Uuid::new_v4()));
        let mut staff = register(Scope::AllStations);
        let signed_in = frame(
            Source::Events,
            1,
            Audience::Reporter {
                report,
                account: Some(citizen),
            },
            None,
        );
        let anonymous = frame(
            Source::Events,
            2,
            Audience::Reporter {
                report,
                account: None,
            },
            None,
        );
        r.dispatch(
            Source::Events,
            2,
            vec![signed_in, anonymous],
            Delivery::Live,
        );
        assert_eq!(drain(&mut mine), (vec!["e1".to_string()], false));
        assert_eq!(
            drain(&mut token),
            (vec!["e1".to_string(), "e2".to_string()], false)
        );
        for s in [&mut others, &mut another_report, &mut staff] {
            assert_eq!(drain(s), (vec![], false));
        }
        // A reporter resuming gets what they missed from the ring, and only theirs.
        let (missed, _) = r
            .register(Scope::Report(report), [u64::MAX, 1], false, admission())
            .map_err(|(e, _)| e)
            .expect("registered");
        assert_eq!(ids(&missed), ["e2"]);
        assert!(!Scope::Reporter(citizen).has_positions());
        assert!(!Scope::Report(report).has_positions());
    }
}
