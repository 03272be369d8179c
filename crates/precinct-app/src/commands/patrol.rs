//! Patrols: registration, updates of the call sign and crew, availability. The desk
//! (DISPATCHER, SUPERVISOR, ADMIN) of the patrol's station registers and updates it;
//! its status is set by a serving member or the desk. Every officer of a crew must be,
//! as their account is now, an active PATROL of the patrol's station.

use precinct_domain::ids::{AccountId, PatrolId, StationId};
use precinct_domain::patrol::{serves_in, Patrol, PatrolCommand};
use precinct_domain::station::Station;
use precinct_domain::values::PatrolStatus;
use precinct_domain::Aggregate;
use precinct_eventlog::{CommandMeta, EventStore};

use crate::error::{Denied, Refusal};
use crate::policy::{require_patrol_visible, Principal, DESK};
use crate::ports::Accounts;
use crate::{ids, App, AppError};

/// A new patrol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPatrol {
    pub call_sign: String,
    pub station: StationId,
    pub officers: Vec<AccountId>,
}

/// A patrol's new call sign and/or crew.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatrolUpdate {
    pub call_sign: Option<String>,
    pub officers: Option<Vec<AccountId>>,
}

/// A patrol after a command.
#[derive(Debug)]
pub struct PatrolWritten {
    pub patrol: Patrol,
    pub position: u64,
}

pub async fn register<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    new: NewPatrol,
    accounts: &impl Accounts,
) -> Result<PatrolWritten, AppError> {
    by.require(DESK)?;
    if !by.is_staff_of(new.station) {
        return Err(Denied::PatrolOfAnotherStation.into());
    }
    let (station, _) = app.load::<Station>(new.station.as_uuid()).await?;
    if !station.version_exists() {
        return Err(Refusal::NoSuchStation.into());
    }
    check_officers(accounts, new.station, &new.officers).await?;
    let id = ids::derived_id(meta.command_id, "patrol");
    let out = app
        .run::<Patrol>(meta, id, async move |uow| {
            let at = uow.now();
            uow.execute::<Patrol>(
                id,
                PatrolCommand::Register {
                    patrol_id: PatrolId::new(id),
                    call_sign: new.call_sign.clone(),
                    station_id: new.station,
                    officer_ids: new.officers.clone(),
                    at,
                },
            )
            .await?;
            Ok(())
        })
        .await?;
    written(out, id)
}

pub async fn update<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: PatrolId,
    update: PatrolUpdate,
    accounts: &impl Accounts,
) -> Result<PatrolWritten, AppError> {
    by.require(DESK)?;
    let pid = id.as_uuid();
    let (current, _) = app.load::<Patrol>(pid).await?;
    require_patrol_visible(by, &current)?;
    if let Some(officers) = &update.officers {
        check_officers(accounts, current.station_id, officers).await?;
    }
    let by = *by;
    let out = app
        .run::<Patrol>(meta, pid, async move |uow| {
            let at = uow.now();
            let p: Patrol = uow.load(pid).await?;
            require_patrol_visible(&by, &p)?;
            uow.execute::<Patrol>(
                pid,
                PatrolCommand::Update {
                    call_sign: update.call_sign.clone(),
                    officer_ids: update.officers.clone(),
                    at,
                },
            )
            .await?;
            Ok(())
        })
        .await?;
    written(out, pid)
}

pub async fn set_status<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: PatrolId,
    status: PatrolStatus,
) -> Result<PatrolWritten, AppError> {
    let pid = id.as_uuid();
    let by = *by;
    let out = app
        .run::<Patrol>(meta, pid, async move |uow| {
            let at = uow.now();
            let p: Patrol = uow.load(pid).await?;
            require_patrol_visible(&by, &p)?;
            if !(p.is_serving_member(by.id, by.role, by.station_id) || by.is(DESK)) {
                return Err(Denied::PatrolStatus.into());
            }
            uow.execute::<Patrol>(pid, PatrolCommand::SetStatus { status, at })
                .await?;
            Ok(())
        })
        .await?;
    written(out, pid)
}

/// Every officer must be an active PATROL account of `station` as the account is now
/// (the account view: no key lookups for the sealed e-mail and name).
async fn check_officers(
    accounts: &impl Accounts,
    station: StationId,
    officers: &[AccountId],
) -> Result<(), AppError> {
    for officer in officers {
        let serving = accounts
            .standing(*officer)
            .await?
            .is_some_and(|a| a.active && !a.erased && serves_in(station, a.role, a.station_id));
        if !serving {
            return Err(Refusal::NotAnOfficer {
                officer: officer.as_uuid(),
                station,
            }
            .into());
        }
    }
    Ok(())
}

fn written(out: crate::Outcome, id: uuid::Uuid) -> Result<PatrolWritten, AppError> {
    let patrol = out.state::<Patrol>(id).cloned().ok_or(AppError::NotFound)?;
    Ok(PatrolWritten {
        patrol,
        position: out.position,
    })
}
