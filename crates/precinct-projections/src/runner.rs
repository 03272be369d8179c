//! Entry points: [`run_all`] every projector until shutdown, [`rebuild`] every event read
//! model from the log. (The schema is migrated by [`precinct_readmodel::migrate`].)

use std::time::{Duration, Instant};

use precinct_eventlog::EventLog;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::checkpoint;
use crate::error::ProjectionError;
use crate::projection::{event_tables, Projection};
use crate::projections::analytics::Analytics;
use crate::projections::crime_types::CrimeTypes;
use crate::projections::webhooks::Webhooks;
use crate::projections::{accounts::Accounts, audit::Audit, patrols::Patrols};
use crate::projections::{reports::Reports, stations::Stations};
use crate::quarantine;
use crate::reader::{self, Pace, Reader};
use crate::request_log;
use crate::roster::{self, RosterOptions};
use crate::worker::{Outcome, Worker, WorkerConfig};
use precinct_readmodel::EVENT_PROJECTIONS;

/// Most events per transaction when live or catching up.
pub const DEFAULT_BATCH: usize = 500;
/// Most events per transaction during a rebuild.
pub const REBUILD_BATCH: usize = 2000;

/// How [`run_with`] runs the projectors.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Most events per transaction.
    pub batch_size: usize,
    /// Run only these projections (names as in [`EVENT_PROJECTIONS`], plus
    /// `request_log`); `None`: all of them.
    pub only: Option<Vec<String>>,
    /// Run the request-log projector over the log's request stream (`false`: not at
    /// all; [`run_all`] runs it).
    pub request_log: bool,
    /// Longest pause between retries after a transient failure.
    pub max_backoff: Duration,
    /// Run the roster projector over the positions stream with these settings (it is
    /// named `patrol_positions` for `only`); `None`: no roster projector ([`run_all`] runs
    /// it with the settings it is given).
    pub roster: Option<RosterOptions>,
    /// At start, the event projections whose checkpoints are within this many events
    /// of the most advanced one share the reader from the least advanced of them; one
    /// further behind first catches up on its own ([`crate::reader`]).
    pub share_within: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_BATCH,
            only: None,
            request_log: false,
            max_backoff: Duration::from_secs(5),
            roster: None,
            share_within: reader::NEAR,
        }
    }
}

impl RunOptions {
    fn wants(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }
}

type Tasks = JoinSet<(&'static str, Outcome)>;

fn spawn<P: Projection>(
    tasks: &mut Tasks,
    projection: P,
    pool: &PgPool,
    reader: &Reader,
    config: WorkerConfig,
    shutdown: &CancellationToken,
) {
    let worker = Worker {
        consumer: projection,
        pool: pool.clone(),
        subscribe: reader.subscriber(P::NAME),
        config,
        shutdown: shutdown.clone(),
    };
    tasks.spawn(async move { (P::NAME, worker.run().await) });
}

/// Spawns one task per event projection `wants`, all fed by `reader`.
fn spawn_all(
    tasks: &mut Tasks,
    pool: &PgPool,
    reader: &Reader,
    config: &WorkerConfig,
    shutdown: &CancellationToken,
    wants: impl Fn(&str) -> bool,
) {
    let c = || config.clone();
    if wants(Reports::NAME) {
        spawn(tasks, Reports, pool, reader, c(), shutdown);
    }
    if wants(Patrols::NAME) {
        spawn(tasks, Patrols, pool, reader, c(), shutdown);
    }
    if wants(Stations::NAME) {
        spawn(tasks, Stations, pool, reader, c(), shutdown);
    }
    if wants(CrimeTypes::NAME) {
        spawn(tasks, CrimeTypes, pool, reader, c(), shutdown);
    }
    if wants(Webhooks::NAME) {
        spawn(tasks, Webhooks, pool, reader, c(), shutdown);
    }
    if wants(Accounts::NAME) {
        spawn(tasks, Accounts, pool, reader, c(), shutdown);
    }
    if wants(Audit::NAME) {
        spawn(tasks, Audit, pool, reader, c(), shutdown);
    }
    if wants(Analytics::NAME) {
        spawn(tasks, Analytics, pool, reader, c(), shutdown);
    }
}

async fn join(mut tasks: Tasks) -> Vec<(&'static str, Outcome)> {
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((name, outcome)) => {
                tracing::info!(projection = name, ?outcome, "projector ended");
                outcomes.push((name, outcome));
            }
            Err(e) => tracing::error!(error = %e, "projector task panicked or was aborted"),
        }
    }
    outcomes.sort_by_key(|(name, _)| *name);
    outcomes
}

/// Runs every projector, the request log and the roster (with these settings)
/// included, until `shutdown` is cancelled; see [`run_with`]. Fails only if PostgreSQL
/// cannot be reached at start; poison events are quarantined (logged, counted by
/// [`crate::status()`]) and stop nothing.
pub async fn run_all(
    pool: PgPool,
    log: EventLog,
    roster: RosterOptions,
    shutdown: CancellationToken,
) -> Result<(), ProjectionError> {
    for name in EVENT_PROJECTIONS
        .iter()
        .chain([&request_log::NAME, &roster::NAME])
    {
        checkpoint::ensure(&pool, name).await?;
    }
    let opts = RunOptions {
        request_log: true,
        roster: Some(roster),
        ..RunOptions::default()
    };
    run_with(pool, log, opts, shutdown).await;
    Ok(())
}

/// Runs the chosen projectors (each its own task, subscription and checkpoint) until
/// `shutdown` is cancelled, then lets each finish its batch in flight and returns how
/// each ended.
///
/// Dropping (aborting) the returned future aborts every projector: a transaction in
/// flight is rolled back, and the next run replays it.
pub async fn run_with(
    pool: PgPool,
    log: EventLog,
    opts: RunOptions,
    shutdown: CancellationToken,
) -> Vec<(&'static str, Outcome)> {
    let mut tasks = Tasks::new();
    let config = WorkerConfig {
        until: None,
        max_backoff: opts.max_backoff,
    };
    let names = EVENT_PROJECTIONS
        .iter()
        .copied()
        .filter(|n| opts.wants(n))
        .collect();
    let shared = Reader::spawn(
        log.clone(),
        pool.clone(),
        Pace::Live,
        opts.batch_size,
        names,
        opts.share_within,
        shutdown.clone(),
    );
    spawn_all(&mut tasks, &pool, &shared, &config, &shutdown, |n| {
        opts.wants(n)
    });
    if opts.request_log && opts.wants(request_log::NAME) {
        let (pool, log, shutdown) = (pool.clone(), log.clone(), shutdown.clone());
        let batch = opts.batch_size;
        tasks.spawn(async move {
            let outcome = request_log::run_request_log(pool, log, batch, shutdown).await;
            (request_log::NAME, outcome)
        });
    }
    if let Some(roster) = opts.roster.clone() {
        if opts.wants(roster::NAME) {
            let (pool, positions, shutdown) = (pool.clone(), log.positions(), shutdown.clone());
            tasks.spawn(async move {
                let outcome = roster::run_roster(pool, positions, roster, None, shutdown).await;
                (roster::NAME, outcome)
            });
        }
    }
    join(tasks).await
}

/// What [`rebuild`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildSummary {
    /// The log head when the rebuild started; every projection reached at least it.
    pub head: u64,
    /// The positions stream's last sequence when the rebuild started; the roster
    /// replayed every retained position up to it.
    pub positions_head: u64,
    pub elapsed: Duration,
}

/// Empties every event read model and its quarantine, resets their checkpoints, and
/// replays the whole log into them (large batches) up to the head observed at the
/// start, quarantining again what still fails and honouring operators' `skip`
/// decisions. The request log is left alone: it is not derived from the event log.
///
/// The tables' secondary indexes are dropped with the rows and built again after the
/// replay, even when it fails; their definitions are recorded in the same transactions,
/// so if the process dies in between, the next [`precinct_readmodel::migrate`] builds
/// them (ADR 0041).
///
/// Meant to run while no projector is running; one that is notices its checkpoint
/// moved and starts over from it, so the result is still right.
///
/// The roster's locations (in `patrols`, which is emptied) are then replayed from the
/// positions stream as far as it retains them; `patrol_track` is kept (it outlives the
/// stream's retention, and replaying into it inserts nothing twice).
pub async fn rebuild(pool: &PgPool, log: &EventLog) -> Result<RebuildSummary, ProjectionError> {
    rebuild_with(pool, log, RosterOptions::default()).await
}

/// [`rebuild`], with the roster projector's settings (use the live ones: the track
/// interval decides the buckets).
#[tracing::instrument(skip_all)]
pub async fn rebuild_with(
    pool: &PgPool,
    log: &EventLog,
    roster_opts: RosterOptions,
) -> Result<RebuildSummary, ProjectionError> {
    let started = Instant::now();
    let head = log.head().await?;
    let positions_head = log.positions().head().await?;
    let mut tx = pool.begin().await?;
    let emptied = event_tables();
    let tables = emptied.join(", ");
    sqlx::query(&format!("TRUNCATE {tables}"))
        .execute(&mut *tx)
        .await?;
    checkpoint::reset(&mut tx, EVENT_PROJECTIONS).await?;
    checkpoint::reset(&mut tx, &[roster::NAME]).await?;
    // Quarantine is recomputed like the rows; operators' decisions are kept (and a
    // `skip` is honoured again).
    quarantine::reset(&mut tx, EVENT_PROJECTIONS).await?;
    // Their secondary indexes are built once at the end, by a sort each, instead of
    // taking an insertion per row and per update (ADR 0041).
    let deferred = precinct_readmodel::deferred_indexes::defer(&mut tx, &emptied).await?;
    tx.commit().await?;
    tracing::info!(
        head,
        deferred = deferred.len(),
        "read models emptied; replaying the log"
    );
    let replayed = replay(pool, log, head, positions_head, roster_opts).await;
    // Built again whether or not the replay got through: a failed rebuild is rerun,
    // but meanwhile the API reads these tables.
    let built = precinct_readmodel::deferred_indexes::restore(pool).await;
    replayed?;
    built?;
    // The tables were refilled from empty: refresh the planner's statistics now rather
    // than when autovacuum next comes by, or the first queries plan for empty tables.
    sqlx::query(&format!("ANALYZE {tables}"))
        .execute(pool)
        .await?;
    let summary = RebuildSummary {
        head,
        positions_head,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        head,
        elapsed_ms = summary.elapsed.as_millis() as u64,
        "rebuild done"
    );
    Ok(summary)
}

/// The replay of [`rebuild_with`]: every event projection up to `head`, in step, then
/// the roster's locations up to `positions_head`.
async fn replay(
    pool: &PgPool,
    log: &EventLog,
    head: u64,
    positions_head: u64,
    roster_opts: RosterOptions,
) -> Result<(), ProjectionError> {
    let mut tasks = Tasks::new();
    let config = WorkerConfig {
        until: Some(head),
        max_backoff: Duration::from_secs(5),
    };
    let never = CancellationToken::new();
    let reading = CancellationToken::new();
    // Every projection from the start, in step: the reader reads the next batch while
    // the projections commit the previous ones.
    let pace = Pace::Lockstep {
        subscribers: EVENT_PROJECTIONS.len(),
    };
    let names = EVENT_PROJECTIONS.to_vec();
    let shared = Reader::spawn(
        log.clone(),
        pool.clone(),
        pace,
        REBUILD_BATCH,
        names,
        reader::NEAR,
        reading.clone(),
    );
    spawn_all(&mut tasks, pool, &shared, &config, &never, |_| true);
    let outcomes = join(tasks).await;
    reading.cancel();
    if outcomes.len() != EVENT_PROJECTIONS.len() {
        return Err(ProjectionError::Failed {
            projection: "rebuild".into(),
            position: 0,
            error: "a projector task died".into(),
        });
    }
    for (name, outcome) in &outcomes {
        if !matches!(outcome, Outcome::ReachedHead { .. }) {
            return Err(ProjectionError::Failed {
                projection: (*name).into(),
                position: 0,
                error: format!("stopped before the head: {outcome:?}"),
            });
        }
    }
    // Locations go into the `patrols` rows just rebuilt.
    roster::run_roster(
        pool.clone(),
        log.positions(),
        roster_opts,
        Some(positions_head),
        never,
    )
    .await;
    Ok(())
}
