//! Data subjects and their erasure.
//!
//! A data subject is whoever personal data in the log is about: a reporter's account,
//! or one anonymous report (its id). Personal fields of events are sealed with the
//! subject's own key (see `precinct-vault`); erasing the subject destroys that key and
//! records `DataSubjectErased` on the stream `subject.<id>`, so who erased what and when
//! stays in the log while the data itself is gone.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::{event_enum, Aggregate, DomainError, ErrorKind};
use crate::ids::AccountId;

event_enum!(
    /// Everything that can happen to a data subject.
    SubjectEvent { DataSubjectErased }
);

/// The subject's key was destroyed: its personal data is unrecoverable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSubjectErased {
    pub subject_id: Uuid,
    pub erased_by: AccountId,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubjectCommand {
    /// Erase. Erasing an erased subject is a no-op (no events).
    Erase {
        subject_id: Uuid,
        erased_by: AccountId,
        at: DateTime<Utc>,
    },
}

/// Subjects cannot refuse erasure; the type exists for the aggregate contract.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {}

impl DomainError for SubjectError {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataSubject {
    pub erased_at: Option<DateTime<Utc>>,
}

impl Aggregate for DataSubject {
    const TYPE: &'static str = "subject";
    type Command = SubjectCommand;
    type Event = SubjectEvent;
    type Error = SubjectError;

    fn handle(&self, cmd: SubjectCommand) -> Result<Vec<SubjectEvent>, SubjectError> {
        match cmd {
            SubjectCommand::Erase {
                subject_id,
                erased_by,
                at,
            } => {
                if self.erased_at.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![DataSubjectErased {
                    subject_id,
                    erased_by,
                    at,
                }
                .into()])
            }
        }
    }

    fn apply(&mut self, event: &SubjectEvent) {
        match event {
            SubjectEvent::DataSubjectErased(e) => self.erased_at = Some(e.at),
        }
    }

    fn version_exists(&self) -> bool {
        self.erased_at.is_some()
    }
}

/// The fields of an event payload that hold personal data and are sealed with the
/// data subject's key before they enter the log.
pub fn personal_fields(event_type: &str) -> &'static [&'static str] {
    match event_type {
        "ReportSubmitted" | "ReportAmended" => &["personal"],
        "EvidenceAttached" => &["description"],
        "AccountRegistered" => &["email", "name"],
        "AccountRenamed" => &["name"],
        "InviteCreated" | "EmailUpdatesRequested" => &["email"],
        "DeviceRegistered" => &["endpoint", "keys"],
        _ => &[],
    }
}

/// The fields of an event payload sealed before they enter the log: the personal
/// fields, and the webhook signing secrets (sealed under the subscription's own key).
pub fn sealed_fields(event_type: &str) -> &'static [&'static str] {
    match event_type {
        "WebhookCreated" | "WebhookSecretRotated" => &["secret"],
        other => personal_fields(other),
    }
}
