//! Hostile values at the edges (issue 13): times the read side cannot store, invisible
//! and direction-changing text, self-crossing areas, out-of-range filters and cursors,
//! the bounds on one report's history, and withdrawn reports in the public list.

use precinct_tests::app::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

struct Desk {
    app: TestApp,
    admin: String,
    station: String,
    dispatcher: String,
    officer: String,
    patrol: String,
    citizen: String,
}

async fn desk() -> Desk {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
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
        officer,
        patrol,
        citizen,
    }
}

fn report_body() -> Value {
    json!({"title": "Bike stolen", "description": "My blue bike was taken",
           "crime_types": ["Theft"], "location": {"latitude": LAT, "longitude": LON}})
}

fn fields(r: &Value) -> Vec<String> {
    r["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Issue 13, item 1: `occurred_at: -5000-01-01` was accepted (201), and the event it
/// made could not be stored by PostgreSQL: the reports read model stopped for everyone.
#[tokio::test]
async fn times_outside_the_storable_range_are_refused_on_every_write() {
    let d = desk().await;
    let app = &d.app;
    let head = app.log.head().await.expect("head");
    for bad in [
        "-5000-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "1899-12-31T23:59:59Z",
        "+275000-01-01T00:00:00Z",
    ] {
        let mut body = report_body();
        body["occurred_at"] = json!(bad);
        for token in [None, Some(d.citizen.as_str())] {
            let r = app.post("/crimes", token, body.clone()).await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{bad}: {}",
                r.body
            );
            assert_eq!(fields(&r.body), ["occurred_at"], "{bad}: {}", r.body);
        }
    }
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );

    // Amendments (PATCH and PUT) are held to the same range.
    let r = app.report(Some(&d.citizen), LAT, LON, &["Theft"]).await;
    let id = r.id();
    let r = app
        .patch(
            &format!("/crimes/{id}"),
            Some(&d.citizen),
            json!({"occurred_at": "-5000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(fields(&r.body), ["occurred_at"]);
    let mut put = report_body();
    put["occurred_at"] = json!("1066-10-14T09:00:00Z");
    let r = app
        .put(&format!("/crimes/{id}"), Some(&d.citizen), put)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(fields(&r.body), ["occurred_at"]);

    // Evidence capture times too.
    let r = app
        .post(
            "/dispatch",
            Some(&d.dispatcher),
            json!({"crime_id": id, "patrol_id": d.patrol}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .post(&format!("/crimes/{id}/accept"), Some(&d.officer), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for bad in ["-5000-01-01T00:00:00Z", "1850-06-01T00:00:00Z"] {
        let r = app
            .post(
                &format!("/crimes/{id}/evidence"),
                Some(&d.officer),
                json!({"url": "https://evidence.example/a.jpg", "media_type": "PHOTO",
                       "captured_at": bad}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.body
        );
        assert_eq!(fields(&r.body), ["captured_at"], "{}", r.body);
    }

    // Patrol positions (never in the domain: refused at the edge).
    let r = app
        .put(
            &format!("/patrols/{}/location", d.patrol),
            Some(&d.officer),
            json!({"latitude": LAT, "longitude": LON, "recorded_at": "-5000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(fields(&r.body), ["recorded_at"]);

    // A device clock a little ahead is tolerated; a sane past time is kept as given.
    let mut ok = report_body();
    let ahead = chrono::Utc::now() + chrono::Duration::seconds(10);
    ok["occurred_at"] = json!(ahead);
    let r = app.post("/crimes", None, ok).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let mut ok = report_body();
    ok["occurred_at"] = json!("1990-05-01T12:00:00Z");
    let r = app.post("/crimes", None, ok).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["occurred_at"], "1990-05-01T12:00:00Z");
    app.caught_up(r.position()).await;
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
}

/// Issue 13, item 10: titles of zero-width characters only, and text with bidirectional
/// overrides, were accepted.
#[tokio::test]
async fn invisible_and_direction_overriding_text_is_refused() {
    let d = desk().await;
    let app = &d.app;
    let head = app.log.head().await.expect("head");
    for (field, value) in [
        ("title", "\u{200b}\u{200b}\u{200b}"),
        ("title", "\u{2060}\u{feff}"),
        ("description", "\u{200d}"),
        ("title", "invoice\u{202e}gpj.exe"),
        ("description", "pay to \u{2067}evil\u{2069}"),
        ("contact", "\u{202d}+63 900"),
    ] {
        let mut body = report_body();
        body[field] = json!(value);
        let r = app.post("/crimes", None, body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field} {value:?}: {}",
            r.body
        );
        assert_eq!(fields(&r.body), [field], "{}", r.body);
    }
    let r = app
        .post(
            "/patrols/register",
            Some(&d.dispatcher),
            json!({"call_sign": "\u{200b}", "station_id": d.station, "officer_ids": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );
    // Right-to-left text and emoji sequences are ordinary text.
    let mut ok = report_body();
    ok["title"] = json!("سرقة دراجة 👩\u{200d}💻");
    let r = app.post("/crimes", None, ok).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

/// Issue 13, item 10: a station whose area crosses itself was accepted.
#[tokio::test]
async fn self_crossing_station_areas_are_refused() {
    let d = desk().await;
    let app = &d.app;
    let (lat, lon) = (8.0, 126.0);
    let bow_tie = json!([[
        [lon - 0.05, lat - 0.05],
        [lon + 0.05, lat + 0.05],
        [lon + 0.05, lat - 0.05],
        [lon - 0.05, lat + 0.05],
        [lon - 0.05, lat - 0.05]
    ]]);
    let r = app
        .post(
            "/stations",
            Some(&d.admin),
            json!({"name": "Bow tie", "kind": "PRECINCT",
                   "area": {"type": "Polygon", "coordinates": bow_tie}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(fields(&r.body), ["area"], "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("crosses or touches itself"),
        "{}",
        r.body
    );
}

/// Issue 13, item 10: withdrawn reports stayed in the public list.
#[tokio::test]
async fn withdrawn_reports_leave_the_public_list() {
    let d = desk().await;
    let app = &d.app;
    let kept = app
        .report(Some(&d.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let gone = app
        .report(Some(&d.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let r = app
        .delete(&format!("/crimes/{gone}"), Some(&d.citizen))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let position = r.body["position"].as_u64().expect("position");
    for token in [None, Some(d.citizen.as_str())] {
        let public = app.get_at("/crimes", token, position).await;
        assert_eq!(public.status, StatusCode::OK, "{}", public.body);
        assert_eq!(
            ids(&public.body),
            std::slice::from_ref(&kept),
            "{}",
            public.body
        );
        // Asking for them by status does not bring them back.
        let asked = app
            .get_at("/crimes?status=WITHDRAWN", token, position)
            .await;
        assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
        assert!(ids(&asked.body).is_empty(), "{}", asked.body);
        let mixed = app
            .get_at("/crimes?status=NEW,WITHDRAWN", token, position)
            .await;
        assert_eq!(
            ids(&mixed.body),
            std::slice::from_ref(&kept),
            "{}",
            mixed.body
        );
    }
    // Staff of the station and the reporter still see it.
    let staff = app
        .get_at("/crimes?status=WITHDRAWN", Some(&d.dispatcher), position)
        .await;
    assert_eq!(
        ids(&staff.body),
        std::slice::from_ref(&gone),
        "{}",
        staff.body
    );
    let mine = app.get_at("/me/crimes", Some(&d.citizen), position).await;
    assert!(ids(&mine.body).contains(&gone), "{}", mine.body);
}

/// A cursor as the API hands them out: URL-safe base64 of the sort key's JSON.
fn cursor(key: Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.to_string())
}

/// Issue 13, item 1: out-of-range times in filters and crafted cursors answered 500;
/// they are the caller's mistake (400 problem+json) on every list endpoint.
#[tokio::test]
async fn out_of_range_filters_and_crafted_cursors_are_bad_requests_everywhere() {
    let d = desk().await;
    let app = &d.app;
    let r = app.report(Some(&d.citizen), LAT, LON, &["Theft"]).await;
    let id = r.id();
    app.caught_up(r.position()).await;
    let uuid = "00000000-0000-0000-0000-000000000001";
    let (ancient, far) = ("-262143-01-01T00:00:00Z", "+262142-12-31T23:59:59Z");
    let time_keys = [
        cursor(json!([ancient, uuid])),
        cursor(json!([far, uuid])),
        cursor(json!(["1066-10-14T09:00:00Z", uuid])),
    ];
    let nul_keys = [cursor(json!(["a\u{0}", uuid]))];
    let mut cases: Vec<(String, &str)> = Vec::new();
    for c in &time_keys {
        for path in [
            "/crimes",
            "/me/crimes",
            "/me/assignments",
            "/sla?overdue=accept&",
        ] {
            let sep = if path.ends_with('&') { "" } else { "?" };
            let token = if path == "/me/assignments" {
                d.officer.as_str()
            } else if path.starts_with("/sla") {
                d.dispatcher.as_str()
            } else {
                d.citizen.as_str()
            };
            cases.push((format!("{path}{sep}cursor={c}"), token));
        }
        cases.push((format!("/crimes?cursor={c}"), d.dispatcher.as_str()));
        cases.push((
            format!("/audit/requests?cursor={}", cursor(json!([ancient, 1]))),
            d.admin.as_str(),
        ));
    }
    for rank_key in [
        cursor(json!([3, ancient, uuid])),
        cursor(json!([3, far, uuid])),
    ] {
        cases.push((
            format!("/queues/reports?cursor={rank_key}"),
            d.dispatcher.as_str(),
        ));
    }
    for c in &nul_keys {
        cases.push((
            format!("/patrols/register?cursor={c}"),
            d.dispatcher.as_str(),
        ));
        cases.push((format!("/workloads?cursor={c}"), d.dispatcher.as_str()));
        cases.push((format!("/stations?cursor={c}"), d.citizen.as_str()));
    }
    for (param, value) in [
        ("from", ancient),
        ("to", far),
        ("from", "1800-01-01T00:00:00Z"),
    ] {
        let v = value.replace('+', "%2B");
        cases.push((format!("/audit?{param}={v}"), d.admin.as_str()));
        cases.push((format!("/audit/requests?{param}={v}"), d.admin.as_str()));
        cases.push((
            format!("/patrols/{}/track?{param}={v}", d.patrol),
            d.dispatcher.as_str(),
        ));
    }
    cases.push((format!("/crimes/{id}?as_of={ancient}"), d.citizen.as_str()));
    cases.push((
        format!("/crimes/{id}?as_of={}", far.replace('+', "%2B")),
        d.citizen.as_str(),
    ));
    cases.push((
        "/audit/requests?path=%2Fcrimes%00".to_string(),
        d.admin.as_str(),
    ));
    cases.push((
        format!("/crimes/{id}/history?cursor=-1"),
        d.dispatcher.as_str(),
    ));
    cases.push((
        format!("/patrols/{}/track?cursor=x", d.patrol),
        d.dispatcher.as_str(),
    ));
    for (path, token) in cases {
        let r = app.get(&path, Some(token)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{path}"
        );
    }
    // The server kept serving (no panic took a worker down) and sane values still work.
    let ok = app
        .get("/audit?from=2000-01-01T00:00:00Z", Some(&d.admin))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
}

/// Issue 13, item 1: a history or track cursor of u64::MAX wrapped to the start.
#[tokio::test]
async fn a_cursor_at_the_end_of_the_numbers_does_not_wrap_to_the_start() {
    let d = desk().await;
    let app = &d.app;
    let id = app
        .report(Some(&d.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let max = u64::MAX;
    let h = app
        .get(
            &format!("/crimes/{id}/history?cursor={max}"),
            Some(&d.dispatcher),
        )
        .await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.body);
    assert_eq!(h.body["items"], json!([]), "{}", h.body);
    assert!(h.body["next_cursor"].is_null());
    let r = app
        .put(
            &format!("/patrols/{}/location", d.patrol),
            Some(&d.officer),
            json!({"latitude": LAT, "longitude": LON}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let t = app
        .get(
            &format!("/patrols/{}/track?cursor={max}", d.patrol),
            Some(&d.dispatcher),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    assert_eq!(t.body["items"], json!([]), "{}", t.body);
}
