//! The devices a staff account is notified on (`/me/devices`, ADR 0032, ADR 0038): Web
//! Push subscriptions (RFC 8030) and device gateways (Standard Webhooks POSTs signed
//! with the device's own secret), registered, listed and removed by their owner only.
//! Parses and checks a subscription strictly — the endpoint's shape and where it resolves (the
//! webhooks' SSRF rules and operator allow-list, `webhook_target`), the keys' encoding
//! and that `p256dh` is a point on P-256 — then calls
//! `precinct_app::commands::device`. Endpoints are personal data: sealed in the log,
//! answered to their owner alone, unreadable after erasure.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use precinct_app::commands::device::{self, DeviceWritten, NewDevice};
use precinct_domain::device::{check_endpoint, Device, PushKeys, DEVICES_MAX};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{Cmd, Path};
use crate::openapi::{CommandErrors, CommandHeaders, CreationErrors};
use crate::problem::{ApiError, ApiResult};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me/devices", get(list).post(register))
        .route("/me/devices/{id}", delete(remove))
}

#[derive(OpenApi)]
#[openapi(paths(list, register, remove))]
pub struct Api;

/// One of the caller's devices (only its owner ever sees it).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    pub id: Uuid,
    /// `WEB_PUSH` or `GATEWAY`.
    pub kind: String,
    /// The push endpoint or the gateway's URL (null once the owner's personal data is
    /// erased).
    pub endpoint: Option<String>,
    pub registered_at: DateTime<Utc>,
}

impl DeviceView {
    fn of(d: &Device) -> Self {
        DeviceView {
            id: d.id.as_uuid(),
            kind: d.kind.as_str().to_owned(),
            endpoint: d.endpoint.as_str().map(str::to_owned),
            registered_at: d.registered_at,
        }
    }
}

/// The caller's devices, and what a browser needs to subscribe.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    /// Oldest first.
    pub items: Vec<DeviceView>,
    /// Most devices one account may register.
    pub max: usize,
    /// The server's VAPID public key (base64url, uncompressed P-256): pass it as
    /// `applicationServerKey` to `PushManager.subscribe`. Null: Web Push is not
    /// configured on this server.
    pub vapid_public_key: Option<String>,
}

/// A device registered: the device and the log position of its event.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrittenDevice {
    #[serde(flatten)]
    pub device: DeviceView,
    pub position: u64,
    /// A gateway's signing secret (`whsec_<base64>`, Standard Webhooks): keep it, it is
    /// never shown again. Absent for Web Push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WrittenDevice {
    fn of(out: DeviceWritten) -> Self {
        WrittenDevice {
            device: DeviceView::of(&out.device),
            position: out.position,
            secret: out.secret,
        }
    }
}

/// A device removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemovedDevice {
    pub id: Uuid,
    pub position: u64,
}

/// The kind of device.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub enum DeviceKindBody {
    /// A Web Push subscription (`PushSubscription.toJSON()` of a browser).
    #[serde(rename = "web_push")]
    WebPush,
    /// A device gateway: an HTTPS endpoint that gets each notification as a Standard
    /// Webhooks POST, signed with the secret answered on registration.
    #[serde(rename = "gateway")]
    Gateway,
}

/// A subscription's keys, base64url as the browser gives them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeysBody {
    /// The subscription's P-256 public key: 65 bytes, uncompressed (`0x04 ‖ X ‖ Y`).
    p256dh: String,
    /// The subscription's authentication secret: 16 bytes.
    auth: String,
}

/// A device to notify: a Web Push subscription, or a device gateway.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceBody {
    kind: DeviceKindBody,
    /// The push service's endpoint, or the gateway's URL: `https://…`, resolving to
    /// public addresses (the operator's webhook allow-list may admit others).
    endpoint: String,
    /// Web Push only (required there); a gateway has none.
    #[serde(default)]
    keys: Option<KeysBody>,
    /// `PushSubscription.expirationTime`, accepted and ignored.
    #[serde(default, rename = "expirationTime")]
    #[schema(value_type = Option<i64>)]
    #[allow(dead_code)]
    expiration_time: Option<serde_json::Value>,
}

/// List the caller's devices.
///
/// Roles: PATROL, DISPATCHER, SUPERVISOR, ADMIN (each their own devices only).
#[utoipa::path(
    get,
    path = "/me/devices",
    operation_id = "list_my_devices",
    tag = "devices",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's devices", body = DeviceList),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<DeviceList>> {
    let by = caller.principal();
    let devices = device::list(&state.app.for_queries(), &by).await?;
    Ok(Json(DeviceList {
        items: devices.iter().map(DeviceView::of).collect(),
        max: DEVICES_MAX,
        vapid_public_key: state.config.vapid_public_key.clone(),
    }))
}

/// Register a device to be notified on: a Web Push subscription or a device gateway.
///
/// Roles: PATROL, DISPATCHER, SUPERVISOR, ADMIN. A PATROL officer is notified on every
/// registered device when a report is assigned or reassigned to their patrol and when
/// the desk asks to notify it. At most 10 devices per account (409 beyond, and for an
/// endpoint already registered); a malformed subscription, an endpoint that is not
/// `https` or resolves to a forbidden address, keys missing for Web Push or given for a
/// gateway are 422, and nothing is stored. 503 for Web Push when it is not configured
/// on the server. A gateway's answer carries its signing `secret`, shown only here: each
/// notification is POSTed to it as JSON with the Standard Webhooks headers
/// (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
#[utoipa::path(
    post,
    path = "/me/devices",
    operation_id = "register_my_device",
    tag = "devices",
    params(CommandHeaders),
    request_body = DeviceBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The device registered", body = WrittenDevice),
        CreationErrors,
    )
)]
async fn register(
    State(state): State<AppState>,
    caller: Caller,
    cmd: Cmd<DeviceBody>,
) -> ApiResult<(StatusCode, Json<WrittenDevice>)> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    device::may_register(&by)?;
    let b = cmd.body;
    let new = match (b.kind, &b.keys) {
        (DeviceKindBody::WebPush, Some(keys)) => {
            if state.config.vapid_public_key.is_none() {
                return Err(ApiError::Unavailable(
                    "Web Push is not configured on this server (no VAPID key)".into(),
                ));
            }
            NewDevice::WebPush(check_subscription(&b.endpoint, keys)?)
        }
        (DeviceKindBody::WebPush, None) => {
            return Err(ApiError::invalid(
                "keys",
                "a Web Push subscription needs its keys",
            ));
        }
        (DeviceKindBody::Gateway, None) => {
            check_endpoint(&b.endpoint).map_err(|e| {
                ApiError::invalid("endpoint", e.to_string().trim_start_matches("endpoint: "))
            })?;
            NewDevice::Gateway
        }
        (DeviceKindBody::Gateway, Some(_)) => {
            return Err(ApiError::invalid(
                "keys",
                "a gateway has no keys: its signing secret is drawn by the server",
            ));
        }
    };
    state
        .config
        .webhook_targets
        .check(&b.endpoint)
        .await
        .map_err(|reason| ApiError::invalid("endpoint", reason))?;
    let out = device::register(&state.app, &by, &meta, b.endpoint, new).await?;
    Ok((StatusCode::CREATED, Json(WrittenDevice::of(out))))
}

/// The endpoint's shape and the keys (422 naming every field that is wrong).
fn check_subscription(endpoint: &str, keys: &KeysBody) -> ApiResult<PushKeys> {
    let mut errors = Vec::new();
    if let Err(e) = check_endpoint(endpoint) {
        errors.push(e);
    }
    let parsed = match PushKeys::parse(&keys.p256dh, &keys.auth) {
        Ok((keys, point)) => {
            if p256::PublicKey::from_sec1_bytes(&point).is_err() {
                errors.push(precinct_domain::device::DeviceError::Invalid {
                    field: "keys.p256dh",
                    reason: "is not a point on the P-256 curve".into(),
                });
            }
            Some(keys)
        }
        Err(e) => {
            errors.push(e);
            None
        }
    };
    match (errors.is_empty(), parsed) {
        (true, Some(keys)) => Ok(keys),
        _ => Err(ApiError::Invalid(
            errors
                .into_iter()
                .map(|e| {
                    let field = precinct_domain::DomainError::field(&e).unwrap_or("body");
                    crate::problem::FieldError {
                        field: field.to_owned(),
                        reason: e
                            .to_string()
                            .trim_start_matches(&format!("{field}: "))
                            .to_owned(),
                    }
                })
                .collect(),
        )),
    }
}

/// Remove one of the caller's devices (another account's device is 404).
///
/// Roles: PATROL, DISPATCHER, SUPERVISOR, ADMIN (their own devices).
#[utoipa::path(
    delete,
    path = "/me/devices/{id}",
    operation_id = "remove_my_device",
    tag = "devices",
    params(("id" = Uuid, Path, description = "The device"), CommandHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The device removed", body = RemovedDevice),
        CommandErrors,
    )
)]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<crate::routes::crimes::NoBody>,
) -> ApiResult<Json<RemovedDevice>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let position = device::remove(&state.app, &by, &meta, id).await?;
    Ok(Json(RemovedDevice { id, position }))
}
