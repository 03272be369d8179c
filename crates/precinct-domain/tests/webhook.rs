//! Webhook subscriptions (ADR 0028): the aggregate's rules (target shape, filter,
//! secret, rotation overlap, disabling, replay, deletion), which events a filter lets
//! through, and what of a payload goes out without personal data.

mod common;

use common::{given, given_nothing, t, uuid};
use precinct_domain::ids::{AccountId, StationId, WebhookId};
use precinct_domain::values::{GeoPoint, Latitude, Longitude, Polygon};
use precinct_domain::webhook::*;
use precinct_domain::{DomainError, ErrorKind};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET2: &str = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk=";

fn id() -> WebhookId {
    WebhookId::new(uuid(60))
}

fn create(url: &str, types: &[&str]) -> WebhookCommand {
    WebhookCommand::Create {
        webhook_id: id(),
        url: url.into(),
        filter: Filter {
            event_types: types.iter().map(|t| t.to_string()).collect(),
            station_id: Some(StationId::new(uuid(61))),
            area: None,
        },
        personal_data: false,
        secret: SECRET.into(),
        created_by: AccountId::new(uuid(30)),
        at: t(0),
    }
}

fn created() -> WebhookEvent {
    WebhookCreated {
        webhook_id: id(),
        url: "https://hooks.example.org/x".into(),
        filter: Filter {
            event_types: vec!["ReportSubmitted".into()],
            station_id: Some(StationId::new(uuid(61))),
            area: None,
        },
        personal_data: false,
        secret: serde_json::json!(SECRET),
        created_by: AccountId::new(uuid(30)),
        at: t(0),
    }
    .into()
}

#[test]
fn a_subscription_is_created_enabled_with_duplicate_types_dropped() {
    let events = given_nothing::<Webhook>()
        .when(create(
            "https://hooks.example.org/x",
            &["ReportSubmitted", "ReportSubmitted"],
        ))
        .events();
    assert_eq!(events, vec![created()]);
    let state = given::<Webhook>(events).state().clone();
    assert!(state.enabled && !state.deleted);
    assert_eq!(state.signing_secrets(t(1)), vec![SECRET.to_owned()]);
}

#[test]
fn targets_and_filters_that_break_a_rule_are_refused_by_field() {
    for (url, field) in [
        ("ftp://hooks.example.org/x", "url"),
        ("https://", "url"),
        ("https://user:pw@hooks.example.org/", "url"),
        ("https://hooks.example.org/x#frag", "url"),
        ("https://hooks.example.org/a b", "url"),
    ] {
        let e = given_nothing::<Webhook>().when(create(url, &[])).err();
        assert_eq!(
            (e.kind(), e.field()),
            (ErrorKind::Invalid, Some(field)),
            "{url}"
        );
    }
    let e = given_nothing::<Webhook>()
        .when(create(
            "https://hooks.example.org/x",
            &["PatrolStatusChanged"],
        ))
        .err();
    assert_eq!(e.field(), Some("event_types"));
    let many: Vec<String> = (0..=EVENT_TYPES_MAX)
        .map(|_| "ReportSubmitted".to_owned())
        .collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let e = given_nothing::<Webhook>()
        .when(create("https://hooks.example.org/x", &refs))
        .err();
    assert_eq!(e.field(), Some("event_types"));
    let long = format!("https://hooks.example.org/{}", "a".repeat(URL_MAX));
    let e = given_nothing::<Webhook>().when(create(&long, &[])).err();
    assert_eq!(e.field(), Some("url"));
}

#[test]
fn a_second_creation_of_one_id_is_a_conflict() {
    given::<Webhook>([created()])
        .when(create("https://hooks.example.org/x", &[]))
        .then_err(WebhookError::AlreadyExists);
}

#[test]
fn an_edit_that_changes_nothing_records_nothing_and_the_station_stays() {
    given::<Webhook>([created()])
        .when(WebhookCommand::Update {
            changes: WebhookChanges {
                url: Some("https://hooks.example.org/x".into()),
                ..Default::default()
            },
            at: t(1),
        })
        .then_no_events();
    let after = given::<Webhook>([created()])
        .when(WebhookCommand::Update {
            changes: WebhookChanges {
                enabled: Some(false),
                personal_data: Some(true),
                ..Default::default()
            },
            at: t(1),
        })
        .then_events(vec![WebhookUpdated {
            webhook_id: id(),
            url: "https://hooks.example.org/x".into(),
            filter: Filter {
                event_types: vec!["ReportSubmitted".into()],
                station_id: Some(StationId::new(uuid(61))),
                area: None,
            },
            personal_data: true,
            enabled: false,
            at: t(1),
        }
        .into()]);
    assert!(!after.enabled && after.personal_data);
}

#[test]
fn after_a_rotation_both_secrets_sign_until_the_overlap_ends() {
    let after = given::<Webhook>([created()])
        .when(WebhookCommand::RotateSecret {
            secret: SECRET2.into(),
            previous_valid_until: t(60),
            at: t(1),
        })
        .then_events(vec![WebhookSecretRotated {
            webhook_id: id(),
            secret: serde_json::json!(SECRET2),
            previous_valid_until: t(60),
            at: t(1),
        }
        .into()]);
    assert_eq!(
        after.signing_secrets(t(59)),
        vec![SECRET2.to_owned(), SECRET.to_owned()]
    );
    assert_eq!(after.signing_secrets(t(60)), vec![SECRET2.to_owned()]);
    let e = given::<Webhook>([created()])
        .when(WebhookCommand::RotateSecret {
            secret: "not-a-secret".into(),
            previous_valid_until: t(60),
            at: t(1),
        })
        .err();
    assert_eq!(e.field(), Some("secret"));
}

#[test]
fn disabling_twice_records_once_and_an_edit_enables_again() {
    let disabled = WebhookDisabled {
        webhook_id: id(),
        reason: "HTTP 500".into(),
        at_position: 9,
        at: t(2),
    };
    let state = given::<Webhook>([created()])
        .when(WebhookCommand::Disable {
            reason: "HTTP 500".into(),
            at_position: 9,
            at: t(2),
        })
        .then_events(vec![disabled.clone().into()]);
    assert_eq!(state.disabled_reason.as_deref(), Some("HTTP 500"));
    given::<Webhook>([created(), disabled.clone().into()])
        .when(WebhookCommand::Disable {
            reason: "again".into(),
            at_position: 10,
            at: t(3),
        })
        .then_no_events();
    let again = given::<Webhook>([created(), disabled.into()])
        .when(WebhookCommand::Update {
            changes: WebhookChanges {
                enabled: Some(true),
                ..Default::default()
            },
            at: t(4),
        })
        .events();
    assert_eq!(again.len(), 1);
    let state = given::<Webhook>([created()].into_iter().chain(again))
        .state()
        .clone();
    assert!(state.enabled && state.disabled_reason.is_none());
}

#[test]
fn replay_needs_a_position_and_a_deleted_subscription_is_gone() {
    given::<Webhook>([created()])
        .when(WebhookCommand::Replay {
            from_position: 0,
            at: t(1),
        })
        .then_err(WebhookError::Invalid {
            field: "from_position",
            reason: "must be at least 1".into(),
        });
    let deleted: WebhookEvent = WebhookDeleted {
        webhook_id: id(),
        at: t(2),
    }
    .into();
    given::<Webhook>([created()])
        .when(WebhookCommand::Delete { at: t(2) })
        .then_events(vec![deleted.clone()]);
    given::<Webhook>([created(), deleted.clone()])
        .when(WebhookCommand::Delete { at: t(3) })
        .then_no_events();
    given::<Webhook>([created(), deleted])
        .when(WebhookCommand::Replay {
            from_position: 1,
            at: t(3),
        })
        .then_err(WebhookError::NotFound);
    given_nothing::<Webhook>()
        .when(WebhookCommand::Delete { at: t(3) })
        .then_err(WebhookError::NotFound);
}

fn point(lat: f64, lon: f64) -> GeoPoint {
    GeoPoint::new(
        Latitude::parse(lat).expect("lat"),
        Longitude::parse(lon).expect("lon"),
    )
}

#[test]
fn a_filter_matches_report_events_of_its_types_station_and_area() {
    let station = StationId::new(uuid(61));
    let area = Polygon::parse(vec![vec![
        [125.0, 7.0],
        [125.2, 7.0],
        [125.2, 7.2],
        [125.0, 7.2],
        [125.0, 7.0],
    ]])
    .expect("area");
    let all = Filter::default();
    assert!(all.matches("ReportSubmitted", None, None));
    assert!(
        !all.matches("PatrolStatusChanged", None, None),
        "report events only"
    );
    assert!(!all.matches("WebhookCreated", None, None));
    let typed = Filter {
        event_types: vec!["ReportResolved".into()],
        ..Filter::default()
    };
    assert!(typed.matches("ReportResolved", None, None));
    assert!(!typed.matches("ReportSubmitted", None, None));
    let scoped = Filter {
        station_id: Some(station),
        area: Some(area),
        ..Filter::default()
    };
    assert!(scoped.matches("ReportSubmitted", Some(station), Some(point(7.1, 125.1))));
    assert!(!scoped.matches(
        "ReportSubmitted",
        Some(StationId::new(uuid(62))),
        Some(point(7.1, 125.1))
    ));
    assert!(!scoped.matches("ReportSubmitted", Some(station), Some(point(7.5, 125.1))));
    assert!(!scoped.matches("ReportSubmitted", Some(station), None));
}

#[test]
fn personal_and_identifying_fields_go_out_only_with_personal_data() {
    let data = serde_json::json!({
        "report_id": "r",
        "title": "Bike stolen",
        "personal": {"description": "d", "street": "s"},
        "reporter": {"kind": "ANONYMOUS"},
        "location": {"latitude": 7.0, "longitude": 125.0},
    });
    let without = delivery_data("ReportSubmitted", data.clone(), false);
    assert!(without.get("personal").is_none() && without.get("reporter").is_none());
    assert_eq!(without["title"], "Bike stolen");
    assert_eq!(delivery_data("ReportSubmitted", data.clone(), true), data);
    let evidence =
        serde_json::json!({"description": "photo of the suspect", "media_type": "IMAGE"});
    let out = delivery_data("EvidenceAttached", evidence, false);
    assert!(out.get("description").is_none());
}

// Boundaries found by mutation testing (docs/reliability.md).

#[test]
fn limits_hold_at_their_edges() {
    let head = "https://hooks.example.org/";
    let url = format!("{head}{}", "a".repeat(URL_MAX - head.len()));
    assert_eq!(url.len(), URL_MAX);
    assert_eq!(check_url(&url), Ok(()));
    assert_eq!(
        check_url(&format!("{url}a")).map_err(|e| e.field()),
        Err(Some("url"))
    );
    let fifty = vec!["ReportSubmitted".to_owned(); EVENT_TYPES_MAX];
    assert_eq!(
        check_event_types(fifty),
        Ok(vec!["ReportSubmitted".to_owned()])
    );
    let fifty_one = vec!["ReportSubmitted".to_owned(); EVENT_TYPES_MAX + 1];
    assert_eq!(
        check_event_types(fifty_one).map_err(|e| e.field()),
        Err(Some("event_types"))
    );
}

#[test]
fn secrets_are_whsec_and_the_standard_base64_alphabet() {
    // 32 characters (24 bytes) of base64 with both of the alphabet's symbols, and padding;
    // the refused ones are as long but for a character outside it.
    for ok in [
        "whsec_ab+/cdefghijklmnopqrstuvwxyz0123",
        "whsec_++++++++++++++++++++++++++++++++",
        "whsec_////////////////////////////////",
        SECRET2,
    ] {
        assert_eq!(check_secret(ok), Ok(()), "{ok}");
    }
    for bad in [
        "whsec_ab-_cdefghijklmnopqrstuvwxyz0123",
        "whsec_ab!.cdefghijklmnopqrstuvwxyz0123",
        "whsec_ab cdefghijklmnopqrstuvwxyz01234",
    ] {
        assert_eq!(
            check_secret(bad).map_err(|e| e.field()),
            Err(Some("secret")),
            "{bad}"
        );
    }
}

#[test]
fn a_rotation_without_overlap_is_taken_and_a_negative_one_refused() {
    let rotate = |until: i64| WebhookCommand::RotateSecret {
        secret: SECRET2.into(),
        previous_valid_until: t(until),
        at: t(10),
    };
    let after = given::<Webhook>([created()]).when(rotate(10)).events();
    assert_eq!(
        after.len(),
        1,
        "an overlap of zero seconds ends the old secret now"
    );
    let e = given::<Webhook>([created()]).when(rotate(9)).err();
    assert_eq!(e.field(), Some("overlap_seconds"));
}

#[test]
fn a_subscription_exists_once_created_and_seals_its_secret_under_its_own_key() {
    use precinct_domain::Aggregate as _;
    let none = given_nothing::<Webhook>();
    assert!(!none.state().version_exists());
    assert_eq!(none.state().data_subject(), None);
    let g = given::<Webhook>([created()]);
    assert!(g.state().version_exists());
    assert_eq!(g.state().data_subject(), Some(id().as_uuid()));
}
