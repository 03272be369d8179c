//! Poison events through the whole system (issue 13, item 1; ADR 0009): events the
//! reports read model cannot store are published straight into the log, as a bug or an
//! old binary would have written them. Every other user's reads must go on; the bad
//! report answers 503, the metric and `/health/ready` show it, and the operator's
//! `precinct projections retry|skip` (the real binary) repair it, for good and across a
//! rebuild.

use std::time::Duration;

use precinct_domain::ids::{AccountId, ReportId, StationId};
use precinct_domain::report::{
    PersonalDetails, ReportEvent, ReportLocation, ReportSubmitted, ReportTriaged, Reporter,
};
use precinct_domain::routing::{RoutingDecision, RoutingRule};
use precinct_domain::values::{GeoPoint, Priority};
use precinct_domain::DomainEvent;
use precinct_eventlog::{Actor, CommandMeta, ExpectedVersion, NewEvent, StreamId};
use precinct_tests::app::{Options, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

const LAT: f64 = 7.07;
const LON: f64 = 125.61;
/// A fixed master key, so that the `precinct` binary opens what the test server sealed.
const MASTER_KEY: &str = "test-k1:0101010101010101010101010101010101010101010101010101010101010101";
/// The title the simulated bug cannot store (a CHECK constraint added by the test).
const POISON_TITLE: &str = "Poison title";

fn submitted(id: ReportId, station: StationId, reporter: Reporter, title: &str) -> NewEvent {
    let now = chrono::Utc::now();
    let e = ReportEvent::from(ReportSubmitted {
        report_id: id,
        title: title.into(),
        crime_types: vec!["Theft".into()],
        crime_type_codes: vec![],
        location: ReportLocation::new(GeoPoint::parse(LAT, LON).expect("point"), None, None),
        occurred_at: Some(now - chrono::Duration::minutes(5)),
        media_urls: vec![],
        reporter,
        station_id: station,
        routing: RoutingDecision {
            station_id: station,
            rule: RoutingRule::PrecinctArea,
            matched_keyword: None,
            distance_m: None,
        },
        priority: Priority::Medium,
        personal: PersonalDetails {
            description: "Someone took it".into(),
            street: None,
            contact: None,
            erased: false,
        },
        at: now,
    });
    NewEvent {
        event_type: e.event_type().to_string(),
        schema_version: e.schema_version(),
        occurred_at: now,
        data: e.to_data(),
    }
}

fn triaged(priority: Priority) -> NewEvent {
    let now = chrono::Utc::now();
    let e = ReportEvent::from(ReportTriaged { priority, at: now });
    NewEvent {
        event_type: e.event_type().to_string(),
        schema_version: e.schema_version(),
        occurred_at: now,
        data: e.to_data(),
    }
}

/// Appends raw events to one report's stream, as one command; their positions.
async fn inject(app: &TestApp, id: ReportId, events: Vec<NewEvent>) -> Vec<u64> {
    let n = events.len() as u64;
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        app.log.append(
            &StreamId::new("report", id.as_uuid()),
            ExpectedVersion::Any,
            events,
            &CommandMeta::new(Uuid::new_v4(), Actor::System),
        ),
    )
    .await
    .expect("append in time")
    .expect("append");
    (out.position + 1 - n..=out.position).collect()
}

/// Runs the `precinct` binary against the test's log and database.
async fn cli(app: &TestApp, args: &[&str]) -> (bool, String) {
    cli_env(&app.config.nats_url, &app.database_url, &app.prefix, args).await
}

/// The event read models and the quarantine (without its clock columns), to compare a
/// rebuild with the live projection.
async fn dump(app: &TestApp) -> Value {
    let mut out = serde_json::Map::new();
    for (table, order) in [
        ("reports", "id"),
        ("patrols", "id"),
        ("stations", "id"),
        ("accounts", "id"),
        ("audit", "position"),
        ("analytics_reports", "report_id"),
        ("analytics_assignments", "report_id, t.seq"),
        (
            "analytics_hourly",
            "station_id, t.hour, t.priority, t.status, t.crime_type_codes",
        ),
    ] {
        let rows: Value = sqlx::query_scalar(&format!(
            "SELECT coalesce(json_agg(t ORDER BY t.{order}), '[]'::json) FROM {table} t"
        ))
        .fetch_one(&app.pool)
        .await
        .expect("dump");
        out.insert(table.into(), rows);
    }
    let quarantine: Value = sqlx::query_scalar(
        "SELECT coalesce(json_agg(json_build_array(projection, position, aggregate_type,
            aggregate_id, event_type, reason, error_class, resolution, resolved_by)
            ORDER BY projection, position), '[]'::json)
         FROM quarantine WHERE resolution IS DISTINCT FROM 'retried'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("dump quarantine");
    out.insert("quarantine".into(), quarantine);
    Value::Object(out)
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(app: &TestApp, admin: &str) -> String {
    let res = app
        .http
        .get(format!("{}/metrics", app.base))
        .bearer_auth(admin)
        .send()
        .await
        .expect("scrape");
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.expect("metrics text")
}

/// Waits (bounded) until the reports projection holds `n` events in quarantine.
async fn quarantined(app: &TestApp, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let held = precinct_readmodel::quarantine::held(&app.pool, Some("reports"))
            .await
            .expect("quarantine");
        if held.len() == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} quarantined events, have {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue 13, item 1: one event the reports read model could not store stopped it for
/// good: every new report read as 404, `X-Min-Position` reads answered 503. Now the
/// event's report is quarantined and everything else goes on.
#[tokio::test]
async fn one_poison_report_does_not_stop_other_users_reads() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    // The exact event of the attack: a year PostgreSQL cannot hold.
    let poison = ReportId::new(Uuid::new_v4());
    let mut event = submitted(
        poison,
        StationId::new(station.parse().expect("station id")),
        Reporter::User {
            account_id: AccountId::new(Uuid::new_v4()),
        },
        "Bike stolen",
    );
    event.data["occurred_at"] = json!("-5000-01-01T00:00:00Z");
    inject(&app, poison, vec![event]).await;

    let r = app.report(Some(&citizen), LAT, LON, &["Theft"]).await;
    let id = r.id();
    let mine = app
        .get_at(&format!("/crimes/{id}"), Some(&citizen), r.position())
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    let list = app.get_at("/me/crimes", Some(&citizen), r.position()).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["items"][0]["id"], id.as_str());
    let queue = app
        .get_at("/queues/reports", Some(&dispatcher), r.position())
        .await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
    let bad = app
        .get(&format!("/crimes/{}", poison.as_uuid()), Some(&dispatcher))
        .await;
    assert_eq!(bad.status, StatusCode::SERVICE_UNAVAILABLE, "{}", bad.body);
    // Nobody but the admin learns what went wrong, and not even the admin gets the
    // database's error text.
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body, json!({"status": "degraded"}));
    let text = app
        .get("/health/ready", Some(&admin))
        .await
        .body
        .to_string();
    assert!(!text.contains("range") && !text.contains("error"), "{text}");
}

/// The audit stops on nothing either: an event whose envelope time PostgreSQL cannot
/// hold (as a bug or an old binary could write it), in the middle of one append,
/// quarantines that event for the audit and holds back the later events of its report;
/// every other event of the log still gets its row — whether the worker replayed the
/// poisoned batch one event at a time or the event came alone (ADR 0009).
#[tokio::test]
async fn an_event_the_audit_cannot_store_is_quarantined_alone() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    let report = ReportId::new(Uuid::new_v4());
    let reporter = Reporter::User {
        account_id: AccountId::new(Uuid::new_v4()),
    };
    let station_id = StationId::new(station.parse().expect("station id"));
    inject(
        &app,
        report,
        vec![submitted(report, station_id, reporter, "Bike stolen")],
    )
    .await;
    let mut bad = triaged(Priority::High);
    bad.occurred_at = "-5000-01-01T00:00:00Z"
        .parse()
        .expect("a time chrono holds");
    let injected = inject(
        &app,
        report,
        vec![triaged(Priority::Low), bad, triaged(Priority::Medium)],
    )
    .await;
    let poison = injected[1];
    // Events after it, through the API.
    let after = app.report(Some(&citizen), LAT, LON, &["Theft"]).await;
    assert_eq!(after.status, StatusCode::CREATED, "{}", after.body);
    app.caught_up(after.position()).await;

    let held = precinct_readmodel::quarantine::held(&app.pool, Some("audit"))
        .await
        .expect("quarantine");
    let held: Vec<(i64, &str)> = held
        .iter()
        .map(|q| (q.position, q.reason.as_str()))
        .collect();
    let (poison, held_back) = (
        i64::try_from(poison).expect("i64"),
        i64::try_from(injected[2]).expect("i64"),
    );
    assert_eq!(held, [(poison, "poison"), (held_back, "held")]);
    let audited: Vec<i64> = sqlx::query_scalar("SELECT position FROM audit ORDER BY position")
        .fetch_all(&app.pool)
        .await
        .expect("audit");
    let head = i64::try_from(after.position()).expect("i64");
    let expected: Vec<i64> = (1..=head)
        .filter(|p| ![poison, held_back].contains(p))
        .collect();
    assert_eq!(
        audited, expected,
        "a row for every event but the report's from the poison on"
    );
}

/// Quarantine, alert, repair and rebuild, end to end.
#[tokio::test]
async fn quarantined_reports_are_alerted_repaired_and_rebuilt_identically() {
    let opts = Options {
        master_key: Some(MASTER_KEY.into()),
        ..Options::default()
    };
    let app = TestApp::spawn_with(opts.clone()).await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let station_id = StationId::new(station.parse().expect("station id"));
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let (a_id, a) = app.account(&admin, "CITIZEN", None).await;
    let (_, b) = app.account(&admin, "CITIZEN", None).await;
    let a_id = AccountId::new(a_id.parse().expect("account id"));
    let before = app.report(Some(&a), LAT, LON, &["Theft"]).await;
    app.caught_up(before.position()).await;

    // A "bug": the read model refuses one title (as if a column were too narrow).
    sqlx::query("ALTER TABLE reports ADD CONSTRAINT poison_bug CHECK (title <> 'Poison title')")
        .execute(&app.pool)
        .await
        .expect("add the bug");
    // P1 (A's report): its submission is poison, and its triage is held behind it.
    let p1 = ReportId::new(Uuid::new_v4());
    let p1_positions = inject(
        &app,
        p1,
        vec![submitted(
            p1,
            station_id,
            Reporter::User { account_id: a_id },
            POISON_TITLE,
        )],
    )
    .await;
    let p1_triage = inject(&app, p1, vec![triaged(Priority::High)]).await;
    // P2 (anonymous): a year no store can hold.
    let p2 = ReportId::new(Uuid::new_v4());
    let mut event = submitted(
        p2,
        station_id,
        Reporter::Anonymous {
            tracking_token_hash: precinct_domain::values::TokenHash::parse(&"ab".repeat(32))
                .expect("hash"),
        },
        "Wallet",
    );
    event.data["occurred_at"] = json!("-5000-01-01T00:00:00Z");
    let p2_positions = inject(&app, p2, vec![event]).await;

    // Other users' new reports are read at once, with X-Min-Position too.
    let r = app.report(Some(&b), LAT, LON, &["Theft"]).await;
    let got = app
        .get_at(&format!("/crimes/{}", r.id()), Some(&b), r.position())
        .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    let queue = app
        .get_at("/queues/reports", Some(&dispatcher), r.position())
        .await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
    let ids: Vec<&str> = queue.body["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(ids.contains(&r.id().as_str()), "{ids:?}");
    quarantined(&app, 3).await;
    // Each entry says why: the failing event with its error's class (the CHECK
    // constraint: integrity; the year: data), the triage held behind P1's submission.
    let (p1_pos, p2_pos) = (p1_positions[0], p2_positions[0]);
    let (p1i, p1ti, p2i) = (p1_pos as i64, p1_triage[0] as i64, p2_pos as i64);
    let why: Vec<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT position, reason, error_class FROM quarantine
         WHERE projection = 'reports' ORDER BY position",
    )
    .fetch_all(&app.pool)
    .await
    .expect("quarantine");
    assert_eq!(
        why,
        [
            (p1i, "poison".into(), Some("integrity".into())),
            (p1ti, "held".into(), None),
            (p2i, "poison".into(), Some("data".into())),
        ]
    );

    // The quarantined reports answer 503 to those who may see them, 404 to others.
    for (token, id) in [(&a, p1), (&dispatcher, p1), (&dispatcher, p2)] {
        let res = app
            .get(&format!("/crimes/{}", id.as_uuid()), Some(token))
            .await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
        assert_eq!(res.body["type"], "/problems/unavailable");
        assert!(
            res.body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("being repaired"),
            "{}",
            res.body
        );
    }
    let stranger = app
        .get(&format!("/crimes/{}", p1.as_uuid()), Some(&b))
        .await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND, "{}", stranger.body);

    // Alert: the metric and readiness (details for the ADMIN only, no error text).
    let text = scrape(&app, &admin).await;
    assert_eq!(
        metric(
            &text,
            "precinct_projection_quarantined{projection=\"reports\"}"
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "precinct_projection_quarantined{projection=\"audit\"}"
        ),
        Some(0.0)
    );
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body, json!({"status": "degraded"}));
    let ready = app.get("/health/ready", Some(&admin)).await;
    assert_eq!(ready.body["status"], "degraded", "{}", ready.body);
    let reports = ready.body["projections"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "reports"))
        .cloned()
        .expect("reports status");
    assert_eq!(reports["quarantined"], 3, "{reports}");
    assert_eq!(reports["lag_positions"], 0, "{reports}");
    for leak in ["poison_bug", "violates", "out of range", "constraint"] {
        assert!(!ready.body.to_string().contains(leak), "{}", ready.body);
    }

    // The status command lists what is held, with the error for the operator.
    let (ok, out) = cli(&app, &["projections", "status"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("poison_bug") && out.contains("\"held\""),
        "{out}"
    );

    // A rebuild while quarantined gives the same rows and the same quarantine.
    let live = dump(&app).await;
    let (config, prefix, database_url) = app.stop().await.expect("stop");
    let (ok, out) = cli_env(&config.nats_url, &database_url, &prefix, &["rebuild"]).await;
    assert!(ok, "{out}");
    let app = TestApp::start(config, prefix, database_url)
        .await
        .expect("restart");
    assert_eq!(dump(&app).await, live, "rebuild equals the live projection");

    // The restarted projector learns what is held (with its first batch).
    let nudge = app.report(Some(&b), LAT, LON, &["Theft"]).await;
    app.caught_up(nudge.position()).await;

    // Retry before the fix: still held, nothing changes.
    let p1_arg = p1_pos.to_string();
    let (ok, out) = cli(
        &app,
        &[
            "projections",
            "retry",
            "reports",
            &p1_arg,
            "--by",
            "ops-alice",
        ],
    )
    .await;
    assert!(!ok, "{out}");
    quarantined(&app, 3).await;
    // The fix, then retry: P1 applies in order (submission, then triage) and is released.
    sqlx::query("ALTER TABLE reports DROP CONSTRAINT poison_bug")
        .execute(&app.pool)
        .await
        .expect("fix the bug");
    let (ok, out) = cli(
        &app,
        &[
            "projections",
            "retry",
            "reports",
            &p1_arg,
            "--by",
            "ops-alice",
        ],
    )
    .await;
    assert!(ok, "{out}");
    quarantined(&app, 1).await;
    let fixed = app
        .get(&format!("/crimes/{}", p1.as_uuid()), Some(&a))
        .await;
    assert_eq!(fixed.status, StatusCode::OK, "{}", fixed.body);
    assert_eq!(fixed.body["title"], POISON_TITLE);
    // The triage held behind the submission applied too (priority is in the staff view).
    let fixed = app
        .get(&format!("/crimes/{}", p1.as_uuid()), Some(&dispatcher))
        .await;
    assert_eq!(fixed.status, StatusCode::OK, "{}", fixed.body);
    assert_eq!(fixed.body["priority"], "HIGH", "{}", fixed.body);
    // The running projector takes the repair up (the quarantine's version moved): P1's
    // next event applies at once, not held behind an entry it remembered as poison.
    let later = inject(&app, p1, vec![triaged(Priority::Low)]).await;
    app.caught_up(later[0]).await;
    quarantined(&app, 1).await;
    let fixed = app
        .get(&format!("/crimes/{}", p1.as_uuid()), Some(&dispatcher))
        .await;
    assert_eq!(fixed.status, StatusCode::OK, "{}", fixed.body);
    assert_eq!(fixed.body["priority"], "LOW", "{}", fixed.body);

    // P2 cannot be fixed by code: the operator skips it (for good).
    let p2_arg = p2_pos.to_string();
    let (ok, out) = cli(
        &app,
        &[
            "projections",
            "retry",
            "reports",
            &p2_arg,
            "--by",
            "ops-bob",
        ],
    )
    .await;
    assert!(!ok, "{out}");
    let (ok, out) = cli(
        &app,
        &[
            "projections",
            "skip",
            "reports",
            &p2_arg,
            "--by",
            "ops-bob",
            "--reason",
            "year -5000",
        ],
    )
    .await;
    assert!(ok, "{out}");
    quarantined(&app, 0).await;
    let gone = app
        .get(&format!("/crimes/{}", p2.as_uuid()), Some(&dispatcher))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.body, json!({"status": "ready"}));
    let text = scrape(&app, &admin).await;
    assert_eq!(
        metric(
            &text,
            "precinct_projection_quarantined{projection=\"reports\"}"
        ),
        Some(0.0)
    );

    // Who decided what, and when, is kept; every quarantined event is still in the log.
    type Decided = (i64, String, String, Option<String>, Option<String>, String);
    let decisions: Vec<Decided> = sqlx::query_as(
        "SELECT position, decision, decided_by, note, error_class, outcome
         FROM quarantine_decisions ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .expect("decisions");
    let integrity = || Some("integrity".to_string());
    assert_eq!(
        decisions,
        [
            (
                p1i,
                "retry".into(),
                "ops-alice".into(),
                None,
                integrity(),
                format!("still held: {p1i} failed; applied [], held [{p1i}, {p1ti}]")
            ),
            (
                p1i,
                "retry".into(),
                "ops-alice".into(),
                None,
                integrity(),
                format!("released; applied [{p1i}, {p1ti}]")
            ),
            (
                p2i,
                "retry".into(),
                "ops-bob".into(),
                None,
                Some("data".into()),
                format!("still held: {p2i} failed; applied [], held [{p2i}]")
            ),
            (
                p2i,
                "skip".into(),
                "ops-bob".into(),
                Some("year -5000".into()),
                Some("data".into()),
                "released; applied []".into()
            ),
        ]
    );
    for p in [p1_pos, p1_triage[0], p2_pos] {
        assert!(app.log.read_at(p).await.expect("read").is_some(), "{p}");
    }
    let entries = precinct_readmodel::quarantine::entries(&app.pool, Some("reports"))
        .await
        .expect("entries");
    let summary: Vec<(i64, Option<&str>, Option<&str>)> = entries
        .iter()
        .map(|e| {
            (
                e.position,
                e.resolution.as_deref(),
                e.resolved_by.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (p1i, Some("retried"), Some("ops-alice")),
            (p1ti, Some("retried"), Some("ops-alice")),
            (p2i, Some("skipped"), Some("ops-bob")),
        ]
    );

    // A rebuild after the repairs gives the live rows: P1 applies now, P2 stays skipped.
    let live = dump(&app).await;
    let (config, prefix, database_url) = app.stop().await.expect("stop");
    let (ok, out) = cli_env(&config.nats_url, &database_url, &prefix, &["rebuild"]).await;
    assert!(ok, "{out}");
    let app = TestApp::start(config, prefix, database_url)
        .await
        .expect("restart");
    assert_eq!(
        dump(&app).await,
        live,
        "rebuild equals the repaired live projection"
    );
    let held = precinct_readmodel::quarantine::held(&app.pool, None)
        .await
        .expect("held");
    assert!(held.is_empty(), "{held:?}");
    let fixed = app
        .get(&format!("/crimes/{}", p1.as_uuid()), Some(&a))
        .await;
    assert_eq!(fixed.status, StatusCode::OK, "{}", fixed.body);
}

/// The quarantine rows of one log position: (projection, aggregate type, event type,
/// reason, error class), by projection.
type QuarantineRow = (String, Option<String>, String, String, Option<String>);

async fn quarantined_at(app: &TestApp, position: u64) -> Vec<QuarantineRow> {
    sqlx::query_as(
        "SELECT projection, aggregate_type, event_type, reason, error_class
         FROM quarantine WHERE position = $1 ORDER BY projection",
    )
    .bind(i64::try_from(position).expect("position"))
    .fetch_all(&app.pool)
    .await
    .expect("quarantine rows")
}

/// An entry of the log that is no envelope at all (a foreign publisher on the stream's
/// subjects, a bug of an old binary) says nothing about its aggregate. Every event
/// projection quarantines it alone as `unreadable` and reads on: the report appended
/// after it is projected, nothing else is held, and a rebuild quarantines it again the
/// same way.
#[tokio::test]
async fn an_entry_that_is_no_envelope_is_quarantined_alone_and_every_projection_reads_on() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    let nats = async_nats::connect(&app.config.nats_url)
        .await
        .expect("NATS");
    let js = async_nats::jetstream::new(nats);
    let subject = format!(
        "{}.report.{}",
        app.config.log.subject_prefix,
        Uuid::new_v4()
    );
    let garbage = js
        .publish(subject, "not an envelope".into())
        .await
        .expect("publish")
        .await
        .expect("stored")
        .sequence;

    let r = app.report(Some(&citizen), LAT, LON, &["Theft"]).await;
    assert!(r.position() > garbage, "the report comes after the entry");
    let mine = app
        .get_at(&format!("/crimes/{}", r.id()), Some(&citizen), r.position())
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(mine.body["id"], r.id());

    let want: Vec<QuarantineRow> = {
        let mut names: Vec<&str> = precinct_readmodel::EVENT_PROJECTIONS.to_vec();
        names.sort_unstable();
        names
            .into_iter()
            .map(|p| {
                (
                    p.to_string(),
                    None,
                    "?".to_string(),
                    "poison".to_string(),
                    Some("unreadable".to_string()),
                )
            })
            .collect()
    };
    assert_eq!(quarantined_at(&app, garbage).await, want);
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM quarantine WHERE position <> $1")
        .bind(i64::try_from(garbage).expect("position"))
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(held, 0, "nothing but the entry is quarantined");

    // Rebuilt (in place, the live projectors running): the same quarantine, the same
    // report row.
    let before = dump(&app).await;
    precinct_projections::rebuild(&app.pool, &app.log)
        .await
        .expect("rebuild");
    assert_eq!(quarantined_at(&app, garbage).await, want);
    assert_eq!(dump(&app).await, before, "a rebuild gives the same rows");
}

/// Review of issue 13: the repair commands answered an operator's typing mistakes with
/// Rust's debug output and backtraces.
#[tokio::test]
async fn the_projections_cli_answers_user_errors_with_one_clean_line() {
    let app = TestApp::spawn_with(Options {
        master_key: Some(MASTER_KEY.into()),
        ..Options::default()
    })
    .await
    .expect("spawn");
    for (args, says) in [
        (
            &["projections", "retry", "nosuch", "1", "--by", "ops"][..],
            "unknown projection `nosuch`",
        ),
        (
            &["projections", "skip", "reports", "999999", "--by", "ops"][..],
            "nothing is quarantined at position 999999",
        ),
    ] {
        let (ok, out) = cli(&app, args).await;
        assert!(!ok, "{args:?} succeeded: {out}");
        let out = out.trim();
        assert!(out.contains(says), "{args:?}: {out}");
        assert!(
            out.starts_with("error: ") && out.lines().count() == 1,
            "{args:?} did not answer one line: {out}"
        );
        for debug in ["backtrace", "Caused by", "Error {", "panicked"] {
            assert!(!out.contains(debug), "{args:?}: {out}");
        }
    }
}

/// [`cli`] for a stopped server.
async fn cli_env(
    nats_url: &str,
    database_url: &str,
    prefix: &str,
    args: &[&str],
) -> (bool, String) {
    let bin = precinct_tests::chaos::procs::precinct_bin().expect("build the precinct binary");
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(args)
        .env("NATS_URL", nats_url)
        .env("DATABASE_URL", database_url)
        .env("PRECINCT_STREAM_PREFIX", prefix)
        .env("PRECINCT_MASTER_KEY", MASTER_KEY)
        .env("RUST_LOG", "error")
        // As many operators run it: an error must still be one clean line.
        .env("RUST_BACKTRACE", "1")
        .kill_on_drop(true);
    if let Ok(r) = std::env::var("PRECINCT_TEST_NATS_REPLICAS") {
        cmd.env("PRECINCT_NATS_REPLICAS", r);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the precinct command ends in time")
        .expect("run precinct");
    (
        out.status.success(),
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// An event that updates a row no event made (a report never submitted, as an
/// operator's skip of its submission leaves it) is not dropped in silence: the reports
/// projection quarantines it as `missing_row` and holds the report back; the audit
/// records it, and the other reports read on.
#[tokio::test]
async fn an_event_for_a_report_that_has_no_row_is_quarantined_as_missing_row() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    let ghost = ReportId::new(Uuid::new_v4());
    let at = inject(&app, ghost, vec![triaged(Priority::High)]).await[0];
    let r = app.report(Some(&citizen), LAT, LON, &["Theft"]).await;
    let mine = app
        .get_at(&format!("/crimes/{}", r.id()), Some(&citizen), r.position())
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    let rows = quarantined_at(&app, at).await;
    let reports: Vec<_> = rows.iter().filter(|r| r.0 == "reports").collect();
    assert_eq!(
        reports,
        [&(
            "reports".to_string(),
            Some("report".to_string()),
            "ReportTriaged".to_string(),
            "poison".to_string(),
            Some("missing_row".to_string())
        )],
        "{rows:?}"
    );
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit WHERE position = $1")
        .bind(i64::try_from(at).expect("position"))
        .fetch_one(&app.pool)
        .await
        .expect("audit");
    assert_eq!(audited, 1, "the audit records the event");
}
