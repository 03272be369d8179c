//! Invites: an ADMIN invites anyone to any staff role and station; a SUPERVISOR invites
//! PATROL and DISPATCHER of their own station. Accepting an invite creates the invited
//! account (role and station from the invite) and uses the invite up, in one append.
//! The invite's id derives from the hash of its code; the code itself is a bearer
//! secret the caller derives and hands out (only its hash is stored).
//!
//! An invite is honoured only while its author could still create it: at acceptance
//! (and again in the append) the inviter must be active, not erased, and still allowed
//! to invite to that role and station ([`inviter_still_entitled`]).

use chrono::{DateTime, Duration, Utc};
use precinct_domain::account::Account;
use precinct_domain::ids::StationId;
use precinct_domain::invite::{invite_id_for_code_hash, Invite, InviteCommand};
use precinct_domain::subject::DataSubject;
use precinct_domain::values::{Email, Role, TokenHash};
use precinct_domain::Aggregate;
use precinct_eventlog::{CommandMeta, EventStore};

use super::account::{account_id, create, require_station, AccountFields, AccountWritten};
use crate::error::{Denied, Refusal};
use crate::policy::Principal;
use crate::ports::Passwords;
use crate::{App, AppError, UnitOfWork};

/// An invite to create.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub email: Email,
    pub role: Role,
    pub station: Option<StationId>,
    /// The hash of the invite's code.
    pub code_hash: TokenHash,
    /// How long the invite stays valid.
    pub valid_for: Duration,
}

/// An invite after its creation.
#[derive(Debug)]
pub struct InviteWritten {
    pub invite: Invite,
    pub expires_at: DateTime<Utc>,
    pub position: u64,
}

/// Only an ADMIN or a SUPERVISOR invites (checked before the request's fields are
/// parsed).
pub fn may_invite(by: &Principal) -> Result<(), AppError> {
    by.require(&[Role::Admin, Role::Supervisor])
}

/// Whether `inviter` (as the account is now; `erased`: its data subject was erased)
/// may still invite to `role` and `station`: the rule of [`create_invite`].
pub fn may_invite_to(
    inviter: &Account,
    erased: bool,
    role: Role,
    station: Option<StationId>,
) -> bool {
    if !inviter.version_exists() || !inviter.active || erased {
        return false;
    }
    match inviter.role {
        Role::Admin => true,
        Role::Supervisor => {
            matches!(role, Role::Patrol | Role::Dispatcher)
                && station.is_some()
                && station == inviter.station_id
        }
        _ => false,
    }
}

/// [`Refusal::InviterNoLongerEntitled`] unless the invite's author may still invite to
/// its role and station, as the author's account is read in `uow`.
pub(crate) async fn inviter_still_entitled<S: EventStore>(
    uow: &mut UnitOfWork<'_, S>,
    invite: &Invite,
) -> Result<(), AppError> {
    let by = invite.created_by.as_uuid();
    let inviter: Account = uow.load(by).await?;
    let subject: DataSubject = uow.load(by).await?;
    if may_invite_to(
        &inviter,
        subject.version_exists(),
        invite.role,
        invite.station_id,
    ) {
        Ok(())
    } else {
        Err(Refusal::InviterNoLongerEntitled.into())
    }
}

pub async fn create_invite<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    new: NewInvite,
) -> Result<InviteWritten, AppError> {
    may_invite(by)?;
    if by.role == Role::Supervisor {
        // A supervisor staffs their own station with officers and dispatchers.
        if !matches!(new.role, Role::Patrol | Role::Dispatcher) {
            return Err(Denied::InviteRole.into());
        }
        if new.station != by.station_id {
            return Err(Denied::InviteStation.into());
        }
    }
    if let Some(s) = new.station {
        require_station(app, s).await?;
    }
    let invite_id = invite_id_for_code_hash(&new.code_hash);
    let iid = invite_id.as_uuid();
    let by = *by;
    let out = app
        .run::<Invite>(meta, iid, async move |uow| {
            let at = uow.now();
            uow.execute::<Invite>(
                iid,
                InviteCommand::Create {
                    invite_id,
                    code_hash: new.code_hash.clone(),
                    email: new.email.clone(),
                    role: new.role,
                    station_id: new.station,
                    expires_at: at + new.valid_for,
                    created_by: by.id,
                    at,
                },
            )
            .await?;
            Ok(())
        })
        .await?;
    let invite = out
        .state::<Invite>(iid)
        .cloned()
        .ok_or(AppError::NotFound)?;
    Ok(InviteWritten {
        expires_at: invite.expires_at,
        invite,
        position: out.position,
    })
}

/// Accepts the invite whose code hashes to `code_hash`: an unknown code is
/// [`AppError::NotFound`]; an expired or used invite, or an address already taken, a
/// refusal — found before the password is hashed (argon2id is slow and memory-hard on
/// purpose), unless the invite was used by this very command (a retry, which gets its
/// original answer). The append decides again on fresh state.
pub async fn accept_invite<S: EventStore>(
    app: &App<S>,
    meta: &CommandMeta,
    code_hash: &TokenHash,
    name: String,
    password: String,
    passwords: &impl Passwords,
) -> Result<AccountWritten, AppError> {
    let invite_id = invite_id_for_code_hash(code_hash);
    let (invite, _) = app.load::<Invite>(invite_id.as_uuid()).await?;
    let Some(email) = invite.email.clone().filter(|_| invite.version_exists()) else {
        return Err(AppError::NotFound);
    };
    let account_id = account_id(meta);
    if invite.accepted_by != Some(account_id) {
        // The invite's own rule, on the invite as it is now.
        invite
            .handle(InviteCommand::Accept {
                account_id,
                at: Utc::now(),
            })
            .map_err(AppError::domain)?;
        let by = invite.created_by.as_uuid();
        let (inviter, _) = app.load::<Account>(by).await?;
        let (subject, _) = app.load::<DataSubject>(by).await?;
        if !may_invite_to(
            &inviter,
            subject.version_exists(),
            invite.role,
            invite.station_id,
        ) {
            return Err(Refusal::InviterNoLongerEntitled.into());
        }
        let owner = app.email_owner(&email).await?;
        if owner.is_some_and(|id| id != account_id) {
            return Err(Refusal::EmailTaken.into());
        }
    }
    let password_hash = passwords.hash(password).await?;
    create(
        app,
        meta,
        AccountFields {
            email,
            name,
            role: invite.role,
            station: invite.station_id,
            password_hash,
            invite: Some(invite_id),
        },
    )
    .await
}
