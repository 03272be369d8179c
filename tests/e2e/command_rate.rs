//! Commands per account (issue 13, item 7): a token bucket per account, sized so that a
//! scripted citizen is refused (429 problem+json with `Retry-After`, nothing appended)
//! while a dispatcher working fast is not — with the production sizes.

use precinct_tests::app::{Options, TestApp};
use reqwest::StatusCode;
use serde_json::json;

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

#[tokio::test]
async fn a_scripted_citizen_is_throttled_per_account_and_a_fast_dispatcher_is_not() {
    let app = TestApp::spawn_with(Options {
        command_rates: precinct_api::CommandRates::default(),
        ..Options::default()
    })
    .await
    .expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    let (_, neighbour) = app.account(&admin, "CITIZEN", None).await;
    let body = json!({"title": "t", "description": "d", "crime_types": ["Theft"],
                      "location": {"latitude": LAT, "longitude": LON}});

    // 40 reports as fast as one client can send them.
    let head = app.log.head().await.expect("head");
    let mut created = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..40 {
        let r = app.post("/crimes", Some(&citizen), body.clone()).await;
        match r.status {
            StatusCode::CREATED => created.push(r.id()),
            StatusCode::TOO_MANY_REQUESTS => refused.push(r),
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert!(
        !refused.is_empty(),
        "40 reports in a burst were all accepted"
    );
    assert!(created.len() <= 20, "{} reports got through", created.len());
    let r = &refused[0];
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(r.body["type"], "/problems/too-many-requests");
    let retry_after: u64 = r
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(
        app.log.head().await.expect("head"),
        head + created.len() as u64,
        "a refused command appends nothing"
    );
    // The bucket is the account's, for every command: amendments are refused too...
    let r = app
        .patch(
            &format!("/crimes/{}", created[0]),
            Some(&citizen),
            json!({"title": "again"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    // ...while reads go on, and another citizen is not affected.
    let r = app.get("/me/crimes", Some(&citizen)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.post("/crimes", Some(&neighbour), body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // A dispatcher triaging the queue fast: 40 commands in a row, none refused.
    for (i, id) in created.iter().cycle().take(40).enumerate() {
        let priority = ["LOW", "MEDIUM", "HIGH", "CRITICAL"][i % 4];
        let r = app
            .post(
                &format!("/crimes/{id}/triage"),
                Some(&dispatcher),
                json!({"priority": priority}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "triage {i}: {}", r.body);
    }
}

/// Review of issue 13, N2: reads that fold or page a report from the log (`as_of`,
/// history) cost far more than a read-model query; a script looping on them is refused
/// per caller like commands are, and nobody else's budget is touched.
#[tokio::test]
async fn log_reads_of_one_report_are_budgeted_per_caller() {
    let app = TestApp::spawn_with(Options {
        log_read_rates: precinct_api::CommandRates::log_reads(),
        ..Options::default()
    })
    .await
    .expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    let submitted = app.report(Some(&citizen), LAT, LON, &["Theft"]).await;
    let id = submitted.id();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let as_of = format!("/crimes/{id}?as_of={now}");
    let burst = precinct_api::CommandRates::log_reads().citizen.burst;
    for i in 0..burst {
        let r = app.get(&as_of, Some(&citizen)).await;
        assert_eq!(r.status, StatusCode::OK, "read {i}: {}", r.body);
    }
    let r = app.get(&as_of, Some(&citizen)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    let wait: u64 = r
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(wait >= 1, "{wait}");
    // The report as it is now is a read-model query: not counted.
    let r = app
        .get_at(
            &format!("/crimes/{id}"),
            Some(&citizen),
            submitted.position(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The dispatcher's budget is their own, and history pages count in it.
    for i in 0..20 {
        let path = if i % 2 == 0 {
            as_of.clone()
        } else {
            format!("/crimes/{id}/history?limit=5")
        };
        let r = app.get(&path, Some(&dispatcher)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    }
}
