//! A station's SLA policy (ADR 0035): `GET /stations/{id}/sla-policy` (the policy as
//! set, and as in force with the server's defaults filled in) and
//! `PUT /stations/{id}/sla-policy` (the whole policy; calls
//! `precinct_app::commands::station_sla`). Parses priorities, actions and ranges into
//! the domain's `SlaPolicy`, naming the field of every refusal.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use precinct_app::commands::station_sla;
use precinct_domain::ids::StationId;
use precinct_domain::sla::{Deadlines, EffectivePolicy, SlaPolicy, Unaccepted};
use precinct_domain::station::Station;
use precinct_domain::values::{EscalationAction, Priority};
use precinct_domain::Aggregate;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{Cmd, Path, Validator};
use crate::openapi::{CommandErrors, CommandHeaders};
use crate::problem::{ApiError, ApiResult};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/stations/{id}/sla-policy", get(show).put(set))
}

#[derive(OpenApi)]
#[openapi(paths(show, set))]
pub struct Api;

/// The deadlines of one priority, in seconds (1 to 2,592,000 = 30 days); a kind left
/// out uses the server's default.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadlinesBody {
    /// `ASSIGNED` → accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accept_secs: Option<u32>,
    /// Accepted → `RESPONDING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    respond_secs: Option<u32>,
    /// Accepted → `RESOLVED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resolve_secs: Option<u32>,
}

/// What happens to an assignment still not accepted `after_secs` (0 to 86,400) after
/// its accept deadline was breached.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnacceptedBody {
    /// `REQUEUE`: back to the station's queue. `REASSIGN`: to the least busy other
    /// `AVAILABLE` patrol of the station (back to the queue when there is none).
    action: String,
    after_secs: u32,
}

/// A station's whole SLA policy.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// Deadlines by priority (`LOW`, `MEDIUM`, `HIGH`, `CRITICAL`); a priority left out
    /// uses the server's defaults.
    #[serde(default)]
    deadlines: BTreeMap<String, DeadlinesBody>,
    /// The warning level in percent of each deadline (1..=99; 0: no warnings); left
    /// out: the server's default.
    #[serde(default)]
    warn_at_percent: Option<u8>,
    /// Push warnings, breaches and escalations to the station's supervisors' devices
    /// (default true).
    #[serde(default)]
    notify_supervisors: Option<bool>,
    /// Escalation of unaccepted assignments; left out or null: none (the desk decides).
    #[serde(default)]
    unaccepted: Option<UnacceptedBody>,
}

/// The deadlines of one priority in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadlinesView {
    accept_secs: Option<u32>,
    respond_secs: Option<u32>,
    /// Null: no resolve deadline.
    resolve_secs: Option<u32>,
}

/// The policy in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct EffectiveView {
    /// Every priority.
    deadlines: BTreeMap<String, DeadlinesView>,
    warn_at_percent: u8,
    notify_supervisors: bool,
    unaccepted: Option<UnacceptedBody>,
}

/// A station's SLA policy: as set (null: never set, the server's defaults throughout)
/// and in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    station_id: Uuid,
    #[schema(value_type = Option<Object>)]
    policy: Option<serde_json::Value>,
    effective: EffectiveView,
    /// The log position of the station's last event (of the change, after a `PUT`).
    position: u64,
}

fn unaccepted_view(u: &Unaccepted) -> UnacceptedBody {
    UnacceptedBody {
        action: u.action.as_str().to_owned(),
        after_secs: u.after_secs,
    }
}

fn view(id: StationId, station: &Station, effective: EffectivePolicy, position: u64) -> PolicyView {
    PolicyView {
        station_id: id.as_uuid(),
        policy: station
            .sla_policy
            .as_ref()
            .and_then(|p| serde_json::to_value(p).ok()),
        effective: EffectiveView {
            deadlines: effective
                .deadlines
                .iter()
                .map(|(p, d)| {
                    (
                        p.as_str().to_owned(),
                        DeadlinesView {
                            accept_secs: d.accept_secs,
                            respond_secs: d.respond_secs,
                            resolve_secs: d.resolve_secs,
                        },
                    )
                })
                .collect(),
            warn_at_percent: effective.warn_at_percent,
            notify_supervisors: effective.notify_supervisors,
            unaccepted: effective.unaccepted.as_ref().map(unaccepted_view),
        },
        position,
    }
}

/// A station's SLA policy: as set and in force.
///
/// Roles: ADMIN; DISPATCHER, SUPERVISOR and PATROL of the station (404 for another
/// station's staff).
#[utoipa::path(
    get,
    path = "/stations/{id}/sla-policy",
    operation_id = "get_station_sla_policy",
    tag = "stations",
    params(("id" = Uuid, Path, description = "The station")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The policy", body = PolicyView),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<PolicyView>> {
    let by = caller.principal();
    if !by.role.is_staff() {
        return Err(ApiError::forbidden());
    }
    let station_id = StationId::new(id);
    if !by.is_staff_of(station_id) {
        return Err(ApiError::NotFound);
    }
    let (station, position) = state.app.for_queries().load::<Station>(id).await?;
    if !station.version_exists() {
        return Err(ApiError::NotFound);
    }
    let effective = station
        .sla_policy
        .clone()
        .unwrap_or_default()
        .effective(&state.config.sla_defaults);
    Ok(Json(view(station_id, &station, effective, position)))
}

/// Set a station's SLA policy, whole.
///
/// Roles: ADMIN; SUPERVISOR of the station (404 for another station).
///
/// Deadlines per priority and kind (accept, respond, resolve), the warning level, whether
/// the station's supervisors are pushed warnings, breaches and escalations, and the
/// escalation of assignments still unaccepted after their breach (requeue or reassign,
/// after a further delay). Applies at once to the clocks already running. A value out of
/// range, an unknown priority or action is 422 naming the field; the same policy again
/// appends nothing.
#[utoipa::path(
    put,
    path = "/stations/{id}/sla-policy",
    operation_id = "set_station_sla_policy",
    tag = "stations",
    params(("id" = Uuid, Path, description = "The station"), CommandHeaders),
    request_body = PolicyBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The policy after the change", body = PolicyView),
        CommandErrors,
    )
)]
async fn set(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<PolicyBody>,
) -> ApiResult<Json<PolicyView>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    station_sla::may_set(&by)?;
    let policy = parse(cmd.body)?;
    let station_id = StationId::new(id);
    let out = station_sla::set(&state.app, &by, &meta, station_id, policy).await?;
    let effective = out
        .station
        .sla_policy
        .clone()
        .unwrap_or_default()
        .effective(&state.config.sla_defaults);
    Ok(Json(view(
        station_id,
        &out.station,
        effective,
        out.position,
    )))
}

/// The body as the domain's policy, every refusal naming its field.
fn parse(b: PolicyBody) -> Result<SlaPolicy, ApiError> {
    // One refusal for a map of many keys, not one per key: the answer stays small.
    if b.deadlines.len() > Priority::ALL.len() {
        return Err(ApiError::invalid(
            "deadlines",
            "at most one entry per priority (LOW, MEDIUM, HIGH, CRITICAL)",
        ));
    }
    let mut v = Validator::new();
    let mut deadlines = BTreeMap::new();
    for (name, d) in b.deadlines {
        let field = format!("deadlines.{name}");
        if let Some(priority) = v.check(&field, name.parse::<Priority>()) {
            deadlines.insert(
                priority,
                Deadlines {
                    accept_secs: d.accept_secs,
                    respond_secs: d.respond_secs,
                    resolve_secs: d.resolve_secs,
                },
            );
        }
    }
    let unaccepted = match b.unaccepted {
        None => None,
        Some(u) => v
            .check("unaccepted.action", u.action.parse::<EscalationAction>())
            .map(|action| Unaccepted {
                action,
                after_secs: u.after_secs,
            }),
    };
    v.finish()?;
    let policy = SlaPolicy {
        deadlines,
        warn_at_percent: b.warn_at_percent,
        notify_supervisors: b.notify_supervisors.unwrap_or(true),
        unaccepted,
    };
    policy
        .check()
        .map_err(|e| ApiError::invalid(e.field, e.reason))?;
    Ok(policy)
}
