//! Routing never uses a stale map (issue 13, item 12): a report submitted right after a
//! station was created — without `X-Min-Position`, while other commands keep the
//! projectors busy — goes to that station.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use precinct_tests::app::TestApp;
use reqwest::StatusCode;
use serde_json::json;

/// A square precinct of ±0.05° around (lat, lon), created without waiting for the read
/// models.
fn precinct_body(name: &str, lat: f64, lon: f64) -> serde_json::Value {
    let d = 0.05;
    let ring = json!([
        [lon - d, lat - d],
        [lon + d, lat - d],
        [lon + d, lat + d],
        [lon - d, lat + d],
        [lon - d, lat - d]
    ]);
    json!({"name": name, "kind": "PRECINCT", "latitude": lat, "longitude": lon,
           "area": {"type": "Polygon", "coordinates": [ring]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_report_just_after_its_station_was_created_is_routed_to_it_under_write_load() {
    let app = Arc::new(TestApp::spawn().await.expect("spawn"));
    let admin = app.admin().await;
    // The only station at first: every report goes to it until another one exists.
    let home = app.precinct(&admin, "Home", 7.07, 125.61).await;
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&home)).await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;

    // Write load: reports and notes from four clients until the checks are done.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for n in 0..4 {
        // Each note writer annotates a report of its own (no contention between them).
        let target = app
            .report(Some(&citizen), 7.07, 125.61, &["Theft"])
            .await
            .id();
        let (app, stop, citizen, dispatcher) = (
            app.clone(),
            stop.clone(),
            citizen.clone(),
            dispatcher.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut sent = 0u32;
            while !stop.load(Ordering::Relaxed) && sent < 2000 {
                let r = if n % 2 == 0 {
                    app.post(
                        "/crimes",
                        Some(&citizen),
                        json!({"title": "load", "description": "load", "crime_types": ["Theft"],
                               "location": {"latitude": 7.07, "longitude": 125.61}}),
                    )
                    .await
                } else {
                    app.post(
                        &format!("/crimes/{target}/notes"),
                        Some(&dispatcher),
                        json!({"note": format!("load {n}-{sent}")}),
                    )
                    .await
                };
                assert!(r.status.is_success(), "load: {}: {}", r.status, r.body);
                sent += 1;
            }
            sent
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let mut misrouted = Vec::new();
    for round in 0..6 {
        let (lat, lon) = (8.0 + f64::from(round) * 0.5, 126.0);
        let r = app
            .post(
                "/stations",
                Some(&admin),
                precinct_body(&format!("New {round}"), lat, lon),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let station = r.id();
        // At once, without X-Min-Position.
        let r = app
            .post(
                "/crimes",
                Some(&citizen),
                json!({"title": "Right here", "description": "d", "crime_types": ["Theft"],
                       "location": {"latitude": lat, "longitude": lon}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        if r.body["station_id"] != station.as_str() {
            misrouted.push(format!(
                "round {round}: routed to {} instead of {station}",
                r.body["station_id"]
            ));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut sent = 0;
    for task in load {
        sent += task.await.expect("load task");
    }
    assert!(sent > 20, "the load ran ({sent} commands)");
    assert!(misrouted.is_empty(), "{misrouted:?}");
}
