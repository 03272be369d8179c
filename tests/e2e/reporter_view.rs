//! What a reporter sees of their own report (issue 13, item 2): their submission, its
//! status and times, the public updates written for them and the public reason of a
//! rejection — never the officers' internal notes, evidence, officer or author ids, the
//! patrol, resolution notes or the internal justification. The same for a tracking-token
//! holder, for `GET /me/crimes`, for `as_of` and for the answers of the reporter's own
//! commands. Staff keep the full view.

use precinct_tests::app::{Res, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

const NOTE: &str = "Internal: the reporter's neighbour is a known fence";
const EVIDENCE_URL: &str = "https://evidence.precinct.test/cctv-4711.mp4";
const RESOLUTION: &str = "Internal: recovered from the fence, suspect released";
const JUSTIFICATION: &str = "Internal: known prank caller, flagged by the desk";
const UPDATE_1: &str = "Officers are on their way.";
const UPDATE_2: &str = "Your bike was recovered; you can collect it at the station.";

/// Keys of the staff view a reporter must never receive, at any depth.
const INTERNAL_KEYS: &[&str] = &[
    "notes",
    "evidence",
    "patrol_id",
    "author_id",
    "resolution_notes",
    "justification",
    "rejection_justification",
    "priority",
    "declines",
    "routing",
    "reporter_id",
];

struct World {
    app: TestApp,
    admin: String,
    dispatcher: String,
    dispatcher_id: String,
    officer: String,
    officer_id: String,
    patrol: String,
    citizen: String,
}

async fn world() -> World {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (dispatcher_id, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let (officer_id, officer) = app.account(&admin, "PATROL", Some(&station)).await;
    let patrol = app
        .patrol(&dispatcher, &station, "ALPHA-1", &[&officer_id])
        .await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    World {
        app,
        admin,
        dispatcher,
        dispatcher_id,
        officer,
        officer_id,
        patrol,
        citizen,
    }
}

fn expect(r: &Res, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.body);
}

fn keys_at_any_depth(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                keys_at_any_depth(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| keys_at_any_depth(i, out)),
        _ => {}
    }
}

/// `view` holds no internal field and none of `secrets` (texts and ids) anywhere.
fn assert_reporter_only(view: &Value, secrets: &[&str], what: &str) {
    let mut keys = Vec::new();
    keys_at_any_depth(view, &mut keys);
    for internal in INTERNAL_KEYS {
        assert!(
            !keys.iter().any(|k| k == internal),
            "{what}: the reporter view carries `{internal}`: {view:#}"
        );
    }
    let text = view.to_string();
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "{what}: the reporter view leaks {secret:?}: {view:#}"
        );
    }
}

fn update_messages(view: &Value) -> Vec<String> {
    view["public_updates"]
        .as_array()
        .unwrap_or_else(|| panic!("public_updates is a list: {view:#}"))
        .iter()
        .map(|u| u["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Dispatches `id` to the world's patrol, has the officer accept it, annotate it
/// internally, attach evidence and post a public update; the dispatcher posts another.
async fn work_on(w: &World, id: &str) -> u64 {
    let app = &w.app;
    expect(
        &app.post(
            &format!("/crimes/{id}/notes"),
            Some(&w.dispatcher),
            json!({"note": NOTE}),
        )
        .await,
        StatusCode::CREATED,
    );
    expect(
        &app.post(
            "/dispatch",
            Some(&w.dispatcher),
            json!({"crime_id": id, "patrol_id": w.patrol}),
        )
        .await,
        StatusCode::OK,
    );
    expect(
        &app.post(&format!("/crimes/{id}/accept"), Some(&w.officer), json!({}))
            .await,
        StatusCode::OK,
    );
    expect(
        &app.post(
            &format!("/crimes/{id}/evidence"),
            Some(&w.officer),
            json!({"url": EVIDENCE_URL, "media_type": "VIDEO"}),
        )
        .await,
        StatusCode::CREATED,
    );
    let r = app
        .post(
            &format!("/crimes/{id}/public-updates"),
            Some(&w.officer),
            json!({"message": UPDATE_1}),
        )
        .await;
    expect(&r, StatusCode::CREATED);
    // The author's answer is the staff view: the update with its author.
    assert_eq!(update_messages(&r.body), [UPDATE_1]);
    assert_eq!(
        r.body["public_updates"][0]["author_id"],
        w.officer_id.as_str()
    );
    let r = app
        .post(
            &format!("/crimes/{id}/public-updates"),
            Some(&w.dispatcher),
            json!({"message": UPDATE_2}),
        )
        .await;
    expect(&r, StatusCode::CREATED);
    r.position()
}

#[tokio::test]
async fn a_reporter_sees_public_updates_and_never_notes_evidence_patrol_or_author_ids() {
    let w = world().await;
    let app = &w.app;
    let submitted = app.report(Some(&w.citizen), LAT, LON, &["Theft"]).await;
    let id = submitted.id();
    assert_reporter_only(&submitted.body, &[], "POST /crimes");
    let before_work = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let position = work_on(&w, &id).await;
    let secrets = [
        NOTE,
        EVIDENCE_URL,
        w.officer_id.as_str(),
        w.dispatcher_id.as_str(),
        w.patrol.as_str(),
    ];

    // GET /crimes/{id} as the reporter.
    let r = app
        .get_at(&format!("/crimes/{id}"), Some(&w.citizen), position)
        .await;
    expect(&r, StatusCode::OK);
    assert_reporter_only(&r.body, &secrets, "GET /crimes/{id}");
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["status"], "ACCEPTED");
    assert_eq!(r.body["title"], "Bike stolen");
    assert_eq!(
        r.body["description"],
        "My blue bike was taken from the rack"
    );
    assert_eq!(r.body["contact"], "+63 900 000 0000");
    assert_eq!(r.body["location"]["street"], "1 Main St");
    assert!(r.body["accepted_at"].is_string(), "{}", r.body);
    assert_eq!(update_messages(&r.body), [UPDATE_1, UPDATE_2]);
    assert!(r.body["public_updates"][0]["at"].is_string());

    // GET /me/crimes.
    let r = app.get_at("/me/crimes", Some(&w.citizen), position).await;
    expect(&r, StatusCode::OK);
    let mine = r.body["items"]
        .as_array()
        .and_then(|i| i.iter().find(|i| i["id"] == id.as_str()).cloned())
        .unwrap_or_else(|| panic!("the report is in /me/crimes: {}", r.body));
    assert_reporter_only(&r.body, &secrets, "GET /me/crimes");
    assert_eq!(update_messages(&mine), [UPDATE_1, UPDATE_2]);

    // The as_of form, folded from the log: now, and before the work began.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let r = app
        .get(
            &format!("/crimes/{id}?as_of={}", now.replace('+', "%2B")),
            Some(&w.citizen),
        )
        .await;
    expect(&r, StatusCode::OK);
    assert_reporter_only(&r.body, &secrets, "GET /crimes/{id}?as_of");
    assert_eq!(update_messages(&r.body), [UPDATE_1, UPDATE_2]);
    let then = before_work.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let r = app
        .get(
            &format!("/crimes/{id}?as_of={}", then.replace('+', "%2B")),
            Some(&w.citizen),
        )
        .await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.body["status"], "NEW");
    assert_reporter_only(&r.body, &secrets, "GET /crimes/{id}?as_of (before)");

    // Resolution notes stay internal.
    for step in ["respond", "resolve"] {
        let body = if step == "resolve" {
            json!({"resolution_notes": RESOLUTION})
        } else {
            json!({})
        };
        expect(
            &app.post(&format!("/crimes/{id}/{step}"), Some(&w.officer), body)
                .await,
            StatusCode::OK,
        );
    }
    let r = app
        .get_at(
            &format!("/crimes/{id}"),
            Some(&w.citizen),
            app.log.head().await.expect("head"),
        )
        .await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.body["status"], "RESOLVED");
    let mut with_resolution = secrets.to_vec();
    with_resolution.push(RESOLUTION);
    assert_reporter_only(&r.body, &with_resolution, "GET /crimes/{id} (resolved)");

    // Staff keep everything.
    let r = app.get(&format!("/crimes/{id}"), Some(&w.dispatcher)).await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.body["notes"][0]["note"], NOTE);
    assert_eq!(r.body["evidence"][0]["url"], EVIDENCE_URL);
    assert_eq!(r.body["patrol_id"], w.patrol.as_str());
    assert_eq!(r.body["resolution_notes"], RESOLUTION);
    assert_eq!(update_messages(&r.body), [UPDATE_1, UPDATE_2]);
    assert_eq!(
        r.body["public_updates"][0]["author_id"],
        w.officer_id.as_str()
    );
    assert_eq!(
        r.body["public_updates"][1]["author_id"],
        w.dispatcher_id.as_str()
    );
    let r = app
        .get(
            &format!("/crimes/{id}?as_of={}", now.replace('+', "%2B")),
            Some(&w.dispatcher),
        )
        .await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.body["notes"][0]["note"], NOTE);
    assert_eq!(
        r.body["public_updates"][0]["author_id"],
        w.officer_id.as_str()
    );
}

#[tokio::test]
async fn a_tracking_token_holder_gets_the_reporter_view_too() {
    let w = world().await;
    let app = &w.app;
    let submitted = app.report(None, LAT, LON, &["Theft"]).await;
    let id = submitted.id();
    let token = submitted.body["tracking_token"]
        .as_str()
        .expect("tracking token")
        .to_string();
    assert_reporter_only(&submitted.body, &[], "POST /crimes (anonymous)");
    let position = work_on(&w, &id).await;
    app.caught_up(position).await;
    let secrets = [
        NOTE,
        EVIDENCE_URL,
        w.officer_id.as_str(),
        w.dispatcher_id.as_str(),
        w.patrol.as_str(),
    ];
    let tracking = [("X-Tracking-Token", token.as_str())];
    let r = app
        .call(Method::GET, &format!("/crimes/{id}"), None, None, &tracking)
        .await;
    expect(&r, StatusCode::OK);
    assert_reporter_only(&r.body, &secrets, "GET /crimes/{id} with a tracking token");
    assert_eq!(update_messages(&r.body), [UPDATE_1, UPDATE_2]);
    assert_eq!(r.body["anonymous"], true);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let r = app
        .call(
            Method::GET,
            &format!("/crimes/{id}?as_of={}", now.replace('+', "%2B")),
            None,
            None,
            &tracking,
        )
        .await;
    expect(&r, StatusCode::OK);
    assert_reporter_only(&r.body, &secrets, "as_of with a tracking token");
    assert_eq!(update_messages(&r.body), [UPDATE_1, UPDATE_2]);
}

#[tokio::test]
async fn a_rejection_shows_the_reporter_its_public_reason_never_the_justification() {
    let w = world().await;
    let app = &w.app;
    // With a public reason.
    let id = app
        .report(Some(&w.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let r = app
        .post(
            &format!("/crimes/{id}/reject"),
            Some(&w.dispatcher),
            json!({"justification": JUSTIFICATION,
                   "public_reason": "We could not confirm what you reported."}),
        )
        .await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.body["status"], "REJECTED");
    let r = app
        .get_at(&format!("/crimes/{id}"), Some(&w.citizen), r.position())
        .await;
    expect(&r, StatusCode::OK);
    assert_reporter_only(
        &r.body,
        &[JUSTIFICATION, w.dispatcher_id.as_str()],
        "a rejected report",
    );
    assert_eq!(
        r.body["rejection_reason"],
        "We could not confirm what you reported."
    );
    // Without one: a neutral default, still never the justification.
    let id = app
        .report(Some(&w.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let r = app
        .post(
            &format!("/crimes/{id}/reject"),
            Some(&w.dispatcher),
            json!({"justification": JUSTIFICATION}),
        )
        .await;
    expect(&r, StatusCode::OK);
    let position = r.position();
    let r = app
        .get_at(&format!("/crimes/{id}"), Some(&w.citizen), position)
        .await;
    expect(&r, StatusCode::OK);
    assert_reporter_only(
        &r.body,
        &[JUSTIFICATION, w.dispatcher_id.as_str()],
        "a rejected report without a public reason",
    );
    let reason = r.body["rejection_reason"].as_str().unwrap_or_default();
    assert!(!reason.is_empty(), "a default reason: {}", r.body);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let r = app
        .get(
            &format!("/crimes/{id}?as_of={}", now.replace('+', "%2B")),
            Some(&w.citizen),
        )
        .await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.body["rejection_reason"], reason);
    assert_reporter_only(&r.body, &[JUSTIFICATION], "as_of of a rejected report");
    // A report that is not rejected has no reason.
    let open = app.report(Some(&w.citizen), LAT, LON, &["Theft"]).await;
    assert!(open.body["rejection_reason"].is_null(), "{}", open.body);
}

#[tokio::test]
async fn the_reporters_own_commands_answer_the_reporter_view() {
    let w = world().await;
    let app = &w.app;
    let id = app
        .report(Some(&w.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    // A desk note while the report is still NEW (the reporter may still amend it).
    expect(
        &app.post(
            &format!("/crimes/{id}/notes"),
            Some(&w.dispatcher),
            json!({"note": NOTE}),
        )
        .await,
        StatusCode::CREATED,
    );
    let r = app
        .patch(
            &format!("/crimes/{id}"),
            Some(&w.citizen),
            json!({"title": "Red bike stolen"}),
        )
        .await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.body["title"], "Red bike stolen");
    assert!(r.body["position"].as_u64().is_some_and(|p| p > 0));
    assert_reporter_only(
        &r.body,
        &[NOTE, w.dispatcher_id.as_str()],
        "PATCH by the reporter",
    );
    let r = app.delete(&format!("/crimes/{id}"), Some(&w.citizen)).await;
    expect(&r, StatusCode::OK);
    assert_eq!(r.body["status"], "WITHDRAWN");
    assert_reporter_only(
        &r.body,
        &[NOTE, w.dispatcher_id.as_str()],
        "DELETE by the reporter",
    );
    // The ADMIN's answer to the same kind of command is the staff view.
    let id = app
        .report(Some(&w.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let r = app
        .patch(
            &format!("/crimes/{id}"),
            Some(&w.admin),
            json!({"title": "Edited by the desk"}),
        )
        .await;
    expect(&r, StatusCode::OK);
    assert!(r.body["notes"].is_array(), "{}", r.body);
    assert!(r.body["priority"].is_string(), "{}", r.body);
}

#[tokio::test]
async fn public_updates_are_written_by_the_station_and_the_assigned_patrol_only() {
    let w = world().await;
    let app = &w.app;
    let id = app
        .report(Some(&w.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let path = format!("/crimes/{id}/public-updates");
    let head = app.log.head().await.expect("head");
    // The reporter may read updates, not write them; an officer outside the assigned
    // patrol (none yet) may not either.
    let r = app
        .post(&path, Some(&w.citizen), json!({"message": "hello?"}))
        .await;
    expect(&r, StatusCode::FORBIDDEN);
    let r = app
        .post(&path, Some(&w.officer), json!({"message": "on it"}))
        .await;
    expect(&r, StatusCode::FORBIDDEN);
    let r = app.post(&path, None, json!({"message": "x"})).await;
    expect(&r, StatusCode::UNAUTHORIZED);
    // An empty message is invalid.
    let r = app
        .post(&path, Some(&w.dispatcher), json!({"message": "   "}))
        .await;
    expect(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["field"], "message");
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "refusals append nothing"
    );
    // Once the report is final, no more updates.
    let r = app
        .post(
            &format!("/crimes/{id}/reject"),
            Some(&w.dispatcher),
            json!({"justification": JUSTIFICATION}),
        )
        .await;
    expect(&r, StatusCode::OK);
    let r = app
        .post(&path, Some(&w.dispatcher), json!({"message": "late"}))
        .await;
    expect(&r, StatusCode::CONFLICT);
    // The history records who wrote an update (staff only).
    let id = app
        .report(Some(&w.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    expect(
        &app.post(
            &format!("/crimes/{id}/public-updates"),
            Some(&w.dispatcher),
            json!({"message": UPDATE_1}),
        )
        .await,
        StatusCode::CREATED,
    );
    let h = app
        .get(&format!("/crimes/{id}/history"), Some(&w.dispatcher))
        .await;
    expect(&h, StatusCode::OK);
    let update = h.body["items"]
        .as_array()
        .and_then(|i| {
            i.iter()
                .find(|e| e["type"] == "PublicUpdatePosted")
                .cloned()
        })
        .unwrap_or_else(|| panic!("a PublicUpdatePosted event: {}", h.body));
    assert_eq!(update["data"]["message"], UPDATE_1);
    assert_eq!(update["data"]["author_id"], w.dispatcher_id.as_str());
}
