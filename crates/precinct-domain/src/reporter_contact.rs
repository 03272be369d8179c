//! Where a reporter wants to hear about their report: one stream per report
//! (`reporter_contact.<report id>`), apart from the report's own events, so that the
//! address given for notifications reaches nothing else — no view, no webhook, no
//! history (ADR 0033).
//!
//! A reporter — signed in or anonymous — may give an e-mail address when submitting;
//! the application layer appends [`EmailUpdatesRequested`] in the same atomic batch as
//! the report's `ReportSubmitted`. The address is personal data
//! ([`crate::subject::personal_fields`]): sealed under the report's data subject (the
//! reporter's account, or the anonymous report itself), so erasing that subject erases
//! the address; it then reads as `None` and nothing more is sent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::{event_enum, Aggregate, DomainError, ErrorKind};
use crate::ids::ReportId;
use crate::values::Email;

event_enum!(
    /// Everything that can happen to a report's notification contact.
    ReporterContactEvent { EmailUpdatesRequested }
);

/// The reporter asked for e-mail on the changes of `report_id` at `email`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailUpdatesRequested {
    pub report_id: ReportId,
    /// The report's data subject: the reporter's account, or the anonymous report.
    pub subject_id: Uuid,
    /// Personal (sealed); `None` once the subject was erased.
    #[serde(default)]
    pub email: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReporterContactCommand {
    /// Asks for e-mail updates of a report (at its submission).
    RequestEmail {
        report_id: ReportId,
        subject_id: Uuid,
        email: Email,
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReporterContactError {
    #[error("this report already has a notification contact")]
    AlreadyGiven,
}

impl DomainError for ReporterContactError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Conflict
    }
}

/// A report's notification contact, if one was given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReporterContact {
    pub report_id: Option<ReportId>,
    pub subject_id: Option<Uuid>,
    /// `None`: none given, or erased.
    pub email: Option<String>,
}

impl Aggregate for ReporterContact {
    const TYPE: &'static str = "reporter_contact";
    type Command = ReporterContactCommand;
    type Event = ReporterContactEvent;
    type Error = ReporterContactError;

    fn handle(
        &self,
        cmd: ReporterContactCommand,
    ) -> Result<Vec<ReporterContactEvent>, ReporterContactError> {
        match cmd {
            ReporterContactCommand::RequestEmail {
                report_id,
                subject_id,
                email,
                at,
            } => {
                if self.report_id.is_some() {
                    return Err(ReporterContactError::AlreadyGiven);
                }
                Ok(vec![EmailUpdatesRequested {
                    report_id,
                    subject_id,
                    email: Some(email.as_str().to_owned()),
                    at,
                }
                .into()])
            }
        }
    }

    fn apply(&mut self, event: &ReporterContactEvent) {
        match event {
            ReporterContactEvent::EmailUpdatesRequested(e) => {
                self.report_id = Some(e.report_id);
                self.subject_id = Some(e.subject_id);
                self.email.clone_from(&e.email);
            }
        }
    }

    fn version_exists(&self) -> bool {
        self.report_id.is_some()
    }

    fn data_subject(&self) -> Option<Uuid> {
        self.subject_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DomainEvent;

    fn request(email: &str) -> ReporterContactCommand {
        ReporterContactCommand::RequestEmail {
            report_id: ReportId::new(Uuid::from_u128(1)),
            subject_id: Uuid::from_u128(2),
            email: Email::parse(email).expect("an address"),
            at: "2026-11-29T10:00:00Z".parse().expect("a time"),
        }
    }

    #[test]
    fn given_no_contact_when_an_address_is_given_then_it_is_recorded_under_the_subject() {
        let events = ReporterContact::default()
            .handle(request("Reporter@Example.org"))
            .expect("accepted");
        let mut state = ReporterContact::default();
        assert!(!state.version_exists(), "no contact before the request");
        assert_eq!(state.data_subject(), None);
        for e in &events {
            state.apply(e);
        }
        assert_eq!(state.email.as_deref(), Some("reporter@example.org"));
        assert_eq!(state.data_subject(), Some(Uuid::from_u128(2)));
        assert!(state.version_exists());
    }

    #[test]
    fn given_a_contact_when_another_is_given_then_it_is_refused() {
        let mut state = ReporterContact::default();
        for e in state.handle(request("a@example.org")).expect("first") {
            state.apply(&e);
        }
        assert_eq!(
            state.handle(request("b@example.org")),
            Err(ReporterContactError::AlreadyGiven)
        );
    }

    #[test]
    fn an_erased_address_reads_as_none() {
        let e = ReporterContactEvent::from_parts(
            "EmailUpdatesRequested",
            serde_json::json!({"report_id": Uuid::from_u128(1), "subject_id": Uuid::from_u128(2),
                "email": null, "at": "2026-11-29T10:00:00Z"}),
        )
        .expect("decodes");
        let mut state = ReporterContact::default();
        state.apply(&e);
        assert_eq!(state.email, None);
    }
}
