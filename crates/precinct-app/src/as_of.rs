//! A report as it stood at a time (`GET /crimes/{id}?as_of=`), folded from a stored
//! snapshot and the events after it instead of the whole stream (ADR 0022).
//!
//! A snapshot is the state after a stream's first `events` events, one every
//! [`SNAPSHOT_EVERY`] events. Positions never change, so a snapshot never goes stale: it
//! is a cache of the fold, written by the first `as_of` that folds past a boundary. It is
//! sealed whole under the data subject's key ([`precinct_vault::Vault::seal_existing`],
//! which never creates a key): erasing the subject destroys the key, and every snapshot
//! with it becomes unreadable — the erasure also deletes them, and none is written for
//! an erased subject. A snapshot that does not open or no longer deserializes is
//! ignored, and the whole stream is read (and the snapshots written again).
//!
//! Reads: the newest snapshot and the events after it give the state now (visibility is
//! decided on it); the state at `at` comes from the same tail when the newest snapshot
//! predates `at`, else from the newest snapshot that does and at most the events up to
//! the next one.

use chrono::{DateTime, Utc};
use precinct_domain::Aggregate;
use precinct_eventlog::{EventStore, RecordedEvent};
use precinct_vault::{Opened, Vault};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::ports::{Snapshot, Snapshots};
use crate::uow::{decode, stream_of};
use crate::{App, AppError};

/// A snapshot every this many events of a stream: an `as_of` folds at most this many
/// events past the snapshot it starts from (plus those after the newest, for now).
pub const SNAPSHOT_EVERY: u32 = 10;

/// States larger than this (serialized) get no snapshot: a report that large (hundreds
/// of long notes) would store megabytes per boundary; its `as_of` reads the log.
pub const MAX_SNAPSHOT_BYTES: usize = 64 * 1024;

/// The newest snapshot boundary at or before `events` (0: none).
fn boundary_at_or_before(events: usize) -> usize {
    events - events % SNAPSHOT_EVERY as usize
}

/// An aggregate as it is now and as it stood at a time, each with its version (the
/// position of its last event; 0: it did not exist).
#[derive(Debug)]
pub struct AsOf<A> {
    pub now: (A, u64),
    pub then: (A, u64),
    /// Whether a stored snapshot was the starting point (else the whole stream was read).
    pub from_snapshot: bool,
    /// Snapshots this read stored.
    pub written: usize,
}

/// A state at a snapshot boundary, not sealed yet.
struct Boundary<A> {
    events: u32,
    position: u64,
    max_occurred_at: DateTime<Utc>,
    state: A,
}

impl<S: EventStore> App<S> {
    /// Aggregate `A` `id` now and as it stood at `at`, from the snapshots of `store` when
    /// they serve (the same answer as [`App::load_as_of`], which reads the whole stream).
    /// Without a vault no snapshot is kept (it could not be erased).
    pub async fn load_as_of_with<A>(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        store: &impl Snapshots,
    ) -> Result<AsOf<A>, AppError>
    where
        A: Aggregate + Serialize + DeserializeOwned,
    {
        let Some(vault) = self.vault() else {
            let (now, then) = self.load_as_of::<A>(id, at).await?;
            return Ok(AsOf {
                now,
                then,
                from_snapshot: false,
                written: 0,
            });
        };
        let around = store.around(id, at).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "snapshots unavailable; reading the whole stream");
            Default::default()
        });
        let latest = match &around.latest {
            Some(s) => open::<A>(vault, s).await.map(|state| (s, state)),
            None => None,
        };
        let Some((latest, latest_state)) = latest else {
            return self.whole_stream_as_of(id, at, vault, store).await;
        };
        let stream = stream_of::<A>(id);
        let (tail, _) = self
            .log()
            .read_range(&stream, latest.position, usize::MAX)
            .await?;
        let decoded = decode::<A>(&tail)?;
        let mut now = latest_state.clone();
        let mut max_occurred_at = latest.max_occurred_at;
        let mut boundaries = Vec::new();
        // Only the newest boundary the tail passes is stored (one state per read).
        let newest = boundary_at_or_before(latest.events as usize + tail.len()) as u32;
        for (i, (e, d)) in tail.iter().zip(&decoded).enumerate() {
            now.apply(d);
            max_occurred_at = max_occurred_at.max(e.envelope.occurred_at);
            let events = latest.events + i as u32 + 1;
            if events == newest {
                boundaries.push(Boundary {
                    events,
                    position: e.position(),
                    max_occurred_at,
                    state: now.clone(),
                });
            }
        }
        let now_version = tail.last().map_or(latest.position, |e| e.position());
        let then = if latest.max_occurred_at <= at {
            fold_until(latest_state, latest.position, &tail, &decoded, at)
        } else {
            let (base_state, base_events, base_position) = match &around.base {
                Some(b) => match open::<A>(vault, b).await {
                    Some(state) => (state, b.events, b.position),
                    None => return self.whole_stream_as_of(id, at, vault, store).await,
                },
                None => (A::default(), 0, 0),
            };
            // The next snapshot's events did not all occur by `at`: the state then is
            // before it.
            let max = around
                .next_events
                .map_or(usize::MAX, |n| n.saturating_sub(base_events) as usize);
            let (events, decoded) = self
                .read_until_past::<A>(&stream, base_position, max, at)
                .await?;
            let folded = events
                .iter()
                .take_while(|e| e.envelope.occurred_at <= at)
                .count();
            // The boundary before `at`, if it is past the base: the next read at this
            // time starts there.
            let b = boundary_at_or_before(base_events as usize + folded);
            if b > base_events as usize {
                let n = b - base_events as usize;
                let mut state = base_state.clone();
                for d in &decoded[..n] {
                    state.apply(d);
                }
                let max_occurred_at = events[..n]
                    .iter()
                    .map(|e| e.envelope.occurred_at)
                    .chain(around.base.as_ref().map(|s| s.max_occurred_at))
                    .max()
                    .unwrap_or(at);
                boundaries.push(Boundary {
                    events: b as u32,
                    position: events[n - 1].position(),
                    max_occurred_at,
                    state,
                });
            }
            fold_until(base_state, base_position, &events, &decoded, at)
        };
        let written = store_snapshots(vault, store, id, boundaries).await;
        Ok(AsOf {
            now: (now, now_version),
            then,
            from_snapshot: true,
            written,
        })
    }

    /// At most `max` events of `stream` after `position`, read in pages (a snapshot
    /// interval first, doubling) until one occurred after `at` (the fold stops at the
    /// first such event), and decoded. Reading up to the next stored snapshot at once read every event between
    /// two distant snapshots to fold a few of them.
    async fn read_until_past<A: Aggregate>(
        &self,
        stream: &precinct_eventlog::StreamId,
        mut position: u64,
        max: usize,
        at: DateTime<Utc>,
    ) -> Result<(Vec<RecordedEvent>, Vec<A::Event>), AppError> {
        let mut events = Vec::new();
        let mut decoded = Vec::new();
        // One interval first, then twice as many each time: between snapshots hundreds
        // of events apart (states past MAX_SNAPSHOT_BYTES get none) a page of ten would
        // cost a round trip per ten events.
        let mut page = SNAPSHOT_EVERY as usize;
        while events.len() < max {
            let want = (max - events.len()).min(page);
            page = (page * 2).min(256);
            let (page, more) = self.log().read_range(stream, position, want).await?;
            decoded.extend(decode::<A>(&page)?);
            let past = page.iter().any(|e| e.envelope.occurred_at > at);
            let full = page.len() == want;
            if let Some(last) = page.last() {
                position = last.position();
            }
            events.extend(page);
            if past || !more || !full {
                break;
            }
        }
        Ok((events, decoded))
    }

    /// [`App::load_as_of`], storing a snapshot at every boundary on the way.
    async fn whole_stream_as_of<A>(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        vault: &Vault,
        store: &impl Snapshots,
    ) -> Result<AsOf<A>, AppError>
    where
        A: Aggregate + Serialize + DeserializeOwned,
    {
        let events = self.log().read(&stream_of::<A>(id)).await?;
        let decoded = decode::<A>(&events)?;
        // At most two states per read are stored: the newest boundary (the next reads'
        // state now) and the one before `at` (their start for this time).
        let upto = events
            .iter()
            .take_while(|e| e.envelope.occurred_at <= at)
            .count();
        let keep = [
            boundary_at_or_before(events.len()),
            boundary_at_or_before(upto),
        ];
        let mut state = A::default();
        let mut version = 0;
        let mut then = None;
        let mut max_occurred_at = None::<DateTime<Utc>>;
        let mut boundaries = Vec::new();
        for (i, (e, d)) in events.iter().zip(&decoded).enumerate() {
            if then.is_none() && e.envelope.occurred_at > at {
                then = Some((state.clone(), version));
            }
            state.apply(d);
            version = e.position();
            let max =
                max_occurred_at.map_or(e.envelope.occurred_at, |m| m.max(e.envelope.occurred_at));
            max_occurred_at = Some(max);
            let n = i + 1;
            if keep.contains(&n) {
                boundaries.push(Boundary {
                    events: n as u32,
                    position: version,
                    max_occurred_at: max,
                    state: state.clone(),
                });
            }
        }
        let then = then.unwrap_or_else(|| (state.clone(), version));
        let written = store_snapshots(vault, store, id, boundaries).await;
        Ok(AsOf {
            now: (state, version),
            then,
            from_snapshot: false,
            written,
        })
    }
}

/// Folds `events` onto `state` (at `version`) while they occurred by `at`.
fn fold_until<A: Aggregate>(
    mut state: A,
    mut version: u64,
    events: &[RecordedEvent],
    decoded: &[A::Event],
    at: DateTime<Utc>,
) -> (A, u64) {
    for (e, d) in events.iter().zip(decoded) {
        if e.envelope.occurred_at > at {
            break;
        }
        state.apply(d);
        version = e.position();
    }
    (state, version)
}

/// The state of a stored snapshot, if it opens and deserializes (never an unsealed one).
async fn open<A: DeserializeOwned>(vault: &Vault, s: &Snapshot) -> Option<A> {
    if !Vault::is_sealed(&s.sealed) {
        return None;
    }
    match vault.open_value(&s.sealed).await {
        Ok(Opened::Plain(v)) => serde_json::from_value(v)
            .map_err(|e| tracing::debug!(error = %e, "a snapshot no longer deserializes"))
            .ok(),
        Ok(Opened::Erased) => None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot open a snapshot; reading the whole stream");
            None
        }
    }
}

/// Seals and stores `boundaries`; how many were stored. A failure only costs the next
/// reader a longer fold, so it is logged, not answered. None is sealed for a subject
/// without a live key (erased): its personal data must not come back.
async fn store_snapshots<A: Aggregate + Serialize>(
    vault: &Vault,
    store: &impl Snapshots,
    id: Uuid,
    mut boundaries: Vec<Boundary<A>>,
) -> usize {
    // Smallest first: states grow with their events (notes accumulate), so past one
    // too large the later ones are skipped without serializing them.
    boundaries.sort_by_key(|b| b.events);
    let mut sealed = Vec::with_capacity(boundaries.len());
    for b in boundaries {
        let Some(subject) = b.state.data_subject() else {
            continue;
        };
        let Ok(bytes) = serde_json::to_vec(&b.state) else {
            continue;
        };
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            break;
        }
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        match vault.seal_existing(subject, &value).await {
            Ok(Some(s)) => sealed.push(Snapshot {
                events: b.events,
                position: b.position,
                max_occurred_at: b.max_occurred_at,
                subject,
                sealed: s,
            }),
            Ok(None) => return 0,
            Err(e) => {
                tracing::warn!(error = %e, "cannot seal a snapshot");
                return 0;
            }
        }
    }
    let n = sealed.len();
    if n == 0 {
        return 0;
    }
    match store.save(id, sealed).await {
        Ok(()) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot store snapshots");
            0
        }
    }
}
