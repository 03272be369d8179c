//! The operator's metrics (issue 20, item 4): every family of
//! `precinct_api::metrics::FAMILIES` is exposed at zero right after start, before
//! anything happened, and the counters move with the actions they count.

use std::time::Duration;

use precinct_api::metrics::{Kind, FAMILIES};
use precinct_tests::app::{Options, Res, TestApp, METRICS_TOKEN};
use precinct_tests::client::{Call, NewReport};
use precinct_tests::prometheus::{sample, scrape};
use precinct_tests::world::{Spec, StationSpec};
use reqwest::{Method, StatusCode};
use serde_json::json;

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

/// Counters the start itself moves: the ADMIN's bootstrap hashes a password and appends.
const NOT_ZERO_AT_START: &[&str] = &[
    "precinct_password_jobs_total",
    "precinct_appends_total",
    "precinct_append_duration_seconds",
];

fn ok(r: &Res) {
    assert!(r.status.is_success(), "{}: {}", r.status, r.body);
}

/// Each series of the family `name` (the lines that start with it, `_bucket`/`_sum`/
/// `_count` included), as (series, value).
fn series<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let bare = series.split('{').next()?;
            let family = bare
                .strip_suffix("_bucket")
                .or_else(|| bare.strip_suffix("_sum"))
                .or_else(|| bare.strip_suffix("_count"))
                .unwrap_or(bare);
            if family != name && bare != name {
                return None;
            }
            Some((series, value.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn every_family_is_exposed_at_zero_right_after_start() {
    let app = TestApp::spawn().await.expect("spawn");
    // The scrapers' token: no login, no command before the first scrape.
    let (status, m) = scrape(&app, Some(METRICS_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    for f in FAMILIES {
        let found = series(&m, f.name);
        assert!(
            !found.is_empty(),
            "{} missing right after start:\n{m}",
            f.name
        );
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        assert!(
            m.contains(&format!("# TYPE {} {kind}", f.name)),
            "{} is not a {kind}",
            f.name
        );
        if let Some((label, values)) = f.label {
            for v in values {
                let labelled = format!("{label}=\"{v}\"");
                assert!(
                    found.iter().any(|(s, _)| s.contains(&labelled)),
                    "{}{{{labelled}}} missing right after start",
                    f.name
                );
            }
        }
        // Counts of what happened are 0 before anything happened (gauges hold facts:
        // the projections may still be applying the bootstrap's events).
        let counts = matches!(f.kind, Kind::Counter | Kind::Histogram);
        if counts && !NOT_ZERO_AT_START.contains(&f.name) && !f.name.starts_with("process_") {
            for (s, v) in &found {
                assert_eq!(*v, 0.0, "{s} = {v} right after start");
            }
        }
    }
    let version = format!(
        "precinct_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&m, &version), Some(1.0), "{version}");
    assert_eq!(sample(&m, "precinct_nats_connected"), Some(1.0));
    // Every projection, the request log and the patrol positions included.
    for p in [
        "reports",
        "patrols",
        "stations",
        "accounts",
        "audit",
        "analytics",
        "request_log",
        "patrol_positions",
    ] {
        let lag = format!("precinct_projection_lag_positions{{projection=\"{p}\"}}");
        assert!(sample(&m, &lag).is_some(), "{lag} missing");
    }
    assert!(sample(&m, "process_resident_memory_bytes").is_some_and(|v| v > 0.0));
    assert!(sample(&m, "process_start_time_seconds").is_some_and(|v| v > 1.0e9));
}

#[tokio::test]
async fn the_counters_move_with_what_they_count() {
    let app = TestApp::spawn_with(Options {
        sla_accept: Duration::from_secs(1),
        ..Options::default()
    })
    .await
    .expect("spawn");
    let spec = Spec {
        stations: vec![StationSpec::new("PS1 Sta. Ana", LAT, LON)
            .dispatchers(1)
            .crews(&["ALPHA-1"])],
        citizens: 1,
    };
    let w = app.world(&spec).await;
    let st = &w.stations[0];
    let (dispatcher, officer) = (&st.dispatchers[0].token, &st.crews[0].officer.token);
    let citizen = &w.citizens[0].token;
    let (_, before) = scrape(&app, Some(METRICS_TOKEN)).await;
    let at = |text: &str, s: &str| sample(text, s).unwrap_or_else(|| panic!("{s} missing"));

    // A dispatch, a decline, a dispatch that finds no patrol (the decliner is OFF_DUTY).
    let report = app.report(Some(citizen), LAT, LON, &["Theft"]).await;
    let id = report.id();
    let r = app
        .post("/dispatch", Some(dispatcher), json!({"crime_id": id}))
        .await;
    ok(&r);
    let r = app
        .post(
            &format!("/crimes/{id}/decline"),
            Some(officer),
            json!({"reason": "Out of fuel"}),
        )
        .await;
    ok(&r);
    let r = app
        .put(
            &format!("/patrols/{}/status", st.crews[0].patrol),
            Some(dispatcher),
            json!({"status": "OFF_DUTY"}),
        )
        .await;
    ok(&r);
    // The roster the desk ranks must know the patrol is off duty.
    app.caught_up(r.position()).await;
    let r = app
        .post("/dispatch", Some(dispatcher), json!({"crime_id": id}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["type"], "/problems/conflict", "{}", r.body);
    // The same command twice under one key: the second is a replay.
    let key = [("Idempotency-Key", "metrics-replay-1")];
    let submit = Call::submit(&NewReport::bike(LAT, LON));
    let mut last = 0;
    for _ in 0..2 {
        let r = app
            .call(
                Method::POST,
                "/crimes",
                Some(citizen),
                submit.body.clone(),
                &key,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        last = r.position();
    }
    // A read that waits for a position (another caller's: X-Min-Position).
    let r = app
        .get_at(&format!("/crimes/{id}"), Some(dispatcher), last)
        .await;
    ok(&r);
    app.caught_up(last).await;

    let (_, after) = scrape(&app, Some(METRICS_TOKEN)).await;
    for (series, by) in [
        ("precinct_assignment_declines_total", 1.0),
        ("precinct_dispatch_no_patrol_total", 1.0),
        ("precinct_idempotent_replays_total", 1.0),
        (r#"precinct_appends_total{outcome="appended"}"#, 5.0),
        (
            r#"precinct_append_duration_seconds_count{outcome="appended"}"#,
            5.0,
        ),
    ] {
        let moved = at(&after, series) - at(&before, series);
        assert!(moved >= by, "{series} moved by {moved}, expected {by}");
    }
    let waits: f64 = WAITS
        .iter()
        .map(|o| {
            let s = format!("precinct_min_position_wait_seconds_count{{outcome=\"{o}\"}}");
            at(&after, &s) - at(&before, &s)
        })
        .sum();
    assert!(waits >= 1.0, "no X-Min-Position wait counted");
    assert_eq!(
        at(&after, r#"precinct_patrols{status="OFF_DUTY"}"#),
        1.0,
        "{after}"
    );
    assert!(at(&after, r#"precinct_reports{status="NEW"}"#) >= 2.0);
    // The log's head is the event log's, not a side stream's.
    assert!(at(&after, "precinct_log_head") >= last as f64, "{after}");

    // The report assigned again (a second patrol) and left unaccepted past the 1 s SLA:
    // the SLA worker records the breach, and the report counts as overdue.
    let r = app
        .put(
            &format!("/patrols/{}/status", st.crews[0].patrol),
            Some(dispatcher),
            json!({"status": "AVAILABLE"}),
        )
        .await;
    ok(&r);
    let other = app.report(Some(citizen), LAT, LON, &["Theft"]).await.id();
    let r = app
        .post("/dispatch", Some(dispatcher), json!({"crime_id": other}))
        .await;
    ok(&r);
    let breached = r#"precinct_sla_breaches_total{kind="accept"}"#;
    let overdue = r#"precinct_sla_overdue_reports{kind="accept"}"#;
    let mut last = String::new();
    for _ in 0..100 {
        let (_, m) = scrape(&app, Some(METRICS_TOKEN)).await;
        if at(&m, breached) >= 1.0 && at(&m, overdue) >= 1.0 {
            return;
        }
        last = m;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no SLA breach counted within 20 s:\n{last}");
}

const WAITS: &[&str] = &["immediate", "reached", "timed_out", "failed"];
