//! Crime reports over HTTP: submission and amendment (`POST /crimes`, `PUT`/`PATCH
//! /crimes/{id}`) here, the lifecycle transitions in `crimes/lifecycle.rs`. Each
//! handler parses its request, calls its command of [`precinct_app::commands::report`]
//! (which holds who may do what, and the patrol's workload kept in step), and answers
//! the report in the caller's view.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use precinct_app::commands::report::{amend as amending, submit as submission, Change, Changed};
use precinct_domain::ids::ReportId;
use precinct_domain::report::{PersonalChanges, ReportChanges, ReportLocation, Reporter};
use precinct_domain::values::{GeoPoint, Priority, ReportStatus};
use precinct_eventlog::Actor;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::{derive_token, token_hash, Caller};
use crate::extract::Path;
use crate::extract::{Cmd, Validator};
use crate::openapi::{
    CommandErrors, CommandHeaders, PublicCommandErrors, QueryHeaders, WrittenReport,
};
use crate::ports::Facts;
use crate::problem::{ApiError, ApiResult};
use crate::views::{ReportAnswer, ReporterReportView, Written};
use crate::AppState;

/// The transitions: `POST /crimes/{id}/<step>` and `DELETE /crimes/{id}`.
mod lifecycle;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/crimes", post(submit))
        .route(
            "/crimes/{id}",
            axum::routing::put(replace)
                .patch(amend)
                .delete(lifecycle::withdraw),
        )
        .route("/crimes/{id}/triage", post(lifecycle::triage))
        .route("/crimes/{id}/accept", post(lifecycle::accept))
        .route("/crimes/{id}/decline", post(lifecycle::decline))
        .route("/crimes/{id}/respond", post(lifecycle::respond))
        .route("/crimes/{id}/resolve", post(lifecycle::resolve))
        .route("/crimes/{id}/notes", post(lifecycle::add_note))
        .route(
            "/crimes/{id}/public-updates",
            post(lifecycle::post_public_update),
        )
        .route("/crimes/{id}/evidence", post(lifecycle::attach_evidence))
        .route(
            "/crimes/{id}/closure/approve",
            post(lifecycle::approve_closure),
        )
        .route(
            "/crimes/{id}/closure/reject",
            post(lifecycle::reject_closure),
        )
        .route("/crimes/{id}/reject", post(lifecycle::reject_invalid))
}

#[derive(OpenApi)]
#[openapi(paths(
    submit,
    replace,
    amend,
    lifecycle::withdraw,
    lifecycle::triage,
    lifecycle::accept,
    lifecycle::decline,
    lifecycle::respond,
    lifecycle::resolve,
    lifecycle::add_note,
    lifecycle::post_public_update,
    lifecycle::attach_evidence,
    lifecycle::approve_closure,
    lifecycle::reject_closure,
    lifecycle::reject_invalid
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
    /// Where to e-mail news of this report (assignment, resolution, closure, rejection
    /// and every public update; docs/notifications.md). Used for nothing else, shown to
    /// nobody, erased with the reporter's personal data. Signed-in or anonymous.
    #[serde(default)]
    #[schema(example = "reporter@example.org")]
    notify_email: Option<String>,
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
        PublicCommandErrors,
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
    throttle_anonymous(&state, caller.as_ref(), addr)?;
    let b = cmd.body;
    let mut v = Validator::new();
    let point = parse_point(&mut v, b.location.latitude, b.location.longitude);
    if b.crime_types.is_empty() {
        v.fail("crime_types", "at least one crime type is required");
    }
    let notify_email = b
        .notify_email
        .as_deref()
        .and_then(|e| v.check("notify_email", precinct_domain::values::Email::parse(e)));
    v.finish()?;
    let point = point.ok_or_else(|| ApiError::invalid("location", "invalid"))?;
    let meta = cmd.ctx.meta(
        caller
            .as_ref()
            .map(|c| c.actor())
            .unwrap_or(Actor::Anonymous),
    );
    let (reporter, tracking_token) = reporter(&state, caller.as_ref(), &meta)?;
    let new = submission::NewReport {
        title: b.title,
        description: b.description,
        crime_types: b.crime_types,
        location: ReportLocation::new(point, b.location.city, b.location.state),
        street: b.location.street,
        occurred_at: b.occurred_at,
        media_urls: b.media_urls,
        contact: b.contact,
        notify_email,
    };
    let out = submission::submit(&state.app, &meta, reporter, new, &Facts(&state)).await?;
    Ok((
        StatusCode::CREATED,
        Json(Submitted {
            report: ReporterReportView::from(&out.report),
            position: out.position,
            tracking_token,
        }),
    ))
}

/// An anonymous submission counts in its client address's budget (429 beyond it); a
/// signed-in one in the account's command budget (taken by the body's extractor). Shared
/// with Open311's `POST requests` (ADR 0031).
pub(crate) fn throttle_anonymous(
    state: &AppState,
    caller: Option<&Caller>,
    addr: Option<std::net::IpAddr>,
) -> ApiResult<()> {
    if caller.is_none() {
        let key = crate::throttle::addr_key(addr);
        if let Err(retry_after_secs) = state.anonymous_reports.hit(&key) {
            return Err(ApiError::TooManyRequests { retry_after_secs });
        }
    }
    Ok(())
}

/// Who submits: the signed-in caller, or an anonymous reporter who gets a tracking token
/// derived from the command id (only its hash is stored).
pub(crate) fn reporter(
    state: &AppState,
    caller: Option<&Caller>,
    meta: &precinct_eventlog::CommandMeta,
) -> ApiResult<(Reporter, Option<String>)> {
    Ok(match caller {
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
    })
}

// ---------------------------------------------------------------------------------------
// Shared by the commands on a report (the transitions are in `lifecycle`)

/// A command's answer: the report after it, in the view for the caller (staff of its
/// station, or its reporter).
pub(super) fn written(caller: &Caller, changed: Changed) -> Json<Written<ReportAnswer>> {
    Json(Written {
        view: ReportAnswer::for_caller(Some(caller), &changed.report),
        position: changed.position,
    })
}

fn parse_priority(s: &str) -> ApiResult<Priority> {
    s.parse::<Priority>()
        .map_err(|e| ApiError::invalid("priority", e.to_string()))
}

/// An empty body (`{}`, `null` or nothing at all).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, from = "Option<EmptyObject>")]
pub struct NoBody {}

/// `{}` and nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyObject {}

impl From<Option<EmptyObject>> for NoBody {
    fn from(_: Option<EmptyObject>) -> Self {
        NoBody {}
    }
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
        CommandErrors,
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
        CommandErrors,
    )
)]
async fn amend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<AmendBody>,
) -> ApiResult<Json<Written<ReportAnswer>>> {
    let by = caller.principal();
    let b = cmd.body;
    if b.station_id.is_some() {
        return Err(ApiError::Forbidden(
            "station_id is decided by routing and cannot be set".into(),
        ));
    }
    if b.status.is_some() || b.priority.is_some() {
        amending::may_move_status(&by)?;
    }
    let changes = parse_amendment(b)?;
    let meta = cmd.ctx.meta(by.actor());
    let changed = amending::amend(
        &state.app,
        &by,
        &meta,
        ReportId::new(id),
        changes,
        &Facts(&state),
    )
    .await?;
    Ok(written(&caller, changed))
}

/// A `PUT`/`PATCH` body as the changes it makes, in order: the details, the priority,
/// the status move (each status is the matching transition).
fn parse_amendment(b: AmendBody) -> ApiResult<Vec<Change>> {
    let mut v = Validator::new();
    let location = match &b.location {
        Some(l) => parse_point(&mut v, l.latitude, l.longitude)
            .map(|p| ReportLocation::new(p, l.city.clone(), l.state.clone())),
        None => None,
    };
    v.finish()?;
    let mut changes = Vec::new();
    let details = ReportChanges {
        title: b.title,
        crime_types: b.crime_types,
        location,
        occurred_at: b.occurred_at,
        media_urls: b.media_urls,
    };
    let personal = PersonalChanges {
        description: b.description,
        street: b.location.and_then(|l| l.street),
        contact: b.contact,
    };
    if details != ReportChanges::default() || personal != PersonalChanges::default() {
        changes.push(Change::Amend {
            changes: details,
            personal: Some(personal),
            catalogue: Vec::new(),
        });
    }
    if let Some(p) = &b.priority {
        changes.push(Change::Triage(parse_priority(p)?));
    }
    if let Some(status) = &b.status {
        let status = status
            .parse::<ReportStatus>()
            .map_err(|e| ApiError::invalid("status", e.to_string()))?;
        let need = |field: &'static str, v: &Option<String>| {
            v.clone()
                .ok_or_else(|| ApiError::invalid(field, format!("required with status {status}")))
        };
        changes.push(match status {
            ReportStatus::Accepted => Change::Accept,
            ReportStatus::Responding => Change::Respond,
            ReportStatus::Resolved => {
                Change::Resolve(need("resolution_notes", &b.resolution_notes)?)
            }
            ReportStatus::Closed => Change::ApproveClosure,
            ReportStatus::Rejected => Change::Reject {
                justification: need("justification", &b.justification)?,
                public_reason: b.public_reason.clone(),
            },
            ReportStatus::Withdrawn => Change::Withdraw(None),
            ReportStatus::New | ReportStatus::Assigned => {
                return Err(ApiError::invalid(
                    "status",
                    "use POST /dispatch to assign and POST /crimes/{id}/decline to decline",
                ))
            }
        });
    }
    if changes.is_empty() {
        return Err(ApiError::invalid("body", "nothing to change"));
    }
    Ok(changes)
}
