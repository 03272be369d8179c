//! The command side through HTTP → JetStream (and the projectors where a command reads a
//! read model): lifecycles, role and visibility refusals, concurrency, idempotency, bad
//! input, hostile tokens.

use precinct_tests::app::{Res, TestApp, PASSWORD};
use precinct_tests::world::{Spec, StationSpec};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A precinct with a dispatcher, a supervisor, two patrols of one officer each, and a
/// citizen.
struct World {
    app: TestApp,
    admin: String,
    station: String,
    dispatcher: String,
    supervisor: String,
    officer_a: String,
    officer_b: String,
    patrol_a: String,
    patrol_b: String,
    citizen: String,
    citizen_id: String,
}

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

async fn world() -> World {
    let app = TestApp::spawn().await.expect("spawn");
    let spec = Spec {
        stations: vec![StationSpec::new("PS1 Sta. Ana", LAT, LON)
            .dispatchers(1)
            .supervisors(1)
            .crews(&["ALPHA-1", "BRAVO-2"])],
        citizens: 1,
    };
    let built = app.world(&spec).await;
    let st = &built.stations[0];
    World {
        admin: built.admin.token.clone(),
        station: st.id().to_string(),
        dispatcher: st.dispatchers[0].token.clone(),
        supervisor: st.supervisors[0].token.clone(),
        officer_a: st.crews[0].officer.token.clone(),
        officer_b: st.crews[1].officer.token.clone(),
        patrol_a: st.crews[0].patrol.clone(),
        patrol_b: st.crews[1].patrol.clone(),
        citizen: built.citizens[0].token.clone(),
        citizen_id: built.citizens[0].id.clone(),
        app,
    }
}

fn ok(r: &Res) {
    assert!(
        r.status.is_success(),
        "expected success, got {}: {}",
        r.status,
        r.body
    );
}

fn status(r: &Res, expected: StatusCode) {
    assert_eq!(r.status, expected, "body: {}", r.body);
    if !expected.is_success() {
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        assert_eq!(r.body["status"], expected.as_u16());
        assert!(r.body["type"].is_string() && r.body["title"].is_string());
    }
}

#[tokio::test]
async fn full_lifecycle_with_closure_rejection_and_re_resolution() {
    let w = world().await;
    let app = &w.app;
    let r = app.report(Some(&w.citizen), LAT, LON, &["Theft"]).await;
    assert_eq!(r.body["status"], "NEW");
    assert_eq!(r.body["station_id"], w.station.as_str());
    assert!(r.body["tracking_token"].is_null());
    let id = r.id();

    let r = app
        .post(
            &format!("/crimes/{id}/triage"),
            Some(&w.dispatcher),
            json!({"priority": "HIGH"}),
        )
        .await;
    ok(&r);
    assert_eq!(r.body["priority"], "HIGH");

    let r = app
        .post(
            "/dispatch",
            Some(&w.dispatcher),
            json!({"crime_id": id, "patrol_id": w.patrol_a}),
        )
        .await;
    ok(&r);
    assert_eq!(
        (r.body["patrol_id"].as_str(), r.body["auto"].as_bool()),
        (Some(w.patrol_a.as_str()), Some(false))
    );
    assert!(r.position() > 0);

    for (path, token, body, expect) in [
        ("accept", &w.officer_a, json!({}), "ACCEPTED"),
        ("respond", &w.officer_a, json!({}), "RESPONDING"),
        (
            "resolve",
            &w.officer_a,
            json!({"resolution_notes": "Bike recovered"}),
            "RESOLVED",
        ),
        (
            "closure/reject",
            &w.supervisor,
            json!({"reason": "Need the serial number"}),
            "RESPONDING",
        ),
        (
            "resolve",
            &w.officer_a,
            json!({"resolution_notes": "Serial matched"}),
            "RESOLVED",
        ),
        ("closure/approve", &w.supervisor, json!({}), "CLOSED"),
    ] {
        let r = app
            .post(&format!("/crimes/{id}/{path}"), Some(token), body)
            .await;
        ok(&r);
        assert_eq!(r.body["status"], expect, "after {path}");
    }
    // The patrol is free again: its status went BUSY → AVAILABLE → BUSY → AVAILABLE.
    let events = app
        .log
        .read(&precinct_eventlog::StreamId::new(
            "patrol",
            w.patrol_a.parse().expect("uuid"),
        ))
        .await
        .expect("read");
    let statuses: Vec<String> = events
        .iter()
        .filter(|e| e.envelope.event_type == "PatrolStatusChanged")
        .map(|e| e.data["status"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(statuses, ["BUSY", "AVAILABLE", "BUSY", "AVAILABLE"]);
    // An illegal transition is 409 and appends nothing.
    let head = app.log.head().await.expect("head");
    let r = app
        .post(
            &format!("/crimes/{id}/accept"),
            Some(&w.officer_a),
            json!({}),
        )
        .await;
    status(&r, StatusCode::CONFLICT);
    assert_eq!(app.log.head().await.expect("head"), head);
}

#[tokio::test]
async fn decline_then_auto_assign_picks_another_patrol() {
    let w = world().await;
    let app = &w.app;
    let id = app
        .report(Some(&w.citizen), LAT, LON, &["Burglary"])
        .await
        .id();
    // Automatic: both patrols idle, never assigned, no locations → lowest id wins.
    let r = app
        .post("/dispatch", Some(&w.dispatcher), json!({"crime_id": id}))
        .await;
    ok(&r);
    assert_eq!(r.body["auto"], true);
    let first = r.body["patrol_id"].as_str().expect("patrol").to_string();
    let expected = std::cmp::min(w.patrol_a.clone(), w.patrol_b.clone());
    assert_eq!(first, expected);
    assert_eq!(
        r.body["decision"]["candidates"].as_array().map(|c| c.len()),
        Some(2)
    );
    let (declining, other) = if first == w.patrol_a {
        (&w.officer_a, w.patrol_b.clone())
    } else {
        (&w.officer_b, w.patrol_a.clone())
    };
    let r = app
        .post(
            &format!("/crimes/{id}/decline"),
            Some(declining),
            json!({"reason": "Out of fuel"}),
        )
        .await;
    ok(&r);
    assert_eq!(r.body["status"], "NEW");
    assert!(r.body["patrol_id"].is_null());
    // Now the decliner has a decline on record: the other patrol is chosen.
    let r = app
        .post("/dispatch", Some(&w.dispatcher), json!({"crime_id": id}))
        .await;
    ok(&r);
    assert_eq!(r.body["patrol_id"], other.as_str());
}

#[tokio::test]
async fn no_available_patrol_is_409() {
    let w = world().await;
    let app = &w.app;
    for p in [&w.patrol_a, &w.patrol_b] {
        let r = app
            .put(
                &format!("/patrols/{p}/status"),
                Some(&w.dispatcher),
                json!({"status": "OFF_DUTY"}),
            )
            .await;
        ok(&r);
    }
    let id = app
        .report(Some(&w.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let r = app
        .post("/dispatch", Some(&w.dispatcher), json!({"crime_id": id}))
        .await;
    status(&r, StatusCode::CONFLICT);
}

#[tokio::test]
async fn role_refusals_are_403_and_invisible_objects_404() {
    let w = world().await;
    let app = &w.app;
    let id = app
        .report(Some(&w.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    // Function level: a citizen may not dispatch, triage, register patrols or stations.
    status(
        &app.post("/dispatch", Some(&w.citizen), json!({"crime_id": id}))
            .await,
        StatusCode::FORBIDDEN,
    );
    status(
        &app.post(
            &format!("/crimes/{id}/triage"),
            Some(&w.citizen),
            json!({"priority": "LOW"}),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    status(
        &app.post(
            "/stations",
            Some(&w.dispatcher),
            json!({"name": "X", "kind": "DIVISION", "crime_types": ["x"]}),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    status(
        &app.post(
            &format!("/crimes/{id}/closure/approve"),
            Some(&w.dispatcher),
            json!({}),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    status(
        &app.patch(
            &format!("/admin/users/{}/role", w.citizen_id),
            Some(&w.supervisor),
            json!({"role": "ADMIN"}),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    // Object level: an officer who is not in the assigned patrol.
    ok(&app
        .post(
            "/dispatch",
            Some(&w.dispatcher),
            json!({"crime_id": id, "patrol_id": w.patrol_a}),
        )
        .await);
    status(
        &app.post(
            &format!("/crimes/{id}/accept"),
            Some(&w.officer_b),
            json!({}),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    // The reporter sees the report but may not accept it.
    status(
        &app.post(&format!("/crimes/{id}/accept"), Some(&w.citizen), json!({}))
            .await,
        StatusCode::FORBIDDEN,
    );
    // Another citizen, and staff of another station, do not see it at all.
    let (_, other_citizen) = app.account(&w.admin, "CITIZEN", None).await;
    status(
        &app.post(
            &format!("/crimes/{id}/notes"),
            Some(&other_citizen),
            json!({"note": "hi"}),
        )
        .await,
        StatusCode::NOT_FOUND,
    );
    let other_station = app.precinct(&w.admin, "PS2 San Pedro", 8.0, 126.0).await;
    let (_, other_dispatcher) = app
        .account(&w.admin, "DISPATCHER", Some(&other_station))
        .await;
    status(
        &app.post(
            &format!("/crimes/{id}/triage"),
            Some(&other_dispatcher),
            json!({"priority": "LOW"}),
        )
        .await,
        StatusCode::NOT_FOUND,
    );
    status(
        &app.put(
            &format!("/patrols/{}/status", w.patrol_a),
            Some(&other_dispatcher),
            json!({"status": "OFF_DUTY"}),
        )
        .await,
        StatusCode::NOT_FOUND,
    );
    // Mass assignment: a reporter cannot set status, priority or station.
    for body in [
        json!({"status": "CLOSED"}),
        json!({"priority": "CRITICAL"}),
        json!({"station_id": other_station}),
    ] {
        status(
            &app.patch(&format!("/crimes/{id}"), Some(&w.citizen), body)
                .await,
            StatusCode::FORBIDDEN,
        );
    }
    // A non-existent report is 404 for everyone.
    let missing = uuid::Uuid::new_v4();
    status(
        &app.post(
            &format!("/crimes/{missing}/triage"),
            Some(&w.admin),
            json!({"priority": "LOW"}),
        )
        .await,
        StatusCode::NOT_FOUND,
    );
}

#[tokio::test]
async fn reporter_amends_while_new_and_withdraws() {
    let w = world().await;
    let app = &w.app;
    let id = app
        .report(Some(&w.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let r = app
        .patch(
            &format!("/crimes/{id}"),
            Some(&w.citizen),
            json!({"title": "Red bike stolen", "description": "Red, not blue"}),
        )
        .await;
    ok(&r);
    assert_eq!(
        (r.body["title"].as_str(), r.body["description"].as_str()),
        (Some("Red bike stolen"), Some("Red, not blue"))
    );
    // PUT must be complete.
    status(
        &app.put(
            &format!("/crimes/{id}"),
            Some(&w.citizen),
            json!({"title": "x"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    // Staff map `status` to a transition.
    ok(&app
        .post(
            "/dispatch",
            Some(&w.dispatcher),
            json!({"crime_id": id, "patrol_id": w.patrol_a}),
        )
        .await);
    let r = app
        .patch(
            &format!("/crimes/{id}"),
            Some(&w.officer_a),
            json!({"status": "ACCEPTED"}),
        )
        .await;
    ok(&r);
    assert_eq!(r.body["status"], "ACCEPTED");
    // Not NEW any more: the reporter can neither amend nor withdraw.
    status(
        &app.patch(
            &format!("/crimes/{id}"),
            Some(&w.citizen),
            json!({"title": "again"}),
        )
        .await,
        StatusCode::CONFLICT,
    );
    status(
        &app.delete(&format!("/crimes/{id}"), Some(&w.citizen)).await,
        StatusCode::CONFLICT,
    );
    // ADMIN withdraws; the patrol is released in the same append.
    let r = app.delete(&format!("/crimes/{id}"), Some(&w.admin)).await;
    ok(&r);
    assert_eq!(r.body["status"], "WITHDRAWN");
    let (patrol, _) = precinct_app_load_patrol(app, &w.patrol_a).await;
    assert_eq!(patrol["status"], "AVAILABLE");
}

async fn precinct_app_load_patrol(app: &TestApp, id: &str) -> (Value, u64) {
    let events = app
        .log
        .read(&precinct_eventlog::StreamId::new(
            "patrol",
            id.parse().expect("uuid"),
        ))
        .await
        .expect("read");
    let status = events
        .iter()
        .rev()
        .find(|e| e.envelope.event_type == "PatrolStatusChanged")
        .map(|e| e.data["status"].clone())
        .unwrap_or(json!("AVAILABLE"));
    (
        json!({"status": status}),
        events.last().map(|e| e.position()).unwrap_or(0),
    )
}

#[tokio::test]
async fn anonymous_report_gets_a_tracking_token() {
    let w = world().await;
    let app = &w.app;
    let r = app.report(None, LAT, LON, &["Vandalism"]).await;
    let token = r.body["tracking_token"]
        .as_str()
        .expect("tracking token")
        .to_string();
    assert!(token.len() >= 22, "at least 128 bits");
    assert_eq!(r.body["anonymous"], true);
    // The token is stored hashed: it does not appear in the log.
    let events = app
        .log
        .read(&precinct_eventlog::StreamId::new(
            "report",
            r.id().parse().expect("uuid"),
        ))
        .await
        .expect("read");
    assert!(!events[0].data.to_string().contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_dispatch_of_one_report_one_wins() {
    let w = world().await;
    let app = &w.app;
    let id = app
        .report(Some(&w.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    // Ten desks race (a dispatcher and a supervisor, to both patrols): one assignment.
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let desk = if i % 2 == 0 {
                &w.dispatcher
            } else {
                &w.supervisor
            };
            let patrol = if i % 4 < 2 { &w.patrol_a } else { &w.patrol_b };
            app.post(
                "/dispatch",
                Some(desk),
                json!({"crime_id": id, "patrol_id": patrol}),
            )
        })
        .collect();
    let results = futures::future::join_all(calls).await;
    let mut codes: Vec<u16> = results.iter().map(|r| r.status.as_u16()).collect();
    codes.sort();
    assert_eq!(
        codes,
        [200, 409, 409, 409, 409, 409, 409, 409, 409, 409],
        "{:?}",
        results.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    // Exactly one patrol is BUSY, the one the report names.
    let busy = [&w.patrol_a, &w.patrol_b];
    let mut n_busy = 0;
    for p in busy {
        if precinct_app_load_patrol(app, p).await.0["status"] == "BUSY" {
            n_busy += 1;
        }
    }
    assert_eq!(n_busy, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_notes_both_land() {
    let w = world().await;
    let app = &w.app;
    let id = app
        .report(Some(&w.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let path = format!("/crimes/{id}/notes");
    // Twelve writers, two callers, on a multi-threaded runtime: they contend on the
    // report's stream, and every note lands (a version conflict is retried by the
    // application layer, not answered 409).
    let futures: Vec<_> = (0..12)
        .map(|i| {
            let who = if i % 2 == 0 {
                &w.dispatcher
            } else {
                &w.supervisor
            };
            app.post(&path, Some(who), json!({"note": format!("note {i}")}))
        })
        .collect();
    let results = futures::future::join_all(futures).await;
    let mut last = 0;
    for r in &results {
        status(r, StatusCode::CREATED);
        last = last.max(r.position());
    }
    let report = app
        .get_at(&format!("/crimes/{id}"), Some(&w.dispatcher), last)
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    let mut texts: Vec<String> = report.body["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .map(|n| n["note"].as_str().unwrap_or_default().to_string())
        .collect();
    texts.sort();
    let mut expected: Vec<String> = (0..12).map(|i| format!("note {i}")).collect();
    expected.sort();
    assert_eq!(texts, expected, "every note once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registration_of_one_email_one_wins() {
    let app = TestApp::spawn().await.expect("spawn");
    let body = |n: u32| json!({"email": "Same.Person@Example.org", "password": PASSWORD, "name": format!("p{n}")});
    let calls: Vec<_> = (0..10)
        .map(|n| app.post("/users/register", None, body(n)))
        .collect();
    let results = futures::future::join_all(calls).await;
    let created = results
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    // The others are refused: 409, or 429 when the address or the account already holds its share of
    // password work (ADR 0010), which stops them before hashing.
    let refused = results
        .iter()
        .filter(|r| [StatusCode::CONFLICT, StatusCode::TOO_MANY_REQUESTS].contains(&r.status))
        .count();
    assert_eq!(
        (created, refused),
        (1, 9),
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    // Case-insensitive: another spelling is the same address.
    let r = app
        .post(
            "/users/register",
            None,
            json!({"email": "same.person@example.ORG", "password": PASSWORD, "name": "x"}),
        )
        .await;
    status(&r, StatusCode::CONFLICT);
    app.login("same.person@example.org", PASSWORD).await;
}

#[tokio::test]
async fn idempotent_retry_has_one_effect() {
    let w = world().await;
    let app = &w.app;
    let body = json!({"title": "Stolen car", "description": "Grey sedan", "crime_types": ["Car theft"],
                      "location": {"latitude": LAT, "longitude": LON}});
    let key = [("Idempotency-Key", "report-123")];
    let first = app
        .call(Method::POST, "/crimes", None, Some(body.clone()), &key)
        .await;
    status(&first, StatusCode::CREATED);
    let head = app.log.head().await.expect("head");
    let again = app
        .call(Method::POST, "/crimes", None, Some(body.clone()), &key)
        .await;
    status(&again, StatusCode::CREATED);
    assert_eq!(again.id(), first.id());
    assert_eq!(again.position(), first.position());
    assert_eq!(again.body["tracking_token"], first.body["tracking_token"]);
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "the retry appended nothing"
    );

    // A lifecycle command retried after the state moved on still answers the original.
    let id = first.id();
    let k = [("Idempotency-Key", "dispatch-1")];
    let d1 = app
        .call(
            Method::POST,
            "/dispatch",
            Some(&w.dispatcher),
            Some(json!({"crime_id": id, "patrol_id": w.patrol_a})),
            &k,
        )
        .await;
    ok(&d1);
    ok(&app
        .post(
            &format!("/crimes/{id}/accept"),
            Some(&w.officer_a),
            json!({}),
        )
        .await);
    let d2 = app
        .call(
            Method::POST,
            "/dispatch",
            Some(&w.dispatcher),
            Some(json!({"crime_id": id, "patrol_id": w.patrol_a})),
            &k,
        )
        .await;
    ok(&d2);
    assert_eq!(d2.position(), d1.position());
    // Without the key the same request is a new command, refused on the current state.
    let d3 = app
        .post(
            "/dispatch",
            Some(&w.dispatcher),
            json!({"crime_id": id, "patrol_id": w.patrol_a}),
        )
        .await;
    status(&d3, StatusCode::CONFLICT);
}

/// The dispatch of the chaos campaign's finding 2 (docs/reliability.md), as one command
/// through the application layer: assign the report and open the patrol's assignment.
async fn dispatch_in(
    uow: &mut precinct_app::UnitOfWork<'_>,
    report: uuid::Uuid,
    patrol: uuid::Uuid,
) -> Result<(), precinct_app::AppError> {
    use precinct_domain::ids::{PatrolId, ReportId};
    use precinct_domain::patrol::{Patrol, PatrolCommand};
    use precinct_domain::report::{Report, ReportCommand};
    let at = uow.now();
    uow.execute::<Report>(
        report,
        ReportCommand::Assign {
            patrol_id: PatrolId::new(patrol),
            decision: None,
            at,
        },
    )
    .await?;
    uow.execute::<Patrol>(
        patrol,
        PatrolCommand::OpenAssignment {
            report_id: ReportId::new(report),
            at,
        },
    )
    .await?;
    Ok(())
}

/// Finding 2 of the fault campaign, made deterministic: a retry (same command id) reads
/// the report before its first attempt's batch lands and the patrol after it, so its
/// decision refuses the command (the patrol already has this assignment: 409) although
/// the command is in the log. It must answer the original outcome instead.
#[tokio::test]
async fn a_retry_refused_because_its_first_attempt_landed_meanwhile_answers_the_original() {
    use precinct_app::{App, AppError};
    use precinct_domain::report::Report;
    use precinct_domain::values::ReportStatus;
    use precinct_domain::ErrorKind;
    use precinct_eventlog::{Actor, CommandMeta};

    let w = world().await;
    let app = &w.app;
    let report: uuid::Uuid = app
        .report(Some(&w.citizen), LAT, LON, &["Theft"])
        .await
        .id()
        .parse()
        .expect("uuid");
    let patrol: uuid::Uuid = w.patrol_a.parse().expect("uuid");
    let runner = App::new(app.log.clone());
    let meta = CommandMeta::new(uuid::Uuid::new_v4(), Actor::System);

    let mut first = None;
    let mut decisions = 0;
    let retry = runner
        .run::<Report>(&meta, report, async |uow| {
            decisions += 1;
            // This attempt has read the report (the primary stream, without the command
            // id). Now the first attempt of the same command lands...
            if first.is_none() {
                let landed = runner
                    .run::<Report>(&meta, report, async |inner| {
                        dispatch_in(inner, report, patrol).await
                    })
                    .await?;
                first = Some(landed);
            }
            // ...and this attempt reads the patrol after it: the decision refuses.
            dispatch_in(uow, report, patrol).await
        })
        .await;
    let first = first.expect("the first attempt ran");
    assert!(!first.duplicate);
    assert_eq!(decisions, 1, "the refusal is not retried as a conflict");
    let retry = retry.expect("the retry answers the original outcome, not the refusal");
    assert!(retry.duplicate);
    assert_eq!(retry.position, first.position);
    let state = retry
        .state::<Report>(report)
        .expect("the report as of the command");
    assert_eq!(state.status, ReportStatus::Assigned);
    assert_eq!(
        app.log.head().await.expect("head"),
        first.position,
        "the command was appended once"
    );

    // A new command (another id) on the same state is still refused.
    let other = CommandMeta::new(uuid::Uuid::new_v4(), Actor::System);
    let refused = runner
        .run::<Report>(&other, report, async |uow| {
            dispatch_in(uow, report, patrol).await
        })
        .await;
    assert!(
        matches!(
            refused,
            Err(AppError::Domain {
                kind: ErrorKind::Conflict,
                ..
            })
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn bad_input_is_a_clear_problem_and_appends_nothing() {
    let w = world().await;
    let app = &w.app;
    let head = app.log.head().await.expect("head");
    // Malformed JSON → 400.
    let r = app
        .http
        .post(format!("{}/crimes", app.base))
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Wrong types and missing fields → 422 naming the field.
    let r = app.post("/crimes", None, json!({"title": 5})).await;
    status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["field"], "title");
    let r = app
        .post("/crimes", None, json!({"title": "t", "description": "d", "crime_types": ["x"], "location": {"latitude": 91.0, "longitude": 0.0}}))
        .await;
    status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["field"], "location.latitude");
    let r = app
        .post("/crimes", None, json!({"title": "   ", "description": "d", "crime_types": ["x"], "location": {"latitude": LAT, "longitude": LON}}))
        .await;
    status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["field"], "title");
    // Unknown fields are refused (no mass assignment through extra keys).
    let r = app
        .post(
            "/crimes",
            None,
            json!({"title": "t", "description": "d", "crime_types": ["x"], "status": "CLOSED",
                                       "location": {"latitude": LAT, "longitude": LON}}),
        )
        .await;
    status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    // Over the body limit → 413.
    let big = "x".repeat(1024 * 1024 + 10);
    let r = app
        .post("/crimes", None, json!({"title": "t", "description": big, "crime_types": ["x"], "location": {"latitude": LAT, "longitude": LON}}))
        .await;
    status(&r, StatusCode::PAYLOAD_TOO_LARGE);
    // Resolve without notes → 422; a patrol call sign too long → 422.
    let r = app
        .post(
            "/users/register",
            None,
            json!({"email": "not-an-email", "password": PASSWORD, "name": "n"}),
        )
        .await;
    status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing was appended"
    );
    // Unknown route → problem+json 404.
    status(&app.get("/nope", None).await, StatusCode::NOT_FOUND);
}

fn b64(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn forged_and_alg_none_tokens_are_401() {
    let w = world().await;
    let app = &w.app;
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": uuid::Uuid::new_v4(), "role": "ADMIN", "iat": now, "exp": now + 600,
                        "iss": "precinct", "aud": "precinct-api"});
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    let forged = {
        use jsonwebtoken::{encode, EncodingKey, Header};
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"not-the-server-secret-0123456789"),
        )
        .expect("encode")
    };
    // A valid token with its payload swapped for an ADMIN one.
    let tampered = {
        let parts: Vec<&str> = w.citizen.split('.').collect();
        format!("{}.{}.{}", parts[0], b64(&claims), parts[2])
    };
    let expired = {
        use jsonwebtoken::{encode, EncodingKey, Header};
        let mut c = claims.clone();
        c["exp"] = json!(now - 3600);
        encode(
            &Header::default(),
            &c,
            &EncodingKey::from_secret(app.config.secret.expose()),
        )
        .expect("encode")
    };
    for token in [none, forged, tampered, expired, "garbage".to_string()] {
        let r = app
            .post(
                "/stations",
                Some(&token),
                json!({"name": "X", "kind": "DIVISION", "crime_types": ["x"]}),
            )
            .await;
        status(&r, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge(&r),
            r#"Bearer realm="precinct", error="invalid_token""#,
            "a sent but bad token is an invalid_token (RFC 6750 §3.1)"
        );
        // A bad token on an endpoint that also serves anonymous callers is not downgraded.
        let r = app
            .post("/crimes", Some(&token), json!({"title": "t", "description": "d", "crime_types": ["x"], "location": {"latitude": LAT, "longitude": LON}}))
            .await;
        status(&r, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge(&r),
            r#"Bearer realm="precinct", error="invalid_token""#
        );
    }
    // No token where one is needed: the bare challenge (no error code, RFC 6750 §3.1).
    let r = app
        .post(
            "/stations",
            None,
            json!({"name": "X", "kind": "DIVISION", "crime_types": ["x"]}),
        )
        .await;
    status(&r, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&r), r#"Bearer realm="precinct""#);
}

/// The `WWW-Authenticate` header of a 401 (RFC 9110 §11.6.1: every 401 carries one).
fn challenge(r: &Res) -> String {
    r.headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(none)")
        .to_string()
}

#[tokio::test]
async fn login_is_throttled_after_five_failures() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let (_, _) = app.account(&admin, "CITIZEN", None).await;
    let email = "victim@precinct.test";
    app.post(
        "/users/register",
        None,
        json!({"email": email, "password": PASSWORD, "name": "v"}),
    )
    .await;
    for _ in 0..5 {
        let r = app
            .post(
                "/users/login",
                None,
                json!({"email": email, "password": "wrong-password"}),
            )
            .await;
        status(&r, StatusCode::UNAUTHORIZED);
    }
    let r = app
        .post(
            "/users/login",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    status(&r, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.get("retry-after").is_some());
}

#[tokio::test]
async fn invites_create_staff_once_and_expire_by_use() {
    let w = world().await;
    let app = &w.app;
    // A supervisor may invite an officer to their own station, not an ADMIN.
    status(
        &app.post(
            "/invites",
            Some(&w.supervisor),
            json!({"email": "boss@precinct.test", "role": "ADMIN"}),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    let r = app
        .post("/invites", Some(&w.supervisor), json!({"email": "new.officer@precinct.test", "role": "PATROL", "station_id": w.station}))
        .await;
    status(&r, StatusCode::CREATED);
    let code = r.body["code"].as_str().expect("code").to_string();
    let r = app
        .post(
            "/invites/accept",
            None,
            json!({"code": code, "name": "New Officer", "password": PASSWORD}),
        )
        .await;
    status(&r, StatusCode::CREATED);
    assert_eq!(
        (r.body["role"].as_str(), r.body["station_id"].as_str()),
        (Some("PATROL"), Some(w.station.as_str()))
    );
    app.login("new.officer@precinct.test", PASSWORD).await;
    // Used codes are refused; unknown codes are 404.
    let r = app
        .post(
            "/invites/accept",
            None,
            json!({"code": code, "name": "Again", "password": PASSWORD}),
        )
        .await;
    status(&r, StatusCode::CONFLICT);
    let r = app
        .post(
            "/invites/accept",
            None,
            json!({"code": "not-a-code", "name": "X", "password": PASSWORD}),
        )
        .await;
    status(&r, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn routing_by_division_keyword_area_and_nearest() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let cyber = app
        .division(
            &admin,
            "Cybercrime Division",
            &["phishing", "online fraud", "hacking"],
        )
        .await;
    let north = app.precinct(&admin, "North", 10.0, 120.0).await;
    let south = app.precinct(&admin, "South", 0.0, 120.0).await;
    let r = app.report(None, 10.0, 120.0, &["Phishing attack"]).await;
    assert_eq!(r.body["station_id"], cyber.as_str());
    let r = app.report(None, 10.01, 120.01, &["Theft"]).await;
    assert_eq!(r.body["station_id"], north.as_str());
    // Outside every polygon: nearest precinct.
    let r = app.report(None, 2.0, 121.0, &["Theft"]).await;
    assert_eq!(r.body["station_id"], south.as_str());
    let events = app
        .log
        .read(&precinct_eventlog::StreamId::new(
            "report",
            r.id().parse().expect("uuid"),
        ))
        .await
        .expect("read");
    assert_eq!(events[0].data["routing"]["rule"], "NEAREST_PRECINCT");
}

#[tokio::test]
async fn every_request_is_logged() {
    let app = TestApp::spawn().await.expect("spawn");
    app.get("/health", None).await;
    app.post(
        "/users/login",
        None,
        json!({"email": "x@y.org", "password": "nope-nope-nope"}),
    )
    .await;
    // The writer group-commits asynchronously and the request-log projection follows
    // its stream: poll the table (bounded) until both requests are in it, then check
    // what was recorded of each. (The test spawner's readiness probes hit other paths.)
    let mut rows: Vec<(String, String, i32)> = Vec::new();
    for _ in 0..100 {
        rows = sqlx::query_as(
            "SELECT method, path, status FROM request_log
             WHERE path IN ('/health', '/users/login') ORDER BY seq",
        )
        .fetch_all(&app.pool)
        .await
        .expect("request_log");
        if rows.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        rows,
        [
            ("GET".to_string(), "/health".to_string(), 200),
            ("POST".to_string(), "/users/login".to_string(), 401),
        ],
        "the request log holds /health and the failed login, once each"
    );
}

/// The OpenAPI document declares an optional body as "an object or null": a JSON `null`
/// is the empty body (it was a 422, found by schemathesis's positive-data check).
#[tokio::test]
async fn a_json_null_body_is_an_empty_body() {
    let w = world().await;
    let app = &w.app;
    let id = app
        .report(Some(&w.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let r = app
        .post(
            "/dispatch",
            Some(&w.dispatcher),
            json!({"crime_id": id, "patrol_id": w.patrol_a}),
        )
        .await;
    status(&r, StatusCode::OK);
    let accept = app
        .post(
            &format!("/crimes/{id}/accept"),
            Some(&w.officer_a),
            Value::Null,
        )
        .await;
    status(&accept, StatusCode::OK);
    // A body that needs fields still names the missing one (422), null or not.
    let note = app
        .post(
            &format!("/crimes/{id}/notes"),
            Some(&w.dispatcher),
            Value::Null,
        )
        .await;
    status(&note, StatusCode::UNPROCESSABLE_ENTITY);
}
