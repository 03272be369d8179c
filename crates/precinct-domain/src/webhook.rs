//! Outbound webhook subscriptions (ADR 0028): one aggregate per subscription, keyed by
//! its [`WebhookId`]. A subscription names a target URL, a filter (report event types,
//! a station, optionally an area), whether it may receive personal data, and its
//! signing secret (`whsec_…`, Standard Webhooks). Every change is an event; the secret
//! fields are sealed under the subscription's own key before they enter the log
//! ([`crate::subject::sealed_fields`]).
//!
//! [`Filter::matches`] decides whether an event goes to a subscription and
//! [`delivery_data`] what of its payload goes out.
//!
//! Not here: who may change a subscription (the application layer: ADMIN, or a
//! SUPERVISOR for their station; only an ADMIN grants personal data), whether a target
//! resolves to an allowed address (IO: the API and the deliverer), the secret's
//! randomness (the application layer draws it), and delivery itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{event_enum, Aggregate, DomainError, ErrorKind};
use crate::ids::{AccountId, StationId, WebhookId};
use crate::report::ReportEvent;
use crate::values::{GeoPoint, Polygon};

/// Longest target URL, in bytes.
pub const URL_MAX: usize = 2048;
/// Most event types one filter may name.
pub const EVENT_TYPES_MAX: usize = 50;
/// Longest reason a subscription was disabled, in characters.
pub const REASON_MAX: usize = 500;
/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Which events go to a subscription. Empty `event_types`: every report event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    pub event_types: Vec<String>,
    #[serde(default)]
    pub station_id: Option<StationId>,
    #[serde(default)]
    pub area: Option<Polygon>,
}

impl Filter {
    /// Does a report event of `event_type`, about a report of `station` at `point` (as
    /// the report stood at that event), go to this subscription?
    pub fn matches(
        &self,
        event_type: &str,
        station: Option<StationId>,
        point: Option<GeoPoint>,
    ) -> bool {
        if !ReportEvent::TYPES.contains(&event_type) {
            return false;
        }
        if !self.event_types.is_empty() && !self.event_types.iter().any(|t| t == event_type) {
            return false;
        }
        if let Some(s) = self.station_id {
            if station != Some(s) {
                return false;
            }
        }
        if let Some(area) = &self.area {
            match point {
                Some(p) if area.contains(&p) => {}
                _ => return false,
            }
        }
        true
    }
}

/// Fields never sent to a subscription without personal data: the personal fields of
/// [`crate::subject::personal_fields`] and who reported.
pub const IDENTIFYING_FIELDS: &[&str] = &["reporter", "tracking_token_hash"];

/// The payload of event `event_type` as a subscription sees it: without personal and
/// identifying fields unless `personal_data`. An erased field reads as `null` already
/// (the log's opener), so nothing personal goes out after erasure either way.
pub fn delivery_data(
    event_type: &str,
    mut data: serde_json::Value,
    personal_data: bool,
) -> serde_json::Value {
    if !personal_data {
        if let Some(obj) = data.as_object_mut() {
            for f in crate::subject::personal_fields(event_type) {
                obj.remove(*f);
            }
            for f in IDENTIFYING_FIELDS {
                obj.remove(*f);
            }
        }
    }
    data
}

event_enum!(
    /// Everything that can happen to a webhook subscription.
    WebhookEvent {
        WebhookCreated,
        WebhookUpdated,
        WebhookSecretRotated,
        WebhookDisabled,
        WebhookReplayRequested,
        WebhookDeleted,
    }
);

/// A new subscription, enabled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookCreated {
    pub webhook_id: WebhookId,
    pub url: String,
    pub filter: Filter,
    pub personal_data: bool,
    /// `whsec_<base64>`; sealed in the log.
    pub secret: serde_json::Value,
    pub created_by: AccountId,
    pub at: DateTime<Utc>,
}

/// The subscription's editable fields after an edit (all of them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookUpdated {
    pub webhook_id: WebhookId,
    pub url: String,
    pub filter: Filter,
    pub personal_data: bool,
    pub enabled: bool,
    pub at: DateTime<Utc>,
}

/// A new secret; the previous one still signs until `previous_valid_until`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookSecretRotated {
    pub webhook_id: WebhookId,
    /// Sealed in the log.
    pub secret: serde_json::Value,
    pub previous_valid_until: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

/// Delivery stopped after a run of failures (enabled again by an edit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookDisabled {
    pub webhook_id: WebhookId,
    pub reason: String,
    /// The log position whose delivery failed last.
    pub at_position: u64,
    pub at: DateTime<Utc>,
}

/// Deliver again from `from_position` (the deliverer moves its cursor back).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookReplayRequested {
    pub webhook_id: WebhookId,
    pub from_position: u64,
    pub at: DateTime<Utc>,
}

/// The subscription is gone; nothing more is delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookDeleted {
    pub webhook_id: WebhookId,
    pub at: DateTime<Utc>,
}

/// The parts of a subscription an edit may change; `None` keeps a field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub area: Option<Option<Polygon>>,
    pub personal_data: Option<bool>,
    pub enabled: Option<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum WebhookCommand {
    Create {
        webhook_id: WebhookId,
        url: String,
        filter: Filter,
        personal_data: bool,
        secret: String,
        created_by: AccountId,
        at: DateTime<Utc>,
    },
    /// An edit that changes nothing emits nothing.
    Update {
        changes: WebhookChanges,
        at: DateTime<Utc>,
    },
    RotateSecret {
        secret: String,
        previous_valid_until: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// Already disabled: nothing.
    Disable {
        reason: String,
        at_position: u64,
        at: DateTime<Utc>,
    },
    Replay {
        from_position: u64,
        at: DateTime<Utc>,
    },
    Delete {
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("a webhook with this id already exists")]
    AlreadyExists,
    #[error("no such webhook")]
    NotFound,
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl DomainError for WebhookError {
    fn kind(&self) -> ErrorKind {
        match self {
            WebhookError::AlreadyExists => ErrorKind::Conflict,
            WebhookError::NotFound => ErrorKind::NotFound,
            WebhookError::Invalid { .. } => ErrorKind::Invalid,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            WebhookError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> WebhookError {
    WebhookError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Checks a target URL's shape: `https://` or `http://` (whether plain HTTP is allowed
/// is the operator's), a host, no user info, no fragment, no whitespace or control
/// characters, at most [`URL_MAX`] bytes. Where it resolves is checked outside.
pub fn check_url(url: &str) -> Result<(), WebhookError> {
    if url.is_empty() || url.len() > URL_MAX {
        return Err(invalid("url", format!("must be 1 to {URL_MAX} bytes")));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "url",
            "must not contain whitespace or control characters",
        ));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| invalid("url", "must be an absolute https:// URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(invalid("url", "must name a host"));
    }
    if authority.contains('@') {
        return Err(invalid("url", "must not carry user information"));
    }
    if url.contains('#') {
        return Err(invalid("url", "must not have a fragment"));
    }
    Ok(())
}

/// Checks the event types: each a report event type, at most [`EVENT_TYPES_MAX`],
/// duplicates dropped (order kept).
pub fn check_event_types(types: Vec<String>) -> Result<Vec<String>, WebhookError> {
    if types.len() > EVENT_TYPES_MAX {
        return Err(invalid("event_types", format!("at most {EVENT_TYPES_MAX}")));
    }
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        if !ReportEvent::TYPES.contains(&t.as_str()) {
            return Err(invalid(
                "event_types",
                format!("{t:?} is not a report event type"),
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Checks a secret's shape: `whsec_` then base64 of 24 to 64 bytes.
pub fn check_secret(secret: &str) -> Result<(), WebhookError> {
    let body = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or_else(|| invalid("secret", "must start with whsec_"))?;
    let ok = (32..=88).contains(&body.len())
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "secret",
            "must be whsec_ and base64 of 24 to 64 bytes",
        ))
    }
}

/// A subscription's state, folded from its events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Webhook {
    exists: bool,
    pub id: Option<WebhookId>,
    pub url: String,
    pub filter: Filter,
    pub personal_data: bool,
    pub enabled: bool,
    pub deleted: bool,
    /// The secret (as read from the log: opened when the reader has the key, else null).
    pub secret: serde_json::Value,
    /// The previous secret and until when it still signs.
    pub previous_secret: Option<(serde_json::Value, DateTime<Utc>)>,
    pub disabled_reason: Option<String>,
    pub created_by: Option<AccountId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Webhook {
    /// The secrets that sign a delivery at `now`: the current one, and the previous one
    /// during its overlap. Secrets that did not open (null) are left out.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(s) = self.secret.as_str() {
            out.push(s.to_owned());
        }
        if let Some((prev, until)) = &self.previous_secret {
            if now < *until {
                if let Some(s) = prev.as_str() {
                    out.push(s.to_owned());
                }
            }
        }
        out
    }

    fn live(&self) -> Result<WebhookId, WebhookError> {
        match self.id {
            Some(id) if self.exists && !self.deleted => Ok(id),
            _ => Err(WebhookError::NotFound),
        }
    }
}

impl Aggregate for Webhook {
    const TYPE: &'static str = "webhook";
    type Command = WebhookCommand;
    type Event = WebhookEvent;
    type Error = WebhookError;

    fn handle(&self, cmd: WebhookCommand) -> Result<Vec<WebhookEvent>, WebhookError> {
        match cmd {
            WebhookCommand::Create {
                webhook_id,
                url,
                filter,
                personal_data,
                secret,
                created_by,
                at,
            } => {
                if self.exists {
                    return Err(WebhookError::AlreadyExists);
                }
                check_url(&url)?;
                check_secret(&secret)?;
                let filter = Filter {
                    event_types: check_event_types(filter.event_types)?,
                    ..filter
                };
                Ok(vec![WebhookCreated {
                    webhook_id,
                    url,
                    filter,
                    personal_data,
                    secret: serde_json::Value::String(secret),
                    created_by,
                    at,
                }
                .into()])
            }
            WebhookCommand::Update { changes, at } => {
                let webhook_id = self.live()?;
                let url = changes.url.unwrap_or_else(|| self.url.clone());
                check_url(&url)?;
                let filter = Filter {
                    event_types: check_event_types(
                        changes
                            .event_types
                            .unwrap_or_else(|| self.filter.event_types.clone()),
                    )?,
                    station_id: self.filter.station_id,
                    area: changes.area.unwrap_or_else(|| self.filter.area.clone()),
                };
                let personal_data = changes.personal_data.unwrap_or(self.personal_data);
                let enabled = changes.enabled.unwrap_or(self.enabled);
                if url == self.url
                    && filter == self.filter
                    && personal_data == self.personal_data
                    && enabled == self.enabled
                {
                    return Ok(vec![]);
                }
                Ok(vec![WebhookUpdated {
                    webhook_id,
                    url,
                    filter,
                    personal_data,
                    enabled,
                    at,
                }
                .into()])
            }
            WebhookCommand::RotateSecret {
                secret,
                previous_valid_until,
                at,
            } => {
                let webhook_id = self.live()?;
                check_secret(&secret)?;
                if previous_valid_until < at {
                    return Err(invalid("overlap_seconds", "must not be negative"));
                }
                Ok(vec![WebhookSecretRotated {
                    webhook_id,
                    secret: serde_json::Value::String(secret),
                    previous_valid_until,
                    at,
                }
                .into()])
            }
            WebhookCommand::Disable {
                reason,
                at_position,
                at,
            } => {
                let webhook_id = self.live()?;
                if !self.enabled {
                    return Ok(vec![]);
                }
                let reason: String = reason.chars().take(REASON_MAX).collect();
                Ok(vec![WebhookDisabled {
                    webhook_id,
                    reason,
                    at_position,
                    at,
                }
                .into()])
            }
            WebhookCommand::Replay { from_position, at } => {
                let webhook_id = self.live()?;
                if from_position == 0 {
                    return Err(invalid("from_position", "must be at least 1"));
                }
                Ok(vec![WebhookReplayRequested {
                    webhook_id,
                    from_position,
                    at,
                }
                .into()])
            }
            WebhookCommand::Delete { at } => {
                if !self.exists {
                    return Err(WebhookError::NotFound);
                }
                if self.deleted {
                    return Ok(vec![]);
                }
                let webhook_id = self.live()?;
                Ok(vec![WebhookDeleted { webhook_id, at }.into()])
            }
        }
    }

    fn apply(&mut self, event: &WebhookEvent) {
        match event {
            WebhookEvent::WebhookCreated(e) => {
                *self = Webhook {
                    exists: true,
                    id: Some(e.webhook_id),
                    url: e.url.clone(),
                    filter: e.filter.clone(),
                    personal_data: e.personal_data,
                    enabled: true,
                    deleted: false,
                    secret: e.secret.clone(),
                    previous_secret: None,
                    disabled_reason: None,
                    created_by: Some(e.created_by),
                    created_at: e.at,
                    updated_at: e.at,
                };
            }
            WebhookEvent::WebhookUpdated(e) => {
                self.url = e.url.clone();
                self.filter = e.filter.clone();
                self.personal_data = e.personal_data;
                if e.enabled {
                    self.disabled_reason = None;
                }
                self.enabled = e.enabled;
                self.updated_at = e.at;
            }
            WebhookEvent::WebhookSecretRotated(e) => {
                let old = std::mem::replace(&mut self.secret, e.secret.clone());
                self.previous_secret = Some((old, e.previous_valid_until));
                self.updated_at = e.at;
            }
            WebhookEvent::WebhookDisabled(e) => {
                self.enabled = false;
                self.disabled_reason = Some(e.reason.clone());
                self.updated_at = e.at;
            }
            WebhookEvent::WebhookReplayRequested(e) => {
                self.updated_at = e.at;
            }
            WebhookEvent::WebhookDeleted(e) => {
                self.deleted = true;
                self.enabled = false;
                self.updated_at = e.at;
            }
        }
    }

    fn version_exists(&self) -> bool {
        self.exists
    }

    fn data_subject(&self) -> Option<uuid::Uuid> {
        self.id.map(|id| id.as_uuid())
    }
}
