//! Links between reports (issue 16 item 4) through HTTP, JetStream and PostgreSQL: a
//! duplicate closed into its primary (its patrol's workload drops, its reporter and its
//! anonymous tracker follow the primary's status), `RELATED` links both ways,
//! unlinking, the refusals (nothing appended), the race of two desks, and the list of
//! possible duplicates.

use chrono::{Duration, SecondsFormat, Utc};
use precinct_tests::app::TestApp;
use precinct_tests::client::Res;
use precinct_tests::world::{Spec, StationSpec};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;
const LAT_B: f64 = 9.0;
const LON_B: f64 = 127.0;
/// About 100 m of latitude.
const HUNDRED_M: f64 = 0.0009;

struct World {
    app: TestApp,
    admin: String,
    station_b: String,
    dispatcher_a: String,
    dispatcher_a2: String,
    dispatcher_b: String,
    /// Station A's patrol and a serving officer of it.
    patrol: String,
    officer: String,
    citizens: Vec<String>,
}

async fn world() -> World {
    let app = TestApp::spawn().await.expect("spawn");
    let spec = Spec {
        stations: vec![
            StationSpec::new("PS-A", LAT, LON)
                .dispatchers(2)
                .crews(&["ALPHA-1"]),
            StationSpec::new("PS-B", LAT_B, LON_B)
                .dispatchers(1)
                .crews(&["BRAVO-1"]),
        ],
        citizens: 2,
    };
    let built = app.world(&spec).await;
    let [a, b] = [&built.stations[0], &built.stations[1]];
    World {
        admin: built.admin.token.clone(),
        station_b: b.id().to_string(),
        dispatcher_a: a.dispatchers[0].token.clone(),
        dispatcher_a2: a.dispatchers[1].token.clone(),
        dispatcher_b: b.dispatchers[0].token.clone(),
        patrol: a.crews[0].patrol.clone(),
        officer: a.crews[0].officer.token.clone(),
        citizens: built.citizens.iter().map(|c| c.token.clone()).collect(),
        app,
    }
}

impl World {
    /// A theft at (LAT, LON) by citizen `who`.
    async fn report(&self, who: usize) -> String {
        self.app
            .report(Some(&self.citizens[who]), LAT, LON, &["Theft"])
            .await
            .id()
    }

    /// A report of `types` at (lat, lon) that happened `minutes_ago`, by citizen 0.
    async fn report_at(&self, lat: f64, lon: f64, types: &[&str], minutes_ago: i64) -> String {
        let occurred = (Utc::now() - Duration::minutes(minutes_ago))
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let r = self
            .app
            .post(
                "/crimes",
                Some(&self.citizens[0]),
                json!({"title": "Incident", "description": "Seen from the window",
                       "crime_types": types, "occurred_at": occurred,
                       "location": {"latitude": lat, "longitude": lon}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.id()
    }

    async fn dispatched(&self, id: &str) -> u64 {
        let r = self
            .app
            .post(
                "/dispatch",
                Some(&self.dispatcher_a),
                json!({"crime_id": id, "patrol_id": self.patrol}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.position()
    }

    async fn link(&self, id: &str, other: &str, kind: &str, token: &str) -> Res {
        self.app
            .post(
                &format!("/crimes/{id}/link"),
                Some(token),
                json!({"other_id": other, "kind": kind}),
            )
            .await
    }

    /// A report in the staff view once the read models reached `position`.
    async fn staff_view(&self, id: &str, position: u64) -> Value {
        let r = self
            .app
            .get_at(&format!("/crimes/{id}"), Some(&self.admin), position)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
    }

    async fn open_assignments(&self, position: u64) -> u64 {
        let r = self
            .app
            .get_at(
                &format!("/patrols/{}", self.patrol),
                Some(&self.admin),
                position,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["open_assignments"].as_u64().unwrap_or(99)
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

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_duplicate_closes_into_its_primary_its_patrol_lets_go_and_its_reporters_follow_the_primary(
) {
    let w = world().await;
    let app = &w.app;
    let primary = w.report(1).await;
    let dup = w.report(0).await;
    let position = w.dispatched(&dup).await;
    assert_eq!(w.open_assignments(position).await, 1);

    let r = w.link(&dup, &primary, "DUPLICATE", &w.dispatcher_a).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "CLOSED");
    assert_eq!(r.body["duplicate_of"], primary.as_str());
    assert_eq!(r.body["patrol_id"], Value::Null);
    let position = r.position();
    // The patrol let go of it in the same append: its workload counts the incident once.
    assert_eq!(w.open_assignments(position).await, 0);
    let p = w.staff_view(&primary, position).await;
    assert_eq!(ids(&p["duplicates"]), vec![dup.clone()]);
    assert_eq!(p["status"], "NEW");
    let history = app
        .get(&format!("/crimes/{dup}/history"), Some(&w.dispatcher_a))
        .await;
    let types: Vec<&str> = history.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(
        types.ends_with(&["AssignmentWithdrawn", "ReportMarkedDuplicate"]),
        "{types:?}"
    );

    // The primary is worked; the duplicate's reporter follows it.
    let position = w.dispatched(&primary).await;
    let mine = app
        .get_at(&format!("/crimes/{dup}"), Some(&w.citizens[0]), position)
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(mine.body["status"], "CLOSED");
    assert_eq!(
        mine.body["duplicate_of"],
        json!({"id": primary, "status": "ASSIGNED"}),
        "the primary's id and status, nothing else of it"
    );
    for staff_only in ["duplicates", "related", "patrol_id", "notes"] {
        assert!(mine.body.get(staff_only).is_none(), "{staff_only} leaks");
    }
    // The same from the log (`as_of`): the primary as it stood then.
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let then = app
        .get(
            &format!("/crimes/{dup}?as_of={}", now.replace('+', "%2B")),
            Some(&w.citizens[0]),
        )
        .await;
    assert_eq!(then.status, StatusCode::OK, "{}", then.body);
    assert_eq!(then.body["duplicate_of"]["status"], "ASSIGNED");
    // The primary's reporter sees nothing of its duplicates.
    let theirs = app
        .get_at(
            &format!("/crimes/{primary}"),
            Some(&w.citizens[1]),
            position,
        )
        .await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
    assert_eq!(theirs.body["duplicate_of"], Value::Null);
    assert!(theirs.body.get("duplicates").is_none());
    assert!(
        !theirs.body.to_string().contains(&dup),
        "the duplicate's id leaks"
    );
    // Another station's desk sees neither.
    for id in [&dup, &primary] {
        let r = app
            .get(&format!("/crimes/{id}"), Some(&w.dispatcher_b))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }

    // An anonymous duplicate: its tracking token follows the primary too.
    let anon = app
        .post(
            "/crimes",
            None,
            json!({"title": "Bike gone", "description": "Rack outside the bakery",
                   "crime_types": ["theft"], "location": {"latitude": LAT, "longitude": LON}}),
        )
        .await;
    assert_eq!(anon.status, StatusCode::CREATED, "{}", anon.body);
    let (anon_id, token) = (
        anon.id(),
        anon.body["tracking_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    app.caught_up(w.head().await).await;
    let r = w
        .link(&anon_id, &primary, "DUPLICATE", &w.dispatcher_a)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.caught_up(r.position()).await;
    let tracked = app
        .call(
            Method::GET,
            &format!("/crimes/{anon_id}"),
            None,
            None,
            &[("X-Tracking-Token", token.as_str())],
        )
        .await;
    assert_eq!(tracked.status, StatusCode::OK, "{}", tracked.body);
    assert_eq!(
        tracked.body["duplicate_of"],
        json!({"id": primary, "status": "ASSIGNED"})
    );
    let p = w.staff_view(&primary, r.position()).await;
    assert_eq!(ids(&p["duplicates"]), vec![dup, anon_id]);
}

#[tokio::test]
async fn related_links_hold_both_ways_and_unlinking_a_duplicate_puts_it_back_in_the_queue() {
    let w = world().await;
    let (a, b) = (w.report(0).await, w.report(1).await);
    app_caught_up(&w).await;
    let r = w.link(&a, &b, "RELATED", &w.dispatcher_a).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "NEW", "a related link changes no status");
    let position = r.position();
    assert_eq!(
        ids(&w.staff_view(&a, position).await["related"]),
        vec![b.clone()]
    );
    assert_eq!(
        ids(&w.staff_view(&b, position).await["related"]),
        vec![a.clone()]
    );
    // Already linked, whichever way round and whatever kind.
    for (x, y, kind) in [
        (&b, &a, "RELATED"),
        (&a, &b, "DUPLICATE"),
        (&b, &a, "DUPLICATE"),
    ] {
        let body = w
            .refused(
                &format!("/crimes/{x}/link"),
                &w.dispatcher_a,
                json!({"other_id": y, "kind": kind}),
                StatusCode::CONFLICT,
            )
            .await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("already linked"),
            "{body}"
        );
    }
    let r = w
        .app
        .post(
            &format!("/crimes/{b}/unlink"),
            Some(&w.dispatcher_a),
            json!({"other_id": a}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let position = r.position();
    assert_eq!(w.staff_view(&a, position).await["related"], json!([]));
    assert_eq!(w.staff_view(&b, position).await["related"], json!([]));

    // A duplicate that was assigned, unlinked: back to NEW without its patrol or clocks,
    // and it can be assigned again.
    let dup = w.report(0).await;
    w.dispatched(&dup).await;
    let r = w.link(&dup, &a, "DUPLICATE", &w.dispatcher_a2).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = w
        .app
        .post(
            &format!("/crimes/{dup}/unlink"),
            Some(&w.dispatcher_a),
            json!({"other_id": a}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "NEW");
    assert_eq!(r.body["duplicate_of"], Value::Null);
    assert_eq!(r.body["assigned_at"], Value::Null);
    assert_eq!(r.body["patrol_id"], Value::Null);
    let position = r.position();
    let row = w.staff_view(&dup, position).await;
    assert_eq!(
        (&row["status"], &row["duplicate_of"], &row["assigned_at"]),
        (&json!("NEW"), &Value::Null, &Value::Null)
    );
    assert_eq!(w.staff_view(&a, position).await["duplicates"], json!([]));
    assert_eq!(w.open_assignments(position).await, 0);
    let position = w.dispatched(&dup).await;
    assert_eq!(w.open_assignments(position).await, 1);
    // Unlinking what is not linked.
    w.refused(
        &format!("/crimes/{dup}/unlink"),
        &w.dispatcher_a,
        json!({"other_id": a}),
        StatusCode::CONFLICT,
    )
    .await;
}

async fn app_caught_up(w: &World) {
    w.app.caught_up(w.head().await).await;
}

#[tokio::test]
async fn link_refusals_are_clear_and_append_nothing() {
    let w = world().await;
    let (p, d, x) = (w.report(0).await, w.report(0).await, w.report(1).await);
    // A report of station B, for station A's desk an unknown one.
    let theirs = w
        .app
        .report(Some(&w.citizens[1]), LAT_B, LON_B, &["Theft"])
        .await
        .id();
    app_caught_up(&w).await;
    let link = |id: &str| format!("/crimes/{id}/link");

    let body = w
        .refused(
            &link(&p),
            &w.dispatcher_a,
            json!({"other_id": p, "kind": "RELATED"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(body["errors"][0]["field"], "other_id", "{body}");
    // Another station's report and an unknown one get the same answer.
    let other_station = w
        .refused(
            &link(&p),
            &w.dispatcher_a,
            json!({"other_id": theirs, "kind": "DUPLICATE"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    let unknown = w
        .refused(
            &link(&p),
            &w.dispatcher_a,
            json!({"other_id": uuid::Uuid::new_v4(), "kind": "DUPLICATE"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(other_station["errors"], unknown["errors"]);
    assert_eq!(other_station["errors"][0]["field"], "other_id");
    // Station B's desk does not see station A's report at all.
    w.refused(
        &link(&p),
        &w.dispatcher_b,
        json!({"other_id": theirs, "kind": "RELATED"}),
        StatusCode::NOT_FOUND,
    )
    .await;
    // Neither a citizen nor an officer links.
    for token in [&w.citizens[0], &w.officer] {
        w.refused(
            &link(&p),
            token,
            json!({"other_id": x, "kind": "RELATED"}),
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    // Bad kind.
    w.refused(
        &link(&p),
        &w.dispatcher_a,
        json!({"other_id": x, "kind": "SAME"}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // d is a duplicate of p. No chain, no cycle: p cannot become a duplicate (it has d),
    // nothing can become a duplicate of d, d cannot be closed again.
    let r = w.link(&d, &p, "DUPLICATE", &w.dispatcher_a).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let body = w
        .refused(
            &link(&p),
            &w.dispatcher_a,
            json!({"other_id": x, "kind": "DUPLICATE"}),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(
        body["detail"].as_str().unwrap_or_default().contains(&d),
        "names the duplicates: {body}"
    );
    for (id, other) in [(&x, &d), (&d, &x), (&p, &d)] {
        w.refused(
            &link(id),
            &w.dispatcher_a,
            json!({"other_id": other, "kind": "DUPLICATE"}),
            StatusCode::CONFLICT,
        )
        .await;
    }
    // A closed duplicate is not reopened (it is unlinked instead).
    w.refused(
        &format!("/crimes/{d}/reopen"),
        &w.admin,
        json!({"reason": "not the same"}),
        StatusCode::CONFLICT,
    )
    .await;

    // The ADMIN links across stations.
    let r = w.link(&x, &theirs, "RELATED", &w.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let position = r.position();
    assert_eq!(
        ids(&w.staff_view(&theirs, position).await["related"]),
        vec![x.clone()]
    );
    // Station B's desk sees its report's link; station A's report stays hidden from it.
    let r = w
        .app
        .get_at(&format!("/crimes/{x}"), Some(&w.dispatcher_b), position)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_desks_closing_one_report_into_two_primaries_at_once_one_wins_and_one_gets_409() {
    let w = world().await;
    let (d, p1, p2) = (w.report(0).await, w.report(1).await, w.report(1).await);
    w.dispatched(&d).await;
    let (a, b) = tokio::join!(
        w.link(&d, &p1, "DUPLICATE", &w.dispatcher_a),
        w.link(&d, &p2, "DUPLICATE", &w.dispatcher_a2),
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
    let (winner, primary, other) = if a.status == StatusCode::OK {
        (&a, &p1, &p2)
    } else {
        (&b, &p2, &p1)
    };
    let position = winner.position();
    assert_eq!(
        w.staff_view(&d, position).await["duplicate_of"],
        primary.as_str()
    );
    assert_eq!(
        ids(&w.staff_view(primary, position).await["duplicates"]),
        vec![d.clone()]
    );
    assert_eq!(w.staff_view(other, position).await["duplicates"], json!([]));
    assert_eq!(w.open_assignments(position).await, 0, "withdrawn once");
}

#[tokio::test]
async fn possible_duplicates_are_same_type_reports_near_in_space_and_time_of_the_station() {
    let w = world().await;
    let target = w.report_at(LAT, LON, &["Theft", "Vandalism"], 10).await;
    let inside = w.report_at(LAT + HUNDRED_M, LON, &["theft"], 30).await;
    let far = w
        .report_at(LAT + 4.0 * HUNDRED_M, LON, &["Theft"], 10)
        .await;
    let old = w.report_at(LAT, LON, &["Theft"], 5 * 60).await;
    let other_type = w.report_at(LAT, LON, &["Assault"], 10).await;
    // A report next door moved to station B: not station A's to see.
    let moved = w
        .report_at(LAT, LON + HUNDRED_M / 2.0, &["Theft"], 10)
        .await;
    app_caught_up(&w).await;
    let r = w
        .app
        .post(
            &format!("/crimes/{moved}/transfer"),
            Some(&w.dispatcher_a),
            json!({"station_id": w.station_b, "reason": "their case"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let position = r.position();
    let search = |query: &str, token: &str| {
        let path = format!("/crimes/{target}/possible-duplicates{query}");
        let token = token.to_string();
        let app = &w.app;
        async move { app.get_at(&path, Some(&token), position).await }
    };
    let listed = |r: &Res| -> Vec<String> {
        r.body["candidates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["id"].as_str().map(str::to_string))
            .collect()
    };

    let r = search("", &w.dispatcher_a).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (
            r.body["radius_m"].as_u64(),
            r.body["window_minutes"].as_u64()
        ),
        (Some(250), Some(120))
    );
    assert_eq!(listed(&r), vec![inside.clone()], "{}", r.body);
    let c = &r.body["candidates"][0];
    let d = c["distance_m"].as_f64().unwrap_or_default();
    assert!((90.0..110.0).contains(&d), "{c}");
    assert_eq!(c["minutes_apart"], 20);
    // Wider: the far one and the old one too, nearest first; never another type.
    let r = search("?radius_m=500&window_minutes=400", &w.dispatcher_a).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        listed(&r),
        vec![old.clone(), inside.clone(), far.clone()],
        "{}",
        r.body
    );
    assert!(!listed(&r).contains(&other_type));
    // The ADMIN sees station B's report too.
    let r = search("", &w.admin).await;
    assert_eq!(
        listed(&r),
        vec![moved.clone(), inside.clone()],
        "{}",
        r.body
    );

    // Refusals.
    for bad in [
        "?radius_m=0",
        "?radius_m=5000",
        "?window_minutes=0",
        "?limit=51",
    ] {
        let r = search(bad, &w.dispatcher_a).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.body
        );
    }
    assert_eq!(
        search("", &w.citizens[0]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        search("", &w.dispatcher_b).await.status,
        StatusCode::NOT_FOUND
    );

    // Once linked, a candidate is no longer listed.
    let r = w.link(&inside, &target, "DUPLICATE", &w.dispatcher_a).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let path = format!("/crimes/{target}/possible-duplicates");
    let r = w
        .app
        .get_at(&path, Some(&w.dispatcher_a), r.position())
        .await;
    assert_eq!(listed(&r), Vec::<String>::new(), "{}", r.body);
}
