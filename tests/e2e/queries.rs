//! The query side end to end: HTTP command → JetStream → projector → PostgreSQL → HTTP
//! query, with each visibility rule.

use std::time::Duration;

use precinct_tests::app::{Options, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

struct Desk {
    app: TestApp,
    admin: String,
    station: String,
    dispatcher: String,
    supervisor: String,
    officer_id: String,
    officer: String,
    patrol: String,
    citizen: String,
}

async fn desk_with(opts: Options) -> Desk {
    let app = TestApp::spawn_with(opts).await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let (_, supervisor) = app.account(&admin, "SUPERVISOR", Some(&station)).await;
    let (officer_id, officer) = app.account(&admin, "PATROL", Some(&station)).await;
    let patrol = app
        .patrol(&dispatcher, &station, "ALPHA-1", &[&officer_id])
        .await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    Desk {
        app,
        admin,
        station,
        dispatcher,
        supervisor,
        officer_id,
        officer,
        patrol,
        citizen,
    }
}

async fn desk() -> Desk {
    desk_with(Options::default()).await
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn ids(v: &Value) -> Vec<String> {
    items(v)
        .iter()
        .map(|i| i["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn public_list_leaks_no_personal_data_and_staff_see_their_station() {
    let d = desk().await;
    let app = &d.app;
    let r = app
        .report(Some(&d.citizen), LAT + 0.00123, LON + 0.00456, &["Theft"])
        .await;
    let id = r.id();
    let public = app.get_at("/crimes", None, r.position()).await;
    assert_eq!(public.status, StatusCode::OK);
    assert_eq!(ids(&public.body), std::slice::from_ref(&id));
    let text = public.body.to_string();
    for secret in [
        "blue bike",
        "1 Main St",
        "+63 900",
        "Bike stolen",
        "reporter_id",
        "description",
    ] {
        assert!(!text.contains(secret), "public list leaks {secret}: {text}");
    }
    let item = &items(&public.body)[0];
    assert_eq!(item["location"]["latitude"], json!(7.071));
    assert_eq!(item["location"]["longitude"], json!(125.615));
    assert!(public.body["next_cursor"].is_null());

    // A citizen gets the public view too (their own full reports are under /me/crimes).
    let as_citizen = app.get("/crimes", Some(&d.citizen)).await;
    assert!(!as_citizen.body.to_string().contains("blue bike"));
    let mine = app.get("/me/crimes", Some(&d.citizen)).await;
    assert_eq!(
        items(&mine.body)[0]["description"],
        "My blue bike was taken from the rack"
    );

    // Staff of the station get the full view; staff of another station see none of it.
    let staff = app.get("/crimes", Some(&d.dispatcher)).await;
    assert_eq!(items(&staff.body)[0]["location"]["street"], "1 Main St");
    let other = app.precinct(&d.admin, "PS2", 9.0, 127.0).await;
    let (_, other_dispatcher) = app.account(&d.admin, "DISPATCHER", Some(&other)).await;
    let theirs = app.get("/crimes", Some(&other_dispatcher)).await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert!(items(&theirs.body).is_empty());
    let forbidden = app
        .get(
            &format!("/crimes?station_id={}", d.station),
            Some(&other_dispatcher),
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn one_report_is_visible_to_its_audience_only() {
    let d = desk().await;
    let app = &d.app;
    let mine = app.report(Some(&d.citizen), LAT, LON, &["Theft"]).await;
    let anon = app.report(None, LAT, LON, &["Vandalism"]).await;
    let token = anon.body["tracking_token"]
        .as_str()
        .expect("token")
        .to_string();
    app.caught_up(anon.position()).await;

    let ok = |r: &precinct_tests::app::Res| {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.body["description"],
            "My blue bike was taken from the rack"
        );
    };
    ok(&app
        .get(&format!("/crimes/{}", mine.id()), Some(&d.citizen))
        .await);
    ok(&app
        .get(&format!("/crimes/{}", mine.id()), Some(&d.officer))
        .await);
    ok(&app
        .get(&format!("/crimes/{}", mine.id()), Some(&d.admin))
        .await);
    let with_token = app
        .call(
            Method::GET,
            &format!("/crimes/{}", anon.id()),
            None,
            None,
            &[("X-Tracking-Token", &token)],
        )
        .await;
    ok(&with_token);

    let (_, stranger) = app.account(&d.admin, "CITIZEN", None).await;
    for (token, path) in [
        (Some(stranger.as_str()), format!("/crimes/{}", mine.id())),
        (None, format!("/crimes/{}", mine.id())),
        (None, format!("/crimes/{}", anon.id())),
        (Some(d.citizen.as_str()), format!("/crimes/{}", anon.id())),
    ] {
        let r = app.get(&path, token).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    let wrong = app
        .call(
            Method::GET,
            &format!("/crimes/{}", anon.id()),
            None,
            None,
            &[("X-Tracking-Token", "guess")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND);
    let other = app.precinct(&d.admin, "PS2", 9.0, 127.0).await;
    let (_, other_officer) = app.account(&d.admin, "PATROL", Some(&other)).await;
    let r = app
        .get(&format!("/crimes/{}", mine.id()), Some(&other_officer))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn history_and_as_of_come_from_the_log() {
    let d = desk().await;
    let app = &d.app;
    let id = app
        .report(Some(&d.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let r = app
        .post(
            "/dispatch",
            Some(&d.dispatcher),
            json!({"crime_id": id, "patrol_id": d.patrol}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .post(&format!("/crimes/{id}/accept"), Some(&d.officer), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let accepted = r.position();

    let h = app
        .get(&format!("/crimes/{id}/history"), Some(&d.supervisor))
        .await;
    assert_eq!(h.status, StatusCode::OK);
    let types: Vec<String> = items(&h.body)
        .iter()
        .map(|i| i["type"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        types,
        ["ReportSubmitted", "ReportAssigned", "AssignmentAccepted"]
    );
    assert_eq!(items(&h.body)[2]["actor_id"], d.officer_id.as_str());
    // Paging through history.
    let p1 = app
        .get(
            &format!("/crimes/{id}/history?limit=2"),
            Some(&d.supervisor),
        )
        .await;
    assert_eq!(items(&p1.body).len(), 2);
    let cursor = p1.body["next_cursor"].as_str().expect("cursor").to_string();
    let p2 = app
        .get(
            &format!("/crimes/{id}/history?limit=2&cursor={cursor}"),
            Some(&d.supervisor),
        )
        .await;
    assert_eq!(items(&p2.body).len(), 1);
    // History is staff-only.
    assert_eq!(
        app.get(&format!("/crimes/{id}/history"), Some(&d.citizen))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // As of the submission's own time (no sleep, no test clock): the state before the
    // assignment, whatever the timing of the commands.
    let at = items(&h.body)[0]["occurred_at"]
        .as_str()
        .expect("occurred_at")
        .to_string();
    let time = |i: usize| {
        chrono::DateTime::parse_from_rfc3339(
            items(&h.body)[i]["occurred_at"]
                .as_str()
                .unwrap_or_default(),
        )
        .expect("occurred_at")
    };
    assert!(
        time(0) < time(1),
        "the assignment is later than the submission: {}",
        h.body
    );
    let then = app
        .get(
            &format!("/crimes/{id}?as_of={}", at.replace('+', "%2B")),
            Some(&d.citizen),
        )
        .await;
    assert_eq!(then.status, StatusCode::OK, "{}", then.body);
    assert_eq!(then.body["status"], "NEW");
    // The read model, once it includes the accept (a read straight after a command
    // without its position may see the state before it).
    let now = app
        .get_at(&format!("/crimes/{id}"), Some(&d.citizen), accepted)
        .await;
    assert_eq!(now.status, StatusCode::OK, "{}", now.body);
    assert_eq!(now.body["status"], "ACCEPTED");
    // Before the report existed: 404.
    let long_ago = app
        .get(
            &format!("/crimes/{id}?as_of=2000-01-01T00:00:00Z"),
            Some(&d.citizen),
        )
        .await;
    assert_eq!(long_ago.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn queue_orders_by_priority_then_age_and_pages_without_gaps() {
    let d = desk().await;
    let app = &d.app;
    let mut all = Vec::new();
    for _ in 0..5 {
        all.push(
            app.report(Some(&d.citizen), LAT, LON, &["Theft"])
                .await
                .id(),
        );
    }
    let r = app
        .post(
            &format!("/crimes/{}/triage", all[3]),
            Some(&d.dispatcher),
            json!({"priority": "CRITICAL"}),
        )
        .await;
    let r2 = app
        .post(
            &format!("/crimes/{}/triage", all[4]),
            Some(&d.dispatcher),
            json!({"priority": "LOW"}),
        )
        .await;
    assert!(r.status.is_success() && r2.status.is_success());
    let q = app
        .get_at("/queues/reports", Some(&d.dispatcher), r2.position())
        .await;
    assert_eq!(q.status, StatusCode::OK);
    assert_eq!(
        ids(&q.body),
        [
            all[3].clone(),
            all[0].clone(),
            all[1].clone(),
            all[2].clone(),
            all[4].clone()
        ]
    );
    // Pages of two: same order, no duplicates, no gaps.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            Some(c) => format!("/queues/reports?limit=2&cursor={c}"),
            None => "/queues/reports?limit=2".to_string(),
        };
        let p = app.get(&path, Some(&d.dispatcher)).await;
        seen.extend(ids(&p.body));
        cursor = p.body["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, ids(&q.body));
    // Filters and limits.
    let crit = app
        .get("/queues/reports?priority=CRITICAL", Some(&d.dispatcher))
        .await;
    assert_eq!(ids(&crit.body), [all[3].clone()]);
    assert_eq!(
        app.get("/queues/reports?limit=1000", Some(&d.dispatcher))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.get("/queues/reports?cursor=bogus", Some(&d.dispatcher))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/queues/reports", Some(&d.citizen)).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn near_filter_finds_reports_within_the_radius() {
    let d = desk().await;
    let app = &d.app;
    let close = app.report(Some(&d.citizen), LAT, LON, &["Theft"]).await;
    let far = app
        .report(Some(&d.citizen), LAT + 0.04, LON, &["Theft"])
        .await; // ~4.4 km north
    app.caught_up(far.position()).await;
    let r = app
        .get(&format!("/crimes?near={LAT},{LON}&radius_m=1000"), None)
        .await;
    assert_eq!(ids(&r.body), [close.id()]);
    let r = app
        .get(
            &format!("/crimes?near={LAT},{LON}&radius_m=10000"),
            Some(&d.dispatcher),
        )
        .await;
    assert_eq!(ids(&r.body).len(), 2);
    assert_eq!(
        app.get("/crimes?near=abc", None).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn patrols_workloads_and_the_officer_inbox() {
    let d = desk().await;
    let app = &d.app;
    let id = app
        .report(Some(&d.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let r = app
        .post(
            "/dispatch",
            Some(&d.dispatcher),
            json!({"crime_id": id, "patrol_id": d.patrol}),
        )
        .await;
    let pos = r.position();
    let roster = app
        .get_at("/patrols/register", Some(&d.dispatcher), pos)
        .await;
    assert_eq!(roster.status, StatusCode::OK);
    let p = &items(&roster.body)[0];
    assert_eq!(
        (p["id"].as_str(), p["status"].as_str()),
        (Some(d.patrol.as_str()), Some("BUSY"))
    );
    assert_eq!(p["officer_ids"], json!([d.officer_id]));
    let one = app
        .get(&format!("/patrols/{}", d.patrol), Some(&d.officer))
        .await;
    assert_eq!(one.body["call_sign"], "ALPHA-1");
    let w = app.get("/workloads", Some(&d.supervisor)).await;
    let w0 = &items(&w.body)[0];
    assert_eq!(
        (w0["open_assignments"].as_i64(), w0["declines"].as_i64()),
        (Some(1), Some(0))
    );
    assert!(w0["last_assigned_at"].is_string());
    let inbox = app.get("/me/assignments", Some(&d.officer)).await;
    assert_eq!(ids(&inbox.body), std::slice::from_ref(&id));
    assert_eq!(
        app.get("/me/assignments", Some(&d.citizen)).await.status,
        StatusCode::FORBIDDEN
    );
    // Other stations do not see this patrol.
    let other = app.precinct(&d.admin, "PS2", 9.0, 127.0).await;
    let (_, other_dispatcher) = app.account(&d.admin, "DISPATCHER", Some(&other)).await;
    assert_eq!(
        app.get(&format!("/patrols/{}", d.patrol), Some(&other_dispatcher))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(items(&app.get("/workloads", Some(&other_dispatcher)).await.body).is_empty());
    // Declined: open 0, declines 1.
    let r = app
        .post(
            &format!("/crimes/{id}/decline"),
            Some(&d.officer),
            json!({"reason": "busy"}),
        )
        .await;
    let w = app
        .get_at("/workloads", Some(&d.supervisor), r.position())
        .await;
    let w0 = &items(&w.body)[0];
    assert_eq!(
        (
            w0["open_assignments"].as_i64(),
            w0["declines"].as_i64(),
            w0["status"].as_str()
        ),
        (Some(0), Some(1), Some("AVAILABLE"))
    );
}

#[tokio::test]
async fn sla_overdue_views_and_breach_events() {
    let d = desk_with(Options {
        sla_accept: Duration::from_secs(1),
        sla_respond: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    let app = &d.app;
    let id = app
        .report(Some(&d.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let r = app
        .post(
            "/dispatch",
            Some(&d.dispatcher),
            json!({"crime_id": id, "patrol_id": d.patrol}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    app.caught_up(r.position()).await;
    // Bounded wait for the worker to record the breach (SLA 1 s, scans every 200 ms).
    let mut breach = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let h = app
            .get(&format!("/crimes/{id}/history"), Some(&d.supervisor))
            .await;
        breach = items(&h.body)
            .into_iter()
            .find(|i| i["type"] == "SlaBreached");
        if breach.is_some() {
            break;
        }
    }
    let breach = breach.expect("an SlaBreached event");
    assert_eq!(breach["data"]["kind"], "ACCEPT");
    assert!(breach["actor_id"].is_null(), "recorded by the system");
    let overdue = app.get("/sla?overdue=accept", Some(&d.dispatcher)).await;
    assert_eq!(overdue.status, StatusCode::OK);
    let o = &items(&overdue.body)[0];
    assert_eq!(o["id"], id.as_str());
    assert!(o["overdue_by_secs"].as_i64().unwrap_or(-1) >= 0);
    assert!(items(
        &app.get("/sla?overdue=respond", Some(&d.dispatcher))
            .await
            .body
    )
    .is_empty());
    assert_eq!(
        app.get("/sla?overdue=never", Some(&d.dispatcher))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Recorded once, however many scans ran.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let h = app
        .get(&format!("/crimes/{id}/history"), Some(&d.supervisor))
        .await;
    assert_eq!(
        items(&h.body)
            .iter()
            .filter(|i| i["type"] == "SlaBreached")
            .count(),
        1
    );
}

#[tokio::test]
async fn audit_trail_and_request_log() {
    let d = desk().await;
    let app = &d.app;
    let r = app.report(Some(&d.citizen), LAT, LON, &["Theft"]).await;
    let id = r.id();
    let t = app
        .post(
            &format!("/crimes/{id}/triage"),
            Some(&d.dispatcher),
            json!({"priority": "HIGH"}),
        )
        .await;
    let audit = app
        .get_at(
            &format!("/audit?target_id={id}"),
            Some(&d.supervisor),
            t.position(),
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK);
    let rows = items(&audit.body);
    let actions: Vec<&str> = rows
        .iter()
        .map(|r| r["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(actions, ["ReportSubmitted", "ReportTriaged"]);
    assert_eq!(rows[1]["actor_role"], "DISPATCHER");
    assert_eq!(rows[1]["target_type"], "report");
    assert!(rows[1]["correlation_id"].is_string());
    assert_eq!(
        app.get("/audit", Some(&d.dispatcher)).await.status,
        StatusCode::FORBIDDEN
    );

    // The request log: bounded wait for the group-committed records to be projected.
    let mut found = Vec::new();
    for _ in 0..50 {
        let reqs = app
            .get(
                &format!("/audit/requests?path=/crimes/{id}/triage"),
                Some(&d.admin),
            )
            .await;
        assert_eq!(reqs.status, StatusCode::OK, "{}", reqs.body);
        found = items(&reqs.body);
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(found.len(), 1);
    let rec = &found[0];
    assert_eq!(
        (rec["method"].as_str(), rec["status"].as_i64()),
        (Some("POST"), Some(200))
    );
    assert_eq!(rec["client_addr"], "127.0.0.1");
    assert!(
        rec["actor_id"].is_string()
            && rec["request_id"].is_string()
            && rec["latency_ms"].is_number()
    );
    assert_eq!(
        app.get("/audit/requests", Some(&d.supervisor)).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn stations_list_and_readiness() {
    let d = desk().await;
    let app = &d.app;
    let s = app.get("/stations", None).await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(items(&s.body)[0]["name"], "PS1");
    let health = app.get("/health", None).await;
    assert_eq!(health.status, StatusCode::OK);
    let mut ready = app.get("/health/ready", None).await;
    for _ in 0..50 {
        if ready.status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = app.get("/health/ready", None).await;
    }
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["status"], "ready");
    // The details are the ADMIN's.
    let ready = app.get("/health/ready", Some(&d.admin)).await;
    assert_eq!(ready.body["nats"]["ok"], true);
    assert!(ready.body["projections"]
        .as_array()
        .is_some_and(|p| p.len() >= 5));
}

#[tokio::test]
async fn min_position_behind_is_503_after_waiting_and_past_the_head_400_at_once() {
    // No projector: the read models stay behind the log.
    let app = TestApp::spawn_with(Options {
        roles: precinct::Roles {
            api: true,
            projector: false,
            sla: false,
            live: false,
            webhooks: false,
        },
        ..Options::default()
    })
    .await
    .expect("spawn");
    let head = app.log.head().await.expect("head");
    assert!(head >= 1, "the ADMIN bootstrap appended events");
    let started = std::time::Instant::now();
    let r = app.get_at("/crimes", None, head).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() >= Duration::from_secs(5));
    // A position the log has not reached was never handed out: refused at once, not
    // after holding the request (and polling PostgreSQL) for 5 s.
    let started = std::time::Instant::now();
    let r = app.get_at("/crimes", None, 9_223_372_036_854_775_808).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["type"], "/problems/bad-request");
    assert!(started.elapsed() < Duration::from_secs(2));
    let bad = app
        .call(
            Method::GET,
            "/crimes",
            None,
            None,
            &[("X-Min-Position", "soon")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn two_processes_run_each_projector_once_and_the_standby_takes_over() {
    let a = TestApp::spawn().await.expect("spawn a");
    let b = TestApp::start(a.config.clone(), a.prefix.clone(), a.database_url.clone())
        .await
        .expect("spawn b");
    let admin = b.admin().await;
    b.precinct(&admin, "PS1", LAT, LON).await;
    b.caught_up(b.log.head().await.expect("head")).await;
    let first = b.report(None, LAT, LON, &["Theft"]).await;
    b.caught_up(first.position()).await;
    // Each projector holds its lock in exactly one process.
    let locks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = \
         (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&a.pool)
    .await
    .expect("locks");
    let projectors: i64 = sqlx::query_scalar("SELECT count(*) FROM checkpoints")
        .fetch_one(&a.pool)
        .await
        .expect("checkpoints");
    // … and the webhook deliverer and the push deliverer one more each (ADRs 0028,
    // 0032; the mailer, the third outbound worker, runs only with SMTP configured).
    assert_eq!(
        locks,
        projectors + 2,
        "one active worker per projection, one webhook deliverer, one push deliverer"
    );

    // The active process stops; the standby takes over within a bound.
    a.stop().await.expect("stop a");
    let second = b.report(None, LAT, LON, &["Theft"]).await;
    let ok =
        precinct_readmodel::wait_for_position(&b.pool, second.position(), Duration::from_secs(15))
            .await
            .expect("wait");
    assert!(ok, "the standby did not take over");
    // Every event audited once (one row per position, its primary key).
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM audit")
        .fetch_one(&b.pool)
        .await
        .expect("audit");
    assert_eq!(rows as u64, b.log.head().await.expect("head"));
}

/// The sessions holding this database's advisory locks (granted), by backend pid.
async fn lock_holders(pool: &sqlx::PgPool) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = \
         (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY pid",
    )
    .fetch_all(pool)
    .await
    .expect("locks")
}

#[tokio::test]
async fn a_worker_whose_lock_session_ends_stands_by_and_leads_again() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    app.precinct(&admin, "PS1", LAT, LON).await;
    app.caught_up(app.log.head().await.expect("head")).await;
    let before = lock_holders(&app.pool).await;
    let projectors: i64 = sqlx::query_scalar("SELECT count(*) FROM checkpoints")
        .fetch_one(&app.pool)
        .await
        .expect("checkpoints");
    assert!(before.len() as i64 > projectors, "{before:?}");

    // PostgreSQL ends every session that holds a lock, as a restart or a cut
    // connection would (waiting up to 5 s for each to exit): each lock is free, and
    // each worker must notice.
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_locks \
         WHERE locktype = 'advisory' AND granted AND database = \
         (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&app.pool)
    .await
    .expect("terminate");
    assert_eq!(ended as usize, before.len());

    // Every worker stands by again and takes its lock back, on a new session.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let held_again =
        |now: &[i32]| now.len() == before.len() && now.iter().all(|pid| !before.contains(pid));
    let mut now = lock_holders(&app.pool).await;
    while !held_again(&now) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = lock_holders(&app.pool).await;
    }
    assert!(held_again(&now), "held before: {before:?}, now: {now:?}");
    // … and the read models follow the log under them: every event audited (one row
    // per position, its primary key).
    let r = app.report(None, LAT, LON, &["Theft"]).await;
    app.caught_up(r.position()).await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM audit")
        .fetch_one(&app.pool)
        .await
        .expect("audit");
    assert_eq!(rows as u64, app.log.head().await.expect("head"));
}
