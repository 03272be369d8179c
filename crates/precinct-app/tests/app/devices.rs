//! Devices for push notifications at the application layer (ADR 0033): staff register,
//! list and remove their own devices (a citizen has none); the push deliverer expires a
//! device its push service gave up on, once. Also the role gates checked before a
//! request's fields are parsed, for every role.

use crate::common::World;
use precinct_app::commands::device::{self, NewDevice};
use precinct_app::commands::{crime_type, invite, station, station_sla, webhook};
use precinct_app::{AppError, Denied, Principal};
use precinct_domain::device::{DeviceError, Devices};
use precinct_domain::ids::{AccountId, StationId};
use precinct_domain::sla::SlaPolicy;
use precinct_domain::values::Role;
use uuid::Uuid;

#[tokio::test]
async fn an_officer_registers_lists_and_removes_their_own_gateway() {
    let w = World::new().await;
    let meta = w.meta(&w.officer);
    let made = device::register(
        &w.app,
        &w.officer,
        &meta,
        "https://gateway.example.com/push".into(),
        NewDevice::Gateway,
    )
    .await
    .expect("register");
    let secret = made.secret.clone().expect("a gateway's secret, once");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let listed = device::list(&w.app, &w.officer).await.expect("list");
    assert_eq!(
        listed.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![made.device.id]
    );
    // Nobody else lists it or removes it.
    assert!(device::list(&w.app, &w.partner)
        .await
        .expect("partner")
        .is_empty());
    let meta = w.meta(&w.partner);
    let mark = w.mark();
    let err = device::remove(&w.app, &w.partner, &meta, made.device.id.as_uuid())
        .await
        .expect_err("another account's device");
    assert_eq!(
        err.domain_error::<DeviceError>(),
        Some(&DeviceError::NotFound),
        "{err:?}"
    );
    assert_eq!(w.mark(), mark);
    // Its owner does.
    let mark = w.mark();
    let meta = w.meta(&w.officer);
    let position = device::remove(&w.app, &w.officer, &meta, made.device.id.as_uuid())
        .await
        .expect("remove");
    assert_eq!(position, w.mark());
    assert!(position > mark);
    assert!(device::list(&w.app, &w.officer)
        .await
        .expect("list")
        .is_empty());
    // A citizen has no devices.
    let r = device::list(&w.app, &w.citizen).await;
    assert!(matches!(r, Err(AppError::Forbidden(Denied::Role))), "{r:?}");
}

#[tokio::test]
async fn a_device_its_push_service_gave_up_on_is_removed_once() {
    let w = World::new().await;
    let meta = w.meta(&w.dispatcher);
    let made = device::register(
        &w.app,
        &w.dispatcher,
        &meta,
        "https://gateway.example.com/desk".into(),
        NewDevice::Gateway,
    )
    .await
    .expect("register");
    let mark = w.mark();
    for _ in 0..2 {
        device::expire(&w.app, w.dispatcher.id, made.device.id, 410)
            .await
            .expect("expire");
    }
    assert_eq!(
        w.appended_since(mark),
        crate::common::events(&[("devices", "DeviceRemoved")])
    );
    assert!(w
        .state::<Devices>(w.dispatcher.id.as_uuid())
        .await
        .devices
        .is_empty());
}

fn as_role(role: Role) -> Principal {
    Principal {
        id: AccountId::new(Uuid::new_v4()),
        role,
        station_id: (!matches!(role, Role::Admin | Role::Citizen))
            .then(|| StationId::new(Uuid::new_v4())),
    }
}

#[test]
fn each_gate_lets_in_its_roles_and_no_other() {
    type Gate = fn(&Principal) -> Result<(), AppError>;
    let gates: [(&str, Gate, &[Role]); 6] = [
        ("crime types", crime_type::may_change, &[Role::Admin]),
        ("stations", station::may_create, &[Role::Admin]),
        (
            "invites",
            invite::may_invite,
            &[Role::Admin, Role::Supervisor],
        ),
        (
            "SLA policies",
            station_sla::may_set,
            &[Role::Admin, Role::Supervisor],
        ),
        (
            "webhooks",
            webhook::may_manage,
            &[Role::Admin, Role::Supervisor],
        ),
        (
            "devices",
            device::may_register,
            &[
                Role::Patrol,
                Role::Dispatcher,
                Role::Supervisor,
                Role::Admin,
            ],
        ),
    ];
    for (what, gate, allowed) in gates {
        for role in [
            Role::Citizen,
            Role::Patrol,
            Role::Dispatcher,
            Role::Supervisor,
            Role::Admin,
        ] {
            let r = gate(&as_role(role));
            if allowed.contains(&role) {
                assert!(r.is_ok(), "{what}: {role:?} refused: {r:?}");
            } else {
                assert!(
                    matches!(r, Err(AppError::Forbidden(Denied::Role))),
                    "{what}: {role:?} let in: {r:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_stations_sla_policy_is_set_by_an_admin_or_its_own_supervisor() {
    let w = World::new().await;
    let set = |by: Principal, station: StationId| {
        let meta = w.meta(&by);
        let app = w.app.clone();
        async move { station_sla::set(&app, &by, &meta, station, SlaPolicy::default()).await }
    };
    let mine = set(w.supervisor, w.station).await.expect("own station");
    assert_eq!(mine.id, w.station);
    set(w.admin, w.other_station)
        .await
        .expect("admin, any station");
    let theirs = set(w.supervisor, w.other_station).await;
    assert!(matches!(theirs, Err(AppError::NotFound)), "{theirs:?}");
    let nowhere = set(w.admin, StationId::new(Uuid::new_v4())).await;
    assert!(matches!(nowhere, Err(AppError::NotFound)), "{nowhere:?}");
}
