//! An account's devices (ADR 0032, ADR 0038): a Web Push subscription's keys checked by
//! shape, a device gateway's URL and signing secret,
//! at most ten devices, one endpoint once, removal by id, expiry after the push service
//! said so (idempotent); and "Notify officer" on a report, which needs an open
//! assignment.

mod common;

use common::{given, given_nothing, t, uuid};
use precinct_domain::device::*;
use precinct_domain::ids::{AccountId, DeviceId};
use precinct_domain::{DomainError, ErrorKind};

/// RFC 8291's example subscription keys.
const P256DH: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

fn account() -> AccountId {
    AccountId::new(uuid(30))
}

fn keys() -> PushKeys {
    PushKeys {
        p256dh: P256DH.into(),
        auth: AUTH.into(),
    }
}

fn register(n: u128, endpoint: &str) -> DeviceCommand {
    DeviceCommand::Register {
        account_id: account(),
        device_id: DeviceId::new(uuid(70 + n)),
        endpoint: endpoint.into(),
        reach: Reach::WebPush(keys()),
        at: t(0),
    }
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn register_gateway(n: u128, url: &str, secret: &str) -> DeviceCommand {
    DeviceCommand::Register {
        account_id: account(),
        device_id: DeviceId::new(uuid(70 + n)),
        endpoint: url.into(),
        reach: Reach::Gateway {
            secret: secret.into(),
        },
        at: t(0),
    }
}

fn registered(n: u128, endpoint: &str) -> DeviceEvent {
    DeviceRegistered {
        account_id: account(),
        device_id: DeviceId::new(uuid(70 + n)),
        kind: DeviceKind::WebPush,
        endpoint: serde_json::json!(endpoint),
        keys: serde_json::json!({"p256dh": P256DH, "auth": AUTH}),
        at: t(0),
    }
    .into()
}

#[test]
fn a_subscription_is_registered_under_its_owners_key() {
    let state = given_nothing::<Devices>()
        .when(register(0, "https://push.example.org/a"))
        .then_events(vec![registered(0, "https://push.example.org/a")]);
    assert_eq!(state.devices.len(), 1);
    assert_eq!(
        precinct_domain::Aggregate::data_subject(&state),
        Some(account().as_uuid())
    );
    let (endpoint, k) = state.devices[0].subscription().expect("opened");
    assert_eq!(
        (endpoint.as_str(), k),
        ("https://push.example.org/a", keys())
    );
}

#[test]
fn a_gateway_is_registered_with_its_secret_sealed_and_is_no_push_subscription() {
    let state = given_nothing::<Devices>()
        .when(register_gateway(
            1,
            "https://gw.example.org/precinct",
            SECRET,
        ))
        .then_events(vec![DeviceRegistered {
            account_id: account(),
            device_id: DeviceId::new(uuid(71)),
            kind: DeviceKind::Gateway,
            endpoint: serde_json::json!("https://gw.example.org/precinct"),
            keys: serde_json::json!({ "secret": SECRET }),
            at: t(0),
        }
        .into()]);
    let d = &state.devices[0];
    assert_eq!(
        d.gateway(),
        Some(("https://gw.example.org/precinct".into(), SECRET.into()))
    );
    assert_eq!(d.subscription(), None, "a gateway has no push keys");
    // A Web Push device is no gateway; and one URL is registered once, whatever kind.
    let push = given::<Devices>([registered(0, "https://push.example.org/a")]);
    assert_eq!(push.state().devices[0].gateway(), None);
    push.when(register_gateway(2, "https://push.example.org/a", SECRET))
        .then_err(DeviceError::AlreadyRegistered);
    // Erased: the sealed fields are null and nothing opens.
    let mut erased = d.clone();
    erased.endpoint = serde_json::Value::Null;
    erased.keys = serde_json::Value::Null;
    assert_eq!(erased.gateway(), None);
}

#[test]
fn a_gateway_needs_a_whsec_secret_and_an_http_url() {
    for secret in [
        "",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_c2hvcnQ=",
        "whsec_!!!",
    ] {
        let e = given_nothing::<Devices>()
            .when(register_gateway(1, "https://gw.example.org/a", secret))
            .err();
        assert_eq!(
            (e.kind(), e.field()),
            (ErrorKind::Invalid, Some("secret")),
            "{secret}"
        );
    }
    let e = given_nothing::<Devices>()
        .when(register_gateway(1, "gw.example.org/a", SECRET))
        .err();
    assert_eq!(e.field(), Some("endpoint"));
}

#[test]
fn keys_are_checked_by_shape_and_padding_is_dropped() {
    let (k, point) = PushKeys::parse(&format!("{P256DH}="), &format!("{AUTH}==")).expect("ok");
    assert_eq!(k, keys());
    assert_eq!((point.len(), point[0]), (65, 4));
    for (p256dh, auth, field) in [
        ("not base64!", AUTH, "keys.p256dh"),
        ("BAAA", AUTH, "keys.p256dh"),
        // 65 bytes that are not an uncompressed point (0x02 prefix).
        (
            "AiVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
            AUTH,
            "keys.p256dh",
        ),
        (P256DH, "AAAAAAAAAAAAAAAAAAAA", "keys.auth"),
        (P256DH, "+/+/", "keys.auth"),
    ] {
        let e = PushKeys::parse(p256dh, auth).expect_err(p256dh);
        assert_eq!((e.kind(), e.field()), (ErrorKind::Invalid, Some(field)), "{p256dh} {auth}");
    }
}

#[test]
fn base64url_decodes_every_length_and_refuses_what_no_encoding_gives() {
    assert_eq!(base64url("").expect("empty"), Vec::<u8>::new());
    assert_eq!(base64url("AQ").expect("1"), vec![1]);
    assert_eq!(base64url("AQI").expect("2"), vec![1, 2]);
    assert_eq!(base64url("AQID").expect("3"), vec![1, 2, 3]);
    assert_eq!(base64url("-_8").expect("url alphabet"), vec![0xfb, 0xff]);
    assert!(base64url("AQIDB").is_none(), "5 characters encode nothing");
    assert!(
        base64url("AQ+/").is_none(),
        "the standard alphabet is not base64url"
    );
}

#[test]
fn endpoints_that_are_not_absolute_http_urls_are_refused() {
    for endpoint in [
        "ftp://push.example.org/a",
        "push.example.org/a",
        "https://",
        "https://user@push.example.org/a",
    ] {
        let e = given_nothing::<Devices>().when(register(0, endpoint)).err();
        assert_eq!(e.field(), Some("endpoint"), "{endpoint}");
    }
    let long = format!("https://push.example.org/{}", "a".repeat(ENDPOINT_MAX));
    let e = given_nothing::<Devices>().when(register(0, &long)).err();
    assert_eq!(e.field(), Some("endpoint"));
}

#[test]
fn at_most_ten_devices_and_one_endpoint_once() {
    let ten: Vec<DeviceEvent> = (0..DEVICES_MAX as u128)
        .map(|n| registered(n, &format!("https://push.example.org/{n}")))
        .collect();
    given::<Devices>(ten.clone())
        .when(register(20, "https://push.example.org/new"))
        .then_err(DeviceError::TooMany { max: DEVICES_MAX });
    given::<Devices>(ten[..1].to_vec())
        .when(register(21, "https://push.example.org/0"))
        .then_err(DeviceError::AlreadyRegistered);
    given::<Devices>(ten[..1].to_vec())
        .when(register(0, "https://push.example.org/other"))
        .then_err(DeviceError::AlreadyExists);
    // Removing one makes room.
    let mut nine = ten;
    nine.push(
        DeviceRemoved {
            account_id: account(),
            device_id: DeviceId::new(uuid(70)),
            reason: RemovalReason::Owner,
            status: None,
            at: t(1),
        }
        .into(),
    );
    let events = given::<Devices>(nine.clone())
        .when(register(20, "https://push.example.org/new"))
        .events();
    assert_eq!(events.len(), 1);
    assert_eq!(
        given::<Devices>(nine).state().devices.len(),
        DEVICES_MAX - 1
    );
}

#[test]
fn the_owner_removes_a_device_and_an_unknown_one_is_not_found() {
    let removed = DeviceRemoved {
        account_id: account(),
        device_id: DeviceId::new(uuid(70)),
        reason: RemovalReason::Owner,
        status: None,
        at: t(1),
    };
    let state = given::<Devices>([registered(0, "https://push.example.org/a")])
        .when(DeviceCommand::Remove {
            device_id: DeviceId::new(uuid(70)),
            at: t(1),
        })
        .then_events(vec![removed.clone().into()]);
    assert!(state.devices.is_empty());
    given::<Devices>([registered(0, "https://push.example.org/a"), removed.into()])
        .when(DeviceCommand::Remove {
            device_id: DeviceId::new(uuid(70)),
            at: t(2),
        })
        .then_err(DeviceError::NotFound);
    given_nothing::<Devices>()
        .when(DeviceCommand::Remove {
            device_id: DeviceId::new(uuid(70)),
            at: t(2),
        })
        .then_err(DeviceError::NotFound);
}

#[test]
fn an_expired_device_is_removed_once() {
    let expired = DeviceRemoved {
        account_id: account(),
        device_id: DeviceId::new(uuid(70)),
        reason: RemovalReason::Expired,
        status: Some(410),
        at: t(1),
    };
    let expire = DeviceCommand::Expire {
        device_id: DeviceId::new(uuid(70)),
        status: 410,
        at: t(1),
    };
    given::<Devices>([registered(0, "https://push.example.org/a")])
        .when(expire.clone())
        .then_events(vec![expired.clone().into()]);
    given::<Devices>([registered(0, "https://push.example.org/a"), expired.into()])
        .when(expire.clone())
        .then_no_events();
    given_nothing::<Devices>().when(expire).then_no_events();
}

mod notify {
    use super::common::{given, t, uuid};
    use precinct_domain::ids::{AccountId, PatrolId};
    use precinct_domain::report::*;

    #[test]
    fn notify_needs_an_open_assignment_and_changes_nothing_else() {
        let desk = AccountId::new(uuid(40));
        let submitted = super::common::samples::report_events()
            .into_iter()
            .next()
            .expect("a submission");
        given::<Report>([submitted.clone()])
            .when(ReportCommand::NotifyPatrol { by: desk, at: t(5) })
            .then_err(ReportError::NoPatrol);
        let patrol = PatrolId::new(uuid(20));
        let assigned: ReportEvent = ReportAssigned {
            patrol_id: patrol,
            auto: None,
            at: t(1),
        }
        .into();
        let before = given::<Report>([submitted.clone(), assigned.clone()])
            .state()
            .clone();
        let after = given::<Report>([submitted, assigned])
            .when(ReportCommand::NotifyPatrol { by: desk, at: t(5) })
            .then_events(vec![PatrolNotified {
                patrol_id: patrol,
                by: desk,
                at: t(5),
            }
            .into()]);
        assert_eq!(after.status, before.status);
        assert_eq!(after.updated_at, before.updated_at);
    }
}

// Boundaries found by mutation testing (docs/reliability.md).

#[test]
fn devices_exist_once_one_is_registered_and_kinds_have_their_wire_names() {
    use precinct_domain::Aggregate as _;
    assert!(!given_nothing::<Devices>().state().version_exists());
    assert!(
        given::<Devices>([registered(0, "https://push.example.org/a")])
            .state()
            .version_exists()
    );
    assert_eq!(DeviceKind::WebPush.as_str(), "WEB_PUSH");
    assert_eq!(DeviceKind::Gateway.as_str(), "GATEWAY");
    for kind in [DeviceKind::WebPush, DeviceKind::Gateway] {
        assert_eq!(
            serde_json::to_value(kind).expect("json"),
            serde_json::json!(kind.as_str())
        );
    }
}

#[test]
fn base64url_decodes_lower_case_letters() {
    assert_eq!(base64url("aGVsbG8").expect("hello"), b"hello".to_vec());
    assert_eq!(base64url("Zm9vYmFy").expect("foobar"), b"foobar".to_vec());
    assert_eq!(base64url("enp6").expect("zzz"), b"zzz".to_vec());
}

#[test]
fn an_endpoint_of_exactly_the_longest_length_is_accepted() {
    let head = "https://push.example.org/";
    let endpoint = format!("{head}{}", "a".repeat(ENDPOINT_MAX - head.len()));
    assert_eq!(endpoint.len(), ENDPOINT_MAX);
    let events = given_nothing::<Devices>()
        .when(register(0, &endpoint))
        .events();
    assert_eq!(events.len(), 1);
}
