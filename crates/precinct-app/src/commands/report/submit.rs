//! Submitting a report: routing chooses its station (division keyword → precinct area →
//! nearest precinct) on a station map at least as new as the last station change, and
//! its crime types resolve to catalogue codes on a catalogue at least as new as the last
//! catalogue change (ADR 0026); the report's id derives from the command id. Anyone may submit: a signed-in reporter, or
//! an anonymous one who follows the report with a tracking token (only its hash is
//! stored). A reporter who gives an e-mail address for news of the report gets its
//! `EmailUpdatesRequested` on the stream `reporter_contact.<report id>`, in the same
//! atomic batch, sealed under the report's data subject (ADR 0033).

use chrono::{DateTime, Utc};
use precinct_domain::ids::ReportId;
use precinct_domain::report::{PersonalDetails, Report, ReportCommand, ReportLocation, Reporter};
use precinct_domain::reporter_contact::{ReporterContact, ReporterContactCommand};
use precinct_domain::routing::route;
use precinct_domain::values::Email;
use precinct_eventlog::{CommandMeta, EventStore};

use crate::error::{Refusal, Unavailable};
use crate::ports::{CrimeTypes, StationMap};
use crate::{ids, App, AppError};

/// A new report, as its reporter wrote it.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub title: String,
    pub description: String,
    /// At least one (the route checks; the domain refuses none).
    pub crime_types: Vec<String>,
    pub location: ReportLocation,
    /// Personal: sealed with the reporter's key.
    pub street: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub media_urls: Vec<String>,
    /// Personal.
    pub contact: Option<String>,
    /// Where to e-mail news of the report; personal, for that purpose only.
    pub notify_email: Option<Email>,
}

/// A submitted report.
#[derive(Debug)]
pub struct Submitted {
    pub report: Report,
    pub position: u64,
}

/// The id the report of command `meta` gets (a retry targets the same report).
pub fn report_id(meta: &CommandMeta) -> ReportId {
    ReportId::new(ids::derived_id(meta.command_id, "report"))
}

/// Submits `new` for `reporter`, routed on the stations of `facts` and resolved on its
/// crime-type catalogue.
pub async fn submit<S: EventStore>(
    app: &App<S>,
    meta: &CommandMeta,
    reporter: Reporter,
    new: NewReport,
    facts: &(impl StationMap + CrimeTypes),
) -> Result<Submitted, AppError> {
    let catalogue = facts.catalogue().await?.ok_or(Unavailable::Catalogue)?;
    let facts = facts.current().await?.ok_or(Unavailable::StationMap)?;
    let routing = route(&facts, &new.crime_types, new.location.point())
        .map_err(|_| Refusal::NoStationForLocation)?;
    let report_id = report_id(meta);
    let id = report_id.as_uuid();
    let out = app
        .run::<Report>(meta, id, async move |uow| {
            let at = uow.now();
            uow.execute::<Report>(
                id,
                ReportCommand::Submit {
                    report_id,
                    title: new.title.clone(),
                    crime_types: new.crime_types.clone(),
                    catalogue: catalogue.clone(),
                    location: new.location.clone(),
                    occurred_at: new.occurred_at,
                    media_urls: new.media_urls.clone(),
                    reporter: reporter.clone(),
                    routing: routing.clone(),
                    personal: PersonalDetails {
                        description: new.description.clone(),
                        street: new.street.clone(),
                        contact: new.contact.clone(),
                        erased: false,
                    },
                    at,
                },
            )
            .await?;
            if let Some(email) = &new.notify_email {
                // The report's data subject: the address is erased with the report's
                // other personal data.
                let subject_id = match &reporter {
                    Reporter::User { account_id } => account_id.as_uuid(),
                    Reporter::Anonymous { .. } => id,
                };
                uow.execute::<ReporterContact>(
                    id,
                    ReporterContactCommand::RequestEmail {
                        report_id,
                        subject_id,
                        email: email.clone(),
                        at,
                    },
                )
                .await?;
            }
            Ok(())
        })
        .await?;
    let report = out.state::<Report>(id).cloned().ok_or(AppError::NotFound)?;
    Ok(Submitted {
        report,
        position: out.position,
    })
}
