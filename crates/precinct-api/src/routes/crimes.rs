//! Crime reports: submission, amendment, the lifecycle transitions, and dispatch.
//!
//! Every transition goes through [`apply`], which authorizes the caller against the
//! report as it is *now* (rerun on fresh state after a concurrent change) and keeps the
//! assigned patrol's workload in step in the same atomic append.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use precinct_app::UnitOfWork;
use precinct_domain::dispatch::{choose_patrol, AssignmentDecision, PatrolSnapshot};
use precinct_domain::ids::{EvidenceId, NoteId, PatrolId, ReportId, StationId, UpdateId};
use precinct_domain::patrol::{AssignmentOutcome, Patrol, PatrolCommand};
use precinct_domain::report::{
    PersonalChanges, PersonalDetails, Report, ReportChanges, ReportCommand, ReportLocation,
    Reporter,
};
use precinct_domain::routing::route;
use precinct_domain::values::{GeoPoint, MediaType, PatrolStatus, Priority, ReportStatus, Role};
use precinct_domain::Aggregate;
use precinct_eventlog::Actor;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::accounts::derived_id;
use crate::auth::{derive_token, Caller};
use crate::extract::Path;
use crate::extract::{Cmd, CmdCtx, Validator};
use crate::openapi::{
    BadRequest, CommandHeaders, Conflict, Forbidden, NotFound, PayloadTooLarge, QueryHeaders,
    TooManyRequests, Unauthorized, Unavailable, ValidationFailed, WrittenReport,
};
use crate::policy::{
    require_desk_of, require_member, require_visible, token_hash, DESK, REVIEWERS,
};
use crate::problem::{ApiError, ApiResult};
use crate::views::{ReportAnswer, ReporterReportView, Written};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/crimes", post(submit))
        .route(
            "/crimes/{id}",
            axum::routing::put(replace).patch(amend).delete(withdraw),
        )
        .route("/crimes/{id}/triage", post(triage))
        .route("/crimes/{id}/accept", post(accept))
        .route("/crimes/{id}/decline", post(decline))
        .route("/crimes/{id}/respond", post(respond))
        .route("/crimes/{id}/resolve", post(resolve))
        .route("/crimes/{id}/notes", post(add_note))
        .route("/crimes/{id}/public-updates", post(post_public_update))
        .route("/crimes/{id}/evidence", post(attach_evidence))
        .route("/crimes/{id}/closure/approve", post(approve_closure))
        .route("/crimes/{id}/closure/reject", post(reject_closure))
        .route("/crimes/{id}/reject", post(reject_invalid))
        .route("/dispatch", post(dispatch))
}

#[derive(OpenApi)]
#[openapi(paths(
    submit,
    replace,
    amend,
    withdraw,
    triage,
    accept,
    decline,
    respond,
    resolve,
    add_note,
    post_public_update,
    attach_evidence,
    approve_closure,
    reject_closure,
    reject_invalid,
    dispatch
))]
pub struct Api;

// ---------------------------------------------------------------------------------------
// Submission

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationBody {
    #[schema(minimum = -90, maximum = 90, example = 7.07)]
    latitude: f64,
    #[schema(minimum = -180, maximum = 180, example = 125.61)]
    longitude: f64,
    #[serde(default)]
    street: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    title: String,
    description: String,
    /// At least one; a division whose keywords match receives the report.
    #[schema(min_items = 1, example = json!(["Theft"]))]
    crime_types: Vec<String>,
    location: LocationBody,
    #[serde(default)]
    occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    media_urls: Vec<String>,
    #[serde(default)]
    contact: Option<String>,
}

/// A new report, as its reporter sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Submitted {
    #[serde(flatten)]
    report: ReporterReportView,
    /// Log position of the command's event.
    position: u64,
    /// Anonymous submissions only: send it as `X-Tracking-Token` to follow the report.
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking_token: Option<String>,
}

fn parse_point(v: &mut Validator, lat: f64, lon: f64) -> Option<GeoPoint> {
    let la = v.check(
        "location.latitude",
        precinct_domain::values::Latitude::parse(lat),
    );
    let lo = v.check(
        "location.longitude",
        precinct_domain::values::Longitude::parse(lon),
    );
    match (la, lo) {
        (Some(la), Some(lo)) => Some(GeoPoint::new(la, lo)),
        _ => None,
    }
}

/// Submit a crime report; routing chooses its station.
///
/// Roles: anyone, with or without a token. An anonymous reporter gets a
/// `tracking_token`; a signed-in one follows the report under `/me/crimes`. Anonymous
/// reports are rate-limited per client address (429). Routing uses the stations as of
/// the last station change, however recent (503 if the station map cannot catch up
/// within 5 s).
#[utoipa::path(
    post,
    path = "/crimes",
    operation_id = "submit_crime",
    tag = "crimes",
    params(CommandHeaders, QueryHeaders),
    request_body = SubmitBody,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "The new report", body = Submitted),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
async fn submit(
    State(state): State<AppState>,
    caller: Option<Caller>,
    // Routing waits for the station map by itself; `X-Min-Position` is still honoured.
    _min: crate::extract::MinPosition,
    crate::extract::ClientAddr(addr): crate::extract::ClientAddr,
    cmd: Cmd<SubmitBody>,
) -> ApiResult<(StatusCode, Json<Submitted>)> {
    if caller.is_none() {
        let key = crate::throttle::addr_key(addr);
        if let Err(retry_after_secs) = state.anonymous_reports.hit(&key) {
            return Err(ApiError::TooManyRequests { retry_after_secs });
        }
    }
    let b = cmd.body;
    let mut v = Validator::new();
    let point = parse_point(&mut v, b.location.latitude, b.location.longitude);
    if b.crime_types.is_empty() {
        v.fail("crime_types", "at least one crime type is required");
    }
    v.finish()?;
    let point = point.ok_or_else(|| ApiError::invalid("location", "invalid"))?;

    let stations = current_station_facts(&state).await?;
    let routing = route(&stations, &b.crime_types, point).map_err(|_| {
        ApiError::invalid("location", "no station can take a report for this location")
    })?;

    let actor = caller.map(|c| c.actor()).unwrap_or(Actor::Anonymous);
    let meta = cmd.ctx.meta(actor);
    let report_id = ReportId::new(derived_id(meta.command_id, "report"));
    let (reporter, tracking_token) = match caller {
        Some(c) => (Reporter::User { account_id: c.id }, None),
        None => {
            let token = derive_token(&state.config.secret, "tracking", meta.command_id);
            let hash = token_hash(&token).ok_or_else(|| ApiError::Internal("hash".into()))?;
            (
                Reporter::Anonymous {
                    tracking_token_hash: hash,
                },
                Some(token),
            )
        }
    };
    let location = ReportLocation::new(point, b.location.city.clone(), b.location.state.clone());
    let id = report_id.as_uuid();
    let out = precinct_app::run!(state.app, &meta, Report, ApiError, id, |uow| {
        let at = uow.now();
        uow.execute::<Report>(
            id,
            ReportCommand::Submit {
                report_id,
                title: b.title.clone(),
                crime_types: b.crime_types.clone(),
                location: location.clone(),
                occurred_at: b.occurred_at,
                media_urls: b.media_urls.clone(),
                reporter: reporter.clone(),
                routing: routing.clone(),
                personal: PersonalDetails {
                    description: b.description.clone(),
                    street: b.location.street.clone(),
                    contact: b.contact.clone(),
                    erased: false,
                },
                at,
            },
        )
        .await?;
        Ok(())
    })?;
    let report = out
        .state::<Report>(id)
        .ok_or_else(|| ApiError::Internal("report state missing".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(Submitted {
            report: ReporterReportView::from(report),
            position: out.position,
            tracking_token,
        }),
    ))
}

/// How long routing waits for the station map to include the last station change.
const STATION_MAP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The stations routing decides on, at least as new as the last change to any station
/// (ADR 0012): the log says where that change is (one request), and the stations read
/// model is read once it has applied it — so a report submitted right after a station
/// was created or changed is routed with it, under any write load.
async fn current_station_facts(
    state: &AppState,
) -> ApiResult<Vec<precinct_domain::routing::StationFacts>> {
    use precinct_domain::station::Station;
    use precinct_projections::Projection;
    let last_change = state
        .app
        .log()
        .last_position_of(&[<Station as Aggregate>::TYPE])
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "the last station change cannot be read");
            ApiError::Unavailable("the event log is unavailable; retry later".into())
        })?;
    let name = precinct_projections::projections::stations::Stations::NAME;
    if !precinct_projections::wait_for_projection(&state.pool, name, last_change, STATION_MAP_WAIT)
        .await?
    {
        return Err(ApiError::Unavailable(
            "the station map is behind the last station change; retry shortly".into(),
        ));
    }
    Ok(precinct_projections::queries::station_facts(&state.pool).await?)
}

// ---------------------------------------------------------------------------------------
// Transitions

/// One change to a report, with the rule for who may make it.
#[derive(Debug, Clone)]
pub enum Action {
    Amend {
        changes: ReportChanges,
        personal: Option<PersonalChanges>,
    },
    Triage(Priority),
    Accept,
    Decline(String),
    Respond,
    Resolve(String),
    Note(String),
    PublicUpdate(String),
    Evidence {
        url: String,
        media_type: MediaType,
        captured_at: Option<DateTime<Utc>>,
        description: Option<String>,
    },
    ApproveClosure,
    RejectClosure(String),
    RejectInvalid {
        justification: String,
        public_reason: Option<String>,
    },
    Withdraw(Option<String>),
}

/// Authorizes `action` for `caller` on the report as it is now, then emits the report's
/// events and the patrol's matching workload change.
async fn apply(
    uow: &mut UnitOfWork<'_>,
    caller: &Caller,
    id: ReportId,
    action: Action,
    seq: u128,
) -> ApiResult<()> {
    let rid = id.as_uuid();
    let report: Report = uow.load(rid).await?;
    require_visible(Some(caller), None, &report)?;
    let at = uow.now();
    let assigned: Option<Patrol> = match report.patrol_id {
        Some(p) => Some(uow.load::<Patrol>(p.as_uuid()).await?),
        None => None,
    };
    let member = || require_member(caller, assigned.as_ref());
    let desk = || require_desk_of(caller, report.station_id);
    let reviewer = || -> ApiResult<()> {
        caller.require(REVIEWERS)?;
        require_desk_of(caller, report.station_id)
    };
    // Ids of notes, updates and evidence derive from the command id (stable across
    // retries).
    let sub_id =
        |kind: &str| Uuid::new_v5(&uow_command_ns(rid), format!("{kind}|{seq}").as_bytes());
    let (cmd, patrol_effect) = match action {
        Action::Amend { changes, personal } => {
            let reporter_while_new =
                report.is_reported_by(caller.id) && report.status == ReportStatus::New;
            if !reporter_while_new {
                if report.is_reported_by(caller.id) && !caller.role.is_staff() {
                    return Err(ApiError::Conflict(
                        "a reporter may amend a report only while it is NEW".into(),
                    ));
                }
                desk()?;
            }
            (
                ReportCommand::Amend {
                    changes,
                    personal,
                    at,
                },
                None,
            )
        }
        Action::Triage(priority) => {
            desk()?;
            (ReportCommand::Triage { priority, at }, None)
        }
        Action::Accept => {
            member()?;
            (ReportCommand::Accept { at }, None)
        }
        Action::Decline(reason) => {
            member()?;
            (
                ReportCommand::Decline { reason, at },
                Some(PatrolEffect::Close(AssignmentOutcome::Declined)),
            )
        }
        Action::Respond => {
            member()?;
            (ReportCommand::Respond { at }, None)
        }
        Action::Resolve(resolution_notes) => {
            member()?;
            (
                ReportCommand::Resolve {
                    resolution_notes,
                    at,
                },
                Some(PatrolEffect::Close(AssignmentOutcome::Finished)),
            )
        }
        Action::Note(note) => {
            if member().is_err() {
                desk()?;
            }
            (
                ReportCommand::AddNote {
                    note_id: NoteId::new(sub_id("note")),
                    note,
                    author_id: caller.id,
                    at,
                },
                None,
            )
        }
        Action::PublicUpdate(message) => {
            // Written for the reporter by whoever works the report: the assigned patrol
            // or the station's desk.
            if member().is_err() {
                desk()?;
            }
            (
                ReportCommand::PostPublicUpdate {
                    update_id: UpdateId::new(sub_id("update")),
                    message,
                    author_id: caller.id,
                    at,
                },
                None,
            )
        }
        Action::Evidence {
            url,
            media_type,
            captured_at,
            description,
        } => {
            member()?;
            (
                ReportCommand::AttachEvidence {
                    evidence_id: EvidenceId::new(sub_id("evidence")),
                    url,
                    media_type,
                    captured_at,
                    description,
                    author_id: caller.id,
                    at,
                },
                None,
            )
        }
        Action::ApproveClosure => {
            reviewer()?;
            (
                ReportCommand::ApproveClosure {
                    reviewer_id: caller.id,
                    at,
                },
                None,
            )
        }
        Action::RejectClosure(reason) => {
            reviewer()?;
            (
                ReportCommand::RejectClosure {
                    reviewer_id: caller.id,
                    reason,
                    at,
                },
                Some(PatrolEffect::Reopen),
            )
        }
        Action::RejectInvalid {
            justification,
            public_reason,
        } => {
            desk()?;
            (
                ReportCommand::RejectInvalid {
                    justification,
                    public_reason,
                    by: caller.id,
                    at,
                },
                Some(PatrolEffect::Close(AssignmentOutcome::Cancelled)),
            )
        }
        Action::Withdraw(reason) => {
            let reporter_while_new =
                report.is_reported_by(caller.id) && report.status == ReportStatus::New;
            if !(reporter_while_new || caller.is_admin()) {
                return Err(if report.is_reported_by(caller.id) {
                    ApiError::Conflict(
                        "a reporter may withdraw a report only while it is NEW".into(),
                    )
                } else {
                    ApiError::Forbidden(
                        "only the reporter (while NEW) or an ADMIN may withdraw".into(),
                    )
                });
            }
            (
                ReportCommand::Withdraw { reason, at },
                Some(PatrolEffect::Close(AssignmentOutcome::Cancelled)),
            )
        }
    };
    let before = report.status;
    let after = uow.execute::<Report>(rid, cmd).await?;
    if let (Some(effect), Some(patrol)) = (patrol_effect, report.patrol_id) {
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

fn uow_command_ns(report: Uuid) -> Uuid {
    Uuid::new_v5(&super::accounts::ID_NS, report.as_bytes())
}

#[derive(Debug, Clone, Copy)]
enum PatrolEffect {
    Close(AssignmentOutcome),
    Reopen,
}

/// Runs `actions` on one report as one command; answers the report after them, in the
/// view for the caller (staff of its station, or its reporter).
async fn run_actions(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    ctx: &CmdCtx,
    actions: Vec<Action>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let meta = ctx.meta(caller.actor());
    let seq = meta.command_id.as_u128();
    let rid = ReportId::new(id);
    let out = precinct_app::run!(state.app, &meta, Report, ApiError, id, |uow| {
        for (i, action) in actions.iter().enumerate() {
            apply(
                uow,
                caller,
                rid,
                action.clone(),
                seq.wrapping_add(i as u128),
            )
            .await?;
        }
        Ok(())
    })?;
    let report = out
        .state::<Report>(id)
        .ok_or_else(|| ApiError::Internal("report state missing".into()))?;
    if !report.version_exists() {
        return Err(ApiError::NotFound);
    }
    Ok(Json(Written {
        view: ReportAnswer::for_caller(Some(caller), report),
        position: out.position,
    }))
}

/// An empty body (`{}` or nothing at all).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoBody {}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriageBody {
    #[schema(value_type = crate::openapi::Priority)]
    priority: String,
}

fn parse_priority(s: &str) -> ApiResult<Priority> {
    s.parse::<Priority>()
        .map_err(|e| ApiError::invalid("priority", e.to_string()))
}

/// Triage a report: set its priority.
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    post,
    path = "/crimes/{id}/triage",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = TriageBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn triage(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<TriageBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    caller.require(DESK)?;
    let p = parse_priority(&cmd.body.priority)?;
    run_actions(&state, &caller, id, &cmd.ctx, vec![Action::Triage(p)]).await
}

/// Accept an assignment (`ASSIGNED` → `ACCEPTED`).
///
/// Roles: PATROL, a member of the assigned patrol.
#[utoipa::path(
    post,
    path = "/crimes/{id}/accept",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = Option<NoBody>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn accept(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<NoBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    run_actions(&state, &caller, id, &cmd.ctx, vec![Action::Accept]).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    reason: String,
}

/// Decline an assignment: the report goes back to the queue (`NEW`).
///
/// Roles: PATROL, a member of the assigned patrol.
#[utoipa::path(
    post,
    path = "/crimes/{id}/decline",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = ReasonBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn decline(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<ReasonBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let reason = cmd.body.reason.clone();
    run_actions(&state, &caller, id, &cmd.ctx, vec![Action::Decline(reason)]).await
}

/// Report arrival on scene (`ACCEPTED` → `RESPONDING`).
///
/// Roles: PATROL, a member of the assigned patrol.
#[utoipa::path(
    post,
    path = "/crimes/{id}/respond",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = Option<NoBody>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn respond(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<NoBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    run_actions(&state, &caller, id, &cmd.ctx, vec![Action::Respond]).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    resolution_notes: String,
}

/// Resolve a report (`RESPONDING` → `RESOLVED`), pending a supervisor's review.
///
/// Roles: PATROL, a member of the assigned patrol.
#[utoipa::path(
    post,
    path = "/crimes/{id}/resolve",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = ResolveBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<ResolveBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let notes = cmd.body.resolution_notes.clone();
    run_actions(&state, &caller, id, &cmd.ctx, vec![Action::Resolve(notes)]).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    note: String,
}

/// Add a note to a report.
///
/// Roles: PATROL (a member of the assigned patrol); DISPATCHER, SUPERVISOR, ADMIN
/// (station-scoped).
#[utoipa::path(
    post,
    path = "/crimes/{id}/notes",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = NoteBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The report with the note", body = WrittenReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn add_note(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<NoteBody>,
) -> ApiResult<(StatusCode, Json<Written<ReportAnswer>>)> {
    let note = cmd.body.note.clone();
    let res = run_actions(&state, &caller, id, &cmd.ctx, vec![Action::Note(note)]).await?;
    Ok((StatusCode::CREATED, res))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicUpdateBody {
    /// What the reporter reads (with the time it was posted, never who wrote it).
    #[schema(example = "Officers are on their way.")]
    message: String,
}

/// Post an update for the report's reporter (the reporter sees public updates; internal
/// notes stay with staff).
///
/// Roles: PATROL (a member of the assigned patrol); DISPATCHER, SUPERVISOR, ADMIN
/// (station-scoped).
#[utoipa::path(
    post,
    path = "/crimes/{id}/public-updates",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = PublicUpdateBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The report with the update", body = WrittenReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn post_public_update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<PublicUpdateBody>,
) -> ApiResult<(StatusCode, Json<Written<ReportAnswer>>)> {
    let message = cmd.body.message.clone();
    let action = Action::PublicUpdate(message);
    let res = run_actions(&state, &caller, id, &cmd.ctx, vec![action]).await?;
    Ok((StatusCode::CREATED, res))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBody {
    /// Where the file is; stored as given, never fetched by Precinct.
    url: String,
    #[schema(value_type = crate::openapi::MediaType)]
    media_type: String,
    #[serde(default)]
    captured_at: Option<DateTime<Utc>>,
    #[serde(default)]
    description: Option<String>,
}

/// Attach evidence (a link to a file) to a report.
///
/// Roles: PATROL, a member of the assigned patrol.
#[utoipa::path(
    post,
    path = "/crimes/{id}/evidence",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = EvidenceBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The report with the evidence", body = WrittenReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn attach_evidence(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<EvidenceBody>,
) -> ApiResult<(StatusCode, Json<Written<ReportAnswer>>)> {
    let b = &cmd.body;
    let media_type = b
        .media_type
        .parse::<MediaType>()
        .map_err(|e| ApiError::invalid("media_type", e.to_string()))?;
    // The URL is stored as given; Precinct never fetches it (no server-side requests).
    let action = Action::Evidence {
        url: b.url.clone(),
        media_type,
        captured_at: b.captured_at,
        description: b.description.clone(),
    };
    let res = run_actions(&state, &caller, id, &cmd.ctx, vec![action]).await?;
    Ok((StatusCode::CREATED, res))
}

/// Approve a resolution: close the report (`RESOLVED` → `CLOSED`).
///
/// Roles: SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    post,
    path = "/crimes/{id}/closure/approve",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = Option<NoBody>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn approve_closure(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<NoBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    caller.require(REVIEWERS)?;
    run_actions(&state, &caller, id, &cmd.ctx, vec![Action::ApproveClosure]).await
}

/// Reject a resolution: the report goes back to its patrol (`RESOLVED` → `RESPONDING`).
///
/// Roles: SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    post,
    path = "/crimes/{id}/closure/reject",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = ReasonBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn reject_closure(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<ReasonBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    caller.require(REVIEWERS)?;
    let reason = cmd.body.reason.clone();
    run_actions(
        &state,
        &caller,
        id,
        &cmd.ctx,
        vec![Action::RejectClosure(reason)],
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JustificationBody {
    /// Internal: why the report is not valid (staff and the audit trail only).
    justification: String,
    /// What the reporter is told; without it they read a neutral default text.
    #[serde(default)]
    public_reason: Option<String>,
}

/// Reject a report as invalid (`REJECTED`, final).
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped).
#[utoipa::path(
    post,
    path = "/crimes/{id}/reject",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = JustificationBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn reject_invalid(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<JustificationBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    caller.require(DESK)?;
    let action = Action::RejectInvalid {
        justification: cmd.body.justification.clone(),
        public_reason: cmd.body.public_reason.clone(),
    };
    run_actions(&state, &caller, id, &cmd.ctx, vec![action]).await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawBody {
    #[serde(default)]
    reason: Option<String>,
}

/// Withdraw a report (`WITHDRAWN`, final).
///
/// Roles: the reporter (CITIZEN or staff) while the report is `NEW`; ADMIN at any time.
#[utoipa::path(
    delete,
    path = "/crimes/{id}",
    operation_id = "withdraw_crime",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = Option<WithdrawBody>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<WithdrawBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let reason = cmd.body.reason.clone();
    run_actions(
        &state,
        &caller,
        id,
        &cmd.ctx,
        vec![Action::Withdraw(reason)],
    )
    .await
}

// ---------------------------------------------------------------------------------------
// PUT / PATCH

/// Changes to a report. PATCH changes what is given; PUT needs `title`, `description`,
/// `crime_types` and `location` (unless it only changes `status` or `priority`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    crime_types: Option<Vec<String>>,
    #[serde(default)]
    location: Option<LocationBody>,
    #[serde(default)]
    occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    media_urls: Option<Vec<String>>,
    #[serde(default)]
    contact: Option<String>,
    /// Mapped to the matching transition (staff only; not `NEW` or `ASSIGNED`).
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::ReportStatus>)]
    status: Option<String>,
    /// Mapped to triage (staff only).
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::Priority>)]
    priority: Option<String>,
    /// Needed with `status: RESOLVED`.
    #[serde(default)]
    resolution_notes: Option<String>,
    /// Needed with `status: REJECTED` (internal).
    #[serde(default)]
    justification: Option<String>,
    /// With `status: REJECTED`: what the reporter is told (default: a neutral text).
    #[serde(default)]
    public_reason: Option<String>,
    /// Routing is decided by Precinct; present only to be refused clearly.
    #[serde(default)]
    station_id: Option<Uuid>,
}

/// Replace a report's details (and/or move its status or priority).
///
/// Roles: the reporter while the report is `NEW`; DISPATCHER, SUPERVISOR, ADMIN
/// (station-scoped) at any time, and only they may set `status` or `priority`; the
/// assigned patrol's members for the transitions that are theirs.
#[utoipa::path(
    put,
    path = "/crimes/{id}",
    operation_id = "replace_crime",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = AmendBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn replace(
    state: State<AppState>,
    caller: Caller,
    path: Path<Uuid>,
    cmd: Cmd<AmendBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let b = &cmd.body;
    let mut v = Validator::new();
    if b.status.is_none() && b.priority.is_none() {
        for (field, present) in [
            ("title", b.title.is_some()),
            ("description", b.description.is_some()),
            ("crime_types", b.crime_types.is_some()),
            ("location", b.location.is_some()),
        ] {
            if !present {
                v.fail(field, "required by PUT (use PATCH for a partial update)");
            }
        }
    }
    v.finish()?;
    amend(state, caller, path, cmd).await
}

/// Change some of a report's details (and/or move its status or priority).
///
/// Roles: the reporter while the report is `NEW`; DISPATCHER, SUPERVISOR, ADMIN
/// (station-scoped) at any time, and only they may set `status` or `priority`; the
/// assigned patrol's members for the transitions that are theirs.
#[utoipa::path(
    patch,
    path = "/crimes/{id}",
    operation_id = "amend_crime",
    tag = "crimes",
    params(("id" = Uuid, Path, description = "The report"), CommandHeaders),
    request_body = AmendBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report after the change", body = WrittenReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn amend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<AmendBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let b = &cmd.body;
    if b.station_id.is_some() {
        return Err(ApiError::Forbidden(
            "station_id is decided by routing and cannot be set".into(),
        ));
    }
    if (b.status.is_some() || b.priority.is_some()) && !caller.role.is_staff() {
        return Err(ApiError::Forbidden(
            "only staff may change status or priority".into(),
        ));
    }
    let mut v = Validator::new();
    let location = match &b.location {
        Some(l) => parse_point(&mut v, l.latitude, l.longitude)
            .map(|p| ReportLocation::new(p, l.city.clone(), l.state.clone())),
        None => None,
    };
    v.finish()?;
    let mut actions = Vec::new();
    let changes = ReportChanges {
        title: b.title.clone(),
        crime_types: b.crime_types.clone(),
        location,
        occurred_at: b.occurred_at,
        media_urls: b.media_urls.clone(),
    };
    let personal = PersonalChanges {
        description: b.description.clone(),
        street: b.location.as_ref().and_then(|l| l.street.clone()),
        contact: b.contact.clone(),
    };
    let has_changes = changes != ReportChanges::default() || personal != PersonalChanges::default();
    if has_changes {
        actions.push(Action::Amend {
            changes,
            personal: Some(personal),
        });
    }
    if let Some(p) = &b.priority {
        actions.push(Action::Triage(parse_priority(p)?));
    }
    if let Some(status) = &b.status {
        let status = status
            .parse::<ReportStatus>()
            .map_err(|e| ApiError::invalid("status", e.to_string()))?;
        let need = |field: &'static str, v: &Option<String>| {
            v.clone()
                .ok_or_else(|| ApiError::invalid(field, format!("required with status {status}")))
        };
        actions.push(match status {
            ReportStatus::Accepted => Action::Accept,
            ReportStatus::Responding => Action::Respond,
            ReportStatus::Resolved => {
                Action::Resolve(need("resolution_notes", &b.resolution_notes)?)
            }
            ReportStatus::Closed => Action::ApproveClosure,
            ReportStatus::Rejected => Action::RejectInvalid {
                justification: need("justification", &b.justification)?,
                public_reason: b.public_reason.clone(),
            },
            ReportStatus::Withdrawn => Action::Withdraw(None),
            ReportStatus::New | ReportStatus::Assigned => {
                return Err(ApiError::invalid(
                    "status",
                    "use POST /dispatch to assign and POST /crimes/{id}/decline to decline",
                ))
            }
        });
    }
    if actions.is_empty() {
        return Err(ApiError::invalid("body", "nothing to change"));
    }
    run_actions(&state, &caller, id, &cmd.ctx, actions).await
}

// ---------------------------------------------------------------------------------------
// Dispatch

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchBody {
    crime_id: Uuid,
    /// Leave out for automatic assignment (the least busy `AVAILABLE` patrol of the
    /// report's station).
    #[serde(default)]
    patrol_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dispatched {
    crime_id: Uuid,
    patrol_id: Uuid,
    /// The patrol was chosen automatically.
    auto: bool,
    /// Automatic assignment only: the ranking and the excluded patrols.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::openapi::AssignmentDecision>)]
    decision: Option<AssignmentDecision>,
    /// Log position of the command's last event.
    position: u64,
}

/// Assign a report to a patrol (`NEW` → `ASSIGNED`), chosen or automatic.
///
/// Roles: DISPATCHER, SUPERVISOR, ADMIN (station-scoped). 409 when the patrol is
/// `OFF_DUTY` or no patrol is `AVAILABLE`; 503 when workloads are behind the report.
#[utoipa::path(
    post,
    path = "/dispatch",
    tag = "dispatch",
    params(CommandHeaders),
    request_body = DispatchBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The assignment", body = Dispatched),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn dispatch(
    State(state): State<AppState>,
    caller: Caller,
    cmd: Cmd<DispatchBody>,
) -> ApiResult<Json<Dispatched>> {
    caller.require(DESK)?;
    let crime_id = cmd.body.crime_id;
    let rid = ReportId::new(crime_id);
    // For automatic assignment: the workload snapshot must be at least as fresh as the
    // report itself.
    let auto = match cmd.body.patrol_id {
        Some(_) => None,
        None => {
            let (report, version) = state.app.load::<Report>(crime_id).await?;
            require_visible(Some(&caller), None, &report)?;
            require_desk_of(&caller, report.station_id)?;
            let fresh = precinct_projections::wait_for_position(
                &state.pool,
                version,
                std::time::Duration::from_secs(5),
            )
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
            if !fresh {
                return Err(ApiError::Unavailable(
                    "workloads are behind the report; retry shortly".into(),
                ));
            }
            let snapshot = workload_snapshot(&state, report.station_id).await?;
            let decision = choose_patrol(report.station_id, report.location.point(), &snapshot)
                .map_err(|_| {
                    ApiError::Conflict("no AVAILABLE patrol in the report's station".into())
                })?;
            Some(decision)
        }
    };
    let patrol_id = match (&auto, cmd.body.patrol_id) {
        (Some(d), _) => d.patrol_id,
        (None, Some(p)) => PatrolId::new(p),
        (None, None) => return Err(ApiError::invalid("patrol_id", "required")),
    };
    let meta = cmd.ctx.meta(caller.actor());
    let out = precinct_app::run!(state.app, &meta, Report, ApiError, crime_id, |uow| {
        let at = uow.now();
        let report: Report = uow.load(crime_id).await?;
        require_visible(Some(&caller), None, &report)?;
        require_desk_of(&caller, report.station_id)?;
        let patrol: Patrol = uow.load(patrol_id.as_uuid()).await?;
        if !patrol.version_exists() || patrol.station_id != report.station_id {
            return Err(ApiError::invalid(
                "patrol_id",
                "no such patrol in the report's station",
            ));
        }
        if patrol.status == PatrolStatus::OffDuty {
            return Err(ApiError::Conflict("the patrol is OFF_DUTY".into()));
        }
        uow.execute::<Report>(
            crime_id,
            ReportCommand::Assign {
                patrol_id,
                decision: auto.clone(),
                at,
            },
        )
        .await?;
        uow.execute::<Patrol>(
            patrol_id.as_uuid(),
            PatrolCommand::OpenAssignment { report_id: rid, at },
        )
        .await?;
        Ok(())
    })?;
    let report = out
        .state::<Report>(crime_id)
        .ok_or_else(|| ApiError::Internal("report state missing".into()))?;
    let assigned = report.patrol_id.unwrap_or(patrol_id);
    Ok(Json(Dispatched {
        crime_id,
        patrol_id: assigned.as_uuid(),
        auto: auto.is_some(),
        decision: auto,
        position: out.position,
    }))
}

async fn workload_snapshot(state: &AppState, station: StationId) -> ApiResult<Vec<PatrolSnapshot>> {
    let rows =
        precinct_projections::queries::workload_snapshot(&state.pool, station.as_uuid()).await?;
    Ok(rows)
}

#[allow(dead_code)]
fn is_staff(role: Role) -> bool {
    role.is_staff()
}
