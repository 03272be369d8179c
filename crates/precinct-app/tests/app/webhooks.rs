//! Webhook subscriptions at the application layer (ADR 0028): who creates, sees and
//! changes which subscription, what a SUPERVISOR may not grant or move, the secret each
//! creation and rotation draws, the overlap of a rotation, and the deliverer's
//! disabling, recorded once.

use crate::common::World;
use chrono::Duration;
use precinct_app::commands::webhook::{self, Change, NewWebhook, OVERLAP_MAX_SECS};
use precinct_app::{AppError, Denied, Principal};
use precinct_domain::ids::{AccountId, StationId};
use precinct_domain::values::Role;
use precinct_domain::webhook::{Webhook, WebhookChanges};
use uuid::Uuid;

fn subscription(station: Option<StationId>, personal_data: bool) -> NewWebhook {
    NewWebhook {
        url: "https://hooks.example.com/precinct".into(),
        event_types: vec!["ReportSubmitted".into()],
        station_id: station,
        area: None,
        personal_data,
    }
}

fn supervisor_of(station: StationId) -> Principal {
    Principal {
        id: AccountId::new(Uuid::new_v4()),
        role: Role::Supervisor,
        station_id: Some(station),
    }
}

fn url(u: &str) -> Change {
    Change::Update(WebhookChanges {
        url: Some(u.into()),
        ..Default::default()
    })
}

fn denied(r: Result<webhook::WebhookWritten, AppError>, d: Denied) {
    match r {
        Err(AppError::Forbidden(got)) => assert_eq!(got, d),
        other => panic!("expected {d:?}, got {other:?}"),
    }
}

fn not_found(r: Result<webhook::WebhookWritten, AppError>) {
    assert!(matches!(r, Err(AppError::NotFound)), "{r:?}");
}

#[tokio::test]
async fn a_supervisor_subscribes_their_own_station_without_personal_data_and_an_admin_any() {
    let w = &World::new().await;
    let create = |by: &Principal, new| {
        let meta = w.meta(by);
        let by = *by;
        async move { webhook::create(&w.app, &by, &meta, new).await }
    };
    // The desk may not manage subscriptions at all.
    let r = create(&w.dispatcher, subscription(None, false)).await;
    assert!(matches!(r, Err(AppError::Forbidden(Denied::Role))), "{r:?}");
    // A SUPERVISOR's subscription is for their station, whether they name it or not,
    let mine = create(&w.supervisor, subscription(None, false))
        .await
        .expect("own station, implied");
    assert_eq!(mine.webhook.filter.station_id, Some(w.station));
    let named = create(&w.supervisor, subscription(Some(w.station), false))
        .await
        .expect("own station, named");
    assert_eq!(named.webhook.filter.station_id, Some(w.station));
    // never another station's, and never with personal data;
    denied(
        create(&w.supervisor, subscription(Some(w.other_station), false)).await,
        Denied::WebhookStation,
    );
    denied(
        create(&w.supervisor, subscription(None, true)).await,
        Denied::WebhookPersonalData,
    );
    // an ADMIN's is for every station unless it names one, with personal data if asked.
    let all = create(&w.admin, subscription(None, true))
        .await
        .expect("admin");
    assert_eq!(all.webhook.filter.station_id, None);
    assert!(all.webhook.personal_data);
    // Each creation draws its own secret and hands it back once.
    let secrets: Vec<String> = [&mine, &named, &all]
        .iter()
        .map(|w| {
            w.secret
                .clone()
                .expect("the creation's answer holds the secret")
        })
        .collect();
    for s in &secrets {
        let key = s.strip_prefix("whsec_").expect("prefix");
        assert_eq!(key.len(), 44, "base64 of 32 bytes: {s}");
    }
    let distinct: std::collections::HashSet<&String> = secrets.iter().collect();
    assert_eq!(distinct.len(), secrets.len(), "{secrets:?}");
}

#[tokio::test]
async fn a_subscription_is_seen_and_changed_by_an_admin_and_its_own_stations_supervisor() {
    let w = World::new().await;
    let admin_meta = w.meta(&w.admin);
    let id = webhook::create(
        &w.app,
        &w.admin,
        &admin_meta,
        subscription(Some(w.station), false),
    )
    .await
    .expect("create")
    .webhook
    .id
    .expect("id")
    .as_uuid();
    let w = &w;
    let change = |by: Principal, c: Change| {
        let meta = w.meta(&by);
        async move { webhook::change(&w.app, &by, &meta, id, c).await }
    };
    // Another station's SUPERVISOR does not see it (404, not 403), the desk may not.
    let stranger = supervisor_of(w.other_station);
    not_found(change(stranger, url("https://stranger.example.com/")).await);
    not_found(change(stranger, Change::Rotate { overlap_secs: 0 }).await);
    not_found(change(stranger, Change::Delete).await);
    let r = change(w.dispatcher, url("https://desk.example.com/")).await;
    assert!(matches!(r, Err(AppError::Forbidden(Denied::Role))), "{r:?}");
    // A SUPERVISOR without a station sees no station's subscription.
    let adrift = Principal {
        station_id: None,
        ..w.supervisor
    };
    not_found(change(adrift, url("https://adrift.example.com/")).await);
    // Its own station's SUPERVISOR changes it, but may not grant personal data;
    let moved = change(w.supervisor, url("https://mine.example.com/"))
        .await
        .expect("own station");
    assert_eq!(moved.webhook.url, "https://mine.example.com/");
    assert_eq!(moved.secret, None, "only a rotation hands a secret back");
    denied(
        change(
            w.supervisor,
            Change::Update(WebhookChanges {
                personal_data: Some(true),
                ..Default::default()
            }),
        )
        .await,
        Denied::WebhookPersonalData,
    );
    // the ADMIN may; then the SUPERVISOR may no longer move its target, only narrow it.
    change(
        w.admin,
        Change::Update(WebhookChanges {
            personal_data: Some(true),
            ..Default::default()
        }),
    )
    .await
    .expect("admin grants personal data");
    denied(
        change(w.supervisor, url("https://elsewhere.example.com/")).await,
        Denied::WebhookPersonalTarget,
    );
    let narrowed = change(
        w.supervisor,
        Change::Update(WebhookChanges {
            event_types: Some(vec!["ReportAssigned".into()]),
            ..Default::default()
        }),
    )
    .await
    .expect("event types");
    assert_eq!(narrowed.webhook.filter.event_types, vec!["ReportAssigned"]);
    change(w.admin, url("https://admin.example.com/"))
        .await
        .expect("the admin moves it");
    // Once deleted, it is nobody's; an unknown id neither.
    change(w.supervisor, Change::Delete).await.expect("delete");
    not_found(change(w.admin, url("https://late.example.com/")).await);
    let meta = w.meta(&w.admin);
    not_found(webhook::change(&w.app, &w.admin, &meta, Uuid::new_v4(), Change::Delete).await);
}

#[tokio::test]
async fn a_rotation_keeps_the_previous_secret_for_the_overlap_asked_at_most_a_week() {
    let w = World::new().await;
    let meta = w.meta(&w.admin);
    let created = webhook::create(&w.app, &w.admin, &meta, subscription(None, false))
        .await
        .expect("create");
    let id = created.webhook.id.expect("id").as_uuid();
    let first = created.secret.expect("secret");
    for (asked, kept) in [
        (3600, 3600),
        (OVERLAP_MAX_SECS, OVERLAP_MAX_SECS),
        (OVERLAP_MAX_SECS + 1, OVERLAP_MAX_SECS),
    ] {
        let before = w.state::<Webhook>(id).await.secret;
        let meta = w.meta(&w.admin);
        let r = webhook::change(
            &w.app,
            &w.admin,
            &meta,
            id,
            Change::Rotate {
                overlap_secs: asked,
            },
        )
        .await
        .expect("rotate");
        let secret = r
            .secret
            .clone()
            .expect("a rotation hands the new secret back");
        assert!(secret.starts_with("whsec_"));
        assert_ne!(Some(secret.as_str()), before.as_str());
        let (previous, until) = r.webhook.previous_secret.clone().expect("previous");
        assert_eq!(previous, before);
        assert_eq!(
            until - r.webhook.updated_at,
            Duration::seconds(kept as i64),
            "asked {asked}"
        );
    }
    assert_eq!(OVERLAP_MAX_SECS, 7 * 24 * 3600);
    assert_ne!(
        Some(first.as_str()),
        w.state::<Webhook>(id).await.secret.as_str()
    );
}

#[tokio::test]
async fn the_deliverer_disables_a_subscription_once_per_failed_position() {
    let w = World::new().await;
    let meta = w.meta(&w.admin);
    let id = webhook::create(&w.app, &w.admin, &meta, subscription(None, false))
        .await
        .expect("create")
        .webhook
        .id
        .expect("id")
        .as_uuid();
    let mark = w.mark();
    // Two deliverers failing at one position disable it once,
    webhook::disable(&w.app, id, 42, "HTTP 500 ten times".into())
        .await
        .expect("disable");
    webhook::disable(&w.app, id, 42, "HTTP 500 ten times".into())
        .await
        .expect("the other deliverer");
    let state = w.state::<Webhook>(id).await;
    assert!(!state.enabled);
    assert_eq!(state.disabled_reason.as_deref(), Some("HTTP 500 ten times"));
    assert_eq!(
        w.appended_since(mark),
        crate::common::events(&[("webhook", "WebhookDisabled")])
    );
    // and disabling one that no longer exists is no error (nothing to deliver to).
    webhook::disable(&w.app, Uuid::new_v4(), 1, "gone".into())
        .await
        .expect("unknown subscription");
}
