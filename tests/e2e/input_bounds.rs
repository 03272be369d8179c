//! Hostile values at the edges (issue 13): times the read side cannot store, invisible
//! and direction-changing text, self-crossing areas, out-of-range filters and cursors,
//! the bounds on one report's history, and withdrawn reports in the public list.

use futures::StreamExt;
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

/// Review of issue 13, N7: invisible, direction-changing and look-alike characters made
/// e-mail addresses that display as another (`adm\u{200b}in@…` is not `admin@…`), and
/// links whose host is not the one shown.
#[tokio::test]
async fn look_alike_e_mail_addresses_and_links_are_refused() {
    let d = desk().await;
    let app = &d.app;
    let head = app.log.head().await.expect("head");
    for email in [
        "adm\u{200b}in@precinct.test",
        "\u{202e}admin@precinct.test",
        "\u{0430}dmin@precinct.test",
        "admin@prec\u{0456}nct.test",
        "admin\u{2060}@precinct.test",
    ] {
        let r = app
            .post(
                "/users/register",
                None,
                json!({"email": email, "password": "correct horse battery", "name": "Mallory"}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{email:?}: {}",
            r.body
        );
        assert_eq!(fields(&r.body), ["email"], "{}", r.body);
    }
    for url in [
        "https://media.example/x\u{200b}.jpg",
        "https://media.example/\u{202e}gpj.exe",
        "https://m\u{0435}dia.example/x.jpg",
        "https://xn--mdia-fnd.example\u{feff}/x.jpg",
    ] {
        let mut body = report_body();
        body["media_urls"] = json!([url]);
        let r = app.post("/crimes", None, body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url:?}: {}",
            r.body
        );
    }
    // Text made only of combining marks draws nothing a person can read.
    let mut body = report_body();
    body["title"] = json!("\u{0301}\u{0308}\u{20dd}");
    let r = app.post("/crimes", None, body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );
    // Punycode hosts and plain addresses are fine.
    let mut body = report_body();
    body["media_urls"] = json!(["https://xn--mdia-fnd.example/caf%C3%A9.jpg"]);
    let r = app.post("/crimes", None, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post(
            "/users/register",
            None,
            json!({"email": "o'brien+1@xn--prcinct-9ya.test", "password": "correct horse battery", "name": "Ann"}),
        )
        .await;
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

/// Issue 13, item 10: `/health/ready` answered its details (and, after a poison event,
/// the database's error text) to anyone.
#[tokio::test]
async fn readiness_details_only_for_admins_or_configured_loopback_monitors() {
    use precinct_api::routes::health::HealthDetails;
    use precinct_tests::app::Options;
    let d = desk().await;
    let app = &d.app;
    for token in [None, Some(d.citizen.as_str()), Some(d.dispatcher.as_str())] {
        let r = app.get("/health/ready", token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body, json!({"status": "ready"}), "{token:?}");
    }
    let r = app.get("/health/ready", Some(&d.admin)).await;
    assert_eq!(r.body["status"], "ready");
    assert_eq!(r.body["postgres"], json!({"ok": true}));
    assert!(r.body["nats"]["head"].as_u64().is_some(), "{}", r.body);
    assert!(r.body["projections"]
        .as_array()
        .is_some_and(|p| !p.is_empty()));
    // Down: still no more than the status to others, and flags, never error text, to
    // the admin.
    app.pool.close().await;
    let r = app.get("/health/ready", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body, json!({"status": "not_ready"}));
    let r = app.get("/health/ready", Some(&d.admin)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["postgres"], json!({"ok": false}), "{}", r.body);
    assert!(r.body["projections"].is_null(), "{}", r.body);
    assert!(!r.body.to_string().contains("closed"), "{}", r.body);

    // An operator who runs a monitor on the host may let loopback see the details.
    let monitored = TestApp::spawn_with(Options {
        health_details: HealthDetails::Loopback,
        ..Options::default()
    })
    .await
    .expect("spawn");
    let r = monitored.get("/health/ready", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["projections"].as_array().is_some(), "{}", r.body);
    let admin = monitored.admin().await;
    let (_, citizen) = monitored.account(&admin, "CITIZEN", None).await;
    let r = monitored.get("/health/ready", Some(&citizen)).await;
    assert_eq!(
        r.body,
        json!({"status": "ready"}),
        "a token that is not ADMIN"
    );
}

/// Issue 13, item 7: amendments of one report were unlimited. The review of its fix,
/// N10: the cap was shared, so a reporter who used it up blocked staff corrections.
#[tokio::test]
async fn a_reporters_amendments_are_capped_but_not_the_desks() {
    let d = desk().await;
    let app = &d.app;
    let id = app
        .report(Some(&d.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let max = precinct_domain::report::MAX_AMENDMENTS;
    for i in 0..max {
        let r = app
            .patch(
                &format!("/crimes/{id}"),
                Some(&d.citizen),
                json!({"title": format!("Bike stolen, take {i}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "amendment {i}: {}", r.body);
    }
    let r = app
        .patch(
            &format!("/crimes/{id}"),
            Some(&d.citizen),
            json!({"title": "one too many"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("amended 50 times"),
        "{}",
        r.body
    );
    // The desk still corrects it (beyond 50 amendments in all), and works it.
    for i in 0..3 {
        let r = app
            .patch(
                &format!("/crimes/{id}"),
                Some(&d.dispatcher),
                json!({"title": format!("Bicycle theft ({i})")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "staff correction {i}: {}", r.body);
    }
    let r = app
        .patch(
            &format!("/crimes/{id}"),
            Some(&d.dispatcher),
            json!({"priority": "HIGH"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["title"], "Bicycle theft (2)", "{}", r.body);
    // The reporter's cap still holds after the desk's corrections.
    let r = app
        .patch(
            &format!("/crimes/{id}"),
            Some(&d.citizen),
            json!({"title": "still one too many"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
}

/// Issue 13, item 7: a report's history was loaded whole before `limit` applied, and 50
/// parallel `as_of` reads of a long report answered 503s and a wrong 404.
#[tokio::test]
async fn reads_of_one_long_report_are_paged_and_never_a_wrong_404_or_503() {
    let d = desk().await;
    let app = &d.app;
    let id = app
        .report(Some(&d.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    // The longest a reporter can make it: every amendment with a 9,900-character
    // description (sealed personal data: about 13 KB each in the log).
    let long = "x".repeat(9_900);
    let mut middle = None;
    let max = precinct_domain::report::MAX_AMENDMENTS;
    for i in 0..max {
        let r = app
            .patch(
                &format!("/crimes/{id}"),
                Some(&d.citizen),
                json!({"title": format!("take {i}"), "description": format!("{i} {long}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "amendment {i}: {}", r.body);
        if i == max / 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            middle = Some(chrono::Utc::now());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    let middle = middle
        .expect("middle")
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);

    // History pages: each event once, in order, a page at a time.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let path = match &cursor {
            Some(c) => format!("/crimes/{id}/history?limit=7&cursor={c}"),
            None => format!("/crimes/{id}/history?limit=7"),
        };
        let page = app.get(&path, Some(&d.dispatcher)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let items = page.body["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 7);
        seen.extend(items.iter().filter_map(|i| i["position"].as_u64()));
        cursor = page.body["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 1 + max as usize, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");

    // Fifty parallel as_of reads (half now, half in the middle): all answered, right.
    let calls = (0..50).map(|i| {
        let at = if i % 2 == 0 { &now } else { &middle };
        let path = format!("/crimes/{id}?as_of={}", at.replace('+', "%2B"));
        let citizen = d.citizen.clone();
        async move { (i, app.get(&path, Some(&citizen)).await) }
    });
    for (i, r) in futures::future::join_all(calls).await {
        assert_eq!(r.status, StatusCode::OK, "call {i}: {}", r.body);
        let expected = if i % 2 == 0 {
            format!("take {}", max - 1)
        } else {
            format!("take {}", max / 2)
        };
        assert_eq!(r.body["title"], expected.as_str(), "call {i}");
    }
}

/// The ranged read behind history pages: at most what was asked, and whether more
/// follow, straight from the log.
#[tokio::test]
async fn a_ranged_read_of_one_stream_reads_no_more_than_asked() {
    use precinct_eventlog::{Actor, CommandMeta, ExpectedVersion, NewEvent, StreamId};
    let app = TestApp::spawn().await.expect("spawn");
    let stream = StreamId::new("report", uuid::Uuid::new_v4());
    let other = StreamId::new("report", uuid::Uuid::new_v4());
    for i in 0..30 {
        for s in [&stream, &other] {
            let e = NewEvent {
                event_type: "NoteAdded".into(),
                schema_version: 1,
                occurred_at: chrono::Utc::now(),
                data: json!({"i": i}),
            };
            app.log
                .append(
                    s,
                    ExpectedVersion::Any,
                    vec![e],
                    &CommandMeta::new(uuid::Uuid::new_v4(), Actor::System),
                )
                .await
                .expect("append");
        }
    }
    let all = app.log.read(&stream).await.expect("read");
    assert_eq!(all.len(), 30);
    let (page, more) = app.log.read_range(&stream, 0, 7).await.expect("range");
    assert_eq!((page.len(), more), (7, true));
    assert_eq!(page[..], all[..7]);
    let after = all[26].position();
    let (tail, more) = app.log.read_range(&stream, after, 7).await.expect("range");
    assert_eq!((tail.len(), more), (3, false));
    assert_eq!(tail[..], all[27..]);
    let (exact, more) = app
        .log
        .read_range(&stream, all[22].position(), 7)
        .await
        .expect("range");
    assert_eq!((exact.len(), more), (7, false));
    let (none, more) = app
        .log
        .read_range(&stream, u64::MAX, 7)
        .await
        .expect("range");
    assert_eq!((none.len(), more), (0, false));
}

/// Review of issue 13, N2: `as_of` reads of a huge report shared the process's log-read
/// slots with commands, so fifty of them held up every other user's commands.
#[tokio::test]
async fn as_of_floods_of_a_huge_report_do_not_hold_up_other_users_commands() {
    let d = desk().await;
    let app = &d.app;
    let id = app
        .report(Some(&d.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    // The reporter's 50 amendments and 250 staff notes, about 10 KB each.
    let long = "x".repeat(9_900);
    for i in 0..precinct_domain::report::MAX_AMENDMENTS {
        let r = app
            .patch(
                &format!("/crimes/{id}"),
                Some(&d.citizen),
                json!({"description": format!("{i} {long}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "amendment {i}: {}", r.body);
    }
    let notes = futures::stream::iter(0..250)
        .map(|i| {
            let (path, note, token) = (
                format!("/crimes/{id}/notes"),
                format!("{i} {long}"),
                d.dispatcher.clone(),
            );
            async move { app.post(&path, Some(&token), json!({"note": note})).await }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    assert!(
        notes.iter().all(|r| r.status == StatusCode::CREATED),
        "{:?}",
        notes.iter().find(|r| r.status != StatusCode::CREATED)
    );
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let path = format!("/crimes/{id}?as_of={}", now.replace('+', "%2B"));
    let probe = std::time::Instant::now();
    let r = app.get(&path, Some(&d.dispatcher)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    println!("one as_of read of the huge report: {:?}", probe.elapsed());

    let (_, other) = app.account(&d.admin, "CITIZEN", None).await;
    // Eighty as_of reads at once (a dispatcher's; budgets are off in tests) …
    let flood_started = std::time::Instant::now();
    let flood: Vec<_> = (0..80)
        .map(|_| {
            let (http, url, token) = (
                app.http.clone(),
                format!("{}{path}", app.base),
                d.dispatcher.clone(),
            );
            tokio::spawn(async move {
                http.get(url)
                    .bearer_auth(token)
                    .timeout(std::time::Duration::from_secs(60))
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // … while another citizen reports a crime and the other report is triaged.
    let started = std::time::Instant::now();
    let submitted = app
        .send(
            &precinct_tests::client::Call::submit(&precinct_tests::client::NewReport::bike(
                LAT, LON,
            ))
            .timeout(std::time::Duration::from_secs(5)),
            Some(&other),
        )
        .await;
    let submit_took = started.elapsed();
    assert_eq!(submitted.status, StatusCode::CREATED, "{}", submitted.body);
    let started = std::time::Instant::now();
    let triaged = app
        .send(
            &precinct_tests::client::Call::triage(&submitted.id(), "HIGH")
                .timeout(std::time::Duration::from_secs(5)),
            Some(&d.dispatcher),
        )
        .await;
    let triage_took = started.elapsed();
    assert_eq!(triaged.status, StatusCode::OK, "{}", triaged.body);
    let mut answered = std::collections::BTreeMap::new();
    for h in flood {
        let status = h.await.expect("join").expect("as_of answered");
        *answered.entry(status.as_u16()).or_insert(0) += 1;
    }
    println!(
        "during 80 parallel as_of reads ({:?} in all): a submission took {submit_took:?}, \
         a triage {triage_took:?}; the reads answered {answered:?}",
        flood_started.elapsed()
    );
    assert!(
        answered.keys().all(|s| *s == 200),
        "as_of reads answered {answered:?}"
    );
}
