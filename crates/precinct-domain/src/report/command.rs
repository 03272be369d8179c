//! Report commands and the decisions behind them. All validation of command fields
//! happens here; field names in `ReportError::Invalid` are the HTTP request's.

use chrono::{DateTime, Duration, Utc};

use super::events::*;
use super::{Report, ReportError, MAX_AMENDMENTS, MAX_REPORT_EVENTS};
use crate::dispatch::AssignmentDecision;
use crate::ids::{AccountId, EvidenceId, NoteId, PatrolId, ReportId, StationId, UpdateId};
use crate::routing::RoutingDecision;
use crate::values::{
    limits, optional_text, EscalationAction, HttpUrl, MediaType, NonEmptyText, Priority,
    ReportStatus, SlaKind, Timestamp,
};

use crate::crime_type::{resolve, CrimeTypeFacts};
use ReportStatus::{Accepted, Assigned, Closed, New, Rejected, Resolved, Responding, Withdrawn};

/// Everything a caller may ask of a report. Times, ids and outside facts (routing,
/// the automatic-assignment decision, the SLA length) arrive inside the command.
#[derive(Clone, Debug, PartialEq)]
pub enum ReportCommand {
    /// Creates the report (`NEW`, priority `MEDIUM`). `routing` comes from
    /// [`crate::routing::route`]; the report goes to `routing.station_id`.
    Submit {
        report_id: ReportId,
        title: String,
        crime_types: Vec<String>,
        /// The crime-type catalogue as it is (resolves `crime_types` to codes).
        catalogue: Vec<CrimeTypeFacts>,
        location: ReportLocation,
        occurred_at: Option<DateTime<Utc>>,
        media_urls: Vec<String>,
        reporter: Reporter,
        routing: RoutingDecision,
        personal: PersonalDetails,
        at: DateTime<Utc>,
    },
    /// Replaces the given fields (open reports only). Refuses an empty change set, and a
    /// reporter's amendment beyond [`MAX_AMENDMENTS`](super::MAX_AMENDMENTS).
    Amend {
        changes: ReportChanges,
        personal: Option<PersonalChanges>,
        by: AmendedBy,
        /// The crime-type catalogue as it is: new `changes.crime_types` resolve on it.
        catalogue: Vec<CrimeTypeFacts>,
        at: DateTime<Utc>,
    },
    /// Sets the priority (open reports only).
    Triage {
        priority: Priority,
        at: DateTime<Utc>,
    },
    /// `NEW → ASSIGNED`. `decision` is the automatic-assignment record, if automatic;
    /// its `patrol_id` must equal `patrol_id`.
    Assign {
        patrol_id: PatrolId,
        decision: Option<AssignmentDecision>,
        at: DateTime<Utc>,
    },
    /// `ASSIGNED → ACCEPTED` by the assigned patrol.
    Accept { at: DateTime<Utc> },
    /// `ASSIGNED → NEW` by the assigned patrol; reason required.
    Decline { reason: String, at: DateTime<Utc> },
    /// `ACCEPTED → RESPONDING`.
    Respond { at: DateTime<Utc> },
    /// Adds a note (open reports only).
    AddNote {
        note_id: NoteId,
        note: String,
        author_id: AccountId,
        at: DateTime<Utc>,
    },
    /// Posts an update for the reporter (open reports only).
    PostPublicUpdate {
        update_id: UpdateId,
        message: String,
        author_id: AccountId,
        at: DateTime<Utc>,
    },
    /// Attaches evidence while `ACCEPTED`, `RESPONDING` or `RESOLVED`.
    AttachEvidence {
        evidence_id: EvidenceId,
        url: String,
        media_type: MediaType,
        captured_at: Option<DateTime<Utc>>,
        description: Option<String>,
        author_id: AccountId,
        at: DateTime<Utc>,
    },
    /// `RESPONDING → RESOLVED`; resolution notes required.
    Resolve {
        resolution_notes: String,
        at: DateTime<Utc>,
    },
    /// `RESOLVED → CLOSED`.
    ApproveClosure {
        reviewer_id: AccountId,
        at: DateTime<Utc>,
    },
    /// `RESOLVED → RESPONDING`; reason required.
    RejectClosure {
        reviewer_id: AccountId,
        reason: String,
        at: DateTime<Utc>,
    },
    /// `NEW | ASSIGNED → REJECTED` as invalid; justification required (internal); the
    /// optional public reason is what the reporter is told.
    RejectInvalid {
        justification: String,
        public_reason: Option<String>,
        by: AccountId,
        at: DateTime<Utc>,
    },
    /// Any open status `→ WITHDRAWN`.
    Withdraw {
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    /// Records that the `kind` deadline (`sla` after the clock started) has passed.
    RecordSlaBreach {
        kind: SlaKind,
        sla: Duration,
        at: DateTime<Utc>,
    },
    /// Records that `percent` % of the `kind` deadline (`sla` after the clock started)
    /// has passed: once per assignment and kind, and not once the breach is recorded.
    RecordSlaWarning {
        kind: SlaKind,
        sla: Duration,
        percent: u8,
        at: DateTime<Utc>,
    },
    /// The SLA worker's escalation of an assignment still `ASSIGNED` `after` its accept
    /// breach was recorded: withdrawn from its patrol, and assigned to `to` when the
    /// action is `REASSIGN` and the caller found another patrol (ADR 0035).
    EscalateUnaccepted {
        action: EscalationAction,
        after: Duration,
        to: Option<PatrolId>,
        at: DateTime<Utc>,
    },
    /// `ASSIGNED | ACCEPTED | RESPONDING → NEW`: the desk takes the assignment back from
    /// `from` (the patrol the caller saw on it: another one now is
    /// [`ReportError::AssignmentChanged`]); reason required.
    Unassign {
        from: PatrolId,
        reason: String,
        by: AccountId,
        at: DateTime<Utc>,
    },
    /// Asks for the assigned patrol's crew to be notified; a report without an open
    /// assignment is [`ReportError::NoPatrol`].
    NotifyPatrol { by: AccountId, at: DateTime<Utc> },
    /// Moves the open assignment from `from` to `to` (`ASSIGNED` to `to`): the
    /// withdrawal and the new assignment as two events of one command. `to == from` is
    /// [`ReportError::SamePatrol`].
    Reassign {
        from: PatrolId,
        to: PatrolId,
        reason: String,
        by: AccountId,
        at: DateTime<Utc>,
    },
    /// Moves a `NEW` or assigned report to `station_id`: an open assignment is withdrawn
    /// first (same command); the report arrives `NEW`. Whether the station exists and
    /// takes reports is the caller's check.
    Transfer {
        station_id: StationId,
        reason: String,
        by: AccountId,
        at: DateTime<Utc>,
    },
    /// `CLOSED | REJECTED → NEW`; reason required. A duplicate is not reopened (it is
    /// unlinked from its primary instead: [`ReportError::IsDuplicate`]).
    Reopen {
        reason: String,
        by: AccountId,
        at: DateTime<Utc>,
    },
    /// Closes this open report (`NEW`, `ASSIGNED`, `ACCEPTED`, `RESPONDING`) as a
    /// duplicate of `primary_id`; an open assignment is withdrawn first (same command).
    /// Refused for the report itself (422 on `other_id`), a report already linked to the
    /// primary or already a duplicate, and a report that has duplicates of its own (409).
    /// The primary's side is [`ReportCommand::AttachDuplicate`], the caller's to append
    /// with it.
    MarkDuplicate {
        primary_id: ReportId,
        by: AccountId,
        at: DateTime<Utc>,
    },
    /// Records on the primary that `duplicate_id` was closed into it. Refused for the
    /// report itself, a report that is itself a duplicate, a withdrawn one, and one
    /// already linked to `duplicate_id`.
    AttachDuplicate {
        duplicate_id: ReportId,
        by: AccountId,
        at: DateTime<Utc>,
    },
    /// A `RELATED` link to `other_id` (the caller appends the same on the other report).
    /// Refused for the report itself, a withdrawn one, and one already linked to
    /// `other_id` in any way.
    Link {
        other_id: ReportId,
        by: AccountId,
        at: DateTime<Utc>,
    },
    /// Removes whatever link this report has to `other_id`: as its duplicate (`CLOSED →
    /// NEW`), as its primary, or `RELATED`. No link is [`ReportError::NotLinked`].
    Unlink {
        other_id: ReportId,
        by: AccountId,
        at: DateTime<Utc>,
    },
}

pub(super) fn handle(report: &Report, cmd: ReportCommand) -> Result<Vec<ReportEvent>, ReportError> {
    use ReportCommand as C;

    match (matches!(cmd, C::Submit { .. }), report.exists) {
        (true, true) => return Err(ReportError::AlreadyExists),
        (false, false) => return Err(ReportError::NotFound),
        _ => {}
    }
    // What only adds to a report stops at the cap; what moves it to its end does not.
    let adds = matches!(
        cmd,
        C::Amend { .. }
            | C::Triage { .. }
            | C::Assign { .. }
            | C::AddNote { .. }
            | C::PostPublicUpdate { .. }
            | C::AttachEvidence { .. }
            | C::RejectClosure { .. }
            | C::Unassign { .. }
            | C::Reassign { .. }
            | C::Transfer { .. }
            | C::Reopen { .. }
            | C::MarkDuplicate { .. }
            | C::AttachDuplicate { .. }
            | C::Link { .. }
            | C::Unlink { .. }
            | C::NotifyPatrol { .. }
    );
    if adds && report.events >= MAX_REPORT_EVENTS {
        return Err(ReportError::HistoryFull {
            max: MAX_REPORT_EVENTS,
        });
    }

    let event: ReportEvent = match cmd {
        C::NotifyPatrol { by, at } => {
            match (report.status.is_active_assignment(), report.patrol_id) {
                (true, Some(patrol_id)) => PatrolNotified { patrol_id, by, at }.into(),
                _ => return Err(ReportError::NoPatrol),
            }
        }
        C::Unassign {
            from,
            reason,
            by,
            at,
        } => {
            let patrol_id = report.require_assigned_to(from, "unassign")?;
            AssignmentWithdrawn {
                patrol_id,
                reason: text("reason", &reason, limits::REASON_MAX)?,
                by: Some(by),
                at,
            }
            .into()
        }
        C::Reassign {
            from,
            to,
            reason,
            by,
            at,
        } => {
            let patrol_id = report.require_assigned_to(from, "reassign")?;
            if to == patrol_id {
                return Err(ReportError::SamePatrol);
            }
            let withdrawn = AssignmentWithdrawn {
                patrol_id,
                reason: text("reason", &reason, limits::REASON_MAX)?,
                by: Some(by),
                at,
            };
            let assigned = ReportAssigned {
                patrol_id: to,
                auto: None,
                at,
            };
            return Ok(vec![withdrawn.into(), assigned.into()]);
        }
        C::Transfer {
            station_id,
            reason,
            by,
            at,
        } => {
            report.require(&[New, Assigned, Accepted, Responding], "transfer")?;
            if station_id == report.station_id {
                return Err(ReportError::SameStation);
            }
            let reason = text("reason", &reason, limits::REASON_MAX)?;
            let mut events = Vec::with_capacity(2);
            if let (true, Some(patrol_id)) =
                (report.status.is_active_assignment(), report.patrol_id)
            {
                events.push(
                    AssignmentWithdrawn {
                        patrol_id,
                        reason: reason.clone(),
                        by: Some(by),
                        at,
                    }
                    .into(),
                );
            }
            events.push(
                ReportTransferred {
                    from_station_id: report.station_id,
                    station_id,
                    reason,
                    by,
                    at,
                }
                .into(),
            );
            return Ok(events);
        }
        C::MarkDuplicate { primary_id, by, at } => {
            report.require_other(primary_id)?;
            if let Some(primary) = report.duplicate_of {
                return Err(if primary == primary_id {
                    ReportError::AlreadyLinked { other: primary }
                } else {
                    ReportError::IsDuplicate { primary }
                });
            }
            if report.is_linked_to(primary_id) {
                return Err(ReportError::AlreadyLinked { other: primary_id });
            }
            if !report.duplicates.is_empty() {
                return Err(ReportError::HasDuplicates {
                    duplicates: report.duplicates.clone(),
                });
            }
            report.require(
                &[New, Assigned, Accepted, Responding],
                "mark as a duplicate",
            )?;
            let mut events = Vec::with_capacity(2);
            if let (true, Some(patrol_id)) =
                (report.status.is_active_assignment(), report.patrol_id)
            {
                events.push(
                    AssignmentWithdrawn {
                        patrol_id,
                        reason: format!("closed as a duplicate of report {primary_id}"),
                        by: Some(by),
                        at,
                    }
                    .into(),
                );
            }
            events.push(ReportMarkedDuplicate { primary_id, by, at }.into());
            return Ok(events);
        }
        C::AttachDuplicate {
            duplicate_id,
            by,
            at,
        } => {
            report.require_other(duplicate_id)?;
            if let Some(primary) = report.duplicate_of {
                return Err(ReportError::IsDuplicate { primary });
            }
            if report.is_linked_to(duplicate_id) {
                return Err(ReportError::AlreadyLinked {
                    other: duplicate_id,
                });
            }
            report.require_not(Withdrawn, "attach a duplicate to")?;
            DuplicateAttached {
                duplicate_id,
                by,
                at,
            }
            .into()
        }
        C::Link { other_id, by, at } => {
            report.require_other(other_id)?;
            if report.is_linked_to(other_id) {
                return Err(ReportError::AlreadyLinked { other: other_id });
            }
            report.require_not(Withdrawn, "link")?;
            ReportLinked { other_id, by, at }.into()
        }
        C::Unlink { other_id, by, at } => {
            if report.duplicate_of == Some(other_id) {
                DuplicateUnmarked {
                    primary_id: other_id,
                    by,
                    at,
                }
                .into()
            } else if report.duplicates.contains(&other_id) {
                DuplicateDetached {
                    duplicate_id: other_id,
                    by,
                    at,
                }
                .into()
            } else if report.related.contains(&other_id) {
                ReportUnlinked { other_id, by, at }.into()
            } else {
                return Err(ReportError::NotLinked { other: other_id });
            }
        }
        C::Reopen { reason, by, at } => {
            report.require(&[Closed, Rejected], "reopen")?;
            if let Some(primary) = report.duplicate_of {
                return Err(ReportError::IsDuplicate { primary });
            }
            ReportReopened {
                reason: text("reason", &reason, limits::REASON_MAX)?,
                by,
                at,
            }
            .into()
        }
        C::Submit {
            report_id,
            title,
            crime_types,
            catalogue,
            location,
            occurred_at,
            media_urls,
            reporter,
            routing,
            personal,
            at,
        } => {
            let crime_types = crime_type_list(&crime_types)?;
            let crime_type_codes = resolve(&catalogue, &crime_types);
            ReportSubmitted {
                report_id,
                title: text("title", &title, limits::TITLE_MAX)?,
                crime_types,
                crime_type_codes,
                location: report_location(location)?,
                occurred_at: claimed_time("occurred_at", occurred_at, at)?,
                media_urls: media_url_list(&media_urls)?,
                reporter,
                station_id: routing.station_id,
                routing,
                priority: Priority::default(),
                personal: PersonalDetails {
                    description: text(
                        "description",
                        &personal.description,
                        limits::DESCRIPTION_MAX,
                    )?,
                    street: opt_text("street", personal.street.as_deref(), limits::STREET_MAX)?,
                    contact: opt_text("contact", personal.contact.as_deref(), limits::CONTACT_MAX)?,
                    erased: false,
                },
                at,
            }
            .into()
        }
        C::Amend {
            changes,
            personal,
            by,
            catalogue,
            at,
        } => {
            report.require_open("amend")?;
            if by == AmendedBy::Reporter && report.reporter_amendments >= MAX_AMENDMENTS {
                return Err(ReportError::TooManyAmendments {
                    max: MAX_AMENDMENTS,
                });
            }
            let personal = personal.filter(|p| !p.is_empty());
            if changes.is_empty() && personal.is_none() {
                return Err(ReportError::NothingToChange);
            }
            let crime_types = changes
                .crime_types
                .map(|c| crime_type_list(&c))
                .transpose()?;
            let crime_type_codes = crime_types.as_ref().map(|c| resolve(&catalogue, c));
            ReportAmended {
                crime_type_codes,
                changes: ReportChanges {
                    title: changes
                        .title
                        .map(|t| text("title", &t, limits::TITLE_MAX))
                        .transpose()?,
                    crime_types,
                    location: changes.location.map(report_location).transpose()?,
                    occurred_at: claimed_time("occurred_at", changes.occurred_at, at)?,
                    media_urls: changes.media_urls.map(|m| media_url_list(&m)).transpose()?,
                },
                personal: personal
                    .map(|p| -> Result<_, ReportError> {
                        Ok(PersonalChanges {
                            description: p
                                .description
                                .map(|d| text("description", &d, limits::DESCRIPTION_MAX))
                                .transpose()?,
                            street: p
                                .street
                                .map(|s| text("street", &s, limits::STREET_MAX))
                                .transpose()?,
                            contact: p
                                .contact
                                .map(|c| text("contact", &c, limits::CONTACT_MAX))
                                .transpose()?,
                        })
                    })
                    .transpose()?,
                by: Some(by),
                at,
            }
            .into()
        }
        C::Triage { priority, at } => {
            report.require_open("triage")?;
            ReportTriaged { priority, at }.into()
        }
        C::Assign {
            patrol_id,
            decision,
            at,
        } => {
            report.require(&[New], "assign")?;
            if let Some(decision) = &decision {
                if decision.patrol_id != patrol_id {
                    return Err(ReportError::invalid(
                        "patrol_id",
                        "differs from the automatic-assignment decision",
                    ));
                }
            }
            ReportAssigned {
                patrol_id,
                auto: decision,
                at,
            }
            .into()
        }
        C::Accept { at } => AssignmentAccepted {
            patrol_id: report.require_patrol(&[Assigned], "accept")?,
            at,
        }
        .into(),
        C::Decline { reason, at } => AssignmentDeclined {
            patrol_id: report.require_patrol(&[Assigned], "decline")?,
            reason: text("reason", &reason, limits::REASON_MAX)?,
            at,
        }
        .into(),
        C::Respond { at } => ReportResponding {
            patrol_id: report.require_patrol(&[Accepted], "respond to")?,
            at,
        }
        .into(),
        C::AddNote {
            note_id,
            note,
            author_id,
            at,
        } => {
            report.require_open("add a note to")?;
            if report.notes.iter().any(|n| n.note_id == note_id) {
                return Err(ReportError::DuplicateId { kind: "note" });
            }
            NoteAdded {
                note_id,
                note: text("note", &note, limits::NOTE_MAX)?,
                author_id,
                at,
            }
            .into()
        }
        C::PostPublicUpdate {
            update_id,
            message,
            author_id,
            at,
        } => {
            report.require_open("post a public update to")?;
            if report
                .public_updates
                .iter()
                .any(|u| u.update_id == update_id)
            {
                return Err(ReportError::DuplicateId {
                    kind: "public update",
                });
            }
            PublicUpdatePosted {
                update_id,
                message: text("message", &message, limits::PUBLIC_UPDATE_MAX)?,
                author_id,
                at,
            }
            .into()
        }
        C::AttachEvidence {
            evidence_id,
            url,
            media_type,
            captured_at,
            description,
            author_id,
            at,
        } => {
            report.require(&[Accepted, Responding, Resolved], "attach evidence to")?;
            if report.evidence.iter().any(|e| e.evidence_id == evidence_id) {
                return Err(ReportError::DuplicateId { kind: "evidence" });
            }
            EvidenceAttached {
                evidence_id,
                url: HttpUrl::parse(&url)
                    .map_err(|e| ReportError::invalid("url", e))?
                    .into_string(),
                media_type,
                captured_at: claimed_time("captured_at", captured_at, at)?,
                description: opt_text(
                    "description",
                    description.as_deref(),
                    limits::EVIDENCE_DESCRIPTION_MAX,
                )?,
                author_id,
                at,
            }
            .into()
        }
        C::Resolve {
            resolution_notes,
            at,
        } => ReportResolved {
            patrol_id: report.require_patrol(&[Responding], "resolve")?,
            resolution_notes: text(
                "resolution_notes",
                &resolution_notes,
                limits::RESOLUTION_NOTES_MAX,
            )?,
            at,
        }
        .into(),
        C::ApproveClosure { reviewer_id, at } => {
            report.require(&[Resolved], "approve closure of")?;
            ClosureApproved { reviewer_id, at }.into()
        }
        C::RejectClosure {
            reviewer_id,
            reason,
            at,
        } => {
            report.require(&[Resolved], "reject closure of")?;
            ClosureRejected {
                reviewer_id,
                reason: text("reason", &reason, limits::REASON_MAX)?,
                at,
            }
            .into()
        }
        C::RejectInvalid {
            justification,
            public_reason,
            by,
            at,
        } => {
            report.require(&[New, Assigned], "reject")?;
            ReportRejected {
                justification: text("justification", &justification, limits::REASON_MAX)?,
                by,
                at,
                public_reason: opt_text(
                    "public_reason",
                    public_reason.as_deref(),
                    limits::REASON_MAX,
                )?,
            }
            .into()
        }
        C::Withdraw { reason, at } => {
            report.require_open("withdraw")?;
            ReportWithdrawn {
                reason: opt_text("reason", reason.as_deref(), limits::REASON_MAX)?,
                at,
            }
            .into()
        }
        C::RecordSlaBreach { kind, sla, at } => {
            if sla <= Duration::zero() {
                return Err(ReportError::invalid("sla", "must be a positive duration"));
            }
            let (Some(since), Some(patrol_id)) = (report.sla_since(kind), report.patrol_id) else {
                return Err(ReportError::SlaNotBreached);
            };
            if report.sla_breaches.contains_key(&kind) {
                return Err(ReportError::SlaAlreadyRecorded);
            }
            let deadline = since + sla;
            if at <= deadline {
                return Err(ReportError::SlaNotBreached);
            }
            SlaBreached {
                kind,
                patrol_id,
                since,
                deadline,
                at,
            }
            .into()
        }
        C::RecordSlaWarning {
            kind,
            sla,
            percent,
            at,
        } => {
            if sla <= Duration::zero() {
                return Err(ReportError::invalid("sla", "must be a positive duration"));
            }
            if percent == 0 || percent >= 100 {
                return Err(ReportError::invalid("percent", "must be 1..=99"));
            }
            let (Some(since), Some(patrol_id)) = (report.sla_since(kind), report.patrol_id) else {
                return Err(ReportError::SlaNotBreached);
            };
            if report.sla_warnings.contains(&kind) || report.sla_breaches.contains_key(&kind) {
                return Err(ReportError::SlaAlreadyRecorded);
            }
            let deadline = since + sla;
            if at < since + sla * i32::from(percent) / 100 {
                return Err(ReportError::SlaNotBreached);
            }
            SlaWarned {
                kind,
                patrol_id,
                since,
                deadline,
                at,
            }
            .into()
        }
        C::EscalateUnaccepted {
            action,
            after,
            to,
            at,
        } => {
            let (Some(since), Some(patrol_id)) =
                (report.sla_since(SlaKind::Accept), report.patrol_id)
            else {
                return Err(ReportError::SlaNotBreached);
            };
            let Some(breached_at) = report.sla_breaches.get(&SlaKind::Accept) else {
                return Err(ReportError::SlaNotBreached);
            };
            if at < *breached_at + after {
                return Err(ReportError::SlaNotBreached);
            }
            let to = to.filter(|p| *p != patrol_id && action == EscalationAction::Reassign);
            let escalated = SlaEscalated {
                kind: SlaKind::Accept,
                action: if to.is_some() {
                    EscalationAction::Reassign
                } else {
                    EscalationAction::Requeue
                },
                patrol_id,
                to_patrol_id: to,
                since,
                at,
            };
            let withdrawn = AssignmentWithdrawn {
                patrol_id,
                reason: "Not accepted within the service level".into(),
                by: None,
                at,
            };
            let mut events = vec![escalated.into(), withdrawn.into()];
            if let Some(to) = to {
                events.push(
                    ReportAssigned {
                        patrol_id: to,
                        auto: None,
                        at,
                    }
                    .into(),
                );
            }
            return Ok(events);
        }
    };
    Ok(vec![event])
}

impl Report {
    fn require(&self, allowed: &[ReportStatus], action: &'static str) -> Result<(), ReportError> {
        if allowed.contains(&self.status) {
            Ok(())
        } else {
            Err(ReportError::IllegalTransition {
                from: self.status,
                action,
            })
        }
    }

    fn require_not(&self, status: ReportStatus, action: &'static str) -> Result<(), ReportError> {
        if self.status == status {
            Err(ReportError::IllegalTransition {
                from: self.status,
                action,
            })
        } else {
            Ok(())
        }
    }

    /// `other` is another report than this one (a link to itself is 422 on `other_id`).
    fn require_other(&self, other: ReportId) -> Result<(), ReportError> {
        if other == self.id {
            Err(ReportError::invalid(
                "other_id",
                "a report cannot be linked to itself",
            ))
        } else {
            Ok(())
        }
    }

    fn require_open(&self, action: &'static str) -> Result<(), ReportError> {
        if self.status.is_open() {
            Ok(())
        } else {
            Err(ReportError::IllegalTransition {
                from: self.status,
                action,
            })
        }
    }

    /// An open assignment (`ASSIGNED`, `ACCEPTED`, `RESPONDING`) to `expected`: its
    /// patrol. Another patrol on it now is [`ReportError::AssignmentChanged`].
    fn require_assigned_to(
        &self,
        expected: PatrolId,
        action: &'static str,
    ) -> Result<PatrolId, ReportError> {
        let patrol = self.require_patrol(&[Assigned, Accepted, Responding], action)?;
        if patrol == expected {
            Ok(patrol)
        } else {
            Err(ReportError::AssignmentChanged)
        }
    }

    /// Like [`Self::require`], for statuses that always have an assigned patrol.
    fn require_patrol(
        &self,
        allowed: &[ReportStatus],
        action: &'static str,
    ) -> Result<PatrolId, ReportError> {
        self.require(allowed, action)?;
        self.patrol_id.ok_or(ReportError::IllegalTransition {
            from: self.status,
            action,
        })
    }
}

fn text(field: &'static str, s: &str, max: usize) -> Result<String, ReportError> {
    NonEmptyText::parse(s, max)
        .map(NonEmptyText::into_string)
        .map_err(|e| ReportError::invalid(field, e))
}

fn opt_text(
    field: &'static str,
    s: Option<&str>,
    max: usize,
) -> Result<Option<String>, ReportError> {
    optional_text(s, max).map_err(|e| ReportError::invalid(field, e))
}

/// A moment the caller claims happened (a device's clock may supply it): within the
/// range every store can hold, and not after the command's own time by more than the
/// clock skew a device may have (see [`Timestamp::past`]).
fn claimed_time(
    field: &'static str,
    t: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ReportError> {
    t.map(|t| Timestamp::past(t, at).map(Timestamp::get))
        .transpose()
        .map_err(|e| ReportError::invalid(field, e))
}

/// 1..=20 crime types, each trimmed, non-blank, at most 100 characters; duplicates
/// (ignoring case) are dropped, first spelling kept.
fn crime_type_list(crime_types: &[String]) -> Result<Vec<String>, ReportError> {
    let field = "crime_types";
    if crime_types.is_empty() {
        return Err(ReportError::invalid(
            field,
            crate::values::ValueError::TooFew { min: 1 },
        ));
    }
    if crime_types.len() > limits::CRIME_TYPES_MAX {
        return Err(ReportError::invalid(
            field,
            crate::values::ValueError::TooMany {
                max: limits::CRIME_TYPES_MAX,
                len: crime_types.len(),
            },
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(crime_types.len());
    for c in crime_types {
        let c = text(field, c, limits::CRIME_TYPE_MAX)?;
        if !out.iter().any(|o| o.to_lowercase() == c.to_lowercase()) {
            out.push(c);
        }
    }
    Ok(out)
}

/// At most 20 http(s) URLs.
fn media_url_list(urls: &[String]) -> Result<Vec<String>, ReportError> {
    let field = "media_urls";
    if urls.len() > limits::MEDIA_URLS_MAX {
        return Err(ReportError::invalid(
            field,
            crate::values::ValueError::TooMany {
                max: limits::MEDIA_URLS_MAX,
                len: urls.len(),
            },
        ));
    }
    urls.iter()
        .map(|u| {
            HttpUrl::parse(u)
                .map(HttpUrl::into_string)
                .map_err(|e| ReportError::invalid(field, e))
        })
        .collect()
}

/// Coordinates are valid by type; city and state are trimmed (blank means absent).
fn report_location(location: ReportLocation) -> Result<ReportLocation, ReportError> {
    Ok(ReportLocation {
        city: opt_text("location.city", location.city.as_deref(), limits::CITY_MAX)?,
        state: opt_text(
            "location.state",
            location.state.as_deref(),
            limits::STATE_MAX,
        )?,
        ..location
    })
}
