//! The application layer's ports ([`precinct_app::ports`]) over what this process has:
//! the read models in PostgreSQL, the log's positions, the in-memory account view, and
//! the bounded password hasher. Failures are handed through as the API's own errors
//! ([`AppError::port`]), so that they are answered exactly as before.

use std::time::Duration;

use precinct_app::ports::{
    Accounts, CrimeTypes, Passwords, Queue, Rosters, Snapshot, Snapshots, SnapshotsAround,
    Standing, StationMap, StationReports, Workloads,
};
use precinct_app::AppError;
use precinct_domain::crime_type::{CrimeType, CrimeTypeFacts};
use precinct_domain::dispatch::PatrolSnapshot;
use precinct_domain::ids::{AccountId, PatrolId, ReportId, StationId};
use precinct_domain::routing::StationFacts;
use precinct_domain::station::{OpenReports, Station};
use precinct_domain::values::PasswordHash;
use precinct_domain::Aggregate;

use crate::auth::{JobOwner, PasswordJobs};
use crate::problem::ApiError;
use crate::AppState;

/// How long a command waits for a read model to reach the position it needs.
const READ_MODEL_WAIT: Duration = Duration::from_secs(5);

/// The facts a command needs from this process's read models and caches.
#[derive(Clone, Copy)]
pub struct Facts<'a>(pub &'a AppState);

impl std::fmt::Debug for Facts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Facts")
    }
}

fn port(e: impl Into<ApiError>) -> AppError {
    AppError::port(e.into())
}

/// The stations routing decides on, as of the last station change this process has
/// read them for (ADR 0022): every report in a row asks the log where the last station
/// change is (one request) but reads the stations read model only when that position
/// moved. The facts at a station-change position are exactly the facts at any later
/// position until the next station change, so keyed by it they never go stale.
#[derive(Debug, Default)]
pub struct StationFactsCache {
    latest: std::sync::RwLock<Option<(u64, std::sync::Arc<Vec<StationFacts>>)>>,
}

impl StationFactsCache {
    /// The facts if they were read at `last_change` (or later).
    fn at(&self, last_change: u64) -> Option<std::sync::Arc<Vec<StationFacts>>> {
        let latest = self.latest.read().unwrap_or_else(|e| e.into_inner());
        match &*latest {
            Some((at, facts)) if *at >= last_change => Some(facts.clone()),
            _ => None,
        }
    }

    /// Keeps `facts`, read once the read model included `last_change`, unless newer
    /// ones are kept already.
    fn keep(&self, last_change: u64, facts: Vec<StationFacts>) {
        let mut latest = self.latest.write().unwrap_or_else(|e| e.into_inner());
        if latest.as_ref().is_none_or(|(at, _)| *at < last_change) {
            *latest = Some((last_change, std::sync::Arc::new(facts)));
        }
    }
}

impl StationMap for Facts<'_> {
    /// The log says where the last station change is (one request); the facts come from
    /// memory when they were read at that position, else from the stations read model
    /// once it has applied it (ADR 0012, ADR 0022).
    async fn current(&self) -> Result<Option<Vec<StationFacts>>, AppError> {
        let state = self.0;
        let last_change = state
            .app
            .log()
            .last_position_of(&[<Station as Aggregate>::TYPE])
            .await?;
        if let Some(facts) = state.station_facts.at(last_change) {
            ::metrics::counter!("precinct_station_facts_total", "source" => "memory").increment(1);
            return Ok(Some(facts.as_ref().clone()));
        }
        ::metrics::counter!("precinct_station_facts_total", "source" => "read_model").increment(1);
        let name = precinct_readmodel::names::STATIONS;
        let caught_up = precinct_readmodel::wait_for_projection(
            &state.pool,
            name,
            last_change,
            READ_MODEL_WAIT,
        )
        .await
        .map_err(port)?;
        if !caught_up {
            return Ok(None);
        }
        let facts = precinct_readmodel::queries::station_facts(&state.pool)
            .await
            .map_err(port)?;
        state.station_facts.keep(last_change, facts.clone());
        Ok(Some(facts))
    }
}

impl CrimeTypes for Facts<'_> {
    /// The log says where the last catalogue change is; the catalogue is read from its
    /// read model once that has applied it (ADR 0026). It is small (an ADMIN's list).
    async fn catalogue(&self) -> Result<Option<Vec<CrimeTypeFacts>>, AppError> {
        let state = self.0;
        let last_change = state
            .app
            .log()
            .last_position_of(&[<CrimeType as Aggregate>::TYPE])
            .await?;
        let caught_up = precinct_readmodel::wait_for_projection(
            &state.pool,
            precinct_readmodel::names::CRIME_TYPES,
            last_change,
            READ_MODEL_WAIT,
        )
        .await
        .map_err(port)?;
        if !caught_up {
            return Ok(None);
        }
        precinct_readmodel::queries::crime_type_facts(&state.pool)
            .await
            .map(Some)
            .map_err(port)
    }
}

impl Snapshots for Facts<'_> {
    async fn around(
        &self,
        id: uuid::Uuid,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<SnapshotsAround, AppError> {
        let a = precinct_readmodel::snapshots::around(&self.0.pool, id, at)
            .await
            .map_err(port)?;
        let snapshot = |r: precinct_readmodel::snapshots::SnapshotRow| Snapshot {
            events: r.events.max(0) as u32,
            position: r.position.max(0) as u64,
            max_occurred_at: r.max_occurred_at,
            subject: r.subject,
            sealed: r.state,
        };
        Ok(SnapshotsAround {
            latest: a.latest.map(snapshot),
            base: a.base.map(snapshot),
            next_events: a.next_events.map(|n| n.max(0) as u32),
        })
    }

    async fn save(&self, id: uuid::Uuid, snapshots: Vec<Snapshot>) -> Result<(), AppError> {
        let rows: Vec<_> = snapshots
            .into_iter()
            .map(|s| precinct_readmodel::snapshots::SnapshotRow {
                events: s.events as i32,
                position: s.position as i64,
                max_occurred_at: s.max_occurred_at,
                subject: s.subject,
                state: s.sealed,
            })
            .collect();
        precinct_readmodel::snapshots::save(&self.0.pool, id, &rows)
            .await
            .map_err(port)?;
        Ok(())
    }
}

impl Workloads for Facts<'_> {
    async fn caught_up(&self, position: u64) -> Result<bool, AppError> {
        precinct_readmodel::wait_for_position(&self.0.pool, position, READ_MODEL_WAIT)
            .await
            .map_err(|e| port(ApiError::Internal(e.to_string())))
    }

    async fn snapshot(&self, station: StationId) -> Result<Vec<PatrolSnapshot>, AppError> {
        precinct_readmodel::queries::workload_snapshot(&self.0.pool, station.as_uuid())
            .await
            .map_err(port)
    }
}

/// Whether projection `name` has applied the log as it is now (the head read now),
/// after at most [`READ_MODEL_WAIT`].
async fn caught_up_with_head(state: &AppState, name: &str) -> Result<bool, AppError> {
    let head = state.app.log().head().await?;
    precinct_readmodel::wait_for_projection(&state.pool, name, head, READ_MODEL_WAIT)
        .await
        .map_err(port)
}

impl Rosters for Facts<'_> {
    /// From the patrols read model, once it has caught up with the log as it is now.
    async fn patrols_of(
        &self,
        officer: AccountId,
        limit: u32,
    ) -> Result<Option<Vec<PatrolId>>, AppError> {
        let state = self.0;
        if !caught_up_with_head(state, precinct_readmodel::names::PATROLS).await? {
            return Ok(None);
        }
        let listed =
            precinct_readmodel::queries::patrols_listing(&state.pool, officer.as_uuid(), limit)
                .await
                .map_err(port)?;
        Ok(Some(listed.into_iter().map(PatrolId::new).collect()))
    }
}

impl StationReports for Facts<'_> {
    /// From the reports read model, once it has caught up with the log as it is now.
    async fn open_reports(
        &self,
        station: StationId,
        limit: u32,
    ) -> Result<Option<OpenReports>, AppError> {
        let state = self.0;
        if !caught_up_with_head(state, precinct_readmodel::names::REPORTS).await? {
            return Ok(None);
        }
        let (ids, total) = precinct_readmodel::queries::open_reports_of_station(
            &state.pool,
            station.as_uuid(),
            limit,
        )
        .await
        .map_err(port)?;
        Ok(Some(OpenReports {
            ids: ids.into_iter().map(ReportId::new).collect(),
            total,
        }))
    }
}

impl Accounts for Facts<'_> {
    async fn standing(&self, account: AccountId) -> Result<Option<Standing>, AppError> {
        Ok(self
            .0
            .accounts
            .current(account, 0)
            .await?
            .map(|a| Standing {
                role: a.role,
                station_id: a.station_id,
                active: a.active,
                erased: a.erased,
            }))
    }

    /// From the accounts read model, once it has caught up with the log as it is now.
    async fn active_admins(&self, limit: u32) -> Result<Option<Vec<AccountId>>, AppError> {
        let state = self.0;
        if !caught_up_with_head(state, precinct_readmodel::names::ACCOUNTS).await? {
            return Ok(None);
        }
        let ids = precinct_readmodel::queries::active_admins(&state.pool, limit)
            .await
            .map_err(port)?;
        Ok(Some(ids.into_iter().map(AccountId::new).collect()))
    }
}

impl Passwords for PasswordJobs {
    async fn hash(&self, password: String) -> Result<PasswordHash, AppError> {
        let hash = PasswordJobs::hash(self, password).await.map_err(port)?;
        PasswordHash::parse(&hash)
            .map_err(|e| port(ApiError::Internal(format!("password hash: {e}"))))
    }

    async fn verify(&self, password: String, hash: PasswordHash) -> Result<bool, AppError> {
        PasswordJobs::verify(self, password, Some(hash.as_str().to_string()))
            .await
            .map_err(port)
    }
}

/// Password hashing on a request path: the limiter's places, within the share of the
/// client address and the account that ask ([`PasswordJobs::run_for`]).
#[derive(Debug, Clone)]
pub struct OwnedJobs<'a> {
    pub jobs: &'a PasswordJobs,
    pub owner: JobOwner,
}

impl Passwords for OwnedJobs<'_> {
    async fn hash(&self, password: String) -> Result<PasswordHash, AppError> {
        let hash = self
            .jobs
            .hash_for(&self.owner, password)
            .await
            .map_err(port)?;
        PasswordHash::parse(&hash)
            .map_err(|e| port(ApiError::Internal(format!("password hash: {e}"))))
    }

    async fn verify(&self, password: String, hash: PasswordHash) -> Result<bool, AppError> {
        self.jobs
            .verify_for(&self.owner, password, Some(hash.as_str().to_string()))
            .await
            .map_err(port)
    }
}

impl Queue for Facts<'_> {
    /// From the reports read model, once it has applied the log as it is now (or after
    /// a bounded wait, as far as it got: the command checks every report on the log).
    async fn new_reports(&self, station: StationId, limit: u32) -> Result<Vec<ReportId>, AppError> {
        let state = self.0;
        caught_up_with_head(state, precinct_readmodel::names::REPORTS).await?;
        let filter = precinct_readmodel::queries::QueueFilter {
            station_id: Some(station.as_uuid()),
            status: Some(vec!["NEW".to_owned()]),
            priority: None,
        };
        let page = precinct_readmodel::queries::PageRequest::first(limit);
        let rows = precinct_readmodel::queries::report_queue(&state.pool, &filter, &page)
            .await
            .map_err(port)?;
        Ok(rows
            .items
            .into_iter()
            .map(|r| ReportId::new(r.id))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use precinct_domain::values::StationKind;

    fn facts(n: usize) -> Vec<StationFacts> {
        (0..n)
            .map(|_| StationFacts {
                station_id: StationId::new(uuid::Uuid::new_v4()),
                kind: StationKind::Precinct,
                point: None,
                area: None,
                crime_types: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn station_facts_are_kept_by_the_position_of_the_last_station_change() {
        let cache = StationFactsCache::default();
        // Given nothing read yet: nothing in memory
        assert!(cache.at(0).is_none());
        // When the facts are read at change 10
        cache.keep(10, facts(2));
        // Then they answer for change 10 (and a position the log no longer reports)
        assert_eq!(cache.at(10).map(|f| f.len()), Some(2));
        assert_eq!(cache.at(3).map(|f| f.len()), Some(2));
        // But not once a later station change exists
        assert!(cache.at(11).is_none());
        // And older facts never replace newer ones
        cache.keep(12, facts(3));
        cache.keep(11, facts(1));
        assert_eq!(cache.at(12).map(|f| f.len()), Some(3));
    }
}
