//! Live status for citizens (issue 18, item 4): `GET /me/crimes/stream` for a signed-in
//! reporter and `GET /crimes/{id}/stream` for the report's reporter or its
//! tracking-token holder — status changes and public updates as Server-Sent Events, in
//! the reporter view only, resumable with `Last-Event-ID`. Real NATS and PostgreSQL,
//! through HTTP; every wait is bounded.

use std::time::Duration;

use precinct_tests::app::{Options, Res, TestApp};
use precinct_tests::client::Call;
use precinct_tests::sse::{SseClient, SseEvent};
use reqwest::StatusCode;
use serde_json::{json, Value};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;
/// How long a change may take to reach the reporter before the test fails.
const BOUND: Duration = Duration::from_secs(5);
/// How long a stream must stay quiet to count as "got nothing more".
const QUIET: Duration = Duration::from_millis(500);

const NOTE: &str = "Internal: the neighbour is a known fence";
const RESOLUTION: &str = "Internal: recovered from the fence, suspect released";
const JUSTIFICATION: &str = "Internal: known prank caller";
const UPDATE: &str = "Officers are on their way.";
const PUBLIC_REASON: &str = "This is a civil matter; please contact the city office.";

/// The keys a reporter's frame may carry, at any depth: fields of the reporter view.
const REPORTER_KEYS: &[&str] = &[
    "position",
    "report_id",
    "status",
    "at",
    "rejection_reason",
    "duplicate_of",
    "public_update",
    "id",
    "message",
];

struct World {
    app: TestApp,
    admin: String,
    dispatcher: String,
    dispatcher_id: String,
    supervisor: String,
    officer: String,
    officer_id: String,
    patrol: String,
    citizen_id: String,
    citizen: String,
    other_citizen: String,
}

async fn world() -> World {
    // A small ring: a reconnecting reporter catches up from JetStream, not memory.
    let mut opts = Options::default();
    opts.live.recent = 4;
    let app = TestApp::spawn_with(opts).await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (dispatcher_id, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let (_, supervisor) = app.account(&admin, "SUPERVISOR", Some(&station)).await;
    let (officer_id, officer) = app.account(&admin, "PATROL", Some(&station)).await;
    let patrol = app
        .patrol(&dispatcher, &station, "ALPHA-1", &[&officer_id])
        .await;
    let (citizen_id, citizen) = app.account(&admin, "CITIZEN", None).await;
    let (_, other_citizen) = app.account(&admin, "CITIZEN", None).await;
    World {
        app,
        admin,
        dispatcher,
        dispatcher_id,
        supervisor,
        officer,
        officer_id,
        patrol,
        citizen_id,
        citizen,
        other_citizen,
    }
}

fn ok(r: &Res) {
    assert!(r.status.is_success(), "{}: {}", r.status, r.body);
}

fn keys(v: &Value, out: &mut Vec<String>) {
    if let Value::Object(m) = v {
        for (k, v) in m {
            out.push(k.clone());
            keys(v, out);
        }
    }
}

/// Every event holds reporter-view keys only and none of `secrets`.
fn assert_reporter_only(events: &[SseEvent], secrets: &[&str]) {
    for ev in events {
        assert!(
            ["report_status", "public_update"].contains(&ev.event.as_str()),
            "{ev:?}"
        );
        let mut k = Vec::new();
        keys(&ev.data, &mut k);
        for key in &k {
            assert!(
                REPORTER_KEYS.contains(&key.as_str()),
                "`{key}` reached the reporter: {}",
                ev.data
            );
        }
        let text = ev.data.to_string();
        for secret in secrets {
            assert!(!text.contains(secret), "{secret:?} leaked: {text}");
        }
    }
}

/// What a reporter reads of a list of events: `status` or `update:<message>`.
fn seen(events: &[SseEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e.event.as_str() {
            "public_update" => format!(
                "update:{}",
                e.data["public_update"]["message"]
                    .as_str()
                    .unwrap_or_default()
            ),
            _ => e.data["status"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// The next `n` events of `stream` (fails the test if they do not come in time).
async fn next_n(stream: &mut SseClient, n: usize) -> Vec<SseEvent> {
    let mut out = Vec::new();
    while out.len() < n {
        let ev = stream
            .next(BOUND)
            .await
            .unwrap_or_else(|| panic!("only {} of {n} events came: {out:?}", out.len()));
        out.push(ev);
    }
    out
}

#[tokio::test]
async fn a_reporter_follows_their_report_live_and_resumes_without_gaps() {
    let w = world().await;
    let app = &w.app;
    // Open before submitting: the submission itself arrives too.
    let mut mine = SseClient::open(app, "/me/crimes/stream", &w.citizen, None).await;
    let mut others = SseClient::open(app, "/me/crimes/stream", &w.other_citizen, None).await;
    let submitted = app.report(Some(&w.citizen), LAT, LON, &["Theft"]).await;
    let id = submitted.id();
    // The submission's acknowledgement does not wait for the live hub: a stream opened
    // now could still see NEW arrive. Open the report's own stream once the hub has
    // delivered NEW to the reporter's stream, so it starts after it.
    let submitted_frame = next_n(&mut mine, 1).await;
    assert_eq!(seen(&submitted_frame), ["NEW"]);
    let mut one = SseClient::open(app, &format!("/crimes/{id}/stream"), &w.citizen, None).await;

    // Nobody else may follow it: another citizen, staff, no credentials, a wrong token.
    let path = format!("/crimes/{id}/stream");
    for token in [
        Some(w.other_citizen.as_str()),
        Some(w.dispatcher.as_str()),
        None,
    ] {
        let r = SseClient::request_with(app, &path, token, &[], None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{token:?}");
    }
    let r = SseClient::request_with(
        app,
        &path,
        None,
        &[("X-Tracking-Token", "not-the-token")],
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = SseClient::request_with(
        app,
        &format!("/crimes/{}/stream", uuid::Uuid::new_v4()),
        Some(&w.citizen),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Staff drive the lifecycle, with internal work in between.
    ok(&app
        .post(
            &format!("/crimes/{id}/notes"),
            Some(&w.dispatcher),
            json!({"note": NOTE}),
        )
        .await);
    ok(&app
        .post(
            "/dispatch",
            Some(&w.dispatcher),
            json!({"crime_id": id, "patrol_id": w.patrol}),
        )
        .await);
    ok(&app
        .post(&format!("/crimes/{id}/accept"), Some(&w.officer), json!({}))
        .await);
    let first: Vec<SseEvent> = submitted_frame
        .into_iter()
        .chain(next_n(&mut mine, 2).await)
        .collect();
    assert_eq!(seen(&first), ["NEW", "ASSIGNED", "ACCEPTED"]);
    let on_one = next_n(&mut one, 2).await;
    assert_eq!(seen(&on_one), ["ASSIGNED", "ACCEPTED"]);
    // The report's own stream drops here; the lifecycle goes on without it.
    let last_seen = on_one[1].id.clone().expect("an id");
    drop(one);

    ok(&app
        .post(
            &format!("/crimes/{id}/public-updates"),
            Some(&w.officer),
            json!({"message": UPDATE}),
        )
        .await);
    ok(&app
        .post(
            &format!("/crimes/{id}/respond"),
            Some(&w.officer),
            json!({}),
        )
        .await);
    ok(&app
        .post(
            &format!("/crimes/{id}/resolve"),
            Some(&w.officer),
            json!({"resolution_notes": RESOLUTION}),
        )
        .await);
    let closed = app
        .post(
            &format!("/crimes/{id}/closure/approve"),
            Some(&w.supervisor),
            json!({}),
        )
        .await;
    ok(&closed);
    let rest = next_n(&mut mine, 4).await;
    let expected = [
        format!("update:{UPDATE}"),
        "RESPONDING".into(),
        "RESOLVED".into(),
        "CLOSED".into(),
    ];
    assert_eq!(seen(&rest), expected);
    assert_eq!(
        rest[3].id,
        Some(format!("e{}", closed.position())),
        "ids are log positions"
    );
    assert!(mine.drain(QUIET).await.is_empty(), "nothing more");
    let secrets = [
        NOTE,
        RESOLUTION,
        w.officer_id.as_str(),
        w.dispatcher_id.as_str(),
        w.patrol.as_str(),
    ];
    let all: Vec<SseEvent> = first.iter().chain(&rest).cloned().collect();
    assert_reporter_only(&all, &secrets);
    for ev in &all {
        assert_eq!(ev.data["report_id"], id.as_str());
        assert_eq!(
            ev.id,
            Some(format!("e{}", ev.data["position"])),
            "the id names the position"
        );
    }

    // Reconnecting with the last id seen gets exactly what was missed (from JetStream:
    // the ring holds 4 frames), then nothing more.
    let mut again = SseClient::open(app, &path, &w.citizen, Some(&last_seen)).await;
    let missed = next_n(&mut again, 4).await;
    assert_eq!(seen(&missed), expected);
    assert_eq!(
        missed.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        rest.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );
    assert_reporter_only(&missed, &secrets);
    assert!(again.drain(QUIET).await.is_empty(), "no duplicates");

    // The reporter's own stream resumes the same way: after ACCEPTED, exactly the rest.
    let after_accepted = first[2].id.clone().expect("an id");
    let mut mine_again =
        SseClient::open(app, "/me/crimes/stream", &w.citizen, Some(&after_accepted)).await;
    let resumed = next_n(&mut mine_again, 4).await;
    assert_eq!(seen(&resumed), expected);
    assert_eq!(
        resumed.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        rest.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );
    assert_reporter_only(&resumed, &secrets);
    assert!(mine_again.drain(QUIET).await.is_empty(), "no duplicates");

    // Another citizen got none of it.
    assert!(others.drain(QUIET).await.is_empty());
}

#[tokio::test]
async fn a_tracking_token_holder_follows_their_one_report() {
    let w = world().await;
    let app = &w.app;
    // The desk's stream tells when the live hub has passed both submissions (it works
    // in log order); streams opened before that could still see them arrive.
    let mut desk = SseClient::open(app, "/queues/reports/stream", &w.dispatcher, None).await;
    let submitted = app.report(None, LAT, LON, &["Theft"]).await;
    let id = submitted.id();
    let token = submitted.body["tracking_token"]
        .as_str()
        .expect("a tracking token")
        .to_string();
    let other = app.report(None, LAT, LON, &["Theft"]).await;
    let other_token = other.body["tracking_token"]
        .as_str()
        .expect("a tracking token")
        .to_string();
    loop {
        let ev = desk
            .next_of("report", BOUND)
            .await
            .expect("the submissions reach the desk");
        if ev.data["report_id"] == other.id().as_str() {
            break;
        }
    }
    let path = format!("/crimes/{id}/stream");
    let mut stream = SseClient::open_with(
        app,
        &path,
        None,
        &[("X-Tracking-Token", token.as_str())],
        None,
    )
    .await;
    // Another report's token opens only that report.
    let r = SseClient::request_with(
        app,
        &path,
        None,
        &[("X-Tracking-Token", other_token.as_str())],
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let mut theirs = SseClient::open_with(
        app,
        &format!("/crimes/{}/stream", other.id()),
        None,
        &[("X-Tracking-Token", other_token.as_str())],
        None,
    )
    .await;
    // A signed-in account never gets an anonymous report's changes.
    let mut citizen = SseClient::open(app, "/me/crimes/stream", &w.citizen, None).await;

    ok(&app
        .post(
            &format!("/crimes/{id}/public-updates"),
            Some(&w.dispatcher),
            json!({"message": UPDATE}),
        )
        .await);
    ok(&app
        .post(
            &format!("/crimes/{id}/reject"),
            Some(&w.dispatcher),
            json!({"justification": JUSTIFICATION, "public_reason": PUBLIC_REASON}),
        )
        .await);
    let events = next_n(&mut stream, 2).await;
    assert_eq!(
        seen(&events),
        [format!("update:{UPDATE}"), "REJECTED".into()]
    );
    assert_eq!(events[1].data["rejection_reason"], PUBLIC_REASON);
    assert_reporter_only(&events, &[JUSTIFICATION, w.dispatcher_id.as_str()]);
    assert!(theirs.drain(QUIET).await.is_empty());
    assert!(citizen.drain(QUIET).await.is_empty());
    // The token holder resumes after the update: the rejection only, then nothing.
    let after_update = events[0].id.clone().expect("an id");
    let mut resumed = SseClient::open_with(
        app,
        &path,
        None,
        &[("X-Tracking-Token", token.as_str())],
        Some(&after_update),
    )
    .await;
    let missed = next_n(&mut resumed, 1).await;
    assert_eq!(seen(&missed), ["REJECTED"]);
    assert_eq!(missed[0].id, events[1].id);
    assert!(resumed.drain(QUIET).await.is_empty(), "no duplicates");

    // At most 5 streams per report for its token holders (`stream` and `resumed` are
    // two of them).
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            SseClient::open_with(
                app,
                &path,
                None,
                &[("X-Tracking-Token", token.as_str())],
                None,
            )
            .await,
        );
    }
    let r = SseClient::request_with(
        app,
        &path,
        None,
        &[("X-Tracking-Token", token.as_str())],
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_reporters_stream_ends_when_their_account_is_deactivated() {
    let w = world().await;
    let app = &w.app;
    let mut stream = SseClient::open(app, "/me/crimes/stream", &w.citizen, None).await;
    assert!(!stream.ends_within(Duration::from_millis(300)).await);
    ok(&app
        .send(&Call::deactivate(&w.citizen_id), Some(&w.admin))
        .await);
    assert!(
        stream.ends_within(Duration::from_secs(10)).await,
        "the deactivated reporter's stream is still open"
    );
    let r = SseClient::request(app, "/me/crimes/stream", &w.citizen, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
