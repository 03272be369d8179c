//! Accounts: registration (a CITIZEN by anyone; any role or station by an ADMIN), the
//! ADMIN bootstrap, and role changes. An account and its e-mail reservation are
//! appended atomically, so two registrations of one address cannot both succeed. A
//! role change takes the account out of every patrol crew it can no longer serve in,
//! in the same append.

use precinct_domain::account::{Account, AccountCommand};
use precinct_domain::email::EmailReservation;
use precinct_domain::ids::{AccountId, InviteId, PatrolId, StationId};
use precinct_domain::invite::{Invite, InviteCommand};
use precinct_domain::patrol::{Patrol, PatrolCommand};
use precinct_domain::station::Station;
use precinct_domain::values::{Email, PasswordHash, Role};
use precinct_domain::Aggregate;
use precinct_eventlog::{Actor, CommandMeta, EventStore};

use super::user::{update, Placement, UserUpdate};
use crate::email::{reserve_email, EmailStreams};
use crate::error::{Denied, Refusal, Unavailable};
use crate::policy::Principal;
use crate::ports::{Accounts, Passwords, Rosters};
use crate::{ids, App, AppError, UnitOfWork};

/// Most patrols one role change takes an officer out of (a larger number is refused).
pub const MAX_PATROLS_PER_OFFICER: u32 = 100;

/// A new account, as asked for.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    /// 10 to 128 characters (the route checks); hashed through [`Passwords`].
    pub password: String,
    pub name: String,
    pub role: Role,
    pub station: Option<StationId>,
}

/// An account after a command.
#[derive(Debug)]
pub struct AccountWritten {
    pub account: Account,
    pub position: u64,
}

/// Anyone registers a CITIZEN; only an ADMIN chooses another role or a station
/// (checked before anything is looked up).
pub fn may_register(
    by: Option<&Principal>,
    role: Role,
    station: Option<StationId>,
) -> Result<(), AppError> {
    if role == Role::Citizen && station.is_none() {
        return Ok(());
    }
    match by {
        Some(p) if p.is_admin() => Ok(()),
        Some(_) => Err(Denied::Role.into()),
        None => Err(Denied::RoleOrStation.into()),
    }
}

/// The id of the account command `meta` registers (a retry registers the same one).
pub fn account_id(meta: &CommandMeta) -> AccountId {
    AccountId::new(ids::derived_id(meta.command_id, "account"))
}

/// Registers `new`. A taken address is refused before the password is hashed
/// (argon2id is slow and memory-hard on purpose), unless it was taken by this very
/// command (a retry, which gets its original answer).
pub async fn register<S: EventStore>(
    app: &App<S>,
    by: Option<&Principal>,
    meta: &CommandMeta,
    new: NewAccount,
    passwords: &impl Passwords,
) -> Result<AccountWritten, AppError> {
    may_register(by, new.role, new.station)?;
    if let Some(station) = new.station {
        require_station(app, station).await?;
    }
    let owner = app.email_owner(&new.email).await?;
    if owner.is_some_and(|id| id != account_id(meta)) {
        return Err(Refusal::EmailTaken.into());
    }
    let password_hash = passwords.hash(new.password).await?;
    create(
        app,
        meta,
        AccountFields {
            email: new.email,
            name: new.name,
            role: new.role,
            station: new.station,
            password_hash,
            invite: None,
        },
    )
    .await
}

/// Only an ADMIN changes roles (checked before the request's fields are parsed).
pub fn may_change_role(by: &Principal) -> Result<(), AppError> {
    by.require(&[Role::Admin])
}

/// Gives account `id` `role` (and `station`). The account leaves the crew of every
/// patrol it can no longer serve in (any patrol unless it stays a PATROL, and then
/// those of other stations); the last active ADMIN keeps their role
/// ([`super::user::update`]).
pub async fn change_role<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: AccountId,
    role: Role,
    station: Option<StationId>,
    facts: &(impl Rosters + Accounts),
) -> Result<AccountWritten, AppError> {
    may_change_role(by)?;
    let change = UserUpdate {
        name: None,
        placement: Some(Placement::Role { role, station }),
    };
    update(app, by, meta, id, change, facts).await
}

/// The patrols whose crew lists `officer`, where a command that may take them out
/// looks (each crew is then read from the log in the command itself). A crew change
/// racing the command may still list the officer; the membership rule, which requires
/// the member's current role to be PATROL of the patrol's station, makes such an entry
/// grant nothing.
pub(crate) async fn crews_of(
    rosters: &impl Rosters,
    officer: AccountId,
) -> Result<Vec<PatrolId>, AppError> {
    let listed = rosters
        .patrols_of(officer, MAX_PATROLS_PER_OFFICER + 1)
        .await?
        .ok_or(Unavailable::Roster)?;
    if listed.len() > MAX_PATROLS_PER_OFFICER as usize {
        return Err(Refusal::TooManyPatrols(MAX_PATROLS_PER_OFFICER).into());
    }
    Ok(listed)
}

/// Takes `officer` out of each patrol of `listed` whose crew lists them, unless
/// `stays(patrol's station)`.
pub(crate) async fn leave_crews<S: EventStore>(
    uow: &mut UnitOfWork<'_, S>,
    officer: AccountId,
    listed: &[PatrolId],
    stays: impl Fn(StationId) -> bool,
) -> Result<(), AppError> {
    let at = uow.now();
    for patrol_id in listed {
        let pid = patrol_id.as_uuid();
        let patrol: Patrol = uow.load(pid).await?;
        if patrol.is_member(officer) && !stays(patrol.station_id) {
            uow.execute::<Patrol>(
                pid,
                PatrolCommand::RemoveOfficer {
                    officer_id: officer,
                    at,
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// What [`ensure_admin`] found or did.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    Created { id: AccountId, position: u64 },
    AlreadyExists { id: AccountId, role: Role },
}

/// Makes sure an ADMIN account with `email` exists (`precinct admin create`,
/// `PRECINCT_ADMIN_EMAIL`). Idempotent: running it twice, or in two processes at once,
/// creates one account — its ids derive from the address's reservation stream.
pub async fn ensure_admin<S: EventStore>(
    app: &App<S>,
    email: Email,
    password: String,
    passwords: &impl Passwords,
) -> Result<Bootstrap, AppError> {
    if let Some(id) = app.email_owner(&email).await? {
        let (account, _) = app.load::<Account>(id.as_uuid()).await?;
        return Ok(Bootstrap::AlreadyExists {
            id,
            role: account.role,
        });
    }
    let password_hash = passwords.hash(password).await?;
    let streams = app.email_streams(&email).await?;
    let (command_id, account_id) = ids::bootstrap_ids(streams.for_new_reservation());
    let account_id = AccountId::new(account_id);
    let meta = CommandMeta::new(command_id, Actor::System);
    let primary = streams.for_new_reservation();
    let out = app
        .run::<EmailReservation>(&meta, primary, async move |uow| {
            reserve_email(uow, &streams, account_id).await?;
            register_in(
                uow,
                account_id,
                &AccountFields {
                    email: email.clone(),
                    name: "Administrator".into(),
                    role: Role::Admin,
                    station: None,
                    password_hash: password_hash.clone(),
                    invite: None,
                },
            )
            .await
        })
        .await?;
    Ok(Bootstrap::Created {
        id: account_id,
        position: out.position,
    })
}

/// Everything a new account is registered with.
#[derive(Debug, Clone)]
pub(crate) struct AccountFields {
    pub(crate) email: Email,
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) station: Option<StationId>,
    pub(crate) password_hash: PasswordHash,
    /// The invite the account is created from (used up in the same append).
    pub(crate) invite: Option<InviteId>,
}

/// Creates an account in one atomic append: the invite (if any) used, the e-mail
/// reserved, the account registered. The command's primary stream is the invite's, or
/// the reservation's.
pub(crate) async fn create<S: EventStore>(
    app: &App<S>,
    meta: &CommandMeta,
    fields: AccountFields,
) -> Result<AccountWritten, AppError> {
    let account_id = account_id(meta);
    let emails = app.email_streams(&fields.email).await?;
    let invite = fields.invite;
    let primary = emails.for_new_reservation();
    let decide = async move |uow: &mut UnitOfWork<'_, S>| {
        let at = uow.now();
        if let Some(invite) = fields.invite {
            let used = uow
                .execute::<Invite>(invite.as_uuid(), InviteCommand::Accept { account_id, at })
                .await?;
            super::invite::inviter_still_entitled(uow, &used).await?;
        }
        reserve(uow, &emails, account_id).await?;
        register_in(uow, account_id, &fields).await
    };
    let out = match invite {
        Some(invite) => app.run::<Invite>(meta, invite.as_uuid(), decide).await?,
        None => app.run::<EmailReservation>(meta, primary, decide).await?,
    };
    // The account as the write side knows it (also for an idempotent retry, whose
    // outcome holds the primary stream only).
    let (account, _) = app.load::<Account>(account_id.as_uuid()).await?;
    if !account.version_exists() {
        return Err(AppError::Corrupt {
            position: out.position,
            reason: "account missing after registration".into(),
        });
    }
    Ok(AccountWritten {
        account,
        position: out.position,
    })
}

/// Reserves the address: a reservation already there is [`Refusal::EmailTaken`].
async fn reserve<S: EventStore>(
    uow: &mut UnitOfWork<'_, S>,
    emails: &EmailStreams,
    account_id: AccountId,
) -> Result<(), AppError> {
    reserve_email(uow, emails, account_id)
        .await
        .map_err(|e| match e {
            AppError::Domain { .. } => Refusal::EmailTaken.into(),
            other => other,
        })
}

async fn register_in<S: EventStore>(
    uow: &mut UnitOfWork<'_, S>,
    account_id: AccountId,
    fields: &AccountFields,
) -> Result<(), AppError> {
    let at = uow.now();
    uow.execute::<Account>(
        account_id.as_uuid(),
        AccountCommand::Register {
            account_id,
            email: fields.email.clone(),
            name: fields.name.clone(),
            role: fields.role,
            station_id: fields.station,
            password_hash: fields.password_hash.clone(),
            at,
            invite_id: fields.invite,
        },
    )
    .await?;
    Ok(())
}

/// A station named by a command must exist.
pub(crate) async fn require_station<S: EventStore>(
    app: &App<S>,
    id: StationId,
) -> Result<(), AppError> {
    let (station, _) = app.load::<Station>(id.as_uuid()).await?;
    if station.version_exists() {
        Ok(())
    } else {
        Err(Refusal::NoSuchStation.into())
    }
}
