//! The harness of the application tests: a world in memory ([`World`]: a `MemoryLog`,
//! an `App` on it, stations, staff and a patrol), facts given as the domain's own
//! events, ports answered from the same log ([`LogFacts`]), and the events a command
//! appended read back typed.

#![allow(dead_code)]

use std::sync::Mutex;

use chrono::Utc;
use precinct_app::ports::{
    Accounts, KeyStore, Passwords, Rosters, Standing, StationMap, Workloads,
};
use precinct_app::{App, AppError, Principal};
use precinct_domain::account::{Account, AccountCommand};
use precinct_domain::dispatch::PatrolSnapshot;
use precinct_domain::ids::{AccountId, PatrolId, ReportId, StationId};
use precinct_domain::patrol::{Patrol, PatrolCommand};
use precinct_domain::report::{PersonalDetails, Report, ReportCommand, ReportLocation, Reporter};
use precinct_domain::routing::{RoutingDecision, RoutingRule, StationFacts};
use precinct_domain::station::{Station, StationCommand};
use precinct_domain::subject::DataSubject;
use precinct_domain::values::{Email, GeoPoint, PasswordHash, Role, StationKind, TokenHash};
use precinct_domain::{Aggregate, DomainEvent};
use precinct_eventlog::{
    Actor, CommandMeta, EventStore, ExpectedVersion, MemoryLog, NewEvent, StreamId, StreamWrite,
};
use uuid::Uuid;

pub const LAT: f64 = 7.07;
pub const LON: f64 = 125.61;

/// Stations, staff and a patrol, all in one log in memory.
pub struct World {
    pub log: MemoryLog,
    pub app: App<MemoryLog>,
    /// A precinct with a point, and another one far away.
    pub station: StationId,
    pub other_station: StationId,
    pub admin: Principal,
    pub dispatcher: Principal,
    pub supervisor: Principal,
    /// The crew of `patrol`.
    pub officer: Principal,
    pub partner: Principal,
    /// A PATROL of `station` outside `patrol`'s crew.
    pub other_officer: Principal,
    /// Desk staff of `other_station`.
    pub other_dispatcher: Principal,
    pub citizen: Principal,
    /// `station`'s patrol (officer, partner), AVAILABLE.
    pub patrol: PatrolId,
}

fn principal(role: Role, station: Option<StationId>) -> Principal {
    Principal {
        id: AccountId::new(Uuid::new_v4()),
        role,
        station_id: station,
    }
}

impl World {
    pub async fn new() -> Self {
        let log = MemoryLog::new();
        let app = App::new(log.clone());
        let station = StationId::new(Uuid::new_v4());
        let other_station = StationId::new(Uuid::new_v4());
        let staffed = |role| principal(role, Some(station));
        let w = World {
            admin: principal(Role::Admin, None),
            dispatcher: staffed(Role::Dispatcher),
            supervisor: staffed(Role::Supervisor),
            officer: staffed(Role::Patrol),
            partner: staffed(Role::Patrol),
            other_officer: staffed(Role::Patrol),
            other_dispatcher: principal(Role::Dispatcher, Some(other_station)),
            citizen: principal(Role::Citizen, None),
            patrol: PatrolId::new(Uuid::new_v4()),
            log,
            app,
            station,
            other_station,
        };
        w.given_station(station, LAT, LON).await;
        w.given_station(other_station, LAT + 1.0, LON + 1.0).await;
        for p in [
            w.admin,
            w.dispatcher,
            w.supervisor,
            w.officer,
            w.partner,
            w.other_officer,
            w.other_dispatcher,
            w.citizen,
        ] {
            w.given_account(p).await;
        }
        w.given_patrol(w.patrol, station, &[w.officer.id, w.partner.id])
            .await;
        w
    }

    /// A fact: `cmd` as the domain decides it on aggregate `A` `id` (no rule of the
    /// application layer involved), appended as Precinct itself.
    pub async fn given<A: Aggregate>(&self, id: Uuid, cmd: A::Command)
    where
        A::Error: std::fmt::Debug,
    {
        let (state, version) = self.app.load::<A>(id).await.expect("load");
        let events = state.handle(cmd).expect("a given fact is valid");
        let now = Utc::now();
        let events = events
            .iter()
            .map(|e| NewEvent {
                event_type: e.event_type().to_string(),
                schema_version: e.schema_version(),
                occurred_at: now,
                data: e.to_data(),
            })
            .collect();
        self.log
            .append_multi(
                vec![StreamWrite {
                    stream: StreamId::new(A::TYPE, id),
                    expected: ExpectedVersion::from_version(version),
                    events,
                }],
                &CommandMeta::new(Uuid::new_v4(), Actor::System),
            )
            .await
            .expect("append a given fact");
    }

    pub async fn given_station(&self, id: StationId, lat: f64, lon: f64) {
        self.given::<Station>(
            id.as_uuid(),
            StationCommand::Create {
                station_id: id,
                name: format!("Precinct {id}"),
                kind: StationKind::Precinct,
                point: Some(GeoPoint::parse(lat, lon).expect("point")),
                area: None,
                crime_types: vec![],
                at: Utc::now(),
            },
        )
        .await;
    }

    pub async fn given_account(&self, p: Principal) {
        self.given::<Account>(
            p.id.as_uuid(),
            AccountCommand::Register {
                account_id: p.id,
                email: Email::parse(&format!("{}@example.com", p.id)).expect("email"),
                name: "Someone".into(),
                role: p.role,
                station_id: p.station_id,
                password_hash: PasswordHash::parse("hash").expect("hash"),
                at: Utc::now(),
                invite_id: None,
            },
        )
        .await;
    }

    pub async fn given_patrol(&self, id: PatrolId, station: StationId, crew: &[AccountId]) {
        self.given::<Patrol>(
            id.as_uuid(),
            PatrolCommand::Register {
                patrol_id: id,
                call_sign: format!("UNIT-{}", &id.as_uuid().to_string()[..4]),
                station_id: station,
                officer_ids: crew.to_vec(),
                at: Utc::now(),
            },
        )
        .await;
    }

    /// A `NEW` report of `station`, by the citizen.
    pub async fn given_report(&self) -> ReportId {
        self.given_report_by(Reporter::User {
            account_id: self.citizen.id,
        })
        .await
    }

    pub async fn given_anonymous_report(&self) -> ReportId {
        self.given_report_by(Reporter::Anonymous {
            tracking_token_hash: TokenHash::parse(&"ab".repeat(32)).expect("hash"),
        })
        .await
    }

    async fn given_report_by(&self, reporter: Reporter) -> ReportId {
        let id = ReportId::new(Uuid::new_v4());
        self.given::<Report>(
            id.as_uuid(),
            ReportCommand::Submit {
                report_id: id,
                title: "Bicycle stolen".into(),
                crime_types: vec!["Theft".into()],
                catalogue: vec![],
                location: ReportLocation::new(
                    GeoPoint::parse(LAT, LON).expect("point"),
                    None,
                    None,
                ),
                occurred_at: None,
                media_urls: vec![],
                reporter,
                routing: RoutingDecision {
                    station_id: self.station,
                    rule: RoutingRule::NearestPrecinct,
                    matched_keyword: None,
                    distance_m: Some(0.0),
                },
                personal: PersonalDetails {
                    description: "Taken from the rack".into(),
                    street: None,
                    contact: None,
                    erased: false,
                },
                at: Utc::now(),
            },
        )
        .await;
        id
    }

    /// A report assigned to `patrol`: both sides of a dispatch, as facts.
    pub async fn given_assigned(&self, patrol: PatrolId) -> ReportId {
        let id = self.given_report().await;
        self.given::<Report>(
            id.as_uuid(),
            ReportCommand::Assign {
                patrol_id: patrol,
                decision: None,
                at: Utc::now(),
            },
        )
        .await;
        self.given::<Patrol>(
            patrol.as_uuid(),
            PatrolCommand::OpenAssignment {
                report_id: id,
                at: Utc::now(),
            },
        )
        .await;
        id
    }

    /// The report after `steps` (each a report command as a fact).
    pub async fn given_steps(&self, id: ReportId, steps: Vec<ReportCommand>) {
        for step in steps {
            self.given::<Report>(id.as_uuid(), step).await;
        }
    }

    /// A command's metadata, for `by` (a new command id).
    pub fn meta(&self, by: &Principal) -> CommandMeta {
        CommandMeta::new(Uuid::new_v4(), by.actor())
    }

    /// The log's head: what a command appends comes after it.
    pub fn mark(&self) -> u64 {
        self.log.head()
    }

    /// What was appended after `mark`: (aggregate type, event type), in order.
    pub fn appended_since(&self, mark: u64) -> Vec<(String, String)> {
        self.log
            .after(mark)
            .into_iter()
            .map(|e| (e.envelope.aggregate_type, e.envelope.event_type))
            .collect()
    }

    /// The events of aggregate `A` `id` appended after `mark`, typed.
    pub fn events_since<A: Aggregate>(&self, id: Uuid, mark: u64) -> Vec<A::Event> {
        self.log
            .after(mark)
            .into_iter()
            .filter(|e| e.envelope.aggregate_type == A::TYPE && e.envelope.aggregate_id == id)
            .map(|e| A::Event::from_parts(&e.envelope.event_type, e.data).expect("decode"))
            .collect()
    }

    pub async fn state<A: Aggregate>(&self, id: Uuid) -> A {
        self.app.load::<A>(id).await.expect("load").0
    }

    /// The ports, answered from this log.
    pub fn facts(&self) -> LogFacts {
        LogFacts {
            log: self.log.clone(),
            app: self.app.clone(),
            behind: Behind::Nothing,
        }
    }
}

/// Which read model a test wants behind the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behind {
    Nothing,
    Stations,
    Workloads,
    Roster,
    Accounts,
}

/// The ports, answered by folding the aggregates of the log in memory (what the read
/// models hold once caught up), or "not caught up" for the one a test holds back.
#[derive(Clone)]
pub struct LogFacts {
    log: MemoryLog,
    app: App<MemoryLog>,
    pub behind: Behind,
}

impl LogFacts {
    pub fn behind(mut self, behind: Behind) -> Self {
        self.behind = behind;
        self
    }

    fn ids_of(&self, aggregate_type: &str) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = Vec::new();
        for e in self.log.all() {
            if e.envelope.aggregate_type == aggregate_type
                && !ids.contains(&e.envelope.aggregate_id)
            {
                ids.push(e.envelope.aggregate_id);
            }
        }
        ids
    }

    async fn patrols(&self) -> Result<Vec<Patrol>, AppError> {
        let mut out = Vec::new();
        for id in self.ids_of(Patrol::TYPE) {
            out.push(self.app.load::<Patrol>(id).await?.0);
        }
        Ok(out)
    }
}

impl StationMap for LogFacts {
    async fn current(&self) -> Result<Option<Vec<StationFacts>>, AppError> {
        if self.behind == Behind::Stations {
            return Ok(None);
        }
        let mut facts = Vec::new();
        for id in self.ids_of(Station::TYPE) {
            let station = self.app.load::<Station>(id).await?.0;
            // As the stations read model: an inactive station receives no report.
            if station.active {
                facts.push(station.facts());
            }
        }
        Ok(Some(facts))
    }
}

impl precinct_app::ports::CrimeTypes for LogFacts {
    async fn catalogue(
        &self,
    ) -> Result<Option<Vec<precinct_domain::crime_type::CrimeTypeFacts>>, AppError> {
        use precinct_domain::crime_type::CrimeType;
        let mut facts = Vec::new();
        for id in self.ids_of(CrimeType::TYPE) {
            facts.extend(self.app.load::<CrimeType>(id).await?.0.facts());
        }
        Ok(Some(facts))
    }
}

impl Workloads for LogFacts {
    async fn caught_up(&self, _position: u64) -> Result<bool, AppError> {
        Ok(self.behind != Behind::Workloads)
    }

    async fn snapshot(&self, station: StationId) -> Result<Vec<PatrolSnapshot>, AppError> {
        Ok(self
            .patrols()
            .await?
            .iter()
            .filter(|p| p.station_id == station)
            .map(|p| p.snapshot(None))
            .collect())
    }
}

impl Rosters for LogFacts {
    async fn patrols_of(
        &self,
        officer: AccountId,
        limit: u32,
    ) -> Result<Option<Vec<PatrolId>>, AppError> {
        if self.behind == Behind::Roster {
            return Ok(None);
        }
        Ok(Some(
            self.patrols()
                .await?
                .iter()
                .filter(|p| p.is_member(officer))
                .map(|p| p.id)
                .take(limit as usize)
                .collect(),
        ))
    }
}

impl Accounts for LogFacts {
    async fn standing(&self, account: AccountId) -> Result<Option<Standing>, AppError> {
        let (a, _) = self.app.load::<Account>(account.as_uuid()).await?;
        if !a.version_exists() {
            return Ok(None);
        }
        let (subject, _) = self.app.load::<DataSubject>(account.as_uuid()).await?;
        Ok(Some(Standing {
            role: a.role,
            station_id: a.station_id,
            active: a.active,
            erased: subject.erased_at.is_some(),
        }))
    }

    async fn active_admins(&self, limit: u32) -> Result<Option<Vec<AccountId>>, AppError> {
        if self.behind == Behind::Accounts {
            return Ok(None);
        }
        let mut out = Vec::new();
        for id in self.ids_of(Account::TYPE) {
            let (a, _) = self.app.load::<Account>(id).await?;
            let (subject, _) = self.app.load::<DataSubject>(id).await?;
            if a.active && a.role == Role::Admin && subject.erased_at.is_none() {
                out.push(a.id);
            }
        }
        out.truncate(limit as usize);
        Ok(Some(out))
    }
}

/// A password "hasher" for tests: fast, and its output says what it hashed.
#[derive(Debug, Default)]
pub struct Hasher;

impl Passwords for Hasher {
    async fn hash(&self, password: String) -> Result<PasswordHash, AppError> {
        Ok(PasswordHash::parse(&format!("hashed:{password}")).expect("hash"))
    }

    async fn verify(&self, password: String, hash: PasswordHash) -> Result<bool, AppError> {
        Ok(hash.as_str() == format!("hashed:{password}"))
    }
}

/// A [`Hasher`] that runs something first, each time it hashes: what happens
/// meanwhile (another command lands, time passes, a count goes up).
pub struct Meanwhile<F>(pub F);

impl<F, Fut> Passwords for Meanwhile<F>
where
    F: Fn() -> Fut + Sync,
    Fut: std::future::Future<Output = Result<(), AppError>> + Send,
{
    async fn hash(&self, password: String) -> Result<PasswordHash, AppError> {
        (self.0)().await?;
        Hasher.hash(password).await
    }

    async fn verify(&self, password: String, hash: PasswordHash) -> Result<bool, AppError> {
        Hasher.verify(password, hash).await
    }
}

/// A key store that remembers which keys it destroyed.
#[derive(Debug, Default)]
pub struct Keys {
    pub erased: Mutex<Vec<Uuid>>,
}

impl KeyStore for Keys {
    async fn erase(&self, subject: Uuid) -> Result<(), AppError> {
        self.erased.lock().expect("lock").push(subject);
        Ok(())
    }
}

/// (aggregate type, event type) pairs, for comparing with [`World::appended_since`].
pub fn events(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, e)| (a.to_string(), e.to_string()))
        .collect()
}

impl precinct_app::ports::Queue for LogFacts {
    /// The station's `NEW` reports in queue order, folded from the log.
    async fn new_reports(&self, station: StationId, limit: u32) -> Result<Vec<ReportId>, AppError> {
        let mut reports = Vec::new();
        for id in self.ids_of(Report::TYPE) {
            let r = self.app.load::<Report>(id).await?.0;
            if r.station_id == station && r.status == precinct_domain::values::ReportStatus::New {
                reports.push(r);
            }
        }
        reports.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.submitted_at.cmp(&b.submitted_at))
                .then(a.id.cmp(&b.id))
        });
        Ok(reports.iter().take(limit as usize).map(|r| r.id).collect())
    }
}
