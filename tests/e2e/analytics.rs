//! Analytics through HTTP → JetStream → PostgreSQL (issue 17 item 2, ADR 0027).
//!
//! A known answer: a deterministic history made through the real API (reports
//! assigned, accepted late and in time, declined, unassigned, resolved, closed, a
//! closure rejected, rejected, withdrawn, at two stations and two types), then every
//! metric of every endpoint compared with a brute-force recomputation from the event
//! log (its own fold of the events, not the projection's). Then role scoping, the
//! public heatmap's k-anonymity, bad input (422 problem+json, never 5xx) and a rebuild
//! giving the same analytics rows.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, DurationRound as _, SecondsFormat, Utc};
use futures::TryStreamExt;
use precinct_tests::app::{Options, TestApp};
use precinct_tests::client::{Call, Res};
use precinct_tests::world::{Spec, StationSpec};
use reqwest::StatusCode;
use serde_json::{json, Value};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;
const LAT_B: f64 = 7.30;
const LON_B: f64 = 125.80;
/// The accept SLA of these tests: short, so that one accept is late.
const ACCEPT_SLA: Duration = Duration::from_secs(2);

struct World {
    app: TestApp,
    admin: String,
    station_a: String,
    station_b: String,
    dispatcher_a: String,
    supervisor_a: String,
    dispatcher_b: String,
    citizen: String,
    /// Station A's patrols and their officers' tokens and ids.
    patrols: Vec<String>,
    officers: Vec<String>,
    officer_ids: Vec<String>,
    patrol_b: String,
    officer_b: String,
}

async fn world() -> World {
    let app = TestApp::spawn_with(Options {
        sla_accept: ACCEPT_SLA,
        sla_respond: Duration::from_secs(3600),
        ..Options::default()
    })
    .await
    .expect("spawn");
    let spec = Spec {
        stations: vec![
            StationSpec::new("PS-A", LAT, LON)
                .dispatchers(1)
                .supervisors(1)
                .crews(&["ALPHA-1", "ALPHA-2"]),
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
        supervisor_a: a.supervisors[0].token.clone(),
        dispatcher_b: b.dispatchers[0].token.clone(),
        citizen: built.citizens[0].token.clone(),
        patrols: a.crews.iter().map(|c| c.patrol.clone()).collect(),
        officers: a.crews.iter().map(|c| c.officer.token.clone()).collect(),
        officer_ids: a.crews.iter().map(|c| c.officer.id.clone()).collect(),
        patrol_b: b.crews[0].patrol.clone(),
        officer_b: b.crews[0].officer.token.clone(),
        app,
    }
}

/// Sends `call` as `token`; it must succeed (2xx).
async fn ok(app: &TestApp, call: Call, token: &str) -> Res {
    let r = app.send(&call, Some(token)).await;
    assert!(r.status.is_success(), "{call:?}: {} {}", r.status, r.body);
    r
}

async fn report(app: &TestApp, citizen: &str, lat: f64, lon: f64, types: &[&str]) -> String {
    app.report(Some(citizen), lat, lon, types).await.id()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn assert_invalid(r: &Res, field: &str, what: &str) {
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{what}: {}",
        r.body
    );
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(fields.contains(&field), "{what}: {fields:?} in {}", r.body);
}

/// The history of the known-answer test. Returns the range it happened in.
async fn history(w: &World) -> (DateTime<Utc>, DateTime<Utc>) {
    let app = &w.app;
    let from = Utc::now() - chrono::Duration::seconds(1);
    let theft = app
        .post(
            "/crime-types",
            Some(&w.admin),
            json!({"code": "THEFT", "names": {"en": "Theft"}, "keywords": ["stolen"]}),
        )
        .await;
    assert_eq!(theft.status, StatusCode::CREATED, "{}", theft.body);
    app.caught_up(theft.position()).await;
    let (d, sup, c) = (&w.dispatcher_a, &w.supervisor_a, &w.citizen);
    let (p1, p2) = (&w.patrols[0], &w.patrols[1]);
    let (o1, o2) = (&w.officers[0], &w.officers[1]);
    // Station A, a few metres apart (one cell of 5 characters).
    let at = |i: usize| (LAT + 0.0001 * i as f64, LON + 0.0001 * i as f64);
    let mut ids = Vec::new();
    for i in 0..11 {
        let types: &[&str] = if i % 3 == 0 { &["Theft"] } else { &["Noise"] };
        let (lat, lon) = at(i);
        ids.push(report(app, c, lat, lon, types).await);
    }
    // r0: left NEW.
    // r1: assigned to ALPHA-1, accepted, responding, resolved, closed.
    ok(app, Call::dispatch(&ids[1], Some(p1)), d).await;
    ok(app, Call::accept(&ids[1]), o1).await;
    ok(app, Call::respond(&ids[1]), o1).await;
    ok(app, Call::resolve(&ids[1], "Bike returned"), o1).await;
    ok(app, Call::approve_closure(&ids[1]), sup).await;
    // r2: declined by ALPHA-1, then accepted by ALPHA-2.
    ok(app, Call::dispatch(&ids[2], Some(p1)), d).await;
    ok(app, Call::decline(&ids[2], "Off shift"), o1).await;
    ok(app, Call::dispatch(&ids[2], Some(p2)), d).await;
    ok(app, Call::accept(&ids[2]), o2).await;
    // r3: ALPHA-2 resolves, the closure is rejected, resolves again, closed.
    ok(app, Call::dispatch(&ids[3], Some(p2)), d).await;
    ok(app, Call::accept(&ids[3]), o2).await;
    ok(app, Call::respond(&ids[3]), o2).await;
    ok(app, Call::resolve(&ids[3], "Done"), o2).await;
    ok(
        app,
        Call::reject_closure(&ids[3], "No witness statement"),
        sup,
    )
    .await;
    ok(app, Call::resolve(&ids[3], "Statement taken"), o2).await;
    ok(app, Call::approve_closure(&ids[3]), sup).await;
    // r4: rejected as not valid. r5: withdrawn by its reporter.
    ok(app, Call::reject(&ids[4], "Not a crime"), d).await;
    ok(app, Call::withdraw(&ids[5], Some("Found it")), c).await;
    // r6: triaged HIGH, assigned, accepted after the accept SLA, responding.
    ok(app, Call::triage(&ids[6], "HIGH"), d).await;
    ok(app, Call::dispatch(&ids[6], Some(p1)), d).await;
    tokio::time::sleep(ACCEPT_SLA + Duration::from_millis(700)).await;
    ok(app, Call::accept(&ids[6]), o1).await;
    ok(app, Call::respond(&ids[6]), o1).await;
    // r7: declined by ALPHA-2, then withdrawn by its reporter.
    ok(app, Call::dispatch(&ids[7], Some(p2)), d).await;
    ok(app, Call::decline(&ids[7], "Too far"), o2).await;
    ok(app, Call::withdraw(&ids[7], None), c).await;
    // r8: assigned, accepted, responding, resolved (awaiting review).
    ok(app, Call::dispatch(&ids[8], Some(p1)), d).await;
    ok(app, Call::accept(&ids[8]), o1).await;
    ok(app, Call::respond(&ids[8]), o1).await;
    ok(app, Call::resolve(&ids[8], "Suspect cautioned"), o1).await;
    // r9: assigned, then rejected while assigned (the assignment ends).
    ok(app, Call::dispatch(&ids[9], Some(p2)), d).await;
    ok(app, Call::reject(&ids[9], "Duplicate call"), d).await;
    // r10: assigned to ALPHA-1, taken back by the desk, left NEW.
    ok(app, Call::dispatch(&ids[10], Some(p1)), d).await;
    ok(
        app,
        Call::post(
            format!("/crimes/{}/unassign", ids[10]),
            json!({"from_patrol_id": p1, "reason": "Needed elsewhere"}),
        ),
        d,
    )
    .await;
    // Station B: one accepted, one NEW.
    let b0 = report(app, c, LAT_B, LON_B, &["Theft"]).await;
    report(app, c, LAT_B + 0.0001, LON_B, &["Noise"]).await;
    ok(app, Call::dispatch(&b0, Some(&w.patrol_b)), &w.dispatcher_b).await;
    ok(app, Call::accept(&b0), &w.officer_b).await;
    // Nothing is left ASSIGNED: no breach can be recorded after this point.
    let to = Utc::now() + chrono::Duration::seconds(1);
    let head = app.log.head().await.expect("head");
    app.caught_up(head).await;
    (from, to)
}

// ---------------------------------------------------------------------------------------
// The brute force: a fold of the log's events, independent of the projection.

fn micros(v: &Value) -> DateTime<Utc> {
    let t: DateTime<Utc> = serde_json::from_value(v.clone()).expect("a time");
    // PostgreSQL keeps microseconds (sqlx truncates).
    DateTime::from_timestamp_micros(t.timestamp_micros()).expect("micros")
}

#[derive(Debug, Clone, Default)]
struct Assignment {
    patrol: String,
    station: String,
    assigned: Option<DateTime<Utc>>,
    accepted: Option<DateTime<Utc>>,
    accepted_by: Option<String>,
    responding: Option<DateTime<Utc>>,
    resolved: Option<DateTime<Utc>>,
    resolved_by: Option<String>,
    declined_by: Option<String>,
    withdrawn: bool,
    ended: bool,
    closure_rejections: i64,
    accept_breached: bool,
    respond_breached: bool,
}

#[derive(Debug, Clone, Default)]
struct Rep {
    station: String,
    priority: String,
    status: String,
    codes: Vec<String>,
    lat: f64,
    lon: f64,
    submitted: Option<DateTime<Utc>>,
    first: BTreeMap<&'static str, DateTime<Utc>>,
    declines: i64,
    assignments: Vec<Assignment>,
    /// Index of the open assignment in `assignments`.
    current: Option<usize>,
}

async fn fold_log(app: &TestApp) -> BTreeMap<String, Rep> {
    let events: Vec<precinct_eventlog::RecordedEvent> = app
        .log
        .read_all(1)
        .await
        .expect("read")
        .try_collect()
        .await
        .expect("events");
    let mut reps: BTreeMap<String, Rep> = BTreeMap::new();
    for e in events {
        if e.envelope.aggregate_type != "report" {
            continue;
        }
        let id = e.envelope.aggregate_id.to_string();
        let d = &e.data;
        let actor = e.envelope.actor.id().map(|a| a.to_string());
        let r = reps.entry(id).or_default();
        let t = || micros(&d["at"]);
        let first = |r: &mut Rep, k: &'static str| {
            r.first.entry(k).or_insert_with(t);
        };
        match e.envelope.event_type.as_str() {
            "ReportSubmitted" => {
                r.station = d["station_id"].as_str().expect("station").into();
                r.priority = d["priority"].as_str().expect("priority").into();
                r.status = "NEW".into();
                r.codes = d["crime_type_codes"]
                    .as_array()
                    .map(|a| a.iter().map(|c| c.as_str().expect("code").into()).collect())
                    .unwrap_or_else(|| vec!["OTHER".into()]);
                r.lat = d["location"]["latitude"].as_f64().expect("lat");
                r.lon = d["location"]["longitude"].as_f64().expect("lon");
                r.submitted = Some(t());
            }
            "ReportTriaged" => r.priority = d["priority"].as_str().expect("p").into(),
            "ReportAssigned" => {
                first(r, "assigned");
                r.status = "ASSIGNED".into();
                r.assignments.push(Assignment {
                    patrol: d["patrol_id"].as_str().expect("patrol").into(),
                    station: r.station.clone(),
                    assigned: Some(t()),
                    ..Default::default()
                });
                r.current = Some(r.assignments.len() - 1);
            }
            "AssignmentAccepted" => {
                first(r, "accepted");
                r.status = "ACCEPTED".into();
                let a = &mut r.assignments[r.current.expect("open")];
                a.accepted = Some(t());
                a.accepted_by = actor;
            }
            "AssignmentDeclined" => {
                r.status = "NEW".into();
                r.declines += 1;
                let a = &mut r.assignments[r.current.take().expect("open")];
                a.declined_by = actor;
                a.ended = true;
            }
            "ReportResponding" => {
                first(r, "responding");
                r.status = "RESPONDING".into();
                r.assignments[r.current.expect("open")].responding = Some(t());
            }
            "ReportResolved" => {
                first(r, "resolved");
                r.status = "RESOLVED".into();
                let a = &mut r.assignments[r.current.expect("open")];
                a.resolved = Some(t());
                a.resolved_by = actor;
            }
            "ClosureApproved" => {
                first(r, "closed");
                r.status = "CLOSED".into();
                r.assignments[r.current.expect("open")].ended = true;
            }
            "ClosureRejected" => {
                r.status = "RESPONDING".into();
                let a = &mut r.assignments[r.current.expect("open")];
                a.closure_rejections += 1;
                a.resolved = None;
            }
            "ReportRejected" | "ReportWithdrawn" => {
                let k = if e.envelope.event_type == "ReportRejected" {
                    "rejected"
                } else {
                    "withdrawn"
                };
                first(r, k);
                r.status = k.to_uppercase();
                for a in &mut r.assignments {
                    a.ended = true;
                }
            }
            "AssignmentWithdrawn" => {
                r.status = "NEW".into();
                let a = &mut r.assignments[r.current.take().expect("open")];
                a.withdrawn = true;
                a.ended = true;
            }
            "SlaBreached" => {
                let a = &mut r.assignments[r.current.expect("open")];
                match d["kind"].as_str() {
                    Some("ACCEPT") => a.accept_breached = true,
                    Some("RESPOND") => a.respond_breached = true,
                    // Resolve deadlines are not an analytics figure (ADR 0035).
                    _ => {}
                }
            }
            // A warning changes no figure; an escalation's withdrawal is its own event.
            "NoteAdded" | "PublicUpdatePosted" | "EvidenceAttached" | "SlaWarned"
            | "SlaEscalated" => {}
            other => panic!("the history has no {other}: extend the brute force"),
        }
    }
    reps
}

/// PostgreSQL's `percentile_cont` (linear interpolation between the closest ranks).
fn percentile_cont(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let (a, b) = (sorted[lo], sorted[hi]);
    Some(a + (b - a) * (pos - lo as f64))
}

fn secs(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_microseconds().expect("µs") as f64 / 1e6
}

fn close(got: &Value, want: Option<f64>, what: &str) {
    match want {
        None => assert!(got.is_null(), "{what}: {got} instead of null"),
        Some(w) => {
            let g = got.as_f64().unwrap_or_else(|| panic!("{what}: {got}"));
            assert!((g - w).abs() < 1e-6, "{what}: {g} instead of {w}");
        }
    }
}

fn count(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn share(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

async fn get(app: &TestApp, token: Option<&str>, path: &str) -> Value {
    let r = app.get(path, token).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    r.body
}

#[tokio::test]
async fn every_metric_equals_a_brute_force_recomputation_from_the_log() {
    let w = world().await;
    let app = &w.app;
    let (from, to) = history(&w).await;
    let reps = fold_log(app).await;
    let range = format!("from={}&to={}", rfc3339(from), rfc3339(to)).replace('+', "%2B");
    let a = w.station_a.clone();
    let cohort: Vec<&Rep> = reps
        .values()
        .filter(|r| r.station == a && r.submitted.is_some_and(|s| s >= from && s < to))
        .collect();
    assert_eq!(cohort.len(), 11, "the script's reports at station A");

    // ---- funnel, as the desk of station A sees it.
    let body = get(
        app,
        Some(&w.dispatcher_a),
        &format!("/analytics/funnel?{range}"),
    )
    .await;
    assert_eq!(body["station_id"], json!(a));
    let f = &body["items"][0];
    let reached = |k: &str| cohort.iter().filter(|r| r.first.contains_key(k)).count() as i64;
    assert_eq!(count(&f["submitted"]), cohort.len() as i64);
    for (field, key) in [
        ("assigned", "assigned"),
        ("accepted", "accepted"),
        ("responding", "responding"),
        ("resolved", "resolved"),
        ("closed", "closed"),
        ("rejected", "rejected"),
        ("withdrawn", "withdrawn"),
    ] {
        assert_eq!(count(&f[field]), reached(key), "funnel {field}");
    }
    assert_eq!(
        count(&f["declined"]),
        cohort.iter().filter(|r| r.declines > 0).count() as i64
    );
    assert_eq!(
        count(&f["declines"]),
        cohort.iter().map(|r| r.declines).sum::<i64>()
    );
    assert_eq!(count(&f["duplicates"]), 0);
    // The script's own numbers, as a check of the brute force itself.
    let script = [11, 8, 5, 4, 3, 2, 2, 2, 2];
    let got: Vec<i64> = [
        "submitted",
        "assigned",
        "accepted",
        "responding",
        "resolved",
        "closed",
        "declined",
        "rejected",
        "withdrawn",
    ]
    .iter()
    .map(|k| count(&f[k]))
    .collect();
    assert_eq!(got, script, "funnel of the script");

    // ---- SLA durations and KPIs.
    let assignments: Vec<&Assignment> = cohort.iter().flat_map(|r| &r.assignments).collect();
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
        v
    };
    let from_submission = |k: &str| {
        sorted(
            cohort
                .iter()
                .filter_map(|r| Some(secs(r.submitted?, *r.first.get(k)?)))
                .collect(),
        )
    };
    let accept = sorted(
        assignments
            .iter()
            .filter_map(|x| Some(secs(x.assigned?, x.accepted?)))
            .collect(),
    );
    let respond = sorted(
        assignments
            .iter()
            .filter_map(|x| Some(secs(x.accepted?, x.responding?)))
            .collect(),
    );
    let accept_sla = ACCEPT_SLA.as_secs_f64();
    let respond_sla = 3600.0;
    let expected = [
        ("time_to_assign", from_submission("assigned"), None),
        ("time_to_accept", accept.clone(), Some(accept_sla)),
        ("time_to_respond", respond, Some(respond_sla)),
        ("time_to_resolve", from_submission("resolved"), None),
        ("time_to_close", from_submission("closed"), None),
    ];
    let body = get(
        app,
        Some(&w.dispatcher_a),
        &format!("/analytics/sla?{range}"),
    )
    .await;
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 5);
    for (row, (metric, d, sla)) in items.iter().zip(expected.iter()) {
        assert_eq!(row["metric"], *metric);
        assert_eq!(count(&row["count"]), d.len() as i64, "{metric} count");
        close(
            &row["p50_secs"],
            percentile_cont(d, 0.5),
            &format!("{metric} p50"),
        );
        close(
            &row["p90_secs"],
            percentile_cont(d, 0.9),
            &format!("{metric} p90"),
        );
        close(
            &row["p99_secs"],
            percentile_cont(d, 0.99),
            &format!("{metric} p99"),
        );
        match sla {
            Some(s) => {
                let within = d.iter().filter(|x| **x <= *s).count() as i64;
                assert_eq!(count(&row["within_sla"]), within, "{metric} within");
                close(
                    &row["within_sla_share"],
                    share(within, d.len() as i64),
                    metric,
                );
                assert_eq!(count(&row["sla_secs"]), *s as i64);
            }
            None => {
                assert!(row["within_sla"].is_null() && row["sla_secs"].is_null());
            }
        }
    }
    // The late accept is outside the SLA; the others are within it.
    assert_eq!(count(&items[1]["within_sla"]), accept.len() as i64 - 1);
    let accept_breaches = assignments.iter().filter(|x| x.accept_breached).count() as i64;
    assert_eq!(count(&items[1]["breaches"]), accept_breaches);
    assert_eq!(
        count(&items[2]["breaches"]),
        assignments.iter().filter(|x| x.respond_breached).count() as i64
    );
    // No resolve deadline is configured here: none breached; assign and close have none.
    assert_eq!(count(&items[3]["breaches"]), 0);
    assert!(items[0]["breaches"].is_null() && items[4]["breaches"].is_null());

    let kpis = body["kpis"].as_array().expect("kpis");
    let within = assignments
        .iter()
        .filter(|x| {
            x.accepted
                .zip(x.assigned)
                .is_some_and(|(acc, asg)| secs(asg, acc) <= accept_sla)
        })
        .count() as i64;
    let answered = assignments
        .iter()
        .filter(|x| x.accepted.is_some() || x.ended || x.accept_breached)
        .count() as i64;
    let resolved = reached("resolved");
    let complete = cohort
        .iter()
        .filter(|r| r.first.contains_key("resolved") && r.first.contains_key("closed"))
        .count() as i64;
    let failures = assignments
        .iter()
        .filter(|x| x.accepted.is_none() && (x.declined_by.is_some() || x.withdrawn))
        .count() as i64;
    let want = [
        (
            "assignments_accepted_within_sla",
            within,
            answered,
            0.95,
            true,
        ),
        (
            "resolved_with_complete_closure",
            complete,
            resolved,
            0.90,
            true,
        ),
        (
            "assignment_failures",
            failures,
            assignments.len() as i64,
            0.02,
            false,
        ),
    ];
    assert_eq!(kpis.len(), 3);
    for (k, (name, n, d, target, at_least)) in kpis.iter().zip(want) {
        assert_eq!(k["kpi"], name);
        assert_eq!(
            (count(&k["numerator"]), count(&k["denominator"])),
            (n, d),
            "{name}"
        );
        close(&k["value"], share(n, d), name);
        close(&k["target"], Some(target), name);
        let v = share(n, d).expect("a denominator");
        let met = if at_least { v >= target } else { v <= target };
        assert_eq!(k["met"], json!(met), "{name}");
    }
    // The script: 2 declines and 1 unassignment failed; r1, r3 of r1, r3, r8 closed.
    assert_eq!(failures, 3);
    assert_eq!((complete, resolved), (2, 3));

    // ---- per patrol and per officer.
    let body = get(
        app,
        Some(&w.dispatcher_a),
        &format!("/analytics/patrols?{range}"),
    )
    .await;
    let station_assignments: Vec<&Assignment> = reps
        .values()
        .flat_map(|r| &r.assignments)
        .filter(|x| x.station == a && x.assigned.is_some_and(|t| t >= from && t < to))
        .collect();
    let patrols: BTreeSet<&String> = station_assignments.iter().map(|x| &x.patrol).collect();
    let rows = body["items"].as_array().expect("items");
    assert_eq!(rows.len(), patrols.len());
    assert_eq!(rows.len(), 2, "both crews of A were assigned");
    for row in rows {
        let p = row["id"].as_str().expect("id");
        let mine: Vec<&&Assignment> = station_assignments
            .iter()
            .filter(|x| x.patrol == p)
            .collect();
        let n = |f: &dyn Fn(&Assignment) -> bool| mine.iter().filter(|x| f(x)).count() as i64;
        let accepted = n(&|x| x.accepted.is_some());
        let declined = n(&|x| x.declined_by.is_some());
        assert_eq!(count(&row["assignments"]), mine.len() as i64, "{p}");
        assert_eq!(count(&row["open"]), n(&|x| !x.ended), "{p} open");
        assert_eq!(count(&row["accepted"]), accepted, "{p}");
        assert_eq!(count(&row["declined"]), declined, "{p}");
        close(
            &row["decline_rate"],
            share(declined, accepted + declined),
            p,
        );
        assert_eq!(count(&row["resolved"]), n(&|x| x.resolved.is_some()), "{p}");
        let times = sorted(
            mine.iter()
                .filter_map(|x| Some(secs(x.accepted?, x.resolved?)))
                .collect(),
        );
        close(&row["median_resolve_secs"], percentile_cont(&times, 0.5), p);
        assert_eq!(
            count(&row["closures_rejected"]),
            mine.iter().map(|x| x.closure_rejections).sum::<i64>()
        );
    }

    let body = get(
        app,
        Some(&w.supervisor_a),
        &format!("/analytics/officers?{range}"),
    )
    .await;
    let rows = body["items"].as_array().expect("items");
    let mut officers: BTreeSet<String> = BTreeSet::new();
    for x in &station_assignments {
        for o in [&x.accepted_by, &x.declined_by, &x.resolved_by] {
            officers.extend(o.clone());
        }
    }
    assert_eq!(
        officers,
        w.officer_ids.iter().cloned().collect::<BTreeSet<_>>(),
        "both officers of A answered"
    );
    assert_eq!(rows.len(), officers.len());
    for row in rows {
        let o = row["id"].as_str().expect("id").to_string();
        let me = Some(o.clone());
        let mine: Vec<&&Assignment> = station_assignments
            .iter()
            .filter(|x| x.accepted_by == me || x.declined_by == me || x.resolved_by == me)
            .collect();
        let n = |f: &dyn Fn(&Assignment) -> bool| mine.iter().filter(|x| f(x)).count() as i64;
        let accepted = n(&|x| x.accepted_by == me);
        let declined = n(&|x| x.declined_by == me);
        assert_eq!(count(&row["assignments"]), mine.len() as i64);
        assert_eq!(count(&row["open"]), n(&|x| x.accepted_by == me && !x.ended));
        assert_eq!(count(&row["accepted"]), accepted);
        assert_eq!(count(&row["declined"]), declined);
        close(
            &row["decline_rate"],
            share(declined, accepted + declined),
            &o,
        );
        let mine_resolved = |x: &Assignment| x.resolved_by == me && x.resolved.is_some();
        assert_eq!(count(&row["resolved"]), n(&mine_resolved));
        let times = sorted(
            mine.iter()
                .filter(|x| mine_resolved(x))
                .filter_map(|x| Some(secs(x.accepted?, x.resolved?)))
                .collect(),
        );
        close(
            &row["median_resolve_secs"],
            percentile_cont(&times, 0.5),
            &o,
        );
        assert_eq!(
            count(&row["closures_rejected"]),
            mine.iter()
                .filter(|x| x.resolved_by == me)
                .map(|x| x.closure_rejections)
                .sum::<i64>()
        );
    }

    // ---- volume per day (the whole history is within a day or two).
    let body = get(
        app,
        Some(&w.dispatcher_a),
        &format!("/analytics/volume?{range}&bucket=day"),
    )
    .await;
    let mut want: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for r in &cohort {
        let s = r.submitted.expect("submitted");
        let day = s.date_naive().and_hms_opt(0, 0, 0).expect("day").and_utc();
        let b = rfc3339(day);
        let mut add = |dim: &str, v: &str| {
            *want
                .entry((b.clone(), dim.to_string(), v.to_string()))
                .or_default() += 1
        };
        for c in &r.codes {
            add("type", c);
        }
        add("priority", &r.priority);
        add("station", &r.station);
        add("status", &r.status);
    }
    let got: BTreeMap<(String, String, String), i64> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            let b: DateTime<Utc> = serde_json::from_value(i["bucket"].clone()).expect("bucket");
            (
                (
                    rfc3339(b),
                    i["dimension"].as_str().expect("dim").to_string(),
                    i["value"].as_str().expect("value").to_string(),
                ),
                count(&i["count"]),
            )
        })
        .collect();
    assert_eq!(got, want, "volume by day");
    assert_eq!(
        want.iter()
            .filter(|((_, d, v), _)| d == "type" && v == "THEFT")
            .map(|(_, n)| n)
            .sum::<i64>(),
        4,
        "r0, r3, r6, r9 are thefts"
    );

    // ---- filters: type and priority narrow the cohort.
    let body = get(
        app,
        Some(&w.dispatcher_a),
        &format!("/analytics/funnel?{range}&type=THEFT"),
    )
    .await;
    let thefts = cohort
        .iter()
        .filter(|r| r.codes.contains(&"THEFT".to_string()));
    assert_eq!(count(&body["items"][0]["submitted"]), thefts.count() as i64);
    let body = get(
        app,
        Some(&w.dispatcher_a),
        &format!("/analytics/funnel?{range}&priority=HIGH"),
    )
    .await;
    assert_eq!(count(&body["items"][0]["submitted"]), 1, "r6 only");

    // ---- heatmap: each report in its geohash cell of 6.
    let bbox = "125.5,7.0,125.9,7.4";
    let body = get(
        app,
        Some(&w.admin),
        &format!("/analytics/heatmap?{range}&bbox={bbox}&precision=6"),
    )
    .await;
    assert_eq!(body["type"], "FeatureCollection");
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for r in reps.values() {
        let cell = geohash::encode(geohash::Coord { x: r.lon, y: r.lat }, 6).expect("cell");
        *want.entry(cell).or_default() += 1;
    }
    let got: BTreeMap<String, i64> = body["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            assert_eq!(f["geometry"]["type"], "Polygon");
            (
                f["properties"]["cell"].as_str().expect("cell").to_string(),
                count(&f["properties"]["count"]),
            )
        })
        .collect();
    assert_eq!(got, want, "heatmap cells");

    // ---- the hourly roll-up (migration 0036): after every change the history made
    // (assignments, declines, transfers, closures, …), its rows are exactly the
    // aggregate of `analytics_reports`; and a range of whole days, read from the
    // roll-up, answers what the narrow range above, read row by row, answered.
    let differ: i64 = sqlx::query_scalar(
        "WITH want AS (
            SELECT station_id, date_trunc('hour', submitted_at, 'UTC') AS hour, priority,
                status, crime_type_codes, count(*) AS submitted,
                count(first_assigned_at) AS assigned, count(first_accepted_at) AS accepted,
                count(first_responding_at) AS responding,
                count(first_resolved_at) AS resolved, count(first_closed_at) AS closed,
                count(*) FILTER (WHERE declines > 0) AS declined,
                sum(declines)::bigint AS declines, count(first_rejected_at) AS rejected,
                count(first_withdrawn_at) AS withdrawn,
                count(first_duplicate_at) AS duplicates
              FROM analytics_reports GROUP BY 1, 2, 3, 4, 5),
         got AS (SELECT * FROM analytics_hourly)
         SELECT (SELECT count(*) FROM (SELECT * FROM want EXCEPT SELECT * FROM got) x)
              + (SELECT count(*) FROM (SELECT * FROM got EXCEPT SELECT * FROM want) y)",
    )
    .fetch_one(&app.pool)
    .await
    .expect("roll-up check");
    assert_eq!(
        differ, 0,
        "analytics_hourly = the aggregate of analytics_reports"
    );
    let day = chrono::Duration::days(1);
    let wide = format!(
        "from={}&to={}",
        rfc3339(from.duration_trunc(day).expect("day") - day),
        rfc3339(to.duration_trunc(day).expect("day") + day + day)
    )
    .replace('+', "%2B");
    for (path, filters) in [
        ("/analytics/funnel", ""),
        ("/analytics/funnel", "&type=THEFT"),
        ("/analytics/funnel", "&priority=HIGH"),
        ("/analytics/volume", "&bucket=day"),
        ("/analytics/volume", "&bucket=hour&type=THEFT"),
    ] {
        let narrow = get(
            app,
            Some(&w.dispatcher_a),
            &format!("{path}?{range}{filters}"),
        )
        .await;
        let whole = get(
            app,
            Some(&w.dispatcher_a),
            &format!("{path}?{wide}{filters}"),
        )
        .await;
        assert_eq!(
            narrow["items"], whole["items"],
            "{path}{filters}: whole days = row by row"
        );
    }
}

#[tokio::test]
async fn scoping_k_anonymity_bad_input_and_rebuild() {
    let w = world().await;
    let app = &w.app;
    let (from, to) = history(&w).await;
    let range = format!("from={}&to={}", rfc3339(from), rfc3339(to)).replace('+', "%2B");
    let submitted = |b: &Value| count(&b["items"][0]["submitted"]);

    // Staff of A: their station by default, B refused; ADMIN: all, or one.
    let own = get(
        app,
        Some(&w.dispatcher_a),
        &format!("/analytics/funnel?{range}"),
    )
    .await;
    assert_eq!(submitted(&own), 11);
    let path = format!("/analytics/funnel?{range}&station={}", w.station_a);
    assert_eq!(submitted(&get(app, Some(&w.supervisor_a), &path).await), 11);
    for ep in ["funnel", "sla", "officers", "patrols", "volume"] {
        let r = app
            .get(
                &format!("/analytics/{ep}?{range}&station={}", w.station_b),
                Some(&w.dispatcher_a),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{ep}: {}", r.body);
        // Officers and citizens: no analytics; without a token: 401.
        for token in [&w.officers[0], &w.citizen] {
            let r = app.get(&format!("/analytics/{ep}"), Some(token)).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{ep}: {}", r.body);
        }
        let r = app.get(&format!("/analytics/{ep}"), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{ep}: {}", r.body);
    }
    let r = app
        .get(
            &format!(
                "/analytics/heatmap?bbox=125,7,126,7.5&station={}",
                w.station_b
            ),
            Some(&w.dispatcher_a),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let b_only = format!("/analytics/funnel?{range}&station={}", w.station_b);
    let b = get(app, Some(&w.admin), &b_only).await;
    assert_eq!(
        (submitted(&b), b["station_id"].clone()),
        (2, json!(w.station_b))
    );
    assert_eq!(
        submitted(&get(app, Some(&w.dispatcher_b), &b_only).await),
        2
    );
    let all = get(app, Some(&w.admin), &format!("/analytics/funnel?{range}")).await;
    assert_eq!(
        (submitted(&all), all["station_id"].clone()),
        (13, Value::Null)
    );
    // The desk of B sees B's patrol only.
    let pb = get(
        app,
        Some(&w.dispatcher_b),
        &format!("/analytics/patrols?{range}"),
    )
    .await;
    assert_eq!(pb["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(pb["items"][0]["id"], json!(w.patrol_b));

    // Public heatmap: anyone; coarse cells; A's cell has 11 - rejected 2 - withdrawn 2
    // = 7 countable reports; B's has 2 (< k = 3): left out.
    let bbox = "125.0,7.0,126.0,7.5";
    let r = app
        .get(
            &format!("/analytics/heatmap/public?{range}&bbox={bbox}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/geo+json")
    );
    let cell_a = geohash::encode(geohash::Coord { x: LON, y: LAT }, 5).expect("cell");
    let cell_b = geohash::encode(geohash::Coord { x: LON_B, y: LAT_B }, 5).expect("cell");
    assert_ne!(cell_a, cell_b);
    let features = r.body["features"].as_array().expect("features");
    assert_eq!(features.len(), 1, "{}", r.body);
    assert_eq!(
        features[0]["properties"],
        json!({"cell": cell_a, "count": 7})
    );
    assert_eq!(r.body["min_count"], 3);
    assert_eq!(r.body["precision"], 5);
    // Staff see B's small cell.
    let staff = get(
        app,
        Some(&w.admin),
        &format!("/analytics/heatmap?{range}&bbox={bbox}&precision=5"),
    )
    .await;
    let cells: BTreeMap<String, i64> = staff["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            (
                f["properties"]["cell"].as_str().expect("cell").to_string(),
                count(&f["properties"]["count"]),
            )
        })
        .collect();
    assert_eq!(cells, BTreeMap::from([(cell_a, 11), (cell_b, 2)]));

    // Bad input: 422 naming the parameter, never a 5xx.
    let now = Utc::now();
    let bad: Vec<(String, &str)> = vec![
        (format!("/analytics/volume?{range}&bucket=minute"), "bucket"),
        (
            format!(
                "/analytics/funnel?from={}&to={}",
                rfc3339(now),
                rfc3339(now - chrono::Duration::hours(1))
            ),
            "to",
        ),
        (
            format!(
                "/analytics/sla?from={}&to={}",
                rfc3339(now - chrono::Duration::days(400)),
                rfc3339(now)
            ),
            "from",
        ),
        ("/analytics/funnel?from=yesterday".into(), "from"),
        ("/analytics/funnel?type=NOPE".into(), "type"),
        ("/analytics/funnel?type=bad%20code".into(), "type"),
        ("/analytics/officers?priority=URGENT".into(), "priority"),
        ("/analytics/patrols?station=not-a-uuid".into(), "station"),
        (
            format!(
                "/analytics/volume?from={}&to={}&bucket=hour",
                rfc3339(now - chrono::Duration::days(300)),
                rfc3339(now)
            ),
            "bucket",
        ),
        ("/analytics/heatmap".into(), "bbox"),
        ("/analytics/heatmap?bbox=170,0,-170,10".into(), "bbox"),
        (
            "/analytics/heatmap?bbox=-180,-90,180,90&precision=8".into(),
            "bbox",
        ),
        ("/analytics/heatmap?bbox=0,0,1".into(), "bbox"),
        ("/analytics/heatmap?bbox=0,95,1,96".into(), "bbox"),
        (
            "/analytics/heatmap?bbox=0,0,1,1&precision=9".into(),
            "precision",
        ),
    ];
    for (path, field) in &bad {
        assert_invalid(&app.get(path, Some(&w.admin)).await, field, path);
    }
    for (path, field) in [
        (
            "/analytics/heatmap/public?bbox=0,0,1,1&precision=6",
            "precision",
        ),
        ("/analytics/heatmap/public?bbox=170,0,-170,10", "bbox"),
        ("/analytics/heatmap/public?bbox=-180,-90,180,90", "bbox"),
        ("/analytics/heatmap/public", "bbox"),
        ("/analytics/heatmap/public?bbox=0,0,1,1&type=NOPE", "type"),
    ] {
        assert_invalid(&app.get(path, None).await, field, path);
    }

    // A rebuild gives the same analytics rows.
    let head = app.log.head().await.expect("head");
    app.caught_up(head).await;
    let pool = app.pool.clone();
    let log = app.log.clone();
    let dump = || async {
        let mut out = Vec::new();
        for (table, order) in [
            ("analytics_reports", "report_id"),
            ("analytics_assignments", "report_id, t.seq"),
            (
                "analytics_hourly",
                "station_id, t.hour, t.priority, t.status, t.crime_type_codes",
            ),
        ] {
            let rows: Value = sqlx::query_scalar(&format!(
                "SELECT coalesce(json_agg(t ORDER BY t.{order}), '[]'::json) FROM {table} t"
            ))
            .fetch_one(&pool)
            .await
            .expect("dump");
            out.push(rows);
        }
        out
    };
    let live = dump().await;
    assert_eq!(live[0].as_array().map(Vec::len), Some(13));
    assert_eq!(live[1].as_array().map(Vec::len), Some(10));
    let World { app, .. } = w;
    app.stop().await.expect("stop");
    precinct_projections::rebuild(&pool, &log)
        .await
        .expect("rebuild");
    assert!(
        !live[2].as_array().expect("hourly").is_empty(),
        "the roll-up has rows"
    );
    assert_eq!(dump().await, live, "rebuilt rows equal the live ones");
}

#[tokio::test]
async fn a_range_that_cuts_an_hour_counts_exactly_the_reports_inside_it() {
    // Given three reports submitted one after the other at station A (in one hour, but
    // for the rare run that crosses one)
    let w = world().await;
    let app = &w.app;
    let mut ids = Vec::new();
    let mut last = 0;
    for i in 0..3 {
        let r = app
            .report(Some(&w.citizen), LAT + 0.0001 * i as f64, LON, &["Theft"])
            .await;
        ids.push(r.id());
        last = r.position();
    }
    app.caught_up(last).await;
    let reps = fold_log(app).await;
    let t: Vec<DateTime<Utc>> = ids
        .iter()
        .map(|id| reps[id].submitted.expect("submitted"))
        .collect();
    let inside = |from: DateTime<Utc>, to: DateTime<Utc>| {
        reps.values()
            .filter(|r| {
                r.station == w.station_a && r.submitted.is_some_and(|s| s >= from && s < to)
            })
            .count() as i64
    };
    let hour = chrono::Duration::hours(1);
    let micro = chrono::Duration::microseconds(1);
    // When ranges with whole hours end (or start) in the reports' hour, between them —
    // the roll-up of that hour also counts reports outside the range, so they are read
    // one by one — or past them all (the hour's roll-up counts exactly the range's)
    let ranges = [
        (t[0] - hour * 2, t[1]),
        (t[0] - hour * 2, t[2] + micro),
        (t[1], t[2] + hour * 2),
        (t[0] - hour * 2, t[2] + hour * 2),
    ];
    let expected: Vec<i64> = ranges.iter().map(|(f, t)| inside(*f, *t)).collect();
    assert_eq!(&expected[..3], &[1, 3, 2], "the ranges cut where meant");
    for ((from, to), want) in ranges.iter().zip(&expected) {
        let range = format!("from={}&to={}", rfc3339(*from), rfc3339(*to)).replace('+', "%2B");
        // Then the funnel and every dimension of the volume count exactly those
        let funnel = get(
            app,
            Some(&w.dispatcher_a),
            &format!("/analytics/funnel?{range}"),
        )
        .await;
        assert_eq!(
            count(&funnel["items"][0]["submitted"]),
            *want,
            "funnel {range}"
        );
        let volume = get(
            app,
            Some(&w.dispatcher_a),
            &format!("/analytics/volume?{range}&bucket=day"),
        )
        .await;
        let rows = volume["items"].as_array().expect("items");
        for dimension in ["priority", "station", "status"] {
            let sum: i64 = rows
                .iter()
                .filter(|r| r["dimension"] == dimension)
                .map(|r| count(&r["count"]))
                .sum();
            assert_eq!(sum, *want, "volume by {dimension} {range}");
        }
    }
}
