//! Overload (ADR 0021): past the admission limit a command is answered at once with 503,
//! `Retry-After` and problem+json, and nothing of it is applied; the place it could not
//! get is free again as soon as the running command ends.

use std::time::Duration;

use precinct_api::admission::AdmissionConfig;
use precinct_tests::app::{Options, TestApp, METRICS_TOKEN};
use precinct_tests::client::{Call, NewReport};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

/// Waits (bounded) until `GET /metrics` shows `n` commands in flight.
async fn in_flight_reaches(app: &TestApp, n: f64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, text) = precinct_tests::prometheus::scrape(app, Some(METRICS_TOKEN)).await;
        if precinct_tests::prometheus::sample(&text, "precinct_commands_in_flight") == Some(n) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the in-flight gauge never reached {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn past_the_admission_limit_a_command_is_refused_with_503_and_nothing_of_it_is_applied() {
    // Given a process that handles one command at a time, refusing at once past it
    let app = TestApp::spawn_with(Options {
        admission: AdmissionConfig {
            in_flight: 1,
            queue_wait: Duration::ZERO,
        },
        ..Options::default()
    })
    .await
    .expect("spawn");
    let admin = app.admin().await;
    app.precinct(&admin, "Central", LAT, LON).await;
    // …and a report whose body is still arriving: it holds the only place.
    let body = serde_json::to_vec(
        &Call::submit(&NewReport::bike(LAT, LON))
            .body
            .expect("a body"),
    )
    .expect("json");
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /crimes HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.expect("write");
    slow.write_all(first_half).await.expect("write");
    in_flight_reaches(&app, 1.0).await;

    // When another report is submitted
    let other = NewReport {
        title: "Second bike",
        ..NewReport::bike(LAT, LON)
    };
    let r = app.send(&Call::submit(&other), None).await;

    // Then it is refused at once: 503, Retry-After, problem+json
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    let retry_after: u64 = r
        .headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(retry_after >= 1);
    assert_eq!(
        r.headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(r.body["status"], 503, "{}", r.body);
    assert!(r.body["type"].is_string(), "{}", r.body);

    // When the first report's body completes, it is handled as usual
    slow.write_all(second_half).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let json: serde_json::Value = serde_json::from_str(
        answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default(),
    )
    .expect("a JSON body");
    let position = json["position"].as_u64().expect("a position");

    // Then only the first report exists: the refused one left nothing behind
    app.caught_up(position).await;
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM reports")
        .fetch_all(&app.pool)
        .await
        .expect("reports");
    assert_eq!(titles, vec!["Bike stolen".to_string()]);
    // …and the place is free again
    in_flight_reaches(&app, 0.0).await;
    let r = app.send(&Call::submit(&other), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}
