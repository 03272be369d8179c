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
