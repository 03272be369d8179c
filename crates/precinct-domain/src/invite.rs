//! The invite aggregate: an admin or supervisor invites someone to join as staff with
//! a given role and station; the invitee redeems a one-time code before it expires.
//! Only the code's SHA-256 digest is recorded. Who may invite whom (a supervisor only
//! to their own station, say) is the API's decision, not this aggregate's.
//!
//! The invitee's e-mail address is personal data: sealed with the invite's own key (the
//! invite is its data subject). The account created from the invite records the invite,
//! so erasing that account destroys this key too; an erased address reads as `None`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::account::{station_rule_violation, StationRule};
use crate::aggregate::{event_enum, Aggregate, DomainError, ErrorKind};
use crate::ids::{AccountId, InviteId, StationId};
use crate::values::{Email, Role, TokenHash};

/// Namespace for [`invite_id_for_code_hash`]. Fixed forever.
pub const INVITE_NAMESPACE: Uuid = Uuid::from_u128(0x2b9e_41d7_0c6a_4f38_8e15_a7d2_64c9_f013);

/// A deterministic invite id for a code digest (UUID v5), so `/invites/{code}/accept`
/// can find the stream without a lookup table. Optional: callers may use random ids
/// and a read model instead.
pub fn invite_id_for_code_hash(code_hash: &TokenHash) -> InviteId {
    InviteId::new(Uuid::new_v5(
        &INVITE_NAMESPACE,
        code_hash.as_str().as_bytes(),
    ))
}

event_enum!(
    /// Everything that can happen to an invite.
    InviteEvent {
        InviteCreated,
        InviteAccepted,
    }
);

/// `email` is sealed in the log; `None` once erased.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteCreated {
    pub invite_id: InviteId,
    pub code_hash: TokenHash,
    #[serde(default)]
    pub email: Option<Email>,
    pub role: Role,
    #[serde(default)]
    pub station_id: Option<StationId>,
    pub expires_at: DateTime<Utc>,
    pub created_by: AccountId,
    pub at: DateTime<Utc>,
}

/// The invite was redeemed by creating `account_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteAccepted {
    pub account_id: AccountId,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InviteCommand {
    /// Any staff role (not `CITIZEN`), station as the role requires, expiring after `at`.
    Create {
        invite_id: InviteId,
        code_hash: TokenHash,
        email: Email,
        role: Role,
        station_id: Option<StationId>,
        expires_at: DateTime<Utc>,
        created_by: AccountId,
        at: DateTime<Utc>,
    },
    /// Redeems the invite (once, before `expires_at`).
    Accept {
        account_id: AccountId,
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("invite not found")]
    NotFound,
    #[error("invite already exists")]
    AlreadyExists,
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("role {role} cannot be invited")]
    RoleNotInvitable { role: Role },
    #[error("role {role} requires a station")]
    StationRequired { role: Role },
    #[error("role {role} must not have a station")]
    StationNotAllowed { role: Role },
    #[error("the invite has expired")]
    Expired,
    #[error("the invite has already been used")]
    AlreadyUsed,
}

impl DomainError for InviteError {
    fn kind(&self) -> ErrorKind {
        match self {
            InviteError::NotFound => ErrorKind::NotFound,
            InviteError::AlreadyExists | InviteError::Expired | InviteError::AlreadyUsed => {
                ErrorKind::Conflict
            }
            InviteError::Invalid { .. }
            | InviteError::RoleNotInvitable { .. }
            | InviteError::StationRequired { .. }
            | InviteError::StationNotAllowed { .. } => ErrorKind::Invalid,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            InviteError::Invalid { field, .. } => Some(field),
            InviteError::RoleNotInvitable { .. } => Some("role"),
            InviteError::StationRequired { .. } | InviteError::StationNotAllowed { .. } => {
                Some("station_id")
            }
            _ => None,
        }
    }
}

/// An invite's state, folded from its events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Invite {
    exists: bool,
    pub id: InviteId,
    /// `None` only before creation.
    pub code_hash: Option<TokenHash>,
    /// `None` before creation and once the invitee's address was erased.
    pub email: Option<Email>,
    pub role: Role,
    pub station_id: Option<StationId>,
    pub expires_at: DateTime<Utc>,
    pub created_by: AccountId,
    pub created_at: DateTime<Utc>,
    pub accepted_by: Option<AccountId>,
    pub accepted_at: Option<DateTime<Utc>>,
}

impl Invite {
    /// Open for redemption at `at`: created, unused and not expired.
    pub fn is_redeemable(&self, at: DateTime<Utc>) -> bool {
        self.exists && self.accepted_by.is_none() && at < self.expires_at
    }
}

impl Aggregate for Invite {
    const TYPE: &'static str = "invite";
    type Command = InviteCommand;
    type Event = InviteEvent;
    type Error = InviteError;

    fn handle(&self, cmd: InviteCommand) -> Result<Vec<InviteEvent>, InviteError> {
        let event: InviteEvent = match cmd {
            InviteCommand::Create {
                invite_id,
                code_hash,
                email,
                role,
                station_id,
                expires_at,
                created_by,
                at,
            } => {
                if self.exists {
                    return Err(InviteError::AlreadyExists);
                }
                if role == Role::Citizen {
                    return Err(InviteError::RoleNotInvitable { role });
                }
                match station_rule_violation(role, station_id) {
                    Some(StationRule::Required) => {
                        return Err(InviteError::StationRequired { role })
                    }
                    Some(StationRule::NotAllowed) => {
                        return Err(InviteError::StationNotAllowed { role })
                    }
                    None => {}
                }
                if expires_at <= at {
                    return Err(InviteError::Invalid {
                        field: "expires_at",
                        reason: "must be later than the invite's creation".to_owned(),
                    });
                }
                InviteCreated {
                    invite_id,
                    code_hash,
                    email: Some(email),
                    role,
                    station_id,
                    expires_at,
                    created_by,
                    at,
                }
                .into()
            }
            InviteCommand::Accept { account_id, at } => {
                if !self.exists {
                    return Err(InviteError::NotFound);
                }
                if self.accepted_by.is_some() {
                    return Err(InviteError::AlreadyUsed);
                }
                if at >= self.expires_at {
                    return Err(InviteError::Expired);
                }
                InviteAccepted { account_id, at }.into()
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &InviteEvent) {
        match event {
            InviteEvent::InviteCreated(e) => {
                *self = Invite {
                    exists: true,
                    id: e.invite_id,
                    code_hash: Some(e.code_hash.clone()),
                    email: e.email.clone(),
                    role: e.role,
                    station_id: e.station_id,
                    expires_at: e.expires_at,
                    created_by: e.created_by,
                    created_at: e.at,
                    accepted_by: None,
                    accepted_at: None,
                };
            }
            InviteEvent::InviteAccepted(e) => {
                self.accepted_by = Some(e.account_id);
                self.accepted_at = Some(e.at);
            }
        }
    }

    fn version_exists(&self) -> bool {
        self.exists
    }

    /// The invitee's address is sealed with the invite's own key.
    fn data_subject(&self) -> Option<Uuid> {
        self.exists.then(|| self.id.as_uuid())
    }
}
