//! [`PatrolDirectory`]: who is in which patrol, and which station it belongs to, from
//! memory.
//!
//! The location endpoint is the high-rate path: reading a patrol's whole event stream
//! on every ping would cost more than the ping. The directory keeps each patrol's
//! station and crew for a short time-to-live (5 s by default) and reloads it from the
//! patrol aggregate (the log, never a lagging read model) when it is older. A process
//! running the live hub also drops an entry as soon as the log says the patrol
//! changed. The cost: a crew change reaches other processes' caches within the TTL —
//! an officer removed from a patrol may send pings for a few more seconds.
//!
//! Only patrols that exist are cached (a miss for an unknown id is not remembered, so
//! random ids cannot fill the cache).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use precinct_app::{App, AppError};
use precinct_domain::ids::{AccountId, StationId};
use precinct_domain::patrol::{serves_in, Patrol};
use precinct_domain::values::Role;
use precinct_domain::Aggregate;
use uuid::Uuid;

/// What the live path needs to know about a patrol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatrolInfo {
    pub id: Uuid,
    pub station_id: StationId,
    pub officer_ids: Vec<AccountId>,
}

impl PatrolInfo {
    pub fn is_member(&self, officer: AccountId) -> bool {
        self.officer_ids.contains(&officer)
    }

    /// In the crew and, as the account is now, a PATROL of the patrol's station (the
    /// same rule as `Patrol::is_serving_member`): a cached crew that trails a role or
    /// station change grants nothing.
    pub fn is_serving_member(
        &self,
        officer: AccountId,
        role: Role,
        station: Option<StationId>,
    ) -> bool {
        self.is_member(officer) && serves_in(self.station_id, role, station)
    }
}

/// Patrol station and crew, cached with a time-to-live. Shared by the HTTP handlers
/// and the live hub.
pub struct PatrolDirectory {
    app: App,
    ttl: Duration,
    entries: RwLock<HashMap<Uuid, (Arc<PatrolInfo>, Instant)>>,
}

impl std::fmt::Debug for PatrolDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatrolDirectory")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl PatrolDirectory {
    pub fn new(app: App, ttl: Duration) -> Self {
        Self {
            app,
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The patrol, from the cache when its entry is younger than the TTL, else from
    /// the log. `None`: no such patrol.
    pub async fn get(&self, id: Uuid) -> Result<Option<Arc<PatrolInfo>>, AppError> {
        if let Some(info) = self.fresh(id) {
            return Ok(Some(info));
        }
        let (patrol, _) = self.app.load::<Patrol>(id).await?;
        if !patrol.version_exists() {
            return Ok(None);
        }
        let info = Arc::new(PatrolInfo {
            id,
            station_id: patrol.station_id,
            officer_ids: patrol.officer_ids,
        });
        if let Ok(mut entries) = self.entries.write() {
            entries.insert(id, (info.clone(), Instant::now()));
        }
        Ok(Some(info))
    }

    /// The station of a patrol. A patrol never changes station, so any cached entry
    /// answers, however old.
    pub async fn station_of(&self, id: Uuid) -> Result<Option<StationId>, AppError> {
        let cached = self
            .entries
            .read()
            .ok()
            .and_then(|e| e.get(&id).map(|(info, _)| info.station_id));
        match cached {
            Some(station) => Ok(Some(station)),
            None => Ok(self.get(id).await?.map(|info| info.station_id)),
        }
    }

    /// Forgets a patrol's crew (the log says it changed); the next lookup reloads it.
    pub fn invalidate(&self, id: Uuid) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(&id);
        }
    }

    fn fresh(&self, id: Uuid) -> Option<Arc<PatrolInfo>> {
        let entries = self.entries.read().ok()?;
        let (info, loaded) = entries.get(&id)?;
        (loaded.elapsed() < self.ttl).then(|| info.clone())
    }
}
