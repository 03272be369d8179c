//! `Idempotency-Key` (issue 13, item 9): a key is scoped to its caller — the account, or
//! for anonymous callers the client address — so that one anonymous client replaying
//! another's key and body makes a report of its own and never receives the first
//! reporter's report or tracking token; and a key reused with a different body is
//! refused (422), as the IETF Idempotency-Key draft and Stripe do.

use precinct_tests::app::{Res, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

/// A client whose connections come from another loopback address (127.0.0.2): to the
/// server, a second anonymous caller.
fn client_at(addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(addr.parse().expect("an IP address")))
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("client")
}

async fn call_with(
    client: &reqwest::Client,
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Value,
    headers: &[(&str, &str)],
) -> Res {
    let mut req = client.request(method, format!("{}{path}", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.json(&body).send().await.expect("HTTP request");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap_or_default();
    Res {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn report_body(title: &str) -> Value {
    json!({"title": title, "description": "Grey sedan, plate unknown",
           "crime_types": ["Car theft"],
           "location": {"latitude": LAT, "longitude": LON}})
}

fn assert_key_reused(r: &Res) {
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(r.body["status"], 422);
    assert_eq!(
        r.body["errors"][0]["field"], "Idempotency-Key",
        "{}",
        r.body
    );
}

async fn setup() -> (TestApp, String) {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    app.precinct(&admin, "PS1", LAT, LON).await;
    (app, admin)
}

#[tokio::test]
async fn another_anonymous_client_replaying_a_key_and_body_gets_its_own_report() {
    let (app, _) = setup().await;
    let here = client_at("127.0.0.1");
    let elsewhere = client_at("127.0.0.2");
    let key = [("Idempotency-Key", "submit-1")];
    let body = report_body("Stolen car");

    let first = call_with(
        &here,
        &app,
        Method::POST,
        "/crimes",
        None,
        body.clone(),
        &key,
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let first_token = first.body["tracking_token"]
        .as_str()
        .expect("tracking token")
        .to_string();

    let second = call_with(
        &elsewhere,
        &app,
        Method::POST,
        "/crimes",
        None,
        body.clone(),
        &key,
    )
    .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert_ne!(second.id(), first.id(), "another client's own report");
    assert_ne!(second.position(), first.position());
    let second_token = second.body["tracking_token"]
        .as_str()
        .expect("tracking token")
        .to_string();
    assert_ne!(second_token, first_token);
    assert!(
        !second.body.to_string().contains(&first_token),
        "the first reporter's token leaked: {}",
        second.body
    );

    // The first client's own retry is still the same command: same report, same token.
    let head = app.log.head().await.expect("head");
    let again = call_with(
        &here,
        &app,
        Method::POST,
        "/crimes",
        None,
        body.clone(),
        &key,
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.id(), first.id());
    assert_eq!(again.position(), first.position());
    assert_eq!(again.body["tracking_token"], first_token.as_str());
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );

    // Each token opens its own report only.
    app.caught_up(head).await;
    for (token, mine, theirs) in [
        (&first_token, first.id(), second.id()),
        (&second_token, second.id(), first.id()),
    ] {
        let h = [("X-Tracking-Token", token.as_str())];
        let r = app
            .call(Method::GET, &format!("/crimes/{mine}"), None, None, &h)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = app
            .call(Method::GET, &format!("/crimes/{theirs}"), None, None, &h)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    }
}

#[tokio::test]
async fn a_key_reused_with_a_different_body_is_422_and_appends_nothing() {
    let (app, admin) = setup().await;
    let key = [("Idempotency-Key", "k-1")];
    let first = app
        .call(
            Method::POST,
            "/crimes",
            None,
            Some(report_body("Stolen car")),
            &key,
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let head = app.log.head().await.expect("head");
    let r = app
        .call(
            Method::POST,
            "/crimes",
            None,
            Some(report_body("Stolen van")),
            &key,
        )
        .await;
    assert_key_reused(&r);
    assert!(r.body.get("tracking_token").is_none());
    assert!(!r.body.to_string().contains(&first.id()), "{}", r.body);
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );

    // Signed in: the same for a note; the same key on another path is another command.
    let station = app.get("/stations", None).await.body["items"][0]["id"]
        .as_str()
        .expect("station")
        .to_string();
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let id = first.id();
    let other = app.report(None, LAT, LON, &["Theft"]).await.id();
    let note_key = [("Idempotency-Key", "note-1")];
    let notes = format!("/crimes/{id}/notes");
    let r = app
        .call(
            Method::POST,
            &notes,
            Some(&dispatcher),
            Some(json!({"note": "seen"})),
            &note_key,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let again = app
        .call(
            Method::POST,
            &notes,
            Some(&dispatcher),
            Some(json!({"note": "seen"})),
            &note_key,
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.position(), r.position(), "a retry, not a new note");
    let head = app.log.head().await.expect("head");
    let changed = app
        .call(
            Method::POST,
            &notes,
            Some(&dispatcher),
            Some(json!({"note": "seen twice"})),
            &note_key,
        )
        .await;
    assert_key_reused(&changed);
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );
    let elsewhere = app
        .call(
            Method::POST,
            &format!("/crimes/{other}/notes"),
            Some(&dispatcher),
            Some(json!({"note": "seen twice"})),
            &note_key,
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::CREATED, "{}", elsewhere.body);
    app.caught_up(elsewhere.position()).await;
    let r = app.get(&format!("/crimes/{id}"), Some(&dispatcher)).await;
    assert_eq!(
        r.body["notes"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn concurrent_requests_reusing_a_key_with_different_bodies_make_one_report() {
    let (app, _) = setup().await;
    let head = app.log.head().await.expect("head");
    let key = [("Idempotency-Key", "race-1")];
    let a = app.call(
        Method::POST,
        "/crimes",
        None,
        Some(report_body("Stolen car")),
        &key,
    );
    let b = app.call(
        Method::POST,
        "/crimes",
        None,
        Some(report_body("Stolen bike")),
        &key,
    );
    let (a, b) = tokio::join!(a, b);
    let mut codes = [a.status.as_u16(), b.status.as_u16()];
    codes.sort();
    assert_eq!(codes, [201, 422], "{} / {}", a.body, b.body);
    let loser = if a.status == StatusCode::CREATED {
        &b
    } else {
        &a
    };
    assert_key_reused(loser);
    assert_eq!(
        app.log.head().await.expect("head"),
        head + 1,
        "exactly one report was appended"
    );
}

/// The race that turns cannot rule out (two processes, or a turn given up): another
/// request under the same command id lands while this one is deciding, so this one's
/// append meets the command id already in the log. It must be refused as a reused key,
/// not answered as a retry.
#[tokio::test]
async fn a_different_request_landing_under_the_same_command_id_mid_decision_is_key_reused() {
    use precinct_app::{App, AppError};
    use precinct_domain::report::{Report, ReportCommand};
    use precinct_domain::values::Priority;
    use precinct_eventlog::{Actor, CommandMeta, RequestHash};

    let (app, _) = setup().await;
    let report: uuid::Uuid = app
        .report(None, LAT, LON, &["Theft"])
        .await
        .id()
        .parse()
        .expect("uuid");
    // Two processes: each has its own turns.
    let here = App::new(app.log.clone());
    let there = App::new(app.log.clone());
    let command_id = uuid::Uuid::new_v4();
    let meta = |hash: u8| CommandMeta {
        request_hash: Some(RequestHash([hash; 32])),
        ..CommandMeta::new(command_id, Actor::System)
    };
    let (mine, theirs) = (meta(1), meta(2));
    let triage = |priority| ReportCommand::Triage {
        priority,
        at: chrono::Utc::now(),
    };
    let mut landed = None;
    let outcome = here
        .run::<Report>(&mine, report, async |uow| {
            uow.execute::<Report>(report, triage(Priority::High))
                .await?;
            if landed.is_none() {
                // This attempt has decided on the report without the command; now the
                // other request lands under the same id.
                let other = there
                    .run::<Report>(&theirs, report, async |inner| {
                        inner
                            .execute::<Report>(report, triage(Priority::Low))
                            .await?;
                        Ok(())
                    })
                    .await?;
                landed = Some(other);
            }
            Ok(())
        })
        .await;
    assert!(landed.is_some_and(|o| !o.duplicate));
    assert!(matches!(outcome, Err(AppError::KeyReused)), "{outcome:?}");
    // A true retry of the landed request is answered with its outcome.
    let retry = here
        .run::<Report>(&theirs, report, async |uow| {
            uow.execute::<Report>(report, triage(Priority::Low)).await?;
            Ok(())
        })
        .await
        .expect("the same request again is its retry");
    assert!(retry.duplicate);
}

#[tokio::test]
async fn a_key_outside_the_documented_pattern_is_400_and_appends_nothing() {
    let (app, _) = setup().await;
    let client = reqwest::Client::new();
    let head = app.log.head().await.expect("head");
    // `^[!-~]{1,255}$`: visible ASCII without space or tab, 1 to 255 characters.
    let long = "k".repeat(256);
    for key in ["with space", "tab\there", long.as_str()] {
        let r = call_with(
            &client,
            &app,
            Method::POST,
            "/crimes",
            None,
            report_body("Stolen car"),
            &[("Idempotency-Key", key)],
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{key:?}: {}", r.body);
        assert_eq!(r.body["status"], 400, "{}", r.body);
    }
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );
    let ok = call_with(
        &client,
        &app,
        Method::POST,
        "/crimes",
        None,
        report_body("Stolen car"),
        &[("Idempotency-Key", "visible-ascii_!~")],
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
}
