//! Outbound webhook subscriptions (`/webhooks`, ADR 0028): create, edit, rotate the
//! secret, replay from a position, delete — and disable, which the deliverer runs after
//! a run of failures. An ADMIN manages every subscription; a SUPERVISOR only those of
//! their own station (others are 404 to them), and may not grant personal data. The
//! secret is drawn here (`whsec_` + base64 of 32 random bytes), sealed under the
//! subscription's own key before the append, and handed back only in the answer of the
//! command that drew it.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use precinct_domain::ids::{StationId, WebhookId};
use precinct_domain::values::{Polygon, Role};
use precinct_domain::webhook::{Filter, Webhook, WebhookChanges, WebhookCommand};
use precinct_domain::Aggregate;
use precinct_eventlog::{Actor, CommandMeta, EventStore};
use uuid::Uuid;

use crate::error::Denied;
use crate::policy::Principal;
use crate::ports::KeyStore;
use crate::{ids, App, AppError};

/// Longest overlap during which the previous secret still signs after a rotation.
pub const OVERLAP_MAX_SECS: u64 = 7 * 24 * 3600;

/// A subscription after a command; `secret` only when the command drew a new one.
#[derive(Debug)]
pub struct WebhookWritten {
    pub webhook: Webhook,
    pub secret: Option<String>,
    pub position: u64,
}

/// A new subscription as the caller asked for it.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub event_types: Vec<String>,
    pub station_id: Option<StationId>,
    pub area: Option<Polygon>,
    pub personal_data: bool,
}

/// ADMIN, or SUPERVISOR (for their station; checked per subscription).
pub fn may_manage(by: &Principal) -> Result<(), AppError> {
    by.require(&[Role::Admin, Role::Supervisor])
}

/// May `by` see subscription `w`? ADMIN: all; SUPERVISOR: their station's. Else 404.
pub fn require_visible(by: &Principal, w: &Webhook) -> Result<(), AppError> {
    if !w.version_exists() || w.deleted {
        return Err(AppError::NotFound);
    }
    if by.is_admin() {
        return Ok(());
    }
    match (w.filter.station_id, by.station_id) {
        (Some(s), Some(mine)) if by.role == Role::Supervisor && s == mine => Ok(()),
        _ => Err(AppError::NotFound),
    }
}

/// A fresh secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "{}{}",
        precinct_domain::webhook::SECRET_PREFIX,
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

pub async fn create<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    new: NewWebhook,
) -> Result<WebhookWritten, AppError> {
    may_manage(by)?;
    let mut new = new;
    if !by.is_admin() {
        if new.personal_data {
            return Err(Denied::WebhookPersonalData.into());
        }
        let mine = by.station_id.ok_or(Denied::WebhookStation)?;
        if new.station_id.is_some_and(|s| s != mine) {
            return Err(Denied::WebhookStation.into());
        }
        new.station_id = Some(mine);
    }
    let id = ids::derived_id(meta.command_id, "webhook");
    let created_by = by.id;
    let out = app
        .run::<Webhook>(meta, id, async move |uow| {
            let at = uow.now();
            uow.execute::<Webhook>(
                id,
                WebhookCommand::Create {
                    webhook_id: WebhookId::new(id),
                    url: new.url.clone(),
                    filter: Filter {
                        event_types: new.event_types.clone(),
                        station_id: new.station_id,
                        area: new.area.clone(),
                    },
                    personal_data: new.personal_data,
                    secret: new_secret(),
                    created_by,
                    at,
                },
            )
            .await?;
            Ok(())
        })
        .await?;
    let webhook = out
        .state::<Webhook>(id)
        .cloned()
        .ok_or(AppError::NotFound)?;
    let secret = webhook.secret.as_str().map(str::to_owned);
    Ok(WebhookWritten {
        webhook,
        secret,
        position: out.position,
    })
}

/// What a command other than creation does.
#[derive(Debug, Clone)]
pub enum Change {
    Update(WebhookChanges),
    /// A new secret; the previous one still signs for `overlap_secs`.
    Rotate {
        overlap_secs: u64,
    },
    Replay {
        from_position: u64,
    },
    Delete,
}

/// Runs `change` on subscription `id` for `by` (who must see it).
pub async fn change<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: Uuid,
    change: Change,
) -> Result<WebhookWritten, AppError> {
    may_manage(by)?;
    if let Change::Update(c) = &change {
        if c.personal_data == Some(true) && !by.is_admin() {
            return Err(Denied::WebhookPersonalData.into());
        }
    }
    let by = *by;
    let rotated = matches!(change, Change::Rotate { .. });
    let out = app
        .run::<Webhook>(meta, id, async move |uow| {
            let at = uow.now();
            let current = uow.load::<Webhook>(id).await?;
            require_visible(&by, &current)?;
            // An ADMIN let this subscription receive personal data at its target: nobody
            // else may move that target (a SUPERVISOR would otherwise point it at their
            // own server and replay the log into it).
            if let Change::Update(c) = &change {
                if current.personal_data && !by.is_admin() && c.url.is_some() {
                    return Err(Denied::WebhookPersonalTarget.into());
                }
            }
            let command = match change.clone() {
                Change::Update(changes) => WebhookCommand::Update { changes, at },
                Change::Rotate { overlap_secs } => WebhookCommand::RotateSecret {
                    secret: new_secret(),
                    previous_valid_until: at + overlap(overlap_secs),
                    at,
                },
                Change::Replay { from_position } => WebhookCommand::Replay { from_position, at },
                Change::Delete => WebhookCommand::Delete { at },
            };
            uow.execute::<Webhook>(id, command).await?;
            Ok(())
        })
        .await?;
    let webhook = out
        .state::<Webhook>(id)
        .cloned()
        .ok_or(AppError::NotFound)?;
    let secret = if rotated {
        webhook.secret.as_str().map(str::to_owned)
    } else {
        None
    };
    Ok(WebhookWritten {
        webhook,
        secret,
        position: out.position,
    })
}

/// Deletes subscription `id` (`WebhookDeleted`), then destroys its data key: the
/// signing secrets sealed in the log under it can never be read again (nothing signs
/// with them after a deletion). A retry of the deletion destroys the key again, which
/// succeeds; a key store that fails leaves the subscription deleted and answers 503, so
/// the caller retries.
pub async fn delete<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: Uuid,
    keys: Option<&impl KeyStore>,
) -> Result<WebhookWritten, AppError> {
    let out = change(app, by, meta, id, Change::Delete).await?;
    if let Some(keys) = keys {
        keys.erase(id).await?;
    }
    Ok(out)
}

fn overlap(secs: u64) -> chrono::Duration {
    chrono::Duration::seconds(secs.min(OVERLAP_MAX_SECS) as i64)
}

/// Disables subscription `id` after a run of failed deliveries (run by the deliverer,
/// as Precinct itself). The command id derives from the subscription and the position
/// that failed, so two deliverers (or a restarted one) record it once.
pub async fn disable<S: EventStore>(
    app: &App<S>,
    id: Uuid,
    at_position: u64,
    reason: String,
) -> Result<(), AppError> {
    let command_id = Uuid::new_v5(&id, format!("webhook-disabled|{at_position}").as_bytes());
    let meta = CommandMeta::new(command_id, Actor::System);
    let result = app
        .run::<Webhook>(&meta, id, async move |uow| {
            let at: DateTime<Utc> = uow.now();
            uow.execute::<Webhook>(
                id,
                WebhookCommand::Disable {
                    reason: reason.clone(),
                    at_position,
                    at,
                },
            )
            .await?;
            Ok(())
        })
        .await;
    match result {
        Ok(_) | Err(AppError::Domain { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
