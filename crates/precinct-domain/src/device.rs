//! Devices an account registered for notifications (ADR 0032): one aggregate per
//! account (stream `devices.<account id>`), holding at most [`DEVICES_MAX`] Web Push
//! subscriptions (RFC 8030). Registration and removal are events; a subscription's
//! endpoint and keys are the account's personal data, sealed under the account's own
//! key before they enter the log ([`crate::subject::personal_fields`]), so erasing the
//! account makes them unreadable.
//!
//! [`PushKeys::parse`] checks a subscription's keys by shape (base64url; `p256dh` an
//! uncompressed P-256 point, 65 bytes from `0x04`; `auth` 16 bytes). Not here: whether
//! the point is on the curve (the API checks it with a crypto crate), where the endpoint
//! resolves (IO), who may register (the application layer), and delivery.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{event_enum, Aggregate, DomainError, ErrorKind};
use crate::ids::{AccountId, DeviceId};

/// Most devices one account may have registered at once.
pub const DEVICES_MAX: usize = 10;
/// Longest push endpoint, in bytes.
pub const ENDPOINT_MAX: usize = 2048;
/// Bytes of an uncompressed P-256 public key (`0x04 ‖ X ‖ Y`).
pub const P256DH_LEN: usize = 65;
/// Bytes of a subscription's authentication secret (RFC 8291).
pub const AUTH_LEN: usize = 16;

/// What kind of device: a Web Push subscription, or a device gateway — an HTTPS
/// endpoint of the operator's (an MDM, a pager or radio bridge, a vendor push relay)
/// that gets each notification as a Standard Webhooks POST signed with the device's own
/// `whsec_` secret (ADR 0038).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceKind {
    #[default]
    #[serde(rename = "WEB_PUSH")]
    WebPush,
    #[serde(rename = "GATEWAY")]
    Gateway,
}

impl DeviceKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeviceKind::WebPush => "WEB_PUSH",
            DeviceKind::Gateway => "GATEWAY",
        }
    }
}

/// How a new device is reached: its keys (Web Push) or its signing secret (gateway).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    WebPush(PushKeys),
    /// `whsec_` + base64 of 24 to 64 bytes, drawn by the application.
    Gateway {
        secret: String,
    },
}

impl Reach {
    pub const fn kind(&self) -> DeviceKind {
        match self {
            Reach::WebPush(_) => DeviceKind::WebPush,
            Reach::Gateway { .. } => DeviceKind::Gateway,
        }
    }
}

/// Why a device went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemovalReason {
    /// Its owner removed it.
    #[serde(rename = "OWNER")]
    Owner,
    /// The push service answered 404 or 410: the subscription expired.
    #[serde(rename = "EXPIRED")]
    Expired,
}

/// A Web Push subscription's keys (base64url, as the browser's `PushSubscription`
/// gives them), checked by shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushKeys {
    pub p256dh: String,
    pub auth: String,
}

impl PushKeys {
    /// Checks both keys: base64url (padding allowed, dropped), `p256dh` 65 bytes starting
    /// with `0x04`, `auth` 16 bytes. Returns the keys without padding and the decoded
    /// point (for the curve check outside).
    pub fn parse(p256dh: &str, auth: &str) -> Result<(PushKeys, Vec<u8>), DeviceError> {
        let p = p256dh.trim_end_matches('=');
        let point = base64url(p).ok_or_else(|| invalid("keys.p256dh", "must be base64url"))?;
        if point.len() != P256DH_LEN || point[0] != 0x04 {
            return Err(invalid(
                "keys.p256dh",
                "must be an uncompressed P-256 public key (65 bytes from 0x04)",
            ));
        }
        let a = auth.trim_end_matches('=');
        let secret = base64url(a).ok_or_else(|| invalid("keys.auth", "must be base64url"))?;
        if secret.len() != AUTH_LEN {
            return Err(invalid("keys.auth", "must be 16 bytes"));
        }
        Ok((
            PushKeys {
                p256dh: p.to_owned(),
                auth: a.to_owned(),
            },
            point,
        ))
    }
}

/// Decodes unpadded base64url (RFC 4648 §5); `None` for any other character or a
/// length no encoding has.
pub fn base64url(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        Some(u32::from(v))
    }
    let bytes = s.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let n = chunk.len() - 1;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// Checks an endpoint's shape: an absolute `https://` (or `http://`: whether plain HTTP
/// is allowed is the operator's) URL, as [`crate::webhook::check_url`] checks a
/// webhook target.
pub fn check_endpoint(endpoint: &str) -> Result<(), DeviceError> {
    if endpoint.len() > ENDPOINT_MAX {
        return Err(invalid(
            "endpoint",
            format!("must be at most {ENDPOINT_MAX} bytes"),
        ));
    }
    crate::webhook::check_url(endpoint).map_err(|e| {
        invalid(
            "endpoint",
            e.to_string().trim_start_matches("url: ").to_owned(),
        )
    })
}

event_enum!(
    /// Everything that can happen to an account's devices.
    DeviceEvent {
        DeviceRegistered,
        DeviceRemoved,
    }
);

/// A device registered; `endpoint` and `keys` are sealed in the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceRegistered {
    pub account_id: AccountId,
    pub device_id: DeviceId,
    pub kind: DeviceKind,
    /// The push endpoint (personal: sealed).
    pub endpoint: serde_json::Value,
    /// `{"p256dh": …, "auth": …}` for Web Push, `{"secret": "whsec_…"}` for a gateway
    /// (personal: sealed).
    pub keys: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// A device removed by its owner, or after its push service said it expired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceRemoved {
    pub account_id: AccountId,
    pub device_id: DeviceId,
    pub reason: RemovalReason,
    /// The push service's answer when it expired (404 or 410).
    #[serde(default)]
    pub status: Option<u16>,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DeviceCommand {
    Register {
        account_id: AccountId,
        device_id: DeviceId,
        endpoint: String,
        reach: Reach,
        at: DateTime<Utc>,
    },
    /// By its owner.
    Remove {
        device_id: DeviceId,
        at: DateTime<Utc>,
    },
    /// After a 404 or 410 from the push service; a device already gone: nothing.
    Expire {
        device_id: DeviceId,
        status: u16,
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("no such device")]
    NotFound,
    #[error("at most {max} devices per account; remove one first")]
    TooMany { max: usize },
    #[error("this endpoint is already registered")]
    AlreadyRegistered,
    #[error("a device with this id already exists")]
    AlreadyExists,
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl DomainError for DeviceError {
    fn kind(&self) -> ErrorKind {
        match self {
            DeviceError::NotFound => ErrorKind::NotFound,
            DeviceError::TooMany { .. }
            | DeviceError::AlreadyRegistered
            | DeviceError::AlreadyExists => ErrorKind::Conflict,
            DeviceError::Invalid { .. } => ErrorKind::Invalid,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            DeviceError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> DeviceError {
    DeviceError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// One registered device, as read from the log: `endpoint` and `keys` are opened when
/// the reader holds the account's key, `null` after erasure.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    pub id: DeviceId,
    pub kind: DeviceKind,
    pub endpoint: serde_json::Value,
    pub keys: serde_json::Value,
    pub registered_at: DateTime<Utc>,
}

impl Device {
    /// A Web Push device's endpoint and keys, if they opened and have their shape.
    pub fn subscription(&self) -> Option<(String, PushKeys)> {
        if self.kind != DeviceKind::WebPush {
            return None;
        }
        let endpoint = self.endpoint.as_str()?.to_owned();
        let keys: PushKeys = serde_json::from_value(self.keys.clone()).ok()?;
        Some((endpoint, keys))
    }

    /// A gateway's URL and signing secret, if they opened.
    pub fn gateway(&self) -> Option<(String, String)> {
        if self.kind != DeviceKind::Gateway {
            return None;
        }
        let url = self.endpoint.as_str()?.to_owned();
        let secret = self.keys.get("secret")?.as_str()?.to_owned();
        Some((url, secret))
    }
}

/// An account's devices, folded from its events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Devices {
    exists: bool,
    pub account_id: Option<AccountId>,
    /// Registered and not removed, oldest first.
    pub devices: Vec<Device>,
    /// Every id ever used (a removed device's id is not reused).
    used: Vec<DeviceId>,
}

impl Devices {
    pub fn get(&self, id: DeviceId) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }
}

impl Aggregate for Devices {
    const TYPE: &'static str = "devices";
    type Command = DeviceCommand;
    type Event = DeviceEvent;
    type Error = DeviceError;

    fn handle(&self, cmd: DeviceCommand) -> Result<Vec<DeviceEvent>, DeviceError> {
        match cmd {
            DeviceCommand::Register {
                account_id,
                device_id,
                endpoint,
                reach,
                at,
            } => {
                if self.used.contains(&device_id) {
                    return Err(DeviceError::AlreadyExists);
                }
                check_endpoint(&endpoint)?;
                let kind = reach.kind();
                let keys = match reach {
                    Reach::WebPush(keys) => {
                        let (keys, _) = PushKeys::parse(&keys.p256dh, &keys.auth)?;
                        serde_json::json!({"p256dh": keys.p256dh, "auth": keys.auth})
                    }
                    Reach::Gateway { secret } => {
                        crate::webhook::check_secret(&secret).map_err(|_| {
                            invalid("secret", "must be whsec_ and base64 of 24 to 64 bytes")
                        })?;
                        serde_json::json!({ "secret": secret })
                    }
                };
                if self
                    .devices
                    .iter()
                    .any(|d| d.endpoint.as_str() == Some(endpoint.as_str()))
                {
                    return Err(DeviceError::AlreadyRegistered);
                }
                if self.devices.len() >= DEVICES_MAX {
                    return Err(DeviceError::TooMany { max: DEVICES_MAX });
                }
                Ok(vec![DeviceRegistered {
                    account_id,
                    device_id,
                    kind,
                    endpoint: serde_json::Value::String(endpoint),
                    keys,
                    at,
                }
                .into()])
            }
            DeviceCommand::Remove { device_id, at } => {
                let account_id = self.account_id.ok_or(DeviceError::NotFound)?;
                if self.get(device_id).is_none() {
                    return Err(DeviceError::NotFound);
                }
                Ok(vec![DeviceRemoved {
                    account_id,
                    device_id,
                    reason: RemovalReason::Owner,
                    status: None,
                    at,
                }
                .into()])
            }
            DeviceCommand::Expire {
                device_id,
                status,
                at,
            } => {
                let Some(account_id) = self.account_id else {
                    return Ok(vec![]);
                };
                if self.get(device_id).is_none() {
                    return Ok(vec![]);
                }
                Ok(vec![DeviceRemoved {
                    account_id,
                    device_id,
                    reason: RemovalReason::Expired,
                    status: Some(status),
                    at,
                }
                .into()])
            }
        }
    }

    fn apply(&mut self, event: &DeviceEvent) {
        match event {
            DeviceEvent::DeviceRegistered(e) => {
                self.exists = true;
                self.account_id = Some(e.account_id);
                self.used.push(e.device_id);
                self.devices.push(Device {
                    id: e.device_id,
                    kind: e.kind,
                    endpoint: e.endpoint.clone(),
                    keys: e.keys.clone(),
                    registered_at: e.at,
                });
            }
            DeviceEvent::DeviceRemoved(e) => {
                self.devices.retain(|d| d.id != e.device_id);
            }
        }
    }

    fn version_exists(&self) -> bool {
        self.exists
    }

    /// The account's own subscriptions are sealed with its key.
    fn data_subject(&self) -> Option<uuid::Uuid> {
        self.account_id.map(|a| a.as_uuid())
    }
}
