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
//! - Two consumers per process, whatever the number of clients (`follow.rs`):
//!   positions (starting with the last position of every patrol, which seeds the
//!   snapshot map) and the event log from its head at start (patrol status changes,
//!   assignments for officers' inboxes, and report changes for stations' desks).
//! - Each message becomes a few [`Frame`]s at most ([`super::frames`]: typed decoding
//!   and translation: a report event makes one for an inbox and one or two for desks),
//!   each serialized once and shared (`Arc`) by every client that wants it.
//! - The [`Registry`] fans frames out to bounded per-client channels, drops a client
//!   whose channel is full, and keeps a ring of recent frames and the last position of
//!   every patrol, so that a client registers atomically with its snapshot (fresh) or
//!   with the frames it missed (resume): no gap and no duplicate between what it
//!   catches up on and what comes live. A client further behind than the ring first
//!   catches up from JetStream (this file).
//! - A connection holds one of the process's slots and one of its account's
//!   ([`LiveConfig::max_streams_per_account`], over every SSE endpoint): one account
//!   cannot take every slot.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream};
use futures::StreamExt;
use precinct_eventlog::positions::PositionLog;
use precinct_eventlog::{EventLog, RecordedEvent};
use precinct_readmodel::PgPool;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::directory::PatrolDirectory;
use super::follow::Replay;
pub use super::frames::{Audience, Frame, Source};
use super::frames::{Decoded, Facts, Reader, Translator};
pub use super::registry::{Admission, ConnectError, LiveReceiver, Resume, Scope};
use super::registry::{Admissions, Registry};
use super::LiveConfig;
use crate::access::AccountDirectory;
use precinct_domain::patrol::serves_in;
use precinct_domain::report::{Report, ReportEvent, Reporter};
use precinct_domain::{Aggregate, DomainEvent};

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

pub(super) struct Inner {
    pub(super) registry: Arc<Registry>,
    admissions: Admissions,
    pub(super) config: LiveConfig,
    ready: watch::Sender<[bool; 2]>,
    pub(super) shutdown: CancellationToken,
    directory: Arc<PatrolDirectory>,
    /// Who serves in a patrol now: an inbox frame goes to the crew members who do.
    accounts: AccountDirectory,
    pub(super) log: EventLog,
    pub(super) positions: PositionLog,
    pool: PgPool,
    translator: Translator,
}

/// What the translation of events asks: the patrol directory (station, crew), the
/// account view (who serves now) and the reports read model.
impl Facts for Inner {
    async fn station_of(&self, patrol: Uuid) -> Option<Uuid> {
        match self.directory.station_of(patrol).await {
            Ok(station) => station.map(|s| s.as_uuid()),
            Err(err) => {
                tracing::warn!(error = %err, %patrol, "live: patrol station unknown; status change not sent");
                None
            }
        }
    }

    async fn serving_crew(&self, patrol: Uuid) -> Vec<Uuid> {
        let Ok(Some(info)) = self.directory.get(patrol).await else {
            return Vec::new();
        };
        // A crew list can trail a role or station change: only members who serve in the
        // patrol now get its assignments (one not in the view yet is given the benefit).
        info.officer_ids
            .iter()
            .filter(|o| {
                self.accounts
                    .peek(**o)
                    .is_none_or(|a| serves_in(info.station_id, a.role, a.station_id))
            })
            .map(|o| o.as_uuid())
            .collect()
    }

    async fn assigned_patrol(&self, report: Uuid) -> Option<Uuid> {
        precinct_readmodel::queries::assigned_patrol(&self.pool, report)
            .await
            .ok()
            .flatten()
    }

    fn crew_changed(&self, patrol: Uuid) {
        self.directory.invalidate(patrol);
    }

    async fn report_station(&self, report: Uuid) -> Option<Uuid> {
        precinct_readmodel::queries::report_station(&self.pool, report)
            .await
            .ok()
            .flatten()
    }

    async fn reporter_of(&self, report: Uuid) -> Option<Option<Uuid>> {
        // The read model first; a report it does not hold yet is read from the log (its
        // first event names the reporter).
        match precinct_readmodel::queries::reporter_of(&self.pool, report).await {
            Ok(Some(reporter)) => return Some(reporter),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %err, %report, "live: cannot read the report's reporter")
            }
        }
        let stream = precinct_eventlog::StreamId::new(Report::TYPE, report);
        let events = self.log.read(&stream).await.ok()?;
        let first = events.first()?;
        match ReportEvent::from_parts_ref(&first.envelope.event_type, &first.data).ok()? {
            ReportEvent::ReportSubmitted(s) => Some(match s.reporter {
                Reporter::User { account_id } => Some(account_id.as_uuid()),
                Reporter::Anonymous { .. } => None,
            }),
            _ => None,
        }
    }
}

/// The live fan-out of this process. Cheap to clone.
#[derive(Clone)]
pub struct LiveHub {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("config", &self.inner.config)
            .finish()
    }
}

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
                registry: Registry::new(config.recent, config.client_buffer),
                admissions: Admissions::new(config.max_connections, config.max_streams_per_account),
                config,
                ready,
                shutdown: shutdown.clone(),
                directory,
                accounts,
                positions: log.positions(),
                log,
                pool,
                translator: Translator::default(),
            }),
        };
        let positions = tokio::spawn(hub.clone().follow_positions());
        let events = tokio::spawn(hub.clone().follow_events());
        let registry = hub.inner.registry.clone();
        let task = tokio::spawn(async move {
            let _ = positions.await;
            let _ = events.await;
            registry.close();
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
        let counts = self.inner.registry.counts();
        LiveStats {
            connections: self.inner.admissions.open(),
            subscribers: counts.subscribers,
            dropped_slow_clients: counts.dropped_slow_clients,
            positions_head: counts.head[Source::Positions as usize],
            events_head: counts.head[Source::Events as usize],
            patrols_tracked: counts.patrols_tracked,
        }
    }

    /// Takes one of `account`'s connection slots and one of the process's (both
    /// released when the stream ends).
    pub fn admit(&self, account: Uuid) -> Result<Admission, ConnectError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(ConnectError::Closed);
        }
        self.inner.admissions.admit(account)
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

    pub(super) fn set_ready(&self, source: Source) {
        self.inner.ready.send_modify(|r| r[source as usize] = true);
    }

    /// The frames an event makes: for a crew's inbox and a reporter (none, one or
    /// both), and for desks. `reader`: the hub's own consumer ([`Reader::Live`]) also
    /// keeps the crew cache, the report links and the reports' stations current.
    pub(super) async fn event_frames(&self, e: &RecordedEvent, reader: Reader) -> Vec<Frame> {
        match Decoded::from_recorded(e) {
            Ok(Some(decoded)) => {
                let translator = &self.inner.translator;
                let facts = &*self.inner;
                let mut frames = translator.frames(&decoded, reader, facts).await;
                frames.extend(translator.desk_frames(&decoded, reader, facts).await);
                frames
            }
            Ok(None) => Vec::new(),
            Err(err) => {
                tracing::warn!(position = e.position(), event_type = %e.envelope.event_type, error = %err, "live: undecodable event; no frame");
                Vec::new()
            }
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
                .inner
                .registry
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
        let caught_up =
            stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
        let live = stream::once(async move { handover.await.ok().flatten() })
            .filter_map(futures::future::ready)
            .flatten();
        Ok(caught_up.chain(live).boxed())
    }

    /// Where to resume each source. The one the id names resumes exactly after it; the
    /// other from the same moment less a slack (the two streams interleave on the
    /// wire): at-least-once for it. `true`: positions start from a snapshot instead.
    async fn resume_cursors(&self, scope: Scope, resume: Resume) -> ([u64; 2], bool) {
        let (head, _) = self.inner.registry.heads();
        let [hp, he] = head;
        let slack = chrono::Duration::from_std(self.inner.config.resume_slack)
            .unwrap_or_else(|_| chrono::Duration::seconds(2));
        match resume {
            Resume::Fresh => ([hp, he], scope.has_positions()),
            Resume::Position(seq) => {
                // An id the stream has lost and reused since resumes before the loss.
                let p = self.inner.registry.resume_after(seq).min(hp);
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
        let to = |through| Replay {
            scope,
            through,
            tx: &tx,
        };
        loop {
            if self.inner.shutdown.is_cancelled() || tx.is_closed() {
                return None;
            }
            let (head, covered) = self.inner.registry.heads();
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
                    cursors[p] = self.replay_positions(cursors[p], to(covered[p])).await?;
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
                    cursors[e] = self.replay_events(cursors[e], to(covered[e])).await?;
                }
                continue;
            }
            match self
                .inner
                .registry
                .register(scope, cursors, snapshot, permit)
            {
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
}
