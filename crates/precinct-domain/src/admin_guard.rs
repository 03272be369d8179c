//! The ADMIN guard: one stream (`admin_guard.<ADMIN_GUARD_ID>`) that every command
//! taking an ADMIN out of office appends to — a deactivation or a demotion of an active
//! ADMIN, the erasure of an ADMIN account (deactivated first) — in the same atomic
//! append as the change itself (ADR 0039).
//!
//! Why it exists: "there is always an active ADMIN" is a rule over *several* accounts,
//! and the log's optimistic concurrency checks only the streams an append writes. Two
//! ADMINs deactivating each other at the same moment each read the other as active and
//! write only their target's stream, so both would win and leave nobody able to
//! administer the system. Writing this one stream too, at the version read *before*
//! looking at the other ADMINs, makes every such pair of commands conflict: the loser
//! decides again on fresh state and finds itself removing the last ADMIN.
//!
//! What this aggregate is not: it does not know who the ADMINs are (the accounts do;
//! the application layer checks that another active ADMIN remains before it records a
//! departure here) and it never refuses a departure itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::{event_enum, Aggregate, DomainError, ErrorKind};
use crate::ids::AccountId;

/// The guard's one stream id. Fixed forever: a second id would be a second guard.
pub const ADMIN_GUARD_ID: Uuid = Uuid::from_u128(0x3b9e_41c7_0d5a_4f12_8e6b_a27c_94d1_5f08);

/// How an active ADMIN left office.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminExit {
    /// The account was deactivated.
    #[serde(rename = "DEACTIVATED")]
    Deactivated,
    /// The account was given another role.
    #[serde(rename = "DEMOTED")]
    Demoted,
    /// The (deactivated) ADMIN account's data subject was erased.
    #[serde(rename = "ERASED")]
    Erased,
}

event_enum!(
    /// Everything the ADMIN guard records.
    AdminGuardEvent {
        AdminLeft,
    }
);

/// An ADMIN left office: an active one deactivated or demoted while another active
/// ADMIN remained, or an ADMIN account (already deactivated) erased for good.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminLeft {
    pub account_id: AccountId,
    pub exit: AdminExit,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminGuardCommand {
    /// Records that `account_id` leaves office (the caller has established that another
    /// active ADMIN remains).
    Leave {
        account_id: AccountId,
        exit: AdminExit,
        at: DateTime<Utc>,
    },
}

/// The guard refuses nothing: the rule it serialises is checked by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminGuardError {}

impl DomainError for AdminGuardError {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
}

/// How many ADMINs left office through the guard (its version is what matters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdminGuard {
    pub departures: u64,
}

impl Aggregate for AdminGuard {
    const TYPE: &'static str = "admin_guard";
    type Command = AdminGuardCommand;
    type Event = AdminGuardEvent;
    type Error = AdminGuardError;

    fn handle(&self, cmd: AdminGuardCommand) -> Result<Vec<AdminGuardEvent>, AdminGuardError> {
        match cmd {
            AdminGuardCommand::Leave {
                account_id,
                exit,
                at,
            } => Ok(vec![AdminLeft {
                account_id,
                exit,
                at,
            }
            .into()]),
        }
    }

    fn apply(&mut self, event: &AdminGuardEvent) {
        match event {
            AdminGuardEvent::AdminLeft(_) => self.departures += 1,
        }
    }

    fn version_exists(&self) -> bool {
        self.departures > 0
    }
}
