//! The desk's control over reports (issue 16) through HTTP, JetStream and PostgreSQL:
//! reassign and unassign (with the officers' inbox streams), transfer to another
//! station, reopen, and bulk automatic assignment — with their refusals (nothing
//! appended) and their races.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use precinct_tests::app::TestApp;
use precinct_tests::sse::SseClient;
use precinct_tests::world::{Spec, StationSpec};
use reqwest::StatusCode;
use serde_json::{json, Value};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;
const LAT_B: f64 = 9.0;
const LON_B: f64 = 127.0;
/// How long an inbox may take to hear of a change before the test fails.
const STREAM_BOUND: Duration = Duration::from_secs(3);

struct World {
    app: TestApp,
    admin: String,
    station_a: String,
    station_b: String,
    dispatcher_a: String,
    dispatcher_a2: String,
    supervisor_a: String,
    dispatcher_b: String,
    citizen: String,
    /// Station A's patrols and one serving officer of each.
    patrols: Vec<String>,
    officers: Vec<String>,
    patrol_b: String,
}

async fn world(crews: &[&str]) -> World {
    let app = TestApp::spawn().await.expect("spawn");
    let spec = Spec {
        stations: vec![
            StationSpec::new("PS-A", LAT, LON)
                .dispatchers(2)
                .supervisors(1)
                .crews(crews),
            StationSpec::new("PS-B", LAT_B, LON_B)
                .dispatchers(1)
                .crews(&["BRAVO-1"]),
        ],
        citizens: 1,
    };
    let built = app.world(&spec).await;
    let [a, b] = [&built.stations[0], &built.stations[1]];
    World {
        admin: built.admin.token.clone(),
        station_a: a.id().to_string(),
        station_b: b.id().to_string(),
        dispatcher_a: a.dispatchers[0].token.clone(),
        dispatcher_a2: a.dispatchers[1].token.clone(),
        supervisor_a: a.supervisors[0].token.clone(),
        dispatcher_b: b.dispatchers[0].token.clone(),
        citizen: built.citizens[0].token.clone(),
        patrols: a.crews.iter().map(|c| c.patrol.clone()).collect(),
        officers: a.crews.iter().map(|c| c.officer.token.clone()).collect(),
        patrol_b: b.crews[0].patrol.clone(),
        app,
    }
}

impl World {
    async fn report(&self) -> String {
        self.app
            .report(Some(&self.citizen), LAT, LON, &["Theft"])
            .await
            .id()
    }

    async fn dispatched(&self, patrol: &str) -> String {
        let id = self.report().await;
        let r = self
            .app
            .post(
                "/dispatch",
                Some(&self.dispatcher_a),
                json!({"crime_id": id, "patrol_id": patrol}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        id
    }

    /// A patrol as the read models have it once they reached `position`.
    async fn patrol(&self, id: &str, position: u64) -> Value {
        let r = self
            .app
            .get_at(&format!("/patrols/{id}"), Some(&self.admin), position)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
    }

    async fn head(&self) -> u64 {
        self.app.log.head().await.expect("head")
    }

    /// `POST path` refused with `status`, and nothing appended.
    async fn refused(&self, path: &str, token: &str, body: Value, status: StatusCode) -> Value {
        let head = self.head().await;
        let r = self.app.post(path, Some(token), body).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert_eq!(self.head().await, head, "{path}: a refusal appended");
        r.body
    }
}

/// The `assignment` frames' event types an inbox hears within the bound, until it has
/// heard every one of `want`.
async fn heard(inbox: &mut SseClient, report: &str, want: &[&str]) -> BTreeSet<String> {
    let mut types = BTreeSet::new();
    let deadline = Instant::now() + STREAM_BOUND;
    while !want.iter().all(|w| types.contains(*w)) && Instant::now() < deadline {
        let Some(ev) = inbox.next_of("assignment", STREAM_BOUND).await else {
            break;
        };
        if ev.data["report_id"] == report {
            types.insert(ev.data["type"].as_str().unwrap_or_default().to_string());
        }
    }
    types
}

#[tokio::test]
async fn reassign_moves_the_assignment_in_one_append_and_each_inbox_sees_its_side() {
    let w = world(&["ALPHA-1", "ALPHA-2"]).await;
    let app = &w.app;
    let (x, y) = (&w.patrols[0], &w.patrols[1]);
    let id = w.dispatched(x).await;
    let mut old_inbox = SseClient::open(app, "/me/assignments/stream", &w.officers[0], None).await;
    let mut new_inbox = SseClient::open(app, "/me/assignments/stream", &w.officers[1], None).await;
    let r = app
        .post(
            &format!("/crimes/{id}/accept"),
            Some(&w.officers[0]),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The hub delivers in log order but may still be behind the dispatch when the
    // inbox opens: read the old inbox up to the acceptance so the dispatch's own
    // `ReportAssigned` is not taken for the reassignment's.
    let before = heard(&mut old_inbox, &id, &["AssignmentAccepted"]).await;
    assert!(before.contains("AssignmentAccepted"), "{before:?}");

    let r = app
        .post(
            &format!("/crimes/{id}/reassign"),
            Some(&w.dispatcher_a),
            json!({"from_patrol_id": x, "patrol_id": y, "reason": "ALPHA-2 is nearer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "ASSIGNED", "{}", r.body);
    assert_eq!(r.body["patrol_id"], y.as_str(), "{}", r.body);
    let position = r.position();

    // One command, one atomic batch: report, old patrol and new patrol.
    let command_of = |aggregate: &'static str, id: &str, event: &'static str| {
        let log = app.log.clone();
        let stream = precinct_eventlog::StreamId::new(aggregate, id.parse().expect("uuid"));
        async move {
            log.read(&stream)
                .await
                .expect("read")
                .iter()
                .rev()
                .find(|e| e.envelope.event_type == event)
                .map(|e| e.envelope.command_id)
        }
    };
    let commands: BTreeSet<_> = [
        command_of("report", &id, "AssignmentWithdrawn").await,
        command_of("report", &id, "ReportAssigned").await,
        command_of("patrol", x, "PatrolAssignmentClosed").await,
        command_of("patrol", y, "PatrolAssignmentOpened").await,
    ]
    .into_iter()
    .collect();
    assert_eq!(commands.len(), 1, "one command: {commands:?}");
    assert!(!commands.contains(&None), "{commands:?}");

    // Workloads and statuses follow.
    let old = w.patrol(x, position).await;
    let new = w.patrol(y, position).await;
    assert_eq!(old["open_assignments"], 0, "{old}");
    assert_eq!(old["status"], "AVAILABLE", "{old}");
    assert_eq!(new["open_assignments"], 1, "{new}");
    assert_eq!(new["status"], "BUSY", "{new}");

    // The old crew sees it leave, the new crew sees it arrive.
    let left = heard(
        &mut old_inbox,
        &id,
        &["AssignmentWithdrawn", "PatrolAssignmentClosed"],
    )
    .await;
    assert!(left.contains("AssignmentWithdrawn"), "{left:?}");
    assert!(left.contains("PatrolAssignmentClosed"), "{left:?}");
    assert!(!left.contains("ReportAssigned"), "{left:?}");
    let arrived = heard(
        &mut new_inbox,
        &id,
        &["ReportAssigned", "PatrolAssignmentOpened"],
    )
    .await;
    assert!(arrived.contains("ReportAssigned"), "{arrived:?}");
    assert!(arrived.contains("PatrolAssignmentOpened"), "{arrived:?}");
    assert!(!arrived.contains("AssignmentWithdrawn"), "{arrived:?}");
    // Later changes reach the new crew only.
    let r = app
        .post(
            &format!("/crimes/{id}/notes"),
            Some(&w.dispatcher_a),
            json!({"note": "owner on site"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let noted = heard(&mut new_inbox, &id, &["NoteAdded"]).await;
    assert!(noted.contains("NoteAdded"), "{noted:?}");
    let quiet = old_inbox.drain(Duration::from_millis(300)).await;
    assert!(
        quiet.iter().all(|e| e.data["report_id"] != id.as_str()),
        "the old crew still hears of the report: {quiet:?}"
    );
    // The old officer cannot act on it any more; the inboxes agree.
    let r = app
        .post(
            &format!("/crimes/{id}/accept"),
            Some(&w.officers[0]),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
}

#[tokio::test]
async fn reassign_and_unassign_refusals_append_nothing() {
    let w = world(&["ALPHA-1", "ALPHA-2", "ALPHA-3"]).await;
    let app = &w.app;
    let (x, y, z) = (&w.patrols[0], &w.patrols[1], &w.patrols[2]);
    let id = w.dispatched(x).await;
    let path = format!("/crimes/{id}/reassign");
    // A patrol of another station.
    let body = w
        .refused(
            &path,
            &w.dispatcher_a,
            json!({"from_patrol_id": x, "patrol_id": w.patrol_b, "reason": "r"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(body["errors"][0]["field"], "patrol_id", "{body}");
    // An OFF_DUTY patrol.
    let r = app
        .put(
            &format!("/patrols/{z}/status"),
            Some(&w.dispatcher_a),
            json!({"status": "OFF_DUTY"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    w.refused(
        &path,
        &w.dispatcher_a,
        json!({"from_patrol_id": x, "patrol_id": z, "reason": "r"}),
        StatusCode::CONFLICT,
    )
    .await;
    // The same patrol.
    w.refused(
        &path,
        &w.dispatcher_a,
        json!({"from_patrol_id": x, "patrol_id": x, "reason": "r"}),
        StatusCode::CONFLICT,
    )
    .await;
    // A patrol that no longer holds it.
    w.refused(
        &path,
        &w.dispatcher_a,
        json!({"from_patrol_id": y, "patrol_id": x, "reason": "r"}),
        StatusCode::CONFLICT,
    )
    .await;
    // No reason.
    w.refused(
        &path,
        &w.dispatcher_a,
        json!({"from_patrol_id": x, "patrol_id": y, "reason": " "}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // The patrol itself, and another station's desk.
    w.refused(
        &path,
        &w.officers[0],
        json!({"from_patrol_id": x, "patrol_id": y, "reason": "r"}),
        StatusCode::FORBIDDEN,
    )
    .await;
    w.refused(
        &path,
        &w.dispatcher_b,
        json!({"from_patrol_id": x, "patrol_id": y, "reason": "r"}),
        StatusCode::NOT_FOUND,
    )
    .await;
    // A NEW report has no assignment to move or take back.
    let fresh = w.report().await;
    w.refused(
        &format!("/crimes/{fresh}/unassign"),
        &w.dispatcher_a,
        json!({"from_patrol_id": x, "reason": "r"}),
        StatusCode::CONFLICT,
    )
    .await;

    // Unassign: back to the queue, the patrol released, not counted as its decline.
    let r = app
        .post(
            &format!("/crimes/{id}/unassign"),
            Some(&w.supervisor_a),
            json!({"from_patrol_id": x, "reason": "needed at a collision"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "NEW", "{}", r.body);
    assert!(r.body["patrol_id"].is_null(), "{}", r.body);
    let patrol = w.patrol(x, r.position()).await;
    assert_eq!(patrol["open_assignments"], 0, "{patrol}");
    assert_eq!(patrol["status"], "AVAILABLE", "{patrol}");
    let row = app
        .get_at(
            &format!("/crimes/{id}"),
            Some(&w.dispatcher_a),
            r.position(),
        )
        .await;
    assert_eq!(row.body["status"], "NEW", "{}", row.body);
    assert_eq!(row.body["declines"], 0, "{}", row.body);
    // Twice: the second finds nothing to take back.
    w.refused(
        &format!("/crimes/{id}/unassign"),
        &w.supervisor_a,
        json!({"from_patrol_id": x, "reason": "again"}),
        StatusCode::CONFLICT,
    )
    .await;
}

#[tokio::test]
async fn two_dispatchers_reassigning_at_once_one_wins_and_one_gets_409() {
    let w = world(&["ALPHA-1", "ALPHA-2", "ALPHA-3"]).await;
    let app = &w.app;
    let (x, y, z) = (&w.patrols[0], &w.patrols[1], &w.patrols[2]);
    let id = w.dispatched(x).await;
    let path = format!("/crimes/{id}/reassign");
    let (a, b) = tokio::join!(
        app.post(
            &path,
            Some(&w.dispatcher_a),
            json!({"from_patrol_id": x, "patrol_id": y, "reason": "to Y"}),
        ),
        app.post(
            &path,
            Some(&w.dispatcher_a2),
            json!({"from_patrol_id": x, "patrol_id": z, "reason": "to Z"}),
        ),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} / {}",
        a.body,
        b.body
    );
    let winner = if a.status == StatusCode::OK { &a } else { &b };
    let holder = winner.body["patrol_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let position = winner.position();
    // Exactly one patrol holds it; the other and the old one hold nothing.
    let mut open = HashMap::new();
    for p in [x, y, z] {
        let v = w.patrol(p, position).await;
        open.insert(p.clone(), v["open_assignments"].as_u64().unwrap_or(99));
    }
    assert_eq!(open[&holder], 1, "{open:?}");
    assert_eq!(open.values().sum::<u64>(), 1, "{open:?}");
}

#[tokio::test]
async fn transfer_moves_the_report_and_its_visibility_to_the_other_station() {
    let w = world(&["ALPHA-1"]).await;
    let app = &w.app;
    let x = &w.patrols[0];
    let id = w.dispatched(x).await;
    let path = format!("/crimes/{id}/transfer");
    // Unknown station, the same station, no reason, another station's desk.
    let body = w
        .refused(
            &path,
            &w.dispatcher_a,
            json!({"station_id": uuid::Uuid::new_v4(), "reason": "r"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(body["errors"][0]["field"], "station_id", "{body}");
    w.refused(
        &path,
        &w.dispatcher_a,
        json!({"station_id": w.station_a, "reason": "r"}),
        StatusCode::CONFLICT,
    )
    .await;
    w.refused(
        &path,
        &w.dispatcher_a,
        json!({"station_id": w.station_b, "reason": ""}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    w.refused(
        &path,
        &w.dispatcher_b,
        json!({"station_id": w.station_b, "reason": "mine"}),
        StatusCode::NOT_FOUND,
    )
    .await;
    w.refused(
        &path,
        &w.officers[0],
        json!({"station_id": w.station_b, "reason": "r"}),
        StatusCode::FORBIDDEN,
    )
    .await;

    let r = app
        .post(
            &path,
            Some(&w.dispatcher_a),
            json!({"station_id": w.station_b, "reason": "Harbour division's area"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["station_id"], w.station_b.as_str(), "{}", r.body);
    let position = r.position();
    // The assignment was withdrawn in the same command: the patrol is free again.
    let patrol = w.patrol(x, position).await;
    assert_eq!(patrol["open_assignments"], 0, "{patrol}");
    assert_eq!(patrol["status"], "AVAILABLE", "{patrol}");
    // The new station sees and works it; the old one no longer sees it.
    let seen = app
        .get_at(&format!("/crimes/{id}"), Some(&w.dispatcher_b), position)
        .await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    assert_eq!(seen.body["status"], "NEW", "{}", seen.body);
    assert_eq!(
        seen.body["station_id"],
        w.station_b.as_str(),
        "{}",
        seen.body
    );
    assert!(seen.body["patrol_id"].is_null(), "{}", seen.body);
    let gone = app
        .get_at(&format!("/crimes/{id}"), Some(&w.dispatcher_a), position)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);
    let history = app
        .get(&format!("/crimes/{id}/history"), Some(&w.dispatcher_b))
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
            "ReportAssigned",
            "AssignmentWithdrawn",
            "ReportTransferred"
        ]
    );
    let old_history = app
        .get(&format!("/crimes/{id}/history"), Some(&w.dispatcher_a))
        .await;
    assert_eq!(old_history.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            "/dispatch",
            Some(&w.dispatcher_b),
            json!({"crime_id": id, "patrol_id": w.patrol_b}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the new station works it: {}",
        r.body
    );
    // Routing statistics tell routed from transferred.
    let arrivals: Vec<(String, i64)> =
        sqlx::query_as("SELECT arrival, count(*) FROM reports GROUP BY arrival ORDER BY arrival")
            .fetch_all(&app.pool)
            .await
            .expect("arrivals");
    assert_eq!(arrivals, [("TRANSFERRED".to_string(), 1)]);
    let routed = w.report().await;
    // The report was submitted by someone else: wait until the desk can read it.
    let mut seen = false;
    for _ in 0..200 {
        let r = app
            .get(&format!("/crimes/{routed}"), Some(&w.dispatcher_a))
            .await;
        if r.status == StatusCode::OK {
            app.caught_up(r.position()).await;
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        seen,
        "the routed report never reached the desk's read model"
    );
    let (arrival, transfers): (String, i32) =
        sqlx::query_as("SELECT arrival, transfers FROM reports WHERE id = $1::uuid")
            .bind(&routed)
            .fetch_one(&app.pool)
            .await
            .expect("routed row");
    assert_eq!((arrival.as_str(), transfers), ("ROUTED", 0));
}

#[tokio::test]
async fn reopen_puts_a_closed_report_back_in_the_queue_and_its_clocks_start_again() {
    let w = world(&["ALPHA-1"]).await;
    let app = &w.app;
    let x = &w.patrols[0];
    let id = w.dispatched(x).await;
    let officer = &w.officers[0];
    for (step, body) in [
        ("accept", json!({})),
        ("respond", json!({})),
        ("resolve", json!({"resolution_notes": "recovered"})),
    ] {
        let r = app
            .post(&format!("/crimes/{id}/{step}"), Some(officer), body)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{step}: {}", r.body);
    }
    let path = format!("/crimes/{id}/reopen");
    // Not while it is open.
    w.refused(
        &path,
        &w.supervisor_a,
        json!({"reason": "more damage"}),
        StatusCode::CONFLICT,
    )
    .await;
    let r = app
        .post(
            &format!("/crimes/{id}/closure/approve"),
            Some(&w.supervisor_a),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let first_assigned = r.body["assigned_at"].clone();
    // Only a reviewer; a reason is required.
    w.refused(
        &path,
        &w.dispatcher_a,
        json!({"reason": "more damage"}),
        StatusCode::FORBIDDEN,
    )
    .await;
    w.refused(
        &path,
        &w.supervisor_a,
        json!({"reason": ""}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let r = app
        .post(
            &path,
            Some(&w.supervisor_a),
            json!({"reason": "more damage"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "NEW", "{}", r.body);
    assert!(r.body["patrol_id"].is_null(), "{}", r.body);
    let row = app
        .get_at(
            &format!("/crimes/{id}"),
            Some(&w.supervisor_a),
            r.position(),
        )
        .await;
    assert_eq!(row.body["status"], "NEW", "{}", row.body);
    assert!(row.body["assigned_at"].is_null(), "{}", row.body);
    assert!(row.body["closed_at"].is_null(), "{}", row.body);
    // Reopening an open report is refused.
    w.refused(
        &path,
        &w.supervisor_a,
        json!({"reason": "again"}),
        StatusCode::CONFLICT,
    )
    .await;
    // The next assignment starts the clock again.
    let r = app
        .post(
            "/dispatch",
            Some(&w.dispatcher_a),
            json!({"crime_id": id, "patrol_id": x}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let row = app
        .get_at(
            &format!("/crimes/{id}"),
            Some(&w.supervisor_a),
            r.position(),
        )
        .await;
    assert_eq!(row.body["status"], "ASSIGNED", "{}", row.body);
    assert!(!row.body["assigned_at"].is_null(), "{}", row.body);
    assert_ne!(row.body["assigned_at"], first_assigned, "{}", row.body);

    // A rejected report reopens too.
    let rejected = w.report().await;
    let r = app
        .post(
            &format!("/crimes/{rejected}/reject"),
            Some(&w.dispatcher_a),
            json!({"justification": "looked like a prank"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .post(
            &format!("/crimes/{rejected}/reopen"),
            Some(&w.admin),
            json!({"reason": "the owner called back"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "NEW", "{}", r.body);
}

async fn triage(w: &World, id: &str, priority: &str) {
    let r = w
        .app
        .post(
            &format!("/crimes/{id}/triage"),
            Some(&w.dispatcher_a),
            json!({"priority": priority}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn bulk_auto_assign_takes_the_queue_in_order_and_stops_when_no_patrol_is_available() {
    let w = world(&["ALPHA-1", "ALPHA-2"]).await;
    let app = &w.app;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(w.report().await);
    }
    // The newest is the most urgent: it goes first.
    triage(&w, &ids[3], "CRITICAL").await;
    // Refusals: a citizen, another station's desk, an unknown station, too many ids.
    w.refused(
        "/dispatch/auto",
        &w.citizen,
        json!({"station_id": w.station_a}),
        StatusCode::FORBIDDEN,
    )
    .await;
    w.refused(
        "/dispatch/auto",
        &w.dispatcher_b,
        json!({"station_id": w.station_a}),
        StatusCode::NOT_FOUND,
    )
    .await;
    w.refused(
        "/dispatch/auto",
        &w.admin,
        json!({"station_id": uuid::Uuid::new_v4()}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let many: Vec<String> = (0..101).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    w.refused(
        "/dispatch/auto",
        &w.dispatcher_a,
        json!({"station_id": w.station_a, "crime_ids": many}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    let r = app
        .post(
            "/dispatch/auto",
            Some(&w.dispatcher_a),
            json!({"station_id": w.station_a, "limit": 10}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let assigned = r.body["assigned"].as_array().cloned().unwrap_or_default();
    let left = r.body["left"].as_array().cloned().unwrap_or_default();
    assert_eq!(assigned.len(), 2, "{}", r.body);
    assert_eq!(left.len(), 2, "{}", r.body);
    // Queue order: CRITICAL first, then the oldest.
    assert_eq!(assigned[0]["crime_id"], ids[3].as_str(), "{}", r.body);
    assert_eq!(assigned[1]["crime_id"], ids[0].as_str(), "{}", r.body);
    for a in &assigned {
        assert!(
            !a["decision"]["candidates"]
                .as_array()
                .map(Vec::is_empty)
                .unwrap_or(true),
            "each decision records its ranked candidates: {a}"
        );
    }
    let patrols: BTreeSet<&str> = assigned
        .iter()
        .filter_map(|a| a["patrol_id"].as_str())
        .collect();
    assert_eq!(patrols.len(), 2, "one report per patrol: {}", r.body);
    for l in &left {
        assert_eq!(l["reason"], "NO_AVAILABLE_PATROL", "{}", r.body);
    }
    // Each decision is in the report's own history, with its ranking.
    let history = app
        .get(
            &format!("/crimes/{}/history", ids[3]),
            Some(&w.dispatcher_a),
        )
        .await;
    let items = history.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let auto = items
        .iter()
        .find(|i| i["type"] == "ReportAssigned")
        .map(|i| i["data"]["auto"].clone())
        .unwrap_or(Value::Null);
    assert!(auto["candidates"].is_array(), "{}", history.body);

    // Named reports: the ones not NEW are left with their status.
    let r = app
        .post(
            "/dispatch/auto",
            Some(&w.dispatcher_a),
            json!({"station_id": w.station_a, "crime_ids": [ids[3], ids[1]]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let left = r.body["left"].as_array().cloned().unwrap_or_default();
    let reasons: HashMap<String, String> = left
        .iter()
        .map(|l| {
            (
                l["crime_id"].as_str().unwrap_or_default().to_string(),
                l["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(reasons[&ids[3]], "NOT_NEW", "{}", r.body);
    assert_eq!(reasons[&ids[1]], "NO_AVAILABLE_PATROL", "{}", r.body);
}

#[tokio::test]
async fn concurrent_bulk_runs_never_assign_a_report_twice_nor_overload_a_patrol() {
    let w = world(&["ALPHA-1", "ALPHA-2", "ALPHA-3"]).await;
    let app = &w.app;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(w.report().await);
    }
    let body = json!({"station_id": w.station_a, "limit": 6});
    let started = Instant::now();
    let (a, b) = tokio::join!(
        app.post("/dispatch/auto", Some(&w.dispatcher_a), body.clone()),
        app.post("/dispatch/auto", Some(&w.dispatcher_a2), body.clone()),
    );
    println!(
        "two concurrent bulk runs of 6 reports, 3 patrols: {:?}",
        started.elapsed()
    );
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    let mut reports = Vec::new();
    let mut position = 0;
    for r in [&a, &b] {
        position = position.max(r.body["position"].as_u64().unwrap_or(0));
        for x in r.body["assigned"].as_array().cloned().unwrap_or_default() {
            reports.push(x["crime_id"].as_str().unwrap_or_default().to_string());
        }
    }
    let distinct: BTreeSet<&String> = reports.iter().collect();
    assert_eq!(
        distinct.len(),
        reports.len(),
        "a report assigned twice: {reports:?}"
    );
    assert_eq!(
        reports.len(),
        3,
        "three patrols, three assignments: {reports:?}"
    );
    for p in &w.patrols {
        let v = w.patrol(p, position).await;
        assert_eq!(v["open_assignments"], 1, "{v}");
    }
    // The log agrees: one assignment event per assigned report, none for the others.
    for id in &ids {
        let stream =
            precinct_eventlog::StreamId::new("report", id.parse::<uuid::Uuid>().expect("uuid"));
        let assignments = app
            .log
            .read(&stream)
            .await
            .expect("read")
            .iter()
            .filter(|e| e.envelope.event_type == "ReportAssigned")
            .count();
        let expected = usize::from(distinct.contains(id));
        assert_eq!(assignments, expected, "{id}");
    }
}
