//! `patrol_positions`: the roster's last known location of each patrol
//! (`patrols.latitude/longitude/location_at`) and the down-sampled track
//! (`patrol_track`), fed by the positions stream at a lower rate than it is written.
//!
//! Positions arrive by the thousand per second; PostgreSQL gets at most one write per
//! patrol per `location_interval` (5 s by default). The projector reads the stream with
//! one ordered consumer and keeps, in memory, each patrol's newest fix (by recorded
//! time) and the first fix of each (patrol, track bucket); every interval it writes
//! them and its checkpoint (the stream sequence it consumed up to) in one transaction.
//! A crash replays what was not committed, and the writes are idempotent (the newest
//! fix wins; a track bucket keeps its first point), so nothing is doubled and a rebuild
//! gives the same rows.
//!
//! Unlike the event projections, a position that does not decode is logged and
//! skipped: positions are not the system of record, and a bad ping must not stop the
//! roster.
//!
//! A patrol whose row the `patrols` projection has not written yet (registered a few
//! milliseconds before its first ping) gets its location at the next write.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use precinct_eventlog::positions::{Consumed, PositionLog, RecordedMove, Start, TailCheck};
use precinct_eventlog::ReadError;
use precinct_retry::Backoff;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::checkpoint::{self, to_i64};
use crate::worker::Outcome;

/// The checkpoint row's name; its position is a positions-stream sequence.
pub const NAME: &str = precinct_readmodel::names::PATROL_POSITIONS;

/// How the roster follows the positions stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterOptions {
    /// At most one location write per patrol per interval (default 5 s).
    pub location_interval: Duration,
    /// One track point per patrol per interval of recorded time (default 30 s). A
    /// rebuild must use the value the live projector used, or buckets differ.
    pub track_interval: Duration,
    /// Most positions held in memory before an early write (while catching up).
    pub max_pending: usize,
}

impl Default for RosterOptions {
    fn default() -> Self {
        Self {
            location_interval: Duration::from_secs(5),
            track_interval: Duration::from_secs(30),
            max_pending: 50_000,
        }
    }
}

/// What is waiting for the next write.
#[derive(Default)]
struct Pending {
    /// Each patrol's newest fix by recorded time (ties: the later sequence).
    latest: HashMap<Uuid, RecordedMove>,
    /// The first fix (by sequence) of each (patrol, bucket start in seconds).
    track: HashMap<(Uuid, i64), RecordedMove>,
    /// The last sequence consumed (written or skipped).
    through: u64,
    count: usize,
}

impl Pending {
    fn new(through: u64) -> Self {
        Self {
            through,
            ..Self::default()
        }
    }

    fn add(&mut self, m: RecordedMove, track_secs: i64) {
        self.through = self.through.max(m.seq);
        self.count += 1;
        let bucket = bucket_of(m.moved.recorded_at, track_secs);
        self.track
            .entry((m.moved.patrol_id, bucket))
            .or_insert_with(|| m.clone());
        match self.latest.get(&m.moved.patrol_id) {
            Some(old) if old.moved.recorded_at > m.moved.recorded_at => {}
            _ => {
                self.latest.insert(m.moved.patrol_id, m);
            }
        }
    }

    fn skip(&mut self, seq: u64) {
        self.through = self.through.max(seq);
        self.count += 1;
    }
}

/// The start (in Unix seconds) of the track bucket `at` falls in.
fn bucket_of(at: DateTime<Utc>, secs: i64) -> i64 {
    at.timestamp().div_euclid(secs) * secs
}

enum FlushError {
    /// The checkpoint is not where this projector left it (a rebuild, another process).
    Moved,
    Db(sqlx::Error),
}

/// Writes what is pending and the checkpoint in one transaction; returns the new
/// checkpoint.
#[tracing::instrument(
    name = "roster_flush",
    skip_all,
    fields(through = pending.through, patrols = pending.latest.len(), track = pending.track.len())
)]
async fn flush(pool: &PgPool, expected: u64, pending: &Pending) -> Result<u64, FlushError> {
    let mut tx = begin_at(pool, expected).await?;
    if !pending.latest.is_empty() {
        let mut ids = Vec::new();
        let mut lats = Vec::new();
        let mut lons = Vec::new();
        let mut ats = Vec::new();
        for (id, m) in &pending.latest {
            ids.push(*id);
            lats.push(m.moved.latitude);
            lons.push(m.moved.longitude);
            ats.push(m.moved.recorded_at);
        }
        sqlx::query(
            "UPDATE patrols AS p
             SET latitude = u.lat, longitude = u.lon, location_at = u.at
             FROM UNNEST($1::uuid[], $2::float8[], $3::float8[], $4::timestamptz[])
                  AS u(id, lat, lon, at)
             WHERE p.id = u.id AND (p.location_at IS NULL OR p.location_at <= u.at)",
        )
        .bind(&ids)
        .bind(&lats)
        .bind(&lons)
        .bind(&ats)
        .execute(&mut *tx)
        .await
        .map_err(FlushError::Db)?;
    }
    if !pending.track.is_empty() {
        let mut points: Vec<(&(Uuid, i64), &RecordedMove)> = pending.track.iter().collect();
        points.sort_by_key(|(_, m)| m.seq);
        let mut ids = Vec::new();
        let mut buckets = Vec::new();
        let mut seqs = Vec::new();
        let mut stations = Vec::new();
        let mut lats = Vec::new();
        let mut lons = Vec::new();
        let mut headings = Vec::new();
        let mut speeds = Vec::new();
        let mut ats = Vec::new();
        for ((id, bucket), m) in points {
            ids.push(*id);
            buckets.push(DateTime::<Utc>::from_timestamp(*bucket, 0).unwrap_or_default());
            seqs.push(to_i64(m.seq));
            stations.push(m.moved.station_id);
            lats.push(m.moved.latitude);
            lons.push(m.moved.longitude);
            headings.push(m.moved.heading);
            speeds.push(m.moved.speed_mps);
            ats.push(m.moved.recorded_at);
        }
        sqlx::query(
            "INSERT INTO patrol_track (patrol_id, bucket, seq, station_id, latitude, longitude,
                heading, speed_mps, recorded_at)
             SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::int8[], $4::uuid[],
                $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::timestamptz[])
             ON CONFLICT (patrol_id, bucket) DO NOTHING",
        )
        .bind(&ids)
        .bind(&buckets)
        .bind(&seqs)
        .bind(&stations)
        .bind(&lats)
        .bind(&lons)
        .bind(&headings)
        .bind(&speeds)
        .bind(&ats)
        .execute(&mut *tx)
        .await
        .map_err(FlushError::Db)?;
    }
    checkpoint::advance(&mut tx, NAME, pending.through)
        .await
        .map_err(FlushError::Db)?;
    tx.commit().await.map_err(FlushError::Db)?;
    Ok(pending.through)
}

/// Moves the checkpoint back from `expected` to `to`: the stream lost what came after
/// `to` and gives those sequences to new positions (ADR 0005, issue 21 addendum). The
/// roster's writes are idempotent, so reading again from `to` is harmless.
async fn rewind(pool: &PgPool, expected: u64, to: u64) -> Result<(), FlushError> {
    let mut tx = begin_at(pool, expected).await?;
    checkpoint::advance(&mut tx, NAME, to)
        .await
        .map_err(FlushError::Db)?;
    tx.commit().await.map_err(FlushError::Db)?;
    tracing::warn!(
        from = expected,
        to,
        "roster: the positions stream lost what it had consumed; reading again after what it kept"
    );
    Ok(())
}

/// A transaction holding the checkpoint row's lock, if the checkpoint is still at
/// `expected`.
async fn begin_at(
    pool: &PgPool,
    expected: u64,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, FlushError> {
    let mut tx = pool.begin().await.map_err(FlushError::Db)?;
    let (current, _) = checkpoint::lock(&mut tx, NAME)
        .await
        .map_err(FlushError::Db)?;
    if current != expected {
        let _ = tx.rollback().await;
        return Err(FlushError::Moved);
    }
    Ok(tx)
}

/// How many consumed positions the roster remembers to check the stream against.
const REMEMBERED: usize = 4096;

/// Runs the roster projector until `shutdown`, or (with `until`) until it has written
/// everything up to that sequence. Transient failures (NATS, PostgreSQL) are retried
/// with back-off from the checkpoint.
///
/// One active roster projector across processes (ADR 0006): while this process leads
/// ([`crate::leadership::while_leading`]); a rebuild (`until`) does not wait for it.
#[tracing::instrument(name = "roster", skip_all)]
pub async fn run_roster(
    pool: PgPool,
    positions: PositionLog,
    opts: RosterOptions,
    until: Option<u64>,
    shutdown: CancellationToken,
) -> Outcome {
    if until.is_some() {
        return follow(pool, positions, opts, until, shutdown).await;
    }
    let work = |stop| follow(pool.clone(), positions.clone(), opts.clone(), None, stop);
    crate::leadership::while_leading(&pool, NAME, &shutdown, work)
        .await
        .unwrap_or(Outcome::Stopped { position: 0 })
}

/// Follows the positions stream from the checkpoint until `shutdown` or `until`.
async fn follow(
    pool: PgPool,
    positions: PositionLog,
    opts: RosterOptions,
    until: Option<u64>,
    shutdown: CancellationToken,
) -> Outcome {
    let track_secs = i64::try_from(opts.track_interval.as_secs().max(1)).unwrap_or(30);
    let interval = opts.location_interval.max(Duration::from_millis(10));
    let reached = |p: u64| matches!(until, Some(t) if p >= t);
    let mut backoff =
        Backoff::new(Duration::from_millis(100), Duration::from_secs(5)).until(&shutdown);
    let mut last = 0u64;
    // What this process consumed, checked after every reconnect; and the sequence to
    // move the checkpoint back to, once that is done, when the stream lost what came
    // after it.
    let mut consumed = TailCheck::new(&positions, REMEMBERED);
    let mut rewind_to: Option<u64> = None;
    'subscribe: loop {
        if shutdown.is_cancelled() {
            return Outcome::Stopped { position: last };
        }
        let read = || checkpoint::ensure(&pool, NAME);
        let failed = |e: &sqlx::Error| tracing::warn!(error = %e, "roster: cannot read checkpoint; retrying");
        match backoff.retry(read, failed).await {
            Ok(row) => last = row.position(),
            Err(_) => return Outcome::Stopped { position: last },
        }
        if reached(last) {
            return Outcome::ReachedHead { position: last };
        }
        // A stream behind the checkpoint lost what came after its head (and will give
        // those sequences to new positions): read again from its head. Seen only when
        // looked at before new positions pass the checkpoint (e.g. at start).
        if let Ok(head) = positions.head().await {
            if head < last {
                rewind_to = Some(rewind_to.map_or(head, |to| to.min(head)));
            }
        }
        // After a reconnect: does the stream still hold what was consumed?
        if consumed.reconnected(&positions) {
            match consumed.check(&positions).await {
                Ok(None) => {}
                Ok(Some(to)) => rewind_to = Some(rewind_to.map_or(to, |t| t.min(to))),
                Err(e) => {
                    tracing::warn!(error = %e, "roster: cannot check the positions stream; retrying");
                    if !backoff.pause().await {
                        return Outcome::Stopped { position: last };
                    }
                    continue 'subscribe;
                }
            }
        }
        // Kept until done: a failed rewind is tried again, never skipped.
        if let Some(to) = rewind_to {
            if to < last {
                match rewind(&pool, last, to).await {
                    Ok(()) => consumed.forget_after(to),
                    Err(FlushError::Moved) => continue 'subscribe,
                    Err(FlushError::Db(e)) => {
                        tracing::warn!(error = %e, "roster: cannot rewind; retrying");
                        if !backoff.pause().await {
                            return Outcome::Stopped { position: last };
                        }
                        continue 'subscribe;
                    }
                }
            }
            rewind_to = None;
            continue 'subscribe;
        }
        let mut stream = match positions.subscribe(Start::Seq(last + 1)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "roster: cannot subscribe; retrying");
                if !backoff.pause().await {
                    return Outcome::Stopped { position: last };
                }
                continue;
            }
        };
        tracing::info!(from = last + 1, "roster subscribed to positions");
        let mut pending = Pending::new(last);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // A rebuild stops when the stream goes quiet (the target may have expired).
            let idle = async {
                match until {
                    Some(_) => tokio::time::sleep(Duration::from_secs(10)).await,
                    None => futures::future::pending::<()>().await,
                }
            };
            let mut write_now = false;
            let mut done = false;
            let mut broken = false;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    done = true;
                    write_now = true;
                }
                _ = tick.tick() => write_now = true,
                item = stream.next() => match item {
                    // Reconnected since the last check: this and what follows are read
                    // again once the stream is checked against what came before.
                    _ if consumed.reconnected(&positions) => {}
                    None => broken = true,
                    Some(Ok(m)) if m.seq <= pending.through => {}
                    Some(Ok(m)) => {
                        let seq = m.seq;
                        consumed.push(Consumed::from(&m));
                        pending.add(m, track_secs);
                        write_now = pending.count >= opts.max_pending || reached(seq);
                    }
                    Some(Err(ReadError::Corrupt { position, reason })) => {
                        tracing::error!(seq = position, %reason, "roster: undecodable position skipped");
                        pending.skip(position);
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "roster: positions read failed; resubscribing");
                        broken = true;
                    }
                },
                _ = idle => {
                    write_now = true;
                    done = true;
                }
            }
            // Reconnected to NATS: write what is pending, then check the stream (above).
            let reconnected = consumed.reconnected(&positions);
            if (write_now || broken || reconnected) && pending.through > last {
                match flush(&pool, last, &pending).await {
                    Ok(p) => {
                        last = p;
                        pending = Pending::new(last);
                        backoff.reset();
                    }
                    Err(FlushError::Moved) => {
                        tracing::warn!("roster: checkpoint moved under us; re-reading it");
                        continue 'subscribe;
                    }
                    Err(FlushError::Db(e)) => {
                        tracing::warn!(error = %e, "roster: write failed; retrying from the checkpoint");
                        if !backoff.pause().await {
                            return Outcome::Stopped { position: last };
                        }
                        continue 'subscribe;
                    }
                }
            }
            if reached(last) || (done && until.is_some()) {
                return Outcome::ReachedHead { position: last };
            }
            if done {
                return Outcome::Stopped { position: last };
            }
            if broken {
                if !backoff.pause().await {
                    return Outcome::Stopped { position: last };
                }
                continue 'subscribe;
            }
            if reconnected {
                continue 'subscribe;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_aligned_to_the_interval() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().expect("time");
        assert_eq!(
            bucket_of(at("2026-01-01T00:00:29Z"), 30),
            bucket_of(at("2026-01-01T00:00:00Z"), 30)
        );
        assert_ne!(
            bucket_of(at("2026-01-01T00:00:30Z"), 30),
            bucket_of(at("2026-01-01T00:00:29Z"), 30)
        );
    }
}
