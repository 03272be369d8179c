//! Station management through HTTP → JetStream → PostgreSQL (issue 16 item 7): reading
//! one station, editing it (a new area routes the reports submitted after the edit,
//! never the ones already routed), deactivation (refused while reports are open, naming
//! them; an inactive station receives nothing), the area preview, and the refusals
//! that append nothing.

use precinct_tests::app::TestApp;
use precinct_tests::client::{Call, Res};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Precinct A covers ±0.05° around (7.07, 125.61); precinct B ±0.05° around (7.30,
/// 125.61). A point at (7.20, 125.61) is in neither area and nearer to B.
const A: (f64, f64) = (7.07, 125.61);
const B: (f64, f64) = (7.30, 125.61);
const BETWEEN: (f64, f64) = (7.20, 125.61);

struct City {
    app: TestApp,
    admin: String,
    a: String,
    b: String,
    dispatcher_a: String,
    citizen: String,
}

async fn city() -> City {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let a = app.precinct(&admin, "Precinct A", A.0, A.1).await;
    let b = app.precinct(&admin, "Precinct B", B.0, B.1).await;
    let (_, dispatcher_a) = app.account(&admin, "DISPATCHER", Some(&a)).await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    City {
        app,
        admin,
        a,
        b,
        dispatcher_a,
        citizen,
    }
}

impl City {
    async fn report_at(&self, (lat, lon): (f64, f64)) -> Res {
        self.app
            .report(Some(&self.citizen), lat, lon, &["Theft"])
            .await
    }

    async fn edit(&self, station: &str, changes: Value) -> Res {
        self.app
            .send(&Call::edit_station(station, changes), Some(&self.admin))
            .await
    }

    async fn head(&self) -> u64 {
        self.app.log.head().await.expect("head")
    }
}

#[tokio::test]
async fn a_new_area_routes_the_reports_after_it_and_leaves_the_earlier_ones_where_they_were() {
    let c = city().await;
    let before = c.report_at(BETWEEN).await;
    assert_eq!(before.body["station_id"], c.b.as_str(), "{}", before.body);
    let wide = Call::square_area(A.0, A.1, 0.15);

    // The preview names the earlier report: the wider area would take it from B to A.
    c.app.caught_up(before.position()).await;
    let r = c
        .app
        .send(
            &Call::preview_area(&c.a, wide.clone(), Some(50)),
            Some(&c.admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["considered"], 1, "{}", r.body);
    let rerouted = r.body["rerouted"].as_array().expect("list");
    assert_eq!(rerouted.len(), 1, "{}", r.body);
    assert_eq!(rerouted[0]["report_id"], before.id().as_str());
    assert_eq!(rerouted[0]["station_id"], c.b.as_str());
    assert_eq!(rerouted[0]["routed_now"], c.b.as_str());
    assert_eq!(rerouted[0]["rule_now"], "NEAREST_PRECINCT");
    assert_eq!(rerouted[0]["routed_proposed"], c.a.as_str());
    assert_eq!(rerouted[0]["rule_proposed"], "PRECINCT_AREA");

    let r = c
        .edit(
            &c.a,
            json!({"area": wide, "name": "Precinct A (wide)", "contact_phone": "+63 82 227 1234"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Precinct A (wide)");
    assert_eq!(r.body["contact_phone"], "+63 82 227 1234");
    assert_eq!(r.body["active"], true);
    let edited_at = r.position();
    assert!(edited_at > before.position());

    // At once, without X-Min-Position: routing waits for the map to reach the edit.
    let after = c.report_at(BETWEEN).await;
    assert_eq!(after.body["station_id"], c.a.as_str(), "{}", after.body);

    // The earlier decision is not rewritten.
    let r = c
        .app
        .get_at(
            &format!("/crimes/{}", before.id()),
            Some(&c.admin),
            after.position(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["station_id"], c.b.as_str(), "{}", r.body);

    // Anyone reads the station as edited.
    let r = c
        .app
        .send(&Call::station(&c.a).min_position(edited_at), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Precinct A (wide)");
    assert_eq!(r.body["contact_phone"], "+63 82 227 1234");
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["area"]["coordinates"][0][0][1], json!(A.0 - 0.15));

    // The same edit again changes nothing and appends nothing.
    let head = c.head().await;
    let r = c
        .edit(
            &c.a,
            json!({"area": Call::square_area(A.0, A.1, 0.15), "name": "Precinct A (wide)"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(c.head().await, head, "a no-op edit appended");
}

#[tokio::test]
async fn deactivation_is_refused_while_reports_are_open_and_an_inactive_station_receives_none() {
    let c = city().await;
    let open = c.report_at(A).await;
    assert_eq!(open.body["station_id"], c.a.as_str());

    let head = c.head().await;
    let r = c.edit(&c.a, json!({"active": false})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let detail = r.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&open.id()), "{detail}");
    assert_eq!(c.head().await, head, "a refused deactivation appended");

    // Once the report is no longer open, the station may go.
    let r = c
        .app
        .post(
            &format!("/crimes/{}/reject", open.id()),
            Some(&c.dispatcher_a),
            json!({"justification": "not a crime"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = c.edit(&c.a, json!({"active": false})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], false);

    // Right inside A's area, a new report goes to B: A takes none.
    let elsewhere = c.report_at(A).await;
    assert_eq!(
        elsewhere.body["station_id"],
        c.b.as_str(),
        "{}",
        elsewhere.body
    );
    let r = c
        .app
        .send(
            &Call::station(&c.a).min_position(elsewhere.position()),
            None,
        )
        .await;
    assert_eq!(r.body["active"], false, "{}", r.body);

    // Deactivating again appends nothing; reactivating routes to A again.
    let head = c.head().await;
    let r = c.edit(&c.a, json!({"active": false})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(c.head().await, head);
    let r = c.edit(&c.a, json!({"active": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], true);
    let back = c.report_at(A).await;
    assert_eq!(back.body["station_id"], c.a.as_str(), "{}", back.body);
}

#[tokio::test]
async fn bad_station_edits_and_previews_are_refused_and_append_nothing() {
    let c = city().await;
    let division = c.app.division(&c.admin, "Cyber", &["phishing"]).await;
    let head = c.head().await;
    let bow_tie = json!({"type": "Polygon", "coordinates": [[
        [125.60, 7.06], [125.62, 7.08], [125.62, 7.06], [125.60, 7.08], [125.60, 7.06]
    ]]});
    let unknown = uuid::Uuid::new_v4().to_string();
    let cases: Vec<(&str, &str, Value, StatusCode)> = vec![
        (
            "unknown station",
            &unknown,
            json!({"name": "X"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "unknown station, deactivated",
            &unknown,
            json!({"active": false}),
            StatusCode::NOT_FOUND,
        ),
        (
            "self-intersecting area",
            &c.a,
            json!({"area": bow_tie}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "empty area",
            &c.a,
            json!({"area": {"type": "Polygon", "coordinates": []}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "latitude alone",
            &c.a,
            json!({"latitude": 7.1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "no point, no area",
            &c.a,
            json!({"latitude": null, "longitude": null, "area": null}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "keywords on a precinct",
            &c.a,
            json!({"crime_types": ["theft"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "a division without keywords",
            &division,
            json!({"crime_types": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "blank name",
            &c.a,
            json!({"name": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "not a phone number",
            &c.a,
            json!({"contact_phone": "call us"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "unknown field",
            &c.a,
            json!({"kind": "DIVISION"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (what, station, body, status) in cases {
        let r = c.edit(station, body).await;
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert!(
            r.headers[reqwest::header::CONTENT_TYPE]
                .to_str()
                .unwrap_or_default()
                .starts_with("application/problem+json"),
            "{what}: not a problem"
        );
    }
    // Only an ADMIN edits or previews.
    let r = c
        .app
        .send(
            &Call::edit_station(&c.a, json!({"name": "Mine"})),
            Some(&c.dispatcher_a),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let square = Call::square_area(A.0, A.1, 0.1);
    let r = c
        .app
        .send(
            &Call::preview_area(&c.a, square.clone(), None),
            Some(&c.dispatcher_a),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let previews: Vec<(&str, Call, StatusCode)> = vec![
        (
            "unknown station",
            Call::preview_area(&unknown, square.clone(), None),
            StatusCode::NOT_FOUND,
        ),
        (
            "self-intersecting",
            Call::preview_area(&c.a, bow_tie.clone(), None),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "limit 0",
            Call::preview_area(&c.a, square.clone(), Some(0)),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "limit over 1000",
            Call::preview_area(&c.a, square.clone(), Some(1001)),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (what, call, status) in previews {
        let r = c.app.send(&call, Some(&c.admin)).await;
        assert_eq!(r.status, status, "preview, {what}: {}", r.body);
    }
    let r = c.app.get(&format!("/stations/{unknown}"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(c.head().await, head, "a refused call appended an event");
}

/// Station facts read from the read model by routing so far (`GET /metrics`).
async fn station_reads(app: &TestApp) -> f64 {
    let (_, text) =
        precinct_tests::prometheus::scrape(app, Some(precinct_tests::app::METRICS_TOKEN)).await;
    precinct_tests::prometheus::sample(&text, "precinct_station_facts_total{source=\"read_model\"}")
        .unwrap_or(0.0)
}

/// ADR 0022: routing keeps the station facts in memory by the position of the last
/// station change — reports in a row read the stations once — and every edit applies to
/// every report submitted after it, in both directions.
#[tokio::test]
async fn routing_reads_the_stations_once_per_change_and_each_edit_applies_to_every_later_report() {
    let c = city().await;
    let first = c.report_at(BETWEEN).await;
    assert_eq!(first.body["station_id"], c.b.as_str(), "{}", first.body);
    let reads = station_reads(&c.app).await;
    assert!(reads >= 1.0, "the first report read the stations");
    for _ in 0..3 {
        let r = c.report_at(BETWEEN).await;
        assert_eq!(r.body["station_id"], c.b.as_str(), "{}", r.body);
    }
    assert_eq!(
        station_reads(&c.app).await,
        reads,
        "no station changed: routing kept the facts it had"
    );

    // A wider area for A: every report after the edit goes to A.
    let r = c
        .edit(&c.a, json!({"area": Call::square_area(A.0, A.1, 0.15)}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for _ in 0..2 {
        let r = c.report_at(BETWEEN).await;
        assert_eq!(r.body["station_id"], c.a.as_str(), "{}", r.body);
    }
    // Back to a narrow one: B again, at once.
    let r = c
        .edit(&c.a, json!({"area": Call::square_area(A.0, A.1, 0.05)}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = c.report_at(BETWEEN).await;
    assert_eq!(r.body["station_id"], c.b.as_str(), "{}", r.body);
    assert_eq!(
        station_reads(&c.app).await,
        reads + 2.0,
        "one read of the stations per change"
    );
}
