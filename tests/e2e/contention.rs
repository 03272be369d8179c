//! Commands under contention on one report (issue 13, item 13): commands whose effect
//! does not depend on each other (notes, public updates) all land, each once, however
//! many arrive at once; commands that do conflict (two dispatches of one report) still
//! give one success and one 409.

use precinct_tests::app::{Res, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

struct Desk {
    app: TestApp,
    dispatcher: String,
    supervisor: String,
    patrols: [String; 2],
    citizen: String,
}

async fn desk() -> Desk {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let (_, supervisor) = app.account(&admin, "SUPERVISOR", Some(&station)).await;
    let (a, _) = app.account(&admin, "PATROL", Some(&station)).await;
    let (b, _) = app.account(&admin, "PATROL", Some(&station)).await;
    let patrols = [
        app.patrol(&dispatcher, &station, "ALPHA-1", &[&a]).await,
        app.patrol(&dispatcher, &station, "BRAVO-2", &[&b]).await,
    ];
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    Desk {
        app,
        dispatcher,
        supervisor,
        patrols,
        citizen,
    }
}

/// Every event of the report's history (staff view), paging through it.
async fn history(d: &Desk, id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let path = match &cursor {
            Some(c) => format!("/crimes/{id}/history?limit=100&cursor={c}"),
            None => format!("/crimes/{id}/history?limit=100"),
        };
        let r = d.app.get(&path, Some(&d.dispatcher)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        out.extend(r.body["items"].as_array().cloned().unwrap_or_default());
        cursor = r.body["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            return out;
        }
    }
    panic!("history of {id} did not end within 20 pages");
}

/// How many events of `kind` carry `text` in `field`.
fn count(events: &[Value], kind: &str, field: &str, text: &str) -> usize {
    events
        .iter()
        .filter(|e| e["type"] == kind && e["data"][field] == text)
        .count()
}

fn codes(results: &[Res]) -> Vec<u16> {
    results.iter().map(|r| r.status.as_u16()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_notes_on_one_report_all_land_exactly_once() {
    let d = desk().await;
    let app = &d.app;
    let id = app
        .report(Some(&d.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let path = format!("/crimes/{id}/notes");
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let token = if i % 2 == 0 {
                &d.dispatcher
            } else {
                &d.supervisor
            };
            app.post(&path, Some(token), json!({"note": format!("note {i}")}))
        })
        .collect();
    let results = futures::future::join_all(calls).await;
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.status != StatusCode::CREATED)
        .map(|r| format!("{}: {}", r.status, r.body))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 50 failed: {failed:?}",
        failed.len()
    );
    let events = history(&d, &id).await;
    for i in 0..50 {
        assert_eq!(
            count(&events, "NoteAdded", "note", &format!("note {i}")),
            1,
            "note {i} is in the history exactly once"
        );
    }
    assert_eq!(
        events.iter().filter(|e| e["type"] == "NoteAdded").count(),
        50
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_dispatches_still_conflict_while_notes_and_updates_land() {
    let d = desk().await;
    let app = &d.app;
    let id = app
        .report(Some(&d.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let (notes_path, updates_path) = (
        format!("/crimes/{id}/notes"),
        format!("/crimes/{id}/public-updates"),
    );
    let notes: Vec<_> = (0..20)
        .map(|i| {
            app.post(
                &notes_path,
                Some(&d.supervisor),
                json!({"note": format!("note {i}")}),
            )
        })
        .collect();
    let updates: Vec<_> = (0..20)
        .map(|i| {
            app.post(
                &updates_path,
                Some(&d.dispatcher),
                json!({"message": format!("update {i}")}),
            )
        })
        .collect();
    let dispatches: Vec<_> = d
        .patrols
        .iter()
        .map(|p| {
            app.post(
                "/dispatch",
                Some(&d.dispatcher),
                json!({"crime_id": id, "patrol_id": p}),
            )
        })
        .collect();
    let (notes, updates, dispatches) = tokio::join!(
        futures::future::join_all(notes),
        futures::future::join_all(updates),
        futures::future::join_all(dispatches)
    );
    assert!(
        notes
            .iter()
            .chain(&updates)
            .all(|r| r.status == StatusCode::CREATED),
        "notes {:?}, updates {:?}",
        codes(&notes),
        codes(&updates)
    );
    let mut dispatch_codes = codes(&dispatches);
    dispatch_codes.sort();
    assert_eq!(
        dispatch_codes,
        [200, 409],
        "{} / {}",
        dispatches[0].body,
        dispatches[1].body
    );
    let loser = dispatches
        .iter()
        .find(|r| r.status == StatusCode::CONFLICT)
        .expect("a loser");
    assert!(
        !loser.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("kept changing"),
        "the loser is refused by the report's state, not by contention: {}",
        loser.body
    );
    let events = history(&d, &id).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "ReportAssigned")
            .count(),
        1
    );
    for i in 0..20 {
        assert_eq!(count(&events, "NoteAdded", "note", &format!("note {i}")), 1);
        assert_eq!(
            count(
                &events,
                "PublicUpdatePosted",
                "message",
                &format!("update {i}")
            ),
            1
        );
    }
}
