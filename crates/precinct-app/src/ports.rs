//! Ports: the facts a command needs from outside the log — read models, the account
//! view, password hashing, the key store — as small traits. The API implements them
//! (over PostgreSQL and its caches); tests supply them in memory.
//!
//! A port reports its own failures as [`AppError::port`] (or any [`AppError`]); whether
//! a read model is fresh enough is the command's decision, so ports that wait answer
//! whether they caught up rather than failing.

use std::future::Future;

use precinct_domain::crime_type::CrimeTypeFacts;
use precinct_domain::dispatch::PatrolSnapshot;
use precinct_domain::ids::{AccountId, PatrolId, StationId};
use precinct_domain::routing::StationFacts;
use precinct_domain::station::OpenReports;
use precinct_domain::values::{PasswordHash, Role};
use uuid::Uuid;

use crate::error::{AppError, Unavailable};

/// The stations routing decides on.
pub trait StationMap: Sync {
    /// Every station, at least as new as the last change to any station (ADR 0012).
    /// None: the map did not catch up with that change in a bounded time.
    fn current(&self) -> impl Future<Output = Result<Option<Vec<StationFacts>>, AppError>> + Send;
}

/// The crime-type catalogue free text resolves through (ADR 0026).
pub trait CrimeTypes: Sync {
    /// Every type, active and retired (resolution skips retired ones), at least as new
    /// as the last change to any type. `OTHER` is built in and not among them. None:
    /// the catalogue did not catch up with that change in a bounded time.
    fn catalogue(
        &self,
    ) -> impl Future<Output = Result<Option<Vec<CrimeTypeFacts>>, AppError>> + Send;
}

/// The patrols' workloads, for automatic assignment.
pub trait Workloads: Sync {
    /// Waits (a bounded time) until the workloads include the log up to `position`;
    /// false: they did not in time.
    fn caught_up(&self, position: u64) -> impl Future<Output = Result<bool, AppError>> + Send;

    /// The patrols of `station` as automatic assignment ranks them.
    fn snapshot(
        &self,
        station: StationId,
    ) -> impl Future<Output = Result<Vec<PatrolSnapshot>, AppError>> + Send;
}

/// Which patrols list an officer in their crew.
pub trait Rosters: Sync {
    /// The patrols whose crew lists `officer` (at most `limit`), from a roster that has
    /// caught up with the log as it is now, so that a crew change acknowledged before
    /// the call is seen. None: the roster did not catch up in a bounded time.
    fn patrols_of(
        &self,
        officer: AccountId,
        limit: u32,
    ) -> impl Future<Output = Result<Option<Vec<PatrolId>>, AppError>> + Send;
}

/// An account as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub role: Role,
    pub station_id: Option<StationId>,
    pub active: bool,
    pub erased: bool,
}

/// The accounts as they are now (the API's in-memory account view).
pub trait Accounts: Sync {
    /// None: no such account.
    fn standing(
        &self,
        account: AccountId,
    ) -> impl Future<Output = Result<Option<Standing>, AppError>> + Send;

    /// The active ADMIN accounts that were not erased (at most `limit`), from a view
    /// that has caught up with the log as it is now. None: it did not catch up in a
    /// bounded time.
    fn active_admins(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Option<Vec<AccountId>>, AppError>> + Send;
}

/// Password hashing (slow on purpose: the implementer bounds how many run at once).
pub trait Passwords: Sync {
    fn hash(&self, password: String)
        -> impl Future<Output = Result<PasswordHash, AppError>> + Send;

    /// Whether `password` matches `hash`.
    fn verify(
        &self,
        password: String,
        hash: PasswordHash,
    ) -> impl Future<Output = Result<bool, AppError>> + Send;
}

/// One stored snapshot of an aggregate (ADR 0022): its state after the stream's first
/// `events` events, sealed as one value under its data subject's key.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub events: u32,
    /// Log position of the last of those events.
    pub position: u64,
    /// The latest `occurred_at` among them: the snapshot is the state `as_of` any time
    /// at or after it (until the next event).
    pub max_occurred_at: chrono::DateTime<chrono::Utc>,
    /// The data subject whose key seals `sealed`.
    pub subject: Uuid,
    pub sealed: serde_json::Value,
}

/// What the snapshot store holds of one aggregate for an `as_of` at a time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotsAround {
    /// The newest snapshot.
    pub latest: Option<Snapshot>,
    /// The newest whose events all occurred by the time asked for.
    pub base: Option<Snapshot>,
    /// How many events the first snapshot after `base` (or the first one, without a
    /// base) folded.
    pub next_events: Option<u32>,
}

/// Where snapshots of reports are kept (a cache of the log: positions never change, so
/// a snapshot never goes stale; erasure removes them).
pub trait Snapshots: Sync {
    fn around(
        &self,
        id: Uuid,
        at: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<SnapshotsAround, AppError>> + Send;
    /// Stores these snapshots of `id` (replacing ones with the same `events`), unless
    /// its data subject was erased.
    fn save(
        &self,
        id: Uuid,
        snapshots: Vec<Snapshot>,
    ) -> impl Future<Output = Result<(), AppError>> + Send;
}

/// Where data keys are destroyed (crypto-shredding).
pub trait KeyStore: Sync {
    /// Destroys `subject`'s data key: every value sealed with it becomes unreadable.
    /// Erasing a key that is already gone succeeds.
    fn erase(&self, subject: Uuid) -> impl Future<Output = Result<(), AppError>> + Send;
}

impl KeyStore for precinct_vault::Vault {
    async fn erase(&self, subject: Uuid) -> Result<(), AppError> {
        precinct_vault::Vault::erase(self, subject)
            .await
            .map_err(|e| Unavailable::KeyStore(e.to_string()).into())
    }
}

/// The dispatch queue, for bulk automatic assignment.
pub trait Queue: Sync {
    /// Up to `limit` `NEW` reports of `station`, in queue order (highest priority, then
    /// oldest, then id). The command checks each against the log.
    fn new_reports(
        &self,
        station: StationId,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<precinct_domain::ids::ReportId>, AppError>> + Send;
}

/// The reports of a station that are still open.
pub trait StationReports: Sync {
    /// The open reports of `station` (up to `limit` ids, and how many there are), from
    /// a reports read model that has caught up with the log as it is now, so that a
    /// report acknowledged before the call is seen. None: it did not catch up in a
    /// bounded time.
    fn open_reports(
        &self,
        station: StationId,
        limit: u32,
    ) -> impl Future<Output = Result<Option<OpenReports>, AppError>> + Send;
}
