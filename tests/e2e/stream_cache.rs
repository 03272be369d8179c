//! ADR 0040: each process keeps the events of the streams it read, as stored, and reads
//! only what came after them. A decision must still see every change to its aggregate,
//! whichever process made it, and the cache must actually be read from.

use precinct_tests::app::TestApp;
use reqwest::StatusCode;
use serde_json::json;

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

#[tokio::test]
async fn a_process_that_read_a_report_before_decides_on_what_another_process_appended_since() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let (officer_id, officer) = app.account(&admin, "PATROL", Some(&station)).await;
    let patrol = app
        .patrol(&dispatcher, &station, "A-1", &[&officer_id])
        .await;
    let (citizen_id, citizen) = app.account(&admin, "CITIZEN", None).await;
    let id = app.report(Some(&citizen), LAT, LON, &["Theft"]).await.id();
    // A second API process on the same log and database (no projector, no SLA worker).
    let config = precinct::Config {
        roles: precinct::Roles {
            api: true,
            projector: false,
            sla: false,
            live: false,
            webhooks: false,
        },
        ..app.config.clone()
    };
    let other = TestApp::start(config, app.prefix.clone(), app.database_url.clone())
        .await
        .expect("second process");
    let note = |text: &str| json!({ "note": text });
    let assignment = json!({"crime_id": id, "patrol_id": patrol});
    let path = |verb: &str| format!("/crimes/{id}/{verb}");

    // The first process reads the report (a note) and keeps its events.
    let first = app
        .post(&path("notes"), Some(&dispatcher), note("first look"))
        .await;
    assert!(first.status.is_success(), "{}", first.body);
    let stream = precinct_eventlog::StreamId::new("report", id.parse().expect("uuid"));
    // What the note's decision read (the submission; its own note is read next time).
    assert_eq!(app.log.kept_events(&stream), 1);
    // The second process assigns it, then adds a note: the first never read those.
    let assigned = other
        .post("/dispatch", Some(&dispatcher), assignment.clone())
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
    let noted = other
        .post(&path("notes"), Some(&dispatcher), note("second look"))
        .await;
    assert!(noted.status.is_success(), "{}", noted.body);

    // Through the first process: assigning again is refused by the report as it is now
    // (it holds the other process's assignment), and the officer's accept lands on it.
    let again = app.post("/dispatch", Some(&dispatcher), assignment).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let accepted = app.post(&path("accept"), Some(&officer), json!({})).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(accepted.body["status"], "ACCEPTED", "{}", accepted.body);
    // And back through the second, which read the report before the accept.
    let responding = other
        .post(&path("respond"), Some(&officer), json!({}))
        .await;
    assert_eq!(responding.status, StatusCode::OK, "{}", responding.body);
    assert_eq!(
        responding.body["status"], "RESPONDING",
        "{}",
        responding.body
    );

    // Every event is in the report's history once, in order, whoever appended it.
    let history = app
        .get_at(&path("history"), Some(&dispatcher), responding.position())
        .await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    let types: Vec<&str> = history.body["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["type"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        types,
        [
            "ReportSubmitted",
            "NoteAdded",
            "ReportAssigned",
            "NoteAdded",
            "AssignmentAccepted",
            "ReportResponding"
        ],
        "{}",
        history.body
    );
    // The events are kept sealed: once the reporter is erased, the next command
    // through the process that kept them answers without their personal data.
    let before = app
        .post(&path("notes"), Some(&dispatcher), note("before erasure"))
        .await;
    assert!(before.status.is_success(), "{}", before.body);
    assert!(
        before.body.to_string().contains("blue bike"),
        "{}",
        before.body
    );
    let erased = app
        .delete(&format!("/admin/data-subjects/{citizen_id}"), Some(&admin))
        .await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.body);
    let after = app
        .post(&path("notes"), Some(&dispatcher), note("after erasure"))
        .await;
    assert!(after.status.is_success(), "{}", after.body);
    assert_eq!(after.body["personal_data_erased"], true, "{}", after.body);
    assert!(
        !after.body.to_string().contains("blue bike"),
        "{}",
        after.body
    );

    // The first process kept everything it read, its own events and the other's: each
    // of its reads after the first went on from the end of what it kept (the last one
    // read every event but the last note, which it appended).
    assert_eq!(app.log.kept_events(&stream), 7);
}
