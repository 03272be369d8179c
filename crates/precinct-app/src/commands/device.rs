//! The devices an account is notified on (`/me/devices`, ADR 0032, ADR 0038): register
//! a Web Push subscription or a device gateway (its `whsec_` signing secret drawn here,
//! shown to the owner once), list and remove one's own — and expire, which the push deliverer runs
//! when a push service answers 404 or 410. Every staff account may register devices
//! (PATROL officers are notified of their patrol's assignments; the desk's roles will
//! be notified of SLA escalations); a CITIZEN may not. Each account reaches only its own
//! devices: its stream is `devices.<its id>`, so another account's device is not found.
//! Endpoints and keys are sealed under the account's own key before the append.

use precinct_domain::device::{Device, DeviceCommand, Devices, PushKeys, Reach};
use precinct_domain::ids::{AccountId, DeviceId};
use precinct_domain::values::Role;
use precinct_eventlog::{Actor, CommandMeta, EventStore};
use uuid::Uuid;

use crate::policy::Principal;
use crate::{ids, App, AppError};

/// Who may register devices: staff.
pub const MAY_REGISTER: &[Role] = &[
    Role::Patrol,
    Role::Dispatcher,
    Role::Supervisor,
    Role::Admin,
];

/// A device after a command, and the log position of its event.
#[derive(Debug)]
pub struct DeviceWritten {
    pub device: Device,
    pub position: u64,
    /// A gateway's signing secret, answered on registration only (a retry with the same
    /// idempotency key answers the same secret, read back from the log).
    pub secret: Option<String>,
}

/// What to register.
#[derive(Debug, Clone)]
pub enum NewDevice {
    /// A Web Push subscription's keys (checked for being a curve point by the caller).
    WebPush(PushKeys),
    /// A device gateway: notifications POSTed as Standard Webhooks, signed with a fresh
    /// secret.
    Gateway,
}

/// May `by` have devices at all?
pub fn may_register(by: &Principal) -> Result<(), AppError> {
    by.require(MAY_REGISTER)
}

/// Registers a device for `by` (the endpoint was checked for where it resolves by the
/// caller).
pub async fn register<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    endpoint: String,
    new: NewDevice,
) -> Result<DeviceWritten, AppError> {
    may_register(by)?;
    let account = by.id.as_uuid();
    let device_id = DeviceId::new(ids::derived_id(meta.command_id, "device"));
    let account_id = by.id;
    let out = app
        .run::<Devices>(meta, account, async move |uow| {
            let at = uow.now();
            uow.execute::<Devices>(
                account,
                DeviceCommand::Register {
                    account_id,
                    device_id,
                    endpoint: endpoint.clone(),
                    reach: match &new {
                        NewDevice::WebPush(keys) => Reach::WebPush(keys.clone()),
                        NewDevice::Gateway => Reach::Gateway {
                            secret: super::webhook::new_secret(),
                        },
                    },
                    at,
                },
            )
            .await?;
            Ok(())
        })
        .await?;
    let device = out
        .state::<Devices>(account)
        .and_then(|d| d.get(device_id))
        .cloned()
        .ok_or(AppError::NotFound)?;
    let secret = device.gateway().map(|(_, secret)| secret);
    Ok(DeviceWritten {
        device,
        position: out.position,
        secret,
    })
}

/// `by`'s devices, oldest first (endpoints opened: only the owner calls this).
pub async fn list<S: EventStore>(app: &App<S>, by: &Principal) -> Result<Vec<Device>, AppError> {
    may_register(by)?;
    let (devices, _) = app.load::<Devices>(by.id.as_uuid()).await?;
    Ok(devices.devices)
}

/// Removes `by`'s device `id` (another account's device: not found).
pub async fn remove<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    id: Uuid,
) -> Result<u64, AppError> {
    may_register(by)?;
    let account = by.id.as_uuid();
    let out = app
        .run::<Devices>(meta, account, async move |uow| {
            let at = uow.now();
            uow.execute::<Devices>(
                account,
                DeviceCommand::Remove {
                    device_id: DeviceId::new(id),
                    at,
                },
            )
            .await?;
            Ok(())
        })
        .await?;
    Ok(out.position)
}

/// Removes a device whose push service answered `status` (404 or 410), run by the
/// push deliverer as Precinct itself. The command id derives from the device, so two
/// deliverers (or a restarted one) record it once; a device already gone: nothing.
pub async fn expire<S: EventStore>(
    app: &App<S>,
    account: AccountId,
    device: DeviceId,
    status: u16,
) -> Result<(), AppError> {
    let command_id = Uuid::new_v5(&device.as_uuid(), b"device-expired");
    let meta = CommandMeta::new(command_id, Actor::System);
    let stream = account.as_uuid();
    let result = app
        .run::<Devices>(&meta, stream, async move |uow| {
            let at = uow.now();
            uow.execute::<Devices>(
                stream,
                DeviceCommand::Expire {
                    device_id: device,
                    status,
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
