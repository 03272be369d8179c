//! The account aggregate: who someone is (e-mail, name, password hash), their role and
//! station, and whether they may sign in.
//!
//! E-mail uniqueness is not this aggregate's to enforce (it sees one account): the
//! caller reserves the address in the [`crate::email`] aggregate in the same append.
//!
//! The e-mail address and the name are personal data: they are sealed with the account's
//! own key (the account is its data subject), so erasing the subject leaves them
//! unreadable. An erased field reads as `None`. Accounts registered before sealing keep
//! theirs in clear in the log (events are never rewritten).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{event_enum, Aggregate, DomainError, ErrorKind};
use crate::ids::{AccountId, InviteId, StationId};
use crate::values::{limits, Email, NonEmptyText, PasswordHash, Role};

event_enum!(
    /// Everything that can happen to an account.
    AccountEvent {
        AccountRegistered,
        AccountRoleChanged,
        AccountDeactivated,
        AccountReactivated,
        AccountRenamed,
        AccountPasswordChanged,
    }
);

/// A new, active account. `email` and `name` are sealed in the log; `None` once the
/// account's data subject was erased.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRegistered {
    pub account_id: AccountId,
    #[serde(default)]
    pub email: Option<Email>,
    #[serde(default)]
    pub name: Option<String>,
    pub role: Role,
    #[serde(default)]
    pub station_id: Option<StationId>,
    pub password_hash: PasswordHash,
    pub at: DateTime<Utc>,
    /// The invite the account was created from, if any (its key holds the invitee's
    /// address: erasing the account erases it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_id: Option<InviteId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRoleChanged {
    pub role: Role,
    #[serde(default)]
    pub station_id: Option<StationId>,
    pub at: DateTime<Utc>,
}

/// The account may no longer sign in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDeactivated {
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountReactivated {
    pub at: DateTime<Utc>,
}

/// The account's name changed. `name` is sealed in the log; `None` once erased.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRenamed {
    #[serde(default)]
    pub name: Option<String>,
    pub at: DateTime<Utc>,
}

/// The account's password changed (by its holder, or reset by an ADMIN): tokens issued
/// before it are no longer honoured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountPasswordChanged {
    pub password_hash: PasswordHash,
    /// Who changed it: the account itself, or the ADMIN who reset it.
    pub changed_by: AccountId,
    pub at: DateTime<Utc>,
}

/// Everything a caller may ask of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountCommand {
    /// Creates the account. Name 1..=200 characters; station as the role requires.
    Register {
        account_id: AccountId,
        email: Email,
        name: String,
        role: Role,
        station_id: Option<StationId>,
        password_hash: PasswordHash,
        at: DateTime<Utc>,
        /// The invite redeemed to create it, if any.
        invite_id: Option<InviteId>,
    },
    /// Same role and station again is a no-op (no events).
    ChangeRole {
        role: Role,
        station_id: Option<StationId>,
        at: DateTime<Utc>,
    },
    /// Already inactive: a no-op (no events).
    Deactivate { at: DateTime<Utc> },
    /// Already active: a no-op (no events).
    Reactivate { at: DateTime<Utc> },
    /// Name 1..=200 characters; the same name again is a no-op (no events).
    Rename { name: String, at: DateTime<Utc> },
    /// Always recorded (even the same password: a change revokes older tokens).
    ChangePassword {
        password_hash: PasswordHash,
        changed_by: AccountId,
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("account not found")]
    NotFound,
    #[error("account already exists")]
    AlreadyExists,
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("role {role} requires a station")]
    StationRequired { role: Role },
    #[error("role {role} must not have a station")]
    StationNotAllowed { role: Role },
}

impl DomainError for AccountError {
    fn kind(&self) -> ErrorKind {
        match self {
            AccountError::NotFound => ErrorKind::NotFound,
            AccountError::AlreadyExists => ErrorKind::Conflict,
            AccountError::Invalid { .. }
            | AccountError::StationRequired { .. }
            | AccountError::StationNotAllowed { .. } => ErrorKind::Invalid,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            AccountError::Invalid { field, .. } => Some(field),
            AccountError::StationRequired { .. } | AccountError::StationNotAllowed { .. } => {
                Some("station_id")
            }
            _ => None,
        }
    }
}

/// How a role and a station may fail to go together (shared with invites).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StationRule {
    Required,
    NotAllowed,
}

/// `PATROL`, `DISPATCHER` and `SUPERVISOR` need a station; `CITIZEN` and `ADMIN` have
/// none.
pub(crate) fn station_rule_violation(
    role: Role,
    station: Option<StationId>,
) -> Option<StationRule> {
    match (role.needs_station(), station) {
        (true, None) => Some(StationRule::Required),
        (false, Some(_)) => Some(StationRule::NotAllowed),
        _ => None,
    }
}

fn parse_name(name: &str) -> Result<NonEmptyText, AccountError> {
    NonEmptyText::parse(name, limits::NAME_MAX).map_err(|e| AccountError::Invalid {
        field: "name",
        reason: e.to_string(),
    })
}

fn check_station(role: Role, station: Option<StationId>) -> Result<(), AccountError> {
    match station_rule_violation(role, station) {
        Some(StationRule::Required) => Err(AccountError::StationRequired { role }),
        Some(StationRule::NotAllowed) => Err(AccountError::StationNotAllowed { role }),
        None => Ok(()),
    }
}

/// An account's state, folded from its events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Account {
    exists: bool,
    pub id: AccountId,
    /// `None` before registration and once the account's personal data was erased.
    pub email: Option<Email>,
    /// Empty once the account's personal data was erased.
    pub name: String,
    pub role: Role,
    pub station_id: Option<StationId>,
    /// `None` only before registration.
    pub password_hash: Option<PasswordHash>,
    /// The invite the account was created from, if any.
    pub invite_id: Option<InviteId>,
    pub active: bool,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn handle(&self, cmd: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountCommand as C;
        match (matches!(cmd, C::Register { .. }), self.exists) {
            (true, true) => return Err(AccountError::AlreadyExists),
            (false, false) => return Err(AccountError::NotFound),
            _ => {}
        }
        let event: AccountEvent = match cmd {
            C::Register {
                account_id,
                email,
                name,
                role,
                station_id,
                password_hash,
                at,
                invite_id,
            } => {
                let name = parse_name(&name)?;
                check_station(role, station_id)?;
                AccountRegistered {
                    account_id,
                    email: Some(email),
                    name: Some(name.into_string()),
                    role,
                    station_id,
                    password_hash,
                    at,
                    invite_id,
                }
                .into()
            }
            C::ChangeRole {
                role,
                station_id,
                at,
            } => {
                check_station(role, station_id)?;
                if role == self.role && station_id == self.station_id {
                    return Ok(Vec::new());
                }
                AccountRoleChanged {
                    role,
                    station_id,
                    at,
                }
                .into()
            }
            C::Deactivate { at } => {
                if !self.active {
                    return Ok(Vec::new());
                }
                AccountDeactivated { at }.into()
            }
            C::Reactivate { at } => {
                if self.active {
                    return Ok(Vec::new());
                }
                AccountReactivated { at }.into()
            }
            C::Rename { name, at } => {
                let name = parse_name(&name)?;
                if name.as_str() == self.name {
                    return Ok(Vec::new());
                }
                AccountRenamed {
                    name: Some(name.into_string()),
                    at,
                }
                .into()
            }
            C::ChangePassword {
                password_hash,
                changed_by,
                at,
            } => AccountPasswordChanged {
                password_hash,
                changed_by,
                at,
            }
            .into(),
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::AccountRegistered(e) => {
                *self = Account {
                    exists: true,
                    id: e.account_id,
                    email: e.email.clone(),
                    name: e.name.clone().unwrap_or_default(),
                    role: e.role,
                    station_id: e.station_id,
                    password_hash: Some(e.password_hash.clone()),
                    invite_id: e.invite_id,
                    active: true,
                    registered_at: e.at,
                    updated_at: e.at,
                };
            }
            AccountEvent::AccountRoleChanged(e) => {
                self.role = e.role;
                self.station_id = e.station_id;
                self.updated_at = e.at;
            }
            AccountEvent::AccountDeactivated(e) => {
                self.active = false;
                self.updated_at = e.at;
            }
            AccountEvent::AccountReactivated(e) => {
                self.active = true;
                self.updated_at = e.at;
            }
            AccountEvent::AccountRenamed(e) => {
                self.name = e.name.clone().unwrap_or_default();
                self.updated_at = e.at;
            }
            AccountEvent::AccountPasswordChanged(e) => {
                self.password_hash = Some(e.password_hash.clone());
                self.updated_at = e.at;
            }
        }
    }

    fn version_exists(&self) -> bool {
        self.exists
    }

    /// The account's own personal data (e-mail, name) is sealed with its key.
    fn data_subject(&self) -> Option<uuid::Uuid> {
        self.exists.then(|| self.id.as_uuid())
    }
}
