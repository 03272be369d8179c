//! SLA per priority, warnings and escalation (issue 18 item 5, ADR 0035), through HTTP,
//! JetStream and PostgreSQL with short configured deadlines: a station's policy sets a
//! `CRITICAL` deadline of seconds while `MEDIUM` keeps the server's default; the SLA
//! worker warns, breaches and escalates (reassign, then requeue when no other patrol
//! is available), each exactly once even with two processes' workers racing; the
//! policy's refusals name their field and its audience is the station's staff.

use std::time::{Duration, Instant};

use precinct_tests::app::TestApp;
use precinct_tests::sse::SseClient;
use reqwest::StatusCode;
use serde_json::{json, Value};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

struct Station {
    app: TestApp,
    admin: String,
    station: String,
    dispatcher: String,
    supervisor: String,
    patrol_officer: String,
    citizen: String,
    alpha: String,
    bravo: String,
}

async fn station(app: TestApp) -> Station {
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let (_, supervisor) = app.account(&admin, "SUPERVISOR", Some(&station)).await;
    let (a, patrol_officer) = app.account(&admin, "PATROL", Some(&station)).await;
    let (b, _) = app.account(&admin, "PATROL", Some(&station)).await;
    let alpha = app.patrol(&dispatcher, &station, "ALPHA-1", &[&a]).await;
    let bravo = app.patrol(&dispatcher, &station, "BRAVO-2", &[&b]).await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    Station {
        app,
        admin,
        station,
        dispatcher,
        supervisor,
        patrol_officer,
        citizen,
        alpha,
        bravo,
    }
}

impl Station {
    async fn report(&self, priority: &str) -> String {
        let id = self
            .app
            .report(Some(&self.citizen), LAT, LON, &["Theft"])
            .await
            .id();
        if priority != "MEDIUM" {
            let r = self
                .app
                .post(
                    &format!("/crimes/{id}/triage"),
                    Some(&self.dispatcher),
                    json!({"priority": priority}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        }
        id
    }

    async fn dispatch(&self, report: &str, patrol: &str) {
        let r = self
            .app
            .post(
                "/dispatch",
                Some(&self.dispatcher),
                json!({"crime_id": report, "patrol_id": patrol}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }

    /// ALPHA's officer accepts `report`.
    async fn accept(&self, report: &str) {
        let r = self
            .app
            .post(
                &format!("/crimes/{report}/accept"),
                Some(&self.patrol_officer),
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }

    async fn history(&self, report: &str) -> Vec<Value> {
        let h = self
            .app
            .get(
                &format!("/crimes/{report}/history?limit=100"),
                Some(&self.supervisor),
            )
            .await;
        assert_eq!(h.status, StatusCode::OK, "{}", h.body);
        h.body["items"].as_array().expect("items").clone()
    }

    /// Waits (bounded) until `report`'s history holds `n` events of type `kind`.
    async fn wait_for(&self, report: &str, kind: &str, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let h = self.history(report).await;
            if h.iter().filter(|e| e["type"] == kind).count() >= n {
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "{report}: fewer than {n} {kind} after {within:?}: {:?}",
                types(&h)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn set_policy(&self, token: &str, body: Value) -> precinct_tests::client::Res {
        self.app
            .put(
                &format!("/stations/{}/sla-policy", self.station),
                Some(token),
                body,
            )
            .await
    }
}

fn types(history: &[Value]) -> Vec<&str> {
    history
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect()
}

fn count(history: &[Value], kind: &str) -> usize {
    history.iter().filter(|e| e["type"] == kind).count()
}

fn of_type<'a>(history: &'a [Value], kind: &str) -> Vec<&'a Value> {
    history.iter().filter(|e| e["type"] == kind).collect()
}

#[tokio::test]
async fn a_critical_deadline_warns_breaches_and_escalates_once_while_medium_keeps_the_default() {
    // Two processes on one log and database: two SLA workers racing on every clock.
    let a = TestApp::spawn().await.expect("spawn a");
    let b = TestApp::start(a.config.clone(), a.prefix.clone(), a.database_url.clone())
        .await
        .expect("spawn b");
    let s = station(a).await;
    let r = s
        .set_policy(
            &s.supervisor,
            json!({
                "deadlines": {"CRITICAL": {"accept_secs": 2}},
                "warn_at_percent": 50,
                "unaccepted": {"action": "REASSIGN", "after_secs": 1}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let eff = &r.body["effective"];
    assert_eq!(eff["deadlines"]["CRITICAL"]["accept_secs"], 2);
    assert_eq!(
        eff["deadlines"]["MEDIUM"]["accept_secs"], 900,
        "the default"
    );
    assert_eq!(eff["deadlines"]["CRITICAL"]["respond_secs"], 1800);
    assert!(eff["deadlines"]["CRITICAL"]["resolve_secs"].is_null());
    assert_eq!(eff["warn_at_percent"], 50);
    assert_eq!(eff["notify_supervisors"], true);
    assert_eq!(eff["unaccepted"]["action"], "REASSIGN");
    s.app.caught_up(r.position()).await;

    let medium = s.report("MEDIUM").await;
    let critical = s.report("CRITICAL").await;
    s.dispatch(&medium, &s.alpha).await;
    s.dispatch(&critical, &s.alpha).await;

    // Warned at 1 s, breached after 2 s, escalated 1 s later: to BRAVO, the only other
    // AVAILABLE patrol.
    let h = s
        .wait_for(&critical, "ReportAssigned", 2, Duration::from_secs(20))
        .await;
    let warned = of_type(&h, "SlaWarned");
    let breached = of_type(&h, "SlaBreached");
    let escalated = of_type(&h, "SlaEscalated");
    assert_eq!(
        (warned.len(), breached.len(), escalated.len()),
        (1, 1, 1),
        "{:?}",
        types(&h)
    );
    assert_eq!(warned[0]["data"]["kind"], "ACCEPT");
    assert_eq!(warned[0]["data"]["patrol_id"], s.alpha.as_str());
    assert!(warned[0]["actor_id"].is_null(), "recorded by the system");
    assert!(warned[0]["position"].as_u64() < breached[0]["position"].as_u64());
    let (since, deadline) = (
        breached[0]["data"]["since"].as_str().expect("since"),
        breached[0]["data"]["deadline"].as_str().expect("deadline"),
    );
    let secs = (chrono::DateTime::parse_from_rfc3339(deadline).expect("deadline")
        - chrono::DateTime::parse_from_rfc3339(since).expect("since"))
    .num_seconds();
    assert_eq!(secs, 2, "the station's CRITICAL deadline, not the default");
    let e = &escalated[0]["data"];
    assert_eq!(e["action"], "REASSIGN");
    assert_eq!(e["patrol_id"], s.alpha.as_str());
    assert_eq!(e["to_patrol_id"], s.bravo.as_str());
    // The escalation, the withdrawal and the new assignment are one append.
    let at = escalated[0]["position"].as_u64().expect("position");
    let next: Vec<&str> = h
        .iter()
        .filter(|x| x["position"].as_u64().is_some_and(|p| p > at))
        .take(2)
        .map(|x| x["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(next, ["AssignmentWithdrawn", "ReportAssigned"]);
    let withdrawn = of_type(&h, "AssignmentWithdrawn");
    assert!(withdrawn[0]["data"]["by"].is_null(), "{}", withdrawn[0]);

    // BRAVO does not accept either; ALPHA is BUSY (the MEDIUM report): no other
    // AVAILABLE patrol, so the second escalation returns the report to the queue.
    let h = s
        .wait_for(&critical, "SlaEscalated", 2, Duration::from_secs(20))
        .await;
    let escalated = of_type(&h, "SlaEscalated");
    assert_eq!(
        escalated[1]["data"]["action"], "REQUEUE",
        "{}",
        escalated[1]
    );
    assert_eq!(escalated[1]["data"]["patrol_id"], s.bravo.as_str());
    let head = s.app.log.head().await.expect("head");
    let view = s
        .app
        .get_at(&format!("/crimes/{critical}"), Some(&s.dispatcher), head)
        .await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    assert_eq!(view.body["status"], "NEW");
    assert!(view.body["patrol_id"].is_null());
    // Workloads follow: ALPHA keeps the MEDIUM report only, BRAVO has nothing.
    let w = s.app.get_at("/workloads", Some(&s.dispatcher), head).await;
    let open = |patrol: &str| {
        w.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["patrol_id"] == patrol)
            .and_then(|i| i["open_assignments"].as_i64())
    };
    assert_eq!((open(&s.alpha), open(&s.bravo)), (Some(1), Some(0)));

    // Each once per clock, however many scans of two workers ran since.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let h = s.history(&critical).await;
    assert_eq!(
        (
            count(&h, "SlaWarned"),
            count(&h, "SlaBreached"),
            count(&h, "SlaEscalated")
        ),
        (2, 2, 2),
        "{:?}",
        types(&h)
    );
    // MEDIUM keeps the 900 s default: nothing yet.
    let h = s.history(&medium).await;
    assert_eq!(
        count(&h, "SlaWarned") + count(&h, "SlaBreached") + count(&h, "SlaEscalated"),
        0,
        "{:?}",
        types(&h)
    );
    // The overdue view uses the same deadlines: the requeued report waits on no clock,
    // the MEDIUM one is not overdue.
    let overdue = s
        .app
        .get_at("/sla?overdue=accept", Some(&s.dispatcher), head)
        .await;
    assert_eq!(overdue.status, StatusCode::OK, "{}", overdue.body);
    assert_eq!(overdue.body["items"], json!([]));
    drop(b);
}

#[tokio::test]
async fn the_resolve_clock_and_the_overdue_view_follow_the_policy() {
    let s = station(TestApp::spawn().await.expect("spawn")).await;
    let r = s
        .set_policy(
            &s.admin,
            json!({"deadlines": {"HIGH": {"resolve_secs": 1}}, "warn_at_percent": 0}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let high = s.report("HIGH").await;
    s.dispatch(&high, &s.alpha).await;
    s.accept(&high).await;
    let h = s
        .wait_for(&high, "SlaBreached", 1, Duration::from_secs(15))
        .await;
    let b = of_type(&h, "SlaBreached");
    assert_eq!(b[0]["data"]["kind"], "RESOLVE");
    assert_eq!(count(&h, "SlaWarned"), 0, "warnings off: {:?}", types(&h));
    // Analytics count it under time_to_resolve, and nowhere else.
    let at = b[0]["position"].as_u64().expect("position");
    let a = s
        .app
        .get_at("/analytics/sla", Some(&s.dispatcher), at)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let breaches = |metric: &str| {
        a.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|m| m["metric"] == metric)
            .map(|m| m["breaches"].clone())
            .unwrap_or_else(|| panic!("no {metric}: {}", a.body))
    };
    assert_eq!(breaches("time_to_resolve"), 1, "{}", a.body);
    assert_eq!(breaches("time_to_accept"), 0, "{}", a.body);
    assert_eq!(breaches("time_to_respond"), 0, "{}", a.body);
    assert!(breaches("time_to_close").is_null(), "{}", a.body);
    let overdue = s.app.get("/sla?overdue=resolve", Some(&s.dispatcher)).await;
    assert_eq!(overdue.status, StatusCode::OK, "{}", overdue.body);
    let items = overdue.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{}", overdue.body);
    assert_eq!(items[0]["id"], high.as_str());
    assert_eq!(items[0]["deadline_secs"], 1);
    assert!(items[0]["overdue_by_secs"].as_i64().is_some_and(|s| s >= 0));
}

#[tokio::test]
async fn a_policy_is_set_by_admin_or_its_supervisor_refused_by_field_and_read_by_its_staff() {
    let s = station(TestApp::spawn().await.expect("spawn")).await;
    let other = s.app.precinct(&s.admin, "PS2", LAT + 0.2, LON).await;
    let (_, other_supervisor) = s.app.account(&s.admin, "SUPERVISOR", Some(&other)).await;
    let good = json!({"deadlines": {"HIGH": {"accept_secs": 120}}});

    // Refusals name their field; nothing is appended.
    for (body, field) in [
        (
            json!({"deadlines": {"URGENT": {"accept_secs": 60}}}),
            "deadlines.URGENT",
        ),
        (
            json!({"deadlines": {"HIGH": {"accept_secs": 0}}}),
            "deadlines.HIGH.accept_secs",
        ),
        (
            json!({"deadlines": {"HIGH": {"resolve_secs": 2_592_001}}}),
            "deadlines.HIGH.resolve_secs",
        ),
        (json!({"warn_at_percent": 100}), "warn_at_percent"),
        (
            json!({"deadlines": {"LOW": {}, "MEDIUM": {}, "HIGH": {}, "CRITICAL": {}, "X1": {}}}),
            "deadlines",
        ),
        (
            json!({"unaccepted": {"action": "DELETE", "after_secs": 5}}),
            "unaccepted.action",
        ),
        (
            json!({"unaccepted": {"action": "REQUEUE", "after_secs": 86_401}}),
            "unaccepted.after_secs",
        ),
    ] {
        let r = s.set_policy(&s.admin, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        let fields: Vec<&str> = r.body["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(|x| x["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(fields.contains(&field), "{body}: {}", r.body);
    }
    let unknown = s
        .set_policy(&s.admin, json!({"deadline": {"HIGH": {"accept_secs": 60}}}))
        .await;
    assert!(
        unknown.status == StatusCode::UNPROCESSABLE_ENTITY
            || unknown.status == StatusCode::BAD_REQUEST,
        "{}",
        unknown.body
    );
    let before = s
        .app
        .get(
            &format!("/stations/{}/sla-policy", s.station),
            Some(&s.supervisor),
        )
        .await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    assert!(
        before.body["policy"].is_null(),
        "never set: {}",
        before.body
    );

    // Who may set it.
    let r = s.set_policy(&s.dispatcher, good.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = s.set_policy(&other_supervisor, good.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = s.set_policy(&s.supervisor, good.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let first = r.position();
    // The same policy again appends nothing.
    let again = s.set_policy(&s.supervisor, good.clone()).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["position"].as_u64(), Some(first));
    let h = s
        .app
        .get_at(
            &format!("/audit?target_id={}", s.station),
            Some(&s.admin),
            first,
        )
        .await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.body);
    let sets = h.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i.to_string().contains("StationSlaPolicySet"))
        .count();
    assert_eq!(sets, 1, "{}", h.body);

    // Who may read it: the station's staff and ADMIN; not another station's, not
    // citizens, not anonymous callers.
    let path = format!("/stations/{}/sla-policy", s.station);
    for token in [&s.admin, &s.dispatcher, &s.supervisor, &s.patrol_officer] {
        let r = s.app.get(&path, Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["policy"]["deadlines"]["HIGH"]["accept_secs"], 120);
        assert_eq!(r.body["effective"]["deadlines"]["HIGH"]["accept_secs"], 120);
    }
    assert_eq!(
        s.app.get(&path, Some(&other_supervisor)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.app.get(&path, Some(&s.citizen)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.app.get(&path, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let missing = format!("/stations/{}/sla-policy", uuid::Uuid::new_v4());
    assert_eq!(
        s.app.get(&missing, Some(&s.admin)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.app.put(&missing, Some(&s.admin), good).await.status,
        StatusCode::NOT_FOUND
    );
}

/// The respond clock follows the station's policy too (from acceptance), and the desk's
/// live stream hears the warning and the breach as they are recorded.
#[tokio::test]
async fn the_respond_clock_follows_the_policy_and_the_desk_hears_its_warning_and_breach() {
    let s = station(TestApp::spawn().await.expect("spawn")).await;
    let r = s
        .set_policy(
            &s.admin,
            json!({"deadlines": {"HIGH": {"respond_secs": 2}}, "warn_at_percent": 50}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    s.app.caught_up(r.position()).await;
    let mut desk = SseClient::open(&s.app, "/queues/reports/stream", &s.dispatcher, None).await;
    let high = s.report("HIGH").await;
    s.dispatch(&high, &s.alpha).await;
    s.accept(&high).await;
    let h = s
        .wait_for(&high, "SlaBreached", 1, Duration::from_secs(15))
        .await;
    let (warned, breached) = (of_type(&h, "SlaWarned"), of_type(&h, "SlaBreached"));
    assert_eq!((warned.len(), breached.len()), (1, 1), "{:?}", types(&h));
    for e in [warned[0], breached[0]] {
        assert_eq!(e["data"]["kind"], "RESPOND", "{e}");
    }
    let (since, deadline) = (
        breached[0]["data"]["since"].as_str().expect("since"),
        breached[0]["data"]["deadline"].as_str().expect("deadline"),
    );
    let secs = (chrono::DateTime::parse_from_rfc3339(deadline).expect("deadline")
        - chrono::DateTime::parse_from_rfc3339(since).expect("since"))
    .num_seconds();
    assert_eq!(secs, 2, "the policy's HIGH respond deadline");

    // The desk heard both, at their log positions, in order.
    let wanted: Vec<(String, u64)> = [warned[0], breached[0]]
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_owned(),
                e["position"].as_u64().expect("position"),
            )
        })
        .collect();
    let mut heard = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    while heard.len() < 2 && Instant::now() < until {
        let Some(ev) = desk.next_of("report", Duration::from_secs(5)).await else {
            break;
        };
        let kind = ev.data["type"].as_str().unwrap_or_default().to_owned();
        if ev.data["report_id"] == high.as_str() && kind.starts_with("Sla") {
            heard.push((kind, ev.data["position"].as_u64().expect("position")));
        }
    }
    assert_eq!(heard, wanted);
}
