//! Commands on one report after its submission: who may make each change given the
//! report as it is now, and the assigned patrol's workload kept in step in the same
//! atomic append (a decline, resolution, rejection or withdrawal closes the patrol's
//! assignment; a rejected closure reopens it).
//!
//! Every change goes through [`change`], which loads the report (and its assigned
//! patrol) in the command's unit of work — so that the authorization is decided again on
//! fresh state whenever the command is rerun after a concurrent change — and asks the
//! change's own file what it may do:
//!
//! - [`submit`]: a new report, routed to a station.
//! - [`amend`]: the reporter's or the desk's changes to the details (and `PATCH`'s
//!   status moves, as a list of changes in one command).
//! - [`desk`]: triage and rejection as invalid (the station's dispatch desk).
//! - [`assignment`]: the assigned patrol's steps: accept, decline, respond, resolve.
//! - [`notes`]: internal notes, public updates, evidence.
//! - [`notify`]: "Notify officer": the desk asks for the assigned crew to be notified.
//! - [`closure`]: a supervisor's review of a resolution.
//! - [`withdraw`]: the reporter's (or an ADMIN's) withdrawal.
//! - [`control`]: the desk taking an assignment back or moving it (unassign, reassign)
//!   and moving the report to another station (transfer).
//! - [`reopen`]: a reviewer's reopening of a closed or rejected report.
//! - [`link`]: links between two reports — a duplicate closed into its primary, or
//!   `RELATED` — and their removal, both reports in one append.

pub mod amend;
pub mod assignment;
pub mod closure;
pub mod control;
pub mod desk;
pub mod link;
pub mod notes;
pub mod notify;
pub mod reopen;
pub mod submit;
pub mod withdraw;

use chrono::{DateTime, Utc};
use precinct_domain::ids::ReportId;
use precinct_domain::patrol::{AssignmentOutcome, Patrol, PatrolCommand};
use precinct_domain::report::{PersonalChanges, Report, ReportChanges, ReportCommand};
use precinct_domain::values::{Priority, ReportStatus};
use precinct_domain::Aggregate;
use precinct_eventlog::{CommandMeta, EventStore};
use uuid::Uuid;

use crate::policy::{require_desk_of, require_member, require_visible, Principal, REVIEWERS};
use crate::{ids, App, AppError, UnitOfWork};

/// One change to a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Amend {
        changes: ReportChanges,
        personal: Option<PersonalChanges>,
        /// The crime-type catalogue new `changes.crime_types` resolve on: filled by
        /// [`amend::amend`] from its port when the change names crime types (callers
        /// leave it empty).
        catalogue: Vec<precinct_domain::crime_type::CrimeTypeFacts>,
    },
    Triage(Priority),
    Accept,
    Decline(String),
    Respond,
    Resolve(String),
    Note(String),
    PublicUpdate(String),
    Evidence(notes::Evidence),
    ApproveClosure,
    RejectClosure(String),
    Reject {
        justification: String,
        public_reason: Option<String>,
    },
    Withdraw(Option<String>),
    /// Take the assignment back from the named patrol (the one the caller saw on it).
    Unassign {
        from: precinct_domain::ids::PatrolId,
        reason: String,
    },
    Reopen(String),
}

/// A report after a command changed it.
#[derive(Debug)]
pub struct Changed {
    /// The report as the write side knows it right after the command (for an idempotent
    /// retry: as it stood after the original command).
    pub report: Report,
    /// Log position of the command's last event.
    pub position: u64,
}

/// Makes `changes` to report `id` as one command, in order, each authorized for `by`
/// on the report as it is after the ones before.
pub async fn change<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: ReportId,
    changes: Vec<Change>,
) -> Result<Changed, AppError> {
    let seq = meta.command_id.as_u128();
    let rid = id.as_uuid();
    let by = *by;
    let out = app
        .run::<Report>(meta, rid, async move |uow| {
            for (i, change) in changes.iter().enumerate() {
                apply(uow, &by, id, change.clone(), seq.wrapping_add(i as u128)).await?;
            }
            Ok(())
        })
        .await?;
    let report = out
        .state::<Report>(rid)
        .filter(|r| r.version_exists())
        .ok_or(AppError::NotFound)?;
    Ok(Changed {
        report: report.clone(),
        position: out.position,
    })
}

/// What a change does: the report's command, and what it means for the patrol assigned
/// to the report.
pub(crate) struct Decision {
    report: ReportCommand,
    patrol: Option<PatrolEffect>,
}

impl Decision {
    /// A change of the report alone.
    fn report(cmd: ReportCommand) -> Self {
        Decision {
            report: cmd,
            patrol: None,
        }
    }

    /// A change that ends the patrol's assignment (when the report had one open).
    fn closing(cmd: ReportCommand, outcome: AssignmentOutcome) -> Self {
        Decision {
            report: cmd,
            patrol: Some(PatrolEffect::Close(outcome)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum PatrolEffect {
    /// Close the assignment, if the report had an active one before the change.
    Close(AssignmentOutcome),
    /// Open it again, if the report has an active assignment after the change.
    Reopen,
}

/// A report as one change sees it: who asks, the report and its assigned patrol as they
/// are now, the command's time.
pub(crate) struct OnReport<'r> {
    by: &'r Principal,
    report: &'r Report,
    assigned: Option<&'r Patrol>,
    at: DateTime<Utc>,
    id: ReportId,
    seq: u128,
}

impl OnReport<'_> {
    /// A serving member of the assigned patrol.
    fn member(&self) -> Result<(), AppError> {
        require_member(self.by, self.assigned)
    }

    /// The dispatch desk of the report's station (or ADMIN).
    fn desk(&self) -> Result<(), AppError> {
        require_desk_of(self.by, self.report.station_id)
    }

    /// Whoever works the report: the assigned patrol, or the station's desk.
    fn member_or_desk(&self) -> Result<(), AppError> {
        if self.member().is_err() {
            self.desk()?;
        }
        Ok(())
    }

    /// A reviewer (SUPERVISOR, ADMIN) of the report's station.
    fn reviewer(&self) -> Result<(), AppError> {
        self.by.require(REVIEWERS)?;
        self.desk()
    }

    fn reported_by_principal(&self) -> bool {
        self.report.is_reported_by(self.by.id)
    }

    /// Its reporter, while it is still `NEW`.
    fn reporter_while_new(&self) -> bool {
        self.reported_by_principal() && self.report.status == ReportStatus::New
    }

    /// The id of an entry (note, update, evidence) this change adds: derived from the
    /// command id, so stable across retries.
    fn entry_id(&self, kind: &str) -> Uuid {
        ids::entry_id(self.id.as_uuid(), kind, self.seq)
    }
}

/// Authorizes `change` for `by` on the report as it is now, then emits the report's
/// events and the patrol's matching workload change.
async fn apply<S: EventStore>(
    uow: &mut UnitOfWork<'_, S>,
    by: &Principal,
    id: ReportId,
    change: Change,
    seq: u128,
) -> Result<(), AppError> {
    let rid = id.as_uuid();
    let report: Report = uow.load(rid).await?;
    require_visible(Some(by), None, &report)?;
    let assigned: Option<Patrol> = match report.patrol_id {
        Some(p) => Some(uow.load::<Patrol>(p.as_uuid()).await?),
        None => None,
    };
    let on = OnReport {
        by,
        report: &report,
        assigned: assigned.as_ref(),
        at: uow.now(),
        id,
        seq,
    };
    let decision = match change {
        Change::Amend {
            changes,
            personal,
            catalogue,
        } => amend::decide(&on, changes, personal, catalogue)?,
        Change::Triage(priority) => desk::decide_triage(&on, priority)?,
        Change::Reject {
            justification,
            public_reason,
        } => desk::decide_reject(&on, justification, public_reason)?,
        Change::Accept => assignment::decide_accept(&on)?,
        Change::Decline(reason) => assignment::decide_decline(&on, reason)?,
        Change::Respond => assignment::decide_respond(&on)?,
        Change::Resolve(notes) => assignment::decide_resolve(&on, notes)?,
        Change::Note(note) => notes::decide_note(&on, note)?,
        Change::PublicUpdate(message) => notes::decide_public_update(&on, message)?,
        Change::Evidence(evidence) => notes::decide_evidence(&on, evidence)?,
        Change::ApproveClosure => closure::decide_approve(&on)?,
        Change::RejectClosure(reason) => closure::decide_reject(&on, reason)?,
        Change::Withdraw(reason) => withdraw::decide(&on, reason)?,
        Change::Unassign { from, reason } => control::decide_unassign(&on, from, reason)?,
        Change::Reopen(reason) => reopen::decide(&on, reason)?,
    };
    let at = on.at;
    let before = report.status;
    let after = uow.execute::<Report>(rid, decision.report).await?;
    if let (Some(effect), Some(patrol)) = (decision.patrol, report.patrol_id) {
        let pid = patrol.as_uuid();
        match effect {
            PatrolEffect::Close(outcome) if before.is_active_assignment() => {
                uow.execute::<Patrol>(
                    pid,
                    PatrolCommand::CloseAssignment {
                        report_id: id,
                        outcome,
                        at,
                    },
                )
                .await?;
            }
            PatrolEffect::Reopen if after.status.is_active_assignment() => {
                uow.execute::<Patrol>(pid, PatrolCommand::OpenAssignment { report_id: id, at })
                    .await?;
            }
            _ => {}
        }
    }
    Ok(())
}
