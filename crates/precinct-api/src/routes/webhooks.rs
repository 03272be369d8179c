//! Outbound webhooks (Standard Webhooks, ADR 0028): subscriptions (`/webhooks`), the
//! secret's rotation, replay from a log position and the delivery ledger. ADMIN manages
//! every subscription, a SUPERVISOR those of their own station (others are 404 to
//! them). Parses, checks the target (`webhook_target`), calls
//! `precinct_app::commands::webhook`, renders. The secret is in the answer of the
//! command that drew it and nowhere else.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use precinct_app::commands::webhook::{self, Change, NewWebhook, WebhookWritten};
use precinct_app::policy::Principal;
use precinct_domain::ids::StationId;
use precinct_domain::values::Polygon;
use precinct_domain::webhook::WebhookChanges;
use precinct_readmodel::queries::{self, DeliveryRow, Page, WebhookRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{Cmd, MinPosition, Path, Validator};
use crate::openapi::{CommandErrors, CommandHeaders, CreationErrors, ListErrors, QueryHeaders};
use crate::problem::{ApiError, ApiResult};
use crate::routes::queries::{page, Q};
use crate::routes::stations::Patch;
use crate::AppState;

/// Longest overlap of two secrets after a rotation, seconds (7 days).
const OVERLAP_MAX: u64 = webhook::OVERLAP_MAX_SECS;
/// The overlap when a rotation names none, seconds (24 hours).
const OVERLAP_DEFAULT: u64 = 24 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route("/webhooks/{id}", get(get_one).patch(edit).delete(delete))
        .route("/webhooks/{id}/rotate-secret", post(rotate))
        .route("/webhooks/{id}/replay", post(replay))
        .route("/webhooks/{id}/deliveries", get(deliveries))
}

#[derive(OpenApi)]
#[openapi(paths(list, get_one, create, edit, delete, rotate, replay, deliveries))]
pub struct Api;

/// A webhook subscription as its managers see it (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: Uuid,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Report event types delivered; empty: every report event.
    pub event_types: Vec<String>,
    /// Only reports of this station (a SUPERVISOR's subscriptions: always theirs).
    pub station_id: Option<Uuid>,
    /// Only reports inside this GeoJSON `Polygon`.
    #[schema(value_type = Option<Object>)]
    pub area: Option<serde_json::Value>,
    /// Deliveries carry personal data (granted by an ADMIN); never after erasure.
    pub personal_data: bool,
    /// False after a run of failed deliveries (see `disabled_reason`) or an edit.
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookView {
    fn of_row(r: WebhookRow) -> Self {
        WebhookView {
            id: r.id,
            url: r.url,
            event_types: r.event_types,
            station_id: r.station_id,
            area: r
                .area
                .map(|a| serde_json::json!({"type": "Polygon", "coordinates": a.0})),
            personal_data: r.personal_data,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A command's answer: the subscription after it, the log position of its event, and
/// — only from creation and rotation — the new secret (shown this once).
#[derive(Debug, Serialize, ToSchema)]
pub struct WrittenWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_<base64>`: keep it, it is never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub position: u64,
}

impl WrittenWebhook {
    fn of(out: WebhookWritten) -> Self {
        let w = out.webhook;
        WrittenWebhook {
            webhook: WebhookView {
                id: w.id.map(|i| i.as_uuid()).unwrap_or_default(),
                url: w.url,
                event_types: w.filter.event_types,
                station_id: w.filter.station_id.map(|s| s.as_uuid()),
                area: w.filter.area.map(|a| a.to_geojson()),
                personal_data: w.personal_data,
                enabled: w.enabled,
                disabled_reason: w.disabled_reason,
                created_at: w.created_at,
                updated_at: w.updated_at,
            },
            secret: out.secret,
            position: out.position,
        }
    }
}

/// One page of subscriptions, by id.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookPage {
    pub items: Vec<WebhookView>,
    /// Pass as `cursor` for the next page (null: last page).
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

/// The station whose subscriptions `by` sees (`None`: every one, ADMIN).
fn scope(by: &Principal) -> ApiResult<Option<Uuid>> {
    webhook::may_manage(by)?;
    if by.is_admin() {
        return Ok(None);
    }
    Ok(Some(
        by.station_id
            .map(|s| s.as_uuid())
            .ok_or(ApiError::NotFound)?,
    ))
}

/// The subscription `id` if `by` may see it (404 otherwise).
async fn visible(state: &AppState, by: &Principal, id: Uuid) -> ApiResult<WebhookRow> {
    let scope = scope(by)?;
    let row = queries::get_webhook(&state.pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    match scope {
        Some(s) if row.station_id != Some(s) => Err(ApiError::NotFound),
        _ => Ok(row),
    }
}

/// List webhook subscriptions, by id.
///
/// Roles: ADMIN (all), SUPERVISOR (their station's).
#[utoipa::path(
    get,
    path = "/webhooks",
    operation_id = "list_webhooks",
    tag = "webhooks",
    params(ListParams, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of subscriptions", body = WebhookPage),
        ListErrors,
    )
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    Q(p): Q<ListParams>,
) -> ApiResult<Json<WebhookPage>> {
    let scope = scope(&caller.principal())?;
    let pg = page(p.limit, p.cursor)?;
    let Page { items, next_cursor } = queries::list_webhooks(&state.pool, scope, &pg).await?;
    Ok(Json(WebhookPage {
        items: items.into_iter().map(WebhookView::of_row).collect(),
        next_cursor,
    }))
}

/// One webhook subscription (without its secret).
///
/// Roles: ADMIN, SUPERVISOR (their station's; others are 404).
#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    operation_id = "get_webhook",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The subscription"), QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The subscription", body = WebhookView),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<WebhookView>> {
    let row = visible(&state, &caller.principal(), id).await?;
    Ok(Json(WebhookView::of_row(row)))
}

/// A new webhook subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// `https://…` (plain `http` only where the operator allows it); its host must
    /// resolve to public addresses unless the operator's allow-list names it.
    url: String,
    /// Report event types (`ReportSubmitted`, `ReportAssigned`, …), at most 50; empty
    /// or absent: every report event.
    #[serde(default)]
    event_types: Vec<String>,
    /// Only reports of this station. A SUPERVISOR's subscriptions are always their
    /// station's.
    #[serde(default)]
    station_id: Option<Uuid>,
    /// Only reports inside this GeoJSON `Polygon` geometry.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    area: Option<serde_json::Value>,
    /// Deliveries carry personal data (ADMIN only); never after erasure.
    #[serde(default)]
    personal_data: bool,
}

fn area(v: &mut Validator, a: &serde_json::Value) -> Option<Polygon> {
    let p = v.check("area", Polygon::parse_geojson(a))?;
    v.check("area", p.check_simple().map(|_| p.clone()))
}

/// The target's checks (422 on `url`).
async fn check_target(state: &AppState, url: &str) -> ApiResult<()> {
    precinct_domain::webhook::check_url(url)
        .map_err(|e| ApiError::invalid("url", e.to_string().trim_start_matches("url: ")))?;
    state
        .config
        .webhook_targets
        .check(url)
        .await
        .map(|_| ())
        .map_err(|reason| ApiError::invalid("url", reason))
}

/// Create a webhook subscription; the answer carries its secret, once.
///
/// Roles: ADMIN, SUPERVISOR (for their station; `personal_data` is ADMIN's).
///
/// Deliveries follow the Standard Webhooks specification (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`), one POST per matching report event from
/// this command's position on, in log order, at least once.
#[utoipa::path(
    post,
    path = "/webhooks",
    operation_id = "create_webhook",
    tag = "webhooks",
    params(CommandHeaders),
    request_body = WebhookBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new subscription and its secret", body = WrittenWebhook),
        CreationErrors,
    )
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    cmd: Cmd<WebhookBody>,
) -> ApiResult<(StatusCode, Json<WrittenWebhook>)> {
    let by = caller.principal();
    webhook::may_manage(&by)?;
    let b = cmd.body;
    let mut v = Validator::new();
    let area = b.area.as_ref().and_then(|a| area(&mut v, a));
    v.finish()?;
    check_target(&state, &b.url).await?;
    let new = NewWebhook {
        url: b.url,
        event_types: b.event_types,
        station_id: b.station_id.map(StationId::new),
        area,
        personal_data: b.personal_data,
    };
    let meta = cmd.ctx.meta(by.actor());
    let out = webhook::create(&state.app, &by, &meta, new).await?;
    Ok((StatusCode::CREATED, Json(WrittenWebhook::of(out))))
}

/// The changes to a subscription; a field left out is kept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditWebhookBody {
    #[serde(default)]
    url: Option<String>,
    /// The whole new list (empty: every report event).
    #[serde(default)]
    event_types: Option<Vec<String>>,
    /// A GeoJSON `Polygon`, or `null` to remove the area.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    area: Patch<serde_json::Value>,
    /// ADMIN only to set it `true`.
    #[serde(default)]
    personal_data: Option<bool>,
    /// `true` resumes a disabled subscription where it stopped.
    #[serde(default)]
    enabled: Option<bool>,
}

/// Edit a webhook subscription: target, filter, personal data, enabled.
///
/// Roles: ADMIN, SUPERVISOR (their station's; `personal_data: true` is ADMIN's).
///
/// Enabling a subscription disabled after failures resumes delivery at the event that
/// failed. An edit that changes nothing appends nothing.
#[utoipa::path(
    patch,
    path = "/webhooks/{id}",
    operation_id = "edit_webhook",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The subscription"), CommandHeaders),
    request_body = EditWebhookBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The subscription after the edit", body = WrittenWebhook),
        CommandErrors,
    )
)]
async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<EditWebhookBody>,
) -> ApiResult<Json<WrittenWebhook>> {
    let by = caller.principal();
    webhook::may_manage(&by)?;
    let b = cmd.body;
    let mut v = Validator::new();
    let area = match &b.area {
        Patch::Absent => None,
        Patch::Null => Some(None),
        Patch::Value(a) => area(&mut v, a).map(Some),
    };
    v.finish()?;
    if let Some(url) = &b.url {
        check_target(&state, url).await?;
    }
    let changes = WebhookChanges {
        url: b.url,
        event_types: b.event_types,
        area,
        personal_data: b.personal_data,
        enabled: b.enabled,
    };
    let meta = cmd.ctx.meta(by.actor());
    let out = webhook::change(&state.app, &by, &meta, id, Change::Update(changes)).await?;
    Ok(Json(WrittenWebhook::of(out)))
}

/// Delete a webhook subscription: nothing more is delivered.
///
/// Roles: ADMIN, SUPERVISOR (their station's).
#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    operation_id = "delete_webhook",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The subscription"), CommandHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The deleted subscription", body = WrittenWebhook),
        CommandErrors,
    )
)]
async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<crate::routes::crimes::NoBody>,
) -> ApiResult<Json<WrittenWebhook>> {
    let by = caller.principal();
    let meta = cmd.ctx.meta(by.actor());
    let out = webhook::delete(&state.app, &by, &meta, id, state.app.vault()).await?;
    Ok(Json(WrittenWebhook::of(out)))
}

/// A rotation of the signing secret.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// How long the previous secret still signs (each delivery then carries both
    /// signatures): 0 to 604800 seconds, 86400 by default.
    #[serde(default)]
    overlap_seconds: Option<u64>,
}

/// Rotate a subscription's secret; the answer carries the new one, once.
///
/// Roles: ADMIN, SUPERVISOR (their station's).
#[utoipa::path(
    post,
    path = "/webhooks/{id}/rotate-secret",
    operation_id = "rotate_webhook_secret",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The subscription"), CommandHeaders),
    request_body = RotateBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The subscription and its new secret", body = WrittenWebhook),
        CommandErrors,
    )
)]
async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<RotateBody>,
) -> ApiResult<Json<WrittenWebhook>> {
    let by = caller.principal();
    webhook::may_manage(&by)?;
    let overlap_secs = cmd.body.overlap_seconds.unwrap_or(OVERLAP_DEFAULT);
    if overlap_secs > OVERLAP_MAX {
        return Err(ApiError::invalid(
            "overlap_seconds",
            format!("must be 0 to {OVERLAP_MAX}"),
        ));
    }
    let meta = cmd.ctx.meta(by.actor());
    let out = webhook::change(&state.app, &by, &meta, id, Change::Rotate { overlap_secs }).await?;
    Ok(Json(WrittenWebhook::of(out)))
}

/// Deliver again from a log position.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// The first log position to deliver again (1 or more); every matching event from
    /// there on is delivered again, in order, under the same `webhook-id`s.
    from_position: u64,
}

/// Replay a subscription's deliveries from a log position.
///
/// Roles: ADMIN, SUPERVISOR (their station's).
///
/// A receiver that was down misses nothing: replay from the last position it stored.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/replay",
    operation_id = "replay_webhook",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The subscription"), CommandHeaders),
    request_body = ReplayBody,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Replay recorded; the deliverer moves back", body = WrittenWebhook),
        CommandErrors,
    )
)]
async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<ReplayBody>,
) -> ApiResult<(StatusCode, Json<WrittenWebhook>)> {
    let by = caller.principal();
    webhook::may_manage(&by)?;
    let from_position = cmd.body.from_position;
    let meta = cmd.ctx.meta(by.actor());
    let out = webhook::change(&state.app, &by, &meta, id, Change::Replay { from_position }).await?;
    Ok((StatusCode::ACCEPTED, Json(WrittenWebhook::of(out))))
}

/// One delivery of the ledger.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// The event's log position.
    pub position: i64,
    /// The `webhook-id` it was sent under (the same on every attempt and replay).
    pub message_id: String,
    pub event_type: String,
    /// `DELIVERED`, `RETRYING` or `DEAD`.
    pub status: String,
    pub attempts: i32,
    /// Why the last attempt failed (no response body: a status, a timeout, a refusal).
    pub last_error: Option<String>,
    /// The receiver's last HTTP status.
    pub last_status: Option<i32>,
    /// Milliseconds of the last attempt.
    pub latency_ms: Option<i32>,
    pub first_attempt_at: DateTime<Utc>,
    pub last_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(r: DeliveryRow) -> Self {
        DeliveryView {
            position: r.position,
            message_id: r.message_id,
            event_type: r.event_type,
            status: r.status,
            attempts: r.attempts,
            last_error: r.last_error,
            last_status: r.last_status,
            latency_ms: r.latency_ms,
            first_attempt_at: r.first_attempt_at,
            last_attempt_at: r.last_attempt_at,
            delivered_at: r.delivered_at,
        }
    }
}

/// One page of deliveries, by log position.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page (null: last page).
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Deliveries of this log position and later.
    #[serde(default)]
    #[param(minimum = 1)]
    from_position: Option<u64>,
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

/// A subscription's deliveries: status, attempts, last error, latency.
///
/// Roles: ADMIN, SUPERVISOR (their station's).
#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    operation_id = "list_webhook_deliveries",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The subscription"), DeliveryParams, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        ListErrors,
        (status = 404, response = crate::openapi::NotFound),
    )
)]
async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    Path(id): Path<Uuid>,
    Q(p): Q<DeliveryParams>,
) -> ApiResult<Json<DeliveryPage>> {
    visible(&state, &caller.principal(), id).await?;
    let pg = page(p.limit, p.cursor)?;
    let from = p
        .from_position
        .map(|f| i64::try_from(f).map_err(|_| ApiError::invalid("from_position", "too large")))
        .transpose()?;
    let Page { items, next_cursor } = queries::list_deliveries(&state.pool, id, from, &pg).await?;
    Ok(Json(DeliveryPage {
        items: items.into_iter().map(DeliveryView::from).collect(),
        next_cursor,
    }))
}
