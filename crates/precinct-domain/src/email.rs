//! The e-mail reservation aggregate: one stream per normalised address, so that two
//! accounts can never claim the same e-mail. Registering an account appends
//! `EmailReserved` to the address's stream (expected: does not exist) together with
//! `AccountRegistered`; the log's optimistic concurrency does the rest.
//!
//! An address whose holder was erased can be claimed again: `Reclaim` appends
//! `EmailReleased` then `EmailReserved` (the caller establishes the erasure).
//!
//! The stream id is derived from the address, never the address itself. Reservations
//! made since e-mails are personal data use [`keyed_email_stream_id`]: a keyed hash
//! (HMAC with a key the application layer keeps in the key store), so nobody holding
//! only the log can test whether an address has an account. Older reservations stay
//! under [`email_stream_id`] (an unkeyed UUID v5); lookups try both.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::{event_enum, Aggregate, DomainError, ErrorKind};
use crate::ids::AccountId;
use crate::values::Email;

/// Namespace for [`email_stream_id`]. Fixed forever: changing it orphans every
/// reservation.
pub const EMAIL_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_8a52_3d4e_4b7a_9c21_5e0f_d3a8_b7c4);

/// The reservation stream id of accounts registered before e-mails were keyed: UUID v5
/// of the normalised e-mail (anyone can compute it from an address).
pub fn email_stream_id(email: &Email) -> Uuid {
    Uuid::new_v5(&EMAIL_NAMESPACE, email.as_str().as_bytes())
}

/// The reservation stream id for an address, from `digest`, a keyed hash of the
/// normalised address (`Email::as_str`) computed by the caller: its first 128 bits as a
/// UUID (version 8, custom).
pub fn keyed_email_stream_id(digest: &[u8; 32]) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

event_enum!(
    /// Everything that can happen to an e-mail reservation.
    EmailEvent {
        EmailReserved,
        EmailReleased,
    }
);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailReserved {
    pub account_id: AccountId,
    pub at: DateTime<Utc>,
}

/// The address is free again: its holder's data subject was erased.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailReleased {
    /// The erased account that held it.
    pub account_id: AccountId,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmailCommand {
    /// Claims the address for an account.
    Reserve {
        account_id: AccountId,
        at: DateTime<Utc>,
    },
    /// Claims the address for `account_id` from `erased_holder`, an account whose data
    /// subject was erased (a fact the caller establishes): releases it, then reserves
    /// it. Refused unless `erased_holder` is the holder.
    Reclaim {
        account_id: AccountId,
        erased_holder: AccountId,
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("this e-mail address is already taken")]
    EmailTaken,
}

impl DomainError for EmailError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Conflict
    }
}

/// Who holds the address, if anyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmailReservation {
    pub account_id: Option<AccountId>,
    pub reserved_at: Option<DateTime<Utc>>,
    /// The address was held and released at least once (the stream exists).
    pub released: bool,
}

impl Aggregate for EmailReservation {
    const TYPE: &'static str = "email";
    type Command = EmailCommand;
    type Event = EmailEvent;
    type Error = EmailError;

    fn handle(&self, cmd: EmailCommand) -> Result<Vec<EmailEvent>, EmailError> {
        match cmd {
            EmailCommand::Reserve { account_id, at } => {
                if self.account_id.is_some() {
                    return Err(EmailError::EmailTaken);
                }
                Ok(vec![EmailReserved { account_id, at }.into()])
            }
            EmailCommand::Reclaim {
                account_id,
                erased_holder,
                at,
            } => match self.account_id {
                Some(holder) if holder == erased_holder => Ok(vec![
                    EmailReleased {
                        account_id: erased_holder,
                        at,
                    }
                    .into(),
                    EmailReserved { account_id, at }.into(),
                ]),
                None => Ok(vec![EmailReserved { account_id, at }.into()]),
                Some(_) => Err(EmailError::EmailTaken),
            },
        }
    }

    fn apply(&mut self, event: &EmailEvent) {
        match event {
            EmailEvent::EmailReserved(e) => {
                self.account_id = Some(e.account_id);
                self.reserved_at = Some(e.at);
            }
            EmailEvent::EmailReleased(_) => {
                self.account_id = None;
                self.reserved_at = None;
                self.released = true;
            }
        }
    }

    fn version_exists(&self) -> bool {
        self.account_id.is_some() || self.released
    }
}
