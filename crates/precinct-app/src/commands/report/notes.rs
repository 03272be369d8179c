//! What is written on a report while it is worked: internal notes (staff only), public
//! updates (for the reporter) — by the assigned patrol or the station's desk — and
//! evidence (by the assigned patrol). Their ids derive from the command id.

use chrono::{DateTime, Utc};
use precinct_domain::ids::{EvidenceId, NoteId, ReportId, UpdateId};
use precinct_domain::report::ReportCommand;
use precinct_domain::values::MediaType;
use precinct_eventlog::{CommandMeta, EventStore};

use super::{change, Change, Changed, Decision, OnReport};
use crate::policy::Principal;
use crate::{App, AppError};

/// Adds an internal note.
pub async fn add_note<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    note: String,
) -> Result<Changed, AppError> {
    change(app, by, meta, id, vec![Change::Note(note)]).await
}

/// Posts an update for the reporter.
pub async fn post_public_update<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    message: String,
) -> Result<Changed, AppError> {
    change(app, by, meta, id, vec![Change::PublicUpdate(message)]).await
}

/// A piece of evidence: a link to a file, stored as given (Precinct never fetches it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub url: String,
    pub media_type: MediaType,
    pub captured_at: Option<DateTime<Utc>>,
    pub description: Option<String>,
}

/// Attaches evidence.
pub async fn attach_evidence<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    evidence: Evidence,
) -> Result<Changed, AppError> {
    change(app, by, meta, id, vec![Change::Evidence(evidence)]).await
}

pub(super) fn decide_note(on: &OnReport<'_>, note: String) -> Result<Decision, AppError> {
    on.member_or_desk()?;
    Ok(Decision::report(ReportCommand::AddNote {
        note_id: NoteId::new(on.entry_id("note")),
        note,
        author_id: on.by.id,
        at: on.at,
    }))
}

pub(super) fn decide_public_update(
    on: &OnReport<'_>,
    message: String,
) -> Result<Decision, AppError> {
    on.member_or_desk()?;
    Ok(Decision::report(ReportCommand::PostPublicUpdate {
        update_id: UpdateId::new(on.entry_id("update")),
        message,
        author_id: on.by.id,
        at: on.at,
    }))
}

pub(super) fn decide_evidence(on: &OnReport<'_>, e: Evidence) -> Result<Decision, AppError> {
    on.member()?;
    Ok(Decision::report(ReportCommand::AttachEvidence {
        evidence_id: EvidenceId::new(on.entry_id("evidence")),
        url: e.url,
        media_type: e.media_type,
        captured_at: e.captured_at,
        description: e.description,
        author_id: on.by.id,
        at: on.at,
    }))
}
