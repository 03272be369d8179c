//! User management: who may see an account, and the changes to one after registration —
//! its name (the account itself or an ADMIN), its role and station (ADMIN), its standing
//! (deactivation and reactivation, ADMIN), its password (the account itself, with the
//! current one; or an ADMIN's reset).
//!
//! Two rules span accounts: nobody deactivates their own account, and the last active
//! ADMIN is neither deactivated nor demoted (ADR "user management"); every departure of
//! an active ADMIN also writes the one ADMIN guard stream, so two of them racing cannot
//! both pass that check (ADR 0039). A deactivated
//! account leaves every patrol crew in the same append, as a role change does. Tokens
//! already issued follow through the account view (a deactivation or a new password
//! revokes them; a role change applies to them at once).

use precinct_domain::account::{Account, AccountCommand};
use precinct_domain::admin_guard::{AdminExit, AdminGuard, AdminGuardCommand, ADMIN_GUARD_ID};
use precinct_domain::ids::{AccountId, StationId};
use precinct_domain::patrol::serves_in;
use precinct_domain::subject::DataSubject;
use precinct_domain::values::Role;
use precinct_domain::Aggregate;
use precinct_eventlog::{find_command_in, CommandMeta, EventStore};

use super::account::{crews_of, leave_crews, require_station, AccountWritten};
use crate::error::{Denied, Refusal, Unavailable};
use crate::policy::Principal;
use crate::ports::{Accounts, Passwords, Rosters};
use crate::uow::stream_of;
use crate::{App, AppError, UnitOfWork};

/// Most ADMIN accounts the last-ADMIN rule looks at (one other active ADMIN is enough).
const ADMINS_LOOKED_AT: u32 = 20;

/// Who sees which accounts: an ADMIN every account, a SUPERVISOR the staff of their
/// own station, anyone their own account. Another account is [`AppError::NotFound`].
pub fn may_see(by: &Principal, account: &Account) -> Result<(), AppError> {
    if account.version_exists() && can_see(by, account.id, account.role, account.station_id) {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// The rule of [`may_see`] on an account's id, role and station (as a read model holds
/// them).
pub fn can_see(by: &Principal, id: AccountId, role: Role, station: Option<StationId>) -> bool {
    let own_station_staff = by.role == Role::Supervisor
        && role.is_staff()
        && station.is_some()
        && station == by.station_id;
    by.is_admin() || by.id == id || own_station_staff
}

/// What of a visible account the principal sees: [`Audience::Full`] (e-mail included)
/// for an ADMIN and the account itself, [`Audience::Staff`] (no e-mail) for the
/// station's SUPERVISOR.
pub fn audience(by: &Principal, id: AccountId) -> Audience {
    if by.is_admin() || by.id == id {
        Audience::Full
    } else {
        Audience::Staff
    }
}

/// Who an account view is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// ADMIN, or the account itself: every field.
    Full,
    /// The SUPERVISOR of the account's station: no e-mail address.
    Staff,
}

/// Who may list accounts (`GET /users`): ADMIN and SUPERVISOR.
pub fn may_list(by: &Principal) -> Result<(), AppError> {
    by.require(&[Role::Admin, Role::Supervisor])
}

/// Where an account is placed by an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A new role, with the station it needs (or none).
    Role {
        role: Role,
        station: Option<StationId>,
    },
    /// The same role, another station.
    Station(StationId),
}

/// The changes of `PATCH /users/{id}`; an absent field is left as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    pub name: Option<String>,
    pub placement: Option<Placement>,
}

/// Updates account `id`: the name (the account itself or an ADMIN), the role and
/// station (ADMIN: the account leaves the crews it can no longer serve in, and the last
/// active ADMIN keeps their role). Nothing to change answers the account as it is.
pub async fn update<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: AccountId,
    change: UserUpdate,
    facts: &(impl Rosters + Accounts),
) -> Result<AccountWritten, AppError> {
    let (current, _) = app.load::<Account>(id.as_uuid()).await?;
    may_see(by, &current)?;
    if change.name.is_some() && !(by.is_admin() || by.id == id) {
        return Err(Denied::Role.into());
    }
    if change.placement.is_some() && !by.is_admin() {
        return Err(Denied::Role.into());
    }
    let placement = change.placement.map(|p| match p {
        Placement::Role { role, station } => (role, station),
        Placement::Station(s) => (current.role, Some(s)),
    });
    let mut listed = Vec::new();
    let mut admins = Vec::new();
    if let Some((role, station)) = placement {
        if let Some(s) = station {
            require_station(app, s).await?;
        }
        listed = crews_of(facts, id).await?;
        if current.role == Role::Admin && role != Role::Admin {
            admins = other_admins(facts, id).await?;
        }
    }
    let aid = id.as_uuid();
    let name = change.name;
    let out = app
        .run::<Account>(meta, aid, async move |uow| {
            let at = uow.now();
            let before: Account = uow.load(aid).await?;
            if let Some(name) = name.clone() {
                uow.execute::<Account>(aid, AccountCommand::Rename { name, at })
                    .await?;
            }
            if let Some((role, station)) = placement {
                if before.active && before.role == Role::Admin && role != Role::Admin {
                    keep_an_admin(uow, id, AdminExit::Demoted, &admins).await?;
                }
                uow.execute::<Account>(
                    aid,
                    AccountCommand::ChangeRole {
                        role,
                        station_id: station,
                        at,
                    },
                )
                .await?;
                leave_crews(uow, id, &listed, |p| serves_in(p, role, station)).await?;
            }
            Ok(())
        })
        .await?;
    written(app, id, out.position).await
}

/// Only an ADMIN deactivates and reactivates accounts.
pub fn may_set_standing(by: &Principal) -> Result<(), AppError> {
    by.require(&[Role::Admin])
}

/// Deactivates account `id`: it can no longer sign in, its tokens are refused, and it
/// leaves every patrol crew in the same append. Refused for the caller's own account
/// ([`Refusal::DeactivateSelf`]) and for the last active ADMIN ([`Refusal::LastAdmin`]).
/// Already inactive: nothing appended.
pub async fn deactivate<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: AccountId,
    facts: &(impl Rosters + Accounts),
) -> Result<AccountWritten, AppError> {
    may_set_standing(by)?;
    if by.id == id {
        return Err(Refusal::DeactivateSelf.into());
    }
    let (current, _) = app.load::<Account>(id.as_uuid()).await?;
    may_see(by, &current)?;
    let listed = crews_of(facts, id).await?;
    let admins = if current.role == Role::Admin {
        other_admins(facts, id).await?
    } else {
        Vec::new()
    };
    let aid = id.as_uuid();
    let out = app
        .run::<Account>(meta, aid, async move |uow| {
            let at = uow.now();
            let before: Account = uow.load(aid).await?;
            if before.active && before.role == Role::Admin {
                keep_an_admin(uow, id, AdminExit::Deactivated, &admins).await?;
            }
            uow.execute::<Account>(aid, AccountCommand::Deactivate { at })
                .await?;
            leave_crews(uow, id, &listed, |_| false).await
        })
        .await?;
    written(app, id, out.position).await
}

/// Reactivates account `id` (tokens issued before its deactivation stay refused; crews
/// it left are not restored). Already active: nothing appended.
pub async fn reactivate<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: AccountId,
) -> Result<AccountWritten, AppError> {
    may_set_standing(by)?;
    let (current, _) = app.load::<Account>(id.as_uuid()).await?;
    may_see(by, &current)?;
    let aid = id.as_uuid();
    let out = app
        .run::<Account>(meta, aid, async move |uow| {
            let at = uow.now();
            uow.execute::<Account>(aid, AccountCommand::Reactivate { at })
                .await?;
            Ok(())
        })
        .await?;
    written(app, id, out.position).await
}

/// The caller changes their own password: `current` must match (else
/// [`Refusal::WrongPassword`], nothing appended). Every token issued before the change
/// is refused from then on, the caller's own included.
pub async fn change_password<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    current: String,
    new: String,
    passwords: &impl Passwords,
) -> Result<AccountWritten, AppError> {
    let (account, _) = app.load::<Account>(by.id.as_uuid()).await?;
    let Some(hash) = account.password_hash.clone() else {
        return Err(AppError::NotFound);
    };
    // A retry of a change already made gets its original answer: the current password
    // was checked then (it is no longer the current one).
    let stream = stream_of::<Account>(by.id.as_uuid());
    let retried = find_command_in(&app.log().read(&stream).await?, meta.command_id).is_some();
    if !retried && !passwords.verify(current, hash).await? {
        return Err(Refusal::WrongPassword.into());
    }
    set_password(app, by, meta, by.id, new, passwords).await
}

/// Only an ADMIN resets another account's password.
pub fn may_reset_password(by: &Principal) -> Result<(), AppError> {
    by.require(&[Role::Admin])
}

/// An ADMIN sets account `id`'s password; every token issued before is refused.
pub async fn reset_password<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: AccountId,
    new: String,
    passwords: &impl Passwords,
) -> Result<AccountWritten, AppError> {
    may_reset_password(by)?;
    let (current, _) = app.load::<Account>(id.as_uuid()).await?;
    may_see(by, &current)?;
    set_password(app, by, meta, id, new, passwords).await
}

async fn set_password<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: AccountId,
    new: String,
    passwords: &impl Passwords,
) -> Result<AccountWritten, AppError> {
    let password_hash = passwords.hash(new).await?;
    let aid = id.as_uuid();
    let changed_by = by.id;
    let out = app
        .run::<Account>(meta, aid, async move |uow| {
            let at = uow.now();
            uow.execute::<Account>(
                aid,
                AccountCommand::ChangePassword {
                    password_hash: password_hash.clone(),
                    changed_by,
                    at,
                },
            )
            .await?;
            Ok(())
        })
        .await?;
    written(app, id, out.position).await
}

/// The other active ADMIN accounts, as the accounts view lists them (each is checked
/// against the log in the command: [`keep_an_admin`]).
async fn other_admins(accounts: &impl Accounts, id: AccountId) -> Result<Vec<AccountId>, AppError> {
    let listed = accounts
        .active_admins(ADMINS_LOOKED_AT)
        .await?
        .ok_or(Unavailable::Accounts)?;
    Ok(listed.into_iter().filter(|a| *a != id).collect())
}

/// [`Refusal::LastAdmin`] unless one of `candidates` (not `leaving`) is, in the log as
/// the command reads it, an active ADMIN whose data subject was not erased; then records
/// the departure on the ADMIN guard stream (ADR 0039), in the command's append.
///
/// The guard is read *before* the candidates: a departure that lands after that read
/// makes this command's append conflict, and the command decides again on fresh state
/// — so two ADMINs removing each other at once cannot both win.
async fn keep_an_admin<S: EventStore>(
    uow: &mut UnitOfWork<'_, S>,
    leaving: AccountId,
    exit: AdminExit,
    candidates: &[AccountId],
) -> Result<(), AppError> {
    uow.load::<AdminGuard>(ADMIN_GUARD_ID).await?;
    for candidate in candidates.iter().filter(|c| **c != leaving) {
        let account: Account = uow.load(candidate.as_uuid()).await?;
        let subject: DataSubject = uow.load(candidate.as_uuid()).await?;
        if account.active && account.role == Role::Admin && !subject.version_exists() {
            let at = uow.now();
            uow.execute::<AdminGuard>(
                ADMIN_GUARD_ID,
                AdminGuardCommand::Leave {
                    account_id: leaving,
                    exit,
                    at,
                },
            )
            .await?;
            return Ok(());
        }
    }
    Err(Refusal::LastAdmin.into())
}

/// The account as the write side knows it after a command at `position` (also for an
/// idempotent retry or a no-op).
async fn written<S: EventStore>(
    app: &App<S>,
    id: AccountId,
    position: u64,
) -> Result<AccountWritten, AppError> {
    let (account, _) = app.load::<Account>(id.as_uuid()).await?;
    Ok(AccountWritten { account, position })
}
